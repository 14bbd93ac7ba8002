"""Pooling, batch normalization (inference) and local response normalization.

* ``MaxPool``/``AvgPool`` (and 3D): ``ksize``/``strides`` per dimension in data_format order;
  SAME pads like a convolution; max pools pad with -inf; average pools divide by the number of
  real (unpadded) elements in each window. ``MaxPool`` also takes ``EXPLICIT`` padding.
* ``FusedBatchNorm``/``V2``/``V3`` with ``is_training=false``:
  ``(x - mean) * scale / sqrt(variance + epsilon) + offset`` along the channel axis; the other
  outputs (batch mean/variance, reserve spaces) pass the estimates through. With
  ``is_training=true`` the mean and (biased) variance are the input's own, over every axis
  but the channel; outputs 1 and 2 are that mean and the unbiased variance.
* ``LRN`` over the last axis: ``x / (bias + alpha * sum(x[d-r..d+r]^2)) ** beta``.
"""

from __future__ import annotations

import numpy as np

from ..windows import windows
from ._base import Op, from_last, padding_amounts, register, spatial, to_last


def _pool(op: Op, n: int, mode: str) -> np.ndarray:
    cf = op.channels_first()
    x = to_last(op.x, cf)
    if x.ndim != n + 2:
        raise op.invalid(f"input of rank {x.ndim}, expected {n + 2}")
    ksize = tuple(spatial(op.ints("ksize"), cf, "ksize", op))
    strides = tuple(spatial(op.ints("strides"), cf, "strides", op))
    ones = (1,) * n
    pads = padding_amounts(op, x.shape[1:-1], ksize, strides, cf)
    axes = tuple(range(n + 2, 2 * n + 2))
    if mode == "max":
        fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        y = windows(x, ksize, strides, ones, pads, pad_value=fill).max(axis=axes)
    else:
        total = windows(x.astype(np.float64), ksize, strides, ones, pads).sum(axis=axes)
        count = windows(np.ones((1, *x.shape[1:-1], 1)), ksize, strides, ones, pads).sum(axis=axes)
        y = (total / count).astype(x.dtype)
    return from_last(y, cf)


register("MaxPool")(lambda op: _pool(op, 2, "max"))
register("AvgPool")(lambda op: _pool(op, 2, "avg"))
register("MaxPool3D")(lambda op: _pool(op, 3, "max"))
register("AvgPool3D")(lambda op: _pool(op, 3, "avg"))


@register("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
def _fused_batch_norm(op: Op) -> list[np.ndarray]:
    if op.b("is_training", True):
        return _batch_norm_training(op)
    x = op.x
    scale, offset, mean, var = (op.arg(k) for k in range(1, 5))
    axis = 1 if op.channels_first() else x.ndim - 1
    shape = [1] * x.ndim
    shape[axis] = -1
    eps = op.f("epsilon", 1e-4)
    factor = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    y = (x - mean.reshape(shape)) * factor.reshape(shape) + offset.reshape(shape)
    outs = [y.astype(x.dtype), mean, var, mean, var]
    if op.type == "FusedBatchNormV3":
        outs.append(np.zeros(0, np.float32))
    return outs


def _batch_norm_training(op: Op) -> list[np.ndarray]:
    """``is_training=true``: the input's own moments over every axis but the channel; the
    biased variance normalizes, the unbiased one is output 2 (``exponential_avg_factor`` 1:
    the running statistics are the batch's)."""
    if op.f("exponential_avg_factor", 1.0) != 1.0:
        raise op.unsupported("is_training=true with exponential_avg_factor != 1")
    x = op.x
    axis = 1 if op.channels_first() else x.ndim - 1
    axes = tuple(a for a in range(x.ndim) if a != axis)
    shape = [1] * x.ndim
    shape[axis] = -1
    wide = x.astype(np.float64)
    mean = wide.mean(axis=axes, keepdims=True)
    var = np.square(wide - mean).mean(axis=axes, keepdims=True)
    scale, offset = (np.asarray(op.arg(k), np.float64).reshape(shape) for k in (1, 2))
    y = (wide - mean) / np.sqrt(var + op.f("epsilon", 1e-4)) * scale + offset
    n = x.size // max(x.shape[axis], 1)
    unbiased = var.reshape(-1) * (n / (n - 1) if n > 1 else np.nan)
    return [y.astype(x.dtype), mean.reshape(-1).astype(x.dtype), unbiased.astype(x.dtype)]


@register("LRN")
def _lrn(op: Op) -> np.ndarray:
    x = op.x
    r = op.i("depth_radius", 5)
    bias, alpha, beta = op.f("bias", 1.0), op.f("alpha", 1.0), op.f("beta", 0.5)
    sq = np.square(x.astype(np.float64))
    depth = x.shape[-1]
    csum = np.concatenate([np.zeros(sq.shape[:-1] + (1,)), np.cumsum(sq, axis=-1)], axis=-1)
    hi = np.minimum(np.arange(depth) + r + 1, depth)
    lo = np.maximum(np.arange(depth) - r, 0)
    window = csum[..., hi] - csum[..., lo]
    return (x / np.power(bias + alpha * window, beta)).astype(x.dtype)
