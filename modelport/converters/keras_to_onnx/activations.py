"""Activations: the built-in activation names (used by Dense, Conv, RNN, Activation, ...) and
the activation layers (ReLU, LeakyReLU, PReLU, ELU, Softmax, ThresholdedReLU)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import onnx_ir as ir

from ...errors import UnsupportedError
from ...models.keras_dialect import LEGACY_HARD_SIGMOID
from ...registry import Registry
from .context import LOWERINGS, Builder, Call

Activation = Callable[[Builder, ir.Value], ir.Value]
ACTIVATIONS: Registry = Registry("activation")


def _silu(ctx: Builder, x: ir.Value) -> ir.Value:
    return ctx.op("Mul", x, ctx.op("Sigmoid", x))


def _gelu(ctx: Builder, x: ir.Value) -> ir.Value:
    # Keras's default gelu is exact: 0.5 x (1 + erf(x / sqrt(2))).
    if ctx.opset >= 20:
        return ctx.op("Gelu", x)
    erf = ctx.op("Erf", ctx.op("Mul", x, ctx.scalar(1 / math.sqrt(2))))
    return ctx.op("Mul", ctx.op("Mul", x, ctx.scalar(0.5)), ctx.op("Add", erf, ctx.scalar(1.0)))


def _mish(ctx: Builder, x: ir.Value) -> ir.Value:
    if ctx.opset >= 18:
        return ctx.op("Mish", x)
    return ctx.op("Mul", x, ctx.op("Tanh", ctx.op("Softplus", x)))


def _hard_silu(ctx: Builder, x: ir.Value) -> ir.Value:
    if ctx.opset >= 14:
        return ctx.op("HardSwish", x)
    return ctx.op("Mul", x, ctx.op("HardSigmoid", x, alpha=1 / 6, beta=0.5))


def _relu6(ctx: Builder, x: ir.Value) -> ir.Value:
    return ctx.op("Clip", x, ctx.scalar(0.0), ctx.scalar(6.0))


_SIMPLE = {
    "relu": lambda c, x: c.op("Relu", x),
    "sigmoid": lambda c, x: c.op("Sigmoid", x),
    "tanh": lambda c, x: c.op("Tanh", x),
    "softmax": lambda c, x: c.op("Softmax", x, axis=-1),
    "log_softmax": lambda c, x: c.op("LogSoftmax", x, axis=-1),
    "elu": lambda c, x: c.op("Elu", x, alpha=1.0),
    "selu": lambda c, x: c.op("Selu", x),
    "softplus": lambda c, x: c.op("Softplus", x),
    "softsign": lambda c, x: c.op("Softsign", x),
    "exponential": lambda c, x: c.op("Exp", x),
    "linear": lambda c, x: x,
    # Keras 3: relu6(x + 3) / 6; Keras 2 and TF.js: clip(0.2 x + 0.5, 0, 1).
    "hard_sigmoid": lambda c, x: c.op("HardSigmoid", x, alpha=1 / 6, beta=0.5),
    LEGACY_HARD_SIGMOID: lambda c, x: c.op("HardSigmoid", x, alpha=0.2, beta=0.5),
    "leaky_relu": lambda c, x: c.op("LeakyRelu", x, alpha=0.2),
    "silu": _silu, "swish": _silu, "gelu": _gelu, "mish": _mish, "relu6": _relu6,
    "hard_silu": _hard_silu, "hard_swish": _hard_silu,
}
for _name, _fn in _SIMPLE.items():
    ACTIVATIONS.register(_name)(_fn)


def activation(ctx: Builder, x: ir.Value, name: object, *, layer: str | None = None) -> ir.Value:
    """Apply a Keras activation given as its config value (a name, or None for linear)."""
    if name is None:
        return x
    if not isinstance(name, str):
        raise UnsupportedError(f"activation {name!r} is not a built-in activation name",
                               layer=layer)
    return ACTIVATIONS.require(name, layer=layer)(ctx, x)


@LOWERINGS.register("Activation", mask="propagate")
def lower_activation(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Activation -> the ONNX ops of its named activation (``activation``)."""
    return [activation(ctx, call.x, call.config.get("activation"), layer=call.name)]


@LOWERINGS.register("ReLU", mask="propagate")
def lower_relu(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras ReLU -> ONNX Relu; with a negative_slope or threshold, Where(x > threshold, x, slope *
    (x - threshold)); max_value as a Min."""
    cfg = call.config
    max_value = cfg.get("max_value")
    slope = float(cfg.get("negative_slope") or 0.0)
    threshold = float(cfg.get("threshold") or 0.0)
    x = call.x
    if slope == 0.0 and threshold == 0.0:
        y = ctx.op("Relu", x)
    else:
        # Keras: x * (x > threshold) - slope * relu(threshold - x), which is x above the
        # threshold and slope * (x - threshold) at or below it (0 at x == threshold: strict >)
        below = ctx.op("Mul", ctx.op("Sub", x, ctx.scalar(threshold)), ctx.scalar(slope))
        y = ctx.op("Where", ctx.op("Greater", x, ctx.scalar(threshold)), x, below)
    if max_value is not None:
        y = ctx.op("Min", y, ctx.scalar(float(max_value)))
    return [y]


@LOWERINGS.register("LeakyReLU", mask="propagate")
def lower_leaky_relu(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras LeakyReLU -> ONNX LeakyRelu (alpha: negative_slope, default 0.3)."""
    return [ctx.op("LeakyRelu", call.x, alpha=float(call.config.get("negative_slope", 0.3)))]


@LOWERINGS.register("ELU", mask="propagate")
def lower_elu(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras ELU -> ONNX Elu with the same alpha."""
    return [ctx.op("Elu", call.x, alpha=float(call.config.get("alpha", 1.0)))]


@LOWERINGS.register("ThresholdedReLU", mask="propagate")
def lower_thresholded_relu(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras ThresholdedReLU -> ONNX ThresholdedRelu (alpha: theta)."""
    return [ctx.op("ThresholdedRelu", call.x, alpha=float(call.config.get("theta", 1.0)))]


@LOWERINGS.register("PReLU", mask="propagate")
def lower_prelu(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras PReLU -> ONNX PRelu; the alpha variable (the input's non-batch shape, 1 on shared axes)
    broadcasts as the slope, in float32."""
    alpha = call.weight("alpha")  # shape: the input's non-batch shape, 1 on shared axes
    return [ctx.op("PRelu", call.x, ctx.weight(call, "alpha", alpha.astype(np.float32)))]


@LOWERINGS.register("Softmax", mask="propagate")
def lower_softmax(ctx: Builder, call: Call) -> list[ir.Value]:
    """Keras Softmax -> ONNX Softmax on one axis; over several axes, exp(x - max) / sum reduced
    jointly. A mask input is refused."""
    axis = call.config.get("axis", -1)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    x = call.x
    if len(call.inputs) > 1 or "mask" in call.kwargs:
        raise UnsupportedError("Softmax with a mask input is not supported yet", layer=call.name)
    if len(axes) == 1:
        return [ctx.op("Softmax", x, axis=int(axes[0]))]
    # Softmax over several axes: exp(x - max) / sum, reduced jointly.
    shifted = ctx.op("Sub", x, ctx.reduce("ReduceMax", x, axes, keepdims=True))
    e = ctx.op("Exp", shifted)
    return [ctx.op("Div", e, ctx.reduce("ReduceSum", e, axes, keepdims=True))]
