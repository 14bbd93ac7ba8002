"""Convolutions, pooling, normalizations and resizing: raised from their channels-last twins.

The twin (see ``converters.onnx_normalize``) reads and writes tensor 0 channels-last; its other
inputs (weights, scales) and attributes are ONNX's own, so kernels are still OIHW here and are
transposed to Keras's HWIO. ONNX's explicit pads become Keras 'same' where they are exactly
what 'same' computes for the static input size (or, on an axis of unknown size, for every
size: stride 1 and (k - 1) * d split as SAME splits it), and a ZeroPadding layer before a
'valid' one otherwise, which is exact for every size (for max pooling only where the input
is provably non-negative, since ONNX pads a max pool with -inf and a ZeroPadding with zeros;
elsewhere edge padding, which is the same wherever every window holds an input cell, and
needs the size). So free height/width stay None in the Keras model wherever each layer is
exact for every size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from ...models import TensorRef
from ..onnx_normalize import optional_input
from ..padding import are_same_pads, same_pads
from . import operations, resize_free, resize_matrix
from .core import (
    Ctx,
    attr,
    crop_axis,
    padding_layer,
    reduction_axes,
    rule,
    spatial_pads,
    static,
)
from .shape import mirror_pad

_NONNEGATIVE = {"Relu", "Sigmoid", "Softmax", "Abs", "Exp", "Softplus", "HardSigmoid"}


def _static_spatial(ctx: Ctx, v: ir.Value, why: str) -> list[int]:
    """The spatial sizes of channels-last ``v``; a refusal saying ``why`` they must be known."""
    shape = ctx.shape(v)
    dims = static(_spatial(ctx, v))
    if dims is None:
        raise ctx.refuse(f"the spatial size of {v.name!r} is not static ({shape}); {why}")
    return dims


def _spatial(ctx: Ctx, v: ir.Value) -> list[int | None]:
    """The spatial sizes of channels-last ``v``, None where free (ONNX's -1 too)."""
    return [d if d is not None and d >= 0 else None for d in ctx.shape(v)[1:-1]]


def _resolve_pads(ctx: Ctx, node: ir.Node, sizes: list[int | None], kernel: list[int],
                  strides: list[int], dilations: list[int]) -> list[tuple[int, int]] | None:
    """(before, after) pads per spatial axis; None for an ``auto_pad`` SAME that needs an
    unknown size, where it is exactly Keras 'same' for every size."""
    n = len(kernel)
    auto = attr(node, "auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        lower = auto == "SAME_LOWER"
        known = static(sizes)
        if known is not None:
            return [same_pads(size, k, s, d, lower=lower)
                    for size, k, s, d in zip(known, kernel, strides, dilations)]
        # SAME_UPPER is what Keras 'same' computes for any size; SAME_LOWER puts an odd padded
        # cell first, so it is 'same' only where the total is even for every size.
        if lower and not all(_lower_is_upper(size, k, s, d)
                             for size, k, s, d in zip(sizes, kernel, strides, dilations)):
            raise ctx.refuse("auto_pad SAME_LOWER on an axis of unknown size pads the odd "
                             "cell first, Keras 'same' last")
        return None
    if auto == "VALID":
        return [(0, 0)] * n
    return spatial_pads(attr(node, "pads"), n)


def _lower_is_upper(size: int | None, kernel: int, stride: int, dilation: int) -> bool:
    """Whether SAME_LOWER pads one axis as SAME_UPPER does: for every size where the total is
    the same even (k - 1) * d whatever the size (stride 1, or a 1-tap window)."""
    if size is not None:
        return same_pads(size, kernel, stride, dilation, lower=True) == \
            same_pads(size, kernel, stride, dilation)
    total = (kernel - 1) * dilation
    return (stride == 1 or kernel == 1) and total % 2 == 0


def _padding(ctx: Ctx, x: TensorRef, pads: list[tuple[int, int]],
             sizes: list[int | None] | None,
             kernel: list[int], strides: list[int], dilations: list[int], *,
             same_ok: bool = True, shape: list[int | None] | None = None
             ) -> tuple[str, TensorRef]:
    """('valid' | 'same', input after any ZeroPadding); ``shape``: the input's Keras shape."""
    if all(p == (0, 0) for p in pads):
        return "valid", x
    if same_ok and are_same_pads(pads, sizes, kernel, strides, dilations):
        return "same", x
    return "valid", padding_layer(ctx, x, pads, shape=shape)


# --- convolutions -------------------------------------------------------------------------------

_ConvCommon = tuple[ir.Value, np.ndarray, int, list[int], list[int], list[int],
                    "np.ndarray | None"]


def _conv_common(ctx: Ctx, node: ir.Node) -> _ConvCommon:
    """X, the kernel (OIHW), the number of spatial axes, kernel size, strides, dilations and
    the bias of a Conv or ConvTranspose."""
    x, w = ctx.input(node, 0), ctx.input(node, 1)
    kernel = ctx.const(w)
    if kernel is None:
        raise ctx.refuse("its weights are computed at run time; Keras layers hold constant "
                         "weights")
    n = kernel.ndim - 2
    if n not in (1, 2, 3):
        raise ctx.refuse(f"{n}-D convolution has no Keras layer")
    ks = [int(k) for k in kernel.shape[2:]]
    strides = [int(s) for s in attr(node, "strides", [1] * n)]
    dilations = [int(d) for d in attr(node, "dilations", [1] * n)]
    bias_v = optional_input(node, 2)
    bias = ctx.const(bias_v) if bias_v is not None else None
    if bias_v is not None and bias is None:
        raise ctx.refuse("its bias is computed at run time")
    return x, np.asarray(kernel, np.float32), n, ks, strides, dilations, bias


@rule("Conv", layout=True)
def conv(ctx: Ctx, node: ir.Node) -> None:
    """Conv (channels-last twin): ConvND, DepthwiseConv2D for a depthwise one; explicit pads as same
    or a ZeroPadding."""
    x, kernel, n, ks, strides, dilations, bias = _conv_common(ctx, node)
    # Keras takes strides > 1 or dilations > 1, not both: such a convolution runs at stride 1
    # and a 1-wide pooling with the strides keeps every s-th output (exactly those ONNX keeps).
    subsample = strides if any(s > 1 for s in strides) and any(d > 1 for d in dilations) \
        else None
    group = int(attr(node, "group", 1))
    sizes = _spatial(ctx, x)
    pads = _resolve_pads(ctx, node, sizes, ks, strides, dilations)
    if pads is None and subsample is not None:
        raise ctx.refuse("auto_pad SAME of a convolution both strided and dilated pads by "
                         "the input size, which is not static")
    if subsample is not None:
        strides = [1] * n
    if pads is None:
        padding, xin = "same", ctx.ref(x)
    elif _causal(ctx, pads, ks, strides, dilations):
        padding, xin = "causal", ctx.ref(x)
    else:
        padding, xin = _padding(ctx, ctx.ref(x), pads, sizes, ks, strides, dilations,
                                same_ok=subsample is None, shape=ctx.shape(x))
    cin = ctx.shape(x)[-1]
    out_ch = kernel.shape[0]
    common: dict[str, Any] = {"kernel_size": ks, "strides": strides, "padding": padding,
              "dilation_rate": dilations, "use_bias": bias is not None,
              "activation": "linear"}
    if n > 1:
        common["data_format"] = "channels_last"
    weights: list[tuple[str, np.ndarray]] = []
    if group > 1 and kernel.shape[1] == 1 and cin == group and n == 2:
        mult = out_ch // group
        dw = kernel.reshape(group, mult, *ks).transpose(2, 3, 0, 1)
        weights.append(("depthwise_kernel", dw))
        if bias is not None:
            weights.append(("bias", bias))
        y = ctx.layer("DepthwiseConv2D", {**common, "depth_multiplier": mult}, xin,
                      weights=weights)
        ctx.output(_subsample(ctx, y, subsample, n))
        return
    hwio = kernel.transpose(*range(2, 2 + n), 1, 0)  # (k..., in/group, out)
    if group > 1 and ctx.for_tfjs:
        hwio = _block_diagonal(hwio, group)
        group = 1
    weights.append(("kernel", hwio))
    if bias is not None:
        weights.append(("bias", bias))
    config = {"filters": int(out_ch), **common, "groups": group}
    y = ctx.layer(f"Conv{n}D", config, xin, weights=weights)
    ctx.output(_subsample(ctx, y, subsample, n))


def _causal(ctx: Ctx, pads: list[tuple[int, int]], ks: list[int], strides: list[int],
            dilations: list[int]) -> bool:
    """1-D pads of (k - 1) * d before and none after at stride 1: Keras's causal padding
    (tfjs-layers pads causal Conv1D otherwise, so a layers-model keeps the ZeroPadding)."""
    return len(ks) == 1 and not ctx.for_tfjs and strides == [1] and \
        pads == [((ks[0] - 1) * dilations[0], 0)] and pads[0][0] > 0


def _subsample(ctx: Ctx, y: TensorRef, strides: list[int] | None, n: int) -> TensorRef:
    """Every ``strides``-th cell of ``y`` (a 1-wide pooling); ``y`` itself for None."""
    if strides is None:
        return y
    pool: dict[str, Any] = {"pool_size": [1] * n, "strides": strides, "padding": "valid"}
    if n > 1:
        pool["data_format"] = "channels_last"
    return ctx.layer(f"AveragePooling{n}D", pool, y, suffix="stride")


def _block_diagonal(hwio: np.ndarray, group: int) -> np.ndarray:
    """A grouped kernel (k..., in/g, out) as one dense kernel (k..., in, out): exact, since
    the added taps are zeros."""
    per_in, out = hwio.shape[-2], hwio.shape[-1]
    per_out = out // group
    full = np.zeros((*hwio.shape[:-2], per_in * group, out), np.float32)
    for g in range(group):
        full[..., g * per_in:(g + 1) * per_in, g * per_out:(g + 1) * per_out] = \
            hwio[..., g * per_out:(g + 1) * per_out]
    return full


@rule("ConvTranspose", layout=True)
def conv_transpose(ctx: Ctx, node: ir.Node) -> None:
    """ConvTranspose (channels-last twin), explicit pads and output_padding: ConvNDTranspose, then a
    Cropping."""
    x, kernel, n, ks, strides, dilations, bias = _conv_common(ctx, node)
    if n not in (1, 2, 3):
        raise ctx.refuse(f"Keras has no {n}-D transposed convolution")
    if int(attr(node, "group", 1)) != 1:
        raise ctx.refuse("Keras transposed convolutions have no groups")
    if any(d != 1 for d in dilations):
        raise ctx.refuse("dilated transposed convolution is not raised")
    if attr(node, "output_shape") is not None or \
            attr(node, "auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
        raise ctx.refuse("output_shape/auto_pad on ConvTranspose are not raised; explicit "
                         "pads are")
    pads = spatial_pads(attr(node, "pads"), n)
    out_pad = [int(p) for p in attr(node, "output_padding", [0] * n)]
    if any(p >= s for p, s in zip(out_pad, strides)):
        raise ctx.refuse("output_padding must be smaller than the stride in Keras")
    weights = [("kernel", kernel.transpose(*range(2, 2 + n), 1, 0))]  # (k..., out, in)
    if bias is not None:
        weights.append(("bias", bias))
    # Keras's 'valid' output is in * s + max(k - s, 0) long, ONNX's (before its pads)
    # (in - 1) * s + k + output_padding; past (in - 1) * s + k only the bias reaches either.
    # So cropping hi - output_padding + max(s - k, 0) off the end gives ONNX's output for
    # every size; where that is not negative, a crop is all output_padding (and a kernel
    # shorter than the stride) change, and tfjs-layers (which ignores output_padding) runs it.
    ends = [hi - o + max(s - k, 0) for (_, hi), o, s, k in zip(pads, out_pad, strides, ks)]
    if all(e >= 0 for e in ends):
        crop, out_pad = [[lo, e] for (lo, _), e in zip(pads, ends)], [0] * n
    else:  # Keras's own output_padding: then its output is (in - 1) * s + k + output_padding
        crop = [list(p) for p in pads]
    config = {"filters": int(kernel.shape[1]), "kernel_size": ks, "strides": strides,
              "padding": "valid", "dilation_rate": [1] * n, "use_bias": bias is not None,
              "activation": "linear", "data_format": "channels_last",
              "output_padding": out_pad if any(out_pad) else None}
    y = ctx.layer(f"Conv{n}DTranspose", config, ctx.ref(x), weights=weights)
    if any(c != [0, 0] for c in crop):
        y = ctx.layer(f"Cropping{n}D", {"cropping": crop[0]} if n == 1 else
                      {"cropping": crop, "data_format": "channels_last"}, y, suffix="crop")
    ctx.output(y)


# --- pooling ------------------------------------------------------------------------------------

def nonnegative(v: ir.Value) -> bool:
    """Provably >= 0: made by an op whose outputs are (ReLU, ...), or by max pooling, padding
    or layout moves of such a value."""
    node = v.producer()
    if node is None:
        return False
    op = node.op_type
    if op in _NONNEGATIVE:
        return True
    if op == "Clip":
        low = optional_input(node, 1)
        bound = low.const_value if low is not None else None
        return bound is not None and float(bound.numpy()) >= 0
    if op == "Concat":
        return all(v is not None and nonnegative(v) for v in node.inputs)
    if op in ("MaxPool", "Transpose", "Identity", "Reshape", "Flatten", "Dropout"):
        source = optional_input(node, 0)
        return source is not None and nonnegative(source)
    return False


@rule("MaxPool", "AveragePool", layout=True)
def pool(ctx: Ctx, node: ir.Node) -> None:
    """MaxPool / AveragePool (channels-last twin): a pooling layer, its pads as 'same' or a padding
    layer first."""
    x = ctx.input(node, 0)
    ks = [int(k) for k in attr(node, "kernel_shape")]
    n = len(ks)
    if n not in (1, 2, 3):
        raise ctx.refuse(f"{n}-D pooling has no Keras layer")
    strides = [int(s) for s in attr(node, "strides", [1] * n)]
    dilations = [int(d) for d in attr(node, "dilations", [1] * n)]
    if any(d != 1 for d in dilations):
        if node.op_type != "MaxPool":
            raise ctx.refuse("Keras pooling has no dilations")
        _dilated_max_pool(ctx, node, ks, strides, dilations)
        return
    if len(node.outputs) > 1 and node.outputs[1].uses():
        raise ctx.refuse("MaxPool's indices output has no Keras equivalent")
    sizes = _spatial(ctx, x)
    outs = _spatial(ctx, node.outputs[0])
    pads = _resolve_pads(ctx, node, sizes, ks, strides, [1] * n)
    is_max = node.op_type == "MaxPool"
    count_pad = bool(attr(node, "count_include_pad", 0))
    cls = f"{'Max' if is_max else 'Average'}Pooling{n}D"
    base: dict[str, Any] = {"pool_size": ks, "strides": strides}
    if n > 1:
        base["data_format"] = "channels_last"
    if pads is None:  # auto_pad SAME on an unknown size: Keras 'same', which skips the pads
        if count_pad and not is_max:
            raise ctx.refuse("an average over SAME pads that counts them divides by a map "
                             "that depends on the input size, which is not static")
        ctx.output(ctx.layer(cls, {**base, "padding": "same"}, ctx.ref(x)))
        return
    ends = [_pool_end(ctx, node, o, s, k, size, lo, hi)
            for o, s, k, size, (lo, hi) in zip(outs, strides, ks, sizes, pads)]
    full = [(lo, e) for (lo, _), e in zip(pads, ends)]
    if all(p == (0, 0) for p in full):
        ctx.output(ctx.layer(cls, {**base, "padding": "valid"}, ctx.ref(x)))
        return
    if (is_max or not count_pad) and are_same_pads(full, sizes, ks, strides):
        ctx.output(ctx.layer(cls, {**base, "padding": "same"}, ctx.ref(x)))
        return
    if is_max and not nonnegative(x):
        known_outs = _static_spatial(ctx, node.outputs[0], "a max pool's -inf pads of an "
                                     "input not proven non-negative are edge padding, which "
                                     "needs the size")
        ctx.output(_edge_padded_max_pool(ctx, ctx.ref(x), list(ctx.shape(x)), full, ks,
                                         strides, known_outs))
        return
    rescale = not is_max and (not count_pad or any(e > hi for e, (_, hi) in zip(ends, pads)))
    if rescale:
        why = "an average over pads is rescaled by a map of its window counts (a known size)"
        known_sizes = _static_spatial(ctx, x, why)
        known_outs = _static_spatial(ctx, node.outputs[0], why)
    padded = padding_layer(ctx, ctx.ref(x), full, shape=ctx.shape(x))
    y = ctx.layer(cls, {**base, "padding": "valid"}, padded)
    if rescale:
        # ONNX divides by the cells inside the input (and, with count_include_pad, its pads),
        # Keras by the whole window: rescale by window / count, a constant map.
        bounds = [(-lo, size + hi) if count_pad else (0, size)
                  for (lo, hi), size in zip(pads, known_sizes)]
        counts = [_window_counts(o, s, k, lo, a, b) for o, s, k, (lo, _), (a, b)
                  in zip(known_outs, strides, ks, pads, bounds)]
        grid = np.ones(known_outs, np.float64)
        for axis, c in enumerate(counts):
            grid = grid * c.reshape([-1 if i == axis else 1 for i in range(n)])
        factor = (np.prod(ks) / grid).astype(np.float32)
        channels = ctx.shape(x)[-1]
        if channels is None:
            raise ctx.refuse("the channel count is unknown; the rescaling of the windows that "
                             "run past the input is a constant of every channel")
        const = ctx.constant(np.broadcast_to(factor[..., None], (*known_outs, channels)))
        y = ctx.layer("Multiply", {}, [y, const], suffix="count")
    ctx.output(y)


def _pool_end(ctx: Ctx, node: ir.Node, out: int | None, stride: int, kernel: int,
              size: int | None, lo: int, hi: int) -> int:
    """The end pad a 'valid' pool over the padded input needs to give ONNX's output size:
    ``hi``, and more where ceil_mode adds a window past it. Without ceil_mode (or at stride 1,
    where it changes nothing) both give ``floor((n + lo + hi - k) / s) + 1`` for every ``n``."""
    if out is not None and size is not None:
        return max((out - 1) * stride + kernel - size - lo, 0)
    if int(attr(node, "ceil_mode", 0)) and stride > 1:
        raise ctx.refuse("ceil_mode on an axis of unknown size: whether a last window runs "
                         "past the end pad depends on the size")
    return hi


def _dilated_max_pool(ctx: Ctx, node: ir.Node, ks: list[int], strides: list[int],
                      dilations: list[int]) -> None:
    """A dilated max pool whose stride is a multiple of its dilation d reads one phase of each
    axis only: position o*s - lo + j*d is r + (o*(s/d) - c + j)*d with r = -lo mod d and
    c = (r + lo)/d. So it is a plain max pool (kernel k, stride s/d, pads c before) of z, the
    input from r on taken every d-th cell (a crop and a 1-wide strided pool). z's -inf pads are
    edge padding where every window holds a cell of z, as for any contiguous max pool."""
    x = ctx.input(node, 0)
    n = len(ks)
    if any(s % d for s, d in zip(strides, dilations)):
        raise ctx.refuse(f"dilations {dilations} that do not divide the strides {strides} read "
                         "every phase of the input: Keras pooling has no dilations")
    if len(node.outputs) > 1 and node.outputs[1].uses():
        raise ctx.refuse("MaxPool's indices output has no Keras equivalent")
    why = "a dilated max pool is cropped to its phases for a known size"
    sizes = _static_spatial(ctx, x, why)
    outs = _static_spatial(ctx, node.outputs[0], why)
    pads = _resolve_pads(ctx, node, list(sizes), ks, strides, dilations)
    if pads is None:  # sizes are static, so SAME resolves
        raise ctx.refuse(f"auto_pad of a tensor of unknown size {ctx.shape(x)}")
    shape = ctx.shape(x)
    cells = list(sizes)  # the spatial sizes of ``ref`` as it is cropped and pooled

    def dims() -> list[int | None]:
        return [shape[0], *cells, shape[-1]]

    ref = ctx.ref(x)
    phase = [(-lo) % d for (lo, _), d in zip(pads, dilations)]
    before = [(r + lo) // d for r, (lo, _), d in zip(phase, pads, dilations)]
    for axis, r in enumerate(phase, start=1):
        if r:
            ref, _ = crop_axis(ctx, ref, dims(), axis, r, 0, suffix=f"phase{axis}_")
            cells[axis - 1] -= r
    base = {"data_format": "channels_last"} if n > 1 else {}
    if any(d > 1 for d in dilations):
        ref = ctx.layer(f"MaxPooling{n}D", {**base, "pool_size": [1] * n, "strides": dilations,
                                            "padding": "valid"}, ref, suffix="every_d")
        cells = [-(-size // d) for size, d in zip(cells, dilations)]
    steps = [s // d for s, d in zip(strides, dilations)]
    full = []
    for axis, (o, k, m, c) in enumerate(zip(outs, ks, steps, before), start=1):
        have, need = cells[axis - 1], (o - 1) * m + k - c  # cells of z the windows run over
        if have > need:
            ref, _ = crop_axis(ctx, ref, dims(), axis, 0, have - need, suffix=f"tail{axis}_")
            cells[axis - 1] = need
        full.append((c, max(need - have, 0)))
    ctx.output(_edge_padded_max_pool(ctx, ref, dims(), full, ks, steps, outs))


def _edge_padded_max_pool(ctx: Ctx, ref: TensorRef, dims: list[int | None],
                          pads: list[tuple[int, int]], ks: list[int], strides: list[int],
                          outs: list[int]) -> TensorRef:
    """A 'valid' max pool after ``pads``, which ONNX fills with -inf. Where every window holds
    an input cell, edge padding is the same: a contiguous window that runs past an end holds
    that end's cell, which is all edge padding repeats."""
    n = len(ks)
    sizes = static(dims[1:-1])
    if sizes is None:  # the callers have proven it static
        raise ctx.refuse(f"max pooling with -inf pads of a tensor of unknown size {dims}")
    if not all(lo < k and (o - 1) * s - lo <= size - 1
               for (lo, _), k, s, o, size in zip(pads, ks, strides, outs, sizes)):
        raise ctx.refuse(f"pads {pads} leave a window with no input cell (Keras pooling has no "
                         "-inf padding)")
    if any(p != (0, 0) for p in pads):
        ref = mirror_pad(ctx, ref, dims, [(0, 0), *pads, (0, 0)], "edge")
    config: dict[str, Any] = {"pool_size": ks, "strides": strides, "padding": "valid"}
    if n > 1:
        config["data_format"] = "channels_last"
    return ctx.layer(f"MaxPooling{n}D", config, ref)


def _window_counts(out: int, stride: int, k: int, lo: int, a: int, b: int) -> np.ndarray:
    """Per output position, how many of the window's cells fall in [a, b) of the input
    (coordinates with the left pad at -lo)."""
    starts = np.arange(out) * stride
    first = np.maximum(starts, lo + a)
    last = np.minimum(starts + k, lo + b)
    return np.maximum(last - first, 0).astype(np.float64)


@rule("GlobalAveragePool", "GlobalMaxPool", layout=True)
def global_pool(ctx: Ctx, node: ir.Node) -> None:
    """GlobalAveragePool / GlobalMaxPool: global pooling, then a Reshape that keeps the pooled
    axes."""
    x = ctx.input(node, 0)
    shape = ctx.shape(x)
    n = len(shape) - 2
    if n not in (1, 2, 3):
        raise ctx.refuse(f"{n}-D global pooling has no Keras layer")
    kind = "Average" if node.op_type == "GlobalAveragePool" else "Max"
    config = {"data_format": "channels_last", "keepdims": False}
    y = ctx.layer(f"Global{kind}Pooling{n}D", config, ctx.ref(x))
    # ONNX keeps the pooled axes; tfjs-layers ignores keepdims, so it is a Reshape
    ctx.output(ctx.layer("Reshape", {"target_shape": [1] * n + [shape[-1]]}, y,
                         suffix="keepdims"))


# --- normalization ------------------------------------------------------------------------------

def _consts(ctx: Ctx, node: ir.Node, first: int) -> list[np.ndarray]:
    """Inputs ``first`` on, each a constant (flattened float32); else a refusal."""
    out = []
    for i in range(first, len(node.inputs)):
        v = ctx.input(node, i)
        c = ctx.const(v)
        if c is None:
            raise ctx.refuse(f"{v.name!r} is computed at run time; Keras layers hold constant "
                             "weights")
        out.append(c.astype(np.float32).reshape(-1))
    return out


@rule("BatchNormalization", layout=True)
def batch_norm(ctx: Ctx, node: ir.Node) -> None:
    """BatchNormalization in inference mode, constant statistics."""
    if int(attr(node, "training_mode", 0)):
        raise ctx.refuse("training_mode=1 (batch statistics) is not an inference layer")
    scale, bias, mean, var = _consts(ctx, node, 1)[:4]
    config = {"axis": -1, "epsilon": float(attr(node, "epsilon", 1e-5)),
              "momentum": float(attr(node, "momentum", 0.9)), "center": True, "scale": True}
    x = ctx.input(node, 0)
    shape = ctx.shape(x)
    ref = ctx.ref(x)
    flat = ctx.for_tfjs and len(shape) > 4
    if flat:  # tfjs-layers normalizes up to rank 4: the spatial axes as one (per channel alike)
        known = static(shape[1:])
        if known is None:
            raise ctx.refuse(f"a rank-{len(shape)} input of unknown shape: tfjs-layers' batch "
                             "normalization takes rank 4 at most")
        ref = ctx.layer("Reshape", {"target_shape": [int(np.prod(known[:-1])), known[-1]]},
                        ref, suffix="flat")
    y = ctx.layer("BatchNormalization", config, ref,
                  weights=[("gamma", scale), ("beta", bias), ("moving_mean", mean),
                           ("moving_variance", var)])
    if flat:
        y = ctx.layer("Reshape", {"target_shape": list(shape[1:])}, y, suffix="unflat")
    ctx.output(y)


@rule("InstanceNormalization", layout=True)
def instance_norm(ctx: Ctx, node: ir.Node) -> None:
    """InstanceNormalization: GroupNormalization with one group per channel."""
    scale, bias = _consts(ctx, node, 1)
    config = {"groups": int(scale.size), "axis": -1,
              "epsilon": float(attr(node, "epsilon", 1e-5)), "center": True, "scale": True}
    ctx.output(ctx.layer("GroupNormalization", config, ctx.ref(ctx.input(node, 0)),
                         weights=[("gamma", scale), ("beta", bias)]))


@rule("LRN", layout=True)
def lrn(ctx: Ctx, node: ir.Node) -> None:
    """LRN: modelport's registered LocalResponseNormalization layer."""
    # Stock Keras and tfjs-layers have no LRN and cannot compose its fractional power; the layer
    # is modelport's registered one (modelport/keras_layers.py, modelport/js), same attributes.
    if attr(node, "size") is None:
        raise ctx.refuse("LRN without its required size attribute")
    config = {"size": int(attr(node, "size")), "alpha": float(attr(node, "alpha", 1e-4)),
              "beta": float(attr(node, "beta", 0.75)), "bias": float(attr(node, "bias", 1.0))}
    ctx.output(ctx.layer("modelport>LocalResponseNormalization", config,
                         ctx.ref(ctx.input(node, 0))))


# --- resizing -----------------------------------------------------------------------------------

def _text(value: Any, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


@rule("Resize", "Upsample", layout=True)
def resize(ctx: Ctx, node: ir.Node) -> None:
    """Resize / Upsample by integer factors: UpSampling (nearest where it repeats pixels alike,
    bilinear in 2-D); half-pixel bilinear to any size: Resizing. Where the spatial size is
    free, the factors are the constant integer scales, and the layer is exact for every size
    (UpSampling's output is the input's size times them, as ONNX's is). Any other resize of
    static size: a Dense per axis holding its interpolation matrix (``resize_matrix``); of free
    size, asymmetric bilinear (TF 1's ResizeBilinear) by integer factors: ``resize_free``."""
    x = ctx.input(node, 0)
    n = ctx.rank(x) - 2
    if n not in (1, 2, 3):
        raise ctx.refuse(f"{n}-D resizing has no Keras layer")
    mode = _text(attr(node, "mode"), "nearest")
    coord = _text(attr(node, "coordinate_transformation_mode"),
                  "asymmetric" if node.op_type == "Upsample" else "half_pixel")
    known_in = static(ctx.shape(x)[1:])
    known_out = static(ctx.shape(node.outputs[0])[1:])
    if known_in is None or known_out is None:
        sizes: list[int | None] = list(_spatial(ctx, x))
        factors = _scale_factors(ctx, node, n)
    else:
        if known_out[-1] != known_in[-1]:
            raise ctx.refuse("resizing the channel axis has no Keras layer")
        sizes = list(known_in[:-1])
        # every static resize is a matrix per axis; written so where no layer below is exact
        if resize_matrix.raise_static(ctx, node, known_in[:-1], known_out[:-1], mode,
                                     coord):
            return
        exact = _static_factors(ctx, node, known_in[:-1], known_out[:-1], mode, coord)
        if exact is None:
            return
        factors = exact
    if mode == "nearest":
        nearest = _text(attr(node, "nearest_mode"), "round_prefer_floor")
        for size, f in zip(sizes, factors):
            if not _repeats(size, f, coord, nearest):
                raise ctx.refuse(f"nearest resizing with coordinate_transformation_mode="
                                 f"{coord!r} and nearest_mode={nearest!r} does not repeat "
                                 "pixels the way UpSampling2D does"
                                 + ("" if size is not None else " for every size"))
        interpolation = "nearest"
    elif mode == "linear":
        if n != 2:
            raise ctx.refuse("linear resizing is raised in 2-D only (UpSampling2D bilinear)")
        if coord == "asymmetric":  # free size here; TF 1's ResizeBilinear, exact for any
            ctx.output(resize_free.asymmetric_bilinear(ctx, ctx.ref(x), ctx.shape(x)[-1],
                                                       factors))
            return
        if coord not in ("half_pixel", "pytorch_half_pixel"):
            raise ctx.refuse(f"linear resizing with coordinate_transformation_mode={coord!r} "
                             "is not UpSampling2D's half-pixel bilinear")
        interpolation = "bilinear"
    else:
        raise ctx.refuse(f"mode {mode!r} has no UpSampling2D equivalent")
    config: dict[str, Any]
    if n == 1:
        config = {"size": factors[0]}
    elif n == 3:
        config = {"size": factors, "data_format": "channels_last"}
    else:
        config = {"size": factors, "data_format": "channels_last",
                  "interpolation": interpolation}
    ctx.output(ctx.layer(f"UpSampling{n}D", config, ctx.ref(x)))


def _static_factors(ctx: Ctx, node: ir.Node, sizes_in: list[int], sizes_out: list[int],
                    mode: str, coord: str) -> list[int] | None:
    """The integer factors from static sizes; None where a Resizing layer was written for a
    non-integer scale (half-pixel bilinear), a refusal for other non-integer scales."""
    x = ctx.input(node, 0)
    n = len(sizes_in)
    if any(o % i for i, o in zip(sizes_in, sizes_out)):
        # Keras's Resizing is half-pixel bilinear without antialiasing (what the Keras ->
        # ONNX route writes it as); other modes have no exact Keras layer at these sizes.
        if n == 2 and mode == "linear" and coord == "half_pixel" and \
                not int(attr(node, "antialias", 0)):
            ctx.output(ctx.layer("Resizing", {"height": sizes_out[0], "width": sizes_out[1],
                                              "interpolation": "bilinear",
                                              "crop_to_aspect_ratio": False,
                                              "data_format": "channels_last"}, ctx.ref(x)))
            return None
        raise ctx.refuse(f"a non-integer scale ({sizes_in} -> {sizes_out}) in "
                         f"mode {mode!r} / {coord!r} has no exact Keras layer")
    return [o // i for i, o in zip(sizes_in, sizes_out)]


def _scale_factors(ctx: Ctx, node: ir.Node, n: int) -> list[int]:
    """The spatial factors of a Resize / Upsample of free spatial size: its constant scales
    (ONNX's NCHW order, the attribute of Upsample before opset 9), integers >= 1 that leave
    batch and channels alone; else a refusal."""
    why = "the spatial size is not static"
    scales: Any = attr(node, "scales") if node.op_type == "Upsample" else None
    if scales is None:
        # Resize-10 and Upsample-9 take (X, scales); Resize-11 on (X, roi, scales, sizes)
        index = 1 if node.op_type == "Upsample" or len(node.inputs) == 2 else 2
        sizes_v = optional_input(node, 3) if index == 2 else None
        if sizes_v is not None and not _empty(ctx, sizes_v):
            raise ctx.refuse(f"{why} and the output size is given by 'sizes', not by scales: "
                             "no UpSampling factor is exact for every input size")
        scales_v = optional_input(node, index)
        scales = ctx.const(scales_v) if scales_v is not None else None
        if scales is None:
            raise ctx.refuse(f"{why} and the scales are computed at run time")
    values = [float(v) for v in np.asarray(scales, np.float64).reshape(-1)]
    if len(values) != n + 2 or values[:2] != [1.0, 1.0] or \
            any(v < 1 or v != int(v) for v in values[2:]):
        raise ctx.refuse(f"{why} and the scales {values} are not integers >= 1 of the spatial "
                         "axes only (UpSampling)")
    return [int(v) for v in values[2:]]


def _empty(ctx: Ctx, v: ir.Value) -> bool:
    """Whether ``v`` is a constant with no elements (ONNX's way to leave out an input)."""
    value = ctx.const(v)
    return value is not None and value.size == 0


_SHIFT_INVARIANT = ("asymmetric", "half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn")


def _repeats(size: int | None, factor: int, coord: str, nearest: str) -> bool:
    """Whether nearest resizing by ``factor`` reads input ``o // factor`` for every output
    ``o`` (what UpSampling does), for an axis of ``size``, or of any size where None.

    In the shift-invariant coordinate modes the source of output ``o + factor`` is the source
    of ``o`` plus one (``(o + a) / f + b``; pytorch_half_pixel is half_pixel unless the output
    is one cell). So where sizes 2 and 3 repeat (the first period reads cell 0 unclipped, the
    next cell 1), every size does; align_corners depends on the size."""
    if size is not None:
        return bool(np.array_equal(_nearest_sources(size, factor, coord, nearest),
                                   np.arange(size * factor) // factor))
    return coord in _SHIFT_INVARIANT and all(_repeats(k, factor, coord, nearest) for k in (2, 3))


def _nearest_sources(size: int, factor: int, coord: str, nearest: str) -> np.ndarray:
    """The input index ONNX's nearest Resize reads for each output index along one axis."""
    o = np.arange(size * factor, dtype=np.float64)
    if coord == "asymmetric":
        src = o / factor
    elif coord == "half_pixel" or (coord == "pytorch_half_pixel" and size * factor > 1):
        src = (o + 0.5) / factor - 0.5
    elif coord == "align_corners":
        src = o * (size - 1) / max(size * factor - 1, 1)
    elif coord == "tf_half_pixel_for_nn":  # TF 1's resize_nearest_neighbor, as tf2onnx writes it
        src = (o + 0.5) / factor
    else:
        return np.full(o.shape, -1)
    if nearest == "floor":
        idx = np.floor(src)
    elif nearest == "ceil":
        idx = np.ceil(src)
    elif nearest == "round_prefer_ceil":
        idx = np.floor(src + 0.5)
    else:
        idx = np.ceil(src - 0.5)
    return np.clip(idx, 0, size - 1).astype(np.int64)


@rule("ReduceMean", "ReduceMax")
def reduce_spatial(ctx: Ctx, node: ir.Node) -> None:
    """A mean/max over every spatial axis, the channels last or first: global pooling."""
    x = ctx.input(node, 0)
    rank = ctx.rank(x)
    axes = reduction_axes(ctx, node)
    if axes is None:
        raise ctx.refuse("a reduction over all axes includes the batch")
    axes = sorted(int(a) % rank for a in axes)
    n = rank - 2
    pooling = n in (1, 2, 3) and axes in (list(range(1, rank - 1)), list(range(2, rank)))
    if not pooling and node.op_type == "ReduceMax":
        operations.reduce_max(ctx, node)  # exact as the Keras operation Max
        return
    if not pooling and node.op_type == "ReduceMean":
        operations.reduce_mean(ctx, node)  # the Keras operation Mean (.keras files only)
        return
    if n not in (1, 2, 3):
        raise ctx.refuse(f"a reduction over axes {axes} of a rank-{rank} tensor has no Keras "
                         "layer")
    if axes == list(range(1, rank - 1)):
        data_format = "channels_last"
    elif axes == list(range(2, rank)):
        data_format = "channels_first"
    else:
        raise ctx.refuse(f"a reduction over axes {axes} is global pooling only when it takes "
                         "every spatial axis")
    kind = "Average" if node.op_type == "ReduceMean" else "Max"
    y = ctx.layer(f"Global{kind}Pooling{n}D", {"data_format": data_format, "keepdims": False},
                  ctx.ref(x))
    if int(attr(node, "keepdims", 1)):
        channels = ctx.shape(x)[-1 if data_format == "channels_last" else 1]
        ones: list[int | None] = [1] * n
        target = ones + [channels] if data_format == "channels_last" else [channels] + ones
        y = ctx.layer("Reshape", {"target_shape": target}, y, suffix="keepdims")
    ctx.output(y)
