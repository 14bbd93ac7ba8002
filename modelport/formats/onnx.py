"""ONNX files: writing with the IR version that belongs to the opset, checked; reading.

onnx >= 1.23 stamps IR version 14 by default, which onnxruntime 1.31 refuses; a model is
stamped with the IR version of the first onnx release that knew its opset. Models whose
initializers exceed protobuf's 2 GB limit are written with standard external data: one data
file next to the ``.onnx`` (``<name>.onnx.data``), referenced by relative location.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir

from ..errors import FormatError, ModelportError, OutputExistsError, UnsupportedError
from ..fsutil import atomic_output

PROTOBUF_LIMIT = 2 * 1024**3
EXTERNAL_THRESHOLD = 1024  # initializers at least this big go to the data file, when one is used


def ir_version_for(opset: int) -> int:
    """The IR version of the first onnx release that supports ``opset`` (ai.onnx)."""
    for _release, ir_version, ai_onnx, *_ in onnx.helper.VERSION_TABLE:
        if ai_onnx >= opset:
            return ir_version
    raise UnsupportedError(f"onnx {onnx.__version__} does not know opset {opset}")


def initializer_bytes(model: ir.Model) -> int:
    return sum(v.const_value.nbytes for v in model.graph.initializers.values()
               if v.const_value is not None)


def write(model: ir.Model, dst: str | os.PathLike, *, force: bool = False,
          external: bool | None = None) -> Path:
    """Write ``model`` to ``dst`` (all-or-nothing), checked with ``onnx.checker`` (full).

    The check runs on a skeleton without initializer data (initializers become typed graph
    inputs, which shape inference treats the same), and the file is written by streaming each
    initializer's bytes from its array: the weights are never copied into a protobuf message,
    so a conversion holds one copy of them.
    """
    dst = Path(dst)
    if external is None:
        external = initializer_bytes(model) >= PROTOBUF_LIMIT - (64 << 20)
    skeleton, values = _skeleton(model)
    _check(skeleton, values, dst)
    with atomic_output(dst, directory=False, force=force) as tmp:
        if external:
            data_name = f"{dst.name}.data"
            data_final = dst.parent / data_name
            if data_final.exists() and not force:
                raise OutputExistsError("the external data file exists", file=data_final,
                                        hint="pass --force to replace it")
            ir.save(model, tmp, external_data=data_name, size_threshold_bytes=EXTERNAL_THRESHOLD)
            os.replace(tmp.with_name(data_name), data_final)
        else:
            with open(tmp, "wb") as fh:
                _stream(skeleton, values, fh)
    return dst


def _skeleton(model: ir.Model) -> tuple[onnx.ModelProto, list[ir.Value]]:
    """The model as a proto without its initializers, and the initializers."""
    values = [v for v in model.graph.initializers.values() if v.const_value is not None]
    for v in values:
        model.graph.initializers.pop(v.name)
    try:
        proto = ir.to_proto(model)
    finally:
        for v in values:
            model.graph.register_initializer(v)
    return proto, values


def _check(skeleton: onnx.ModelProto, values: list[ir.Value], dst: Path) -> None:
    probe = onnx.ModelProto()
    probe.CopyFrom(skeleton)
    for v in values:
        probe.graph.input.append(onnx.helper.make_tensor_value_info(
            v.name, int(v.const_value.dtype), [int(d) for d in v.const_value.shape]))
    try:
        onnx.checker.check_model(probe, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ModelportError(f"internal error: the ONNX model fails onnx.checker: "
                             f"{str(e).splitlines()[0]}", file=dst) from None


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
    arrays = [np.ascontiguousarray(v.const_value.numpy()) for v in values]
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
                                data_type=int(v.const_value.dtype))
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
        fh.write(memoryview(array).cast("B") if array.size else b"")


def read(path: str | os.PathLike) -> ir.Model:
    """Read an ONNX model; external data must stay inside the model's folder."""
    path = Path(path)
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and onnx's errors share no useful base
        raise FormatError(f"not a readable ONNX model ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:160] if str(e) else 'decode error'})",
                          file=path) from None
    check_external_data(proto, path)
    try:
        return ir.load(path)
    except (OSError, ValueError) as e:
        raise FormatError(f"not a readable ONNX model ({str(e).splitlines()[0][:160]})",
                          file=path) from None


def check_external_data(proto: onnx.ModelProto, path: Path) -> None:
    """Every external-data reference names a regular file inside the model's folder and a
    byte range that file has (CVE-2022-25882, CVE-2024-27318: ``..``, absolute paths and links
    out of the folder are refused)."""
    from ..fsutil import contained_path

    tensors = list(proto.graph.initializer)
    for node in proto.graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                tensors.append(attr.t)
    for tensor in tensors:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        target = contained_path(path.parent, location,
                                what=f"external data location of {tensor.name!r}", file=path)
        if not target.is_file():
            raise FormatError(f"external data {location!r} of {tensor.name!r} is missing",
                              file=path)
        offset = int(info.get("offset", 0) or 0)
        length = info.get("length")
        size = target.stat().st_size
        if offset < 0 or offset > size or (length is not None and offset + int(length) > size):
            raise FormatError(f"external data of {tensor.name!r} claims bytes {offset}.."
                              f"{offset + int(length or 0)} of {location!r}, which has {size}",
                              file=path)
