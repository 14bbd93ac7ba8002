"""Spatial reshaping: cropping, zero padding, upsampling, image resizing and center crops."""

from __future__ import annotations

from functools import partial

from ...errors import FormatError
from .base import TensorSpec, TfjsRule, declarer
from .helpers import channels_first, ints, no_variables, one, out, pairs, per_axis, positive

declare = declarer(__name__)


def _cropping(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    crops = pairs(cfg.get("cropping", 1), n)
    return per_axis(cfg, inputs, n, lambda d, i: positive(d - sum(crops[i]), "cropping"))


def _zero_padding(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    pads = pairs(cfg.get("padding", 1), n)
    return per_axis(cfg, inputs, n, lambda d, i: d + sum(pads[i]))


def _upsampling(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    factors = ints(cfg.get("size", 2), n)
    return per_axis(cfg, inputs, n, lambda d, i: d * factors[i])


declare("Cropping1D", shape=partial(_cropping, n=1), variables=no_variables)
declare("Cropping2D", shape=partial(_cropping, n=2), variables=no_variables, tfjs=True)
declare("Cropping3D", shape=partial(_cropping, n=3), variables=no_variables)
declare("ZeroPadding1D", shape=partial(_zero_padding, n=1), variables=no_variables)
declare("ZeroPadding2D", shape=partial(_zero_padding, n=2), variables=no_variables, tfjs=True)
declare("ZeroPadding3D", shape=partial(_zero_padding, n=3), variables=no_variables)
declare("UpSampling1D", shape=partial(_upsampling, n=1), variables=no_variables)
declare("UpSampling2D", shape=partial(_upsampling, n=2), variables=no_variables, tfjs=True,
        tfjs_blockers=(TfjsRule(lambda c: c.get("interpolation", "nearest") != "nearest",
                                "tfjs-layers resizes bilinearly without half-pixel centres: "
                                "different numbers from Keras (modelport rewrites it exactly "
                                "where height and width are static and the data "
                                "channels_last)"),))
declare("UpSampling3D", shape=partial(_upsampling, n=3), variables=no_variables)


def _image_resize(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    shape = list(one(inputs).shape)
    if len(shape) not in (3, 4):
        raise FormatError(f"expects an image batch (rank 4) or one image (rank 3), got {shape}")
    # Keras reads a rank-3 tensor as ONE unbatched image, even a (batch, h, w) one: mirror it.
    first = len(shape) - 3 + (1 if channels_first(cfg) else 0)
    shape[first:first + 2] = [int(cfg["height"]), int(cfg["width"])]
    return out(cfg, shape)


declare("CenterCrop", shape=_image_resize, variables=no_variables, tfjs=True)
# tfjs-layers 4.22 registers Resizing, but its call resizes the list of its inputs (real tfjs:
# "resizeBilinear: x must be rank 3 or 4, but got rank 1"), its output shape leaves the batch
# out (the next layers are built on [h, w, width]) and it aligns corners where Keras uses half
# pixels: no config of it runs as Keras computes it.
declare("Resizing", shape=_image_resize, variables=no_variables, tfjs=True, tfjs_blockers=(
    TfjsRule(lambda c: True, "tfjs-layers 4.22's Resizing layer fails on a batch (it resizes "
             "its input list; its output shape drops the batch axis) and aligns corners"),))
