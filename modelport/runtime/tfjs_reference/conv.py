"""Convolutions: Conv2D, Conv3D, DepthwiseConv2dNative, Conv2DBackpropInput and the fused forms.

Everything runs channels-last (``NCHW``/``NCDHW`` move the channel axis there and back). A
convolution is an im2col view (``sliding_window_view``, strided and dilated by slicing)
contracted with the filter by ``tensordot``/``einsum``. TF's definitions:

* filter ``(*k, in_channels / groups, out_channels)``; ``in_channels`` a multiple of the
  filter's input depth means grouped convolution; attributes ``strides``/``dilations``/
  ``explicit_paddings`` are per dimension in data_format order;
* depthwise filter ``(*k, C, M)``: output channel ``c*M + m``;
* ``Conv2DBackpropInput(input_sizes, filter, out_backprop)`` is the gradient of ``Conv2D`` with
  respect to its input, of shape ``input_sizes``: ``y[i s - p + k d] += dy[i] W[k]``, ``p`` the
  forward convolution's padding before (SAME computed from ``input_sizes``);
* ``_FusedConv2D``/``FusedDepthwiseConv2dNative`` (TF.js's name for TF's
  ``_FusedDepthwiseConv2dNative``): the convolution, then ``fused_ops`` in order, each taking
  its arguments from the extra inputs: ``BiasAdd`` (bias), ``FusedBatchNorm`` (scale, offset,
  mean, variance; ``epsilon``), ``Add`` (a tensor), ``Prelu`` (alpha), then activations
  (``LeakyRelu`` reads ``leakyrelu_alpha``).
"""

from __future__ import annotations

import numpy as np

from ..windows import windows
from ._base import Op, from_last, padding_amounts, register, spatial, to_last
from .activations import FUSED_ACTIVATIONS, prelu


def _geometry(op: Op, n: int, ksize: tuple, sizes: tuple, cf: bool):
    rank = n + 2
    strides = tuple(spatial(op.ints("strides") or [1] * rank, cf, "strides", op))
    dilations = tuple(spatial(op.ints("dilations") or [1] * rank, cf, "dilations", op))
    if len(strides) != n or len(dilations) != n:
        raise op.invalid(f"strides/dilations do not have {rank} entries")
    k_eff = tuple((k - 1) * d + 1 for k, d in zip(ksize, dilations))
    pads = padding_amounts(op, sizes, k_eff, strides, cf)
    return strides, dilations, pads


def conv(x: np.ndarray, w: np.ndarray, strides: tuple, dilations: tuple,
         pads: list) -> np.ndarray:
    """Channels-last ``x`` with filter ``(*k, C/groups, F)``."""
    n = x.ndim - 2
    win = windows(x, w.shape[:n], strides, dilations, pads)
    win_axes = list(range(n + 1, 2 * n + 2))  # C, *k
    ker_axes = [n] + list(range(n))
    groups = x.shape[-1] // w.shape[n]
    if groups * w.shape[n] != x.shape[-1] or w.shape[-1] % groups:
        raise ValueError(f"input depth {x.shape[-1]} does not fit filter depth {w.shape[n]}")
    if groups == 1:
        return np.tensordot(win, w, axes=(win_axes, ker_axes))
    cg, fg = w.shape[n], w.shape[-1] // groups
    lead = (slice(None),) * (n + 1)
    parts = [np.tensordot(win[lead + (slice(g * cg, (g + 1) * cg),)],
                          w[..., g * fg:(g + 1) * fg], axes=(win_axes, ker_axes))
             for g in range(groups)]
    return np.concatenate(parts, axis=-1)


def depthwise(x: np.ndarray, w: np.ndarray, strides: tuple, dilations: tuple,
              pads: list) -> np.ndarray:
    """Depthwise convolution of channels-last 2-D ``x`` with filter ``(kh, kw, C, M)``:
    output channel ``c*M + m``."""
    win = windows(x, w.shape[:2], strides, dilations, pads)  # N, H, W, C, kh, kw
    # one multiply-add per kernel cell over strided views: an einsum over the window view
    # copies it whole first (kh * kw times the input), most of MobileNet's probe run
    kh, kw, _, m = w.shape
    y = np.zeros((*win.shape[:4], m), dtype=np.result_type(win.dtype, w.dtype))
    for i in range(kh):
        for j in range(kw):
            y += win[..., i, j, None] * w[i, j]
    return y.reshape(*y.shape[:-2], -1)


def _conv_op(op: Op, n: int, kind: str = "conv") -> np.ndarray:
    cf = op.channels_first()
    x = to_last(op.x, cf)
    w = op.arg(1).astype(x.dtype, copy=False)
    if x.ndim != n + 2 or w.ndim != n + 2:
        raise op.invalid(f"input rank {x.ndim} and filter rank {w.ndim}, expected {n + 2}")
    strides, dilations, pads = _geometry(op, n, w.shape[:n], x.shape[1:-1], cf)
    if kind == "depthwise":
        y = depthwise(x, w, strides, dilations, pads)
    else:
        y = conv(x, w, strides, dilations, pads)
    return y.astype(x.dtype, copy=False)


def apply_fused(op: Op, y: np.ndarray, args: list[np.ndarray]) -> np.ndarray:
    """``fused_ops`` on channels-last ``y``, consuming ``args`` in order."""
    args = list(args)

    def take(k: int) -> list[np.ndarray]:
        if len(args) < k:
            raise op.invalid(f"fused_ops {op.strs('fused_ops')} need more arguments than the "
                             f"{op.i('num_args', 0)} given")
        taken, args[:k] = args[:k], []
        return [a.astype(y.dtype, copy=False) for a in taken]

    for fused in op.strs("fused_ops"):
        if fused == "BiasAdd" or fused == "Add":
            y = y + take(1)[0]
        elif fused in ("FusedBatchNorm", "FusedBatchNormV3"):
            scale, offset, mean, var = take(4)
            factor = scale / np.sqrt(var + np.asarray(op.f("epsilon", 1e-4), y.dtype))
            y = (y - mean) * factor + offset
        elif fused == "Prelu":
            y = prelu(y, take(1)[0])
        elif fused in FUSED_ACTIVATIONS:
            y = FUSED_ACTIVATIONS[fused](y, op)
        else:
            raise op.unsupported(f"fused op {fused!r}")
    return y


@register("Conv2D")
def _conv2d(op: Op) -> np.ndarray:
    return from_last(_conv_op(op, 2), op.channels_first())


@register("Conv3D")
def _conv3d(op: Op) -> np.ndarray:
    return from_last(_conv_op(op, 3), op.channels_first())


@register("DepthwiseConv2dNative")
def _depthwise(op: Op) -> np.ndarray:
    return from_last(_conv_op(op, 2, "depthwise"), op.channels_first())


@register("_FusedConv2D")
def _fused_conv2d(op: Op) -> np.ndarray:
    y = apply_fused(op, _conv_op(op, 2), op.inputs[2:])
    return from_last(y, op.channels_first())


@register("FusedDepthwiseConv2dNative", "_FusedDepthwiseConv2dNative")
def _fused_depthwise(op: Op) -> np.ndarray:
    y = apply_fused(op, _conv_op(op, 2, "depthwise"), op.inputs[2:])
    return from_last(y, op.channels_first())


@register("Conv2DBackpropInput")
def _conv2d_backprop_input(op: Op) -> np.ndarray:
    cf = op.channels_first()
    sizes = op.ints_arg(0)
    w = op.arg(1)
    dy = to_last(op.arg(2), cf)
    w = w.astype(dy.dtype, copy=False)
    in_shape = to_last(np.empty(sizes, dtype=np.bool_), cf).shape  # N, H, W, C
    strides, dilations, pads = _geometry(op, 2, w.shape[:2], in_shape[1:-1], cf)
    if w.shape[2] != in_shape[-1]:
        raise op.invalid(f"filter depth {w.shape[2]} for an input of {in_shape[-1]} channels")
    # Dilate dy by the strides, then correlate with the spatially flipped, transposed filter.
    z = np.zeros((dy.shape[0], *[(d - 1) * s + 1 for d, s in zip(dy.shape[1:-1], strides)],
                  dy.shape[-1]), dtype=dy.dtype)
    z[(slice(None),) + tuple(slice(None, None, s) for s in strides)] = dy
    flipped = np.ascontiguousarray(np.swapaxes(w[::-1, ::-1], 2, 3))  # kh, kw, F, C
    full = []
    for i in range(2):
        k_eff = (w.shape[i] - 1) * dilations[i] + 1
        before = k_eff - 1 - pads[i][0]
        after = in_shape[1 + i] + k_eff - 1 - before - z.shape[1 + i]
        full.append((before, after))
    # Negative amounts crop: pad with the positive parts, then slice.
    z = np.pad(z, [(0, 0)] + [(max(b, 0), max(a, 0)) for b, a in full] + [(0, 0)])
    crop = tuple(slice(max(-b, 0), z.shape[1 + i] - max(-a, 0)) for i, (b, a) in enumerate(full))
    z = z[(slice(None),) + crop]
    y = conv(z, flipped, (1, 1), dilations, [(0, 0), (0, 0)])
    if y.shape != in_shape:
        raise op.invalid(f"computes shape {list(y.shape)}, input_sizes says {list(in_shape)}")
    return from_last(y.astype(dy.dtype, copy=False), cf)
