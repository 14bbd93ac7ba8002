"""Core layers: Dense, Embedding, Masking, the identities of inference, and tensor reshaping."""

from __future__ import annotations

import numpy as np

from ..precision import jittering, rounded_sum
from ._base import (
    Call,
    Masked,
    as_float,
    channels_first,
    compute_dtype,
    register,
    reserve,
    unsupported,
)
from .activations import apply_activation


def _refuse_quantized(call: Call) -> None:
    if call.cfg.get("quantization_config") or call.cfg.get("lora_rank"):
        raise unsupported(call, "quantized or LoRA-enabled layers are not implemented")


@register("Dense", mask="propagate")
def _dense(call: Call) -> list[np.ndarray]:
    _refuse_quantized(call)
    x = as_float(call.x, call.cfg)
    kernel = call.w["kernel"].astype(x.dtype, copy=False)  # no copy of a big kernel
    y = np.matmul(x, kernel)
    bias = call.cfg.get("use_bias", True) and call.w.has("bias")
    if bias:
        y = y + call.w["bias"].astype(x.dtype)
    if jittering():  # the noise run: a long sum rounds in units of its terms
        magnitude = np.matmul(np.abs(x), np.abs(kernel))
        y = rounded_sum(y, magnitude + np.abs(call.w["bias"]) if bias else magnitude)
    return [apply_activation(call.cfg, y, call.name)]


@register("Embedding")
def _embedding(call: Call) -> Masked:
    _refuse_quantized(call)
    table = call.w["embeddings"]
    ids = np.asarray(call.x)
    if ids.dtype.kind == "f":
        ids = ids.astype(np.int32)  # Keras casts non-integer ids to int32 (truncation)
    ids = ids.astype(np.int64)
    valid = (ids >= 0) & (ids < table.shape[0])
    out = table[np.where(valid, ids, 0)].astype(compute_dtype(call.cfg))
    if not valid.all():  # out-of-range ids gather NaN (JAX's fill mode) rather than wrapping
        out = np.where(valid[..., None], out, np.nan).astype(out.dtype)
    mask = (np.asarray(call.x) != 0) if call.cfg.get("mask_zero") else None
    return Masked([out], [mask])


@register("Masking")
def _masking(call: Call) -> Masked:
    x = as_float(call.x, call.cfg)
    keep = np.any(x != np.asarray(call.cfg.get("mask_value", 0.0), x.dtype), axis=-1)
    return Masked([np.where(keep[..., None], x, 0).astype(x.dtype)], [keep])


def _passthrough(call: Call) -> list[np.ndarray]:
    x = call.x
    return [as_float(x, call.cfg) if x.dtype.kind == "f" else x]


# Identity at inference: noise and dropout act only in training; regularizers only add losses.
for _name in ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
              "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
              "Identity"):
    register(_name, mask="propagate")(_passthrough)


@register("Lambda")
def _lambda(call: Call) -> list[np.ndarray]:
    raise unsupported(call, "a Lambda layer is Python code; the reference never runs code from "
                            "a model file")


@register("Flatten")
def _flatten(call: Call) -> list[np.ndarray]:
    x = call.x
    if channels_first(call.cfg) and x.ndim > 2:
        x = np.moveaxis(x, 1, -1)
    return [np.reshape(x, (x.shape[0], -1)) if x.ndim > 1 else x.reshape(x.shape[0], 1)]


@register("Reshape")
def _reshape(call: Call) -> list[np.ndarray]:
    if "target_shape" not in call.cfg:
        if "newshape" in call.cfg:  # ops.reshape: the whole shape, batch axis included
            return [np.reshape(call.x, tuple(int(d) for d in call.cfg["newshape"]))]
        raise unsupported(call, "the keras.ops form of Reshape (an operation node) has no "
                                "newshape")
    x = call.x
    return [np.reshape(x, (x.shape[0], *(int(d) for d in call.cfg["target_shape"])))]


@register("Permute")
def _permute(call: Call) -> list[np.ndarray]:
    return [np.transpose(call.x, (0, *(int(d) for d in call.cfg["dims"])))]


@register("RepeatVector")
def _repeat_vector(call: Call) -> list[np.ndarray]:
    n = int(call.cfg["n"])
    reserve(call, (call.x.shape[0], n, *call.x.shape[1:]))
    x = as_float(call.x, call.cfg)
    return [np.repeat(x[:, None, :], n, axis=1)]


@register("Rescaling", mask="propagate")
def _rescaling(call: Call) -> list[np.ndarray]:
    x = as_float(call.x, call.cfg)
    scale = np.asarray(call.cfg.get("scale", 1.0), dtype=x.dtype)
    offset = np.asarray(call.cfg.get("offset", 0.0), dtype=x.dtype)
    return [(x * scale + offset).astype(x.dtype)]
