"""Resize of static spatial size as one fixed matrix per axis: Permute + Dense(no bias).

Along each resized axis ONNX's Resize (and Upsample) is a linear map from the input cells to
the output cells whatever the mode (nearest, linear, cubic), coordinate transformation,
nearest_mode, cubic coefficient, exclude_outside or antialias: a matrix built here in NumPy
from the spec, as onnxruntime computes the source coordinates (float32). The Resize is then
separable: one Dense over the axis brought last (Keras's Dense contracts the last axis at any
rank, as tfjs-layers' does), between Permutes, so ``.h5``, ``.keras`` and tfjs-layers all
load it with stock layers.

A row of a linear matrix holds 1-2 nonzero weights (nearest 1, cubic 4, antialias a window)
and zeros, so the result is ONNX's up to float rounding. Two differences are inherent: a NaN
or infinite input cell spreads to every output of its row (0 * NaN is NaN), and a consumer
that runs float32 matrix products in reduced precision (TF32 on some GPUs) rounds more.

UpSampling and Resizing layers are cheaper and stay where they are exact (the caller,
``nn.resize``): ``raise_static`` returns False for those, except Resizing in a model bound
for tfjs-layers, whose Resizing cannot run a batch (nanodet's half-pixel ResizeBilinear at a
non-integer scale was refused there).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx_ir as ir

from ...models import TensorRef
from ..onnx_normalize import optional_input
from .core import Ctx, attr

# Past this many bytes of float32 kernels (all resized axes together) the layers get large for
# what they compute; a graph of ops keeps Resize as one op.
MAX_KERNEL_BYTES = 8 << 20

_COORDS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
           "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize")
# Upsample (before opset 10) rounds as onnxruntime's "simple" mode does
_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "simple")
_HALF_PIXEL = ("half_pixel", "pytorch_half_pixel")
_NEAREST_LAYER = ("asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners",
                  "tf_half_pixel_for_nn")


def raise_static(ctx: Ctx, node: ir.Node, sizes_in: list[int], sizes_out: list[int],
                 mode: str, coord: str) -> bool:
    """Raise ``node`` (channels-last, spatial sizes ``sizes_in`` -> ``sizes_out``) as Permute
    + Dense layers; False (nothing written) where UpSampling or Resizing is exact."""
    if mode not in ("nearest", "linear", "cubic"):
        raise ctx.refuse(f"mode {mode!r} is not one of ONNX's resize modes")
    x = ctx.input(node, 0)
    batch_in, batch_out = ctx.shape(x)[0], ctx.shape(node.outputs[0])[0]
    if batch_in is not None and batch_out is not None and batch_in != batch_out:
        raise ctx.refuse("it resizes the batch axis")
    matrices = axis_matrices(ctx, node, sizes_in, sizes_out, mode, coord)
    # tfjs-layers 4.22's Resizing drops the batch axis (and aligns corners): a model bound for
    # it keeps the matrices where Keras would have Resizing (a non-integer bilinear scale; a
    # bilinear UpSampling2D the layers-model writer rewrites for tfjs-layers itself)
    resizing = mode == "linear" and any(o % i for i, o in zip(sizes_in, sizes_out))
    if not (ctx.for_tfjs and resizing) and \
            _layer_is_exact(node, sizes_in, sizes_out, mode, coord, matrices):
        return False
    ctx.output(emit(ctx, ctx.ref(x), len(sizes_in) + 1, matrices))
    return True


def _layer_is_exact(node: ir.Node, sizes_in: list[int], sizes_out: list[int], mode: str,
                    coord: str, matrices: list[np.ndarray]) -> bool:
    """Whether the layer ``nn.resize`` writes (UpSampling, or Resizing for half-pixel bilinear
    at non-integer scales) computes exactly ``matrices``."""
    n = len(sizes_in)
    integer = all(o % i == 0 for i, o in zip(sizes_in, sizes_out))
    if mode == "nearest":  # in the coordinate modes nn.resize knows
        return integer and n in (1, 2, 3) and coord in _NEAREST_LAYER and all(
            np.array_equal(m, _repeat_matrix(i, o)) for i, o, m in
            zip(sizes_in, sizes_out, matrices))
    if mode != "linear" or n != 2 or coord not in _HALF_PIXEL:
        return False
    if not integer and (coord != "half_pixel" or int(attr(node, "antialias", 0))):
        return False
    return all(np.allclose(m, _bilinear_matrix(i, o), rtol=0, atol=1e-6)
               for i, o, m in zip(sizes_in, sizes_out, matrices))


def _repeat_matrix(size_in: int, size_out: int) -> np.ndarray:
    """UpSampling's nearest: output ``o`` reads input ``o // factor``."""
    m = np.zeros((size_in, size_out), np.float32)
    m[np.arange(size_out) // (size_out // size_in), np.arange(size_out)] = 1
    return m


def _bilinear_matrix(size_in: int, size_out: int) -> np.ndarray:
    """Half-pixel bilinear without antialiasing (UpSampling2D bilinear, Keras's Resizing)."""
    return linear_matrix(_coordinates("half_pixel", size_in, size_out, size_out / size_in),
                         size_in)


# --- the matrices ----------------------------------------------------------------------------

def axis_matrices(ctx: Ctx, node: ir.Node, sizes_in: list[int], sizes_out: list[int],
                  mode: str, coord: str) -> list[np.ndarray]:
    """Per spatial axis, the (input, output) float32 matrix ONNX's Resize applies."""
    n = len(sizes_in)
    nearest = "simple" if node.op_type == "Upsample" else \
        _text(attr(node, "nearest_mode"), "round_prefer_floor")
    if coord not in _COORDS or nearest not in _NEAREST:  # (the checker reads no attribute)
        raise ctx.malformed(f"coordinate_transformation_mode {coord!r} / nearest_mode "
                            f"{nearest!r} is not one of ONNX's")
    scales = _scales(ctx, node, sizes_in, sizes_out)
    roi = _roi(ctx, node, n) if coord == "tf_crop_and_resize" else None
    if roi is not None and float(attr(node, "extrapolation_value", 0.0)) != 0.0:
        raise ctx.refuse("tf_crop_and_resize with a nonzero extrapolation_value adds a "
                         "constant outside the box, which is no linear map of the input")
    antialias = bool(int(attr(node, "antialias", 0)))
    exclude = bool(int(attr(node, "exclude_outside", 0)))
    out = []
    for k in range(n):
        size_in, size_out, scale = sizes_in[k], sizes_out[k], scales[k]
        if scale == 1 and size_in == size_out and roi is None:
            out.append(np.eye(size_in, dtype=np.float32))  # onnxruntime copies such an axis
            continue
        x = _coordinates(coord, size_in, size_out, scale,
                         None if roi is None else roi[k])
        if mode == "nearest":
            f = np.float32
            if coord == "half_pixel_symmetric" and f(size_out) != f(scale) * f(size_in):
                # onnxruntime rounds this mode's coordinates otherwise than the spec's float32
                # formula, and a nearest index flips at such a rounding
                raise ctx.refuse("nearest resizing with coordinate_transformation_mode="
                                 "'half_pixel_symmetric' at a scale whose output size is "
                                 "rounded: the picked cells depend on the runtime's rounding")
            m = nearest_matrix(x, size_in, nearest, scale < 1)
        elif mode == "linear":
            m = (window_matrix(x, size_in, scale, _triangle, 1.0, exclude)
                 if antialias and scale < 1 else linear_matrix(x, size_in))
        else:
            a = float(attr(node, "cubic_coeff_a", -0.75))
            kernel = _keys(a)
            m = window_matrix(x, size_in, scale if antialias and scale < 1 else 1.0, kernel,
                              2.0, exclude)
        if roi is not None:  # TF's CropAndResize: zeros outside the input
            m[:, (x < 0) | (x > size_in - 1)] = 0
        out.append(m)
    return out


def _text(value: object, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def _coordinates(coord: str, size_in: int, size_out: int, scale: float,
                 roi: tuple[float, float] | None = None) -> np.ndarray:
    """The input coordinate of each output cell, in float32 as onnxruntime computes it."""
    f = np.float32
    o = np.arange(size_out, dtype=f)
    s = f(scale)
    if coord == "asymmetric":
        return o / s
    if coord == "half_pixel" or (coord == "pytorch_half_pixel" and size_out > 1):
        return (o + f(0.5)) / s - f(0.5)
    if coord == "pytorch_half_pixel":
        return np.zeros(size_out, f)
    if coord == "tf_half_pixel_for_nn":
        return (o + f(0.5)) / s
    if coord == "align_corners":
        if size_out == 1:
            return np.zeros(1, f)
        return o * f(size_in - 1) / f(size_out - 1)
    if coord == "half_pixel_symmetric":
        adjustment = f(size_out) / (s * f(size_in))
        offset = f(size_in) / f(2) * (f(1) - adjustment)
        return offset + (o + f(0.5)) / s - f(0.5)
    if coord == "tf_crop_and_resize" and roi is not None:
        start, end = f(roi[0]), f(roi[1])
        if size_out == 1:
            return np.full(1, f(0.5) * (start + end) * f(size_in - 1), f)
        return start * f(size_in - 1) + o * (end - start) * f(size_in - 1) / f(size_out - 1)
    raise ValueError(f"coordinate_transformation_mode {coord!r}")


def nearest_matrix(x: np.ndarray, size_in: int, nearest: str, down: bool) -> np.ndarray:
    """Output ``o`` copies input ``round(x[o])`` (by ``nearest``), clipped to the axis."""
    if nearest == "floor":
        idx = np.floor(x)
    elif nearest == "ceil":
        idx = np.ceil(x)
    elif nearest == "round_prefer_ceil":
        idx = np.floor(x + np.float32(0.5))
    elif nearest == "round_prefer_floor":
        idx = np.ceil(x - np.float32(0.5))
    elif nearest == "simple":  # Upsample: ceil when downsampling, else truncation
        idx = np.ceil(x) if down else np.trunc(x)
    else:
        raise ValueError(f"nearest_mode {nearest!r}")
    idx = np.clip(idx, 0, size_in - 1).astype(np.int64)
    m = np.zeros((size_in, x.size), np.float32)
    m[idx, np.arange(x.size)] = 1
    return m


def linear_matrix(x: np.ndarray, size_in: int) -> np.ndarray:
    """Linear interpolation between the two cells around ``x`` (clamped to the axis), weights
    as onnxruntime computes them."""
    x = np.clip(x, 0, size_in - 1).astype(np.float32)
    lo = np.minimum(x.astype(np.int64), size_in - 1)
    hi = np.minimum(lo + 1, size_in - 1)
    w_hi = x - lo.astype(np.float32)
    w_lo = hi.astype(np.float32) - x
    same = lo == hi
    w_lo[same], w_hi[same] = 0.5, 0.5
    m = np.zeros((size_in, x.size), np.float32)
    cols = np.arange(x.size)
    np.add.at(m, (lo, cols), w_lo)
    np.add.at(m, (hi, cols), w_hi)
    return m


def _triangle(d: np.ndarray) -> np.ndarray:
    return np.clip(1 - np.abs(d), 0, 1)


def _keys(a: float) -> Callable[[np.ndarray], np.ndarray]:
    """Keys' cubic convolution kernel with coefficient ``a``."""
    def kernel(d: np.ndarray) -> np.ndarray:
        d = np.abs(d)
        near = ((a + 2) * d - (a + 3)) * d * d + 1
        far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        return np.where(d <= 1, near, np.where(d < 2, far, 0.0))
    return kernel


def window_matrix(x: np.ndarray, size_in: int, scale: float,
                  kernel: Callable[[np.ndarray], np.ndarray], support: float,
                  exclude_outside: bool) -> np.ndarray:
    """A kernel stretched by ``1 / scale`` (antialiasing when ``scale`` < 1, else 1) around
    each ``x``; taps outside the axis read the edge cell, or are dropped and the rest
    renormalized (exclude_outside). The antialiased weights are normalized to sum 1."""
    xd = x.astype(np.float64)
    base = np.floor(xd)
    ratio = xd - base
    # taps from floor(x) + start to floor(x) + 1 - start: the stretched kernel's support
    start = int(np.floor(-support / scale)) + 1
    offsets = np.arange(start, 2 - start)
    taps = base[None, :] + offsets[:, None]  # (taps, outputs)
    w = kernel((offsets[:, None] - ratio[None, :]) * scale)
    if scale < 1:
        w = w / w.sum(axis=0, keepdims=True)
    inside = (taps >= 0) & (taps <= size_in - 1)
    if exclude_outside:  # (a column with no tap inside is outside tf_crop_and_resize's box,
        # zeroed by the caller)
        w = np.where(inside, w, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = w / w.sum(axis=0, keepdims=True)
    idx = np.clip(taps, 0, size_in - 1).astype(np.int64)
    m = np.zeros((size_in, x.size), np.float64)
    cols = np.broadcast_to(np.arange(x.size), idx.shape)
    np.add.at(m, (idx, cols), w)
    return m.astype(np.float32)


# --- the node's scales and box -------------------------------------------------------------

def _scales(ctx: Ctx, node: ir.Node, sizes_in: list[int], sizes_out: list[int]) -> list[float]:
    """The scale of each spatial axis that the coordinate transform divides by: the given
    scale (which may differ from output / input, the output size being floored), else the
    sizes' ratio (one common ratio under keep_aspect_ratio_policy)."""
    n = len(sizes_in)
    given = _scale_values(ctx, node)
    if given is not None:
        full = _per_axis(ctx, node, given, n, 1.0, "scales")
        scales = [float(np.float32(v)) for v in full[2:]]
        # onnxruntime floors the product in float32, ONNX's shape inference exactly: where
        # they differ (6 x float32(10 / 6) is 9.9999996) the model's shapes are not its output
        runtime = [int(np.floor(np.float32(s) * np.float32(i))) for s, i in zip(scales, sizes_in)]
        if runtime != sizes_out:
            raise ctx.refuse(f"onnxruntime makes {runtime} cells of {sizes_in} by the scales "
                             f"{scales} (floored in float32) where ONNX's shape inference "
                             f"says {sizes_out}; a Resize given 'sizes' has one answer")
        return scales
    ratios = [float(np.float32(o) / np.float32(i)) for i, o in zip(sizes_in, sizes_out)]
    policy = _text(attr(node, "keep_aspect_ratio_policy"), "stretch")
    if policy == "stretch":
        return ratios
    # the common scale comes from the requested sizes (the output's are rounded from it)
    v = optional_input(node, 3)
    wanted = ctx.const(v) if v is not None else None
    if wanted is None:
        raise ctx.refuse(f"keep_aspect_ratio_policy={policy!r} with sizes computed at run "
                         "time: the coordinate transform needs their value")
    axes = _axes(node, n)
    if wanted.size != len(axes):
        raise ctx.malformed(f"{wanted.size} sizes for {len(axes)} axes")
    shape = ctx.shape(ctx.input(node, 0))  # channels-last: batch, spatial..., channels
    full_in = [shape[0], shape[-1], *sizes_in]
    if any(full_in[a] is None for a in axes):
        raise ctx.refuse(f"keep_aspect_ratio_policy={policy!r} over an axis of unknown size")
    chosen = [float(np.float32(w) / np.float32(full_in[a]))
              for a, w in zip(axes, wanted.reshape(-1))]
    common = min(chosen) if policy == "not_larger" else max(chosen)
    return [common if 2 + k in axes else 1.0 for k in range(n)]


def _scale_values(ctx: Ctx, node: ir.Node) -> list[float] | None:
    """The constant scales the node gives (attribute, or input), None where it gives sizes."""
    if node.op_type == "Upsample":
        scales = attr(node, "scales")
        if scales is None:
            v = optional_input(node, 1)
            scales = ctx.const(v) if v is not None else None
            if scales is None:
                raise ctx.refuse("the scales are computed at run time; the coordinate "
                                 "transform needs their value")
        return [float(s) for s in np.asarray(scales, np.float64).reshape(-1)]
    index = 1 if len(node.inputs) == 2 else 2  # Resize-10: (X, scales)
    v = optional_input(node, index)
    if v is None:
        return None
    value = ctx.const(v)
    if value is None:
        raise ctx.refuse("the scales are computed at run time; the coordinate transform "
                         "needs their value")
    if value.size == 0:
        return None
    return [float(s) for s in value.astype(np.float64).reshape(-1)]


def _axes(node: ir.Node, n: int) -> list[int]:
    """The (NCHW) axes the node's scales / sizes / roi list, all of them by default."""
    axes = attr(node, "axes")
    rank = n + 2
    return [int(a) % rank for a in axes] if axes is not None else list(range(rank))


def _per_axis(ctx: Ctx, node: ir.Node, values: list[float], n: int, fill: float,
              what: str) -> list[float]:
    """``values`` given for the node's axes, spread over all ``n + 2`` (``fill`` elsewhere)."""
    axes = _axes(node, n)
    if len(values) != len(axes):
        raise ctx.malformed(f"{len(values)} {what} for {len(axes)} axes")
    full = [fill] * (n + 2)
    for a, v in zip(axes, values):
        full[a] = v
    if what == "scales" and full[:2] != [1.0, 1.0]:
        raise ctx.refuse(f"the scales {full} resize the batch or channel axis")
    return full


def _roi(ctx: Ctx, node: ir.Node, n: int) -> list[tuple[float, float]]:
    """tf_crop_and_resize's box per spatial axis (start, end), normalized; the batch and
    channel axes must be uncropped."""
    v = optional_input(node, 1)
    value = ctx.const(v) if v is not None else None
    if value is None or value.size == 0:
        raise ctx.refuse("tf_crop_and_resize without a constant roi")
    flat = [float(r) for r in value.astype(np.float64).reshape(-1)]
    half = len(flat) // 2
    starts = _per_axis(ctx, node, flat[:half], n, 0.0, "roi starts")
    ends = _per_axis(ctx, node, flat[half:], n, 1.0, "roi ends")
    if starts[:2] != [0.0, 0.0] or ends[:2] != [1.0, 1.0]:
        raise ctx.refuse("tf_crop_and_resize crops the batch or channel axis")
    return list(zip(starts[2:], ends[2:]))


# --- the layers ------------------------------------------------------------------------------

def emit(ctx: Ctx, x: TensorRef, channel_axis: int, matrices: list[np.ndarray]) -> TensorRef:
    """Apply ``matrices[k]`` along axis ``k + 1`` of channels-last ``x`` (the channels at
    ``channel_axis``): per resized axis a Permute that swaps it with the last axis, then a
    Dense, and one Permute back at the end (n + 1 Permutes for n resized axes)."""
    todo = [(k + 1, m) for k, m in enumerate(matrices)
            if not (m.shape[0] == m.shape[1] and np.array_equal(m, np.eye(m.shape[0])))]
    size = sum(m.size for _, m in todo) * 4
    if size > MAX_KERNEL_BYTES:
        shapes = ", ".join(f"{m.shape[0]}x{m.shape[1]}" for _, m in todo)
        raise ctx.refuse(f"as Keras layers this resize is one Dense kernel per axis ({shapes}:"
                         f" {size / 2**20:.1f} MiB, over the {MAX_KERNEL_BYTES >> 20} MiB "
                         "modelport writes); keep it as one op: --to tfjs-graph (or ONNX)")
    # shrinking axes first: the later products then run on the smaller tensor
    todo.sort(key=lambda t: t[1].shape[1] / t[1].shape[0])
    order = list(range(1, channel_axis + 1))  # which original axis each position holds
    for axis, m in todo:
        at = order.index(axis)
        if at != len(order) - 1:
            swapped = order.copy()
            swapped[at], swapped[-1] = swapped[-1], swapped[at]
            dims = [order.index(a) + 1 for a in swapped]
            x = ctx.layer("Permute", {"dims": dims}, x, suffix=f"axis{axis}_last")
            order = swapped
        x = ctx.layer("Dense", {"units": int(m.shape[1]), "activation": "linear",
                                "use_bias": False}, x, suffix=f"axis{axis}",
                      weights=[("kernel", m)])
    if order != sorted(order):
        x = ctx.layer("Permute", {"dims": [order.index(a) + 1 for a in sorted(order)]}, x,
                      suffix="axes_back")
    return x
