"""Normalization layers at inference: batch, layer, group, unit norm and Normalization.

Statistics are computed in float64 and the result handed back in the compute dtype. Keras's
definitions (3.x):

* BatchNormalization: ``(x - moving_mean) / sqrt(moving_variance + epsilon) * gamma + beta``
  along ``axis``.
* LayerNormalization: mean and (biased) variance over ``axis``; with ``rms_scaling`` it is
  ``x / sqrt(var + epsilon) * gamma``: the *variance about the mean*, no centring, no beta.
* GroupNormalization: the channel axis split into ``groups`` (group-major), moments over every
  axis but batch and group.
* UnitNormalization: ``x * min(1 / ||x||, 1e12)`` over ``axis``.
* modelport>LocalResponseNormalization (ONNX's LRN on the last axis, ``modelport/keras_layers.py``):
  ``x / (bias + alpha / size * sum(x[c - lo .. c + hi] ** 2)) ** beta``, ``lo = (size - 1) // 2``,
  ``hi = size - 1 - lo``, channels outside the tensor counting as 0.
* Normalization: ``(x - mean) / max(sqrt(variance), 1e-7)`` (or its inverse with ``invert``),
  mean/variance broadcast over the kept ``axis`` dimensions.
"""

from __future__ import annotations

import numpy as np

from ._base import Call, as_float, register, unsupported


def _axes(value, ndim: int) -> list[int]:
    values = [value] if isinstance(value, int) else list(value)
    return sorted(int(a) % ndim for a in values)


def _param(call: Call, name: str, shape: list[int]) -> np.ndarray | None:
    value = call.w.get(name)
    return None if value is None else value.astype(np.float64).reshape(shape)


@register("BatchNormalization", mask="propagate")
def _batch_norm(call: Call) -> list[np.ndarray]:
    x = as_float(call.x, call.cfg)
    axes = _axes(call.cfg.get("axis", -1), x.ndim)
    shape = [x.shape[a] if a in axes else 1 for a in range(x.ndim)]
    # the moving statistics are required (a missing one is named), gamma and beta optional
    mean, var = (call.w[n].astype(np.float64).reshape(shape)
                 for n in ("moving_mean", "moving_variance"))
    inv = 1.0 / np.sqrt(var + float(call.cfg.get("epsilon", 1e-3)))
    gamma, beta = _param(call, "gamma", shape), _param(call, "beta", shape)
    if gamma is not None:
        inv = inv * gamma
    shift = -mean * inv + (beta if beta is not None else 0.0)
    return [(x.astype(np.float64) * inv + shift).astype(x.dtype)]


@register("LayerNormalization", mask="propagate")
def _layer_norm(call: Call) -> list[np.ndarray]:
    x = as_float(call.x, call.cfg)
    x64 = x.astype(np.float64)
    axes = tuple(_axes(call.cfg.get("axis", -1), x.ndim))
    shape = [x.shape[a] if a in axes else 1 for a in range(x.ndim)]
    eps = float(call.cfg.get("epsilon", 1e-3))
    var = x64.var(axis=axes, keepdims=True)
    gamma, beta = _param(call, "gamma", shape), _param(call, "beta", shape)
    if call.cfg.get("rms_scaling"):
        y = x64 / np.sqrt(var + eps)
        if gamma is not None:
            y = y * gamma
        return [y.astype(x.dtype)]
    y = (x64 - x64.mean(axis=axes, keepdims=True)) / np.sqrt(var + eps)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return [y.astype(x.dtype)]


@register("GroupNormalization", mask="propagate")
def _group_norm(call: Call) -> list[np.ndarray]:
    x = as_float(call.x, call.cfg)
    axis = int(call.cfg.get("axis", -1)) % x.ndim
    groups = int(call.cfg.get("groups", 32))
    channels = x.shape[axis]
    if channels % groups:
        raise unsupported(call, f"{channels} channels do not split into {groups} groups")
    grouped = x.astype(np.float64).reshape(
        *x.shape[:axis], groups, channels // groups, *x.shape[axis + 1:])
    reduce = tuple(a for a in range(1, grouped.ndim) if a != axis)
    mean = grouped.mean(axis=reduce, keepdims=True)
    var = grouped.var(axis=reduce, keepdims=True)
    y = (grouped - mean) / np.sqrt(var + float(call.cfg.get("epsilon", 1e-3)))
    shape = [1] * grouped.ndim
    shape[axis], shape[axis + 1] = groups, channels // groups
    gamma, beta = _param(call, "gamma", shape), _param(call, "beta", shape)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return [y.reshape(x.shape).astype(x.dtype)]


@register("UnitNormalization", mask="propagate")
def _unit_norm(call: Call) -> list[np.ndarray]:
    x = as_float(call.x, call.cfg)
    x64 = x.astype(np.float64)
    axes = tuple(_axes(call.cfg.get("axis", -1), x.ndim))
    norm2 = np.sum(x64 * x64, axis=axes, keepdims=True)
    with np.errstate(divide="ignore"):
        inv = np.minimum(1.0 / np.sqrt(norm2), 1e12)
    return [(x64 * inv).astype(x.dtype)]


@register("modelport>LocalResponseNormalization", mask="propagate")
def _local_response_norm(call: Call) -> list[np.ndarray]:
    x = as_float(call.x, call.cfg)
    size = int(call.cfg["size"])
    lo = (size - 1) // 2
    x64 = x.astype(np.float64)
    pads = [(0, 0)] * (x.ndim - 1) + [(lo, size - 1 - lo)]
    squared = np.pad(x64 * x64, pads)
    channels = x.shape[-1]
    total = sum(squared[..., i:i + channels] for i in range(size))
    scale = float(call.cfg.get("bias", 1.0)) + float(call.cfg.get("alpha", 1e-4)) / size * total
    return [(x64 / scale ** float(call.cfg.get("beta", 0.75))).astype(x.dtype)]


@register("Normalization", mask="propagate")
def _normalization(call: Call) -> list[np.ndarray]:
    x = as_float(call.x, call.cfg)
    axis = call.cfg.get("axis", -1)
    keep = [] if axis is None else _axes(axis, x.ndim)
    shape = [x.shape[a] if a in keep else 1 for a in range(x.ndim)]
    if call.cfg.get("mean") is not None:
        mean = _broadcast_stat(call.cfg["mean"], keep, shape)
        var = _broadcast_stat(call.cfg["variance"], keep, shape)
    else:
        mean = call.w["mean"].astype(np.float64).reshape(shape)
        var = call.w["variance"].astype(np.float64).reshape(shape)
    with np.errstate(invalid="ignore"):  # a negative stored variance gives NaN, as in Keras
        std = np.maximum(np.sqrt(var), 1e-7)
    x64 = x.astype(np.float64)
    y = mean + x64 * std if call.cfg.get("invert") else (x64 - mean) / std
    return [y.astype(x.dtype)]


def _broadcast_stat(value, keep: list[int], shape: list[int]) -> np.ndarray:
    """A config mean/variance, its dimensions aligned right to left onto the kept axes."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        return np.broadcast_to(v, shape)
    expanded = [1] * len(shape)
    for i in range(1, v.ndim + 1):
        expanded[keep[-i]] = v.shape[-i]
    return np.broadcast_to(v.reshape(expanded), shape)


@register("RMSNormalization")
def _rms_norm(call: Call) -> list[np.ndarray]:
    """``x * rsqrt(mean(x ** 2 over axis) + epsilon) * scale`` (Keras 3's
    ``ops.rms_normalization``). The scale multiplies with NumPy broadcasting, as in Keras, so its
    dimensions meet the trailing axes; the layer supports no mask (it drops one)."""
    x = as_float(call.x, call.cfg)
    x64 = x.astype(np.float64)
    axes = tuple(_axes(call.cfg.get("axis", -1), x.ndim))
    epsilon = call.cfg.get("epsilon")
    eps = 1e-7 if epsilon is None else float(epsilon)  # None: Keras's backend.epsilon()
    rrms = 1.0 / np.sqrt(np.mean(x64 * x64, axis=axes, keepdims=True) + eps)
    return [(x64 * rrms * call.w["scale"].astype(np.float64)).astype(x.dtype)]
