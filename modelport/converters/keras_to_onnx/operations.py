"""keras.ops nodes that Keras 3 records in functional graphs: mask computations
(``NotEqual(ids, 0)``, ``Any``), and Python arithmetic on Keras tensors (``x + 3.0``).

Python scalars are weak: they take the tensor operand's dtype, as in Keras.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ...errors import UnsupportedError
from .context import ONNX_DTYPES, OPERATIONS, Builder, Call

_BINARY = {"Add": "Add", "Subtract": "Sub", "Multiply": "Mul", "Divide": "Div",
           "TrueDivide": "Div", "Maximum": "Max", "Minimum": "Min", "Power": "Pow",
           "Equal": "Equal", "Greater": "Greater", "GreaterEqual": "GreaterOrEqual",
           "Less": "Less", "LessEqual": "LessOrEqual", "LogicalAnd": "And", "LogicalOr": "Or",
           "LogicalXor": "Xor"}


def _operands(ctx: Builder, call: Call) -> list[ir.Value]:
    tensors = [a for a in call.args if isinstance(a, ir.Value)]
    if not tensors:
        raise UnsupportedError(f"{call.layer.class_name} has no tensor operand", layer=call.name)
    dtype = call.in_specs[0].dtype
    out = []
    for a in call.args:
        if isinstance(a, ir.Value):
            out.append(a)
        elif isinstance(a, (int, float, bool)):
            out.append(ctx.const(np.asarray(a, dtype=dtype), f"{call.name}/operand"))
        else:
            raise UnsupportedError(f"operand {a!r} of {call.layer.class_name}", layer=call.name)
    return out


@OPERATIONS.register(*_BINARY)
def lower_binary(ctx: Builder, call: Call) -> list[ir.Value]:
    """keras.ops binary arithmetic, comparisons and logic (Add, Divide, Less, LogicalAnd, ...) ->
    the ONNX op of the same meaning; a Python scalar operand becomes a constant in the first input's
    dtype."""
    a, b = _operands(ctx, call)
    return [ctx.op(_BINARY[call.layer.class_name], a, b)]


@OPERATIONS.register("NotEqual")
def lower_not_equal(ctx: Builder, call: Call) -> list[ir.Value]:
    """keras.ops NotEqual -> ONNX Not(Equal)."""
    a, b = _operands(ctx, call)
    return [ctx.op("Not", ctx.op("Equal", a, b))]


@OPERATIONS.register("Negative")
def lower_negative(ctx: Builder, call: Call) -> list[ir.Value]:
    """keras.ops Negative -> ONNX Neg."""
    return [ctx.op("Neg", call.x)]


@OPERATIONS.register("LogicalNot")
def lower_logical_not(ctx: Builder, call: Call) -> list[ir.Value]:
    """keras.ops LogicalNot -> ONNX Not."""
    return [ctx.op("Not", call.x)]


@OPERATIONS.register("Cast")
def lower_cast(ctx: Builder, call: Call) -> list[ir.Value]:
    """keras.ops Cast -> ONNX Cast; a dtype ONNX has no equivalent for is refused."""
    dtype = call.config["dtype"]
    if dtype not in ONNX_DTYPES:
        raise UnsupportedError(f"cast to {dtype}", layer=call.name)
    return [ctx.cast(call.x, dtype)]


@OPERATIONS.register("ConvertToTensor")
def lower_convert_to_tensor(ctx: Builder, call: Call) -> list[ir.Value]:
    """``ops.convert_to_tensor`` (Attention records it on the mask it hands on)."""
    if call.config.get("sparse") or call.config.get("ragged"):
        raise UnsupportedError("a sparse or ragged convert_to_tensor", layer=call.name)
    dtype = call.config.get("dtype")
    if dtype is None or dtype == call.spec.dtype:
        return [ctx.op("Identity", call.x)]
    if dtype not in ONNX_DTYPES:
        raise UnsupportedError(f"convert_to_tensor to {dtype}", layer=call.name)
    return [ctx.cast(call.x, dtype)]


@OPERATIONS.register("Any", "All")
def lower_any_all(ctx: Builder, call: Call) -> list[ir.Value]:
    """keras.ops Any/All -> ReduceMax/ReduceMin of the input as int32, cast back to bool (over every
    axis when ``axis`` is None)."""
    rank = call.rank
    axis = call.config.get("axis")
    axes = list(range(rank)) if axis is None else list(axis) if isinstance(
        axis, (list, tuple)) else [axis]
    reducer = "ReduceMax" if call.layer.class_name == "Any" else "ReduceMin"
    y = ctx.reduce(reducer, ctx.cast(call.x, "int32"), axes,
                   keepdims=bool(call.config.get("keepdims")))
    return [ctx.cast(y, "bool")]


@OPERATIONS.register("ExpandDims")
def lower_expand_dims(ctx: Builder, call: Call) -> list[ir.Value]:
    """keras.ops ExpandDims -> ONNX Unsqueeze at ``axis``."""
    return [ctx.unsqueeze(call.x, [int(call.config["axis"])])]


@OPERATIONS.register("Squeeze")
def lower_squeeze(ctx: Builder, call: Call) -> list[ir.Value]:
    """keras.ops Squeeze -> ONNX Squeeze of ``axis``, or of every static size-1 axis when it is
    None."""
    axis = call.config.get("axis")
    if axis is None:
        axes = [i for i, d in enumerate(call.spec.shape) if d == 1]
    else:
        axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    return [ctx.squeeze(call.x, axes)]


@OPERATIONS.register("ZerosLike", "OnesLike")
def lower_like(ctx: Builder, call: Call) -> list[ir.Value]:
    """keras.ops ZerosLike/OnesLike -> a 0 or 1 constant (``dtype``, else the input's) Expanded to
    the input's shape."""
    value = 0 if call.layer.class_name == "ZerosLike" else 1
    dtype = call.config.get("dtype") or call.spec.dtype
    scalar = ctx.const(np.asarray(value, dtype=dtype), f"{call.name}/fill")
    return [ctx.op("Expand", scalar, ctx.op("Shape", call.x))]


@OPERATIONS.register("Concatenate")
def lower_concatenate(ctx: Builder, call: Call) -> list[ir.Value]:
    """keras.ops Concatenate -> ONNX Concat (default axis 0, as ``ops.concatenate``)."""
    return [ctx.op("Concat", *call.inputs, axis=int(call.config.get("axis", 0)))]
