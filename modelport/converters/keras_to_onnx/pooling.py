"""Pooling: MaxPoolingND, AveragePoolingND, GlobalMaxPoolingND, GlobalAveragePoolingND.

Windowed pooling uses ONNX's channels-first MaxPool/AveragePool wrapped in Transposes (the layout
pass cancels them against neighbouring convolutions). Global pooling is a reduction over the
spatial axes in the Keras layout itself: no Transposes at all, and the layout pass pushes a
preceding Transpose through the reduction.
"""

from __future__ import annotations

import onnx_ir as ir

from ...errors import UnsupportedError
from .context import LOWERINGS, Builder, Call
from .conv import (
    _tuple,
    channels_first,
    into_nchw,
    out_of_nchw,
    padding_attrs,
    spatial_rank,
)

_WINDOWED = {f"{kind}Pooling{n}D": kind for kind in ("Max", "Average") for n in (1, 2, 3)}


@LOWERINGS.register(*_WINDOWED)
def lower_pooling(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Max/AveragePooling1D/2D/3D -> ONNX MaxPool/AveragePool (NCHW inside Transposes);
    strides default to the pool size, 'same' as explicit pads, and the average counts only real (not
    padded) elements."""
    n = spatial_rank(call)
    pool = _tuple(call.config.get("pool_size", 2), n)
    strides = call.config.get("strides")
    strides = pool if strides is None else _tuple(strides, n)  # Keras: strides default to pool
    if str(call.config.get("padding", "valid")).lower() not in ("valid", "same"):
        raise UnsupportedError(f"padding {call.config.get('padding')!r}; pooling supports "
                               "'valid' and 'same'", layer=call.name)
    attrs = padding_attrs(call, pool, strides, [1] * n)
    x = into_nchw(ctx, call)
    if _WINDOWED[call.layer.class_name] == "Max":
        # MaxPool ignores padded positions, like Keras's -inf padding.
        y = ctx.op("MaxPool", x, kernel_shape=pool, strides=strides, **attrs)
    else:
        # Keras's "same" average divides by the number of real (not padded) elements.
        y = ctx.op("AveragePool", x, kernel_shape=pool, strides=strides, count_include_pad=0,
                   **attrs)
    return [out_of_nchw(ctx, call, y)]


def _spatial_axes(call: Call) -> list[int]:
    return list(range(2, call.rank)) if channels_first(call) else list(range(1, call.rank - 1))


@LOWERINGS.register("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D")
def lower_global_max(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras GlobalMaxPooling1D/2D/3D -> ONNX ReduceMax over the spatial axes, in the Keras
    layout."""
    keep = bool(call.config.get("keepdims", False))
    return [ctx.reduce("ReduceMax", call.x, _spatial_axes(call), keepdims=keep)]


@LOWERINGS.register("GlobalAveragePooling1D", "GlobalAveragePooling2D",
                    "GlobalAveragePooling3D")
def lower_global_average(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras GlobalAveragePooling1D/2D/3D -> ONNX ReduceMean over the spatial axes; a rank-3 input
    with a Keras mask averages only the unmasked steps (ReduceSum of Where over the mask's
    count)."""
    keep = bool(call.config.get("keepdims", False))
    axes = _spatial_axes(call)
    # Keras 3 files pass the mask explicitly (`mask=` of the call, e.g. from a NotEqual op
    # layer); otherwise it is the one the input carries (Embedding(mask_zero), Masking).
    mask = call.kwargs.get("mask")
    if not isinstance(mask, ir.Value):
        mask = call.masks[0] if call.masks else None
    if mask is None or call.rank != 3:
        return [ctx.reduce("ReduceMean", call.x, axes, keepdims=keep)]
    # Keras averages only the unmasked steps: sum(where(mask, x, 0)) / count(mask); a fully
    # masked sample gives 0/0 = NaN there too.
    mask = ctx.unsqueeze(mask, [1 if channels_first(call) else 2])
    zero = ctx.scalar(0.0, call.spec)
    total = ctx.reduce("ReduceSum", ctx.op("Where", mask, call.x, zero), axes, keepdims=keep)
    count = ctx.reduce("ReduceSum", ctx.cast(mask, call.spec.dtype), axes, keepdims=keep)
    return [ctx.op("Div", total, count)]
