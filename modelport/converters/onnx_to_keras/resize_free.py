"""Asymmetric bilinear upsampling by integer factors for free height/width: stock layers exact
for every size.

TF 1's ResizeBilinear (half_pixel_centers=False; ONNX Resize linear / asymmetric) by an integer
factor ``f`` reads output ``f j + r`` (``0 <= r < f``) as
``x[j] + (r / f) * d[j]`` with ``d[j] = x[min(j + 1, n - 1)] - x[j]``: the next cell minus this
one, zero at the last cell (ONNX clamps the source to the edge). An AveragePooling2D of
two cells along the axis, stride 1, 'same' (TF's, which pads one cell at the end and leaves it
out of the mean) is ``m[j] = x[j] + d[j] / 2`` at every cell, the last one included, for every
size (1 too). So output ``f j + r`` is ``(1 - 2r/f) x[j] + (2r/f) m[j]``: a Conv2DTranspose of
stride ``f`` ('valid', no overlaps: ``n f`` cells) on ``x`` and ``m`` side by side
(Concatenate), its kernel those two weights per ``r`` (each channel to itself). Per axis:
AveragePooling2D, Concatenate, Conv2DTranspose.

Height then width (the bilinear weights are a product, so the two passes compose exactly); an
axis of factor 1 is left alone. The mean rounds once more than onnxruntime's weighted sum (float32
ulps of the inputs' scale). The channel count must be known (the kernels hold it).
"""

from __future__ import annotations

import numpy as np

from ...models import TensorRef
from .core import Ctx


def asymmetric_bilinear(ctx: Ctx, x: TensorRef, channels: int | None,
                        factors: list[int]) -> TensorRef:
    """Upsample channels-last 4-D ``x`` by ``factors`` (height, width) as TF 1's
    ResizeBilinear does, for every input size."""
    if channels is None:
        raise ctx.refuse("asymmetric bilinear resizing of free spatial size needs a known "
                         "channel count (its kernels hold it)")
    for axis, f in enumerate(factors):
        if f > 1:
            x = _axis_pass(ctx, x, channels, axis, f)
    return x


def _along(axis: int, length: int) -> list[int]:
    """A 2-D kernel size or stride of ``length`` along ``axis`` (0 height, 1 width), 1 across."""
    return [length, 1] if axis == 0 else [1, length]


def _axis_pass(ctx: Ctx, x: TensorRef, channels: int, axis: int, f: int) -> TensorRef:
    """One axis of the upsampling: the pair means, beside ``x``, through a Conv2DTranspose."""
    name = "h" if axis == 0 else "w"
    pair = ctx.layer("AveragePooling2D", {"pool_size": _along(axis, 2), "strides": [1, 1],
                                           "padding": "same", "data_format": "channels_last"},
                     x, suffix=f"{name}_pair_mean")
    both = ctx.layer("Concatenate", {"axis": 3}, [x, pair], suffix=f"{name}_cells")
    kernel = np.zeros((f, channels, 2, channels), np.float32)  # (r, out, [x, mean], in)
    eye = np.eye(channels, dtype=np.float32)
    for r in range(f):
        kernel[r, :, 0] = eye * np.float32(1 - 2 * r / f)
        kernel[r, :, 1] = eye * np.float32(2 * r / f)
    kernel = kernel.reshape(*_along(axis, f), channels, 2 * channels)
    return ctx.layer("Conv2DTranspose", {"filters": channels, "kernel_size": _along(axis, f),
                                         "strides": _along(axis, f), "padding": "valid",
                                         "dilation_rate": [1, 1], "use_bias": False,
                                         "activation": "linear", "output_padding": None,
                                         "data_format": "channels_last"},
                     both, suffix=f"{name}_bilinear", weights=[("kernel", kernel)])
