"""``OneHot(Cast(x -> int))`` of a float tensor ``x``: two ``Embedding`` lookups, exact for
every finite ``x``.

A one-hot encoding of float indices (tf2onnx writes ``tf.one_hot(tf.cast(x, int32), D)`` this
way; the file-type classifier Magika does it on its byte input) has no Keras layer, but a
lookup in an identity table is one: Keras's ``Embedding`` (and tfjs-layers') casts float indices
to int32 toward zero, as ONNX's ``Cast`` does. The index range of a model input cannot be
proven, so the composition matches ONNX's ``OneHot`` on all of it rather than on ``[0, D)``
only. With ``n = trunc(x)``, ``OneHot`` gives row ``n`` for ``0 <= n < D``, row ``n + D`` for
``-D <= n < 0`` (negative indices count back) and all ``off`` elsewhere; here (``on`` the
value written, ``off`` must be 0)::

    P[min(max(x, 0), D)]  +  N[min(max(-x, 0), D + 1)]

``P`` (``D + 1`` rows) holds ``on * e_n`` for ``n < D`` and a zero row ``D`` for every
``x >= D``. Every ``x <= -1`` reads ``P``'s row 0, which ``N`` takes back out: row ``m``
(``m = -n``) is ``on * (e_(D - m) - e_0)`` for ``1 <= m <= D`` and ``-on * e_0`` for
``m = D + 1`` (every ``x <= -(D + 1)``); ``N``'s row 0 is zero (``-1 < x``, ``trunc`` is odd, so
``-x`` and ``x`` truncate to the same magnitude). Each output element is a sum of ``on``,
``-on`` and zeros, which float addition computes exactly. The clips are ReLU layers, the
negation a Rescaling: all layers tfjs-layers has.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import optional_input
from .core import PATTERN_OPS, Ctx, attr, pattern

PATTERN_OPS.update({"OneHot"})

STANDARD = ("", "ai.onnx")
INTS = (ir.DataType.INT32, ir.DataType.INT64)
MAX_DEPTH = 2048  # the tables are (D + 2) x D floats: 16 MiB each at this depth


def _is(node: ir.Node | None, op: str) -> bool:
    return node is not None and node.op_type == op and node.domain in STANDARD


@pattern
def one_hot(ctx: Ctx, graph: ir.Graph) -> None:
    """Claim each ``OneHot`` (last axis, ``off`` 0) of a float tensor cast to integers."""
    for node in list(graph):
        if not _is(node, "OneHot") or id(node) in ctx.absorbed:
            continue
        found = _operands(ctx, node)
        if found is not None:
            _claim(ctx, node, *found)


def _operands(ctx: Ctx, node: ir.Node) -> tuple[ir.Node, ir.Value, int, float] | None:
    """The Cast, its float input, the depth and ``on``, where the composition is exact."""
    cast = optional_input(node, 0)
    cast_node = cast.producer() if cast is not None else None
    depth = ctx.const(optional_input(node, 1))
    values = ctx.const(optional_input(node, 2))
    out = node.outputs[0]
    if cast is None or cast_node is None or not _is(cast_node, "Cast") or \
            cast.dtype not in INTS or cast.is_graph_output() or \
            any(u.node is not node for u in cast.uses()) or depth is None or \
            depth.size != 1 or values is None or values.size != 2:
        return None
    x = optional_input(cast_node, 0)
    rank = len(cast.shape) if cast.shape is not None else None
    if x is None or x.dtype != ir.DataType.FLOAT or out.dtype != ir.DataType.FLOAT or \
            rank is None or rank < 1:
        return None
    axis = int(attr(node, "axis", -1))
    d, off, on = int(depth.reshape(-1)[0]), float(values[0]), float(values[1])
    if axis not in (-1, rank) or not 0 < d <= MAX_DEPTH or off != 0.0 or not np.isfinite(on):
        return None
    return cast_node, x, d, on


def tables(depth: int, on: float) -> tuple[np.ndarray, np.ndarray]:
    """``P`` and ``N`` of the module's composition for ``depth`` and ``on``."""
    pos = np.zeros((depth + 1, depth), np.float32)
    pos[np.arange(depth), np.arange(depth)] = on
    neg = np.zeros((depth + 2, depth), np.float32)
    m = np.arange(1, depth + 1)
    neg[m, depth - m] += on
    neg[1:, 0] -= on
    return pos, neg


def _claim(ctx: Ctx, node: ir.Node, cast: ir.Node, x: ir.Value, depth: int, on: float) -> None:
    ctx.absorbed.add(id(cast))
    pos_table, neg_table = tables(depth, on)

    def emit(ctx: Ctx, node: ir.Node) -> None:
        source = ctx.ref(x)
        pos = ctx.layer("ReLU", {"max_value": float(depth), "negative_slope": 0.0,
                                 "threshold": 0.0}, source, suffix="clip")
        neg = ctx.layer("Rescaling", {"scale": -1.0, "offset": 0.0}, source, suffix="negate")
        neg = ctx.layer("ReLU", {"max_value": float(depth + 1), "negative_slope": 0.0,
                                 "threshold": 0.0}, neg, suffix="clip_negated")
        rows = [ctx.layer("Embedding", {"input_dim": int(table.shape[0]), "output_dim": depth,
                                        "mask_zero": False}, ref,
                          weights=[("embeddings", table)], suffix=suffix)
                for ref, table, suffix in ((pos, pos_table, "rows"),
                                           (neg, neg_table, "negative_rows"))]
        ctx.output(ctx.layer("Add", {}, rows))

    ctx.fused[id(node)] = emit
