"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot."""

from __future__ import annotations

import onnx_ir as ir

from ...errors import UnsupportedError
from .context import LOWERINGS, Builder, Call

_VARIADIC = {"Add": "Sum", "Maximum": "Max", "Minimum": "Min", "Average": "Mean"}


@LOWERINGS.register(*_VARIADIC, mask="propagate")
def lower_variadic(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Add, Maximum, Minimum, Average -> ONNX Sum, Max, Min, Mean of all inputs (Add of two
    inputs as ONNX Add)."""
    op = _VARIADIC[call.layer.class_name]
    if len(call.inputs) == 2 and op == "Sum":
        return [ctx.op("Add", *call.inputs)]
    return [ctx.op(op, *call.inputs)]


@LOWERINGS.register("Multiply", mask="propagate")
def lower_multiply(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Multiply -> a chain of ONNX Mul."""
    y = call.inputs[0]
    for x in call.inputs[1:]:
        y = ctx.op("Mul", y, x)
    return [y]


@LOWERINGS.register("Subtract", mask="propagate")
def lower_subtract(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Subtract -> ONNX Sub; anything but two inputs is refused."""
    if len(call.inputs) != 2:
        raise UnsupportedError(f"Subtract takes 2 inputs, got {len(call.inputs)}",
                               layer=call.name)
    return [ctx.op("Sub", *call.inputs)]


@LOWERINGS.register("Concatenate")
def lower_concatenate(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Concatenate -> ONNX Concat on the same axis (default -1)."""
    return [ctx.op("Concat", *call.inputs, axis=int(call.config.get("axis", -1)))]


@LOWERINGS.register("Dot")
def lower_dot(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Dot (batch_dot) -> ReduceSum of Mul for two rank-2 inputs, MatMul for two rank-3 ones
    (a Transpose moves a contracted axis into place); other ranks are refused. ``normalize``
    L2-normalizes both inputs first."""
    a, b = call.inputs
    ra, rb = (len(s.shape) for s in call.in_specs)
    axes = call.config.get("axes", -1)
    axes = list(axes) if isinstance(axes, (list, tuple)) else [axes, axes]
    ax, bx = (ax % r for ax, r in zip(axes, (ra, rb)))
    if call.config.get("normalize"):
        a, b = _l2_normalize(ctx, a, ax), _l2_normalize(ctx, b, bx)
    # Keras batch_dot: contract a's axis ax with b's axis bx, keep the batch axis.
    if ra == 2 and rb == 2:
        return [ctx.reduce("ReduceSum", ctx.op("Mul", a, b), [1], keepdims=True)]
    if ra == 3 and rb == 3:
        a = a if ax == 2 else ctx.transpose(a, [0, 2, 1])
        b = b if bx == 1 else ctx.transpose(b, [0, 2, 1])
        return [ctx.op("MatMul", a, b)]
    raise UnsupportedError(f"Dot on ranks {ra} and {rb} is not supported yet", layer=call.name)


def _l2_normalize(ctx: Builder, x: ir.Value, axis: int) -> ir.Value:
    # Keras: x / sqrt(max(sum(x^2), 1e-12))
    ss = ctx.reduce("ReduceSum", ctx.op("Mul", x, x), [axis], keepdims=True)
    return ctx.op("Div", x, ctx.op("Sqrt", ctx.op("Max", ss, ctx.scalar(1e-12))))
