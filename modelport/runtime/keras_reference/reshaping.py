"""Spatial reshaping: cropping, zero padding, upsampling, and the image resizing layers.

Image resizing follows Keras 3's ``ops.image.resize`` (the JAX backend our fixtures come from,
``jax.image.resize`` underneath), one separable weight matrix per resized axis:

* ``nearest``: source index ``floor((j + 0.5) * in / out)`` (computed in float32);
* ``bilinear``/``bicubic``/``lanczos3``/``lanczos5``: half-pixel centres, source coordinate
  ``(j + 0.5) * in / out - 0.5``; a kernel (triangle; Keys cubic with a = -0.5; Lanczos) over
  the input pixels that exist, renormalised to sum 1 (so edges are not clamped but reweighted);
  with ``antialias`` the kernel is widened by ``in / out`` when downsampling. An axis whose size
  does not change is left as is.
"""

from __future__ import annotations

import numpy as np

from ._base import (
    Call,
    as_float,
    channels_first,
    compute_dtype,
    ints,
    pairs,
    register,
    reserve,
    unsupported,
)

# --- cropping, padding, upsampling --------------------------------------------------------------

def _spatial_axes(call: Call, n: int, rank: int) -> list[int]:
    if n == 1:
        return [1]
    return list(range(2, n + 2)) if channels_first(call.cfg) else list(range(1, n + 1))


def _crop(n: int):
    def fn(call: Call) -> list[np.ndarray]:
        x = call.x
        crops = pairs(call.cfg.get("cropping", 1), n)
        index = [slice(None)] * x.ndim
        for axis, (a, b) in zip(_spatial_axes(call, n, x.ndim), crops):
            index[axis] = slice(a, x.shape[axis] - b)
        return [x[tuple(index)]]
    return fn


def _pad(n: int):
    def fn(call: Call) -> list[np.ndarray]:
        x = as_float(call.x, call.cfg) if call.x.dtype.kind == "f" else call.x
        widths = [(0, 0)] * x.ndim
        for axis, p in zip(_spatial_axes(call, n, x.ndim), pairs(call.cfg.get("padding", 1), n)):
            widths[axis] = p
        reserve(call, [d + a + b for d, (a, b) in zip(x.shape, widths)])
        return [np.pad(x, widths)]
    return fn


def _upsample(n: int):
    def fn(call: Call) -> list[np.ndarray]:
        x = call.x
        sizes = ints(call.cfg.get("size", 2), n, "size")
        grown = list(x.shape)
        for axis, s in zip(_spatial_axes(call, n, x.ndim), sizes):
            grown[axis] *= s
        reserve(call, grown)
        interpolation = call.cfg.get("interpolation", "nearest")
        if n == 2 and interpolation != "nearest":
            axes = _spatial_axes(call, 2, x.ndim)
            out = [x.shape[a] * s for a, s in zip(axes, sizes)]
            return [resize(as_float(x, call.cfg), dict(zip(axes, out)), interpolation, False)]
        for axis, s in zip(_spatial_axes(call, n, x.ndim), sizes):
            x = np.repeat(x, s, axis=axis)
        return [x]
    return fn


for _n in (1, 2, 3):
    register(f"Cropping{_n}D")(_crop(_n))
    register(f"ZeroPadding{_n}D")(_pad(_n))
    register(f"UpSampling{_n}D")(_upsample(_n))


# --- image resizing -----------------------------------------------------------------------------

def _triangle(x: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, 1.0 - np.abs(x))


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    near = ((1.5 * x - 2.5) * x) * x + 1.0
    far = ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    return np.where(x >= 2.0, 0.0, np.where(x >= 1.0, far, near))


def _lanczos(radius: float):
    def kernel(x: np.ndarray) -> np.ndarray:
        x = np.abs(x)
        y = radius * np.sin(np.pi * x) * np.sin(np.pi * x / radius)
        safe = np.where(x != 0, np.pi ** 2 * x ** 2, 1.0)
        out = np.where(x > 1e-3, y / safe, 1.0)
        return np.where(x > radius, 0.0, out)
    return kernel


KERNELS = {"bilinear": _triangle, "bicubic": _keys_cubic, "lanczos3": _lanczos(3.0),
           "lanczos5": _lanczos(5.0)}


def _weights(size_in: int, size_out: int, kernel, antialias: bool) -> np.ndarray:
    """(in, out) interpolation weights of one axis."""
    inv_scale = size_in / size_out
    kernel_scale = max(inv_scale, 1.0) if antialias else 1.0
    sample = (np.arange(size_out) + 0.5) * inv_scale - 0.5
    w = kernel(np.abs(sample[None, :] - np.arange(size_in)[:, None]) / kernel_scale)
    total = w.sum(axis=0, keepdims=True)
    w = np.where(np.abs(total) > 1000.0 * np.finfo(np.float32).eps,
                 w / np.where(total != 0, total, 1.0), 0.0)
    inside = (sample >= -0.5) & (sample <= size_in - 0.5)
    return np.where(inside[None, :], w, 0.0)


def resize(x: np.ndarray, sizes: dict[int, int], interpolation: str,
           antialias: bool) -> np.ndarray:
    """Resize ``x`` so that axis ``a`` has length ``sizes[a]``."""
    if interpolation == "nearest":
        for axis, out in sizes.items():
            n = x.shape[axis]
            if n == out:
                continue
            src = np.floor(((np.arange(out, dtype=np.float32) + np.float32(0.5)) * np.float32(n)
                            / np.float32(out)).astype(np.float32)).astype(np.int64)
            x = np.take(x, src, axis=axis)
        return x
    kernel = KERNELS.get(interpolation)
    if kernel is None:
        raise ValueError(f"interpolation {interpolation!r}")
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    y = x.astype(np.float64)
    for axis, out in sizes.items():
        if y.shape[axis] == out:
            continue
        w = _weights(y.shape[axis], out, kernel, antialias)
        y = np.moveaxis(np.tensordot(y, w, axes=([axis], [0])), -1, axis)
    return y.astype(dtype)


def _hw_axes(call: Call, x: np.ndarray) -> tuple[int, int]:
    if x.ndim not in (3, 4):
        raise unsupported(call, f"expects an image batch (rank 4) or one image (rank 3), got "
                                f"shape {x.shape}")
    return (x.ndim - 2, x.ndim - 1) if channels_first(call.cfg) else (x.ndim - 3, x.ndim - 2)


def _crop_to_aspect(x: np.ndarray, axes: tuple[int, int], th: int, tw: int) -> np.ndarray:
    h, w = x.shape[axes[0]], x.shape[axes[1]]
    ch = max(min(h, int(float(w * th) / tw)), 1)
    cw = max(min(w, int(float(h * tw) / th)), 1)
    hs, ws = int(float(h - ch) / 2), int(float(w - cw) / 2)
    index = [slice(None)] * x.ndim
    index[axes[0]], index[axes[1]] = slice(hs, hs + ch), slice(ws, ws + cw)
    return x[tuple(index)]


def _pad_to_aspect(x: np.ndarray, axes: tuple[int, int], th: int, tw: int,
                   fill: float) -> np.ndarray:
    h, w = x.shape[axes[0]], x.shape[axes[1]]
    ph = max(h, int(float(w * th) / tw))
    pw = max(w, int(float(h * tw) / th))
    hs, ws = int(float(ph - h) / 2), int(float(pw - w) / 2)
    widths = [(0, 0)] * x.ndim
    if hs > 0:  # Keras pads the height if it must, else the width, never both
        widths[axes[0]] = (hs, hs)
    elif ws > 0:
        widths[axes[1]] = (ws, ws)
    return np.pad(x, widths, constant_values=fill)


def _back_to(y: np.ndarray, like: np.ndarray) -> np.ndarray:
    if like.dtype.kind in "iu":  # integer images are rounded and saturated back
        info = np.iinfo(like.dtype)
        return np.clip(np.round(y), info.min, info.max).astype(like.dtype)
    return y


@register("Resizing")
def _resizing(call: Call) -> list[np.ndarray]:
    x = call.x
    cfg = call.cfg
    axes = _hw_axes(call, x)
    th, tw = int(cfg["height"]), int(cfg["width"])
    grown = list(x.shape)
    grown[axes[0]], grown[axes[1]] = th, tw
    reserve(call, grown)
    if cfg.get("crop_to_aspect_ratio") and cfg.get("pad_to_aspect_ratio"):
        raise unsupported(call, "crop_to_aspect_ratio and pad_to_aspect_ratio are exclusive")
    y = x if x.dtype.kind in "iu" else as_float(x, cfg)
    if cfg.get("crop_to_aspect_ratio"):
        y = _crop_to_aspect(y, axes, th, tw)
    elif cfg.get("pad_to_aspect_ratio"):
        y = _pad_to_aspect(y, axes, th, tw, float(cfg.get("fill_value", 0.0)))
    y = resize(y, {axes[0]: th, axes[1]: tw}, cfg.get("interpolation", "bilinear"),
               bool(cfg.get("antialias", False)))
    return [_back_to(y, x)]


@register("CenterCrop")
def _center_crop(call: Call) -> list[np.ndarray]:
    x = call.x.astype(compute_dtype(call.cfg))
    axes = _hw_axes(call, x)
    th, tw = int(call.cfg["height"]), int(call.cfg["width"])
    h, w = x.shape[axes[0]], x.shape[axes[1]]
    if h >= th and w >= tw:
        index = [slice(None)] * x.ndim
        index[axes[0]] = slice((h - th) // 2, (h - th) // 2 + th)
        index[axes[1]] = slice((w - tw) // 2, (w - tw) // 2 + tw)
        return [x[tuple(index)]]
    # Smaller than the target: Keras's smart_resize (crop to the aspect ratio, then bilinear).
    y = _crop_to_aspect(x, axes, th, tw)
    return [resize(y, {axes[0]: th, axes[1]: tw}, "bilinear", False)]
