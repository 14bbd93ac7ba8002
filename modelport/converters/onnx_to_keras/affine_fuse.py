"""``x * a + b`` with constant ``a`` and ``b`` as one layer.

TF writes an inference ``BatchNormalization`` (and tf2onnx leaves it) as ``Mul`` by a
per-channel scale then ``Add`` of a per-channel shift; raised one op at a time that is two
``BatchNormalization`` layers. The pair, the product read only by the sum, is one
``BatchNormalization`` (gamma a, beta b, mean 0, variance 1, epsilon 0: ``x * a + b`` exactly,
the same two roundings), or one ``Rescaling`` where both are single numbers.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from .activations import affine
from .core import Ctx
from .elementwise import _channel_affine, _per_channel, _scalar


def _split(ctx: Ctx, node: ir.Node) -> tuple[ir.Value, np.ndarray] | None:
    """(the tensor operand, the constant) of a two-operand node with one constant."""
    if len(node.inputs) != 2 or node.domain not in ("", "ai.onnx"):
        return None
    a, b = node.inputs
    ca, cb = ctx.const(a), ctx.const(b)
    if (ca is None) == (cb is None) or a is None or b is None:
        return None
    return (b, ca) if ca is not None else (a, cb)  # type: ignore[return-value]


def scale_then_shift(ctx: Ctx, graph: ir.Graph) -> None:
    """Claim each Mul by a constant whose product only an Add of a constant reads (a pattern,
    registered after every other: those that take in a scale and shift of their own, a
    LayerNormalization's gamma and beta, claim theirs first)."""
    for mul in list(graph):
        if mul.op_type != "Mul" or id(mul) in ctx.absorbed or id(mul) in ctx.fused:
            continue
        scaled = _split(ctx, mul)
        out = mul.outputs[0]
        uses = list(out.uses())
        add = uses[0].node if len(uses) == 1 and not out.is_graph_output() else None
        shifted = _split(ctx, add) if add is not None and add.op_type == "Add" else None
        if scaled is None or shifted is None or add is None or shifted[0] is not out or \
                id(add) in ctx.absorbed or id(add) in ctx.fused:
            continue
        x, a = scaled
        b = shifted[1]
        if x.shape is None or out.shape is None or list(x.shape) != list(out.shape) or \
                add.outputs[0].shape is None or list(add.outputs[0].shape) != list(out.shape):
            continue
        ka, kb = _scalar(a), _scalar(b)
        if ka is not None and kb is not None and a.size == 1 and b.size == 1:
            _claim(ctx, mul, add, x, lambda ctx, ref, ka=ka, kb=kb: affine(ctx, ref, ka, kb))
            continue
        va, vb = _per_channel(ctx, a, x), _per_channel(ctx, b, x)
        if va is None or vb is None:
            continue
        _claim(ctx, mul, add, x,
               lambda ctx, ref, va=va, vb=vb: _channel_affine(ctx, ref, va, vb))


def _claim(ctx: Ctx, mul: ir.Node, add: ir.Node, x: ir.Value, make) -> None:
    ctx.absorbed.add(id(mul))

    def emit(ctx: Ctx, node: ir.Node) -> None:
        ctx.output(make(ctx, ctx.ref(x)))

    ctx.fused[id(add)] = emit
