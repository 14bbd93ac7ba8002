"""Transposes moved above the views (Slice, Concat) and unary ops that read a graph input, so
that the input is read channels-last (the layout pass, ``layout.optimize``, pushes Transposes
towards the outputs; this is the other direction, for the input side).

YOLO's Focus block reads the NCHW image by four pairs of strided Slices and concatenates them
on the channels before the first Conv: the layout pass leaves its Transpose to NHWC after the
Concat, so the Keras model would take the image channels-first and slice it there (the width,
its last axis, between Permutes). Moved up, the Transposes meet at the input and the whole
block runs channels-last.

Each move is an identity: Transpose(perm) of Slice(x) over axis a is the Slice of
Transpose(perm)(x) over axis perm.index(a); of Concat(x_i) along axis a, the Concat of the
Transpose(perm)(x_i) along perm.index(a); of a unary op, that op of the Transpose. A Transpose
moves only where the whole cone above it is such ops, each read only inside the cone, down to
graph inputs read only by the cone: then every moved Transpose ends on an input (which the
raising takes channels-last) and none is left between layers.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from .. import layout
from ..onnx_normalize import optional_input
from ..rewire import replace_value
from .initializers import add_initializer

STANDARD = ("", "ai.onnx")
VIEWS = {"Slice", "Concat"}


def hoist_views(graph: ir.Graph) -> int:
    """Move each Transpose whose cone is views and unary ops over graph inputs (see the module
    docstring) up to the inputs; how many Transposes were moved past an op."""
    moved = 0
    for node in list(graph):
        if node.graph is not graph or not _is(node, "Transpose") or _perm(node)[:1] != [0]:
            continue
        cone = _cone(node)
        if cone is None:
            continue
        moved += _hoist_cone(graph, node, cone)
    return moved


def _hoist_cone(graph: ir.Graph, top: ir.Node, cone: set[int]) -> int:
    """Move ``top`` and the Transposes it becomes up through ``cone``; an op read by several
    of them (an input's Sigmoid read by four Slices) moves once all its readers are these
    Transposes, merged into one. How many moves."""
    moved = 0
    work: list[ir.Node] = [top]
    waiting: list[ir.Node] = []
    progress = False
    while work:
        t = work.pop()
        producer = t.inputs[0].producer() if t.inputs[0] is not None else None
        if t.graph is graph and producer is not None and id(producer) in cone:
            readers = [u.node for u in producer.outputs[0].uses()]
            if all(_is(r, "Transpose") and _perm(r) == _perm(t) and
                   not r.outputs[0].is_graph_output() for r in readers):
                for r in readers:
                    if r is not t:  # the same values as t's
                        r.outputs[0].replace_all_uses_with(t.outputs[0])
                        graph.remove(r, safe=True)
                work.extend(_move(graph, t, producer))
                moved += 1
                progress = True
            else:
                waiting.append(t)  # another reader's Transpose is not up here yet
        if not work and progress:  # every move is an identity: stopping anywhere is exact
            work, waiting, progress = waiting, [], False
    return moved


def _is(node: ir.Node, op: str) -> bool:
    return node.op_type == op and node.domain in STANDARD


def _perm(node: ir.Node) -> list[int]:
    return [int(p) for p in node.attributes["perm"].value]


def _movable(node: ir.Node) -> bool:
    """A standard op the Transpose can move above: a unary op (whose other inputs are
    constants), a Concat of computed values, a Slice of constant bounds."""
    if node.domain not in STANDARD or len(node.outputs) != 1:
        return False
    rest = [v for v in node.inputs[1:] if v is not None]
    if node.op_type in layout.UNARY:
        return all(v.const_value is not None for v in rest)
    if node.op_type == "Concat":
        return all(v is not None and v.const_value is None for v in node.inputs)
    if node.op_type == "Slice":
        return all(v.const_value is not None for v in rest)
    return False


def _cone(top: ir.Node) -> set[int] | None:
    """The ops above the Transpose ``top`` that it can move past, by id, when the cone ends on
    graph inputs read only inside it and no value in it is read outside it; else None."""
    cone: dict[int, ir.Node] = {}
    leaves: list[ir.Value] = []
    stack = [top.inputs[0]]
    while stack:
        v = stack.pop()
        if v is None:
            return None
        if v.is_graph_input():
            leaves.append(v)
            continue
        producer = v.producer()
        if producer is None or not _movable(producer):
            return None
        if id(producer) in cone:
            continue
        cone[id(producer)] = producer
        stack.extend(producer.inputs[:1] if producer.op_type != "Concat" else producer.inputs)
    if not cone:
        return None
    inside = set(cone) | {id(top)}
    for node in cone.values():
        out = node.outputs[0]
        if out.is_graph_output() or any(id(u.node) not in inside for u in out.uses()):
            return None
    for x in leaves:
        if any(id(u.node) not in inside for u in x.uses()):
            return None
    return set(cone)


def _transpose(graph: ir.Graph, x: ir.Value, perm: list[int]) -> ir.Node:
    t = ir.node("Transpose", [x], {"perm": perm})
    t.outputs[0].type = x.type
    if x.shape is not None:
        t.outputs[0].shape = ir.Shape([x.shape[p] for p in perm])
    return t


def _move(graph: ir.Graph, t: ir.Node, op: ir.Node) -> list[ir.Node]:
    """Replace Transpose ``t`` of ``op``'s output by ``op`` of Transposes of its inputs; the
    new Transposes."""
    perm = _perm(t)
    rank = len(perm)
    attributes = list(op.attributes.values())
    inputs: list[ir.Value | None]
    if op.op_type == "Concat":
        ts = [_transpose(graph, x, perm) for x in op.inputs if x is not None]
        axis = int(op.attributes["axis"].value) % rank
        attributes = [ir.AttrInt64("axis", perm.index(axis))]
        inputs = [x.outputs[0] for x in ts]
    else:
        ts = [_transpose(graph, op.inputs[0], perm)]  # type: ignore[arg-type]  # see _cone
        inputs = [ts[0].outputs[0], *op.inputs[1:]]
        if op.op_type == "Slice":
            inputs = _slice_inputs(graph, op, inputs, perm)
    new = ir.Node(op.domain, op.op_type, inputs, attributes=attributes, name=op.name)
    new.outputs[0].type, new.outputs[0].shape = t.outputs[0].type, t.outputs[0].shape
    graph.insert_before(op, [*ts, new])
    replace_value(t.outputs[0], new.outputs[0])
    graph.remove(t, safe=True)
    graph.remove(op, safe=True)
    return ts


def _slice_inputs(graph: ir.Graph, op: ir.Node, inputs: list[ir.Value | None],
                  perm: list[int]) -> list[ir.Value | None]:
    """A Slice's inputs with its axes counted in the transposed layout (a new initializer)."""
    rank = len(perm)
    starts = optional_input(op, 1)
    axes_v = optional_input(op, 3)
    if axes_v is not None and axes_v.const_value is not None:
        axes = axes_v.const_value.numpy().reshape(-1)
    else:
        n = starts.const_value.numpy().size if starts is not None and \
            starts.const_value is not None else 0
        axes = np.arange(n)
    moved = np.asarray([perm.index(int(a) % rank) for a in axes], np.int64)
    base = f"{op.name or 'slice'}_axes_hoisted"
    name, k = base, 0
    while name in graph.initializers:
        k += 1
        name = f"{base}_{k}"
    value = add_initializer(graph, name, moved)
    inputs = list(inputs) + [None] * (4 - len(inputs))
    inputs[3] = value
    return inputs
