"""ONNX models in memory (``onnx_ir.Model``): the opsets modelport writes (one place for the range,
the default and the IR version that goes with an opset), and the weightless proto that ONNX's
checker, shape inference and version converter run on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import FormatError, UnsupportedError

if TYPE_CHECKING:  # both heavy (onnx_ir imports onnx): ``resolve_opset`` serves every route
    import onnx
    import onnx_ir as ir

MIN_OPSET, MAX_OPSET, DEFAULT_OPSET = 13, 21, 17
# ONNX sources at any opset are first converted to this one (onnx's version converter), so the
# op mappings and raisings each handle one set of op signatures.
NORMALIZED_OPSET = 17


def resolve_opset(opset: int | None) -> int:
    """``opset`` checked against what modelport writes (``None``: the default)."""
    opset = DEFAULT_OPSET if opset is None else opset
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UnsupportedError(f"opset {opset} is outside the supported {MIN_OPSET}-{MAX_OPSET}")
    return opset


def ir_version_for(opset: int) -> int:
    """The IR version of the first onnx release that supports ``opset`` (ai.onnx).

    onnx >= 1.23 stamps IR 14 by default, which onnxruntime 1.31 refuses: a model must carry
    the IR version that belongs to its opset.
    """
    import onnx  # heavy: only writers need it

    for _release, ir_version, ai_onnx, *_ in onnx.helper.VERSION_TABLE:
        if ai_onnx >= opset:
            return ir_version
    raise UnsupportedError(f"onnx {onnx.__version__} does not know opset {opset}")


def opset_of(model: ir.Model) -> int:
    """The model's ai.onnx opset."""
    for domain in ("", "ai.onnx"):
        if domain in model.opset_imports:
            return int(model.opset_imports[domain])
    raise UnsupportedError("the model imports no ai.onnx opset")


def skeleton(model: ir.Model, min_bytes: int = 0) -> tuple[onnx.ModelProto, list[ir.Value]]:
    """The model as a proto without its initializers of at least ``min_bytes``, and those
    initializers: everything that needs a proto (checker, shape inference, version conversion)
    runs on it without copying the weights."""
    taken = {name: v for name, v in model.graph.initializers.items()
             if v.const_value is not None and v.const_value.nbytes >= min_bytes}
    import onnx_ir as ir

    for name in taken:
        model.graph.initializers.pop(name)
    try:
        proto = ir.to_proto(model)
    finally:
        for v in taken.values():
            model.graph.register_initializer(v)
    return proto, list(taken.values())


def declare_as_inputs(proto: onnx.ModelProto, values: list[ir.Value]) -> onnx.ModelProto:
    """``proto`` with each of ``values`` declared as a typed graph input (unless it is one
    already, as IR < 4 lists initializers), so checker and inference know their shapes."""
    import onnx

    declared = {v.name for v in proto.graph.input}
    for v in values:
        const = v.const_value
        if v.name is None or const is None:
            raise FormatError(f"initializer {v.name!r} has no name or no value")
        if v.name not in declared:
            proto.graph.input.append(onnx.helper.make_tensor_value_info(
                v.name, int(const.dtype), list(const.shape.numpy())))
    return proto
