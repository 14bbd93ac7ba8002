"""TF.js weight manifests and binary shards, shared by layers-models and graph-models.

A manifest is a list of groups ``{"paths": [shard, ...], "weights": [entry, ...]}``. The bytes
of a group's entries are concatenated in order and cut into shards (``group<g>-shard<i>of<n>.bin``,
4,194,304 bytes by default); an entry may straddle shards. Entries are
``{"name", "shape", "dtype"}`` plus, when stored lossily, ``"quantization": {"dtype": "uint8" |
"uint16" | "float16", "min", "scale", "original_dtype"}``. Affine quantization nudges the range
so that 0.0 is exact; dequantization is ``q * scale + min``, computed in double precision and
stored as float32, as TF.js does. Strings are, per element, a 4-byte little-endian length and the
UTF-8 bytes.

Reading streams each entry from its byte range across shard files straight into the entry's
array; nothing is concatenated or copied.
"""

from __future__ import annotations

import fnmatch
import io
import math
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FormatError, UnsupportedError, UsageError
from ..fsutil import check_model_file, contained_path, io_workers
from . import memory
from .checks import check_element_count
from .deferred import DEFER_MIN_BYTES, stand_in

DEFAULT_SHARD_SIZE = 4 * 1024 * 1024
WRITERS = io_workers()  # shards written at once, see _write_shards
DTYPES = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4"), "bool": np.dtype("bool"),
          "uint8": np.dtype("u1"), "uint16": np.dtype("<u2"), "float16": np.dtype("<f2"),
          "complex64": np.dtype("<c8")}
QUANTIZED = ("uint8", "uint16", "float16")
# ``--quantize none``: store weights unquantized, the source's quantization dropped.
UNQUANTIZED = "none"


@dataclass
class StoredWeight:
    """One weight of a manifest: its name, its array (dequantized), and its manifest
    quantization entry when it was stored quantized."""

    name: str
    array: np.ndarray
    quantization: dict | None = None


# --- reading ------------------------------------------------------------------------------------

def read_manifest(folder: Path, manifest: object, *, file: Path,
                  deferred: bool = False) -> list[StoredWeight]:
    """Every weight of every group, dequantized, in manifest order.

    ``deferred=True`` checks everything as usual (paths, shapes, dtypes, byte counts) but does
    not read the unquantized numeric weights of ``DEFER_MIN_BYTES`` or more: their arrays are
    ``deferred.Deferred`` stand-ins whose ``load()`` reads them when needed (a read-back check
    compares them one at a time instead of holding a second copy of the model).
    """
    if not isinstance(manifest, list):
        raise FormatError("weightsManifest is not a list of groups", file=file)
    out: list[StoredWeight] = []
    seen: set[str] = set()
    for g, group in enumerate(manifest):
        if not isinstance(group, dict) or not isinstance(group.get("paths"), list) \
                or not isinstance(group.get("weights"), list):
            raise FormatError(f"weightsManifest group {g} lacks 'paths' or 'weights'", file=file)
        shards = []
        for p in group["paths"]:
            what = f"shard path of group {g}"
            shard = contained_path(folder, p, what=what, file=file)
            if not os.path.lexists(shard):
                raise FormatError(f"shard {shard.name} of group {g} is missing", file=file)
            check_model_file(shard, what=what, relative=p, file=file)
            shards.append(shard)
        with _ShardReader(shards) as reader:
            for entry in group["weights"]:
                weight = _read_entry(reader, entry, file=file, group=g, deferred=deferred)
                if weight.name in seen:
                    raise FormatError(f"weight {weight.name!r} appears twice in the manifest",
                                      file=file)
                seen.add(weight.name)
                out.append(weight)
            if reader.remaining:
                raise FormatError(
                    f"the shards of group {g} hold {reader.total} bytes but the manifest accounts "
                    f"for {reader.total - reader.remaining}: {reader.remaining} bytes are "
                    "unaccounted for (wrong manifest or corrupt shard)", file=file)
    return out


class _ShardReader:
    """Reads consecutive byte ranges over a list of shard files, straight into the caller's
    buffers (no intermediate bytes objects)."""

    def __init__(self, shards: list[Path], sizes: list[int] | None = None) -> None:
        self.shards = shards
        self.sizes = sizes if sizes is not None else [s.stat().st_size for s in shards]
        self.total = sum(self.sizes)
        self.index = 0  # shard holding position ``consumed``
        self.offset = 0  # position inside that shard
        self.handle: io.BufferedReader | None = None
        self.consumed = 0

    @property
    def remaining(self) -> int:
        return self.total - self.consumed

    def __enter__(self) -> _ShardReader:
        return self

    def __exit__(self, *exc) -> None:
        self._close()

    def _close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def skip(self, n: int) -> None:
        """Move ``n`` bytes on without reading them."""
        if n > self.remaining:
            raise EOFError(n)
        self.consumed += n
        self.offset += n
        if self.handle is not None:
            if self.offset < self.sizes[self.index]:
                self.handle.seek(self.offset)
            else:
                self._close()

    def readinto(self, out: memoryview) -> None:
        """Fill ``out`` (a writable byte buffer) with the next ``len(out)`` bytes."""
        n = len(out)
        if n > self.remaining:
            raise EOFError(n)
        done = 0
        while done < n:
            if self.offset >= self.sizes[self.index]:
                self._close()
                self.offset -= self.sizes[self.index]
                self.index += 1
                continue
            if self.handle is None:
                # kept open across reads; _close() ends it when the shard is done
                self.handle = open(self.shards[self.index], "rb")  # noqa: SIM115
                self.handle.seek(self.offset)
            want = min(n - done, self.sizes[self.index] - self.offset)
            got = self.handle.readinto(out[done:done + want])
            if not got:  # the shard shrank since it was measured
                raise EOFError(n)
            done += got
            self.offset += got
            self.consumed += got

    def read(self, n: int) -> bytes:
        if n > self.remaining:  # a declared length (a string's prefix) checked before allocating
            raise EOFError(n)
        buffer = bytearray(n)
        self.readinto(memoryview(buffer))
        return bytes(buffer)

    def read_array(self, shape: tuple[int, ...], dtype: np.dtype,
                   out: np.ndarray | None = None) -> np.ndarray:
        """The next ``prod(shape)`` elements of ``dtype``: memory-mapped (copy-on-write) when
        large and within one shard, else read into ``out`` (C-ordered, of that shape and
        dtype) or a new writable array."""
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes > self.remaining:
            raise EOFError(count)
        if nbytes >= memory.POPULATE_MIN_BYTES:
            mapped = self._mapped(shape, dtype, nbytes)
            if mapped is not None:
                return mapped
        array = memory.empty(shape, dtype) if out is None else out
        self.readinto(array.reshape(-1).view(np.uint8).data)
        return array


    def _mapped(self, shape: tuple[int, ...], dtype: np.dtype, nbytes: int) -> np.ndarray | None:
        """The next ``nbytes`` as a copy-on-write memory map (writes stay private) when they
        lie within one shard; None when they straddle shards."""
        index, offset = self.index, self.offset
        while index < len(self.sizes) and offset >= self.sizes[index]:
            offset -= self.sizes[index]
            index += 1
        if index == len(self.sizes) or offset + nbytes > self.sizes[index]:
            return None
        try:
            array = np.asarray(np.memmap(self.shards[index], dtype=dtype, mode="c",
                                         offset=offset, shape=shape))
        except (OSError, ValueError):
            return None
        self.skip(nbytes)
        return array


def _shape(entry: dict, *, file: Path) -> tuple[int, ...]:
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool)
                                              and d >= 0 for d in shape):
        raise FormatError(f"weight {entry.get('name')!r} has an invalid shape {shape!r}", file=file)
    check_element_count(shape, what=f"weight {entry.get('name')!r}", file=file)
    return tuple(shape)


def _read_entry(reader: _ShardReader, entry: object, *, file: Path, group: int,
                deferred: bool = False) -> StoredWeight:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise FormatError(f"a weight entry of group {group} has no name", file=file)
    name = entry["name"]
    shape = _shape(entry, file=file)
    dtype = entry.get("dtype")
    count = math.prod(shape)
    quant = entry.get("quantization")
    try:
        if dtype == "string":
            if count * 4 > reader.remaining:  # each string needs at least its length prefix
                raise EOFError(count)
            values = [reader.read(int.from_bytes(reader.read(4), "little")) for _ in range(count)]
            array = np.array(values, dtype=object).reshape(shape)
            return StoredWeight(name, array)
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise FormatError(f"weight {name!r} has unsupported dtype {dtype!r}", file=file)
        if quant is None:
            nbytes = count * DTYPES[dtype].itemsize
            if deferred and nbytes >= DEFER_MIN_BYTES:
                return StoredWeight(name, _deferred(reader, shape, DTYPES[dtype]))
            return StoredWeight(name, reader.read_array(shape, DTYPES[dtype]))
        return StoredWeight(name, _dequantize(reader, name, dtype, shape, quant, file), dict(quant))
    except EOFError:
        raise FormatError(
            f"the shards of group {group} end before weight {name!r}: the manifest needs more "
            f"bytes than the {reader.total} stored (truncated shard?)", file=file) from None


def _deferred(reader: _ShardReader, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    shards, sizes, start = reader.shards, reader.sizes, reader.consumed
    nbytes = math.prod(shape) * dtype.itemsize
    reader.skip(nbytes)

    def load(out: np.ndarray | None = None) -> np.ndarray:
        with _ShardReader(shards, sizes) as again:
            again.skip(start)
            return again.read_array(shape, dtype, out)

    def stream(n: int) -> Iterator[memoryview]:
        with _ShardReader(shards, sizes) as again:
            again.skip(start)
            view = memoryview(bytearray(max(1, min(n, nbytes))))
            left = nbytes
            while left:
                k = min(len(view), left)
                again.readinto(view[:k])
                left -= k
                yield view[:k]

    return stand_in(shape, dtype, load, stream)


def _dequantize(reader: _ShardReader, name: str, dtype: str, shape: tuple[int, ...],
                quant: object, file: Path) -> np.ndarray:
    if not isinstance(quant, dict) or not isinstance(quant.get("dtype"), str) \
            or quant["dtype"] not in QUANTIZED:
        raise FormatError(f"weight {name!r} has an unknown quantization {quant!r}", file=file)
    qdtype = quant["dtype"]
    raw = reader.read_array((math.prod(shape),), DTYPES[qdtype])
    if qdtype == "float16":
        if dtype != "float32":
            raise FormatError(f"weight {name!r}: float16 quantization of {dtype}", file=file)
        return raw.astype(np.float32).reshape(shape)
    scale, minimum = quant.get("scale"), quant.get("min")
    if not isinstance(scale, (int, float)) or not isinstance(minimum, (int, float)):
        raise FormatError(f"weight {name!r} is {qdtype}-quantized without scale and min",
                          file=file)
    values = raw.astype(np.float64) * float(scale) + float(minimum)
    if dtype == "int32":
        return np.round(values).astype(np.int32).reshape(shape)
    if dtype != "float32":
        raise FormatError(f"weight {name!r}: {qdtype} quantization of {dtype}", file=file)
    return values.astype(np.float32).reshape(shape)


# --- quantization -------------------------------------------------------------------------------

@dataclass(frozen=True)
class QuantizeRule:
    """One ``--quantize`` rule: a dtype and the fnmatch patterns of the weight names it applies
    to (none: every weight no other rule matched)."""

    dtype: str  # uint8 | uint16 | float16
    patterns: tuple[str, ...] = ()  # empty: every weight no other rule matched


def parse_quantize(specs: Iterable[str]) -> list[QuantizeRule]:
    """``uint8`` (all weights) or ``uint8:dense*/kernel,conv*`` (fnmatch patterns on names);
    ``none`` stores the weights it covers unquantized (a quantized source's included)."""
    rules = []
    for spec in specs:
        dtype, _, patterns = spec.partition(":")
        dtype = dtype.strip()
        if dtype not in QUANTIZED and dtype != UNQUANTIZED:
            raise UnsupportedError(f"unknown quantization {dtype!r}; use uint8, uint16, float16 "
                                   "or none (store unquantized)")
        rules.append(QuantizeRule(dtype, tuple(p for p in patterns.split(",") if p)))
    if sum(1 for r in rules if not r.patterns) > 1:
        raise UnsupportedError("more than one quantization applies to all weights")
    return rules


def choose_quantization(names: list[str], rules: list[QuantizeRule]) -> dict[str, str]:
    """The quantization dtype ``rules`` pick for each of ``names`` (patterns first, then the
    catch-all rule); a pattern that matches nothing, or a name two dtypes claim, is refused."""
    chosen: dict[str, str] = {}
    for rule in rules:
        for pattern in rule.patterns:
            matched = fnmatch.filter(names, pattern)
            if not matched:  # a typo would otherwise quantize nothing without a word
                shown = ", ".join(repr(n) for n in names[:4]) + (
                    f", ... ({len(names)} in all)" if len(names) > 4 else "")
                raise UsageError(f"--quantize pattern {pattern!r} ({rule.dtype}) matches none "
                                 "of the weights the model can have quantized: "
                                 f"{shown or 'it has none'}")
            for name in matched:
                if chosen.get(name, rule.dtype) != rule.dtype:
                    raise UnsupportedError(f"weight {name!r} matches both {chosen[name]} and "
                                           f"{rule.dtype} quantization")
                chosen[name] = rule.dtype
    for rule in rules:
        if not rule.patterns:
            for name in names:
                chosen.setdefault(name, rule.dtype)
    return chosen


def requantize(array: np.ndarray, meta: dict) -> tuple[np.ndarray, dict] | None:
    """``array`` stored as the source stored it: the same quantized dtype and ``min``/``scale``,
    so that a weight read from quantized bytes is written as the very same bytes. None when the
    array is not exactly what those bytes dequantize to (a rewrite changed the values)."""
    qdtype = meta.get("dtype")
    if qdtype not in QUANTIZED:
        return None
    if qdtype == "float16":
        if array.dtype != np.float32:
            return None
        q = array.astype("<f2")
        back = q.astype(np.float32)
        out: dict[str, object] = {"dtype": "float16", "original_dtype": "float32"}
    else:
        scale, minimum = meta.get("scale"), meta.get("min")
        if array.dtype not in (np.float32, np.int32) or not isinstance(scale, (int, float)) \
                or not isinstance(minimum, (int, float)) or not scale > 0:
            return None
        qmax = float(np.iinfo(qdtype).max)
        # float32 rounding of q * scale + min is far below half a step for every q the
        # manifest can hold, so rounding recovers q; the exactness test below proves it
        with np.errstate(all="ignore"):
            steps = np.round((array.astype(np.float64) - float(minimum)) / float(scale))
        if not np.all(np.isfinite(steps)):
            return None
        q = np.clip(steps, 0.0, qmax).astype(DTYPES[qdtype])
        values = q.astype(np.float64) * float(scale) + float(minimum)
        back = np.round(values).astype(np.int32) if array.dtype == np.int32 \
            else values.astype(np.float32)
        out = {"dtype": qdtype, "min": minimum, "scale": scale,
               "original_dtype": str(array.dtype)}
    same = back.reshape(-1).view(np.uint8).tobytes() == \
        np.ascontiguousarray(array).reshape(-1).view(np.uint8).tobytes()
    return (q, out) if same else None


def quantize(array: np.ndarray, qdtype: str) -> tuple[np.ndarray, dict]:
    """TF.js's quantization: affine with a zero-exact nudged range, or a float16 cast."""
    if qdtype == "float16":
        if array.dtype != np.float32:
            raise UnsupportedError(f"float16 quantization applies to float32, not {array.dtype}")
        return array.astype("<f2"), {"dtype": "float16", "original_dtype": "float32"}
    target = DTYPES[qdtype]
    if array.dtype not in (np.float32, np.int32):
        raise UnsupportedError(f"{qdtype} quantization applies to float32/int32, not {array.dtype}")
    lo = float(array.min()) if array.size else 0.0
    hi = float(array.max()) if array.size else 0.0
    if lo == hi:
        q = np.zeros(array.shape, target)
        scale = 1.0
    else:
        qmax = float(np.iinfo(qdtype).max)  # uint8 or uint16, the name of ``target``
        scale = (hi - lo) / qmax
        if lo <= 0.0 <= hi:
            zero = float(np.round((0.0 - lo) / scale))
            lo = -zero * scale
            hi = qmax * scale + lo
        q = np.round((np.clip(array.astype(np.float64), lo, hi) - lo) / scale).astype(target)
    return q, {"dtype": qdtype, "min": lo, "scale": scale, "original_dtype": str(array.dtype)}


# --- writing ------------------------------------------------------------------------------------

def write_group(folder: Path, group_index: int, weights: list[tuple[str, np.ndarray]], *,
                shard_size: int = DEFAULT_SHARD_SIZE,
                quantization: dict[str, str] | None = None,
                kept: dict[str, dict] | None = None) -> dict:
    """Write one group's shards into ``folder``; return its manifest entry.

    ``quantization``: the dtype ``--quantize`` chose per weight name (``none``: unquantized);
    ``kept``: the source's quantization entry per weight name, for the weights ``--quantize``
    does not cover, which are stored as the source stored them (``stored_quantized``)."""
    if shard_size <= 0:
        raise UnsupportedError(f"shard size must be a positive number of bytes, not {shard_size}")
    quantization = quantization or {}
    kept = kept or {}
    entries = []
    blobs: list[tuple[np.ndarray | bytes, int]] = []
    for name, array in weights:
        entry: dict = {"name": name, "shape": [int(d) for d in array.shape]}
        if array.dtype == object:
            data = b"".join(len(b).to_bytes(4, "little") + b for b in
                            (s if isinstance(s, bytes) else str(s).encode("utf8")
                             for s in array.reshape(-1)))
            entry["dtype"] = "string"
            blobs.append((data, len(data)))
        else:
            dtype = tfjs_dtype(name, array)
            entry["dtype"] = dtype
            stored = np.ascontiguousarray(array, DTYPES[dtype])
            if name in quantization:
                if quantization[name] != UNQUANTIZED:
                    stored, meta = quantize(stored, quantization[name])
                    entry["quantization"] = meta
            elif name in kept:
                stored, meta = stored_quantized(stored, kept[name])
                entry["quantization"] = meta
            blobs.append((stored, stored.nbytes))
        entries.append(entry)
    total = sum(n for _, n in blobs)
    count = max(1, math.ceil(total / shard_size))
    paths = [f"group{group_index + 1}-shard{i + 1}of{count}.bin" for i in range(count)]
    _write_shards(folder, paths, shard_size,
                  [blob.reshape(-1).view(np.uint8).data if isinstance(blob, np.ndarray)
                   else memoryview(blob) for blob, _ in blobs])
    return {"paths": paths, "weights": entries}


def stored_quantized(array: np.ndarray, source: dict) -> tuple[np.ndarray, dict]:
    """A weight the source stored quantized, stored so again: its very bytes (``requantize``),
    or, when its values changed on the way, quantized afresh to the same dtype."""
    again = requantize(array, source)
    if again is not None:
        return again
    return quantize(array, str(source["dtype"]))


def tfjs_dtype(name: str, array: np.ndarray) -> str:
    """The TF.js dtype ``array`` is stored as; an UnsupportedError for one TF.js lacks."""
    kind = array.dtype
    if kind == np.float32:
        return "float32"
    if kind == np.int32:
        return "int32"
    if kind == np.bool_:
        return "bool"
    raise UnsupportedError(f"weight {name!r} is {kind}; TF.js stores float32, int32, bool and "
                           "string weights", hint="cast the model to float32 first")


def _write_shards(folder: Path, paths: list[str], shard_size: int,
                  blobs: list[memoryview]) -> None:
    """The blobs, back to back, cut into ``shard_size``-byte files named ``paths``.

    Each shard is a list of slices of the blobs (no bytes copied) and is written by its own
    worker, up to ``WRITERS`` at once: a file write releases the GIL while the kernel copies
    the bytes into the page cache, the bulk of a conversion's time, and that copy runs at the
    speed of several cores."""
    plans: list[list[memoryview]] = [[] for _ in paths]
    shard = used = 0
    for blob in blobs:
        offset = 0
        while offset < len(blob):
            if used == shard_size:
                shard, used = shard + 1, 0
            n = min(shard_size - used, len(blob) - offset)
            plans[shard].append(blob[offset:offset + n])
            offset += n
            used += n

    def write(i: int) -> None:
        with open(folder / paths[i], "wb") as fh:
            fh.writelines(plans[i])

    workers = min(WRITERS, len(paths))
    if workers <= 1:
        for i in range(len(paths)):
            write(i)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="modelport-shards") as pool:
        for _ in pool.map(write, range(len(paths))):
            pass  # re-raises the first failure (the staging folder then goes as a whole)


