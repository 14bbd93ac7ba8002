"""tf2onnx's other spelling of a Tensordot's row merge, rewritten as the one ``tensordot`` claims.

TF computes a Dense on a rank-3+ tensor as ``Reshape(x, [-1, K]) -> MatMul -> Reshape``
(``tensordot.py``). tf2onnx's optimizer sometimes writes the first Reshape as
``Reshape(x, [1, -1, K]) -> Squeeze(axis 0)`` (``K`` also as ``0``, "copy the input's dim", when
that dim is the last); the two give the same ``[rows, K]`` matrix for every ``x`` whose last
axis is ``K``. The pair is replaced by ``Reshape(x, [-1, K])`` before raising, so the
Tensordot pattern sees the form it knows.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import const_array, optional_input
from ..rewire import replace_value
from .initializers import add_initializer

STANDARD = ("", "ai.onnx")


def _is(node: ir.Node | None, op: str) -> bool:
    return node is not None and node.op_type == op and node.domain in STANDARD


def _squeezed_axes(node: ir.Node) -> list[int] | None:
    given = const_array(optional_input(node, 1))
    attr = node.attributes.get("axes")
    if given is not None:
        return [int(a) for a in given.reshape(-1)]
    return [int(a) for a in attr.value] if attr is not None else None


def _merged_width(reshape: ir.Node) -> int | None:
    """K where ``reshape`` is ``Reshape(x, [1, -1, K])`` of an ``x`` whose last axis is K."""
    x = optional_input(reshape, 0)
    target = const_array(optional_input(reshape, 1))
    allowzero = reshape.attributes.get("allowzero")
    if x is None or x.shape is None or len(x.shape) < 2 or target is None or \
            target.size != 3 or (allowzero is not None and int(allowzero.value) != 0):
        return None
    last = x.shape[-1]
    first, middle, k = (int(t) for t in target.reshape(-1))
    if not isinstance(last, int) or first != 1 or middle != -1:
        return None
    if k == last or (k == 0 and len(x.shape) == 3):
        return last
    return None


def rewrite_tensordot_rows(graph: ir.Graph) -> int:
    """Replace each ``Reshape(x, [1, -1, K]) -> Squeeze(0)`` by ``Reshape(x, [-1, K])``; how
    many."""
    done = 0
    for reshape in list(graph):
        if reshape.graph is not graph or not _is(reshape, "Reshape"):
            continue
        out = reshape.outputs[0]
        users = [u.node for u in out.uses()]
        width = _merged_width(reshape)
        if width is None or out.is_graph_output() or len(users) != 1 or \
                not _is(users[0], "Squeeze") or users[0].inputs[0] is not out or \
                _squeezed_axes(users[0]) not in ([0], [-3]):
            continue
        squeeze = users[0]
        x = reshape.inputs[0]
        assert x is not None
        target = add_initializer(graph, f"{reshape.name or 'reshape'}/rows",
                                 np.array([-1, width], np.int64))
        merged = ir.node("Reshape", [x, target], name=f"{reshape.name or 'reshape'}/rows")
        merged.outputs[0].type = out.type
        merged.outputs[0].shape = squeeze.outputs[0].shape
        graph.insert_before(squeeze, [merged])
        replace_value(squeeze.outputs[0], merged.outputs[0])
        graph.remove(squeeze, safe=True)
        graph.remove(reshape, safe=True)
        done += 1
    return done
