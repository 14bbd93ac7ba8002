"""ONNX Resize whose input or output sizes are known only at run time -> TF.js.

Detector necks and OCR detectors resize a feature map to the size of another one
(``Resize(x, sizes=Concat(Shape(x)[0:2], Shape(y)[2:4]))``), or by a constant factor on an
input of dynamic height and width. tfjs reads ResizeBilinear's and ResizeNearestNeighbor's
``size`` from a tensor, and StridedSlice/GatherV2/Range take run-time tensors too, so such a
Resize stays dynamic:

* Which axes change is decided from the graph: a ``sizes`` entry traced to the input's own
  dimension (``shape_trace``), or a scale of exactly 1, keeps its axis; any other axis counts
  as resized (so a size that happens to be equal is still computed correctly).
* A tfjs kernel is used only where it reads exactly what ONNX reads *for every size*: for
  integer scales, tfjs's and ONNX's per-axis plans are compared over a range of input sizes
  (both depend on the output position modulo the factor, and on the edges); for sizes given at
  run time (scale = out / in), only the pairs whose formulas are identical: nearest
  asymmetric+floor (TF's default), linear half_pixel (half_pixel_centers), linear
  align_corners (align_corners).
* Otherwise each resized axis is computed at run time: output positions by Range, the source
  coordinate by ONNX's formula, then one GatherV2 (nearest, with the mode's rounding) or two
  GatherV2s blended by the fraction (linear). Where the scale is out / in (sizes given, or an
  integer factor) the coordinate is a ratio of integers and is computed in int32, exactly;
  otherwise (a non-integer or run-time scale, half_pixel_symmetric) in float32 as
  onnxruntime computes it.

Refused: ``keep_aspect_ratio_policy`` other than stretch with run-time sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from ...models.tfjs_graph import a_bool, a_int, a_type
from .core import Ctx, attr, concat, unsupported
from .math_ops import binary, fconst, unary
from .resize_plan import TFJS_SETTINGS, _inputs, _settings, _to_nchw, onnx_plan, tfjs_plan
from .shape_trace import element, same_dim

SAMPLED_SIZES = range(1, 25)  # input sizes over which integer-scale plans are compared


@dataclass
class Plan:
    """How each NCHW axis of a run-time Resize gets its output size."""

    rank: int
    # resized NCHW axis -> ("const", n) | ("sizes", k) | ("scale", f) | ("scales", k)
    out: dict[int, tuple[str, float | int]] = field(default_factory=dict)


def plan(ctx: Ctx, node: ir.Node) -> Plan | str:
    """The plan of a Resize with run-time sizes, or why it cannot be mapped."""
    s = _settings(node)
    xv = ctx.inp(node, 0)
    shape = ctx.shape(xv)
    if shape is None:
        return "the input's rank is unknown"
    rank = len(shape)
    where = _to_nchw(rank)
    if attr(node, "keep_aspect_ratio_policy", "stretch") != "stretch":
        return "keep_aspect_ratio_policy with sizes known only at run time"
    sv, zv = _inputs(node)
    axes = attr(node, "axes")
    axes = list(range(rank)) if axes is None else [a % rank for a in axes]
    zconst = ctx.value(zv) if zv is not None else None
    use_sizes = zv is not None and (zconst is None or zconst.size > 0)
    vec = zv if use_sizes else sv
    if vec is None:
        return "neither scales nor sizes is given"
    n = (ctx.shape(vec) or [None])[0]
    if n is not None and n != len(axes):
        return f"{n} scales/sizes for {len(axes)} axes"
    out = Plan(rank)
    for k, a in enumerate(axes):
        e = element(ctx, vec, k)
        if use_sizes:
            if same_dim(ctx, e, xv, where[a]):
                continue
            out.out[a] = ("const", int(e)) if isinstance(e, int) else ("sizes", k)
        else:
            if isinstance(e, float) and e == 1.0:
                continue
            out.out[a] = ("scale", float(e)) if isinstance(e, (int, float)) else ("scales", k)
    if s["mode"] == "nearest" or ctx.tf_dtype(xv) == "float32":
        return out
    return "linear resizing of a non-float tensor"


def _kernel_flags(s: dict, p: Plan) -> tuple[bool, bool] | None:
    """tfjs's (align_corners, half_pixel_centers) whose kernel is exact for every size."""
    if p.rank != 4 or not p.out or not set(p.out) <= {2, 3} or s["mode"] not in ("nearest",
                                                                                  "linear"):
        return None
    kind = "nearest" if s["mode"] == "nearest" else "bilinear"
    candidates = set(TFJS_SETTINGS)
    for how, value in p.out.values():
        if how == "scale" and float(value).is_integer() and value >= 1:
            k = int(value)
            ok = {flags for flags in TFJS_SETTINGS if all(
                np.allclose(tfjs_plan(kind, n, n * k, *flags), onnx_plan(s, n, n * k, k),
                            atol=1e-6) for n in SAMPLED_SIZES)}
        elif how in ("sizes", "const"):  # scale = out / in: identical formulas only
            ok = set()
            if kind == "nearest" and s["coord"] == "asymmetric" and s["nearest"] == "floor":
                ok = {(False, False)}
            elif kind == "bilinear" and s["coord"] == "half_pixel":
                ok = {(False, True)}
            elif kind == "bilinear" and s["coord"] == "align_corners":
                ok = {(True, False)}
        else:
            return None
        candidates &= ok
    return next((f for f in TFJS_SETTINGS if f in candidates), None)


def emit(ctx: Ctx, node: ir.Node, p: Plan) -> list[str]:
    """The TF ops of a run-time Resize planned by ``plan``."""
    s = _settings(node)
    xv = ctx.inp(node, 0)
    x = ctx.x(xv)
    if not p.out:
        return [ctx.op("Identity", [x])]
    where = _to_nchw(p.rank)
    flags = _kernel_flags(s, p)
    if flags is not None:
        size = concat(ctx, [_out_size(ctx, node, p, a, x, where[a]) for a in (2, 3)], 0)
        op = "ResizeNearestNeighbor" if s["mode"] == "nearest" else "ResizeBilinear"
        return [ctx.op(op, [x, size], {"align_corners": a_bool(flags[0]),
                                       "half_pixel_centers": a_bool(flags[1])})]
    for a in sorted(p.out):
        x = _axis(ctx, node, s, p, x, a, where[a])
    return [x]


def _in_size(ctx: Ctx, node: ir.Node, x: str, j: int) -> str:
    """Dimension ``j`` of the (channels-last) input as a 1-element int32 tensor."""
    d = (ctx.shape(ctx.inp(node, 0)) or [None] * (j + 1))[j]
    return ctx.i32([d], "in_size") if d is not None else ctx.dim_of(x, j)


def _out_size(ctx: Ctx, node: ir.Node, p: Plan, a: int, x: str, j: int) -> str:
    """Output size of NCHW axis ``a`` as a 1-element int32 tensor (ONNX: floor(in * scale))."""
    how = p.out.get(a)
    if how is None:
        return _in_size(ctx, node, ctx.x(ctx.inp(node, 0)), j)
    kind, value = how
    zv = _inputs(node)[1]
    if kind == "const":
        return ctx.i32([int(value)], "out_size")
    if kind == "sizes":
        assert zv is not None
        return _to_i32(ctx, zv, ctx.slice1(ctx.x(zv), int(value), int(value) + 1))
    n_in = _in_size(ctx, node, x, j)
    if kind == "scale" and float(value).is_integer():
        return binary(ctx, "Mul", n_in, ctx.i32([int(value)], "factor"))
    scale = fconst(ctx, float(value)) if kind == "scale" else _scale_of(ctx, node, int(value))
    prod = binary(ctx, "Mul", _float(ctx, n_in), scale)
    return ctx.op("Cast", [unary(ctx, "Floor", prod)], {"DstT": a_type("int32")})


def _to_i32(ctx: Ctx, v: ir.Value, ref: str) -> str:
    return ref if ctx.tf_dtype(v) == "int32" else ctx.op("Cast", [ref],
                                                         {"DstT": a_type("int32")})


def _scale_of(ctx: Ctx, node: ir.Node, k: int) -> str:
    sv, _ = _inputs(node)
    if sv is None:
        raise unsupported(node, "no scales")
    return ctx.slice1(ctx.x(sv), k, k + 1)


def _float(ctx: Ctx, ref: str) -> str:
    return ctx.op("Cast", [ref], {"DstT": a_type("float32")})


def _axis(ctx: Ctx, node: ir.Node, s: dict, p: Plan, x: str, a: int, j: int) -> str:
    """Resize NCHW axis ``a`` (channels-last ``j``) of ``x`` as ONNX defines it."""
    n_in_i = _in_size(ctx, node, x, j)
    n_out_i = _out_size(ctx, node, p, a, x, j)
    kind, value = p.out[a]
    if s["coord"] in RATIONAL and (kind in ("sizes", "const") or (
            kind == "scale" and float(value).is_integer() and value >= 1)):
        return _rational_axis(ctx, s, p, x, j, n_in_i, n_out_i)
    n_in, n_out = _float(ctx, n_in_i), _float(ctx, n_out_i)
    # onnxruntime: with sizes the scale is out / in (in float32); with scales, the scale given
    if kind in ("sizes", "const"):
        scale = binary(ctx, "RealDiv", n_out, n_in)
    elif kind == "scale":
        scale = fconst(ctx, float(p.out[a][1]))
    else:
        scale = _scale_of(ctx, node, int(p.out[a][1]))
    zero_i, one_i = ctx.i32(0), ctx.i32(1)
    limit = ctx.op("Reshape", [n_out_i, ctx.i32([], "scalar")])
    pos = _float(ctx, ctx.op("Range", [zero_i, limit, one_i], {"Tidx": a_type("int32")}))
    # the resized length in ONNX's formulas: the output size, or in * scale (not floored)
    # when scales are given (as the static plans take it)
    length = n_out if kind in ("sizes", "const") else binary(ctx, "Mul", n_in, scale)
    c = _original(ctx, s["coord"], pos, n_in, n_out, length, scale)
    last = binary(ctx, "Sub", n_in, fconst(ctx, 1.0))
    axis = ctx.i32(j, "axis")
    if s["mode"] == "nearest":
        idx = _round(ctx, s["nearest"], c)
        idx = binary(ctx, "Minimum", binary(ctx, "Maximum", idx, fconst(ctx, 0.0)), last)
        idx = ctx.op("Cast", [idx], {"DstT": a_type("int32")})
        return ctx.op("GatherV2", [x, idx, axis], {"batch_dims": a_int(0)})
    if s["mode"] == "cubic":  # (no clamping of the coordinate: the taps are clamped)
        lo = unary(ctx, "Floor", c)
        frac = binary(ctx, "Sub", c, lo)
        lo_i = ctx.op("Cast", [lo], {"DstT": a_type("int32")})
        return _cubic(ctx, s, p, x, j, lo_i, frac, binary(ctx, "Sub", n_in_i, one_i))
    c = binary(ctx, "Minimum", binary(ctx, "Maximum", c, fconst(ctx, 0.0)), last)
    lo = unary(ctx, "Floor", c)
    frac = binary(ctx, "Sub", c, lo)
    lo_i = ctx.op("Cast", [lo], {"DstT": a_type("int32")})
    hi_i = binary(ctx, "Minimum", binary(ctx, "AddV2", lo_i, one_i),
                  binary(ctx, "Sub", n_in_i, one_i))
    return _blend(ctx, p, x, j, lo_i, hi_i, frac)


# Coordinate rules whose source coordinate is a ratio of integers when the scale is out / in
# (sizes given, or an integer factor): computed in int32, they are exact (and a float engine's
# rounding cannot flip an index, which would also blind the parity check's noise estimate).
RATIONAL = {"asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners",
            "tf_half_pixel_for_nn"}


def _rational_axis(ctx: Ctx, s: dict, p: Plan, x: str, j: int, n_in: str, n_out: str) -> str:
    """One axis by exact integer arithmetic: x_original = num / den per output position."""
    one, two = ctx.i32(1), ctx.i32(2)
    limit = ctx.op("Reshape", [n_out, ctx.i32([], "scalar")])
    pos = ctx.op("Range", [ctx.i32(0), limit, one], {"Tidx": a_type("int32")})
    coord = s["coord"]
    twice = binary(ctx, "AddV2", binary(ctx, "Mul", pos, two), one)  # 2x + 1
    if coord == "asymmetric":  # x * in / out
        num, den = binary(ctx, "Mul", pos, n_in), n_out
    elif coord == "tf_half_pixel_for_nn":  # (x + 1/2) * in / out
        num, den = binary(ctx, "Mul", twice, n_in), binary(ctx, "Mul", n_out, two)
    elif coord == "align_corners":  # x * (in - 1) / (out - 1); 0 for one output
        num = binary(ctx, "Mul", pos, binary(ctx, "Sub", n_in, one))
        den = binary(ctx, "Maximum", binary(ctx, "Sub", n_out, one), one)
    else:  # half_pixel: (x + 1/2) * in / out - 1/2
        num = binary(ctx, "Sub", binary(ctx, "Mul", twice, n_in), n_out)
        den = binary(ctx, "Mul", n_out, two)
        if coord == "pytorch_half_pixel":  # 0 for one output
            many = ctx.op("Cast", [binary(ctx, "Greater", n_out, one)],
                          {"DstT": a_type("int32")})
            num = binary(ctx, "Mul", num, many)
    last = binary(ctx, "Sub", n_in, one)
    zero = ctx.i32(0)
    axis = ctx.i32(j, "axis")
    if s["mode"] == "nearest":
        idx = _round_ratio(ctx, s["nearest"], num, den)
        idx = binary(ctx, "Minimum", binary(ctx, "Maximum", idx, zero), last)
        return ctx.op("GatherV2", [x, idx, axis], {"batch_dims": a_int(0)})
    lo = binary(ctx, "FloorDiv", num, den)
    rest = binary(ctx, "Sub", num, binary(ctx, "Mul", lo, den))
    if s["mode"] == "cubic":
        return _cubic(ctx, s, p, x, j, lo,
                      binary(ctx, "RealDiv", _float(ctx, rest), _float(ctx, den)), last)
    # beyond either edge the coordinate is clamped: the edge element, weight 0 on the next
    outside = ctx.op("LogicalOr", [binary(ctx, "Less", lo, zero),
                                   binary(ctx, "GreaterEqual", lo, last)])
    frac = binary(ctx, "RealDiv", _float(ctx, rest), _float(ctx, den))
    frac = ctx.op("SelectV2", [outside, binary(ctx, "Mul", frac, fconst(ctx, 0.0)), frac])
    lo = binary(ctx, "Minimum", binary(ctx, "Maximum", lo, zero), last)
    hi = binary(ctx, "Minimum", binary(ctx, "AddV2", lo, one), last)
    return _blend(ctx, p, x, j, lo, hi, frac)


def _cubic(ctx: Ctx, s: dict, p: Plan, x: str, j: int, lo: str, frac: str, last: str) -> str:
    """ONNX's cubic interpolation along channels-last axis ``j``: taps lo-1..lo+2 (clamped to
    the edges) weighted by Keys' kernel with ``cubic_coeff_a`` at distances 1+t, t, 1-t, 2-t
    (the outer two always on its far piece, the inner two on its near one); with
    ``exclude_outside`` the taps beyond the edges get no weight and the rest is renormalised."""
    a = float(s["cubic_a"])
    zero, one = ctx.i32(0), fconst(ctx, 1.0)
    axis = ctx.i32(j, "axis")
    bshape = [1] * p.rank
    bshape[j] = -1
    total = None
    weights, taps = [], []
    for k in (-1, 0, 1, 2):
        d = binary(ctx, "Sub", frac, fconst(ctx, float(k)))
        if k > 0:
            d = unary(ctx, "Neg", d)  # |t - k| with t in [0, 1)
        if k in (0, 1):  # ((a + 2) d - (a + 3)) d^2 + 1
            w = binary(ctx, "Mul", binary(ctx, "Sub", binary(ctx, "Mul", d, fconst(ctx, a + 2)),
                                          fconst(ctx, a + 3)), unary(ctx, "Square", d))
            w = binary(ctx, "AddV2", w, one)
        else:  # ((a d - 5 a) d + 8 a) d - 4 a
            w = binary(ctx, "Sub", binary(ctx, "Mul", d, fconst(ctx, a)), fconst(ctx, 5 * a))
            w = binary(ctx, "AddV2", binary(ctx, "Mul", w, d), fconst(ctx, 8 * a))
            w = binary(ctx, "Sub", binary(ctx, "Mul", w, d), fconst(ctx, 4 * a))
        idx = binary(ctx, "AddV2", lo, ctx.i32(k))
        if s["exclude"]:
            inside = ctx.op("LogicalAnd", [binary(ctx, "GreaterEqual", idx, zero),
                                           binary(ctx, "LessEqual", idx, last)])
            w = ctx.op("SelectV2", [inside, w, binary(ctx, "Mul", w, fconst(ctx, 0.0))])
            total = w if total is None else binary(ctx, "AddV2", total, w)
        weights.append(w)
        taps.append(binary(ctx, "Minimum", binary(ctx, "Maximum", idx, zero), last))
    y = None
    for w, idx in zip(weights, taps):
        if total is not None:
            w = binary(ctx, "RealDiv", w, total)
        term = binary(ctx, "Mul", ctx.op("GatherV2", [x, idx, axis], {"batch_dims": a_int(0)}),
                      ctx.op("Reshape", [w, ctx.i32(bshape, "shape")]))
        y = term if y is None else binary(ctx, "AddV2", y, term)
    assert y is not None
    return y


def _round_ratio(ctx: Ctx, mode: str, num: str, den: str) -> str:
    """ONNX's nearest_mode rounding of num / den (den > 0), in integers."""
    two = ctx.i32(2)
    if mode == "floor":
        return binary(ctx, "FloorDiv", num, den)
    if mode == "ceil":  # -floor(-num / den)
        return unary(ctx, "Neg", binary(ctx, "FloorDiv", unary(ctx, "Neg", num), den))
    if mode == "round_prefer_floor":  # ceil(num / den - 1/2) = -floor((den - 2 num) / 2 den)
        return unary(ctx, "Neg", binary(ctx, "FloorDiv", binary(
            ctx, "Sub", den, binary(ctx, "Mul", num, two)), binary(ctx, "Mul", den, two)))
    # round_prefer_ceil: floor(num / den + 1/2) = floor((2 num + den) / 2 den)
    return binary(ctx, "FloorDiv", binary(ctx, "AddV2", binary(ctx, "Mul", num, two), den),
                  binary(ctx, "Mul", den, two))


def _blend(ctx: Ctx, p: Plan, x: str, j: int, lo: str, hi: str, frac: str) -> str:
    """x[lo] + (x[hi] - x[lo]) * frac along channels-last axis ``j``."""
    axis = ctx.i32(j, "axis")
    below = ctx.op("GatherV2", [x, lo, axis], {"batch_dims": a_int(0)})
    above = ctx.op("GatherV2", [x, hi, axis], {"batch_dims": a_int(0)})
    bshape = [1] * p.rank
    bshape[j] = -1
    frac = ctx.op("Reshape", [frac, ctx.i32(bshape, "shape")])
    return binary(ctx, "AddV2", below, binary(ctx, "Mul", binary(ctx, "Sub", above, below), frac))


def _original(ctx: Ctx, coord: str, pos: str, n_in: str, n_out: str, length: str,
              scale: str) -> str:
    """x_original for output positions ``pos`` (ONNX's formulas, in float32)."""
    half = fconst(ctx, 0.5)
    if coord == "asymmetric":
        return binary(ctx, "RealDiv", pos, scale)
    centred = binary(ctx, "RealDiv", binary(ctx, "AddV2", pos, half), scale)
    if coord == "tf_half_pixel_for_nn":
        return centred
    if coord == "align_corners":
        span = binary(ctx, "Sub", length, fconst(ctx, 1.0))
        c = binary(ctx, "RealDiv", binary(ctx, "Mul", pos, binary(ctx, "Sub", n_in,
                                                                  fconst(ctx, 1.0))), span)
        return _unless_single(ctx, n_out, pos, c)
    c = binary(ctx, "Sub", centred, half)
    if coord == "half_pixel":
        return c
    if coord == "pytorch_half_pixel":
        return _unless_single(ctx, n_out, pos, c)
    # half_pixel_symmetric: shifted so that the resized image stays centred
    adjustment = binary(ctx, "RealDiv", n_out, length)
    centre = binary(ctx, "Mul", n_in, half)
    shift = binary(ctx, "Mul", centre, binary(ctx, "Sub", fconst(ctx, 1.0), adjustment))
    return binary(ctx, "AddV2", shift, c)


def _unless_single(ctx: Ctx, n_out: str, pos: str, c: str) -> str:
    """``c``, or 0 where the output has one element (ONNX's special case; ``c`` is 0 / 0
    there for align_corners, so the zeros are made from the positions, not from ``c``)."""
    many = binary(ctx, "Greater", n_out, fconst(ctx, 1.0))
    return ctx.op("SelectV2", [many, c, binary(ctx, "Mul", pos, fconst(ctx, 0.0))])


def _round(ctx: Ctx, mode: str, c: str) -> str:
    """ONNX's nearest_mode rounding of coordinates ``c`` (float)."""
    if mode == "floor":
        return unary(ctx, "Floor", c)
    if mode == "ceil":
        return unary(ctx, "Ceil", c)
    if mode == "round_prefer_floor":  # halves go down
        return unary(ctx, "Ceil", binary(ctx, "Sub", c, fconst(ctx, 0.5)))
    return unary(ctx, "Floor", binary(ctx, "AddV2", c, fconst(ctx, 0.5)))  # prefer ceil
