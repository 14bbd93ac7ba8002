"""Subgraphs that are one Keras layer: found before emission, raised at their last node.

- GELU (exact), as exporters write it without the opset-20 ``Gelu`` op:
  ``0.5 * x * (1 + erf(x / sqrt(2)))`` with the products in either order, the scaling of x a
  Mul by 1/sqrt(2) or a Div by sqrt(2) -> Activation('gelu').
- ``Tile`` of an ``Unsqueeze(axis 1)`` of a 2-D tensor, repeated along axis 1 only ->
  RepeatVector.
- ``x / (1 + |x|)`` -> Activation('softsign').
- ``x / max(ReduceL2(x, last axis), 1e-12)`` -> UnitNormalization (Keras's exact formula).
- ``sum(l2n(a) * l2n(b), axis 1)`` with ``l2n(x) = x / sqrt(max(sum(x * x), 1e-12))`` (Keras's
  ``l2_normalize``) -> Dot(axes=1, normalize=True).
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from .core import PATTERN_OPS, Ctx, pattern, rule

PATTERN_OPS.update({"Erf", "ReduceL2", "Sqrt", "Abs"})


def _const_value(ctx: Ctx, v: ir.Value | None) -> float | None:
    c = ctx.const(v)
    if c is None or c.size != 1:
        return None
    return float(np.asarray(c).reshape(-1)[0])


def _other(node: ir.Node, v: ir.Value) -> ir.Value | None:
    ins = list(node.inputs)
    if len(ins) != 2 or v not in ins:
        return None
    return ins[1 - ins.index(v)]


def _only_use(v: ir.Value) -> ir.Node | None:
    uses = v.uses()
    if len(uses) != 1 or v.is_graph_output():
        return None
    return uses[0].node


def _divisions(graph: ir.Graph):
    """(node, numerator, denominator) of each Div whose denominator only it reads."""
    for div in list(graph):
        if div.op_type == "Div" and len(div.inputs) == 2 and \
                _only_use(div.inputs[1]) is div:
            yield div, div.inputs[0], div.inputs[1]


def _close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-6)


@pattern
def gelu(ctx: Ctx, graph: ir.Graph) -> None:
    for erf in list(graph):
        if erf.op_type != "Erf":
            continue
        scale = erf.inputs[0].producer()
        if scale is None or scale.op_type not in ("Mul", "Div"):
            continue
        x = next((v for v in scale.inputs if ctx.const(v) is None), None)
        k = _const_value(ctx, _other(scale, x)) if x is not None else None
        if not (scale.op_type == "Mul" and _close(k, 1 / math.sqrt(2)) or
                scale.op_type == "Div" and scale.inputs[0] is x and _close(k, math.sqrt(2))):
            continue
        add = _only_use(erf.outputs[0])
        if add is None or add.op_type != "Add" or \
                not _close(_const_value(ctx, _other(add, erf.outputs[0])), 1.0):
            continue
        m1 = _only_use(add.outputs[0])
        if m1 is None or m1.op_type != "Mul":
            continue
        o = _other(m1, add.outputs[0])
        half = o.producer() if o is not None else None
        if half is not None and half.op_type == "Mul" and x in half.inputs and \
                _close(_const_value(ctx, _other(half, x)), 0.5) and \
                _only_use(half.outputs[0]) is m1:
            inner, last = [scale, erf, add, half], m1  # 0.5 x * (1 + erf)
        elif o is x:
            m2 = _only_use(m1.outputs[0])
            if m2 is None or m2.op_type != "Mul" or \
                    not _close(_const_value(ctx, _other(m2, m1.outputs[0])), 0.5):
                continue
            inner, last = [scale, erf, add, m1], m2  # (x * (1 + erf)) * 0.5
        else:
            continue
        if _only_use(scale.outputs[0]) is not erf:
            continue
        ctx.fuse(inner, last, "Activation", {"activation": "gelu"}, [x])


@rule("Tile")
def tile(ctx: Ctx, node: ir.Node) -> None:
    x, repeats_v = node.inputs
    repeats = ctx.const(repeats_v)
    unsqueeze = x.producer()
    if repeats is None or unsqueeze is None or unsqueeze.op_type not in ("Unsqueeze",
                                                                         "Reshape"):
        raise ctx.refuse("only a Tile of a 2-D tensor unsqueezed at axis 1 (RepeatVector) is "
                         "raised")
    source = unsqueeze.inputs[0]
    reps = [int(r) for r in repeats.reshape(-1)]
    if ctx.rank(source) != 2 or ctx.shape(x)[1] != 1 or len(reps) != 3 or \
            reps[0] != 1 or reps[2] != 1:
        raise ctx.refuse(f"repeats {reps} of a {ctx.shape(x)} tensor is not a RepeatVector")
    ctx.output(ctx.layer("RepeatVector", {"n": reps[1]}, ctx.ref(source)))


def _last_axis_reduce(ctx: Ctx, node: ir.Node | None, op: str, x: ir.Value) -> bool:
    if node is None or node.op_type != op or node.inputs[0] is not x:
        return False
    axes = ctx.const(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] is not None \
        else None
    axes = node.attributes["axes"].value if axes is None and "axes" in node.attributes \
        else axes
    rank = len(x.shape) if x.shape is not None else 0
    keep = node.attributes["keepdims"].value if "keepdims" in node.attributes else 1
    return axes is not None and [int(a) % max(rank, 1) for a in np.reshape(axes, -1)] == \
        [rank - 1] and bool(keep) and rank >= 2


def _max_eps(ctx: Ctx, node: ir.Node | None, eps: float) -> ir.Value | None:
    """The non-constant operand of ``Max(v, eps)``."""
    if node is None or node.op_type != "Max" or len(node.inputs) != 2:
        return None
    for v in node.inputs:
        if _close(_const_value(ctx, _other(node, v)), eps) and ctx.const(v) is None:
            return v
    return None


@pattern
def unit_normalization(ctx: Ctx, graph: ir.Graph) -> None:
    for div, x, den in _divisions(graph):
        mx = den.producer()
        norm = _max_eps(ctx, mx, 1e-12)
        l2 = norm.producer() if norm is not None else None
        if not _last_axis_reduce(ctx, l2, "ReduceL2", x) or _only_use(norm) is not mx:
            continue
        ctx.fuse([mx, l2], div, "UnitNormalization", {"axis": [-1]}, [x])


def _l2_normalized(ctx: Ctx, v: ir.Value) -> tuple[ir.Value, list[ir.Node]] | None:
    """(x, nodes) when v = x / sqrt(max(sum(x * x, last axis), 1e-12))."""
    div = v.producer()
    if div is None or div.op_type != "Div" or _only_use(v) is None:
        return None
    x, den = div.inputs
    sqrt = den.producer()
    if sqrt is None or sqrt.op_type != "Sqrt":
        return None
    mx = sqrt.inputs[0].producer()
    ss = _max_eps(ctx, mx, 1e-12)
    red = ss.producer() if ss is not None else None
    if red is None or red.op_type != "ReduceSum":
        return None
    sq = red.inputs[0].producer()
    if sq is None or sq.op_type != "Mul" or list(sq.inputs) != [x, x] or \
            not _last_axis_reduce(ctx, red, "ReduceSum", red.inputs[0]):
        return None
    return x, [div, sqrt, mx, red, sq]


@pattern
def normalized_dot(ctx: Ctx, graph: ir.Graph) -> None:
    for red in list(graph):
        if red.op_type != "ReduceSum":
            continue
        mul = red.inputs[0].producer()
        if mul is None or mul.op_type != "Mul" or _only_use(mul.outputs[0]) is not red or \
                not _last_axis_reduce(ctx, red, "ReduceSum", mul.outputs[0]) or \
                len(red.inputs[0].shape or []) != 2:
            continue
        sides = [_l2_normalized(ctx, v) for v in mul.inputs]
        if any(s is None for s in sides):
            continue
        inner = [mul, *sides[0][1], *sides[1][1]]
        ctx.fuse(inner, red, "Dot", {"axes": 1, "normalize": True}, [sides[0][0], sides[1][0]])


@pattern
def softsign(ctx: Ctx, graph: ir.Graph) -> None:
    for div, x, den in _divisions(graph):
        add = den.producer()
        if add is None or add.op_type != "Add":
            continue
        absval = next((v for v in add.inputs if v.producer() is not None and
                       v.producer().op_type == "Abs"), None)
        if absval is None or absval.producer().inputs[0] is not x or \
                not _close(_const_value(ctx, _other(add, absval)), 1.0) or \
                _only_use(absval) is not add:
            continue
        ctx.fuse([add, absval.producer()], div, "Activation", {"activation": "softsign"}, [x])
