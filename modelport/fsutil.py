"""File-system helpers every writer uses: all-or-nothing output, and paths that stay inside.

A writer builds its output in a temporary sibling of the destination and renames it into place
only when everything succeeded, so a failed conversion leaves nothing at the destination, and
an existing destination is replaced only with ``force``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import FormatError, OutputExistsError, UnsafeInputError


def check_destination(dst: Path, force: bool) -> None:
    if dst.exists() or dst.is_symlink():
        if not force:
            raise OutputExistsError("destination exists", file=dst,
                                    hint="pass --force to replace it")
        if dst.is_symlink():
            raise OutputExistsError("destination is a symbolic link; refusing to replace it",
                                    file=dst)


@contextlib.contextmanager
def atomic_output(dst: str | os.PathLike, *, directory: bool, force: bool) -> Iterator[Path]:
    """Yield a temporary path next to ``dst``; on success move it to ``dst``.

    ``directory`` says whether the output is a folder (created empty) or a single file.
    """
    dst = Path(dst)
    check_destination(dst, force)
    parent = dst.parent if str(dst.parent) else Path(".")
    if not parent.is_dir():
        raise FormatError("the destination's folder does not exist", file=parent)
    prefix = f".{dst.name}.modelport-"
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if dst.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{dst.name}.modelport-old-", dir=parent))
            old = trash / dst.name
            os.replace(dst, old)
            try:
                os.replace(tmp, dst)
            except BaseException:
                os.replace(old, dst)
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, dst)
        if directory:
            os.chmod(dst, 0o755)
        else:
            os.chmod(dst, 0o644)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise


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
    if pure.is_absolute() or relative.startswith(("/", "\\")) or (len(relative) > 1 and relative[1] == ":"):
        raise UnsafeInputError(f"{what} is an absolute path: {relative!r}", file=file)
    if any(part == ".." for part in relative.replace("\\", "/").split("/")):
        raise UnsafeInputError(f"{what} climbs out of the model's folder: {relative!r}", file=file)
    root = folder.resolve()
    target = (folder / pure).resolve()
    if target != root and root not in target.parents:
        raise UnsafeInputError(f"{what} resolves outside the model's folder: {relative!r}",
                               file=file)
    return target
