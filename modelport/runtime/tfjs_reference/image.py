"""Image resizing: ResizeBilinear and ResizeNearestNeighbor (NHWC, ``size`` = [height, width]).

TF's coordinate rules, computed in float32 like its CPU kernels:

* scale = ``(in - 1) / (out - 1)`` with ``align_corners`` (and ``out > 1``), else ``in / out``;
* bilinear source coordinate: ``(o + 0.5) * scale - 0.5`` with ``half_pixel_centers``, else
  ``o * scale``; ``lower = max(floor(c), 0)``, ``upper = min(ceil(c), in - 1)``, weight
  ``c - floor(c)``; ``top + (bottom - top) * dy`` after the same along x. Output float32.
* nearest: ``(o + 0.5) * scale`` with ``half_pixel_centers``, else ``o * scale``; then
  ``roundf`` (half away from zero) with ``align_corners``, else ``floor``; clamped to
  ``in - 1`` (and to 0 with half-pixel centers). Output keeps the input dtype.
"""

from __future__ import annotations

import numpy as np

from ._base import Op, register

F32 = np.float32


def _sizes(op: Op) -> tuple[np.ndarray, int, int, bool, bool]:
    x = op.x
    if x.ndim != 4:
        raise op.invalid(f"images of rank {x.ndim} (must be 4, NHWC)")
    size = op.ints_arg(1)
    if len(size) != 2 or min(size) <= 0:
        raise op.invalid(f"size {size} (must be two positive numbers)")
    op.sized([x.shape[0], size[0], size[1], x.shape[3]])
    align, half = op.b("align_corners"), op.b("half_pixel_centers")
    if align and half:
        raise op.invalid("align_corners and half_pixel_centers are both set")
    return x, size[0], size[1], align, half


def _scale(n_in: int, n_out: int, align: bool) -> np.float32:
    if align and n_out > 1:
        return F32(n_in - 1) / F32(n_out - 1)
    return F32(n_in) / F32(n_out)


def _bilinear_axis(n_in: int, n_out: int, align: bool, half: bool):
    scale = _scale(n_in, n_out, align)
    o = np.arange(n_out, dtype=F32)
    c = ((o + F32(0.5)) * scale - F32(0.5)) if half else o * scale
    floor = np.floor(c)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(c).astype(np.int64), n_in - 1)
    return lower, upper, (c - floor).astype(F32)


@register("ResizeBilinear")
def _resize_bilinear(op: Op) -> np.ndarray:
    x, h, w, align, half = _sizes(op)
    x = x.astype(F32, copy=False)
    y0, y1, dy = _bilinear_axis(x.shape[1], h, align, half)
    x0, x1, dx = _bilinear_axis(x.shape[2], w, align, half)
    dx = dx[None, None, :, None]
    top_rows, bottom_rows = x[:, y0], x[:, y1]
    top = top_rows[:, :, x0] + (top_rows[:, :, x1] - top_rows[:, :, x0]) * dx
    bottom = bottom_rows[:, :, x0] + (bottom_rows[:, :, x1] - bottom_rows[:, :, x0]) * dx
    return (top + (bottom - top) * dy[None, :, None, None]).astype(F32)


def _nearest_axis(n_in: int, n_out: int, align: bool, half: bool) -> np.ndarray:
    scale = _scale(n_in, n_out, align)
    o = np.arange(n_out, dtype=F32)
    c = (o + F32(0.5)) * scale if half else o * scale
    if align:  # C's roundf: half away from zero, exact (no c + 0.5 rounding)
        whole = np.trunc(c)
        index = whole + np.where(np.abs(c - whole) >= F32(0.5), np.sign(c), F32(0))
    else:
        index = np.floor(c)
    index = np.minimum(index.astype(np.int64), n_in - 1)
    return np.maximum(index, 0) if half else index


@register("ResizeNearestNeighbor")
def _resize_nearest(op: Op) -> np.ndarray:
    x, h, w, align, half = _sizes(op)
    rows = _nearest_axis(x.shape[1], h, align, half)
    cols = _nearest_axis(x.shape[2], w, align, half)
    return np.ascontiguousarray(x[:, rows][:, :, cols])
