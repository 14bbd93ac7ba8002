"""Subgraphs that are one Keras layer: found before emission, raised at their last node.

- GELU (exact), as exporters write it without the opset-20 ``Gelu`` op:
  ``0.5 * x * (1 + erf(x / sqrt(2)))`` with the products in either order, the scaling of x a
  Mul by 1/sqrt(2) or a Div by sqrt(2) -> Activation('gelu').
- ``Tile`` of an ``Unsqueeze(axis 1)`` of a 2-D tensor, repeated along axis 1 only ->
  RepeatVector.
- ``x / (1 + |x|)`` -> Activation('softsign').
- ``x / max(ReduceL2(x, last axis), 1e-12)`` -> UnitNormalization (Keras's exact formula).
- TF's ``x * rsqrt(max(sum(x * x, last axis), eps))`` -> Rescaling + UnitNormalization.
- ``Where(x > t, x, (x - t) * s)``, optionally then ``Min(., m)`` -> ReLU(negative_slope=s,
  threshold=t, max_value=m), where proven equal to Keras's formula (see ``leaky_threshold``).
- ``(x - mean) * 1 / sqrt(var + eps)`` or ``(x - mean) / sqrt(var + eps)`` over any non-batch
  axes (``var`` the mean of the squared centred x, by Mul or Pow), then ``* gamma`` and
  ``+ beta`` -> LayerNormalization(axis=axes); with ``x`` in place of the centred factor,
  ``rms_scaling=True`` (Keras's formula: centred variance, x not centred).
- ``sum(l2n(a) * l2n(b), axis 1)`` with ``l2n(x) = x / sqrt(max(sum(x * x), 1e-12))`` (Keras's
  ``l2_normalize``) -> Dot(axes=1, normalize=True).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import optional_input
from .core import PATTERN_OPS, Ctx, attr, pattern, reduction_axes, rule, static

PATTERN_OPS.update({"Erf", "ReduceL2", "Sqrt", "Abs", "Where", "Greater", "GreaterOrEqual",
                    "Reciprocal", "Pow"})


def _const_value(ctx: Ctx, v: ir.Value | None) -> float | None:
    c = ctx.const(v)
    if c is None or c.size != 1:
        return None
    return float(np.asarray(c).reshape(-1)[0])


def _other(node: ir.Node | None, v: ir.Value | None) -> ir.Value | None:
    """The other operand of a two-input ``node`` that reads ``v``."""
    if node is None or v is None:
        return None
    ins = list(node.inputs)
    if len(ins) != 2 or v not in ins:
        return None
    return ins[1 - ins.index(v)]


def _only_use(v: ir.Value | None) -> ir.Node | None:
    """The one node reading ``v`` (not a graph output), else None."""
    if v is None:
        return None
    uses = list(v.uses())
    if len(uses) != 1 or v.is_graph_output():
        return None
    return uses[0].node


def _producer(v: ir.Value | None) -> ir.Node | None:
    return v.producer() if v is not None else None


def _is_op(node: ir.Node | None, op: str) -> bool:
    return node is not None and node.op_type == op


def _divisions(graph: ir.Graph) -> Iterator[tuple[ir.Node, ir.Value, ir.Value]]:
    """(node, numerator, denominator) of each Div whose denominator only it reads."""
    for div in list(graph):
        if div.op_type != "Div" or len(div.inputs) != 2:
            continue
        num, den = div.inputs
        if num is not None and den is not None and _only_use(den) is div:
            yield div, num, den


def _close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-6)


@pattern
def gelu(ctx: Ctx, graph: ir.Graph) -> None:
    """The exact GELU formula exporters write: Activation('gelu')."""
    for erf in list(graph):
        if erf.op_type != "Erf":
            continue
        scale = _producer(optional_input(erf, 0))
        if scale is None or scale.op_type not in ("Mul", "Div"):
            continue
        x = next((v for v in scale.inputs if ctx.const(v) is None), None)
        if x is None:
            continue
        k = _const_value(ctx, _other(scale, x))
        if not ((scale.op_type == "Mul" and _close(k, 1 / math.sqrt(2))) or
                (scale.op_type == "Div" and scale.inputs[0] is x and _close(k, math.sqrt(2)))):
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


def _sub_const(ctx: Ctx, node: ir.Node | None, x: ir.Value) -> float | None:
    """t of ``Sub(x, t)`` or ``Add(x, -t)``."""
    if node is None or len(node.inputs) != 2 or node.inputs[0] is not x:
        return None
    k = _const_value(ctx, node.inputs[1])
    if k is None or node.op_type not in ("Sub", "Add"):
        return None
    return k if node.op_type == "Sub" else -k


@pattern
def leaky_threshold(ctx: Ctx, graph: ir.Graph) -> None:
    """Where(x > t, x, (x - t) * s) [then Min(., m)]: ReLU(negative_slope, threshold, max_value)."""
    # Keras's ReLU is x * (x > t) [clipped to [0, m]] - s * relu(t - x). The ONNX form equals it
    # exactly when: the comparison is strict (or t == 0, where x == t gives 0 both ways); with a
    # Min(., m) also t >= 0 (else Keras clips (t, 0) to 0), s >= 0 and m >= 0 (so s (x - t) <= m
    # below t, which Keras never clips).
    for where in list(graph):
        if where.op_type == "Where" and len(where.inputs) == 3:
            _fuse_leaky_threshold(ctx, where)


def _fuse_leaky_threshold(ctx: Ctx, where: ir.Node) -> None:
    """Claim the ReLU ending at ``where`` (or at a Min after it), if it is one."""
    found = _threshold(ctx, where)
    if found is None:
        return
    cmp, x, t, mul = found
    slope = _slope(ctx, x, t, mul)
    if slope is None:
        return
    s, below = slope
    inner, last = [cmp, *below], where
    config = {"negative_slope": s, "threshold": t, "max_value": None}
    low = _only_use(where.outputs[0])
    m = _const_value(ctx, _other(low, where.outputs[0])) if low is not None and \
        low.op_type == "Min" else None
    if low is not None and m is not None and t >= 0.0 and s >= 0.0 and m >= 0.0:
        inner, last = inner + [where], low
        config["max_value"] = m
    ctx.fuse(inner, last, "ReLU", config, [x])


def _threshold(ctx: Ctx, where: ir.Node) -> tuple[ir.Node, ir.Value, float, ir.Node] | None:
    """(the comparison, x, t, the Mul) of ``Where(x > t, x, Mul(...))``, each read only by the
    next (``x >= t`` only for t = 0)."""
    cond, above, below = where.inputs
    cmp = _producer(cond)
    if above is None or below is None or cmp is None or \
            cmp.op_type not in ("Greater", "GreaterOrEqual") or \
            _only_use(cond) is not where or optional_input(cmp, 0) is not above:
        return None
    t = _const_value(ctx, optional_input(cmp, 1))
    mul = below.producer()
    if t is None or mul is None or mul.op_type != "Mul" or _only_use(below) is not where:
        return None
    if cmp.op_type == "GreaterOrEqual" and t != 0.0:
        return None
    return cmp, above, t, mul


def _slope(ctx: Ctx, x: ir.Value, t: float, mul: ir.Node) -> tuple[float, list[ir.Node]] | None:
    """s >= 0 and the nodes of ``mul`` = ``(x - t) * s`` (``x * s`` where t is 0)."""
    shifted = next((v for v in mul.inputs if ctx.const(v) is None), None)
    s = _const_value(ctx, _other(mul, shifted))
    sub = _producer(shifted)
    if s is None or s < 0.0:  # Keras's ReLU refuses a negative slope
        return None
    if t == 0.0 and shifted is x:
        return s, [mul]
    if sub is not None and _close(_sub_const(ctx, sub, x), t) and _only_use(shifted) is mul:
        return s, [sub, mul]
    return None


@rule("Tile")
def tile(ctx: Ctx, node: ir.Node) -> None:
    """Tile of a 2-D tensor unsqueezed at axis 1, repeated along axis 1 only: RepeatVector."""
    x, repeats_v = ctx.input(node, 0), ctx.input(node, 1)
    repeats = ctx.const(repeats_v)
    unsqueeze = x.producer()
    if repeats is None or unsqueeze is None or unsqueeze.op_type not in ("Unsqueeze",
                                                                         "Reshape"):
        raise ctx.refuse("only a Tile of a 2-D tensor unsqueezed at axis 1 (RepeatVector) is "
                         "raised")
    source = ctx.input(unsqueeze, 0)
    reps = [int(r) for r in repeats.reshape(-1)]
    if ctx.rank(source) != 2 or ctx.shape(x)[1] != 1 or len(reps) != 3 or \
            reps[0] != 1 or reps[2] != 1:
        raise ctx.refuse(f"repeats {reps} of a {ctx.shape(x)} tensor is not a RepeatVector")
    ctx.output(ctx.layer("RepeatVector", {"n": reps[1]}, ctx.ref(source)))


def _reduce_axes(ctx: Ctx, node: ir.Node | None, op: str, x: ir.Value) -> list[int] | None:
    """Sorted axes of ``op(x, axes, keepdims=1)`` (attribute or input), else None."""
    if node is None or node.op_type != op or node.inputs[0] is not x:
        return None
    axes = reduction_axes(ctx, node)
    rank = len(x.shape) if x.shape is not None else 0
    if axes is None or not int(attr(node, "keepdims", 1)) or rank < 2:
        return None
    return sorted({a % rank for a in axes})


def _last_axis_reduce(ctx: Ctx, node: ir.Node | None, op: str, x: ir.Value) -> bool:
    rank = len(x.shape) if x.shape is not None else 0
    return _reduce_axes(ctx, node, op, x) == [rank - 1]


def _max_eps(ctx: Ctx, node: ir.Node | None, eps: float) -> ir.Value | None:
    """The non-constant operand of ``Max(v, eps)``."""
    if node is None or node.op_type != "Max" or len(node.inputs) != 2:
        return None
    for v in node.inputs:
        if v is not None and _close(_const_value(ctx, _other(node, v)), eps) and \
                ctx.const(v) is None:
            return v
    return None


def _affine_const(ctx: Ctx, node: ir.Node | None, y: ir.Value, op: str, x: ir.Value,
                  axes: list[int]) -> np.ndarray | None:
    """The constant of ``op(y, c)`` (``y`` read only there), as Keras's per-``axes`` weight:
    ``c`` broadcasts over every other axis of ``x`` and spans ``axes`` exactly."""
    if node is None or node.op_type != op or _only_use(y) is not node:
        return None
    c = ctx.const(_other(node, y))
    shape = ctx.shape(x)
    spans = static([shape[a] for a in axes]) if c is not None and c.ndim <= len(shape) else None
    if c is None or spans is None:
        return None
    full = [1] * (len(shape) - c.ndim) + list(c.shape)
    if any(d != 1 for a, d in enumerate(full) if a not in axes):
        return None
    size = dict(zip(axes, spans))
    return np.broadcast_to(c.reshape(full), [size.get(a, 1) for a in range(len(shape))]
                           ).reshape(spans).astype(np.float32)


def _square_of(ctx: Ctx, node: ir.Node | None) -> ir.Value | None:
    """v of ``Mul(v, v)`` or ``Pow(v, 2)``."""
    if node is None:
        return None
    if node.op_type == "Mul" and len(node.inputs) == 2 and node.inputs[0] is node.inputs[1]:
        return node.inputs[0]
    if node.op_type == "Pow" and _const_value(ctx, optional_input(node, 1)) == 2.0:
        return optional_input(node, 0)
    return None


class _Moments(NamedTuple):
    """``sqrt(var + eps)`` with var the mean of the squared centred x over ``axes``."""

    x: ir.Value
    centred: ir.Value  # x - mean
    axes: list[int]
    eps: float
    square: ir.Node  # Mul(centred, centred) or Pow(centred, 2)
    nodes: list[ir.Node]  # ReduceMean (mean), Sub, the square, ReduceMean (var), Add


def _moments(ctx: Ctx, sqrt: ir.Node) -> _Moments | None:
    """What ``sqrt`` takes the root of, when it is a biased variance plus epsilon, each value
    on the way read only by the next node."""
    add = _producer(optional_input(sqrt, 0))
    if add is None or add.op_type != "Add" or _only_use(add.outputs[0]) is not sqrt:
        return None
    var = next((v for v in add.inputs if ctx.const(v) is None), None)
    eps = _const_value(ctx, _other(add, var))
    var_node = _producer(var)
    square = _producer(optional_input(var_node, 0)) if var_node is not None else None
    centred = _square_of(ctx, square)
    if eps is None or var_node is None or square is None or centred is None or \
            _only_use(var) is not add or _only_use(square.outputs[0]) is not var_node:
        return None
    sub = centred.producer()
    if sub is None or sub.op_type != "Sub" or len(sub.inputs) != 2:
        return None
    x, mean = sub.inputs
    mean_node = _producer(mean)
    axes = _reduce_axes(ctx, mean_node, "ReduceMean", x) if x is not None else None
    if x is None or mean_node is None or not axes or 0 in axes or \
            _only_use(mean) is not sub or \
            _reduce_axes(ctx, var_node, "ReduceMean", square.outputs[0]) != axes:
        return None
    return _Moments(x, centred, axes, eps, square, [mean_node, sub, square, var_node, add])


def _normalizer(sqrt: ir.Node) -> tuple[ir.Node, ir.Value | None, list[ir.Node]] | None:
    """The node dividing by ``sqrt`` (``Div(f, sqrt)`` or ``Mul(f, Reciprocal(sqrt))``), the
    factor f it divides, and the Reciprocal if any."""
    user = _only_use(sqrt.outputs[0])
    if user is not None and user.op_type == "Div" and \
            optional_input(user, 1) is sqrt.outputs[0]:
        return user, optional_input(user, 0), []
    if user is not None and user.op_type == "Reciprocal":
        scale = _only_use(user.outputs[0])
        if scale is None or scale.op_type != "Mul":
            return None
        return scale, _other(scale, user.outputs[0]), [user]
    return None


def _affine_tail(ctx: Ctx, scale: ir.Node, x: ir.Value, axes: list[int], rms: bool
                 ) -> tuple[list[ir.Node], ir.Node, np.ndarray | None, np.ndarray | None]:
    """``* gamma`` then (not after rms scaling) ``+ beta`` after ``scale``, each optional: the
    nodes they take in beside the last, the last node, gamma and beta."""
    inner: list[ir.Node] = []
    last, y = scale, scale.outputs[0]
    gamma_node = _only_use(y)
    gamma = _affine_const(ctx, gamma_node, y, "Mul", x, axes)
    if gamma is not None and gamma_node is not None:
        inner, last, y = inner + [last], gamma_node, gamma_node.outputs[0]
    beta_node = _only_use(y) if not rms else None
    beta = _affine_const(ctx, beta_node, y, "Add", x, axes)
    if beta is not None and beta_node is not None:
        inner, last = inner + [last], beta_node
    return inner, last, gamma, beta


@pattern
def layer_normalization(ctx: Ctx, graph: ir.Graph) -> None:
    """Normalization by moments over non-batch axes, then optional gamma and beta:
    LayerNormalization."""
    # Keras: moments over `axes` (biased variance), rsqrt(var + eps); with rms_scaling the
    # centred variance scales x itself. modelport's lowering writes Mul(c, Reciprocal(Sqrt)),
    # PyTorch's exports before opset 17 Div(c, Sqrt) with Pow(c, 2). The chain must read only
    # what it makes, so no intermediate value is lost when it becomes one layer.
    for sqrt in list(graph):
        if sqrt.op_type == "Sqrt":
            _fuse_layer_normalization(ctx, sqrt)


def _fuse_layer_normalization(ctx: Ctx, sqrt: ir.Node) -> None:
    """Claim the LayerNormalization around ``sqrt``, if it is one."""
    moments = _moments(ctx, sqrt)
    normalizer = _normalizer(sqrt) if moments is not None else None
    if moments is None or normalizer is None:
        return
    x, centred, axes = moments.x, moments.centred, moments.axes
    scale, factor, reciprocal = normalizer
    rms = factor is x
    if factor is not centred and not rms:
        return
    if {id(u.node) for u in centred.uses()} != ({id(moments.square), id(scale)} if not rms
                                               else {id(moments.square)}):
        return
    tail, last, gamma, beta = _affine_tail(ctx, scale, x, axes, rms)
    if rms and gamma is None:
        spans = static([ctx.shape(x)[a] for a in axes])
        if spans is None:
            return
        gamma = np.ones(spans, np.float32)
    weights: list[tuple[str, np.ndarray]] = []
    if gamma is not None:
        weights.append(("gamma", gamma))
    if beta is not None:
        weights.append(("beta", beta))
    config = {"axis": axes, "epsilon": moments.eps, "center": beta is not None,
              "scale": gamma is not None, "rms_scaling": rms}
    ctx.fuse([*moments.nodes, *reciprocal, sqrt, *tail], last, "LayerNormalization", config,
             [x], weights)


@pattern
def unit_normalization(ctx: Ctx, graph: ir.Graph) -> None:
    """x / max(ReduceL2(x, last axis), 1e-12): UnitNormalization."""
    for div, x, den in _divisions(graph):
        mx = den.producer()
        norm = _max_eps(ctx, mx, 1e-12)
        l2 = _producer(norm)
        if mx is None or l2 is None or not _last_axis_reduce(ctx, l2, "ReduceL2", x) or \
                _only_use(norm) is not mx:
            continue
        ctx.fuse([mx, l2], div, "UnitNormalization", {"axis": [-1]}, [x])


@pattern
def tf_l2_normalize(ctx: Ctx, graph: ir.Graph) -> None:
    """TF's ``l2_normalize``, x * rsqrt(max(sum(x * x, last axis), eps)) (Rsqrt mapped as
    Reciprocal(Sqrt)): Rescaling(k) then UnitNormalization. Keras computes
    y * min(rsqrt(sum(y * y)), 1e12), which for y = k x is x * min(rsqrt(sum(x * x)), k 1e12):
    TF's clamp exactly when k = 1e-12 / sqrt(eps) (the scaling rounds x by half an ulp)."""
    for mul in list(graph):
        if mul.op_type != "Mul" or len(mul.inputs) != 2:
            continue
        for x, inv in (tuple(mul.inputs), tuple(mul.inputs)[::-1]):
            found = _tf_inverse_norm(ctx, x, inv)
            if found is None or x is None:
                continue
            nodes, eps = found
            scale = float(np.float32(1e-12 / math.sqrt(eps)))
            _fuse_scaled_unit_norm(ctx, nodes, mul, x, scale)
            break


def _tf_inverse_norm(ctx: Ctx, x: ir.Value | None, inv: ir.Value | None
                     ) -> tuple[list[ir.Node], float] | None:
    """The nodes of rsqrt(max(sum(x * x, last axis), eps)) and eps, where ``inv`` is that
    and each intermediate is read only by the next."""
    rec = _producer(inv)
    if x is None or inv is None or rec is None or rec.op_type != "Reciprocal" or \
            _only_use(inv) is None:
        return None
    sqrt = _producer(optional_input(rec, 0))
    if sqrt is None or sqrt.op_type != "Sqrt" or _only_use(sqrt.outputs[0]) is not rec:
        return None
    mx = _producer(optional_input(sqrt, 0))
    if mx is None or mx.op_type != "Max" or len(mx.inputs) != 2 or \
            _only_use(mx.outputs[0]) is not sqrt:
        return None
    eps = next((_const_value(ctx, v) for v in mx.inputs if ctx.const(v) is not None), None)
    squares_sum = next((v for v in mx.inputs if ctx.const(v) is None), None)
    red = _producer(squares_sum)
    if eps is None or not eps > 0 or red is None or _only_use(squares_sum) is not mx:
        return None
    squares = optional_input(red, 0)
    sq = _producer(squares)
    if squares is None or sq is None or not _last_axis_reduce(ctx, red, "ReduceSum", squares) \
            or _only_use(squares) is not red:
        return None
    square = (sq.op_type == "Mul" and list(sq.inputs) == [x, x]) or (
        sq.op_type == "Pow" and sq.inputs[0] is x and
        _close(_const_value(ctx, sq.inputs[1]), 2.0))
    return ([rec, sqrt, mx, red, sq], eps) if square else None


def _fuse_scaled_unit_norm(ctx: Ctx, inner: list[ir.Node], last: ir.Node, x: ir.Value,
                           scale: float) -> None:
    ctx.absorbed.update(id(n) for n in inner)

    def emit(ctx: Ctx, node: ir.Node) -> None:
        y = ctx.ref(x)
        if scale != 1.0:
            y = ctx.layer("Rescaling", {"scale": scale, "offset": 0.0}, y, suffix="scaled")
        ctx.output(ctx.layer("UnitNormalization", {"axis": [-1]}, y))

    ctx.fused[id(last)] = emit


def _l2_normalized(ctx: Ctx, v: ir.Value | None) -> tuple[ir.Value, list[ir.Node]] | None:
    """(x, nodes) when v = x / sqrt(max(sum(x * x, last axis), 1e-12))."""
    div = _producer(v)
    if div is None or div.op_type != "Div" or _only_use(v) is None or len(div.inputs) != 2:
        return None
    x, den = div.inputs
    sqrt = _producer(den)
    if x is None or sqrt is None or sqrt.op_type != "Sqrt":
        return None
    mx = _producer(optional_input(sqrt, 0))
    ss = _max_eps(ctx, mx, 1e-12)
    red = _producer(ss)
    if mx is None or red is None or red.op_type != "ReduceSum":
        return None
    squares = optional_input(red, 0)
    sq = _producer(squares)
    if squares is None or sq is None or sq.op_type != "Mul" or list(sq.inputs) != [x, x] or \
            not _last_axis_reduce(ctx, red, "ReduceSum", squares):
        return None
    return x, [div, sqrt, mx, red, sq]


@pattern
def normalized_dot(ctx: Ctx, graph: ir.Graph) -> None:
    """The row-wise dot product of two l2-normalized 2-D tensors: Dot(normalize=True)."""
    for red in list(graph):
        if red.op_type != "ReduceSum":
            continue
        product = optional_input(red, 0)
        mul = _producer(product)
        if product is None or mul is None or mul.op_type != "Mul" or len(mul.inputs) != 2 or \
                _only_use(mul.outputs[0]) is not red or \
                not _last_axis_reduce(ctx, red, "ReduceSum", mul.outputs[0]) or \
                len(product.shape or []) != 2:
            continue
        left, right = (_l2_normalized(ctx, v) for v in mul.inputs)
        if left is None or right is None:
            continue
        inner = [mul, *left[1], *right[1]]
        ctx.fuse(inner, red, "Dot", {"axes": 1, "normalize": True}, [left[0], right[0]])


@pattern
def softsign(ctx: Ctx, graph: ir.Graph) -> None:
    """x / (1 + |x|): Activation('softsign')."""
    for div, x, den in _divisions(graph):
        add = den.producer()
        if add is None or add.op_type != "Add":
            continue
        absval = next((v for v in add.inputs if _is_op(_producer(v), "Abs")), None)
        abs_node = _producer(absval)
        if abs_node is None or optional_input(abs_node, 0) is not x or \
                not _close(_const_value(ctx, _other(add, absval)), 1.0) or \
                _only_use(absval) is not add:
            continue
        ctx.fuse([add, abs_node], div, "Activation", {"activation": "softsign"}, [x])
