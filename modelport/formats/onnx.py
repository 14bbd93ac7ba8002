"""ONNX files: writing with the IR version that belongs to the opset, checked; reading.

onnx >= 1.23 stamps IR version 14 by default, which onnxruntime 1.31 refuses; a model is
written with the oldest IR version that holds it (that of its opsets, raised by the newest
feature it uses), and without initializers nothing reads (``models.onnx_cleanup``). Models whose
initializers exceed protobuf's 2 GB limit are written with standard external data: one data
file next to the ``.onnx`` (``<name>.onnx.data``), referenced by relative location.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir

from ..errors import FormatError, ModelportError, OutputExistsError
from ..fsutil import atomic_output, check_destination, check_model_file, contained_path
from ..models.onnx_cleanup import finalize
from ..models.onnx_model import declare_as_inputs, skeleton
from . import checks

PROTOBUF_LIMIT = 2 * 1024**3
EXTERNAL_THRESHOLD = 1024  # initializers at least this big go to the data file, when one is used


def initializer_bytes(model: ir.Model) -> int:
    """The bytes of ``model``'s initializer values."""
    return sum(v.const_value.nbytes for v in model.graph.initializers.values()
               if v.const_value is not None)


def write(model: ir.Model, dst: str | os.PathLike, *, force: bool = False,
          external: bool | None = None) -> Path:
    """Write ``model`` to ``dst`` (all-or-nothing), checked with ``onnx.checker`` (full).

    ``model`` is finalized first, in place (``models.onnx_cleanup``): initializers nothing
    reads are dropped and an IR version newer than the model needs is lowered.

    The check runs on a skeleton without initializer data (initializers become typed graph
    inputs, which shape inference treats the same), and the file is written by streaming each
    initializer's bytes from its array: the weights are never copied into a protobuf message,
    so a conversion holds one copy of them.
    """
    dst = Path(dst)
    # every ONNX output: no initializer nothing reads, an IR version onnxruntime reads
    finalize(model)
    if external is None:
        external = initializer_bytes(model) >= PROTOBUF_LIMIT - (64 << 20)
    bare, values = skeleton(model)
    _check(bare, values, dst)
    with atomic_output(dst, directory=False, force=force) as tmp:
        if external:
            data_name = f"{dst.name}.data"
            data_final = dst.parent / data_name
            if os.path.lexists(data_final) and not force:
                raise OutputExistsError("the external data file exists", file=data_final,
                                        hint="pass --force to replace it")
            check_destination(data_final, force)
            # The location written into the model is the data file's final name: tmp has
            # dst's name, in atomic_output's private staging folder, so the pair is written
            # there under final names; the data file moves into place once both are
            # complete, the model last (on leaving).
            ir.save(model, tmp, external_data=data_name, size_threshold_bytes=EXTERNAL_THRESHOLD)
            os.replace(tmp.with_name(data_name), data_final)
        else:
            with open(tmp, "wb") as fh:
                _stream(bare, values, fh)
    return dst


CHECK_DATA_BYTES = 1024


def _data(value: ir.Value) -> ir.TensorProtocol:
    """An initializer's tensor (``skeleton`` hands out only initializers that have one)."""
    if value.const_value is None:
        raise ModelportError(f"internal error: initializer {value.name!r} has no value")
    return value.const_value


def _in_memory(tensor: ir.TensorProtocol) -> ir.TensorProtocol:
    """A small tensor of a source's external data file, read: serialized as it is, it would
    name a data file next to the model being checked, where there is none (an ONNX source
    with external data converted to ONNX failed the check as an internal error)."""
    if isinstance(tensor, ir.ExternalTensor):
        return ir.Tensor(tensor.numpy(), tensor.dtype, name=tensor.name)
    return tensor


def _check(skeleton: onnx.ModelProto, values: list[ir.Value], dst: Path) -> None:
    probe = onnx.ModelProto()
    probe.CopyFrom(skeleton)
    # Small ones (shapes, sizes, axes) go back in as data: inference reads them, and onnx
    # 1.23.1 refuses a Resize whose ``sizes`` is a graph input.
    small = [v for v in values if _data(v).nbytes <= CHECK_DATA_BYTES]
    probe.graph.initializer.extend(ir.serde.serialize_tensor(_in_memory(_data(v)))
                                   for v in small)
    for proto, v in zip(probe.graph.initializer[-len(small):] if small else [], small):
        proto.name = v.name
    declare_as_inputs(probe, [v for v in values if _data(v).nbytes > CHECK_DATA_BYTES])
    try:
        onnx.checker.check_model(probe, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        if "existing shape differ" in str(e) and _checks_without_shapes(probe):
            # a declared shape that ONNX's inference computes otherwise, as the source's
            # exporter wrote it (tf2onnx's align_corners resize 6 -> 10: onnxruntime makes 10
            # cells, inference floors to 9): the graph itself is valid
            return
        raise ModelportError(f"internal error: the ONNX model fails onnx.checker: "
                             f"{str(e).splitlines()[0]}", file=dst) from None


def _checks_without_shapes(probe: onnx.ModelProto) -> bool:
    """Whether ``probe`` passes the full check with its declared intermediate shapes left
    out and its outputs' sizes unknown (element types and ranks kept)."""
    bare = onnx.ModelProto()
    bare.CopyFrom(probe)
    del bare.graph.value_info[:]
    for output in bare.graph.output:
        if output.type.HasField("tensor_type"):
            for dim in output.type.tensor_type.shape.dim:
                dim.Clear()  # the rank kept, every size unknown
    try:
        onnx.checker.check_model(bare, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError):
        return False
    return True


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload_length: int) -> bytes:
    """Key and length of a length-delimited protobuf field."""
    return _varint((number << 3) | 2) + _varint(payload_length)


# Field numbers in onnx.proto: ModelProto.graph = 7, GraphProto.initializer = 5,
# TensorProto.raw_data = 9.
_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW_DATA = 7, 5, 9


def _stream(skeleton: onnx.ModelProto, values: list[ir.Value], fh) -> None:
    """Serialize ``model`` to ``fh`` with initializer bytes written straight from the arrays.

    Protobuf fields may come in any order and a repeated field may be split, so the model is
    written as: the model without its graph, then the graph field, whose payload is the graph
    without initializers followed by one initializer record per weight.
    """
    arrays = [np.require(_data(v).numpy(), requirements="C") for v in values]
    graph_bytes = skeleton.graph.SerializeToString()
    head_proto = onnx.ModelProto()
    head_proto.CopyFrom(skeleton)
    head_proto.ClearField("graph")
    head = head_proto.SerializeToString()
    records = []
    for v, array in zip(values, arrays):
        array = array if array.dtype.byteorder in ("<", "=", "|") else array.astype(
            array.dtype.newbyteorder("<"))
        meta = onnx.TensorProto(name=v.name, dims=list(array.shape),
                                data_type=int(_data(v).dtype))
        meta_bytes = meta.SerializeToString()
        raw = _field(_TENSOR_RAW_DATA, array.nbytes)
        tensor_len = len(meta_bytes) + len(raw) + array.nbytes
        records.append((_field(_GRAPH_INITIALIZER, tensor_len) + meta_bytes + raw, array))
    graph_len = len(graph_bytes) + sum(len(prefix) + a.nbytes for prefix, a in records)
    fh.write(head)
    fh.write(_field(_MODEL_GRAPH, graph_len))
    fh.write(graph_bytes)
    for prefix, array in records:
        fh.write(prefix)
        fh.write(array.data.cast("B") if array.size else b"")


def read(path: str | os.PathLike, *, scan_values: bool = True) -> ir.Model:
    """Read an ONNX model, checked before anything is trusted: external data stays inside the
    model's folder, every initializer's declared shape matches the bytes stored for it, and the
    graph passes ``onnx.checker`` (known ops, inputs defined before use, so no cycles and no
    dangling inputs, each value produced once).

    The file is parsed once, and without its weights: the protobuf is scanned for the graph's
    initializers, whose ``raw_data`` (at least ``MAP_THRESHOLD`` bytes of a fixed-size type)
    is left out of the parsed message and memory-mapped (copy-on-write) instead. The checker
    sees those initializers as typed graph inputs, the way ``write`` checks its skeleton; the
    byte counts are checked against the declared shapes all the same. A file the scan does not
    understand (text formats, groups, a graph split over several fields, ...) is parsed whole.

    ``scan_values=False`` skips the NaN/Inf warning, the one step that reads every weight: for
    a file modelport has just written and only hands to onnxruntime, reading it would map a
    second copy of the weights into memory; a conversion scans its source on a worker thread
    instead (``checks.BackgroundScan``).
    """
    path = Path(path)
    mapped = _scan(path)
    if mapped is not None:
        skeleton_bytes, stripped, whole = mapped
        try:
            proto = onnx.ModelProto.FromString(skeleton_bytes)
        except Exception:  # noqa: BLE001 - the whole parse below names the problem
            mapped = None
        else:
            del skeleton_bytes
            inits = proto.graph.initializer
            names = collections.Counter(t.name for t in inits)
            if any(i >= len(inits) or not inits[i].name or names[inits[i].name] != 1
                   for i in stripped):
                mapped = None  # nameless or duplicate initializers: checked the ordinary way
    if mapped is None:
        stripped, whole = {}, np.empty(0, np.uint8)  # nothing stripped: nothing to map
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and onnx's errors share no useful base
            raise FormatError(f"not a readable ONNX model ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:160] if str(e) else 'decode error'})",
                              file=path) from None
    check_text(proto, path)
    check_external_data(proto, path)
    check_initializers(proto, path, raw_lengths={i: n for i, (_, n) in stripped.items()})
    try:
        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in _all_tensors(proto.graph)):
            # by path, not by proto: the checker resolves external data next to the model
            # (already vetted above), where given a proto it would look in the working
            # directory. The weights are in the data file, so the .onnx itself is small.
            onnx.checker.check_model(str(path))
        else:
            onnx.checker.check_model(_probe(proto, stripped))
    except (onnx.checker.ValidationError, ValueError) as e:
        raise FormatError(f"invalid ONNX model: {_first_line(e)}", file=path) from None
    try:
        model = ir.serde.deserialize_model(proto)
        # relative external-data locations resolve next to the model (as ir.load does)
        ir.external_data.set_base_dir(model.graph, os.path.dirname(path))
        for i, (offset, length) in stripped.items():
            tensor = proto.graph.initializer[i]
            dtype = ir.DataType(tensor.data_type)
            array = whole[offset:offset + length].view(dtype.numpy()).reshape(tuple(tensor.dims))
            model.graph.initializers[tensor.name].const_value = ir.Tensor(
                array, dtype, name=tensor.name, doc_string=tensor.doc_string or None)
    except Exception as e:  # noqa: BLE001 - onnx_ir raises its own SerdeError, ValueError, OSError, ...
        raise FormatError(f"not a readable ONNX model ({type(e).__name__}: {_first_line(e)})",
                          file=path) from None
    if scan_values:
        checks.warn_non_finite(float_initializers(model), file=path)
    return model


def float_initializers(model: ir.Model) -> list[tuple[str, np.ndarray | ir.TensorProtocol]]:
    """(``initializer 'w'``, values) of every floating-point initializer: what the NaN/Inf
    scan looks at, safe to hand to another thread.

    Values come as arrays, obtained here, on the caller's thread: an external-data tensor
    maps its file on first use and asserts it does so once, so two threads asking at the same
    time break it (a conversion and its background scan did). Only a tensor left in the parsed
    protobuf stays a tensor: it decodes a new array on every use, so the scan makes each when
    it comes to it, and the list costs no memory of its own."""
    named: list[tuple[str, np.ndarray | ir.TensorProtocol]] = []
    for v in model.graph.initializers.values():
        value = v.const_value
        if value is None or not value.dtype.is_floating_point():
            continue
        named.append((f"initializer {v.name!r}",
                      value if isinstance(value, ir.serde.TensorProtoTensor) else value.numpy()))
    return named


def invalid_reason(path: str | os.PathLike) -> str | None:
    """Why ONNX's full check (the checker with strict shape inference) refuses the model at
    ``path``, or None when it passes or cannot be run. Reading runs the checker without shape
    inference, which a valid model's exporter may leave incomplete; this is asked only after a
    conversion failed unexpectedly, to tell a model that breaks ONNX's own rules (a Conv
    weight of the wrong rank, pads not two per axis) from a modelport bug."""
    path = Path(path)
    mapped = _scan(path)
    try:
        if mapped is not None:
            proto = _probe(onnx.ModelProto.FromString(mapped[0]), mapped[1])
        else:
            proto = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        return _first_line(e)
    except Exception:  # noqa: BLE001 - no verdict: the caller reports its own error
        return None
    return None


def _probe(proto: onnx.ModelProto, stripped: dict[int, tuple[int, int]]) -> onnx.ModelProto:
    """What ``onnx.checker`` sees: ``proto`` with the initializers whose bytes were left out
    as typed graph inputs (an input of the same name, as IR < 4 lists them, stays as it is)."""
    if not stripped:
        return proto
    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    inits = list(probe.graph.initializer)
    inputs = {v.name for v in probe.graph.input}
    del probe.graph.initializer[:]
    probe.graph.initializer.extend(t for i, t in enumerate(inits) if i not in stripped)
    for i in sorted(stripped):
        t = inits[i]
        if t.name not in inputs:
            probe.graph.input.append(onnx.helper.make_tensor_value_info(
                t.name, t.data_type, list(t.dims)))
    return probe


# --- scanning a binary ONNX file for its initializers' bytes ------------------------------------

MAP_THRESHOLD = 4096  # raw_data at least this big is memory-mapped rather than parsed
# Fixed-size types NumPy (or ml_dtypes) views as they are stored: FLOAT, UINT8, INT8, UINT16,
# INT16, INT32, INT64, BOOL, FLOAT16, DOUBLE, UINT32, UINT64, BFLOAT16.
_MAPPABLE = {1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 16}
_TENSOR_DATA_TYPE, _TENSOR_SEGMENT, _TENSOR_DATA_LOCATION = 2, 3, 14


class _Unscannable(Exception):
    pass


def _read_varint(buf, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Unscannable
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf, start: int, end: int):
    """(field number, wire type, field start, payload start, field end) for each field."""
    pos = start
    while pos < end:
        key, p = _read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Unscannable
        if wire == 0:
            _, q = _read_varint(buf, p, end)
        elif wire == 1:
            q = p + 8
        elif wire == 5:
            q = p + 4
        elif wire == 2:
            length, p = _read_varint(buf, p, end)
            q = p + length
        else:  # groups: let protobuf itself deal with them
            raise _Unscannable
        if q > end:
            raise _Unscannable
        yield number, wire, pos, p, q
        pos = q


def _tensor_skeleton(buf, start: int, end: int) -> tuple[bytes, int, int] | None:
    """The TensorProto at ``buf[start:end]`` without its raw_data, and where that is; None if
    the tensor is not one to map (small, external, segmented, an unusual type or layout)."""
    raw = None
    data_type = location = 0
    kept = []
    for number, wire, fs, ps, fe in _fields(buf, start, end):
        if number == _TENSOR_RAW_DATA and wire == 2:
            if raw is not None:
                return None
            raw = (ps, fe - ps)
            continue
        if number == _TENSOR_SEGMENT:
            return None
        if number in (_TENSOR_DATA_TYPE, _TENSOR_DATA_LOCATION):
            if wire != 0:
                return None
            value = _read_varint(buf, ps, fe)[0]
            if number == _TENSOR_DATA_TYPE:
                data_type = value
            else:
                location = value
        kept.append(buf[fs:fe])
    if raw is None or raw[1] < MAP_THRESHOLD or data_type not in _MAPPABLE or location != 0:
        return None
    return b"".join(kept), raw[0], raw[1]


def _scan(path: Path) -> tuple[bytes, dict[int, tuple[int, int]], np.ndarray] | None:
    """A binary ONNX file's bytes without the large initializers' raw_data, those initializers
    (index in graph.initializer -> offset and length of their bytes in the file), and the file
    mapped copy-on-write; None where the file is better parsed whole."""
    import mmap
    import sys

    if path.suffix != ".onnx" or sys.byteorder != "little":
        return None
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                return None
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                out = bytearray()
                stripped: dict[int, tuple[int, int]] = {}
                graphs = 0
                for number, wire, fs, ps, fe in _fields(buf, 0, size):
                    if number != _MODEL_GRAPH or wire != 2:
                        out += buf[fs:fe]
                        continue
                    graphs += 1
                    if graphs > 1:
                        return None  # protobuf merges a repeated graph field: parse it whole
                    graph = bytearray()
                    index = 0
                    for n, w, gfs, gps, gfe in _fields(buf, ps, fe):
                        tensor = (_tensor_skeleton(buf, gps, gfe)
                                  if n == _GRAPH_INITIALIZER and w == 2 else None)
                        if tensor is None:
                            graph += buf[gfs:gfe]
                        else:
                            body, offset, length = tensor
                            graph += _field(_GRAPH_INITIALIZER, len(body))
                            graph += body
                            stripped[index] = (offset, length)
                        if n == _GRAPH_INITIALIZER and w == 2:
                            index += 1
                    out += _field(_MODEL_GRAPH, len(graph))
                    out += graph
            if not stripped:
                return None
            whole = np.asarray(np.memmap(fh, dtype=np.uint8, mode="c", shape=(size,)))
    except (_Unscannable, OSError, ValueError):
        return None
    return bytes(out), stripped, whole


def check_text(proto: onnx.ModelProto, path: Path) -> None:
    """Every string field (names, op types, domains, attribute strings) is UTF-8 text.

    ONNX's schema is proto2, whose parser keeps a string field that is not valid UTF-8 as
    bytes; the checker passes it, and the first writer (onnx_ir, json, HDF5) then fails on a
    type it never expected. Weights are ``bytes`` fields and are not looked at.
    """
    stack: list = [proto]
    while stack:
        msg = stack.pop()
        for name, is_message, repeated in _text_fields(msg.DESCRIPTOR):
            if is_message:
                if repeated:
                    stack.extend(getattr(msg, name))
                elif msg.HasField(name):
                    stack.append(getattr(msg, name))
                continue
            for text in (getattr(msg, name) if repeated else (getattr(msg, name),)):
                if isinstance(text, bytes):
                    raise FormatError(f"{msg.DESCRIPTOR.name}.{name} holds {text[:40]!r}, "
                                      "which is not UTF-8 text", file=path)


_TEXT_FIELDS: dict = {}


def _text_fields(descriptor) -> list[tuple[str, bool, bool]]:
    """(name, is a message, is repeated) of a message type's string and message fields; bytes
    and number fields (the weights) are never touched, so never copied out of the parse."""
    found = _TEXT_FIELDS.get(descriptor.full_name)
    if found is None:
        from google.protobuf.descriptor import FieldDescriptor as Field

        found = []
        for field in descriptor.fields:
            if field.type not in (Field.TYPE_MESSAGE, Field.TYPE_STRING):
                continue
            # protobuf 7 dropped ``label``; ``is_repeated`` is younger than onnx's oldest pin
            repeated = (field.is_repeated if hasattr(field, "is_repeated")
                        else field.label == Field.LABEL_REPEATED)
            found.append((field.name, field.type == Field.TYPE_MESSAGE, repeated))
        _TEXT_FIELDS[descriptor.full_name] = found
    return found


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


# Bytes per element of the fixed-size tensor types, by TensorProto.DataType (sub-byte types are
# packed: their byte count is computed from the element count below).
_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8,
             14: 8, 15: 16, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1, 24: 1}
# Sub-byte types, packed: bits per element (UINT4, INT4, FLOAT4E2M1, UINT2, INT2, FLOAT6E2M3,
# FLOAT6E3M2).
_PACKED_BITS = {21: 4, 22: 4, 23: 4, 25: 2, 26: 2, 27: 6, 28: 6}


# Types both onnx and onnx_ir know (onnx_ir cannot hold a tensor of any other).
_KNOWN_TYPES = (frozenset(onnx.TensorProto.DataType.values())
                & frozenset(int(t) for t in ir.DataType))


def _stored_bytes(data_type: int, count: int) -> int | None:
    if data_type in _ITEMSIZE:
        return count * _ITEMSIZE[data_type]
    if data_type in _PACKED_BITS:
        return -(-count * _PACKED_BITS[data_type] // 8)
    return None


def check_initializers(proto: onnx.ModelProto, path: Path,
                       raw_lengths: dict[int, int] | None = None) -> None:
    """Each initializer's declared shape fits what is stored for it, before anything is
    allocated: a tensor declaring 2**62 elements over 48 bytes is refused here, not met later
    as a MemoryError or a shape-inference failure.

    ``raw_lengths``: index in ``proto.graph.initializer`` -> length of raw bytes that were left
    out of the parsed message (``read`` maps them from the file instead)."""
    raw_lengths = raw_lengths or {}
    # _all_tensors lists the main graph's initializers first, in order
    for index, tensor in enumerate(_all_tensors(proto.graph)):
        what = f"initializer {tensor.name!r}"
        count = checks.check_element_count(tensor.dims, what=what, file=path)
        if tensor.data_type in (onnx.TensorProto.UNDEFINED, onnx.TensorProto.STRING):
            if tensor.data_type == onnx.TensorProto.UNDEFINED or tensor.HasField("raw_data"):
                raise FormatError(f"{what} has data type "
                                  f"{onnx.TensorProto.DataType.Name(tensor.data_type)} with "
                                  f"{'raw bytes' if tensor.HasField('raw_data') else 'no type'}",
                                  file=path)
            if len(tensor.string_data) != count:
                raise FormatError(f"{what} declares {count} strings and stores "
                                  f"{len(tensor.string_data)}", file=path)
            continue
        if tensor.data_type not in _KNOWN_TYPES:
            raise FormatError(f"{what} has data type {tensor.data_type}, which is not an ONNX "
                              f"tensor type (onnx {onnx.__version__}, onnx_ir "
                              f"{ir.__version__})", file=path)
        expected = _stored_bytes(tensor.data_type, count)
        if expected is None:
            continue  # a type newer than this table: the element count check above still held
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            info = {e.key: e.value for e in tensor.external_data}
            length = info.get("length")
            if length is not None and int(length) != expected:
                raise FormatError(f"{what} declares {count} elements ({expected} bytes) but its "
                                  f"external data holds {length} bytes", file=path)
        elif index in raw_lengths or tensor.HasField("raw_data"):
            stored = raw_lengths.get(index, len(tensor.raw_data))
            if stored != expected:
                raise FormatError(f"{what} declares {count} elements ({expected} bytes) but "
                                  f"stores {stored} bytes", file=path)
        else:
            stored = max(len(tensor.float_data), len(tensor.int32_data), len(tensor.int64_data),
                         len(tensor.double_data), len(tensor.uint64_data))
            # complex types store two numbers per element, sub-byte/16-bit types pack in int32
            if stored < count and not (tensor.data_type in (14, 15) and stored == 2 * count):
                raise FormatError(f"{what} declares {count} elements but stores {stored}",
                                  file=path)


def _all_tensors(graph: onnx.GraphProto | onnx.ModelProto) -> list[onnx.TensorProto]:
    """Every tensor a graph holds: initializers (sparse ones too), tensor and sparse-tensor
    attributes, and the same in every subgraph (If/Loop/Scan bodies), which can reference
    external data too; of a model, also those of its functions and training_info graphs."""
    out: list[onnx.TensorProto] = []
    bodies: list = [graph]
    if isinstance(graph, onnx.ModelProto):
        bodies = [graph.graph, *graph.functions]
        for info in graph.training_info:
            bodies += [info.initialization, info.algorithm]
    while bodies:
        g = bodies.pop()
        out.extend(getattr(g, "initializer", ()))
        for sparse in getattr(g, "sparse_initializer", ()):
            out.extend((sparse.values, sparse.indices))
        for node in g.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    out.append(attr.t)
                out.extend(attr.tensors)
                sparse_attrs = [attr.sparse_tensor] if attr.HasField("sparse_tensor") else []
                for sparse in [*sparse_attrs, *attr.sparse_tensors]:
                    out.extend((sparse.values, sparse.indices))
                if attr.HasField("g"):
                    bodies.append(attr.g)
                bodies.extend(attr.graphs)
    return out


def check_external_data(proto: onnx.ModelProto, path: Path) -> None:
    """Every external-data reference names a regular, singly-linked file inside the model's
    folder and a byte range that file has (CVE-2022-25882, CVE-2024-27318: ``..``, absolute
    paths, and symbolic or hard links out of the folder are refused)."""
    for tensor in _all_tensors(proto):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        what = f"external data location of {tensor.name!r}"
        target = contained_path(path.parent, location, what=what, file=path)
        if not os.path.lexists(target):
            raise FormatError(f"external data {location!r} of {tensor.name!r} is missing",
                              file=path)
        size = check_model_file(target, what=what, relative=location, file=path).st_size
        try:
            offset = int(info.get("offset", 0) or 0)
            length = int(info["length"]) if info.get("length") else None
        except ValueError:
            raise FormatError(f"external data of {tensor.name!r} has a non-numeric offset or "
                              "length", file=path) from None
        if offset < 0 or offset > size or (length is not None and
                                           (length < 0 or offset + length > size)):
            raise FormatError(f"external data of {tensor.name!r} claims bytes {offset}.."
                              f"{offset + (length or 0)} of {location!r}, which has {size}",
                              file=path)
