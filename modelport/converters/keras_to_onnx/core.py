"""Core layers: Dense, Embedding, Masking, shape-only layers, and inference-time identities."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ...errors import UnsupportedError
from .activations import activation
from .context import LOWERINGS, Builder, Call, Lowered

# Layers that are the identity at inference time (the 2D/3D spatial dropouts are given no mask).
IDENTITY = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
            "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
            "Identity")


@LOWERINGS.register("SpatialDropout2D", "SpatialDropout3D")
@LOWERINGS.register(*(n for n in IDENTITY if n not in ("SpatialDropout2D", "SpatialDropout3D")),
                    mask="propagate")
def lower_identity(ctx: Builder, call: Call) -> list[ir.Value]:
    """Inference-time identities (the dropouts, GaussianNoise, ActivityRegularization, Identity) ->
    the input itself, no op; all but SpatialDropout2D/3D carry the input's Keras mask on."""
    return [call.x]


@LOWERINGS.register("InputLayer")
def lower_input(ctx: Builder, call: Call) -> list[ir.Value]:
    """An InputLayer called like a layer -> its input, unchanged."""
    return [call.x]  # only reached for an InputLayer called like a layer


@LOWERINGS.register("Dense", mask="propagate")
def lower_dense(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Dense -> ONNX MatMul with the kernel (Add the bias), then the activation."""
    y = ctx.op("MatMul", call.x, ctx.weight(call, "kernel"))
    if call.has_weight("bias"):
        y = ctx.op("Add", y, ctx.weight(call, "bias"))
    return [activation(ctx, y, call.config.get("activation"), layer=call.name)]


@LOWERINGS.register("Embedding")
def lower_embedding(ctx: Builder, call: Call) -> Lowered:
    """Keras Embedding -> ONNX Gather of the embeddings' rows (non-integer ids cast to int64); with
    mask_zero, the Keras mask ``ids != 0``."""
    ids = call.x
    if call.spec.dtype not in ("int32", "int64"):
        ids = ctx.cast(ids, "int64")  # Keras casts float ids to int (truncating)
    y = ctx.op("Gather", ctx.weight(call, "embeddings"), ids, axis=0)
    mask = None
    if call.config.get("mask_zero"):
        mask = ctx.op("Not", ctx.op("Equal", ids, ctx.const(np.asarray(0, dtype=_np(call)),
                                                             f"{call.name}/zero")))
    return Lowered([y], [mask])


def _np(call: Call) -> np.dtype:
    return np.dtype("int64") if call.spec.dtype not in ("int32",) else np.dtype("int32")


@LOWERINGS.register("Masking", relowered=True)
def lower_masking(ctx: Builder, call: Call) -> Lowered:
    """Keras Masking -> ``x * mask`` and the Keras mask itself: a step is kept where any feature
    differs from mask_value (ReduceMax over Not(Equal))."""
    value = float(call.config.get("mask_value", 0.0))
    keep = ctx.op("Not", ctx.op("Equal", call.x, ctx.scalar(value, call.spec)))
    # A step is kept when any feature differs from mask_value.
    mask = ctx.cast(ctx.reduce("ReduceMax", ctx.cast(keep, "int32"), [-1], keepdims=False), "bool")
    factor = ctx.cast(ctx.unsqueeze(mask, [-1]), call.spec.dtype)
    return Lowered([ctx.op("Mul", call.x, factor)], [mask])


@LOWERINGS.register("Flatten")
def lower_flatten(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Flatten -> ONNX Reshape to (batch, -1); channels_first data is transposed to
    channels-last first, as Keras does."""
    x = call.x
    if call.config.get("data_format") == "channels_first" and call.rank > 2:
        x = ctx.to_channels_last(x, call.rank)
    return [ctx.reshape(x, [0, -1])]


@LOWERINGS.register("Reshape")
def lower_reshape(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Reshape -> ONNX Reshape to (batch, *target_shape); a zero-sized target dimension is
    refused (0 means 'copy' to ONNX)."""
    target = [int(d) for d in call.config["target_shape"]]
    if 0 in target:
        raise UnsupportedError("Reshape to a zero-sized dimension", layer=call.name)
    return [ctx.reshape(call.x, [0] + target)]


@LOWERINGS.register("Permute")
def lower_permute(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Permute -> ONNX Transpose, the batch axis kept first."""
    return [ctx.transpose(call.x, [0] + [int(d) for d in call.config["dims"]])]


@LOWERINGS.register("RepeatVector")
def lower_repeat_vector(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras RepeatVector -> Unsqueeze to (batch, 1, features), then Tile n times along the new
    axis."""
    n = int(call.config["n"])
    return [ctx.op("Tile", ctx.unsqueeze(call.x, [1]), ctx.ints([1, n, 1], f"{call.name}/repeats"))]


@LOWERINGS.register("Rescaling", mask="propagate")
def lower_rescaling(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Rescaling -> ``x * scale`` (Add the offset where it is not 0); integer inputs are cast
    to float32, and the constants are float32 unless the input is float16 or float64."""
    dtype = np.float32 if call.spec.dtype not in ("float16", "float64") else call.spec.dtype
    floating = call.spec.dtype in ("float32", "float16", "float64")
    x = call.x if floating else ctx.cast(call.x, "float32")
    scale = np.asarray(call.config.get("scale", 1.0), dtype=dtype)
    offset = np.asarray(call.config.get("offset", 0.0), dtype=dtype)
    y = ctx.op("Mul", x, ctx.const(scale, f"{call.name}/scale"))
    if np.any(offset != 0):
        y = ctx.op("Add", y, ctx.const(offset, f"{call.name}/offset"))
    return [y]
