"""Normalization layers: BatchNormalization (folded into a per-channel scale and shift),
LayerNormalization, GroupNormalization, UnitNormalization, Normalization, and modelport's
LocalResponseNormalization (ONNX's LRN, raised from ONNX, lowered back to it)."""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from ...errors import UnsupportedError
from .context import LOWERINGS, Builder, Call, static_dims


def _channel_shape(call: Call, axes: list[int]) -> list[int]:
    """Broadcast shape of per-axis parameters against the input (batch axis included)."""
    shape = [1] * call.rank
    for a in axes:
        shape[a] = call.dim(a)
    return shape


@LOWERINGS.register("BatchNormalization", mask="propagate")
def lower_batch_norm(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras BatchNormalization (inference) -> ``x * scale + shift``, both folded from the moving
    statistics, gamma and beta in float64 at conversion."""
    # Inference: y = (x - mean) / sqrt(var + eps) * gamma + beta = x * scale + shift.
    cfg = call.config
    axis = cfg.get("axis", -1)
    axes = [a % call.rank for a in (axis if isinstance(axis, (list, tuple)) else [axis])]
    mean = call.weight("moving_mean").astype(np.float64)
    var = call.weight("moving_variance").astype(np.float64)
    gamma = call.weight("gamma").astype(np.float64) if call.has_weight("gamma") else 1.0
    beta = call.weight("beta").astype(np.float64) if call.has_weight("beta") else 0.0
    inv = 1.0 / np.sqrt(var + float(cfg.get("epsilon", 1e-3)))
    scale = (gamma * inv).astype(np.float32)
    shift = (beta - mean * gamma * inv).astype(np.float32)
    shape = _channel_shape(call, axes)
    y = ctx.op("Mul", call.x, ctx.const(scale.reshape(shape), f"{call.name}/scale"))
    return [ctx.op("Add", y, ctx.const(shift.reshape(shape), f"{call.name}/shift"))]


def _axes(call: Call, default: object = -1) -> list[int]:
    axis = call.config.get("axis", default)
    if axis is None:
        return []
    return [int(a) for a in (axis if isinstance(axis, (list, tuple)) else [axis])]


def _param(call: Call, path: str, shape: list[int]) -> np.ndarray:
    """A gamma/beta as Keras broadcasts it: reshaped (row-major) to ``shape``."""
    return call.weight(path).astype(np.float32).reshape(shape)


def _standardize(ctx: Builder, call: Call, x: ir.Value, axes: list[int], eps: float
                 ) -> tuple[ir.Value, ir.Value]:
    """(x - mean, rsqrt(var + eps)) over ``axes``, the biased variance like jnp.var."""
    centred = ctx.op("Sub", x, ctx.reduce("ReduceMean", x, axes, keepdims=True))
    var = ctx.reduce("ReduceMean", ctx.op("Mul", centred, centred), axes, keepdims=True)
    inv = ctx.op("Reciprocal", ctx.op("Sqrt", ctx.op("Add", var, ctx.scalar(eps, call.spec))))
    return centred, inv


@LOWERINGS.register("LayerNormalization", mask="propagate")
def lower_layer_norm(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras LayerNormalization -> ONNX LayerNormalization (opset 17+, trailing axes, no
    rms_scaling), else decomposed: ReduceMean, Sqrt, Reciprocal, and gamma/beta as Mul/Add."""
    cfg = call.config
    rank = call.rank
    # Keras sorts the axes as given (negative ones first) to lay out gamma/beta.
    given = sorted(_axes(call))
    axes = sorted(a % rank for a in given)
    eps = float(cfg.get("epsilon", 1e-3))
    rms = bool(cfg.get("rms_scaling", False))
    shape = [1] * rank
    for a in given:
        shape[a] = call.dim(a)
    gamma = _param(call, "gamma", shape) if (cfg.get("scale", True) or rms) else None
    beta = _param(call, "beta", shape) if (cfg.get("center", True) and not rms) else None
    trailing = axes == list(range(axes[0], rank))
    if ctx.opset >= 17 and not rms and trailing:
        # ONNX LayerNormalization normalizes the trailing axes from `axis` on, exactly this.
        norm_shape = [call.dim(a) for a in range(axes[0], rank)]
        scale = gamma if gamma is not None else np.ones(norm_shape, np.float32)
        inputs = [call.x, ctx.const(np.reshape(scale, norm_shape), f"{call.name}/gamma")]
        if beta is not None:
            inputs.append(ctx.const(np.reshape(beta, norm_shape), f"{call.name}/beta"))
        return [ctx.op("LayerNormalization", *inputs, axis=axes[0], epsilon=eps)]
    # Decomposed: (x - mean) * rsqrt(var + eps) * gamma + beta; Keras's deprecated rms_scaling
    # scales x itself by the (centred) variance: x * rsqrt(var + eps) * gamma.
    centred, inv = _standardize(ctx, call, call.x, axes, eps)
    y = ctx.op("Mul", call.x if rms else centred, inv)
    if gamma is not None:
        y = ctx.op("Mul", y, ctx.const(gamma, f"{call.name}/gamma"))
    if beta is not None:
        y = ctx.op("Add", y, ctx.const(beta, f"{call.name}/beta"))
    return [y]


@LOWERINGS.register("GroupNormalization")
def lower_group_norm(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras GroupNormalization -> ONNX GroupNormalization (opset 18+, rank 3+, channels on axis 1
    or last), else a Reshape to (batch, before, groups, rest) with statistics over axes 1 and 3,
    then per-channel gamma/beta."""
    cfg = call.config
    rank = call.rank
    axis = int(cfg.get("axis", -1)) % rank
    channels = call.dim(axis)
    groups = int(cfg.get("groups", 32))
    groups = channels if groups == -1 else groups
    if channels % groups:
        raise UnsupportedError(f"{channels} channels do not split into {groups} groups",
                               layer=call.name)
    if ctx.opset >= 18 and rank >= 3 and axis in (1, rank - 1):
        return [_group_norm_op(ctx, call, axis, groups)]
    # Statistics per (sample, group) over everything else: view the input as
    # (batch, before, groups, rest) where `before` is the axes between batch and channels and
    # `rest` is channels/groups times the axes after them. Only one of the two may be unknown.
    before, after = static_dims(call.spec.shape[1:axis]), static_dims(call.spec.shape[axis + 1:])
    rest = channels // groups * math.prod(after) if after is not None else -1
    if before is not None:
        view = [0, math.prod(before), groups, rest]
    elif rest != -1:
        view = [0, -1, groups, rest]
    else:
        raise UnsupportedError("more than one unknown dimension around the channels axis",
                               layer=call.name)
    grouped = ctx.reshape(call.x, view)
    centred, inv = _standardize(ctx, call, grouped, [1, 3], float(cfg.get("epsilon", 1e-3)))
    y = ctx.op("Reshape", ctx.op("Mul", centred, inv), ctx.op("Shape", call.x))
    shape = _channel_shape(call, [axis])
    if cfg.get("scale", True):
        y = ctx.op("Mul", y, ctx.const(call.weight("gamma").reshape(shape), f"{call.name}/gamma"))
    if cfg.get("center", True):
        y = ctx.op("Add", y, ctx.const(call.weight("beta").reshape(shape), f"{call.name}/beta"))
    return [y]


def _group_norm_op(ctx: Builder, call: Call, axis: int, groups: int) -> ir.Value:
    """ONNX GroupNormalization (channels-first, so wrapped in Transposes for channels-last).

    Opset 18's scale/bias are per group, so it normalizes with ones/zeros and gamma/beta follow
    as a broadcast Mul/Add in the Keras layout (the layout pass moves Transposes through them);
    opset 21 takes them per channel."""
    cfg, rank = call.config, call.rank
    channels = call.dim(axis)
    last = axis == rank - 1 and axis != 1
    x = ctx.to_channels_first(call.x, rank) if last else call.x
    gamma = call.weight("gamma").astype(np.float32) if cfg.get("scale", True) else None
    beta = call.weight("beta").astype(np.float32) if cfg.get("center", True) else None
    eps = float(cfg.get("epsilon", 1e-3))
    if ctx.opset >= 21:
        scale = gamma if gamma is not None else np.ones(channels, np.float32)
        bias = beta if beta is not None else np.zeros(channels, np.float32)
        gamma = beta = None
    else:
        scale, bias = np.ones(groups, np.float32), np.zeros(groups, np.float32)
    y = ctx.op("GroupNormalization", x, ctx.const(scale, f"{call.name}/scale"),
               ctx.const(bias, f"{call.name}/bias"), num_groups=groups, epsilon=eps)
    y = ctx.to_channels_last(y, rank) if last else y
    shape = _channel_shape(call, [axis])
    if gamma is not None:
        y = ctx.op("Mul", y, ctx.const(gamma.reshape(shape), f"{call.name}/gamma"))
    if beta is not None:
        y = ctx.op("Add", y, ctx.const(beta.reshape(shape), f"{call.name}/beta"))
    return y


@LOWERINGS.register("UnitNormalization", mask="propagate")
def lower_unit_norm(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras UnitNormalization -> ``x / max(ReduceL2(x), 1e-12)`` over its axes."""
    # Keras: x * min(rsqrt(sum(x^2)), 1 / 1e-12) = x / max(||x||, 1e-12).
    norm = ctx.reduce("ReduceL2", call.x, _axes(call), keepdims=True)
    return [ctx.op("Div", call.x, ctx.op("Max", norm, ctx.scalar(1e-12, call.spec)))]


@LOWERINGS.register("modelport>LocalResponseNormalization", mask="propagate")
def lower_local_response_norm(ctx: Builder, call: Call) -> list[ir.Value]:
    """modelport's LocalResponseNormalization -> ONNX LRN, which sums over axis 1, so between
    Transposes to channels-first and back; a rank below 3 is refused."""
    # The layer is ONNX's LRN over the last axis; ONNX's sums over axis 1, so it runs between
    # Transposes that the layout pass cancels against its neighbours' (channels-last in and out).
    if call.rank < 3:
        raise UnsupportedError(f"LocalResponseNormalization of a rank-{call.rank} tensor: ONNX's "
                               "LRN needs a batch, a channel and at least one spatial axis",
                               layer=call.name)
    cfg = call.config
    y = ctx.op("LRN", ctx.to_channels_first(call.x, call.rank), size=int(cfg["size"]),
               alpha=float(cfg.get("alpha", 1e-4)), beta=float(cfg.get("beta", 0.75)),
               bias=float(cfg.get("bias", 1.0)))
    return [ctx.to_channels_last(y, call.rank)]


@LOWERINGS.register("Normalization")
def lower_normalization(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Normalization -> ``(x - mean) / std``, or ``x * std + mean`` with invert; mean and std
    (max(sqrt(variance), 1e-7)) are float32 constants from the layer's variables or its config."""
    # Keras: (x - mean) / max(sqrt(variance), epsilon), or mean + x * max(...) with invert;
    # epsilon is the backend's, 1e-7. mean/variance come from adapt() (layer variables, in the
    # kept axes' shape) or from the config (a scalar, or aligned right to the kept axes).
    cfg = call.config
    rank = call.rank
    keep = sorted(a % rank for a in _axes(call))
    broadcast = [call.dim(d) if d in keep else 1 for d in range(rank)]
    if cfg.get("mean") is not None:
        mean, var = (np.asarray(cfg[k], np.float64) for k in ("mean", "variance"))
        expanded = [1] * rank
        for i in range(1, mean.ndim + 1):
            expanded[keep[-i]] = mean.shape[-i]
        mean = np.broadcast_to(mean.reshape(expanded), broadcast)
        var = np.broadcast_to(var.reshape(expanded), broadcast)
    else:
        mean = call.weight("mean").astype(np.float64).reshape(broadcast)
        var = call.weight("variance").astype(np.float64).reshape(broadcast)
    # Keras casts mean/variance to float32 first, then takes sqrt and the maximum.
    std = np.maximum(np.sqrt(var.astype(np.float32)), np.float32(1e-7))
    mean = mean.astype(np.float32)
    x = call.x if call.spec.dtype == "float32" else ctx.cast(call.x, "float32")
    if cfg.get("invert"):
        y = ctx.op("Mul", x, ctx.const(std, f"{call.name}/std"))
        return [ctx.op("Add", y, ctx.const(mean, f"{call.name}/mean"))]
    y = ctx.op("Sub", x, ctx.const(mean, f"{call.name}/mean"))
    return [ctx.op("Div", y, ctx.const(std, f"{call.name}/std"))]


@LOWERINGS.register("RMSNormalization", relowered=True)
def lower_rms_norm(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras RMSNormalization -> ``x / sqrt(mean(x^2) + epsilon) * scale`` over its axes, in at
    least float32 (cast back to the input's dtype)."""
    # Keras 3's ops.rms_normalization: x * rsqrt(mean(x^2 over axis) + epsilon) * scale, in at
    # least float32; the scale multiplies with NumPy broadcasting (trailing axes), as here.
    dtype = call.spec.dtype
    x = call.x if dtype in ("float32", "float64") else ctx.cast(call.x, "float32")
    work = np.dtype(dtype if dtype in ("float32", "float64") else "float32")
    epsilon = call.config.get("epsilon")
    eps = 1e-7 if epsilon is None else float(epsilon)  # None: Keras's backend.epsilon()
    mean = ctx.reduce("ReduceMean", ctx.op("Mul", x, x), _axes(call), keepdims=True)
    rms = ctx.op("Sqrt", ctx.op("Add", mean, ctx.const(np.asarray(eps, work),
                                                       f"{call.name}/epsilon")))
    y = ctx.op("Div", x, rms)
    y = ctx.op("Mul", y, ctx.const(call.weight("scale").astype(work), f"{call.name}/scale"))
    return [y if work == np.dtype(dtype) else ctx.cast(y, dtype)]
