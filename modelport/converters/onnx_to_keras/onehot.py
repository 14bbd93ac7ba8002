"""``OneHot(Cast(x -> int))`` of a float tensor ``x``: two ``Embedding`` lookups, exact for
every finite ``x``; a Dense reading the one-hot is folded into them.

A one-hot encoding of float indices (tf2onnx writes ``tf.one_hot(tf.cast(x, int32), D)`` this
way; the file-type classifier Magika does it on its byte input) has no Keras layer, but a
lookup in an identity table is one: Keras's ``Embedding`` (and tfjs-layers') casts float indices
to int32 toward zero, as ONNX's ``Cast`` does. The index range of a model input cannot be
proven, so the composition matches ONNX's ``OneHot`` on all of it rather than on ``[0, D)``
only. With ``n = trunc(x)``, ``OneHot`` gives row ``n`` for ``0 <= n < D``, row ``n + D`` for
``-D <= n < 0`` (negative indices count back) and all ``off`` (which must be 0) elsewhere::

    P[min(max(x, 0), D) + (D + 1) * [x <= -1]]  +  N[min(max(-x, 0), D + 1)]

``P`` (``D + 2`` rows) holds row ``n`` for ``n < D``, the ``off`` row ``D`` for every
``x >= D`` and a zero row ``D + 1`` for every ``x <= -1``; ``N``'s row ``m = -n`` is row
``D - m`` for ``1 <= m <= D``, ``off`` for ``m = D + 1`` (every ``x <= -(D + 1)``) and zero
for ``m = 0`` (``-1 < x``: ``trunc`` is odd, so ``-x`` and ``x`` truncate to the same
magnitude). One of the two lookups is always a zero row, so the sum is the row itself, exactly.
The indicator ``[x <= -1]`` is ``-x`` above the largest float32 below 1 (``ReLU``'s threshold,
which compares strictly; tfjs-layers' ``ThresholdedReLU``), clipped to 1, and every index sum
adds a number to a zero: exact. The clips are ReLU layers, the negation and the scaling
Rescalings: all layers tfjs-layers has.

A one-hot encoding is mostly the input of a Dense (``onehot @ W + b``: tf2onnx's Tensordot, or
a MatMul), and a ``[batch, n, D]`` tensor of it is large (Magika's is 1536 x 257 a sample, three
times over in the composition); the Dense is then folded into the tables: row ``n`` becomes
``on * W[n] + b`` rounded as the Dense rounds it, the ``off`` row ``b``.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import optional_input
from .core import PATTERN_OPS, Ctx, attr, pattern
from .dense import _bias_after
from .tensordot import _target_matches

PATTERN_OPS.update({"OneHot"})

STANDARD = ("", "ai.onnx")
INTS = (ir.DataType.INT32, ir.DataType.INT64)
BELOW_ONE = float(np.nextafter(np.float32(1.0), np.float32(0.0)))  # y > it: y >= 1 in float32
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


def tables(depth: int, on: float, kernel: np.ndarray | None = None,
           bias: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``P`` and ``N`` of the module's composition for ``depth`` and ``on``, with a following
    Dense (``kernel`` ``[depth, units]``, ``bias``) folded in where given."""
    weights = np.eye(depth, dtype=np.float32) if kernel is None else \
        np.asarray(kernel, np.float32)
    rows = (np.float32(on) * weights).astype(np.float32)  # what the MatMul rounds to
    units = rows.shape[1]
    off = np.zeros(units, np.float32)
    if bias is not None:
        off = np.asarray(bias, np.float32).reshape(-1)
        rows = (rows + off).astype(np.float32)  # then the bias, rounded once more
    zero = np.zeros((1, units), np.float32)
    pos = np.concatenate([rows, off[None], zero])
    neg = np.concatenate([zero, rows[::-1], off[None]])  # m = 1..D: row D - m
    return pos, neg


_Dense = tuple[list[ir.Node], ir.Node, np.ndarray, "np.ndarray | None"]


def _dense_after(ctx: Ctx, out: ir.Value, depth: int) -> _Dense | None:
    """The Dense reading the one-hot ``out`` alone (tf2onnx's Tensordot ``Reshape([-1, D]) ->
    MatMul -> Reshape``, or a MatMul), with its bias if one follows: the nodes it takes in
    beside the last, the last, the kernel and the bias."""
    # a Shape of the one-hot reads its inferred shape only (tf2onnx's Tensordot reads it so)
    uses = [u for u in out.uses() if not _is(u.node, "Shape")]
    user = uses[0].node if len(uses) == 1 and not out.is_graph_output() else None
    chain: list[ir.Node] = []
    if _is(user, "Reshape") and user is not None and len(out.shape or []) >= 3:
        target = ctx.const(optional_input(user, 1))
        if target is None or [int(t) for t in target.reshape(-1)] != [-1, depth]:
            return None
        chain.append(user)
        merged = user.outputs[0]
        uses = list(merged.uses())
        user = uses[0].node if len(uses) == 1 and not merged.is_graph_output() else None
    if not _is(user, "MatMul") or user is None or user.inputs[0] is not \
            (chain[-1].outputs[0] if chain else out):
        return None
    kernel = ctx.const(optional_input(user, 1))
    if kernel is None or kernel.ndim != 2 or kernel.shape[0] != depth:
        return None
    units = int(kernel.shape[1])
    chain.append(user)
    if len(chain) == 2:
        product = user.outputs[0]
        uses = list(product.uses())
        back = uses[0].node if len(uses) == 1 and not product.is_graph_output() else None
        if back is None or not _is(back, "Reshape") or \
                not _target_matches(out, optional_input(back, 1), units):
            return None
        chain.append(back)
    fused = _bias_after(ctx, chain[-1].outputs[0], units)
    if fused is not None:
        return chain, fused[1], kernel, fused[0]
    return chain[:-1], chain[-1], kernel, None


def _claim(ctx: Ctx, node: ir.Node, cast: ir.Node, x: ir.Value, depth: int, on: float) -> None:
    dense = _dense_after(ctx, node.outputs[0], depth)
    pos_table, neg_table = tables(depth, on, dense[2], dense[3]) if dense is not None else \
        tables(depth, on)
    inner, last = ([cast, node, *dense[0]], dense[1]) if dense is not None else ([cast], node)
    ctx.absorbed.update(id(n) for n in inner)

    def emit(ctx: Ctx, last: ir.Node) -> None:
        def layer(class_name: str, config: dict, inputs, suffix: str, weights=()):
            return ctx.layer(class_name, config, inputs, suffix=suffix, base=node.name,
                             weights=weights)

        def clip(ref, top: float, suffix: str):
            return layer("ReLU", {"max_value": top, "negative_slope": 0.0, "threshold": 0.0},
                         ref, suffix)

        source = ctx.ref(x)
        negated = layer("Rescaling", {"scale": -1.0, "offset": 0.0}, source, "negate")
        if ctx.for_tfjs:  # tfjs-layers' ReLU has no threshold
            below = clip(layer("ThresholdedReLU", {"theta": BELOW_ONE}, negated, "below"), 1.0,
                         "below_clip")
        else:
            below = layer("ReLU", {"max_value": 1.0, "negative_slope": 0.0,
                                   "threshold": BELOW_ONE}, negated, "below")
        zero_row = layer("Rescaling", {"scale": float(depth + 1), "offset": 0.0}, below,
                         "zero_row")
        pos = layer("Add", {}, [clip(source, float(depth), "clip"), zero_row], "index")
        neg = clip(negated, float(depth + 1), "clip_negated")
        units = int(pos_table.shape[1])
        rows = [layer("Embedding", {"input_dim": int(table.shape[0]), "output_dim": units,
                                    "mask_zero": False}, ref, suffix, [("embeddings", table)])
                for ref, table, suffix in ((pos, pos_table, "rows"),
                                           (neg, neg_table, "negative_rows"))]
        ctx.output(ctx.layer("Add", {}, rows))

    ctx.fused[id(last)] = emit
