"""ONNX -> TF.js: the layout-sensitive ops, mapped from their channels-last twins.

Each rule here has ``layout=True``: ``onnx_normalize.to_channels_last`` has replaced the ONNX
node by Transpose ∘ X' ∘ Transpose, X' carrying X's attributes and inputs with tensor 0
channels-last ([N, *spatial, C]). Attributes keep ONNX's meaning and order (pads are
[x1_begin, x2_begin, ..., x1_end, ...] over the spatial axes, scales/sizes of Resize are in
NCHW order). TF's convolutions and pools are NHWC; 1-D ones run as 2-D with a unit height.
Resize, also layout-sensitive, has its own module (``resize``).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ...errors import FormatError
from ...models.tfjs_graph import a_float, a_int, a_list, a_str
from ..padding import same_pads, split_pads
from .core import Ctx, all_known, attr, concat, known, rule, strided_attrs, unsupported
from .math_ops import binary, fconst, reduce, unary
from .norm import extra_outputs_unused, normalize_over

Pads = list[tuple[int, int]]  # (begin, end) per spatial axis

# --- geometry -----------------------------------------------------------------------------------

def spatial(ctx: Ctx, node: ir.Node) -> list[int | None] | None:
    """The spatial sizes of the node's (channels-last) input 0; None when its rank is unknown."""
    s = ctx.shape(ctx.inp(node, 0))
    return None if s is None else s[1:-1]


def _static_spatial(ctx: Ctx, node: ir.Node) -> list[int]:
    """The spatial sizes, for rules whose check has asked for them static."""
    return known(ctx.need_shape(ctx.inp(node, 0), node)[1:-1], node, "the spatial size")


def _pads(node: ir.Node, dims: list[int | None], kernel: list[int], strides: list[int],
          dilations: list[int]) -> Pads | None:
    """(begin, end) padding per spatial axis; None when it depends on unknown sizes."""
    n = len(kernel)
    auto = attr(node, "auto_pad", "NOTSET")
    if auto in ("NOTSET", "VALID"):
        p = attr(node, "pads", [0] * 2 * n) if auto == "NOTSET" else [0] * 2 * n
        return [(p[i], p[i + n]) for i in range(n)]
    out = []
    for d, k, s, dl in zip(dims, kernel, strides, dilations):
        if d is None:
            return None
        out.append(same_pads(d, k, s, dl, lower=auto != "SAME_UPPER"))
    return out


def _geometry(ctx: Ctx, node: ir.Node, kernel: list[int]
              ) -> tuple[list[int], list[int], list[int | None], Pads | None]:
    """(strides, dilations, spatial sizes, pads) of a convolution or pool."""
    n = len(kernel)
    strides = attr(node, "strides", [1] * n)
    dilations = attr(node, "dilations", [1] * n)
    dims = spatial(ctx, node) or [None] * n
    pads = _pads(node, dims, kernel, strides, dilations)
    return strides, dilations, dims, pads


def _to_2d(ctx: Ctx, x: str, n: int) -> str:
    return ctx.op("ExpandDims", [x, ctx.i32(1, "axis")]) if n == 1 else x


def _from_2d(ctx: Ctx, y: str, n: int) -> str:
    return ctx.op("Squeeze", [y], {"squeeze_dims": a_list("i", [1])}) if n == 1 else y


def _pad_spatial(ctx: Ctx, x: str, pads: Pads, value: float,
                 dtype: str = "float32") -> str:
    if not any(b or e for b, e in pads):
        return x
    paddings = [[0, 0], *[[b, e] for b, e in pads], [0, 0]]
    return ctx.op("PadV2", [x, ctx.i32(paddings, "paddings"), ctx.scalar(value, dtype)])


# --- convolution --------------------------------------------------------------------------------

def _conv_check(ctx: Ctx, node: ir.Node) -> str | None:
    rank = ctx.rank(node.inputs[0])
    if rank is None or ctx.rank(node.inputs[1]) is None:
        return "the rank of the input or weight is unknown"
    n = rank - 2
    if n not in (1, 2, 3):
        return f"{n}-D convolution (tfjs has 1-D to 3-D)"
    if ctx.rank(node.inputs[1]) != rank:
        return f"a rank-{ctx.rank(node.inputs[1])} weight for a rank-{rank} input"
    if attr(node, "group", 1) < 1:
        return f"group {attr(node, 'group', 1)} (ONNX wants at least 1)"
    kernel = attr(node, "kernel_shape") or (ctx.shape(node.inputs[1]) or [None] * rank)[2:]
    if None in kernel:
        return "the kernel size is unknown"
    if node.op_type == "Conv" and attr(node, "auto_pad", "NOTSET") == "SAME_LOWER" and \
            None in (spatial(ctx, node) or [None]):
        return "auto_pad=SAME_LOWER on run-time sizes"
    if node.op_type == "Conv" and n == 3:
        if attr(node, "auto_pad", "NOTSET").startswith("SAME") and \
                None in (spatial(ctx, node) or [None]):
            return "3-D SAME padding on run-time sizes"
        if attr(node, "group", 1) != 1 and ctx.value(node.inputs[1]) is None:
            return "grouped 3-D convolution with a run-time weight"
    if node.op_type == "ConvTranspose":
        if n == 3:
            return "3-D ConvTranspose (tfjs has no Conv3DBackpropInput)"
        if ctx.value(node.inputs[1]) is None and max(attr(node, "dilations", [1])) > 1:
            return "dilated ConvTranspose with a run-time weight"
        if spatial(ctx, node) is None:
            return "the input's rank is unknown"
        if attr(node, "output_shape") is not None and None in (spatial(ctx, node) or [None]):
            return "output_shape on an input whose spatial sizes are known only at run time"
    return None


def _weight(ctx: Ctx, v: ir.Value, perm: list[int], array: np.ndarray | None = None) -> str:
    """A weight transposed to TF's layout: folded when constant, else a Transpose op."""
    if array is None:
        array = ctx.value(v)
    if array is not None:
        if array.ndim != len(perm):
            raise FormatError(f"{ctx.where()}: a weight of shape {list(array.shape)} where a "
                              f"rank-{len(perm)} filter belongs")
        return ctx.const(np.ascontiguousarray(np.transpose(array, perm)), "filter")
    return ctx.op("Transpose", [ctx.x(v), ctx.i32(perm, "perm")])


def _bias(ctx: Ctx, node: ir.Node, y: str, index: int) -> str:
    bias = ctx.opt(node, index)
    if bias is not None:
        y = binary(ctx, "AddV2", y, ctx.x(bias))
    return y


def _conv2d_like(ctx: Ctx, op: str, x: str, w: str, strides: list[int], dilations: list[int],
                 pads: Pads) -> str:
    if any(pads_ for pad in pads for pads_ in pad):
        padding = {"padding": a_str("EXPLICIT"), "explicit_paddings": a_list(
            "i", [0, 0, *[p for pad in pads for p in pad], 0, 0])}
    else:
        padding = {"padding": a_str("VALID")}
    step = [1] * len(strides) if max(dilations) > 1 and max(strides) > 1 else strides
    y = ctx.op(op, [x, w], {"strides": a_list("i", [1, *step, 1]),
                            "dilations": a_list("i", [1, *dilations, 1]),
                            "data_format": a_str("NHWC"), **padding})
    if step != strides:  # tfjs wants strides or dilations to be 1: stride by slicing
        rank = len(strides) + 2
        y = ctx.op("StridedSlice", [y, ctx.i32([0] * rank, "begin"), ctx.i32([0] * rank, "end"),
                                    ctx.i32([1, *strides, 1], "strides")],
                   strided_attrs(begin_mask=(1 << rank) - 1, end_mask=(1 << rank) - 1))
    return y


@rule("Conv", check=_conv_check, layout=True)
def conv(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Conv (channels-last twin) -> TF Conv2D, or Conv3D for 3-D (1-D runs as 2-D with a
    unit height); a group equal to the channel count with a constant weight ->
    DepthwiseConv2dNative, other groups are split into one convolution per group."""
    xv, wv = ctx.inp(node, 0), ctx.inp(node, 1)
    wshape = ctx.need_shape(wv, node)
    n = len(wshape) - 2
    kernel = attr(node, "kernel_shape") or known(wshape[2:], node, "the kernel size")
    # pads None: SAME_UPPER on run-time sizes, which is TF's SAME
    strides, dilations, _, pads = _geometry(ctx, node, kernel)
    group = attr(node, "group", 1)
    c_in = (ctx.shape(xv) or [None])[-1]
    m = wshape[0]
    x = ctx.x(xv)
    wval = ctx.value(wv)
    if n == 1:
        x = _to_2d(ctx, x, 1)
        kernel, strides, dilations = [1, *kernel], [1, *strides], [1, *dilations]
        pads = None if pads is None else [(0, 0), *pads]
        if wval is not None:
            wval = wval[:, :, None, :]
    if n == 3:
        if pads is None:  # (refused by _conv_check)
            raise unsupported(node, "3-D SAME padding on run-time sizes")
        return [_bias(ctx, node, _conv3d(ctx, node, x, wv, wval, strides, dilations, pads), 2)]

    def run(op: str, x_: str, w_: str) -> str:
        if pads is None:
            step = strides
            return ctx.op(op, [x_, w_], {"strides": a_list("i", [1, *step, 1]),
                                         "dilations": a_list("i", [1, *dilations, 1]),
                                         "data_format": a_str("NHWC"),
                                         "padding": a_str("SAME")})
        return _conv2d_like(ctx, op, x_, w_, strides, dilations, pads)

    if group == 1:
        if wval is None and n == 1:  # a run-time 1-D weight [M, C, k] -> [1, k, C, M]
            w = ctx.op("ExpandDims", [_weight(ctx, wv, [2, 1, 0]), ctx.i32(0, "axis")])
        else:
            w = _weight(ctx, wv, [2, 3, 1, 0], wval)
        y = run("Conv2D", x, w)
    elif c_in is not None and group == c_in and m is not None and m % group == 0 and \
            wval is not None:
        mult = m // group
        # ONNX output channel c*mult + j reads input channel c: TF's depthwise order.
        kh, kw = wval.shape[2], wval.shape[3]
        filt = wval.reshape(group, mult, kh, kw).transpose(2, 3, 0, 1)
        y = run("DepthwiseConv2dNative", x, ctx.const(np.ascontiguousarray(filt), "filter"))
    else:
        if wval is None:
            raise unsupported(node, "grouped convolution with a run-time weight")
        xs = ctx.op_n("Split", [ctx.i32(3, "axis"), x], {"num_split": a_int(group)},
                      group) if group > 1 else [x]
        per = ctx.need_dim(wv, 0, node) // group
        ys = [run("Conv2D", xs[g], ctx.const(np.ascontiguousarray(
            wval[g * per:(g + 1) * per].transpose(2, 3, 1, 0)), "filter"))
            for g in range(group)]
        y = concat(ctx, ys, 3)
    y = _bias(ctx, node, y, 2)
    return [_from_2d(ctx, y, n)]


def _conv3d(ctx: Ctx, node: ir.Node, x: str, wv: ir.Value, wval: np.ndarray | None,
            strides: list[int], dilations: list[int], pads: Pads) -> str:
    """A 3-D convolution (explicit pads, one Conv3D per group), before its bias."""
    group = attr(node, "group", 1)
    if group > 1 and wval is None:  # (refused by _conv_check)
        raise unsupported(node, "grouped 3-D convolution with a run-time weight")
    x = _pad_spatial(ctx, x, pads, 0.0)
    # tfjs wants strides or dilations to be 1: with both, stride by slicing afterwards
    step = [1] * 3 if max(dilations) > 1 and max(strides) > 1 else strides
    xs = ctx.op_n("Split", [ctx.i32(4, "axis"), x], {"num_split": a_int(group)},
                  group) if group > 1 else [x]
    per = ctx.need_dim(wv, 0, node) // group
    ys = []
    for g in range(group):
        w = _weight(ctx, wv, [2, 3, 4, 1, 0], wval if wval is None or group == 1 else
                    wval[g * per:(g + 1) * per])
        ys.append(ctx.op("Conv3D", [xs[g], w], {
            "strides": a_list("i", [1, *step, 1]), "dilations": a_list("i", [1, *dilations, 1]),
            "padding": a_str("VALID"), "data_format": a_str("NDHWC")}))
    y = concat(ctx, ys, 4)
    if step != strides:
        y = ctx.op("StridedSlice", [y, ctx.i32([0] * 5, "begin"), ctx.i32([0] * 5, "end"),
                                    ctx.i32([1, *strides, 1], "strides")],
                   strided_attrs(begin_mask=31, end_mask=31))
    return y


@rule("ConvTranspose", check=_conv_check, layout=True)
def conv_transpose(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX ConvTranspose (channels-last twin) -> one TF Conv2DBackpropInput per group onto
    the full VALID output, then cropped by ``pads`` and padded by ``output_padding``; a
    constant dilated weight is spread out with zeros first (tfjs has no dilated transposed
    convolution). The full output size ``(d - 1) * s + k`` is computed at run time from the
    input's shape where ``d`` is not static; SAME padding does not depend on ``d`` (it pads
    ``k - s + output_padding`` in all)."""
    xv, wv = ctx.inp(node, 0), ctx.inp(node, 1)
    wshape = ctx.need_shape(wv, node)
    n = len(wshape) - 2
    kernel = attr(node, "kernel_shape") or known(wshape[2:], node, "the kernel size")
    strides = attr(node, "strides", [1] * n)
    dilations = attr(node, "dilations", [1] * n)
    group = attr(node, "group", 1)
    out_pad = attr(node, "output_padding", [0] * n)
    dims = spatial(ctx, node) or [None] * n
    k_eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    x = ctx.x(xv)
    # the full VALID output per spatial axis: static, or (d * s + k - s) at run time
    full: list[int | str] = [
        (d - 1) * s + k if d is not None else binary(
            ctx, "AddV2", binary(ctx, "Mul", ctx.dim_of(x, i + 1), ctx.i32([s], "stride")),
            ctx.i32([k - s], "extent"))
        for i, (d, s, k) in enumerate(zip(dims, strides, k_eff))]
    out_shape = attr(node, "output_shape")
    auto = attr(node, "auto_pad", "NOTSET")
    if out_shape is not None:
        static = _static_spatial(ctx, node)  # (_conv_check asked for them)
        target = out_shape[-n:]
        # (an output_shape without auto_pad splits as SAME_LOWER does)
        pads = [split_pads((d - 1) * s + k + out_pad[i] - target[i],
                           lower=auto != "SAME_UPPER")
                for i, (d, s, k) in enumerate(zip(static, strides, k_eff))]
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        # full + output_padding - d * s, whatever d is
        pads = [split_pads(k - s + out_pad[i], lower=auto != "SAME_UPPER")
                for i, (s, k) in enumerate(zip(strides, k_eff))]
    elif auto == "VALID":
        pads = [(0, 0)] * n
    else:
        p = attr(node, "pads", [0] * 2 * n)
        pads = [(p[i], p[i + n]) for i in range(n)]
    wval = ctx.value(wv)
    if wval is not None and max(dilations) > 1:  # tfjs has no dilated transposed conv
        dilated = np.zeros(wval.shape[:2] + tuple(k_eff), wval.dtype)
        taps = (slice(None), slice(None), *[slice(None, None, d) for d in dilations])
        dilated[taps] = wval
        wval = dilated
    c_in = ctx.need_dim(wv, 0, node)
    m = ctx.need_dim(wv, 1, node) * group
    if n == 1:
        x = _to_2d(ctx, x, 1)
        full, strides, pads, out_pad = [1, *full], [1, *strides], [(0, 0), *pads], [0, *out_pad]
        if wval is not None:
            wval = wval[:, :, None, :]
    batch = (ctx.shape(xv) or [None])[0]
    per_in, per_out = c_in // group, m // group
    xs = ctx.op_n("Split", [ctx.i32(3, "axis"), x], {"num_split": a_int(group)},
                  group) if group > 1 else [x]
    ys = []
    if wval is None:  # a run-time weight [C, M/g, k...] -> [kh, kw, M/g, C]
        wfull = _weight(ctx, wv, [2, 1, 0] if n == 1 else [2, 3, 1, 0])
        if n == 1:
            wfull = ctx.op("ExpandDims", [wfull, ctx.i32(0, "axis")])
    for g in range(group):
        if wval is not None:
            w = ctx.const(np.ascontiguousarray(
                wval[g * per_in:(g + 1) * per_in].transpose(2, 3, 1, 0)), "filter")
        elif group == 1:
            w = wfull
        else:  # this group's input channels: the last axis
            w = ctx.op("StridedSlice", [wfull, ctx.i32([0, 0, 0, g * per_in], "begin"),
                                        ctx.i32([0, 0, 0, (g + 1) * per_in], "end"),
                                        ctx.i32([1, 1, 1, 1], "strides")],
                       strided_attrs(begin_mask=7, end_mask=7))
        shape = ctx.shape_vector([batch if batch is not None else ctx.dim_of(x, 0),
                                  *full, per_out])
        ys.append(ctx.op("Conv2DBackpropInput", [shape, w, xs[g]], {
            "strides": a_list("i", [1, *strides, 1]), "padding": a_str("VALID")}))
    y = concat(ctx, ys, 3)
    # ONNX crops pads[begin] and pads[end] - output_padding from the full result.
    extra = [op_ - e for (b, e), op_ in zip(pads, out_pad)]
    if any(e > 0 for e in extra):
        y = _pad_spatial(ctx, y, [(0, max(e, 0)) for e in extra], 0.0)
    if any(b for b, _ in pads) or any(e < 0 for e in extra):
        rank = len(full) + 2
        begin = [0, *[b for b, _ in pads], 0]
        end = [0, *[min(0, e) for e in extra], 0]
        mask = 1 | (1 << (rank - 1)) | sum(1 << (i + 1) for i, e in enumerate(extra) if e >= 0)
        y = ctx.op("StridedSlice", [y, ctx.i32(begin, "begin"), ctx.i32(end, "end"),
                                    ctx.i32([1] * rank, "strides")],
                   strided_attrs(begin_mask=1 | (1 << (rank - 1)), end_mask=mask))
    y = _bias(ctx, node, y, 2)
    return [_from_2d(ctx, y, n)]


# --- pooling ------------------------------------------------------------------------------------

def _pool_check(ctx: Ctx, node: ir.Node) -> str | None:
    rank = ctx.rank(node.inputs[0])
    if rank is None:
        return "the input's rank is unknown"
    if rank - 2 not in (1, 2, 3):
        return f"{rank - 2}-D pooling"
    if len(node.outputs) > 1 and (node.outputs[1].uses() or node.outputs[1].is_graph_output()):
        return "the Indices output is used (tfjs has no MaxPoolWithArgmax for ONNX's layout)"
    static = None not in (spatial(ctx, node) or [None])
    n = rank - 2
    dil = attr(node, "dilations", [1] * n)
    if not static and _tf_same(node, n):
        return None if ctx.tf_dtype(node.inputs[0]) == "float32" else \
            "pooling of non-float tensors"
    needs_static = attr(node, "ceil_mode", 0) or max(dil) > 1 or attr(
        node, "auto_pad", "NOTSET") == "SAME_LOWER" or (
        node.op_type == "AveragePool" and not attr(node, "count_include_pad", 0) and
        any(attr(node, "pads", [0]))) or attr(node, "auto_pad", "NOTSET") not in ("NOTSET",
                                                                               "VALID")
    if needs_static and not static:
        return "ceil_mode, dilations, auto_pad or excluded padding on run-time sizes"
    if ctx.tf_dtype(node.inputs[0]) != "float32":
        return "pooling of non-float tensors"
    return None


def _tf_same(node: ir.Node, n: int) -> bool:
    """Whether the pool is TF's own SAME pool, whatever the input's size: auto_pad SAME_UPPER
    pads ``max((ceil(d/s) - 1) s + k - d, 0)`` with the odd one at the end, as TF's SAME does;
    both max pools skip the padding, and an average excluding it divides by the taps inside
    the input, as TF's AvgPool does. (ceil_mode, dilations, an average counting the padding
    and LpPool's sum are not what TF's SAME computes.)"""
    return (attr(node, "auto_pad", "NOTSET") == "SAME_UPPER" and not attr(node, "ceil_mode", 0)
            and max(attr(node, "dilations", [1] * n)) == 1
            and (node.op_type == "MaxPool" or (node.op_type == "AveragePool"
                                               and not attr(node, "count_include_pad", 0))))


def _counts(d: int, k: int, s: int, dl: int, b: int, e: int, out: int,
            include_pad: bool) -> np.ndarray:
    """How many taps of each output window of one axis an average divides by."""
    lo, hi = (-b, d + e) if include_pad else (0, d)
    count = np.zeros(out)
    for o in range(out):
        taps = o * s - b + np.arange(k) * dl
        count[o] = np.count_nonzero((taps >= lo) & (taps < hi))
    return count


@rule("MaxPool", "AveragePool", "LpPool", check=_pool_check, layout=True)
def pool(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX MaxPool/AveragePool/LpPool (channels-last twin) -> TF MaxPool/AvgPool (3D for
    3-D, 1-D as 2-D) with VALID padding on an explicitly padded input (ceil_mode pads the end
    further); dilations become a max/mean over strided taps, averages that divide by fewer
    taps than the window (excluded padding, ceil_mode's overhang) are rescaled by constant
    counts, and LpPool is the p-th root of the window's sum of |x|^p."""
    op = node.op_type
    kernel = attr(node, "kernel_shape")
    n = len(kernel)
    strides, dilations, dims, pads = _geometry(ctx, node, kernel)
    if pads is None and _tf_same(node, n):  # run-time sizes: TF pads as SAME_UPPER does
        return [_same_pool(ctx, node, kernel, strides)]
    if pads is None:  # (refused by _pool_check)
        raise unsupported(node, "auto_pad on run-time sizes")
    x = ctx.x(ctx.inp(node, 0))
    k_eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    static = all_known(dims)
    outs: list[int] | None = None
    extra = [0] * n
    if static is not None:
        outs, extra = _pool_sizes(node, static, pads, strides, k_eff)
    if op == "LpPool":
        p = attr(node, "p", 2)
        x = unary(ctx, "Square", x) if p == 2 else binary(ctx, "Pow", unary(ctx, "Abs", x),
                                                          fconst(ctx, p))
    fill = -np.inf if op == "MaxPool" else 0.0
    full_pads = [(b, e + x_) for (b, e), x_ in zip(pads, extra)]
    x = _pad_spatial(ctx, x, full_pads, fill)
    tf_op = "MaxPool" if op == "MaxPool" else "AvgPool"
    if max(dilations) > 1:
        if outs is None:  # (refused by _pool_check)
            raise unsupported(node, "dilations on run-time sizes")
        y = _dilated_pool(ctx, x, tf_op, kernel, strides, dilations, outs)
    else:
        x2 = _to_2d(ctx, x, n)
        k2, s2 = ([1, *kernel], [1, *strides]) if n == 1 else (kernel, strides)
        name = tf_op + ("3D" if n == 3 else "")
        y = ctx.op(name, [x2], {"ksize": a_list("i", [1, *k2, 1]),
                                "strides": a_list("i", [1, *s2, 1]),
                                "padding": a_str("VALID")})
        y = _from_2d(ctx, y, n)
    window = int(np.prod(kernel))
    if op == "AveragePool" and static is not None and outs is not None:
        include = bool(attr(node, "count_include_pad", 0))
        count = np.ones([1])
        for i in range(n):
            c = _counts(static[i], kernel[i], strides[i], dilations[i], pads[i][0], pads[i][1],
                        outs[i], include)
            count = np.multiply.outer(count, c)
        count = count.reshape([1, *outs, 1])
        if (count != window).any():
            y = binary(ctx, "Mul", y, ctx.const((window / count).astype(np.float32), "count"))
    if op == "LpPool":
        y = binary(ctx, "Mul", y, fconst(ctx, window))
        p = attr(node, "p", 2)
        y = unary(ctx, "Sqrt", y) if p == 2 else binary(ctx, "Pow", y, fconst(ctx, 1.0 / p))
    return [y]


def _same_pool(ctx: Ctx, node: ir.Node, kernel: list[int], strides: list[int]) -> str:
    """A pool that ``_tf_same`` accepts, as TF's pool with SAME padding (1-D as 2-D)."""
    n = len(kernel)
    x2 = _to_2d(ctx, ctx.x(ctx.inp(node, 0)), n)
    k2, s2 = ([1, *kernel], [1, *strides]) if n == 1 else (kernel, strides)
    name = ("MaxPool" if node.op_type == "MaxPool" else "AvgPool") + ("3D" if n == 3 else "")
    y = ctx.op(name, [x2], {"ksize": a_list("i", [1, *k2, 1]),
                            "strides": a_list("i", [1, *s2, 1]), "padding": a_str("SAME")})
    return _from_2d(ctx, y, n)


def _pool_sizes(node: ir.Node, dims: list[int], pads: Pads, strides: list[int],
                k_eff: list[int]) -> tuple[list[int], list[int]]:
    """Output sizes per spatial axis (ceil_mode included), and the padding a VALID pool
    needs at the end beyond ``pads`` to give them."""
    outs, extra = [], []
    for i in range(len(k_eff)):
        d, (b, e), s, k = dims[i], pads[i], strides[i], k_eff[i]
        span = d + b + e - k
        if attr(node, "ceil_mode", 0):
            o = -(-span // s) + 1
            if (o - 1) * s >= d + b:
                o -= 1
        else:
            o = span // s + 1
        outs.append(o)
        extra.append(max((o - 1) * s + k - (d + b + e), 0))
    return outs, extra


def _dilated_pool(ctx: Ctx, x: str, tf_op: str, kernel: list[int], strides: list[int],
                  dilations: list[int], outs: list[int]) -> str:
    """Max/mean over kernel taps, each tap a strided slice of the padded input."""
    n = len(kernel)
    rank = n + 2

    def tap_slice(tap: tuple[int, ...]) -> str:
        begin = [0, *[t * d for t, d in zip(tap, dilations)], 0]
        end = [0, *[b + (o - 1) * s + 1 for b, o, s in zip(begin[1:-1], outs, strides)], 0]
        return ctx.op("StridedSlice", [x, ctx.i32(begin, "begin"), ctx.i32(end, "end"),
                                       ctx.i32([1, *strides, 1], "strides")],
                      strided_attrs(begin_mask=1 | 1 << (rank - 1),
                                    end_mask=1 | 1 << (rank - 1)))

    taps = np.ndindex(*kernel)
    y = tap_slice(next(taps))
    for tap in taps:
        y = binary(ctx, "Maximum" if tf_op == "MaxPool" else "AddV2", y, tap_slice(tap))
    if tf_op == "AvgPool":
        y = binary(ctx, "RealDiv", y, fconst(ctx, int(np.prod(kernel))))
    return y


def _global_check(ctx: Ctx, node: ir.Node) -> str | None:
    return None if ctx.rank(node.inputs[0]) is not None else "the input's rank is unknown"


@rule("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", check=_global_check, layout=True)
def global_pool(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX GlobalAveragePool/GlobalMaxPool/GlobalLpPool (channels-last twin) -> TF Mean, Max,
    or the p-th root of the sum of |x|^p over the spatial axes (kept)."""
    rank = ctx.need_rank(ctx.inp(node, 0), node)
    axes = list(range(1, rank - 1))
    x = ctx.x(ctx.inp(node, 0))
    if node.op_type == "GlobalAveragePool":
        return [reduce(ctx, "Mean", x, axes, True)]
    if node.op_type == "GlobalMaxPool":
        return [reduce(ctx, "Max", x, axes, True)]
    p = attr(node, "p", 2)
    s = reduce(ctx, "Sum", binary(ctx, "Pow", unary(ctx, "Abs", x), fconst(ctx, p)), axes, True)
    return [binary(ctx, "Pow", s, fconst(ctx, 1.0 / p))]


# --- normalization over the channel axis --------------------------------------------------------

def _bn_check(ctx: Ctx, node: ir.Node) -> str | None:
    if attr(node, "training_mode", 0):
        return "training_mode=1"
    return extra_outputs_unused(node)


@rule("BatchNormalization", check=_bn_check, layout=True)
def batch_norm(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX BatchNormalization (inference, channels-last twin) -> TF x * k + b with
    k = scale / sqrt(var + epsilon), b = bias - mean * k, folded into constants when all
    four parameters are."""
    x = ctx.x(ctx.inp(node, 0))
    eps = attr(node, "epsilon", 1e-5)
    params = ctx.inputs(node, 5)[1:]  # scale, bias, mean, var
    consts = [a.astype(np.float64) for v in params if (a := ctx.value(v)) is not None]
    if len(consts) == len(params):
        scale, bias, mean, var = consts
        k = scale / np.sqrt(var + eps)
        b = bias - mean * k
        y = binary(ctx, "Mul", x, ctx.const(k.astype(np.float32), "scale"))
        return [binary(ctx, "AddV2", y, ctx.const(b.astype(np.float32), "offset"))]
    scale_ref, bias_ref, mean_ref, var_ref = (ctx.x(v) for v in params)
    k_ref = binary(ctx, "Mul", scale_ref, unary(ctx, "Rsqrt", binary(ctx, "AddV2", var_ref,
                                                                     fconst(ctx, eps))))
    b_ref = binary(ctx, "Sub", bias_ref, binary(ctx, "Mul", mean_ref, k_ref))
    return [binary(ctx, "AddV2", binary(ctx, "Mul", x, k_ref), b_ref)]


@rule("InstanceNormalization", check=_global_check, layout=True)
def instance_norm(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX InstanceNormalization (channels-last twin) -> TF normalisation over the spatial
    axes, times scale plus bias."""
    rank = ctx.need_rank(ctx.inp(node, 0), node)
    return [normalize_over(ctx, ctx.x(ctx.inp(node, 0)), list(range(1, rank - 1)),
                           attr(node, "epsilon", 1e-5), ctx.x(ctx.inp(node, 1)),
                           ctx.x(ctx.inp(node, 2)))]


def _group_norm_check(ctx: Ctx, node: ir.Node) -> str | None:
    s = ctx.shape(node.inputs[0])
    if s is None or s[-1] is None:
        return "the channel count is unknown"
    return None


@rule("GroupNormalization", check=_group_norm_check, layout=True)
def group_norm(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX GroupNormalization (channels-last twin) -> TF normalisation of a
    [N, -1, groups, C / groups] view over its axes 1 and 3, then scale and bias per channel
    (opset 18's constant per-group ones repeated per channel)."""
    v = ctx.inp(node, 0)
    shape = ctx.need_shape(v, node)
    c = ctx.need_dim(v, -1, node)
    groups = attr(node, "num_groups")
    x = ctx.x(v)
    grouped = ctx.op("Reshape", [x, ctx.i32([0 if shape[0] is None else shape[0], -1, groups,
                                             c // groups], "shape")]) if shape[0] is not None \
        else ctx.op("Reshape", [x, ctx.shape_vector([ctx.dim_of(x, 0), -1, groups,
                                                     c // groups])])
    y = normalize_over(ctx, grouped, [1, 3], attr(node, "epsilon", 1e-5), None, None)
    y = ctx.op("Reshape", [y, ctx.shape_of(x)])
    scale, bias = ctx.value(node.inputs[1]), ctx.value(node.inputs[2])
    if scale is not None and bias is not None and scale.shape[-1] == groups and groups != c:
        scale, bias = np.repeat(scale, c // groups), np.repeat(bias, c // groups)  # opset 18
        return [binary(ctx, "AddV2", binary(ctx, "Mul", y, ctx.const(scale, "scale")),
                       ctx.const(bias, "bias"))]
    return [binary(ctx, "AddV2", binary(ctx, "Mul", y, ctx.x(ctx.inp(node, 1))),
                   ctx.x(ctx.inp(node, 2)))]


def _lrn_check(ctx: Ctx, node: ir.Node) -> str | None:
    if ctx.rank(node.inputs[0]) != 4:
        return "LRN of a tensor that is not 4-D (tfjs's LRN is 4-D only)"
    if attr(node, "size") % 2 == 0:
        return "an even size (TF's window is symmetric)"
    return None


@rule("LRN", check=_lrn_check, layout=True)
def lrn(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX LRN (4-D, odd size, channels-last twin) -> TF LRN with depth_radius
    (size - 1) / 2 and alpha / size (ONNX divides alpha by the window size, TF does not)."""
    size = attr(node, "size")
    return [ctx.op("LRN", [ctx.x(ctx.inp(node, 0))], {
        "depth_radius": a_int((size - 1) // 2), "bias": a_float(attr(node, "bias", 1.0)),
        "alpha": a_float(attr(node, "alpha", 1e-4) / size), "beta": a_float(attr(node, "beta",
                                                                                 0.75))})]


# --- depth <-> space ----------------------------------------------------------------------------

def _d2s_check(ctx: Ctx, node: ir.Node) -> str | None:
    s = ctx.shape(node.inputs[0])
    if s is None or len(s) != 4:
        return "the input is not 4-D"
    if node.op_type == "DepthToSpace" and attr(node, "mode", "DCR") == "DCR":
        return None
    if attr(node, "mode", "DCR") not in ("DCR", "CRD"):
        return f"mode={attr(node, 'mode')!r}"
    return None if None not in s[1:] else "the input's spatial and channel sizes are unknown"


@rule("DepthToSpace", "SpaceToDepth", check=_d2s_check, layout=True)
def depth_space(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX DepthToSpace/SpaceToDepth (4-D, channels-last twin) -> TF DepthToSpace for
    DepthToSpace in DCR mode, otherwise Reshape, Transpose, Reshape on static sizes."""
    from .shapes import transpose_ref

    b = attr(node, "blocksize")
    x = ctx.x(ctx.inp(node, 0))
    if node.op_type == "DepthToSpace" and attr(node, "mode", "DCR") == "DCR":
        return [ctx.op("DepthToSpace", [x], {"block_size": a_int(b),
                                             "data_format": a_str("NHWC")})]
    h, w, c = known(ctx.need_shape(ctx.inp(node, 0), node)[1:], node, "the input's size")
    if node.op_type == "DepthToSpace":  # CRD: depth = c * b * b + i * b + j
        t = ctx.op("Reshape", [x, ctx.i32([-1, h, w, c // (b * b), b, b], "shape")])
        t = transpose_ref(ctx, t, [0, 1, 4, 2, 5, 3], None)
        return [ctx.op("Reshape", [t, ctx.i32([-1, h * b, w * b, c // (b * b)], "shape")])]
    t = ctx.op("Reshape", [x, ctx.i32([-1, h // b, b, w // b, b, c], "shape")])
    # DCR (the default): depth = (i * b + j) * c + ch; CRD: depth = ch * b * b + i * b + j
    perm = [0, 1, 3, 2, 4, 5] if attr(node, "mode", "DCR") == "DCR" else [0, 1, 3, 5, 2, 4]
    t = transpose_ref(ctx, t, perm, None)
    return [ctx.op("Reshape", [t, ctx.i32([-1, h // b, w // b, b * b * c], "shape")])]

