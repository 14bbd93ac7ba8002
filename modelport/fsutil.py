"""File-system helpers every writer uses: all-or-nothing output, and paths that stay inside.

A writer builds its output in a temporary sibling of the destination and renames it into place
only when everything succeeded, so a failed conversion leaves nothing at the destination, and
an existing destination is replaced only with ``force``, and only when it is a regular file or
a TF.js model folder. A write that fails (permissions, a full disk) is an ``OutputError``.

What a model may reference (TF.js shard ``paths``, ONNX external-data ``location``, the members
of an unzipped ``.keras`` folder) is a *relative* path to a *regular file* inside the model's
folder, checked on the resolved path:

* absolute paths, drive letters, ``..`` components and NUL bytes are refused as written;
* the path is resolved (symbolic links followed, also in intermediate folders) and must stay
  inside the resolved model folder, so a symlink pointing out is refused;
* the file must be a regular file (no FIFO, device or folder) with exactly one link: a hard
  link is the same inode as some other name that may sit anywhere on the file system
  (``/etc/shadow``, another user's data), and nothing in the file can tell where the other
  names are, so modelport refuses every referenced file whose link count is above one. Copy
  such a file (``cp``, which makes a new inode) to convert it.

The checks run when the model is read; a folder changed while modelport reads it (a race) is
outside this model. JSON documents from a model are parsed with size and nesting limits
(``parse_json``), so a hostile file gives a FormatError, never a MemoryError or RecursionError.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import FormatError, OutputError, OutputExistsError, UnsafeInputError


def io_workers(limit: int = 4) -> int:
    """Threads worth giving to concurrent file reads and writes: the CPUs this process may run
    on (not the machine's, which a container or ``taskset`` can restrict), at most ``limit``."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(limit, cpus or 1))


# What a TF.js model folder holds (shards were named without ".bin" before tfjs 1.0): the only
# kind of folder --force replaces.
_TFJS_FOLDER_ENTRY = re.compile(r"model\.json|.+\.bin|group\d+-shard\d+of\d+")


def check_destination(dst: Path, force: bool) -> None:
    """Refuse an existing ``dst`` unless ``force``; even then, replace only a regular file or a
    TF.js model folder (``--force`` on a mistyped path must not delete a home folder or swap
    out a device node)."""
    if dst.exists() or dst.is_symlink():
        if not force:
            raise OutputExistsError("destination exists", file=dst,
                                    hint="pass --force to replace it")
        if dst.is_symlink():
            raise OutputExistsError("destination is a symbolic link; refusing to replace it",
                                    file=dst)
        mode = dst.lstat().st_mode
        if stat.S_ISDIR(mode):
            _check_replaceable_folder(dst)
        elif not stat.S_ISREG(mode):
            raise OutputExistsError(f"destination is a {_kind(mode)}, not a regular file or "
                                    "folder; refusing to replace it", file=dst)


def check_parent(dst: Path) -> None:
    """The folder ``dst`` goes in must be a folder this process may write in (an OutputError,
    told before any work, not after minutes of conversion)."""
    parent = dst.parent if str(dst.parent) else Path(".")
    if parent.is_dir():
        effective = os.access in os.supports_effective_ids
        if not os.access(parent, os.W_OK | os.X_OK, effective_ids=effective):
            raise OutputError("the destination's folder cannot be written (no permission, "
                              "or a read-only file system)", file=parent)
        return
    # the nearest thing that exists on the way: a file there means no folder can be made
    there = next((p for p in (parent, *parent.parents) if os.path.lexists(p)), None)
    if there == parent:
        raise OutputError("the destination's folder is not a folder (a file is there)",
                          file=parent)
    if there is not None and not there.is_dir():
        raise OutputError(f"the destination's folder cannot be made: {there} is not a folder",
                          file=parent)
    raise OutputError("the destination's folder does not exist", file=parent,
                      hint="create it first")


def _check_replaceable_folder(dst: Path) -> None:
    try:
        entries = list(os.scandir(dst))
    except OSError as e:
        raise OutputExistsError(f"destination is a folder that cannot be listed "
                                f"({e.strerror}); refusing to replace it", file=dst) from None
    names = {e.name for e in entries}
    stray = sorted(e.name for e in entries if not e.is_file(follow_symlinks=False)
                   or not _TFJS_FOLDER_ENTRY.fullmatch(e.name))
    if stray or "model.json" not in names:
        found = f"it holds {stray[0]!r}" if stray else "it has no model.json"
        raise OutputExistsError(
            f"destination is a folder that is not a TF.js model ({found}); --force replaces "
            "only a TF.js model folder (model.json and its .bin shards)", file=dst,
            hint="remove it yourself, or choose another destination")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


@contextlib.contextmanager
def atomic_output(dst: str | os.PathLike, *, directory: bool, force: bool) -> Iterator[Path]:
    """Yield a temporary path next to ``dst``; on success move it to ``dst``.

    ``directory`` says whether the output is a folder (created empty) or a single file.
    """
    dst = Path(dst)
    check_destination(dst, force)
    with staging(dst) as stage:
        # A file is yielded as a name not yet taken in a private folder, not as a file made in
        # advance: writers open with truncation, and ext4 writes a truncated file back to disk
        # when it is closed (auto_da_alloc), which cost 0.3-0.6 s a GB.
        tmp = stage if directory else stage / dst.name
        yield tmp
        move_into_place(tmp, dst)
        os.chmod(dst, 0o755 if directory else 0o644)


@contextlib.contextmanager
def staging(dst: Path) -> Iterator[Path]:
    """A private (0700) folder next to ``dst`` to build the result in, removed when the block
    ends, whatever happens (a folder result renamed into place has gone already). An OSError
    from writing there or at ``dst`` becomes an OutputError."""
    check_parent(dst)
    parent = dst.parent if str(dst.parent) else Path(".")
    with write_errors(dst):
        stage = Path(tempfile.mkdtemp(prefix=f".{dst.name}.modelport-", dir=parent))
        try:
            yield stage
        finally:
            shutil.rmtree(stage, ignore_errors=True)


def move_into_place(new: Path, dst: Path) -> None:
    """Rename ``new`` to ``dst``. A file replaces a file in one rename; where a folder is
    involved (a rename cannot replace one, nor put a folder where a file is) what is at ``dst``
    goes aside first and comes back if the rename fails."""
    if not os.path.lexists(dst) or not (dst.is_dir() or new.is_dir()):
        os.replace(new, dst)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{dst.name}.modelport-old-", dir=dst.parent))
    try:
        os.replace(dst, trash / dst.name)
        try:
            os.replace(new, dst)
        except BaseException:
            os.replace(trash / dst.name, dst)
            raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def as_output_error(e: OSError, dst: Path) -> OSError | OutputError:
    """``e`` as an OutputError when it came from writing ``dst`` (no file named, or ``dst``,
    a file inside it, a sibling named after it such as ``m.onnx.data``, or a staging or trash
    folder of modelport's next to it); else ``e`` itself (reading a source failed, say)."""
    if e.filename is not None and not _ours(Path(os.fsdecode(e.filename)), dst):
        return e
    return OutputError(f"cannot write the result ({e.strerror or e}); nothing was written",
                       file=dst)


@contextlib.contextmanager
def write_errors(dst: Path) -> Iterator[None]:
    """Turn an OSError from writing ``dst`` into an OutputError (see ``as_output_error``)."""
    try:
        yield
    except OSError as e:
        raise as_output_error(e, dst) from None


def _ours(path: Path, dst: Path) -> bool:
    dst = Path(os.path.abspath(dst))
    path = Path(os.path.abspath(path))
    if path == dst or dst in path.parents:
        return True
    for p in (path, *path.parents):
        if p.parent == dst.parent and (p.name.startswith(dst.name)
                                       or p.name.startswith(f".{dst.name}.modelport-")):
            return True
    return False


def contained_path(folder: Path, relative: str, *, what: str, file: Path) -> Path:
    """Resolve ``relative`` (a path written inside a model file) under ``folder``, or refuse.

    Refuses absolute paths, ``..``, and anything whose resolved location (symbolic links
    followed) is outside ``folder``.
    """
    if not isinstance(relative, str) or not relative:
        raise FormatError(f"{what} is not a non-empty string: {relative!r}", file=file)
    if "\x00" in relative:
        raise UnsafeInputError(f"{what} contains a NUL byte", file=file)
    pure = Path(relative)
    drive = len(relative) > 1 and relative[1] == ":"
    if pure.is_absolute() or relative.startswith(("/", "\\")) or drive:
        raise UnsafeInputError(f"{what} is an absolute path: {relative!r}", file=file)
    if any(part == ".." for part in relative.replace("\\", "/").split("/")):
        raise UnsafeInputError(f"{what} climbs out of the model's folder: {relative!r}", file=file)
    root = folder.resolve()
    target = (folder / pure).resolve()
    if target != root and root not in target.parents:
        raise UnsafeInputError(f"{what} resolves outside the model's folder: {relative!r}",
                               file=file)
    return target


def check_model_file(target: Path, *, what: str, relative: str, file: Path) -> os.stat_result:
    """Refuse anything but a regular, singly-linked file (see the module docstring)."""
    try:
        st = os.stat(target)
    except OSError as e:
        raise FormatError(f"{what} {relative!r} cannot be read ({e.strerror})", file=file) from None
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeInputError(f"{what} {relative!r} is not a regular file", file=file)
    if st.st_nlink > 1:
        raise UnsafeInputError(
            f"{what} {relative!r} is a hard link ({st.st_nlink} names for one file); a hard "
            "link may be a file from outside the model's folder, so it is refused", file=file,
            hint="copy the file (cp gives it its own inode) if it is meant to be there")
    return st


MAX_JSON_BYTES = 256 * 1024 * 1024
MAX_JSON_DEPTH = 128  # Keras configs nest ~10 levels per nested model; TF.js graphs ~8
# Parsed JSON takes ~60 bytes per object or array and ~30 per number: a small document of
# "[]," costs 20x its size. Counted (as brackets and commas, strings included: an upper bound)
# before parsing. A ResNet50 config holds ~10k of each.
MAX_JSON_CONTAINERS = 1 << 20
MAX_JSON_ITEMS = 1 << 22


def parse_json(data: bytes | str, *, file: str | os.PathLike | None,
               what: str | None = None) -> object:
    """Parse a JSON document from a model: at most MAX_JSON_BYTES, nested at most
    MAX_JSON_DEPTH levels (the readers walk configs recursively), else a FormatError.

    ``what`` names the document when it is not ``file`` itself (a member of an archive).
    """
    def fail(problem: str) -> FormatError:
        return FormatError(f"{what} {problem}" if what else problem, file=file)

    if len(data) > MAX_JSON_BYTES:
        raise fail(f"is larger than {MAX_JSON_BYTES} bytes")
    if isinstance(data, str):
        try:
            data.encode("utf8")  # a str from h5py may carry raw lone surrogates
        except UnicodeEncodeError:
            raise fail("holds text that is not valid Unicode (a lone surrogate)") from None
    containers = _count(data, "[") + _count(data, "{")
    if containers > MAX_JSON_CONTAINERS:
        raise fail(f"holds more than {MAX_JSON_CONTAINERS} objects and arrays ({containers} "
                   "brackets), more than any model's config: refused before parsing")
    if _count(data, ",") > MAX_JSON_ITEMS:
        raise fail(f"holds more than {MAX_JSON_ITEMS} values, more than any model's config: "
                   "refused before parsing")
    try:
        doc = json.loads(data, parse_constant=_no_constant)
    except _NotJson as e:
        raise fail(f"holds {e.args[0]}, which is not JSON (a config value must be a finite "
                   "number)") from None
    except RecursionError:
        raise fail(f"is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        raise (fail(f"is not valid JSON ({str(e)[:160]})") if what else
               FormatError(f"not valid JSON ({str(e)[:160]})", file=file)) from None
    stack = [(doc, 1)] if isinstance(doc, (dict, list)) else []
    while stack:
        obj, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise fail(f"is nested more than {MAX_JSON_DEPTH} levels deep")
        items = obj.values() if isinstance(obj, dict) else obj
        stack.extend((v, depth + 1) for v in items if isinstance(v, (dict, list)))
    if _LONE_SURROGATE_ESCAPE.search(data if isinstance(data, str) else
                                     data.decode("utf8", "replace")):
        _refuse_lone_surrogates(doc, fail)
    return doc


class _NotJson(ValueError):
    """NaN, Infinity or -Infinity: Python's json writes them, JSON has none."""


def _no_constant(name: str) -> object:
    raise _NotJson(name)


def _count(data: bytes | str, char: str) -> int:
    return data.count(char.encode()) if isinstance(data, bytes) else data.count(char)


# JSON may escape half of a UTF-16 surrogate pair ("\udcff"): Python decodes it to a string
# that cannot be encoded again, so every writer (UTF-8 JSON, HDF5 names) would fail on it. Such
# text is not Unicode; it is refused when read. (Matched pairs decode to one character.)
_LONE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _refuse_lone_surrogates(doc: object, fail) -> None:
    stack = [doc]
    while stack:
        obj = stack.pop()
        texts = []
        if isinstance(obj, dict):
            texts = list(obj)
            stack.extend(obj.values())
        elif isinstance(obj, list):
            stack.extend(obj)
        elif isinstance(obj, str):
            texts = [obj]
        for text in texts:
            try:
                text.encode("utf8")
            except UnicodeEncodeError:
                raise fail(f"holds text that is not valid Unicode (a lone surrogate in "
                           f"{text[:40]!r})") from None


def read_json_file(path: Path) -> object:
    """``parse_json`` on a file, refused by its size before anything is read."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise FormatError(f"larger than {MAX_JSON_BYTES} bytes ({size}): refused as JSON",
                              file=path)
        with open(path, "rb") as fh:
            data = fh.read(MAX_JSON_BYTES + 1)
    except OSError as e:
        raise FormatError(f"cannot read ({e.strerror})", file=path) from None
    return parse_json(data, file=path)


def write_npz(dst: str | os.PathLike, arrays: dict[str, Any]) -> None:
    """Write ``arrays`` to the ``.npz`` at ``dst`` (a file there is replaced, a folder is
    refused), all at once or not at all."""
    import numpy as np

    if Path(dst).is_dir():
        raise OutputError(f"{dst} is a folder; name an .npz file to write", file=Path(dst))
    with atomic_output(dst, directory=False, force=True) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
