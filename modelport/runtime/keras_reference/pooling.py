"""Pooling: windowed max/average (1D/2D/3D) and global pooling.

Windows come from the same im2col view as convolutions. ``same`` padding pads like a
convolution with dilation 1; max pooling pads with -inf, average pooling divides each window by
the number of real (unpadded) elements in it. ``strides`` defaults to ``pool_size``.
``GlobalAveragePooling1D`` honours a Keras mask (a masked mean); it is the only one that does.
"""

from __future__ import annotations

import numpy as np

from ..windows import windows
from ._base import (
    Call,
    Masked,
    as_float,
    from_spatial_last,
    ints,
    register,
    to_spatial_last,
)
from .conv import conv_pads


def _pool(call: Call, n: int, mode: str) -> list[np.ndarray]:
    x = to_spatial_last(as_float(call.x, call.cfg), call.cfg)
    pool = ints(call.cfg.get("pool_size", 2), n, "pool_size")
    strides = pool if call.cfg.get("strides") is None else ints(call.cfg["strides"], n, "strides")
    padding = str(call.cfg.get("padding", "valid")).lower()
    pads = conv_pads(padding, x.shape[1:-1], pool, strides, (1,) * n)
    window_axes = tuple(range(n + 2, 2 * n + 2))
    if mode == "max":
        y = windows(x, pool, strides, (1,) * n, pads, pad_value=-np.inf).max(axis=window_axes)
    else:
        total = windows(x.astype(np.float64), pool, strides, (1,) * n, pads).sum(axis=window_axes)
        ones = np.ones((1, *x.shape[1:-1], 1))
        count = windows(ones, pool, strides, (1,) * n, pads).sum(axis=window_axes)
        y = (total / count).astype(x.dtype)
    return [from_spatial_last(y, call.cfg)]


def _global(call: Call, n: int, mode: str) -> Masked:
    x = as_float(call.x, call.cfg)
    cf = call.cfg.get("data_format") == "channels_first"
    axes = tuple(range(2, n + 2)) if cf else tuple(range(1, n + 1))
    keep = bool(call.cfg.get("keepdims", False))
    mask = call.mask if (n == 1 and mode == "avg") else None
    if mode == "max":
        y = x.max(axis=axes, keepdims=keep)
    elif mask is not None:
        m = np.expand_dims(mask.astype(bool), 1 if cf else 2)
        total = np.where(m, x, 0).astype(np.float64).sum(axis=axes, keepdims=keep)
        y = (total / m.astype(np.float64).sum(axis=axes, keepdims=keep)).astype(x.dtype)
    else:
        y = x.astype(np.float64).mean(axis=axes, keepdims=keep).astype(x.dtype)
    return Masked([y], [None])


def _make_pool(n: int, mode: str):
    return lambda call: _pool(call, n, mode)


def _make_global(n: int, mode: str):
    return lambda call: _global(call, n, mode)


for _n in (1, 2, 3):
    register(f"MaxPooling{_n}D")(_make_pool(_n, "max"))
    register(f"AveragePooling{_n}D")(_make_pool(_n, "avg"))
    register(f"GlobalMaxPooling{_n}D")(_make_global(_n, "max"))
    register(f"GlobalAveragePooling{_n}D")(_make_global(_n, "avg"))
