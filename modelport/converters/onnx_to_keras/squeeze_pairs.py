"""``Unsqueeze(Squeeze(x, A), A)`` is ``x``: the pair is raised as no layer at all.

TF's ``unstack`` / ``stack`` of a batch of one around image pre-processing (MoveNet's
``tf.image.resize`` of ``x[0]``, the resize folded away at its own size) reaches ONNX as a
Squeeze of the batch axis and an Unsqueeze that puts it back. Each alone moves the batch axis,
which no Keras tensor may; together they are the identity: the Squeeze removes size-1 axes A
from a rank-r tensor and the Unsqueeze inserts size-1 axes at the same A of a rank-r result,
so every element keeps its place. The pair is claimed before the rules run (a pattern); a
Squeeze read by anything else than such Unsqueezes stays with its rule.
"""

from __future__ import annotations

from collections.abc import Callable

import onnx_ir as ir

from ..onnx_normalize import optional_input
from .core import Ctx, attr, pattern


def _axes(ctx: Ctx, node: ir.Node, rank: int) -> list[int] | None:
    """The node's axes (input or attribute) as sorted non-negative axes of rank ``rank``."""
    given = optional_input(node, 1)
    if given is not None:
        c = ctx.const(given)
        axes = None if c is None else [int(a) for a in c.reshape(-1)]
    else:
        listed = attr(node, "axes")
        axes = None if listed is None else [int(a) for a in listed]
    return None if axes is None or rank < 1 else sorted({a % rank for a in axes})


@pattern
def squeeze_pairs(ctx: Ctx, graph: ir.Graph) -> None:
    """Claim every Unsqueeze that undoes the Squeeze feeding it."""
    for squeeze in list(graph):
        if squeeze.op_type != "Squeeze" or not squeeze.inputs or squeeze.inputs[0] is None:
            continue
        x, squeezed = squeeze.inputs[0], squeeze.outputs[0]
        if x.shape is None or squeezed.is_graph_output() or id(squeeze) in ctx.absorbed:
            continue
        rank = len(x.shape)
        axes = _axes(ctx, squeeze, rank)
        readers = [use.node for use in squeezed.uses()]
        if not axes or not readers or \
                any(n.op_type != "Unsqueeze" or _axes(ctx, n, rank) != axes or
                    id(n) in ctx.fused for n in readers):
            continue
        ctx.absorbed.add(id(squeeze))
        for unsqueeze in readers:
            ctx.fused[id(unsqueeze)] = _identity_of(x)


def _identity_of(x: ir.Value) -> Callable[[Ctx, ir.Node], None]:
    """The raising of an Unsqueeze that undoes a Squeeze of ``x``: ``x`` itself."""
    def emit(ctx: Ctx, node: ir.Node) -> None:
        ctx.output(ctx.ref(x))
    return emit
