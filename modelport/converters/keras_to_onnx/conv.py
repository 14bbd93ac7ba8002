"""Convolutions: ConvND, ConvNDTranspose, DepthwiseConvND, SeparableConvND.

ONNX convolutions are channels-first with OI<spatial> kernels; Keras is channels-last with
<spatial>IO kernels. Each lowering transposes in and out (the layout pass cancels the pairs) and
re-lays the kernel once, at conversion time. Keras's "same" padding puts the odd pixel at the end
(TF semantics); pads are explicit unless they depend on an unknown spatial size (SAME_UPPER).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir

from ...errors import UnsupportedError
from .. import padding
from .activations import activation
from .context import LOWERINGS, Builder, Call


def _tuple(value: int | list[int] | tuple[int, ...], n: int) -> list[int]:
    """A per-axis config value (one number for every axis, or one per axis) as ints."""
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(value)] * n


def spatial_rank(call: Call) -> int:
    """How many spatial axes the call's input has."""
    return call.rank - 2


def channels_first(call: Call) -> bool:
    """Whether the layer's data_format is channels_first."""
    return call.config.get("data_format") == "channels_first"


def same_pads(sizes: Sequence[int | None], kernel: list[int], strides: list[int],
              dilations: list[int]) -> list[int] | None:
    """Explicit [begin..., end...] pads for Keras "same", or None if a size they depend on
    is unknown (see ``padding.explicit_same_pads``)."""
    return padding.explicit_same_pads(sizes, kernel, strides, dilations)


def padding_attrs(call: Call, kernel: list[int], strides: list[int], dilations: list[int]
                  ) -> dict:
    """ONNX padding attributes for the layer's Keras padding: 'valid' as zero pads, 'same' as
    explicit pads (SAME_UPPER where a spatial size is unknown), 'causal' as begin pads only."""
    padding = call.config.get("padding", "valid")
    n = len(kernel)
    if padding == "valid":
        return {"pads": [0] * (2 * n)}
    if padding == "same":
        sizes = _spatial_sizes(call)
        pads = same_pads(sizes, kernel, strides, dilations)
        return {"pads": pads} if pads is not None else {"auto_pad": "SAME_UPPER"}
    if padding == "causal":
        return {"pads": [(k - 1) * d for k, d in zip(kernel, dilations)] + [0] * n}
    raise UnsupportedError(f"padding {padding!r}", layer=call.name)


def _spatial_sizes(call: Call) -> list[int | None]:
    shape = call.spec.shape
    return list(shape[2:]) if channels_first(call) else list(shape[1:-1])


def into_nchw(ctx: Builder, call: Call, x: ir.Value | None = None) -> ir.Value:
    """``x`` (default: the call's input) channels-first: transposed unless the layer is
    channels_first already."""
    x = call.x if x is None else x
    return x if channels_first(call) else ctx.to_channels_first(x, call.rank)


def out_of_nchw(ctx: Builder, call: Call, y: ir.Value) -> ir.Value:
    """``y`` from channels-first back to the layer's own layout."""
    return y if channels_first(call) else ctx.to_channels_last(y, call.rank)


def _kernel_oi(kernel: np.ndarray) -> np.ndarray:
    """Keras <spatial>, in, out  ->  ONNX out, in, <spatial>."""
    n = kernel.ndim - 2
    return np.ascontiguousarray(np.transpose(kernel, [n + 1, n] + list(range(n))))


@LOWERINGS.register("Conv1D", "Conv2D", "Conv3D")
def lower_conv(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Conv1D/2D/3D -> ONNX Conv (NCHW inside Transposes the layout pass cancels; kernel
    re-laid as OI<spatial>, groups kept), then the activation; 'same' padding as explicit pads."""
    n = spatial_rank(call)
    kernel = call.weight("kernel")
    ksize = list(kernel.shape[:n])
    strides = _tuple(call.config.get("strides", 1), n)
    dilations = _tuple(call.config.get("dilation_rate", 1), n)
    groups = int(call.config.get("groups", 1))
    inputs = [into_nchw(ctx, call), ctx.weight(call, "kernel", _kernel_oi(kernel))]
    if call.has_weight("bias"):
        inputs.append(ctx.weight(call, "bias"))
    y = ctx.op("Conv", *inputs, kernel_shape=ksize, strides=strides, dilations=dilations,
               group=groups, **padding_attrs(call, ksize, strides, dilations))
    y = out_of_nchw(ctx, call, y)
    return [activation(ctx, y, call.config.get("activation"), layer=call.name)]


def _transpose_pads(call: Call, ksize: list[int], strides: list[int], dilations: list[int]
                    ) -> tuple[list[int], list[int]]:
    """ONNX (pads, output_padding) that give Keras's ConvNDTranspose output exactly.

    Keras (JAX backend) convolves the stride-dilated input padded by (left, right) with the
    flipped kernel; ONNX ConvTranspose is the same conv padded by (K-1-pad_begin,
    K-1-pad_end+output_padding), K the dilated kernel extent. A right pad beyond K-1 (Keras's
    ``output_padding``) becomes ONNX output_padding.
    """
    padding = str(call.config.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise UnsupportedError(f"padding {padding!r}; ConvTranspose supports 'valid' and 'same'",
                               layer=call.name)
    n = len(ksize)
    raw = call.config.get("output_padding")
    extra = [None] * n if raw is None else _tuple(raw, n)
    begin, end, out_pad = [], [], []
    for k, s, d, op in zip(ksize, strides, dilations, extra):
        effective = (k - 1) * d + 1
        if padding == "valid":
            left = effective - 1
            right = effective - 1 + (max(effective, s) - effective if op is None else op)
        else:
            total = s + effective - 2 if op is None else effective + effective % 2 - 2 + op
            left = min(total // 2 + total % 2, effective - 1)
            right = total - left
        begin.append(effective - 1 - left)
        end.append(max(effective - 1 - right, 0))
        out_pad.append(max(right - (effective - 1), 0))
    return begin + end, out_pad


@LOWERINGS.register("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
def lower_conv_transpose(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Conv1D/2D/3DTranspose -> ONNX ConvTranspose (NCHW inside Transposes), then the
    activation; pads and output_padding chosen to give Keras's output exactly
    (``_transpose_pads``)."""
    n = spatial_rank(call)
    kernel = call.weight("kernel")  # <spatial>, out, in: ONNX wants in, out, <spatial>
    ksize = list(kernel.shape[:n])
    strides = _tuple(call.config.get("strides", 1), n)
    dilations = _tuple(call.config.get("dilation_rate", 1), n)
    pads, output_padding = _transpose_pads(call, ksize, strides, dilations)
    inputs = [into_nchw(ctx, call), ctx.weight(call, "kernel", _kernel_oi(kernel))]
    if call.has_weight("bias"):
        inputs.append(ctx.weight(call, "bias"))
    y = ctx.op("ConvTranspose", *inputs, kernel_shape=ksize, strides=strides,
               dilations=dilations, pads=pads,
               output_padding=output_padding if any(output_padding) else None)
    y = out_of_nchw(ctx, call, y)
    return [activation(ctx, y, call.config.get("activation"), layer=call.name)]


def _depthwise_oi(kernel: np.ndarray) -> np.ndarray:
    """Keras <spatial>, in, multiplier  ->  ONNX in*multiplier, 1, <spatial> (group = in).

    Keras orders the output channels input-major (channel c, multiplier m -> c * mult + m),
    which is exactly the row-major merge of the last two kernel axes."""
    n = kernel.ndim - 2
    merged = kernel.reshape(kernel.shape[:n] + (1, kernel.shape[n] * kernel.shape[n + 1]))
    return _kernel_oi(merged)


def _depthwise(ctx: Builder, call: Call, x: ir.Value, kernel: np.ndarray, bias: bool
               ) -> ir.Value:
    """Depthwise conv of the channels-first ``x`` (ONNX Conv with one group per channel)."""
    n = spatial_rank(call)
    ksize = list(kernel.shape[:n])
    strides = _tuple(call.config.get("strides", 1), n)
    dilations = _tuple(call.config.get("dilation_rate", 1), n)
    inputs = [x, ctx.weight(call, "depthwise_kernel", _depthwise_oi(kernel))]
    if bias:
        inputs.append(ctx.weight(call, "bias"))
    return ctx.op("Conv", *inputs, kernel_shape=ksize, strides=strides, dilations=dilations,
                  group=int(kernel.shape[n]), **padding_attrs(call, ksize, strides, dilations))


@LOWERINGS.register("DepthwiseConv1D", "DepthwiseConv2D")
def lower_depthwise_conv(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras DepthwiseConv1D/2D -> ONNX Conv with one group per input channel (kernel re-laid as
    ``(in * multiplier, 1, <spatial>)``), NCHW inside Transposes, then the activation."""
    kernel = call.weight("depthwise_kernel")
    y = _depthwise(ctx, call, into_nchw(ctx, call), kernel, call.has_weight("bias"))
    y = out_of_nchw(ctx, call, y)
    return [activation(ctx, y, call.config.get("activation"), layer=call.name)]


@LOWERINGS.register("SeparableConv1D", "SeparableConv2D")
def lower_separable_conv(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras SeparableConv1D/2D -> ONNX depthwise Conv (no bias), then a 1x1 Conv with the pointwise
    kernel and the bias, NCHW inside Transposes, then the activation."""
    # Keras: depthwise conv (strides, padding, dilation), then a 1x1 conv; the bias comes last.
    n = spatial_rank(call)
    y = _depthwise(ctx, call, into_nchw(ctx, call), call.weight("depthwise_kernel"), bias=False)
    pointwise = call.weight("pointwise_kernel")
    inputs = [y, ctx.weight(call, "pointwise_kernel", _kernel_oi(pointwise))]
    if call.has_weight("bias"):
        inputs.append(ctx.weight(call, "bias"))
    y = ctx.op("Conv", *inputs, kernel_shape=[1] * n)
    y = out_of_nchw(ctx, call, y)
    return [activation(ctx, y, call.config.get("activation"), layer=call.name)]
