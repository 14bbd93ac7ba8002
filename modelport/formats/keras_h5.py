"""Keras legacy HDF5 (``model.save("x.h5")``), as written by Keras 2 and by Keras 3.

Layout: root attrs ``model_config`` (JSON), ``keras_version``, ``backend``; group
``model_weights`` with attr ``layer_names`` and one group per top-level layer whose attr
``weight_names`` lists its variables in Keras's legacy order (trainable first; a nested model's
group holds all of its inner variables). Attributes over 64,512 bytes are split into ``name0``,
``name1``, ... . Keras 2 names end in ``:0``; Keras 3 uses variable paths. Keras itself matches
by position, and so does this reader, after checking each name ends with the expected variable.

The writer emits the Keras 3 dialect, which Keras 3 loads whatever generation the source was.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import FormatError, ModelportError, UnsafeInputError, UnsupportedError
from ..fsutil import atomic_output, parse_json
from ..models import Layer, LayersModel, SourceInfo, Weight, keras_dialect
from ..models.keras_variables import layer_variables, legacy_order, same_variable
from . import checks, memory
from .deferred import DEFER_MIN_BYTES, stand_in

HDF5_ATTR_LIMIT = 64512  # Keras's HDF5_OBJECT_HEADER_LIMIT
WRITTEN_KERAS_VERSION = "3.15.1"  # the Keras 3 format these files follow


def _h5py():
    import h5py

    return h5py


def open_h5(path: Path):
    """``path`` opened read-only with h5py; an unreadable file is a FormatError."""
    h5py = _h5py()
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise FormatError(f"not a readable HDF5 file ({_short(e)})", file=path) from None


def _short(e: Exception) -> str:
    text = str(e).split("\n")[0]
    return text[:160]


def check_declared_total(f, stored: int, *, file: str | os.PathLike | None) -> None:
    """Refuse a file whose datasets together declare more than checks.MAX_EXPANSION times the
    bytes it stores (plus SLACK_BYTES): each dataset is checked on its own when read, but many
    datasets stored as fill values only (no bytes at all) each pass that check with its slack,
    and a file of a few hundred kB would make gigabytes of zeros (issue 19). Metadata only."""
    import h5py

    total, alone = 0, False

    def visit(_name: str, obj: object) -> None:
        nonlocal total, alone
        if isinstance(obj, h5py.Dataset) and obj.shape is not None:
            count = 1
            for d in obj.shape:
                count *= int(d)
            declared = count * obj.dtype.itemsize
            total += declared
            # one that fails on its own is named by the per-dataset check, when read
            alone = alone or declared > obj.id.get_storage_size() * checks.MAX_EXPANSION + \
                checks.SLACK_BYTES

    f.visititems(visit)
    if not alone and total > stored * checks.MAX_EXPANSION + checks.SLACK_BYTES:
        raise FormatError(f"its datasets declare {total} bytes in all but the file stores "
                          f"{stored} (corrupt or crafted shapes)", file=file)


def refuse_links(f) -> None:
    """HDF5 soft, external and user-defined links can point anywhere, other files included:
    refuse them. HDF5's own link walk (H5Lvisit) reads link types without opening objects,
    and visits a group reached by several hard links once, so a cycle ends."""
    from h5py import h5l

    kinds = {h5l.TYPE_SOFT: "SoftLink", h5l.TYPE_EXTERNAL: "ExternalLink"}

    def not_hard(name: bytes, info) -> tuple[str, str] | None:
        if info.type == h5l.TYPE_HARD:
            return None
        return name.decode("utf8", "replace"), kinds.get(info.type, "user-defined link")

    found = f.id.links.visit(not_hard, info=True)
    if found is not None:
        name, kind = found
        raise UnsafeInputError(f"HDF5 {kind} at /{name} is refused")


def load_attribute(group, name: str) -> list:
    """A list attribute, joined from Keras's chunks (``name0``, ``name1``, ...) when split."""
    attrs = group.attrs  # h5py makes a new manager on each access
    if name in attrs:
        values = list(attrs[name])
    else:
        values, i = [], 0
        while f"{name}{i}" in attrs:
            values.extend(attrs[f"{name}{i}"])
            i += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def save_attribute(group, name: str, values: list[str]) -> None:
    """Store list attribute ``values`` on ``group``, split into Keras's chunks (``name0``,
    ``name1``, ...) when one would pass HDF5's attribute size limit."""
    data = np.asarray([v.encode("utf8") for v in values])
    if data.size == 0:
        group.attrs[name] = np.asarray([], dtype="S1")
        return
    chunks = 1
    parts = np.array_split(data, chunks)
    while any(p.nbytes > HDF5_ATTR_LIMIT for p in parts):
        chunks += 1
        parts = np.array_split(data, chunks)
    if chunks == 1:
        group.attrs[name] = data
    else:
        for i, part in enumerate(parts):
            group.attrs[f"{name}{i}"] = part


def _text_attr(f, name: str) -> str | None:
    if name not in f.attrs:
        return None
    value = f.attrs[name]
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO":
        value = value.item()
        return value.decode("utf8") if isinstance(value, bytes) else str(value)
    return str(value)


# --- reading ------------------------------------------------------------------------------------

def config_to_model(config: object, keras_version: str | None) -> tuple[LayersModel, str]:
    """The model a Keras config describes, and its dialect; shared by every Keras-config reader.

    ``keras_dialect`` walks the structure Keras writes and trusts its shape; a hostile or
    corrupt config (a string where a layer dict belongs, a number for a list) breaks those
    assumptions in many places. This is the boundary where such breakage becomes a FormatError
    naming what went wrong, instead of a TypeError from deep inside.
    """
    if not isinstance(config, dict):
        raise FormatError(f"the model config is a JSON {type(config).__name__}, not an object")
    try:
        dialect = keras_dialect.detect_dialect(config, keras_version)
        model = keras_dialect.model_from_config(config, dialect)
    except ModelportError:
        raise
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError) as e:
        raise FormatError(f"malformed model config ({type(e).__name__}: {_short(e)})") from None
    for layer in model.iter_layers():
        # names become HDF5 group names and attributes (no NUL there), file names and
        # dictionary keys everywhere downstream
        for what, value in (("class name", layer.class_name), ("name", layer.name)):
            if not isinstance(value, str) or not value or "\x00" in value:
                raise FormatError(f"a layer's {what} is {value!r}, not a non-empty string")
    for inner in [model] + [la.model for la in model.iter_layers() if la.model is not None]:
        if not isinstance(inner.name, str) or "\x00" in inner.name:
            raise FormatError(f"the model's name is {inner.name!r}, not a string without NUL")
    _check_shape_rules(model)
    return model, dialect


def _check_shape_rules(model: LayersModel) -> None:
    """Run shape inference once, as every later stage (inspect, writers, lowering) does, and
    turn a crash on a mistyped config value (``"units": "../x"``, a dict for a shape) into a
    FormatError here, naming the layer. A ModelportError from it (a layer without a shape rule,
    an unknown input shape) is not the reader's business: the stage that needs shapes reports
    it."""
    from ..models.keras_shapes import (
        infer,  # heavier than reading needs, loaded only here
    )

    try:
        infer(model)
    except ModelportError:
        return
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, OverflowError,
            ZeroDivisionError, RecursionError) as e:
        raise FormatError(f"malformed layer config: shape inference fails with "
                          f"{type(e).__name__}: {_short(e)}") from None


def read(path: str | os.PathLike, *, deferred: bool = False,
         scan_values: bool = True) -> LayersModel:
    """Read a Keras ``.h5`` model. ``deferred=True`` leaves the large weights in the file as
    ``deferred.Deferred`` stand-ins (each ``load()`` reopens the file and reads its dataset), for
    a caller that looks at them one at a time; everything else is read and checked as usual.
    ``scan_values=False`` leaves the NaN/Inf warning to the caller (``checks.BackgroundScan``).
    With ``--isolate`` the file is walked in a child process first (``h5_isolate``)."""
    path = Path(path)
    from .h5_isolate import check as isolated_walk

    isolated_walk(path)
    with open_h5(path) as f:
        try:
            refuse_links(f)
            check_declared_total(f, path.stat().st_size, file=path)
            raw = _text_attr(f, "model_config")
            if raw is None:  # what save_weights writes, or not Keras at all: say which
                from .weights_only import h5_refusal

                raise h5_refusal(f, path)
            model_config = parse_json(raw, file=path, what="model_config")
            checks.check_layer_names(model_config, file=path)
            keras_version = _text_attr(f, "keras_version")
            backend = _text_attr(f, "backend")
            model, dialect = config_to_model(model_config, keras_version)
            root = f.get("model_weights", f)
            _read_weights(root, model, _Reopening(path) if deferred else None)
            # shape rules: loaded on the first read, not on import
            from ..models.weight_shapes import check as check_weight_shapes

            check_weight_shapes(model)
        except ModelportError as e:
            e.with_file(path)
            raise
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
            # h5py reports corrupt structures as any of these (RuntimeError: bad B-tree or
            # symbol table nodes)
            raise FormatError(f"corrupt or truncated HDF5 content ({_short(e)})",
                              file=path) from None
    model.source = SourceInfo("keras-h5", str(path), dialect, keras_version, backend)
    if scan_values and not deferred:  # deferred weights are not here to look at
        checks.warn_non_finite(checks.layers_model_weights(model), file=path)
    return model


def expected_variables(layer: Layer, frozen: bool = False
                       ) -> list[tuple[Layer, str, bool]] | None:
    """``(owner, path, trainable)`` in natural order for a top-level layer, nested models
    expanded."""
    if layer.is_operation:
        return []
    if layer.model is not None:
        inner_frozen = frozen or layer.model.config.get("trainable", True) is False
        out: list[tuple[Layer, str, bool]] = []
        for inner in layer.model.layers:
            found = expected_variables(inner, inner_frozen)
            if found is None:
                return None
            out.extend(found)
        return out
    variables = layer_variables(layer.class_name, layer.config)
    if variables is None:
        return None
    return [(layer, p, t and not frozen) for p, t in variables]


class _Reopening:
    """Readers of one dataset (by its full name) of the .h5 file at ``path``, for later: all
    of it at once (``load``), or piece by piece (``stream``, see ``deferred``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, name: str, out: np.ndarray | None) -> np.ndarray:
        with open_h5(self.path) as f:
            try:
                ds = f[name]
                return _values(ds, math.prod(ds.shape or ()), out)
            except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
                raise self._failed(name, e) from None

    def stream(self, name: str, n: int) -> Iterator[memoryview]:
        """The dataset's bytes in pieces of about ``n``: slices of a memory map of the file
        where the dataset is one plain block (no HDF5 call after the map is made, so several
        can be read at once), else rows read through HDF5 into one buffer."""
        with open_h5(self.path) as f:
            try:
                ds = f[name]
                nbytes = math.prod(ds.shape or ()) * ds.dtype.itemsize
                mapped = _mapped(ds, nbytes)
                if mapped is None:
                    yield from _rows(ds, n)
                    return
            except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
                raise self._failed(name, e) from None
        flat = mapped.reshape(-1).view(np.uint8)
        for start in range(0, flat.size, n):
            yield flat[start:start + n].data

    def _failed(self, name: str, e: Exception) -> FormatError:
        return FormatError(f"cannot read dataset {name} again ({_short(e)})", file=self.path)


def _rows(ds, n: int) -> Iterator[memoryview]:
    """A dataset's bytes, read along its first axis about ``n`` bytes at a time into one
    buffer (each piece valid until the next)."""
    if not ds.shape:
        yield np.asarray(ds[()]).reshape(-1).view(np.uint8).data
        return
    row = math.prod(ds.shape[1:]) * ds.dtype.itemsize
    rows = max(1, n // max(row, 1))
    buffer = np.empty((min(rows, ds.shape[0]), *ds.shape[1:]), ds.dtype)
    for start in range(0, ds.shape[0], rows):
        k = min(rows, ds.shape[0] - start)
        ds.read_direct(buffer, source_sel=np.s_[start:start + k], dest_sel=np.s_[0:k])
        yield buffer[:k].reshape(-1).view(np.uint8).data


def _read_weights(root, model: LayersModel,
                  reopen: Reopen | None = None) -> None:
    h5py = _h5py()
    stored = set(load_attribute(root, "layer_names")) if (
        "layer_names" in root.attrs or "layer_names0" in root.attrs) else None
    for layer in model.layers:
        group = root.get(layer.name)
        names = load_attribute(group, "weight_names") if group is not None else []
        expected = expected_variables(layer)
        if expected is None:
            if names:
                _read_unknown(layer, group, names)
            continue
        ordered = legacy_order([((owner, p, t), t) for owner, p, t in expected])
        if len(names) != len(ordered):
            want = ", ".join(p for _, p, _ in ordered) or "none"
            raise FormatError(
                f"the file stores {len(names)} variables for this {layer.class_name} but its "
                f"config implies {len(ordered)} ({want})", layer=layer.name)
        for (owner, var_path, trainable), name in zip(ordered, names):
            leaf = name.split("/")[-1].split(":")[0]
            if not same_variable(leaf, var_path.split("/")[-1]):
                raise FormatError(f"variable {name!r} is stored where {var_path!r} was expected",
                                  layer=layer.name)
            item = group.get(name)
            if not isinstance(item, h5py.Dataset):
                raise FormatError(f"variable {name!r} is listed but not stored", layer=layer.name)
            owner.weights.append(Weight(var_path, _dataset_array(item, reopen), trainable))
    if stored is not None:
        missing = [layer.name for layer in model.layers
                   if layer.name not in stored and any(True for _ in layer.all_weights())]
        if missing:
            raise FormatError(f"layers with variables are absent from layer_names: {missing}")


def _mapped(ds, nbytes: int) -> np.ndarray | None:
    """A copy-on-write memory map of a contiguous dataset's bytes in its file (writes to the
    array stay private), or None where the data is not one plain block of a file h5py opened
    by name (chunked, compact, filtered, in a file object, or past the end of the file)."""
    h5py = _h5py()
    try:
        if ds.dtype.kind not in "biuf" or ds.file.driver != "sec2" or \
                ds.id.get_create_plist().get_layout() != h5py.h5d.CONTIGUOUS:
            return None
        offset = ds.id.get_offset()
        path = Path(ds.file.filename)
        if offset is None or offset + nbytes > path.stat().st_size:
            return None
        return np.asarray(np.memmap(path, dtype=ds.dtype, mode="c", offset=offset,
                                    shape=tuple(ds.shape)))
    except (OSError, ValueError, TypeError, RuntimeError):
        return None


class Reopen(Protocol):
    """Reads a dataset (by its full name) again later: ``load`` reads it whole into ``out`` (or
    a new array); an optional ``stream(name, n)`` yields its bytes piece by piece."""

    def load(self, name: str, out: np.ndarray | None) -> np.ndarray:
        """Dataset ``name`` read whole into ``out`` (or a new array)."""


def _dataset_array(ds, reopen: Reopen | None = None) -> np.ndarray:
    """A numeric dataset's values, its declared size checked against what the file stores
    first: a crafted chunked dataset may declare terabytes and store nothing. With ``reopen``,
    a large dataset is not read: a ``deferred.Deferred`` stand-in reads it through ``reopen``
    when asked."""
    # Each h5py property (dtype, external, name, ...) is a fresh query of the HDF5 library,
    # which a model with hundreds of weights pays hundreds of times: ask each one once.
    name, dtype, shape = ds.name, ds.dtype, ds.shape
    if dtype.kind not in "biuf":
        raise FormatError(f"dataset {name} has dtype {dtype}, not a number type")
    if dtype.kind == "f" and dtype.itemsize > 8:  # no Keras, TF.js or ONNX weight is wider
        raise FormatError(f"dataset {name} has dtype {dtype} (float{dtype.itemsize * 8}), which "
                          "no Keras weight is: store it as float32 or float64")
    if shape is None:  # h5py.Empty: not a zero-size array, no array at all
        raise FormatError(f"dataset {name} holds no value (a null dataspace)")
    # HDF5 lets a dataset keep its bytes in other files: "external storage" (raw files at any
    # path) and virtual datasets (mapped from other HDF5 files). Reading either would read a
    # file the model names, anywhere on the file system.
    dcpl = ds.id.get_create_plist()
    if dcpl.get_external_count():
        raise UnsafeInputError(f"dataset {name} stores its data in external files "
                               f"({ds.external[0][0]!r}...): refused")
    if dcpl.get_layout() == _h5py().h5d.VIRTUAL:
        raise UnsafeInputError(f"dataset {name} is a virtual dataset mapped from other files: "
                               "refused")
    count = checks.check_element_count(shape, what=f"dataset {name}", file=None)
    checks.check_declared_bytes(count * dtype.itemsize, ds.id.get_storage_size(),
                                what=f"dataset {name}", file=None)
    if reopen is not None and count * dtype.itemsize >= DEFER_MIN_BYTES and dtype.isnative:
        source: Reopen = reopen
        stream = getattr(reopen, "stream", None)

        def load(out: np.ndarray | None = None) -> np.ndarray:
            return source.load(name, out)

        return stand_in(shape, dtype, load,
                        (lambda n: stream(name, n)) if stream is not None else None)
    values = _values(ds, count)
    if not values.dtype.isnative:
        # HDF5 keeps the writer's byte order; NumPy computes in either, but ONNX, TF.js and
        # the checks downstream take the machine's own
        values = values.astype(values.dtype.newbyteorder("="))
    return values


def _values(ds, count: int, out: np.ndarray | None = None) -> np.ndarray:
    """The dataset's values. A large one is memory-mapped from the file when it is stored there
    as one contiguous, unfiltered block, else read into ``out`` when given or straight into a
    pre-faulted buffer."""
    dtype = ds.dtype
    nbytes = count * dtype.itemsize
    if out is None and nbytes < memory.POPULATE_MIN_BYTES:
        # h5py's ds[()] parses a selection first: reading the whole dataset through its id is
        # a third of the cost, which a model with hundreds of small weights pays each time.
        small = np.empty(tuple(ds.shape or ()), dtype)
        if count:
            ds.id.read(_h5py().h5s.ALL, _h5py().h5s.ALL, small)
        return small
    if nbytes >= memory.POPULATE_MIN_BYTES:
        mapped = _mapped(ds, nbytes)
        if mapped is not None:
            return mapped
    array = memory.empty(tuple(ds.shape), ds.dtype) if out is None else out
    if count:
        ds.read_direct(array)
    return array


def _read_unknown(layer: Layer, group, names: list[str]) -> None:
    """A class this module does not know: keep its variables under their stored names."""
    prefix = layer.name + "/"
    for name in names:
        short = name.removeprefix(prefix)
        short = short.split(":")[0]
        item = group.get(name)
        if item is None:
            raise FormatError(f"variable {name!r} is listed but not stored", layer=layer.name)
        layer.weights.append(Weight(short, _dataset_array(item)))


# --- writing ------------------------------------------------------------------------------------

def checked_config(model: LayersModel) -> dict:
    """The legacy ``.h5`` model config of ``model``; every refusal of ``write`` is made here
    (``inspect``'s dry run calls it without writing)."""
    operations = [layer for layer in model.iter_layers() if layer.is_operation]
    if operations:
        op = operations[0]
        names = sorted({layer.class_name for layer in operations})
        raise UnsupportedError(
            f"the graph holds keras.ops nodes ({len(operations)}: {', '.join(names)}); Keras "
            "3's legacy .h5 loader cannot rebuild them, not even from its own files",
            layer=op.name, hint="write a .keras file instead (`--to keras`), which Keras 3 "
            "loads with them")
    return keras_dialect.model_to_config(model, keras_dialect.KERAS3)


def write(model: LayersModel, dst: str | os.PathLike, *, force: bool = False) -> Path:
    """Write ``model`` as a Keras 3 legacy ``.h5`` file (all-or-nothing)."""
    dst = Path(dst)
    config = checked_config(model)
    plan = []
    for layer in model.layers:
        expected = expected_variables(layer)
        if expected is None:
            entries = [(layer, w) for w in layer.weights]
        else:
            by_owner: dict[int, dict[str, bool]] = {}
            for owner, path, trainable in expected:
                by_owner.setdefault(id(owner), {})[path] = trainable
            entries = legacy_order([((owner, w), by_owner[id(owner)].get(w.path, True))
                                    for owner, _p, _t in _unique_owners(expected)
                                    for w in owner.weights])
        plan.append((layer, entries))
    h5py = _h5py()
    with atomic_output(dst, directory=False, force=force) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = WRITTEN_KERAS_VERSION
        f.attrs["backend"] = "tensorflow"
        root = f.create_group("model_weights")
        save_attribute(root, "layer_names", [layer.name for layer in model.layers])
        root.attrs["backend"] = "tensorflow"
        root.attrs["keras_version"] = WRITTEN_KERAS_VERSION
        for layer, entries in sorted(plan, key=lambda item: item[0].name):
            g = root.create_group(layer.name)
            names = []
            for owner, weight in entries:
                name = _weight_name(layer, owner, weight)
                names.append(name)
                g.create_dataset(name, data=weight.array)
            save_attribute(g, "weight_names", names)
        root.create_group("top_level_model_weights").attrs["weight_names"] = np.asarray(
            [], dtype="S1")
    return dst


def _unique_owners(expected: list[tuple[Layer, str, bool]]):
    seen = set()
    for owner, p, t in expected:
        if id(owner) not in seen:
            seen.add(id(owner))
            yield owner, p, t


def _weight_name(top: Layer, owner: Layer, weight: Weight) -> str:
    if owner is top:
        return f"{top.name}/{weight.path}"
    return f"{top.name}/{owner.name}/{weight.path}"
