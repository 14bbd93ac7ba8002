"""Spatial reshaping: CroppingND, ZeroPaddingND, UpSamplingND, Resizing, CenterCrop.

Cropping and padding are Slice and Pad in the Keras layout (layout-agnostic; the layout pass
moves Transposes through Pad). Resampling works in ONNX's channels-first layout wrapped in
Transposes, like the convolutions around it, so the pairs cancel.

Keras 3 (JAX backend, the one the fixtures use) resizes with ``jax.image.resize``: half-pixel
centres; "bilinear"/"bicubic" are separable kernels whose weights are renormalised over the
pixels inside the image (ONNX Resize: half_pixel, and for cubic a = -0.5 with exclude_outside);
"nearest" picks ``floor((i + 0.5) * in / out)`` computed in float32, which we reproduce exactly
with a Gather when the input size is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from ...errors import ModelportError, UnsupportedError
from .context import LOWERINGS, Builder, Call
from .conv import _tuple, channels_first, into_nchw, out_of_nchw

INT64_MAX = np.iinfo(np.int64).max


def _spatial_axes(call: Call, n: int) -> list[int]:
    """Axes of the ``n`` spatial dimensions in the Keras layout of the input."""
    return list(range(2, 2 + n)) if channels_first(call) else list(range(1, 1 + n))


def _pairs(call: Call, key: str, n: int) -> list[tuple[int, int]]:
    """Keras's (begin, end) per spatial dim from an int, n ints (symmetric) or n pairs."""
    value = call.config.get(key, 1)
    if isinstance(value, int):
        return [(value, value)] * n
    items = list(value) if isinstance(value, (list, tuple)) else []
    if n == 1 and len(items) == 2 and all(isinstance(v, int) for v in items):
        return [(items[0], items[1])]
    if len(items) == n and all(isinstance(v, (list, tuple)) and len(v) == 2 for v in items):
        return [(int(a), int(b)) for a, b in items]
    if len(items) == n and all(isinstance(v, int) for v in items):
        return [(v, v) for v in items]
    raise UnsupportedError(f"{key} {value!r}; expected an int, {n} ints or {n} (begin, end) "
                           "pairs", layer=call.name)


@LOWERINGS.register("Cropping1D", "Cropping2D", "Cropping3D")
def lower_cropping(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Cropping1D/2D/3D -> ONNX Slice of the spatial axes (negative ends, so an unknown size
    needs no Shape op)."""
    n = call.rank - 2
    crops = _pairs(call, "cropping", n)
    axes = _spatial_axes(call, n)
    # A negative end counts from the end, so an unknown size needs no Shape op.
    ends = [-end if end else INT64_MAX for _, end in crops]
    return [ctx.slice(call.x, [b for b, _ in crops], ends, axes)]


@LOWERINGS.register("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
def lower_zero_padding(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras ZeroPadding1D/2D/3D -> ONNX Pad with zeros on the spatial axes, in the Keras layout."""
    n = call.rank - 2
    pads = _pairs(call, "padding", n)
    return [_pad(ctx, call.x, call.rank, _spatial_axes(call, n), pads, 0.0, call)]


def _pad(ctx: Builder, x: ir.Value, rank: int, axes: list[int], pads: list[tuple[int, int]],
         value: float, call: Call) -> ir.Value:
    begin, end = [0] * rank, [0] * rank
    for axis, (b, e) in zip(axes, pads):
        begin[axis], end[axis] = b, e
    return ctx.op("Pad", x, ctx.ints(begin + end, f"{ctx.prefix}pads"),
                  ctx.scalar(value, call.spec), mode="constant")


@LOWERINGS.register("UpSampling1D", "UpSampling2D", "UpSampling3D")
def lower_upsampling(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras UpSampling1D/2D/3D -> ONNX Resize by the integer sizes (NCHW inside Transposes):
    'nearest' as asymmetric floor (a repeat), 'bilinear' and 'bicubic' half-pixel; other
    interpolations need a static size and go through ``_resize``."""
    n = call.rank - 2
    size = _tuple(call.config.get("size", 2), n)
    method = call.config.get("interpolation", "nearest")
    if method == "nearest":
        # Repeat = nearest with integer scales, asymmetric coordinates, floor: i -> i // r.
        x = into_nchw(ctx, call)
        scales = ctx.const(np.asarray([1.0, 1.0] + size, np.float32), f"{call.name}/scales")
        y = ctx.op("Resize", x, None, scales, mode="nearest",
                   coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        return [out_of_nchw(ctx, call, y)]
    if method in _ONNX_MODES:  # integer scales: exact sizes and no Shape ops
        return [_resize_onnx(ctx, call, method, scales=[float(s) for s in size])]
    sizes = _static_hw(call)
    return [_resize(ctx, call, call.x, sizes, [s * f for s, f in zip(sizes, size)], method)]


def _spatial_sizes(call: Call) -> list[int | None]:
    shape = call.spec.shape
    return list(shape[2:]) if channels_first(call) else list(shape[1:-1])


# --- resampling shared by UpSampling2D, Resizing, CenterCrop -------------------------------------

_ONNX_MODES: dict[str, dict[str, Any]] = {
    "bilinear": {"mode": "linear"},
    "bicubic": {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1}}


def _resize(ctx: Builder, call: Call, x: ir.Value, in_hw: Sequence[int], out_hw: Sequence[int],
            method: str, antialias: bool = False) -> ir.Value:
    """Resize ``x`` (Keras layout, static spatial size ``in_hw``) to ``out_hw`` as Keras does."""
    if method == "nearest":
        return _resize_nearest(ctx, call, x, in_hw, out_hw)
    downsampling = any(o < i for i, o in zip(in_hw, out_hw))
    # onnxruntime's cubic Resize refuses to downsample NCHW, so that goes the matrix way too.
    if (method == "bilinear" and not (antialias and downsampling)) or \
            (method == "bicubic" and not downsampling):
        return _resize_onnx(ctx, call, method, x=x, sizes=list(out_hw))
    if method not in _KERNELS:
        raise UnsupportedError(f"interpolation {method!r}; supported: nearest, bilinear, "
                               f"bicubic, lanczos3, lanczos5", layer=call.name)
    # What ONNX Resize cannot say exactly here (lanczos, antialiased or bicubic downsampling):
    # the separable weight matrices jax.image.resize itself contracts with, one Einsum per axis.
    axes = [2, 3] if channels_first(call) else [1, 2]
    letters = "abcd"
    for axis, size_in, size_out in zip(axes, in_hw, out_hw):
        if size_in == size_out:
            continue  # jax skips an axis whose size does not change
        w = _weight_matrix(size_in, size_out, method, antialias)
        out_letters = letters[:axis] + "y" + letters[axis + 1:]
        x = ctx.op("Einsum", ctx.const(w, f"{call.name}/resize_weights"), x,
                   equation=f"y{letters[axis]},{letters}->{out_letters}")
    return x


def _resize_onnx(ctx: Builder, call: Call, method: str, *, x: ir.Value | None = None,
                 sizes: list[int] | None = None, scales: list[float] | None = None
                 ) -> ir.Value:
    if method not in _ONNX_MODES:
        raise UnsupportedError(f"interpolation {method!r} needs the input's spatial size",
                               layer=call.name)
    attrs = {**_ONNX_MODES[method], "coordinate_transformation_mode": "half_pixel"}
    return _resize_nchw(ctx, call, x, attrs, sizes=sizes, scales=scales)


def _resize_nchw(ctx: Builder, call: Call, x: ir.Value | None, attrs: dict, *,
                 sizes: list[int] | None = None, scales: list[float] | None = None
                 ) -> ir.Value:
    """ONNX Resize of the spatial axes, in NCHW between Transposes."""
    x = into_nchw(ctx, call, x)
    if scales is not None:
        scale = ctx.const(np.asarray([1.0, 1.0] + list(scales), np.float32), f"{call.name}/scales")
        y = ctx.op("Resize", x, None, scale, **attrs)
    elif sizes is None:
        raise ModelportError("internal error: a Resize lowered without sizes or scales",
                             layer=call.name)
    else:
        # Full sizes, the batch (and channels) from the input's shape: onnxruntime 1.31 fails
        # shape inference on Resize-18's `axes` with partial sizes.
        leading = ctx.slice(ctx.op("Shape", x), [0], [2], [0])
        full = ctx.op("Concat", leading, ctx.ints(sizes, f"{call.name}/sizes"), axis=0)
        y = ctx.op("Resize", x, None, None, full, **attrs)
    return out_of_nchw(ctx, call, y)


def _nearest_indices(size_in: int, size_out: int) -> np.ndarray:
    # jax.image.resize "nearest": floor((i + 0.5) * in / out), evaluated in float32.
    offsets = (np.arange(size_out, dtype=np.float32) + np.float32(0.5)) * np.float32(size_in)
    offsets = offsets / np.float32(size_out)
    return np.minimum(np.floor(offsets).astype(np.int64), size_in - 1)


def _resize_nearest(ctx: Builder, call: Call, x: ir.Value, in_hw: Sequence[int],
                    out_hw: Sequence[int]) -> ir.Value:
    # Gathers with the exact source indices, in NCHW so neighbouring Transposes cancel.
    y = into_nchw(ctx, call, x)
    for axis, size_in, size_out in zip((2, 3), in_hw, out_hw):
        if size_in != size_out:
            index = ctx.ints(_nearest_indices(size_in, size_out), f"{call.name}/indices")
            y = ctx.op("Gather", y, index, axis=axis)
    return out_of_nchw(ctx, call, y)


def _triangle(x: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, 1.0 - np.abs(x))


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    out = ((1.5 * x - 2.5) * x) * x + 1.0
    out = np.where(x >= 1.0, ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0, out)
    return np.where(x >= 2.0, 0.0, out)


def _lanczos(radius: float):
    def kernel(x: np.ndarray) -> np.ndarray:
        y = radius * np.sin(np.pi * x) * np.sin(np.pi * x / radius)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(x > 1e-3, y / np.where(x != 0, np.pi ** 2 * x ** 2, 1), 1.0)
        return np.where(x > radius, 0.0, out)
    return kernel


_KERNELS = {"bilinear": _triangle, "bicubic": _keys_cubic, "lanczos3": _lanczos(3.0),
            "lanczos5": _lanczos(5.0)}


def _weight_matrix(size_in: int, size_out: int, method: str, antialias: bool) -> np.ndarray:
    """(out, in) weights of jax.image.scale_and_translate (no translation, no edge padding)."""
    inv_scale = size_in / size_out
    kernel_scale = max(inv_scale, 1.0) if antialias else 1.0
    sample = (np.arange(size_out) + 0.5) * inv_scale - 0.5
    weights = _KERNELS[method](np.abs(sample[None, :] - np.arange(size_in)[:, None]) /
                               kernel_scale)
    total = weights.sum(axis=0, keepdims=True)
    weights = np.where(np.abs(total) > 1000.0 * float(np.finfo(np.float32).eps),
                       weights / np.where(total != 0, total, 1), 0.0)
    inside = (sample >= -0.5) & (sample <= size_in - 0.5)
    return np.ascontiguousarray(np.where(inside[None, :], weights, 0.0).T.astype(np.float32))


def _aspect_crop(hw: Sequence[int], target: Sequence[int]) -> tuple[list[int], list[int]]:
    """Keras's crop_to_aspect_ratio box: (starts, sizes) of the largest centred window."""
    (h, w), (th, tw) = hw, target
    ch = max(min(h, int(float(w * th) / tw)), 1)
    cw = max(min(w, int(float(h * tw) / th)), 1)
    return [int(float(h - ch) / 2), int(float(w - cw) / 2)], [ch, cw]


def _static_hw(call: Call) -> list[int]:
    hw = _spatial_sizes(call)
    if call.rank != 4:
        raise UnsupportedError(f"input of rank {call.rank}; expected a batch of images (rank 4)",
                               layer=call.name)
    known = [s for s in hw if s is not None]
    if len(known) != len(hw):
        raise UnsupportedError(f"input height/width {hw} must be known for this configuration",
                               layer=call.name)
    return [int(s) for s in known]


def _float_input(call: Call) -> None:
    if call.spec.dtype not in ("float32", "float16", "float64"):
        raise UnsupportedError(f"input dtype {call.spec.dtype}; resizing needs a float input",
                               layer=call.name)


@LOWERINGS.register("Resizing", relowered=True)
def lower_resizing(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Resizing -> resampling as ``jax.image.resize`` does (see the module), after
    crop_to_aspect_ratio's Slice or pad_to_aspect_ratio's Pad; an unknown input size allows only
    'nearest' and non-antialiased 'bilinear'. Resizing to the input's own size is the identity."""
    cfg = call.config
    _float_input(call)
    target = [int(cfg["height"]), int(cfg["width"])]
    method = cfg.get("interpolation", "bilinear")
    antialias = bool(cfg.get("antialias", False))
    x, axes = call.x, _spatial_axes(call, 2)
    if cfg.get("crop_to_aspect_ratio") or cfg.get("pad_to_aspect_ratio"):
        hw = _static_hw(call)
        if cfg.get("crop_to_aspect_ratio"):
            starts, hw = _aspect_crop(hw, target)
            x = ctx.slice(x, starts, [s + n for s, n in zip(starts, hw)], axes)
        else:
            x, hw = _aspect_pad(ctx, call, x, hw, target, axes)
    elif call.rank == 4 and None in _spatial_sizes(call):
        if method == "nearest":
            attrs = {"mode": "nearest", "coordinate_transformation_mode": "half_pixel",
                     "nearest_mode": "round_prefer_ceil"}  # = floor((i + 0.5) * in / out)
            return [_resize_nchw(ctx, call, x, attrs, sizes=target)]
        if antialias or method != "bilinear":
            # Antialiasing and lanczos need the weights for a known size; onnxruntime's cubic
            # Resize cannot downsample, which an unknown input size might need.
            raise UnsupportedError(f"interpolation {method!r} (antialias={antialias}) needs the "
                                   "input's height and width to be known", layer=call.name)
        return [_resize_onnx(ctx, call, method, x=x, sizes=target)]
    else:
        hw = _static_hw(call)
    if list(hw) == target:
        return [x]  # jax.image.resize is the identity then
    return [_resize(ctx, call, x, hw, target, method, antialias)]


def _aspect_pad(ctx: Builder, call: Call, x: ir.Value, hw: list[int], target: list[int],
                axes: list[int]) -> tuple[ir.Value, list[int]]:
    # Keras pads the short side by the same amount on both ends with fill_value (only one side).
    fill_mode = call.config.get("fill_mode", "constant")
    if fill_mode != "constant":
        raise UnsupportedError(f"fill_mode {fill_mode!r}; only 'constant'", layer=call.name)
    (h, w), (th, tw) = hw, target
    h_start = int(float(max(h, int(float(w * th) / tw)) - h) / 2)
    w_start = int(float(max(w, int(float(h * tw) / th)) - w) / 2)
    if h_start > 0:
        pads, hw = [(h_start, h_start), (0, 0)], [h + 2 * h_start, w]
    elif w_start > 0:
        pads, hw = [(0, 0), (w_start, w_start)], [h, w + 2 * w_start]
    else:
        return x, hw
    value = float(call.config.get("fill_value", 0.0))
    return _pad(ctx, x, call.rank, axes, pads, value, call), hw


@LOWERINGS.register("CenterCrop")
def lower_center_crop(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras CenterCrop -> ONNX Slice of the centred window; an input smaller than the target in
    some dimension takes Keras's smart_resize instead (the largest window of the target's aspect
    ratio, resized bilinearly)."""
    target = [int(call.config["height"]), int(call.config["width"])]
    hw = _static_hw(call)
    axes = _spatial_axes(call, 2)
    if all(s >= t for s, t in zip(hw, target)):
        starts = [(s - t) // 2 for s, t in zip(hw, target)]
        return [ctx.slice(call.x, starts, [b + t for b, t in zip(starts, target)], axes)]
    # Smaller than the target in some dimension: Keras's smart_resize, i.e. crop the largest
    # window of the target's aspect ratio, then resize it bilinearly.
    _float_input(call)
    starts, sizes = _aspect_crop(hw, target)
    x = ctx.slice(call.x, starts, [b + n for b, n in zip(starts, sizes)], axes)
    if sizes == target:
        return [x]
    return [_resize(ctx, call, x, sizes, target, "bilinear")]

