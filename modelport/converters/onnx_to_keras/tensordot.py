"""TensorFlow's ``Tensordot`` as tf2onnx writes it: one Dense over the last axis.

A Keras ``Dense`` on a rank-3+ tensor is ``tf.tensordot(x, kernel, [[r-1], [0]])``, which TF
computes as ``Reshape(x, [-1, K]) -> MatMul(kernel) -> Reshape(Concat(Shape(x)[:-1], [N]))``.
The first Reshape merges the batch into the rows, which no Keras layer does alone; the three
together are exactly Dense on ``x`` (Keras's Dense contracts the last axis, whatever the rank).
The pattern proves the final target symbolically (``shape_values``): the batch of ``x`` (or
-1), ``x``'s other leading dims, then N.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import optional_input
from .core import Ctx, pattern
from .dense import _bias_after, dense
from .shape_values import Dim, symbolic


def _only_use(v: ir.Value) -> ir.Node | None:
    uses = list(v.uses())
    if len(uses) != 1 or v.is_graph_output():
        return None
    return uses[0].node


def _is(node: ir.Node | None, op: str) -> bool:
    return node is not None and node.op_type == op and node.domain in ("", "ai.onnx")


def _target_matches(x: ir.Value, target: ir.Value | None, units: int) -> bool:
    """``target`` is ``x``'s shape with its last axis made ``units``: batch of ``x`` (or -1)
    first, then ``x``'s static dims."""
    value = symbolic(target)
    if value is None or value.scalar or x.shape is None:
        return False
    dims = list(x.shape)
    items = list(value.items)
    if len(items) != len(dims) or items[-1] != units:
        return False
    first = items[0]
    if not (first == -1 or first == Dim(x, 0) or
            (isinstance(dims[0], int) and first == dims[0])):
        return False
    return all(isinstance(d, int) and i == d for i, d in zip(items[1:-1], dims[1:-1]))


@pattern
def tensordot(ctx: Ctx, graph: ir.Graph) -> None:
    """Claim every Reshape -> MatMul(constant) -> Reshape that is a Dense on the last axis."""
    for node in list(graph):
        if not _is(node, "Reshape") or id(node) in ctx.absorbed:
            continue
        x = optional_input(node, 0)
        merged = ctx.const(optional_input(node, 1))
        if x is None or x.shape is None or len(x.shape) < 3 or merged is None:
            continue
        last = x.shape[-1]
        if not isinstance(last, int) or [int(i) for i in merged.reshape(-1)] != [-1, last]:
            continue
        matmul = _only_use(node.outputs[0])
        kernel = ctx.const(optional_input(matmul, 1)) if _is(matmul, "MatMul") and \
            matmul is not None and matmul.inputs[0] is node.outputs[0] else None
        if matmul is None or kernel is None or kernel.ndim != 2 or kernel.shape[0] != last:
            continue
        back = _only_use(matmul.outputs[0])
        units = int(kernel.shape[1])
        if back is None or not _is(back, "Reshape") or \
                not _target_matches(x, optional_input(back, 1), units):
            continue
        _claim(ctx, node, matmul, back, x, kernel)


def _claim(ctx: Ctx, first: ir.Node, matmul: ir.Node, back: ir.Node, x: ir.Value,
           kernel: np.ndarray) -> None:
    fused = _bias_after(ctx, back.outputs[0], int(kernel.shape[1]))
    bias, last = (fused[0], fused[1]) if fused is not None else (None, back)
    inner = [first, matmul] + ([back] if last is not back else [])
    ctx.absorbed.update(id(n) for n in inner)

    def emit(ctx: Ctx, node: ir.Node) -> None:
        dense(ctx, x, kernel, bias, node.outputs[0])

    ctx.fused[id(last)] = emit
