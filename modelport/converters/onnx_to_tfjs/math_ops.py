"""ONNX -> TF.js: table renames, elementwise math, activations, reductions, matmul, norms."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import onnx_ir as ir

from ...models.tfjs_graph import a_bool, a_float, a_int, a_list, a_str, a_type
from .. import tf_op_table as table
from .core import (
    RULES,
    Ctx,
    Rule,
    RuleFn,
    all_known,
    attr,
    emits,
    onnx_enum_dtype,
    rule,
    unsupported,
)

# --- table rows ---------------------------------------------------------------------------------

for _row in table.RENAMES:
    emits(_row.tf, *(a.tf for a in _row.attrs))


def row_applies(ctx: Ctx, node: ir.Node, row: table.Rename) -> str | None:
    """None when the row is the whole truth for this node, else why not."""
    for name, want in row.fixed:
        got = attr(node, name, want)
        if isinstance(want, float) and not math.isclose(float(got), want, rel_tol=1e-7):
            return f"{name}={got} (TF's {row.tf} means {name}={want})"
        if not isinstance(want, float) and got != want:
            return f"{name}={got} (TF's {row.tf} means {name}={want})"
    if row.dtypes == "float" and not all(ctx.is_float(v) for v in node.inputs if v is not None):
        return f"{row.tf} is used for float inputs only"
    return None


def rename(ctx: Ctx, node: ir.Node, row: table.Rename | None = None) -> list[str]:
    """Map ``node`` by its rename row: the TF op, its inputs in order, attributes renamed."""
    row = row or table.BY_ONNX[node.op_type]
    inputs = [ctx.x(ctx.inp(node, i)) for i in range(min(row.inputs, len(node.inputs)))]
    attrs: dict[str, dict] = {}
    for a in row.attrs:
        value = attr(node, a.onnx, a.onnx_default)
        if a.kind == "type":
            attrs[a.tf] = a_type(onnx_enum_dtype(value))
        elif a.kind == "f":
            attrs[a.tf] = a_float(value)
        elif a.kind == "i":
            attrs[a.tf] = a_int(value)
        elif a.kind == "b":
            attrs[a.tf] = a_bool(bool(value))
        else:
            attrs[a.tf] = a_str(value)
    return [ctx.op(row.tf, inputs, attrs, hint=row.tf)]


def _row_check(ctx: Ctx, node: ir.Node) -> str | None:
    row = table.BY_ONNX[node.op_type]
    if len([v for v in node.inputs if v is not None]) != row.inputs:
        return f"{len(node.inputs)} inputs, the TF op takes {row.inputs}"
    return row_applies(ctx, node, row)


for _row in table.RENAMES:
    RULES.add(_row.onnx, Rule(_row.onnx, rename, _row_check))
# tfjs 4.22's BitwiseAnd executor reads inputs named 'a' and 'b' where its op list names them
# 'x' and 'y', so every graph-model BitwiseAnd fails in tfjs: not mapped in this direction.
RULES.remove("BitwiseAnd")


def beyond_row(op: str) -> Callable[[RuleFn], RuleFn]:
    """Register ``fn`` for the ``op`` nodes its rename row does not cover (other attribute
    values): the row maps the rest, so ``fn`` holds only the surgery."""
    row = table.BY_ONNX[op]

    def deco(fn: RuleFn) -> RuleFn:
        def mapped(ctx: Ctx, node: ir.Node) -> list[str]:
            if row_applies(ctx, node, row) is None:
                return rename(ctx, node, row)
            return fn(ctx, node)
        RULES.add(op, Rule(op, mapped), replace=True)  # takes over the row's rename
        return fn
    return deco


# --- helpers ------------------------------------------------------------------------------------

def binary(ctx: Ctx, op: str, a: str, b: str) -> str:
    """TF op ``op`` of two tensors."""
    return ctx.op(op, [a, b], hint=op)


def unary(ctx: Ctx, op: str, a: str) -> str:
    """TF op ``op`` of one tensor."""
    return ctx.op(op, [a], hint=op)


def fconst(ctx: Ctx, value: float, hint: str = "const") -> str:
    """A float32 scalar constant."""
    return ctx.scalar(np.float32(value), "float32", hint)


def like(ctx: Ctx, v: ir.Value | None, value: float, hint: str = "const") -> str:
    """A scalar constant of ``v``'s tfjs dtype."""
    return ctx.scalar(value, ctx.tf_dtype(v), hint)


def reduce(ctx: Ctx, op: str, x: str, axes: list[int] | str, keep: bool) -> str:
    """TF reduction over ``axes``: a list, or a reference to a run-time int32 axes tensor."""
    axes_ref = axes if isinstance(axes, str) else ctx.i32(axes, "axes")
    return ctx.op(op, [x, axes_ref], {"keep_dims": a_bool(keep)}, hint=op)


# --- elementwise with surgery -------------------------------------------------------------------

@rule("PRelu", check=_row_check, replace=True)
def prelu(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX PRelu -> TF Prelu; a [C] slope from before NumPy broadcasting (it meant axis 1) is
    reshaped to [C, 1, ..., 1]."""
    x, slope = ctx.inputs(node, 2)
    xs, ss = ctx.shape(x), ctx.shape(slope)
    s = ctx.x(slope)
    if xs is not None and ss is not None and len(ss) == 1 and len(xs) > 2 and \
            ss[0] not in (1, xs[-1]) and ss[0] == xs[1]:
        # A per-channel slope [C] of models from before numpy broadcasting (PRelu < 7, kept by
        # the version converter): it meant axis 1, which broadcasting spells [C, 1, ..., 1].
        s = ctx.op("Reshape", [s, ctx.i32([ss[0]] + [1] * (len(xs) - 2), "shape")])
    return [ctx.op("Prelu", [ctx.x(x), s])]


@beyond_row("Elu")
def elu(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Elu with alpha other than 1 (TF's Elu has none) -> SelectV2(x > 0, x,
    alpha * Elu(x))."""
    x = ctx.x(ctx.inp(node, 0))
    alpha = attr(node, "alpha", 1.0)
    neg = binary(ctx, "Mul", unary(ctx, "Elu", x), fconst(ctx, alpha))
    return [ctx.op("SelectV2", [binary(ctx, "Greater", x, fconst(ctx, 0)), x, neg])]


@beyond_row("Selu")
def selu(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Selu with other constants than TF's -> gamma * SelectV2(x > 0, x,
    alpha * (exp(x) - 1))."""
    x = ctx.x(ctx.inp(node, 0))
    alpha, gamma = attr(node, "alpha", table.SELU_ALPHA), attr(node, "gamma", table.SELU_GAMMA)
    neg = binary(ctx, "Mul", binary(ctx, "Sub", unary(ctx, "Exp", x), fconst(ctx, 1)),
                 fconst(ctx, alpha))
    y = ctx.op("SelectV2", [binary(ctx, "Greater", x, fconst(ctx, 0)), x, neg])
    return [binary(ctx, "Mul", y, fconst(ctx, gamma))]


@beyond_row("IsInf")
def isinf(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX IsInf detecting one sign only -> TF Equal with that infinity (neither sign: an
    all-false Fill)."""
    x = ctx.x(ctx.inp(node, 0))
    pos, neg = attr(node, "detect_positive", 1), attr(node, "detect_negative", 1)
    if not pos and not neg:
        return [ctx.op("Fill", [ctx.shape_of(x), ctx.scalar(False, "bool")],
                       {"T": a_type("bool")})]
    return [binary(ctx, "Equal", x, fconst(ctx, np.inf if pos else -np.inf))]


@rule("Div", check=lambda ctx, n: None, replace=True)
def div(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Div -> TF RealDiv on floats; on integers a FloorDiv corrected to truncate toward
    zero, as ONNX does."""
    if ctx.is_float(node.inputs[0]):
        return rename(ctx, node)
    # Integers: ONNX truncates toward zero, tfjs's div floors. q = floor(a/b), plus one where
    # the remainder is non-zero and the signs differ.
    a, b = ctx.x(ctx.inp(node, 0)), ctx.x(ctx.inp(node, 1))
    q = binary(ctx, "FloorDiv", a, b)
    r = binary(ctx, "Sub", a, binary(ctx, "Mul", q, b))
    zero = ctx.i32(0)
    fix = binary(ctx, "LogicalAnd", binary(ctx, "NotEqual", r, zero),
                 binary(ctx, "NotEqual", binary(ctx, "Less", a, zero),
                        binary(ctx, "Less", b, zero)))
    return [binary(ctx, "AddV2", q, ctx.op("Cast", [fix], {"DstT": a_type("int32")}))]


@rule("Pow", check=lambda ctx, n: None, replace=True)
def pow_(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Pow -> TF Pow, cast back to int32 when an integer base meets a float exponent
    (ONNX keeps the base's type)."""
    base, exp = ctx.inputs(node, 2)
    y = ctx.op("Pow", [ctx.x(base), ctx.x(exp)])
    if not ctx.is_float(base) and ctx.is_float(exp):
        y = ctx.op("Cast", [y], {"DstT": a_type("int32")})  # ONNX: the base's type
    return [y]


@rule("Mod", check=lambda ctx, n: None, replace=True)
def mod(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Mod -> TF FloorMod; fmod=1 (the dividend's sign) subtracts the divisor where the
    signs differ and the remainder is not zero."""
    if not attr(node, "fmod", 0):
        return rename(ctx, node)
    # fmod: the result takes the dividend's sign. FloorMod's takes the divisor's; where they
    # differ and the remainder is not zero, subtract the divisor.
    a, b = ctx.x(ctx.inp(node, 0)), ctx.x(ctx.inp(node, 1))
    zero = ctx.scalar(0, ctx.tf_dtype(node.inputs[0]))
    r = binary(ctx, "FloorMod", a, b)
    fix = binary(ctx, "LogicalAnd", binary(ctx, "NotEqual", r, zero),
                 binary(ctx, "NotEqual", binary(ctx, "Less", a, zero),
                        binary(ctx, "Less", b, zero)))
    return [ctx.op("SelectV2", [fix, binary(ctx, "Sub", r, b), r])]


@rule("Xor")
def xor(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Xor -> TF NotEqual of the two booleans."""
    return [binary(ctx, "NotEqual", ctx.x(ctx.inp(node, 0)), ctx.x(ctx.inp(node, 1)))]


def _variadic(op: str) -> RuleFn:
    def fn(ctx: Ctx, node: ir.Node) -> list[str]:
        refs = [ctx.x(v) for v in node.inputs if v is not None]
        y = refs[0]
        for r in refs[1:]:
            y = binary(ctx, op, y, r)
        if node.op_type == "Mean" and len(refs) > 1:
            y = binary(ctx, "RealDiv", y, like(ctx, node.inputs[0], len(refs)))
        elif len(refs) == 1:
            y = ctx.op("Identity", [y])
        return [y]
    return fn


RULES.add("Sum", Rule("Sum", _variadic("AddV2")))
RULES.add("Mean", Rule("Mean", _variadic("AddV2")))
RULES.add("Max", Rule("Max", _variadic("Maximum")), replace=True)  # over the 2-input row
RULES.add("Min", Rule("Min", _variadic("Minimum")), replace=True)  # over the 2-input row


@rule("Clip")
def clip(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Clip -> TF Maximum then Minimum (bounds from inputs, or attributes before opset
    11), also right where min > max, which tfjs's ClipByValue refuses; Identity without bounds."""
    # Maximum then Minimum: also right where min > max (ONNX: all values become max), which
    # tfjs's ClipByValue refuses.
    y = ctx.x(ctx.inp(node, 0))
    lo = node.inputs[1] if len(node.inputs) > 1 else None
    hi = node.inputs[2] if len(node.inputs) > 2 else None
    if lo is None and "min" in node.attributes:  # opset < 11 (kept where the converter did)
        y = binary(ctx, "Maximum", y, fconst(ctx, attr(node, "min")))
    if lo is not None:
        y = binary(ctx, "Maximum", y, ctx.x(lo))
    if hi is None and "max" in node.attributes:
        y = binary(ctx, "Minimum", y, fconst(ctx, attr(node, "max")))
    if hi is not None:
        y = binary(ctx, "Minimum", y, ctx.x(hi))
    if y == ctx.x(ctx.inp(node, 0)):
        y = ctx.op("Identity", [y])
    return [y]


# --- activations --------------------------------------------------------------------------------

def _hard_sigmoid(ctx: Ctx, x: str, alpha: float, beta: float) -> str:
    y = binary(ctx, "AddV2", binary(ctx, "Mul", x, fconst(ctx, alpha)), fconst(ctx, beta))
    return binary(ctx, "Minimum", binary(ctx, "Maximum", y, fconst(ctx, 0)), fconst(ctx, 1))


@rule("HardSigmoid")
def hard_sigmoid(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX HardSigmoid -> TF min(max(alpha * x + beta, 0), 1)."""
    return [_hard_sigmoid(ctx, ctx.x(ctx.inp(node, 0)), attr(node, "alpha", 0.2),
                          attr(node, "beta", 0.5))]


@rule("HardSwish")
def hard_swish(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX HardSwish -> TF x * min(max(x / 6 + 0.5, 0), 1)."""
    x = ctx.x(ctx.inp(node, 0))
    return [binary(ctx, "Mul", x, _hard_sigmoid(ctx, x, 1 / 6, 0.5))]


@rule("Softsign")
def softsign(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Softsign -> TF x / (|x| + 1)."""
    x = ctx.x(ctx.inp(node, 0))
    return [binary(ctx, "RealDiv", x, binary(ctx, "AddV2", unary(ctx, "Abs", x),
                                             fconst(ctx, 1)))]


@rule("Gelu", check=lambda ctx, n: None if attr(n, "approximate", "none") in ("none", "tanh")
      else f"approximate={attr(n, 'approximate')!r}")
def gelu(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Gelu -> TF 0.5 * x * (1 + erf(x / sqrt(2))), or its tanh approximation."""
    x = ctx.x(ctx.inp(node, 0))
    if attr(node, "approximate", "none") == "tanh":
        inner = binary(ctx, "AddV2", x, binary(ctx, "Mul", binary(
            ctx, "Mul", binary(ctx, "Mul", x, x), x), fconst(ctx, 0.044715)))
        t = unary(ctx, "Tanh", binary(ctx, "Mul", inner, fconst(ctx, math.sqrt(2 / math.pi))))
    else:
        t = unary(ctx, "Erf", binary(ctx, "Mul", x, fconst(ctx, 1 / math.sqrt(2))))
    half = binary(ctx, "Mul", x, fconst(ctx, 0.5))
    return [binary(ctx, "Mul", half, binary(ctx, "AddV2", t, fconst(ctx, 1)))]


@rule("Mish")
def mish(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Mish -> TF x * tanh(softplus(x))."""
    x = ctx.x(ctx.inp(node, 0))
    return [binary(ctx, "Mul", x, unary(ctx, "Tanh", unary(ctx, "Softplus", x)))]


@rule("Swish")
def swish(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Swish -> TF x * sigmoid(alpha * x)."""
    x = ctx.x(ctx.inp(node, 0))
    alpha = attr(node, "alpha", 1.0)
    z = x if alpha == 1.0 else binary(ctx, "Mul", x, fconst(ctx, alpha))
    return [binary(ctx, "Mul", x, unary(ctx, "Sigmoid", z))]


@rule("Celu")
def celu(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Celu -> TF relu(x) + min(alpha * (exp(x / alpha) - 1), 0)."""
    x = ctx.x(ctx.inp(node, 0))
    alpha = attr(node, "alpha", 1.0)
    e = binary(ctx, "Sub", unary(ctx, "Exp", binary(ctx, "RealDiv", x, fconst(ctx, alpha))),
               fconst(ctx, 1))
    neg = binary(ctx, "Minimum", binary(ctx, "Mul", e, fconst(ctx, alpha)), fconst(ctx, 0))
    return [binary(ctx, "AddV2", unary(ctx, "Relu", x), neg)]


@rule("ThresholdedRelu")
def thresholded_relu(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX ThresholdedRelu -> TF SelectV2(x > alpha, x, 0)."""
    x = ctx.x(ctx.inp(node, 0))
    cond = binary(ctx, "Greater", x, fconst(ctx, attr(node, "alpha", 1.0)))
    return [ctx.op("SelectV2", [cond, x, fconst(ctx, 0)])]


@rule("Shrink")
def shrink(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Shrink -> TF SelectV2s: x + bias below -lambd, x - bias above lambd, else 0."""
    x = ctx.x(ctx.inp(node, 0))
    v = ctx.inp(node, 0)
    lambd, bias = attr(node, "lambd", 0.5), attr(node, "bias", 0.0)
    low = binary(ctx, "Less", x, like(ctx, v, -lambd))
    high = binary(ctx, "Greater", x, like(ctx, v, lambd))
    y = ctx.op("SelectV2", [high, binary(ctx, "Sub", x, like(ctx, v, bias)), like(ctx, v, 0)])
    return [ctx.op("SelectV2", [low, binary(ctx, "AddV2", x, like(ctx, v, bias)), y])]


# --- softmax ------------------------------------------------------------------------------------

def _last_axis_op(ctx: Ctx, node: ir.Node, op: str, axis: int) -> str:
    x = ctx.x(ctx.inp(node, 0))
    rank = ctx.rank(node.inputs[0])
    if axis == -1 or (rank is not None and axis % rank == rank - 1):
        return ctx.op(op, [x])
    rank = ctx.need_rank(ctx.inp(node, 0), node)
    axis %= rank
    perm = [d for d in range(rank) if d != axis] + [axis]
    inverse = list(np.argsort(perm))
    y = ctx.op(op, [ctx.op("Transpose", [x, ctx.i32(perm, "perm")])])
    return ctx.op("Transpose", [y, ctx.i32(inverse, "perm")])


@rule("Softmax", "LogSoftmax")
def softmax(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Softmax/LogSoftmax -> the TF op of that name, which works on the last axis
    (another axis is transposed there and back)."""
    # Opsets < 13 (flattening semantics) were converted to 17 by onnx's version converter.
    return [_last_axis_op(ctx, node, node.op_type, attr(node, "axis", -1))]


@rule("Hardmax")
def hardmax(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Hardmax -> TF OneHot of ArgMax (the axis size must be known), transposed into
    place when the axis is not the last."""
    v = ctx.inp(node, 0)
    rank = ctx.need_rank(v, node)
    axis = attr(node, "axis", -1) % rank
    dim = ctx.need_shape(v, node)[axis]
    if dim is None:
        raise unsupported(node, "the size of the Hardmax axis is unknown")
    x = ctx.x(v)
    idx = ctx.op("ArgMax", [x, ctx.i32(axis, "axis")])
    hot = ctx.op("OneHot", [idx, ctx.i32(dim), fconst(ctx, 1), fconst(ctx, 0)],
                 {"T": a_type("float32")})
    if axis != rank - 1:
        perm = list(range(axis)) + [rank - 1] + list(range(axis, rank - 1))
        hot = ctx.op("Transpose", [hot, ctx.i32(perm, "perm")])
    return [hot]


# --- reductions ---------------------------------------------------------------------------------

def reduce_axes(ctx: Ctx, node: ir.Node) -> list[int] | None:
    """Normalized axes; [] = reduce nothing (noop_with_empty_axes); None = a run-time tensor."""
    rank = ctx.need_rank(ctx.inp(node, 0), node)
    if "axes" in node.attributes:
        axes = attr(node, "axes")
    elif len(node.inputs) > 1 and node.inputs[1] is not None:
        value = ctx.value(node.inputs[1])
        if value is None:
            return None
        axes = [int(a) for a in value.reshape(-1)]
    else:
        axes = []
    if not axes:
        return [] if attr(node, "noop_with_empty_axes", 0) else list(range(rank))
    return sorted(a % rank for a in axes) if rank else []


def _reduce_check(ctx: Ctx, node: ir.Node) -> str | None:
    if ctx.rank(node.inputs[0]) is None:
        return "the input's rank is unknown"
    axes = node.inputs[1] if len(node.inputs) > 1 else None
    if axes is not None and ctx.value(axes) is None:
        # TF's reductions take their axes as a tensor, so run-time axes map as they are, as
        # long as there is at least one (ONNX's empty axes mean all, or none, instead).
        n = ctx.shape(axes)
        if n is None or len(n) != 1 or n[0] is None or n[0] == 0:
            return "axes computed at run time, of a length unknown when converting"
    return None


REDUCE = {"ReduceMean": "Mean", "ReduceSum": "Sum", "ReduceMax": "Max", "ReduceMin": "Min",
          "ReduceProd": "Prod"}


@rule("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
      "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp", check=_reduce_check)
def reduce_op(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Reduce* -> TF Mean/Sum/Max/Min/Prod (Any/All for booleans), the others composed
    from them (ReduceLogSumExp stabilised by the max); run-time axes go to TF as a tensor,
    and reducing nothing (noop_with_empty_axes) keeps only the elementwise part."""
    x = ctx.x(ctx.inp(node, 0))
    static_axes = reduce_axes(ctx, node)
    # at run time (negative axes count from the end in TF too)
    axes = ctx.x(ctx.inp(node, 1)) if static_axes is None else static_axes
    keep = bool(attr(node, "keepdims", 1))
    op = node.op_type
    if not axes:
        if op in ("ReduceL1", "ReduceL2"):
            return [unary(ctx, "Abs", x)]
        if op == "ReduceSumSquare":
            return [unary(ctx, "Square", x)]
        if op == "ReduceLogSum":
            return [unary(ctx, "Log", x)]
        return [ctx.op("Identity", [x])]
    if op in REDUCE:
        if ctx.tf_dtype(node.inputs[0]) == "bool":
            return [reduce(ctx, {"ReduceMax": "Any", "ReduceMin": "All"}.get(op, REDUCE[op]),
                           x, axes, keep)]
        return [reduce(ctx, REDUCE[op], x, axes, keep)]
    if op == "ReduceL1":
        return [reduce(ctx, "Sum", unary(ctx, "Abs", x), axes, keep)]
    if op == "ReduceL2":
        return [unary(ctx, "Sqrt", reduce(ctx, "Sum", unary(ctx, "Square", x), axes, keep))]
    if op == "ReduceSumSquare":
        return [reduce(ctx, "Sum", unary(ctx, "Square", x), axes, keep)]
    if op == "ReduceLogSum":
        return [unary(ctx, "Log", reduce(ctx, "Sum", x, axes, keep))]
    # ReduceLogSumExp, stable: m + log(sum(exp(x - m))) with m the max (0 where it is inf).
    m = reduce(ctx, "Max", x, axes, True)
    finite = ctx.op("SelectV2", [unary(ctx, "IsInf", m), fconst(ctx, 0), m])
    s = reduce(ctx, "Sum", unary(ctx, "Exp", binary(ctx, "Sub", x, finite)), axes, keep)
    if not keep:  # drop the kept size-1 axes (a max over them), also for run-time axes
        finite = reduce(ctx, "Max", finite, axes, False)
    return [binary(ctx, "AddV2", unary(ctx, "Log", s), finite)]


def _list_i(values: list[int]) -> dict:
    return a_list("i", values)


def _arg_check(ctx: Ctx, node: ir.Node) -> str | None:
    return None if ctx.rank(node.inputs[0]) is not None else "the input's rank is unknown"


@rule("ArgMax", "ArgMin", check=_arg_check)
def argmax(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX ArgMax/ArgMin -> TF ArgMax/ArgMin (booleans cast to int32 first);
    select_last_index searches the reversed axis, keepdims adds the axis back."""
    v = ctx.inp(node, 0)
    rank = ctx.need_rank(v, node)
    axis = attr(node, "axis", 0) % rank
    x = ctx.x(v)
    op = node.op_type
    if ctx.tf_dtype(v) == "bool":
        x = ctx.op("Cast", [x], {"DstT": a_type("int32")})
    if attr(node, "select_last_index", 0):
        flipped = ctx.op("ReverseV2", [x, ctx.i32([axis], "axis")])
        idx = ctx.op(op, [flipped, ctx.i32(axis, "axis")])
        dim = ctx.need_shape(v, node)[axis]
        last = ctx.i32(dim - 1) if dim is not None else binary(
            ctx, "Sub", ctx.op("Squeeze", [ctx.dim_of(x, axis)], {"squeeze_dims": _list_i([0])}),
            ctx.i32(1))
        y = binary(ctx, "Sub", last, idx)
    else:
        y = ctx.op(op, [x, ctx.i32(axis, "axis")])
    if attr(node, "keepdims", 1):
        y = ctx.op("ExpandDims", [y, ctx.i32(axis, "axis")])
    return [y]


# --- matrix products ----------------------------------------------------------------------------

@rule("MatMul")
def matmul(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX MatMul -> TF MatMul (ranks up to 2) or BatchMatMulV2, 1-D operands promoted as
    NumPy does and batch dimensions broadcast where tfjs would not (as is when a rank is
    unknown)."""
    va, vb = ctx.inputs(node, 2)
    a, b = ctx.x(va), ctx.x(vb)
    ra, rb = ctx.rank(va), ctx.rank(vb)
    if ra is None or rb is None:
        return [ctx.op("BatchMatMulV2", [a, b], {"adj_x": a_bool(False), "adj_y": a_bool(False)})]
    if ra == 1:
        a = ctx.op("ExpandDims", [a, ctx.i32(0, "axis")])
    if rb == 1:
        b = ctx.op("ExpandDims", [b, ctx.i32(-1, "axis")])
    if max(ra, rb) <= 2:
        y = ctx.op("MatMul", [a, b], {"transpose_a": a_bool(False),
                                      "transpose_b": a_bool(False)})
    else:
        a, b = _broadcast_batch(ctx, va, vb, a, b)
        y = ctx.op("BatchMatMulV2", [a, b], {"adj_x": a_bool(False), "adj_y": a_bool(False)})
    if rb == 1:
        y = ctx.op("Squeeze", [y], {"squeeze_dims": _list_i([-1])})
    if ra == 1:
        y = ctx.op("Squeeze", [y], {"squeeze_dims": _list_i([-1 if rb == 1 else -2])})
    return [y]


def _broadcast_batch(ctx: Ctx, va: ir.Value, vb: ir.Value, a: str, b: str) -> tuple[str, str]:
    """tfjs's batched matmul broadcasts only when one batch is 1 or both are equal."""
    sa, sb = ctx.shape(va), ctx.shape(vb)
    if sa is None or sb is None or len(sa) < 2 or len(sb) < 2:
        return a, b
    ba, bb = all_known(sa[:-2]), all_known(sb[:-2])
    if ba is None or bb is None:
        return a, b
    pa, pb = int(np.prod(ba)), int(np.prod(bb))
    if (pa == pb and list(ba) == list(bb)) or pa == 1 or pb == 1:
        return a, b
    batch = list(np.broadcast_shapes(tuple(ba), tuple(bb)))
    if list(ba) != batch:
        a = ctx.op("BroadcastTo", [a, ctx.i32(batch + sa[-2:], "shape")])
    if list(bb) != batch:
        b = ctx.op("BroadcastTo", [b, ctx.i32(batch + sb[-2:], "shape")])
    return a, b


@rule("Gemm")
def gemm(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Gemm -> TF MatMul (+ AddV2 of C); a constant B is transposed and scaled by alpha
    ahead of time, a constant C by beta."""
    va, vb = ctx.inp(node, 0), ctx.inp(node, 1)
    vc = ctx.opt(node, 2)
    alpha, beta = attr(node, "alpha", 1.0), attr(node, "beta", 1.0)
    trans_a, trans_b = bool(attr(node, "transA", 0)), bool(attr(node, "transB", 0))
    a = ctx.x(va)
    bval = ctx.value(vb)
    if bval is not None:
        bmat = bval.T if trans_b else bval
        if alpha != 1.0:
            bmat = (bmat.astype(np.float64) * alpha).astype(bval.dtype)
        b, trans_b, scaled = ctx.const(np.ascontiguousarray(bmat), "weight"), False, True
    else:
        b, scaled = ctx.x(vb), False
    y = ctx.op("MatMul", [a, b], {"transpose_a": a_bool(trans_a),
                                  "transpose_b": a_bool(trans_b)})
    if alpha != 1.0 and not scaled:
        y = binary(ctx, "Mul", y, like(ctx, va, alpha))
    if vc is not None and beta != 0.0:
        cval = ctx.value(vc)
        if cval is not None:
            c = ctx.const((cval.astype(np.float64) * beta).astype(cval.dtype)
                          if beta != 1.0 else cval, "bias")
        else:
            c = ctx.x(vc)
            if beta != 1.0:
                c = binary(ctx, "Mul", c, like(ctx, vc, beta))
        y = binary(ctx, "AddV2", y, c)
    return [y]


def _einsum_check(ctx: Ctx, node: ir.Node) -> str | None:
    eq = attr(node, "equation", "").replace(" ", "")
    lhs = eq.split("->")[0].split(",")
    if "..." in eq:
        return "tfjs's einsum has no ellipsis"
    if len(lhs) > 2:
        return "tfjs's einsum takes at most two operands"
    if any(len(set(term)) != len(term) for term in lhs):
        return "tfjs's einsum has no repeated index within an operand (traces, diagonals)"
    if "->" not in eq:
        return "implicit output (no '->')"
    return None


@rule("Einsum", check=_einsum_check)
def einsum(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Einsum -> TF Einsum (spaces dropped); the check refuses what tfjs's einsum lacks."""
    inputs = [ctx.x(ctx.inp(node, i)) for i in range(len(node.inputs))]
    eq = attr(node, "equation").replace(" ", "")
    return [ctx.op("Einsum", inputs, {"equation": a_str(eq), "N": a_int(len(inputs))})]
