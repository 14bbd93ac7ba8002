"""Keras 3 ``.keras`` files: a zip (or its unzipped folder) of ``config.json``,
``metadata.json`` and ``model.weights.h5``.

In the weights file every object has a folder named after its class, not its name:
``layers/<snake_case(class)>[_<n>]`` per container, in layer order (the second Dense of a model
is ``layers/dense_1`` whatever it is called), with variables by position under ``vars/<i>`` and
sub-objects under their attribute names (``cell``, ``forward_layer``, ``layer``, ``layers``).
tf_keras 2.13+ writes the same layout with Keras 2 configs; both are read.

Read without extracting anything to disk.
"""

from __future__ import annotations

import datetime
import io
import json
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import IO, cast

import numpy as np

from ..errors import FormatError, ModelportError, UnsafeInputError, UnsupportedError
from ..fsutil import atomic_output, check_model_file, contained_path, parse_json
from ..models import Layer, LayersModel, SourceInfo, Weight, keras_dialect
from ..models.keras_variables import layer_variables, snake_case, unknown_class, weights_folder
from . import checks
from .checks import SLACK_BYTES
from .keras_h5 import (
    WRITTEN_KERAS_VERSION,
    _dataset_array,
    _h5py,
    _values,
    check_declared_total,
    config_to_model,
    refuse_links,
)

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"
MAX_JSON_BYTES = 512 * 1024 * 1024
MAX_RATIO = 200  # compressed members expanding more than this are treated as zip bombs
# A JSON member is a config: small, and parsed into objects that take several times its size.
# Keras stores them uncompressed; one deflated past this is refused before it is inflated.
CONFIG_MAX_RATIO = 50


MAX_TOTAL_BYTES = 64 << 30  # all members together, inflated: past this it is not a model


class _Archive:
    """Uniform read access to the zip and the folder forms.

    Nothing is ever extracted, but a zip whose member names could escape a folder if extracted
    (absolute, ``..``), that names a member twice (which copy is "the" config depends on the
    tool), or whose members inflate like a zip bomb is refused as a whole: such an archive was
    crafted, and another tool would extract it. Members of the folder form must be regular,
    singly-linked files inside the folder (see ``fsutil``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        if path.is_dir():
            return
        if not zipfile.is_zipfile(path):
            raise FormatError("not a .keras file: neither a zip archive nor a folder", file=path)
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
            # NotImplementedError: zipfile's word for "version/compression not supported"
            raise FormatError(f"corrupt zip archive ({e})", file=path) from None
        try:
            self._check_members(self.zip)
        except BaseException:
            self.zip.close()
            raise

    def _check_members(self, archive: zipfile.ZipFile) -> None:
        seen: set[str] = set()
        total = 0
        for info in archive.infolist():
            name = info.filename
            parts = name.replace("\\", "/").split("/")
            if "\x00" in name:
                raise UnsafeInputError(f"zip member {name!r} contains a NUL byte", file=self.path)
            if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
                raise UnsafeInputError(f"zip member {name!r} is an absolute path", file=self.path)
            if ".." in parts:
                raise UnsafeInputError(f"zip member {name!r} climbs out of the archive's folder",
                                       file=self.path)
            if name in seen:
                raise FormatError(f"zip member {name!r} appears twice in the archive",
                                  file=self.path)
            seen.add(name)
            if info.flag_bits & 0x1:
                raise FormatError(f"zip member {name!r} is encrypted, which a .keras file never "
                                  "is", file=self.path)
            if info.file_size > SLACK_BYTES and \
                    info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise UnsafeInputError(
                    f"zip member {name} expands {info.file_size} bytes from "
                    f"{info.compress_size}: refused as a zip bomb", file=self.path)
            if name.endswith(".json") and info.file_size > SLACK_BYTES and \
                    info.file_size > CONFIG_MAX_RATIO * max(info.compress_size, 1):
                raise FormatError(
                    f"zip member {name} expands {info.file_size} bytes from "
                    f"{info.compress_size} (more than {CONFIG_MAX_RATIO}:1, which no config "
                    "needs): refused before it is inflated", file=self.path)
            total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise UnsafeInputError(f"zip members inflate to {total} bytes in all (more than "
                                   f"{MAX_TOTAL_BYTES}): refused as a zip bomb", file=self.path)

    def names(self) -> set[str]:
        if self.zip is not None:
            return set(self.zip.namelist())
        return {p.name for p in self.path.iterdir() if p.is_file()}

    def open(self, name: str) -> IO[bytes]:
        if self.zip is not None:
            info = self.zip.getinfo(name)
            if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
                # a RawIOBase over a regular file: its read() never gives None
                return cast(IO[bytes], _StoredMember(self.path, info))
            return self.zip.open(name)
        target = contained_path(self.path, name, what="member", file=self.path)
        check_model_file(target, what="member", relative=name, file=self.path)
        return open(target, "rb")

    def read_json(self, name: str) -> object:
        if self.zip is not None and self.zip.getinfo(name).file_size > MAX_JSON_BYTES:
            raise FormatError(f"{name} is larger than {MAX_JSON_BYTES} bytes", file=self.path)
        with self.open(name) as fh:
            data = fh.read(MAX_JSON_BYTES + 1)
        return parse_json(data, file=self.path, what=name)

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


class _StoredMember(io.RawIOBase):
    """Random access to an uncompressed zip member, straight from the archive file.

    h5py reads the weights file by seeking around; zipfile's own member stream seeks backwards
    by re-reading (and re-checksumming) from the start, which made reading ResNet50's weights
    several times slower than the file read. Keras writes .keras zips uncompressed, so the
    member is a byte window of the archive: reads are confined to that window.
    """

    def __init__(self, archive: Path, info: zipfile.ZipInfo) -> None:
        super().__init__()
        self._fh = open(archive, "rb")  # noqa: SIM115 - closed by close()
        self._fh.seek(info.header_offset)
        header = self._fh.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            self._fh.close()
            raise FormatError(f"zip member {info.filename} has a corrupt local header",
                              file=archive)
        name_len = int.from_bytes(header[26:28], "little")
        extra_len = int.from_bytes(header[28:30], "little")
        self._start = info.header_offset + 30 + name_len + extra_len
        self._size = info.file_size
        if self._start + self._size > os.fstat(self._fh.fileno()).st_size:
            self._fh.close()
            raise FormatError(f"zip member {info.filename} extends past the end of the archive",
                              file=archive)
        self._pos = 0
        # zipfile checks a member's CRC as it streams it; random access cannot, so the member
        # is checked once, in one sequential pass, before anything trusts its bytes
        crc, left = 0, self._size
        self._fh.seek(self._start)
        while left:
            chunk = self._fh.read(min(left, 1 << 24))
            if not chunk:
                break
            crc = zlib.crc32(chunk, crc)
            left -= len(chunk)
        if left or crc != info.CRC:
            self._fh.close()
            raise FormatError(f"zip member {info.filename} fails its CRC check (corrupt archive)",
                              file=archive)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), self._size - self._pos))
        if n == 0:
            return 0
        self._fh.seek(self._start + self._pos)
        got = self._fh.readinto(memoryview(buffer)[:n])
        self._pos += got
        return got

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


def read(path: str | os.PathLike, *, deferred: bool = False,
         scan_values: bool = True) -> LayersModel:
    """Read a ``.keras`` model. ``deferred=True`` leaves the large weights in the (uncompressed)
    weights member as ``deferred.Deferred`` stand-ins, read from the still open member when
    asked, for a caller that looks at them one at a time; the rest is read and checked as
    usual. ``scan_values=False`` leaves the NaN/Inf warning to the caller."""
    path = Path(path)
    archive = _Archive(path)
    try:
        names = archive.names()
        if CONFIG not in names:
            raise FormatError(f"no {CONFIG} in the .keras archive")
        config = archive.read_json(CONFIG)
        metadata = archive.read_json(METADATA) if METADATA in names else {}
        keras_version = metadata.get("keras_version") if isinstance(metadata, dict) else None
        checks.check_layer_names(config, file=path)
        model, dialect = config_to_model(config, keras_version)
        _refuse_unknown_classes(model)
        if WEIGHTS in names:
            _read_weights(archive, model, deferred)
        elif "model.weights.json" in names:
            raise UnsupportedError(
                "sharded .keras weights (model.weights.json) are not supported yet")
        elif any(True for _ in model.all_weights()) or _has_variables(model):
            raise FormatError(f"no {WEIGHTS} in the .keras archive")
        # shape rules: loaded on the first read, not on import
        from ..models.weight_shapes import check as check_weight_shapes

        check_weight_shapes(model)
    except ModelportError as e:
        e.with_file(path)
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
        # a member whose local header or deflate stream is broken (the central directory,
        # checked on open, can be intact while the data is not)
        raise FormatError(f"corrupt zip archive ({str(e)[:160]})", file=path) from None
    except OSError as e:
        raise FormatError(f"cannot read ({e.strerror or e})", file=path) from None
    finally:
        archive.close()
    model.source = SourceInfo("keras-v3", str(path), dialect, keras_version)
    if scan_values and not deferred:  # deferred weights are not here to look at
        checks.warn_non_finite(checks.layers_model_weights(model), file=path)
    return model


def _refuse_unknown_classes(model: LayersModel) -> None:
    """A class modelport does not know cannot be given its weights folder, and every later
    layer's folder name depends on it (``dense_1`` counts the Dense layers before it): refuse
    it by name rather than misplace weights."""
    for layer in model.iter_layers():
        if layer.model is None and not layer.is_operation and \
                layer_variables(layer.class_name, layer.config) is None:
            raise unknown_class(layer.class_name, layer.name)


def _has_variables(model: LayersModel) -> bool:
    for layer in model.iter_layers():
        if layer.model is None and layer_variables(layer.class_name, layer.config):
            return True
    return False


def _stored_size(archive: _Archive) -> int:
    """The bytes the weights member really occupies: compressed in a zip, else the file."""
    if archive.zip is not None:
        return archive.zip.getinfo(WEIGHTS).compress_size
    return os.path.getsize(archive.path / WEIGHTS)


def _read_weights(archive: _Archive, model: LayersModel, deferred: bool = False) -> None:
    h5py = _h5py()
    fh = archive.open(WEIGHTS)
    # Deferred weights are read later from this same open member (its CRC was checked once,
    # on opening); only an uncompressed member allows that random access cheaply.
    keep = deferred and isinstance(fh, _StoredMember)
    f = None
    try:
        try:
            f = h5py.File(fh, "r")
            refuse_links(f)
            check_declared_total(f, _stored_size(archive), file=archive.path)
            layers = f.get("layers")
            if layers is None:
                if _has_variables(model):
                    raise FormatError(f"{WEIGHTS} has no 'layers' group")
                keep = False
                return
            _read_container(layers, model.layers, "layers", _Later(f, archive.path)
                            if keep else None)
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
            raise FormatError(f"corrupt {WEIGHTS} ({str(e).splitlines()[0][:160]})") from None
    except BaseException:
        keep = False
        raise
    finally:
        if not keep:  # else the deferred weights' loaders hold f (and fh) until they are freed
            if f is not None:
                f.close()
            fh.close()


class _Later:
    """A reader of one dataset (by its full name) of the open weights file ``f``, for later.
    It has no ``stream``: the member is read through the zip, so a deferred weight is loaded
    whole when compared."""

    def __init__(self, f, path: Path) -> None:
        self.f, self.path = f, path

    def load(self, name: str, out: np.ndarray | None) -> np.ndarray:
        f, path = self.f, self.path
        try:
            ds = f[name]
            return _values(ds, math.prod(ds.shape or ()), out)
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
            raise FormatError(f"cannot read {WEIGHTS}:{name} again "
                              f"({str(e).splitlines()[0][:160]})", file=path) from None


def _folder_names(layers: list[Layer]) -> list[str]:
    """Folder of each layer; keras.ops nodes are not layers, own nothing and get ""."""
    used: dict[str, int] = {}
    out = []
    for layer in layers:
        if layer.is_operation:
            out.append("")
            continue
        base = snake_case(layer.model.kind) if layer.model is not None else \
            weights_folder(layer.class_name)
        if base in used:
            used[base] += 1
            out.append(f"{base}_{used[base]}")
        else:
            used[base] = 0
            out.append(base)
    return out


def _read_container(group, layers: list[Layer], where: str, reopen=None) -> None:
    h5py = _h5py()
    for layer, folder in zip(layers, _folder_names(layers)):
        if layer.is_operation:
            continue
        sub = group.get(folder)
        if layer.model is not None:
            if sub is None or "layers" not in sub:
                if _has_variables(layer.model):
                    raise FormatError(f"no weights at {where}/{folder}", layer=layer.name)
                continue
            _read_container(sub["layers"], layer.model.layers, f"{where}/{folder}/layers",
                            reopen)
            continue
        expected = layer_variables(layer.class_name, layer.config)
        if expected is None:
            if sub is not None and _count_datasets(sub):
                raise UnsupportedError(
                    f"layer class {layer.class_name!r} is unknown to modelport, so its variables "
                    "in the .keras weights cannot be named", layer=layer.name)
            continue
        if not expected:
            continue
        if sub is None:
            raise FormatError(f"no weights at {where}/{folder}", layer=layer.name)
        _check_owner(sub, layer)
        for prefix, entries in _by_prefix(expected).items():
            vars_path = f"{prefix}/vars" if prefix else "vars"
            vars_group = sub.get(vars_path)
            if not isinstance(vars_group, h5py.Group):
                raise FormatError(f"no {where}/{folder}/{vars_path} in the weights",
                                  layer=layer.name)
            stored = len(vars_group.keys())
            if stored != len(entries):
                want = ", ".join(p for p, _ in entries)
                raise FormatError(
                    f"{where}/{folder}/{vars_path} holds {stored} variables; this "
                    f"{layer.class_name} config implies {len(entries)} ({want})", layer=layer.name)
            for i, (path, trainable) in enumerate(entries):
                ds = vars_group.get(str(i))
                if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "biuf":
                    raise FormatError(f"{where}/{folder}/{vars_path}/{i} is not a numeric dataset",
                                      layer=layer.name)
                layer.weights.append(Weight(path, _dataset_array(ds, reopen), trainable))


def variable_locations(layers: list[Layer], where: str = "layers"
                       ) -> list[tuple[Layer, str, bool, str]]:
    """``(owner, variable path, trainable, location)`` of every variable, where ``location`` is
    its path in a ``.keras`` weights file (``layers/dense_1/vars/0``)."""
    out = []
    for layer, folder in zip(layers, _folder_names(layers)):
        if layer.is_operation:
            continue
        base = f"{where}/{folder}"
        if layer.model is not None:
            out.extend(variable_locations(layer.model.layers, f"{base}/layers"))
            continue
        expected = layer_variables(layer.class_name, layer.config)
        if expected is None:
            raise unknown_class(layer.class_name, layer.name)
        for prefix, entries in _by_prefix(expected).items():
            vars_path = f"{base}/{prefix}/vars" if prefix else f"{base}/vars"
            out.extend((layer, path, t, f"{vars_path}/{i}")
                       for i, (path, t) in enumerate(entries))
    return out


def _check_owner(sub, layer: Layer) -> None:
    vars_group = sub.get("vars")
    owner = vars_group.attrs.get("name") if vars_group is not None else None
    if isinstance(owner, bytes):
        owner = owner.decode("utf8")
    if owner is not None and owner != layer.name:
        raise FormatError(f"the weights folder {sub.name} belongs to layer {owner!r}",
                          layer=layer.name)


def _count_datasets(group) -> int:
    h5py = _h5py()
    count = 0

    def visit(_name, obj):
        nonlocal count
        if isinstance(obj, h5py.Dataset):
            count += 1
    group.visititems(visit)
    return count


def _by_prefix(entries: list[tuple[str, bool]]) -> dict[str, list[tuple[str, bool]]]:
    grouped: dict[str, list[tuple[str, bool]]] = {}
    for path, trainable in entries:
        prefix = path.rsplit("/", 1)[0] if "/" in path else ""
        grouped.setdefault(prefix, []).append((path, trainable))
    return grouped


# --- writing ------------------------------------------------------------------------------------

def write(model: LayersModel, dst: str | os.PathLike, *, force: bool = False) -> Path:
    """Write ``model`` as a Keras 3 ``.keras`` zip (all-or-nothing)."""
    dst = Path(dst)
    config = keras_dialect.model_to_config(model, keras_dialect.KERAS3, modules=True)
    metadata = {"keras_version": WRITTEN_KERAS_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    h5py = _h5py()
    with atomic_output(dst, directory=False, force=force) as tmp:
        weights_tmp = tmp.with_name(tmp.name + ".weights.h5")
        try:
            with h5py.File(weights_tmp, "w") as f:
                layers = f.create_group("layers")
                _write_container(layers, model.layers)
                f.create_group("vars").attrs["name"] = model.name
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
                zf.writestr(METADATA, json.dumps(metadata))
                zf.writestr(CONFIG, json.dumps(config))
                zf.write(weights_tmp, WEIGHTS)
        finally:
            if weights_tmp.exists():
                weights_tmp.unlink()
    return dst


_CELL_NAMES = {"LSTM": "lstm_cell", "GRU": "gru_cell", "SimpleRNN": "simple_rnn_cell"}


def check_writable(model: LayersModel) -> None:
    """The refusals ``write`` would raise placing ``model``'s variables, without writing: a
    layer whose class has no folder name, or whose variables modelport cannot place."""
    _placements(model.layers)


def _placements(layers: list[Layer]) -> None:
    for layer, folder in zip(layers, _folder_names(layers)):
        if layer.is_operation:
            continue
        _placed(layer, folder)
        if layer.model is not None:
            _placements(layer.model.layers)


def _placed(layer: Layer, folder: str) -> list[tuple[str, bool]] | None:
    """Where ``layer``'s variables go in its ``folder`` (``layer_variables``), None for a
    nested model; raises where they cannot be placed, or the class is unknown."""
    if not folder:  # "???" has no snake_case form: Keras itself could not save it
        raise UnsupportedError(f"layer class {layer.class_name!r} has no .keras weights "
                               "folder name (not an identifier)", layer=layer.name)
    if layer.model is not None:
        return None
    expected = layer_variables(layer.class_name, layer.config)
    if expected is None:
        # its variables have no known place; without any it could be written, but not read
        # back: the reader refuses the class (``_refuse_unknown_classes``)
        raise unknown_class(layer.class_name, layer.name)
    by_path = {w.path for w in layer.weights}
    missing = [p for p, _ in expected if p not in by_path]
    if missing or len(by_path) != len(expected):
        raise FormatError(f"variables {sorted(by_path)} do not match what a "
                          f"{layer.class_name} needs ({[p for p, _ in expected]})",
                          layer=layer.name)
    return expected


def _write_container(group, layers: list[Layer]) -> None:
    for layer, folder in zip(layers, _folder_names(layers)):
        if layer.is_operation:
            continue
        expected = _placed(layer, folder)
        sub = group.create_group(folder)
        sub.create_group("vars").attrs["name"] = layer.name
        if layer.model is not None:
            _write_container(sub.create_group("layers"), layer.model.layers)
            continue
        if expected is None:
            continue
        by_path = {w.path: w for w in layer.weights}
        for prefix, entries in _by_prefix(expected).items():
            if prefix:
                parts = prefix.split("/")
                for depth in range(1, len(parts)):
                    ancestor = "/".join(parts[:depth])
                    sub.require_group(ancestor).require_group("vars").attrs["name"] = \
                        _sub_object_name(layer, ancestor)
                target = sub.require_group(prefix)
                vars_group = target.require_group("vars")
                vars_group.attrs["name"] = _sub_object_name(layer, prefix)
            else:
                vars_group = sub["vars"]
            for i, (path, _trainable) in enumerate(entries):
                vars_group.create_dataset(str(i), data=by_path[path].array)


def _sub_object_name(layer: Layer, prefix: str) -> str:
    # Only informational (Keras loads by position): the names Keras itself records.
    last = prefix.rsplit("/", 1)[-1]
    if last == "cell":
        owner = layer.class_name
        if prefix != "cell":
            inner = layer.config.get("layer", {})
            owner = inner.get("class_name", owner)
        return _CELL_NAMES.get(owner, "cell")
    if last in ("forward_layer", "backward_layer"):
        inner = layer.config.get("layer", {}).get("config", {})
        return f"{last.split('_')[0]}_{inner.get('name', 'layer')}"
    if last == "layer":
        return layer.config.get("layer", {}).get("config", {}).get("name", "layer")
    return last
