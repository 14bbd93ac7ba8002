"""Convolutions: Conv1D/2D/3D, their transposes, depthwise and separable convolutions.

Everything runs channels-last internally (``channels_first`` is moved there and back). A
convolution is an im2col: ``sliding_window_view`` over the padded input, strided and dilated by
slicing, contracted with the kernel by ``tensordot`` (BLAS). Keras's definitions:

* kernel ``(*k, in_channels / groups, filters)``; group ``g`` reads input channels
  ``[g*Cg, (g+1)*Cg)`` and writes filters ``[g*Fg, (g+1)*Fg)``;
* ``same`` pads ``max((ceil(n/s) - 1) s + (k - 1) d + 1 - n, 0)`` in total, the smaller half
  before; ``causal`` (1D) pads ``(k - 1) d`` before only;
* depthwise kernel ``(*k, C, M)``; output channel ``c*M + m``; separable = depthwise (strides,
  padding, dilation) then a 1x1 pointwise convolution, then one bias;
* transposed: kernel ``(*k, filters, in_channels)``; the scatter ``y[i s + k d] += x[i] W[k]``
  over the full length ``(n - 1) s + (k - 1) d + 1``, cropped by Keras's padding rule (below).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..precision import jittering, rounded_sum
from ..windows import windows
from ._base import (
    Call,
    as_float,
    from_spatial_last,
    ints,
    register,
    reserve,
    to_spatial_last,
    unsupported,
)
from .activations import apply_activation

# --- the primitives (channels-last) -------------------------------------------------------------

WINDOW_BYTES = 64 << 20  # the im2col copy one convolution holds at once; larger go by batch rows
DEPTHWISE_COPIES = 2  # einsum copies a depthwise convolution's windows twice (measured: 2.0x)


def window_rows(batch: int, per_row: int, itemsize: int) -> int:
    """How many batch rows a convolution computes at once: as many as keep their im2col
    (``per_row`` elements a row, copies included) within WINDOW_BYTES, at least one. Every
    output row depends on its input row alone, so the slices join to the whole batch's result;
    the check's budget (``check.keras_sizes``) sizes the windows by the same rule."""
    return max(1, min(batch, WINDOW_BYTES // max(per_row * itemsize, 1)))


def _by_rows(fn, x: np.ndarray, per_row: int) -> np.ndarray:
    rows = window_rows(x.shape[0], per_row, x.dtype.itemsize)
    if rows >= x.shape[0]:
        return fn(x)
    return np.concatenate([fn(x[i:i + rows]) for i in range(0, x.shape[0], rows)])


def _out_positions(x: np.ndarray, ksize: tuple, strides: tuple, dilation: tuple,
                   padding: str) -> int:
    """Output positions a row of ``x`` gives (the im2col's rows per batch row)."""
    n = x.ndim - 2
    pads = conv_pads(padding, x.shape[1:-1], ksize, strides, dilation)
    return math.prod(max((size + lo + hi - (k - 1) * d - 1) // s + 1, 0) for size, (lo, hi), k, s, d
                     in zip(x.shape[1:n + 1], pads, ksize, strides, dilation))

def same_pads(size: int, k_eff: int, stride: int) -> tuple[int, int]:
    """Keras's SAME padding (before, after) of one axis: the total TF's SAME needs, the odd one
    after."""
    total = max((math.ceil(size / stride) - 1) * stride + k_eff - size, 0)
    return total // 2, total - total // 2


def conv_pads(padding: str, shape: tuple, kernel: tuple, strides: tuple,
              dilation: tuple) -> list[tuple[int, int]]:
    """(before, after) padding per spatial axis for Keras ``padding`` valid, same or causal
    (all before); any other value is a ValueError."""
    padding = str(padding).lower()
    pads = []
    for size, k, s, d in zip(shape, kernel, strides, dilation):
        k_eff = (k - 1) * d + 1
        if padding == "valid":
            pads.append((0, 0))
        elif padding == "same":
            pads.append(same_pads(size, k_eff, s))
        elif padding == "causal":
            pads.append((k_eff - 1, 0))
        else:
            raise ValueError(f"padding {padding!r}")
    return pads


def conv(x: np.ndarray, kernel: np.ndarray, strides: tuple, dilation: tuple, padding: str,
         groups: int = 1) -> np.ndarray:
    """Keras ``ops.conv`` on channels-last ``x`` with kernel ``(*k, C/groups, F)``, by
    slices of the batch whose windows fit WINDOW_BYTES (``window_rows``)."""
    n = x.ndim - 2
    ksize = kernel.shape[:n]
    per_row = _out_positions(x, ksize, strides, dilation, padding) * math.prod(ksize) * x.shape[-1]
    return _by_rows(lambda part: _conv(part, kernel, strides, dilation, padding, groups), x,
                    per_row)


def _conv(x: np.ndarray, kernel: np.ndarray, strides: tuple, dilation: tuple, padding: str,
          groups: int) -> np.ndarray:
    n = x.ndim - 2
    ksize = kernel.shape[:n]
    win = windows(x, ksize, strides, dilation, conv_pads(padding, x.shape[1:-1], ksize, strides,
                                                         dilation))
    win_axes = list(range(n + 1, 2 * n + 2))  # C, *k
    ker_axes = [n] + list(range(n))  # C, *k
    if groups == 1:
        return np.tensordot(win, kernel, axes=(win_axes, ker_axes))
    cg, fg = kernel.shape[n], kernel.shape[-1] // groups
    channel = (slice(None),) * (n + 1)  # win is (N, *out, C, *k): C is axis n + 1
    parts = [np.tensordot(win[channel + (slice(g * cg, (g + 1) * cg),)],
                          kernel[..., g * fg:(g + 1) * fg], axes=(win_axes, ker_axes))
             for g in range(groups)]
    return np.concatenate(parts, axis=-1)


def depthwise(x: np.ndarray, kernel: np.ndarray, strides: tuple, dilation: tuple,
              padding: str) -> np.ndarray:
    """Depthwise convolution, kernel ``(*k, C, M)`` -> channels ``C*M`` (``c*M + m``), by
    slices of the batch as ``conv``."""
    n = x.ndim - 2
    ksize = kernel.shape[:n]
    per_row = _out_positions(x, ksize, strides, dilation, padding) * math.prod(ksize) * \
        x.shape[-1] * DEPTHWISE_COPIES
    return _by_rows(lambda part: _depthwise(part, kernel, strides, dilation, padding), x,
                    per_row)


def _depthwise(x: np.ndarray, kernel: np.ndarray, strides: tuple, dilation: tuple,
               padding: str) -> np.ndarray:
    n = x.ndim - 2
    ksize = kernel.shape[:n]
    win = windows(x, ksize, strides, dilation, conv_pads(padding, x.shape[1:-1], ksize, strides,
                                                         dilation))
    sp, kl = "abc"[:n], "xyz"[:n]
    y = np.einsum(f"n{sp}c{kl},{kl}cm->n{sp}cm", win, kernel, optimize=True)
    return y.reshape(*y.shape[:-2], -1)


def transpose_pads(size_k_eff: int, stride: int, padding: str,
                   output_padding: int | None) -> tuple[int, int]:
    """Keras's (left, right) padding of the stride-dilated input for a transposed conv."""
    k = size_k_eff
    if padding == "valid":
        extra = max(k, stride) - k if output_padding is None else output_padding
        return k - 1, k - 1 + extra
    total = stride + k - 2 if output_padding is None else k + k % 2 - 2 + output_padding
    left = min(total // 2 + total % 2, k - 1)
    return left, total - left


def conv_transpose(x: np.ndarray, kernel: np.ndarray, strides: tuple, dilation: tuple,
                   padding: str, output_padding: tuple | None) -> np.ndarray:
    """Transposed convolution, channels-last ``x``, kernel ``(*k, F, C)``."""
    n = x.ndim - 2
    ksize = kernel.shape[:n]
    sizes = x.shape[1:-1]
    offsets, lengths = [], []
    for i in range(n):
        k_eff = (ksize[i] - 1) * dilation[i] + 1
        op = None if output_padding is None else output_padding[i]
        left, right = transpose_pads(k_eff, strides[i], padding, op)
        offsets.append(k_eff - 1 - left)
        lengths.append((sizes[i] - 1) * strides[i] + 1 + left + right - k_eff + 1)
    # Every tap's contribution at once: (N, *in, *k, F).
    contrib = np.tensordot(x, kernel, axes=([n + 1], [n + 1]))
    y = np.zeros((x.shape[0], *lengths, kernel.shape[n]), dtype=np.result_type(x, kernel))
    for tap in np.ndindex(*ksize):
        src, dst = [slice(None)], [slice(None)]
        for i, k in enumerate(tap):
            shift = k * dilation[i] - offsets[i]  # output position of input 0
            lo = max(0, (-shift + strides[i] - 1) // strides[i])  # first i with i s + shift >= 0
            hi = min(sizes[i] - 1, (lengths[i] - 1 - shift) // strides[i])
            if hi < lo:
                break
            src.append(slice(lo, hi + 1))
            dst.append(slice(lo * strides[i] + shift, hi * strides[i] + shift + 1, strides[i]))
        else:
            y[tuple(dst)] += contrib[tuple(src) + tap]
    return y


# --- layers -------------------------------------------------------------------------------------

def _geometry(call: Call, n: int) -> tuple[tuple, tuple, str]:
    cfg = call.cfg
    padding = str(cfg.get("padding", "valid")).lower()
    if padding == "causal" and n != 1:
        raise unsupported(call, "padding='causal' exists only for 1D convolutions")
    return ints(cfg.get("strides", 1), n, "strides"), ints(cfg.get("dilation_rate", 1), n,
                                                           "dilation_rate"), padding


def _finish(call: Call, y: np.ndarray, magnitude: Callable[[], np.ndarray] | None = None
            ) -> list[np.ndarray]:
    """Bias and activation; ``magnitude`` (the noise run only) computes the sum of the terms'
    magnitudes of each output (the same convolution of ``|x|`` by ``|kernel|``), by which a
    float32 engine's rounding of the long sum is sized (``precision.rounded_sum``)."""
    bias = call.cfg.get("use_bias", True) and call.w.has("bias")
    if bias:
        y = y + call.w["bias"].astype(y.dtype)
    if magnitude is not None and jittering():
        size = magnitude()
        y = rounded_sum(y, size + np.abs(call.w["bias"]).astype(y.dtype) if bias else size)
    y = apply_activation(call.cfg, y, call.name)
    return [from_spatial_last(y, call.cfg)]


def _refuse_lora(call: Call) -> None:
    if call.cfg.get("lora_rank") or call.cfg.get("quantization_config"):
        raise unsupported(call, "quantized or LoRA-enabled layers are not implemented")


def _conv_layer(n: int):
    def fn(call: Call) -> list[np.ndarray]:
        _refuse_lora(call)
        x = to_spatial_last(as_float(call.x, call.cfg), call.cfg)
        strides, dilation, padding = _geometry(call, n)
        kernel = call.w["kernel"].astype(x.dtype)
        groups = int(call.cfg.get("groups", 1) or 1)
        y = conv(x, kernel, strides, dilation, padding, groups)
        return _finish(call, y, lambda: conv(np.abs(x), np.abs(kernel), strides, dilation,
                                             padding, groups))
    return fn


def _transpose_layer(n: int):
    def fn(call: Call) -> list[np.ndarray]:
        x = to_spatial_last(as_float(call.x, call.cfg), call.cfg)
        strides, dilation, padding = _geometry(call, n)
        op = call.cfg.get("output_padding")
        op = None if op is None else ints(op, n, "output_padding")
        size = call.w["kernel"].shape
        # the output grows with the strides: sized before it is computed
        reserve(call, [x.shape[0], *[(d + 1) * s + (k - 1) * r for d, s, k, r in
                                     zip(x.shape[1:-1], strides, size[:n], dilation)],
                       size[n]])
        kernel = call.w["kernel"].astype(x.dtype)
        y = conv_transpose(x, kernel, strides, dilation, padding, op)
        return _finish(call, y, lambda: conv_transpose(np.abs(x), np.abs(kernel), strides,
                                                       dilation, padding, op))
    return fn


def _depthwise_layer(n: int):
    def fn(call: Call) -> list[np.ndarray]:
        x = to_spatial_last(as_float(call.x, call.cfg), call.cfg)
        strides, dilation, padding = _geometry(call, n)
        kernel = call.w["depthwise_kernel"].astype(x.dtype)
        y = depthwise(x, kernel, strides, dilation, padding)
        return _finish(call, y, lambda: depthwise(np.abs(x), np.abs(kernel), strides, dilation,
                                                  padding))
    return fn


def _separable_layer(n: int):
    def fn(call: Call) -> list[np.ndarray]:
        x = to_spatial_last(as_float(call.x, call.cfg), call.cfg)
        strides, dilation, padding = _geometry(call, n)
        kernel = call.w["depthwise_kernel"].astype(x.dtype)
        y = depthwise(x, kernel, strides, dilation, padding)
        pointwise = call.w["pointwise_kernel"].astype(x.dtype)  # (1, ..., C*M, F)
        matrix = pointwise.reshape(pointwise.shape[-2:])
        y = np.tensordot(y, matrix, axes=([-1], [0]))
        return _finish(call, y, lambda: np.tensordot(
            depthwise(np.abs(x), np.abs(kernel), strides, dilation, padding), np.abs(matrix),
            axes=([-1], [0])))
    return fn


for _n in (1, 2, 3):
    register(f"Conv{_n}D")(_conv_layer(_n))
    register(f"Conv{_n}DTranspose")(_transpose_layer(_n))
for _n in (1, 2):
    register(f"DepthwiseConv{_n}D")(_depthwise_layer(_n))
    register(f"SeparableConv{_n}D")(_separable_layer(_n))
