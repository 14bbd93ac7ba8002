"""Activations: one Keras layer each, or a short exact composition where Keras has none.

Keras 3 and tfjs-layers disagree on ``hard_sigmoid`` (relu6(x + 3) / 6 against 0.2x + 0.5), so
HardSigmoid and HardSwish are built from Rescaling and ReLU(max_value), which both read alike.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ...models import TensorRef
from ..onnx_normalize import optional_input
from .core import Ctx, attr, rule, static

# tfjs-layers has no log_softmax (nor any log): x - logsumexp(x), the sum folded one cell at a
# time with softplus, takes 5 layers a cell; wider axes are refused for tfjs.
MAX_FOLDED_LOG_SOFTMAX = 256

_ACTIVATIONS = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softplus",
                "Softsign": "softsign", "Relu": "relu", "Exp": "exponential"}


@rule(*_ACTIVATIONS)
def activation(ctx: Ctx, node: ir.Node) -> None:
    """Sigmoid, Tanh, Softplus, Softsign, Relu, Exp: an Activation layer."""
    ctx.output(ctx.layer("Activation", {"activation": _ACTIVATIONS[node.op_type]},
                         ctx.ref(ctx.input(node, 0))))


@rule("Selu")
def selu(ctx: Ctx, node: ir.Node) -> None:
    """Selu with ONNX's default constants (Keras's are fixed): Activation('selu')."""
    alpha = float(attr(node, "alpha", 1.67326319217681884765625))
    gamma = float(attr(node, "gamma", 1.05070102214813232421875))
    if not (np.isclose(alpha, 1.6732632423543772, rtol=1e-6) and
            np.isclose(gamma, 1.0507009873554805, rtol=1e-6)):
        raise ctx.refuse(f"Keras's selu has fixed constants; this one has alpha={alpha}, "
                         f"gamma={gamma}")
    ctx.output(ctx.layer("Activation", {"activation": "selu"}, ctx.ref(ctx.input(node, 0))))


# ONNX op -> Keras layer, its one setting, and ONNX's attribute (alpha) default for it.
_ONE_PARAMETER = {"LeakyRelu": ("LeakyReLU", "negative_slope", 0.01),
                  "Elu": ("ELU", "alpha", 1.0),
                  "ThresholdedRelu": ("ThresholdedReLU", "theta", 1.0)}


@rule(*_ONE_PARAMETER)
def one_parameter(ctx: Ctx, node: ir.Node) -> None:
    """LeakyRelu, Elu, ThresholdedRelu: their Keras layer (an ELU with alpha != 1 composed for
    tfjs-layers)."""
    cls, key, default = _ONE_PARAMETER[node.op_type]
    value = float(attr(node, "alpha", default))
    if cls == "ELU" and value != 1.0 and ctx.for_tfjs:
        # tfjs-layers runs ELU with alpha 1 only: relu(x) - alpha * relu(-elu(x)), which is x
        # above 0 and alpha * (exp(x) - 1) below
        x = ctx.ref(ctx.input(node, 0))
        unit = ctx.layer("Activation", {"activation": "elu"}, x, suffix="elu1")
        below = relu(ctx, affine(ctx, unit, -1.0, 0.0, suffix="neg"), suffix="below")
        ctx.output(ctx.layer("Add", {}, [relu(ctx, x, suffix="above"),
                                         affine(ctx, below, -value, 0.0, suffix="alpha")]))
        return
    ctx.output(ctx.layer(cls, {key: value}, ctx.ref(ctx.input(node, 0))))


@rule("PRelu")
def prelu(ctx: Ctx, node: ir.Node) -> None:
    """PRelu with a constant slope: PReLU, shared along the axes the slope broadcasts over."""
    x, slope_v = ctx.input(node, 0), ctx.input(node, 1)
    slope = ctx.const(slope_v)
    if slope is None:
        raise ctx.refuse("its slope is computed at run time")
    shape = ctx.shape(x)
    dims = static(shape[1:])
    if dims is None:
        raise ctx.refuse(f"PReLU needs a static shape, not {shape}")
    rank = len(shape)
    slope = slope.astype(np.float32)
    if slope.ndim > rank - 1 and slope.shape[0] != 1 and slope.ndim == rank:
        raise ctx.refuse("a slope that varies along the batch axis")
    try:
        np.broadcast_shapes(slope.shape, tuple(dims))
    except ValueError:
        raise ctx.refuse(f"slope {list(slope.shape)} does not broadcast to {shape}") from None
    slope = slope.reshape((1,) * (rank - slope.ndim) + slope.shape)[0]  # drop batch
    shared = [i + 1 for i, d in enumerate(slope.shape) if d == 1 and dims[i] != 1]
    full = [1 if (i + 1) in shared else dims[i] for i in range(rank - 1)]
    alpha = np.broadcast_to(slope, full).copy()
    ctx.output(ctx.layer("PReLU", {"shared_axes": shared or None}, ctx.ref(x),
                         weights=[("alpha", alpha)]))


@rule("Softmax")
def softmax(ctx: Ctx, node: ir.Node) -> None:
    """Softmax over any axis but the batch."""
    x = ctx.input(node, 0)
    rank = ctx.rank(x)
    axis = int(attr(node, "axis", -1)) % rank
    if axis == 0:
        raise ctx.refuse("softmax over the batch axis")
    ctx.output(ctx.layer("Softmax", {"axis": axis - rank}, ctx.ref(x)))


@rule("LogSoftmax")
def log_softmax(ctx: Ctx, node: ir.Node) -> None:
    """LogSoftmax over the last axis: Activation('log_softmax'), composed for tfjs-layers."""
    x = ctx.input(node, 0)
    rank = ctx.rank(x)
    if int(attr(node, "axis", -1)) % rank != rank - 1:
        raise ctx.refuse("Keras's log_softmax activation is over the last axis only")
    if ctx.for_tfjs:
        ctx.output(_folded_log_softmax(ctx, x))
    else:
        ctx.output(ctx.layer("Activation", {"activation": "log_softmax"}, ctx.ref(x)))


def _folded_log_softmax(ctx: Ctx, x: ir.Value) -> TensorRef:
    """x - logsumexp(x) with logsumexp(a, b) = a + softplus(b - a), folded over the cells of
    the last axis (tfjs-layers has softplus, no log, and no Subtract: a - b is a + (-1) * b).
    x is viewed as [batch, before, n, 1] so that each cell is one channels-first Cropping2D;
    the sum is repeated along n by a Concatenate, since tfjs-layers' merges do not broadcast."""
    dims = list(ctx.shape(x))
    known, n = static(dims[1:]), dims[-1]
    if known is None or n is None or n > MAX_FOLDED_LOG_SOFTMAX:
        raise ctx.refuse(f"tfjs-layers has no log_softmax; it is composed for a static last "
                         f"axis of at most {MAX_FOLDED_LOG_SOFTMAX} cells, not {dims}")
    before = int(np.prod(known[:-1], dtype=np.int64))
    view = ctx.layer("Reshape", {"target_shape": [before, n, 1]}, ctx.ref(x), suffix="cells")
    first = {"data_format": "channels_first"}
    cells = [ctx.layer("Cropping2D", {"cropping": [[k, n - 1 - k], [0, 0]], **first}, view,
                       suffix=f"cell{k}") for k in range(n)]
    total = cells[0]
    for k, cell in enumerate(cells[1:], start=1):
        gap = ctx.layer("Add", {}, [cell, affine(ctx, total, -1.0, 0.0, suffix=f"neg{k}")],
                        suffix=f"gap{k}")
        more = ctx.layer("Activation", {"activation": "softplus"}, gap, suffix=f"softplus{k}")
        total = ctx.layer("Add", {}, [total, more], suffix=f"lse{k}")
    spread = ctx.layer("Concatenate", {"axis": 2}, [total] * n, suffix="spread") if n > 1 \
        else total
    y = ctx.layer("Add", {}, [view, affine(ctx, spread, -1.0, 0.0, suffix="neg")],
                  suffix="log_softmax")
    return ctx.layer("Reshape", {"target_shape": known}, y, suffix="back")


def affine(ctx: Ctx, x: TensorRef, scale: float, offset: float, suffix: str = "") -> TensorRef:
    """``scale * x + offset`` (Rescaling)."""
    return ctx.layer("Rescaling", {"scale": float(scale), "offset": float(offset)}, x,
                     suffix=suffix)


def relu(ctx: Ctx, x: TensorRef, max_value: float | None = None,
         suffix: str = "") -> TensorRef:
    """``min(max(x, 0), max_value)`` (ReLU)."""
    return ctx.layer("ReLU", {"max_value": max_value, "negative_slope": 0.0,
                              "threshold": 0.0}, x, suffix=suffix)


@rule("HardSigmoid")
def hard_sigmoid(ctx: Ctx, node: ir.Node) -> None:
    """HardSigmoid: clip(alpha * x + beta, 0, 1) as Rescaling and ReLU(max_value=1)."""
    alpha, beta = float(attr(node, "alpha", 0.2)), float(attr(node, "beta", 0.5))
    y = affine(ctx, ctx.ref(ctx.input(node, 0)), alpha, beta, "affine")
    ctx.output(relu(ctx, y, 1.0))


@rule("HardSwish")
def hard_swish(ctx: Ctx, node: ir.Node) -> None:
    """HardSwish: x * hard_sigmoid(x) with alpha 1/6, beta 0.5."""
    x = ctx.ref(ctx.input(node, 0))
    gate = relu(ctx, affine(ctx, x, 1 / 6, 0.5, "affine"), 1.0, "gate")
    ctx.output(ctx.layer("Multiply", {}, [x, gate]))


@rule("Clip")
def clip(ctx: Ctx, node: ir.Node) -> None:
    """Clip with constant bounds: ReLU(max_value), shifted by Rescaling where the lower bound is not
    0."""
    x = ctx.ref(ctx.input(node, 0))
    bounds: list[float | None] = []
    for i in (1, 2):
        v = optional_input(node, i)
        if v is None:
            bounds.append(None)
            continue
        c = ctx.const(v)
        if c is None:
            raise ctx.refuse("its bounds are computed at run time")
        bounds.append(float(np.asarray(c).reshape(-1)[0]))
    lo, hi = bounds
    # an infinite bound is no bound (TF's ClipByValue(x, 0, inf)); kept, it would be written
    # as ReLU(max_value=inf) or shifted by it (NaN), and a config cannot hold Infinity
    lo = None if lo is not None and lo == -np.inf else lo
    hi = None if hi is not None and hi == np.inf else hi
    if any(b is not None and not np.isfinite(b) for b in (lo, hi)):
        raise ctx.refuse(f"its bounds {bounds} clip everything to an infinity or NaN")
    if lo == 0.0:
        ctx.output(relu(ctx, x, hi))
    elif lo is not None and np.isfinite(lo):
        # lo + relu(x - lo) capped at hi - lo: exact up to the rounding of the shift
        shifted = affine(ctx, x, 1.0, -lo, "shift")
        capped = relu(ctx, shifted, None if hi is None else hi - lo, "relu")
        ctx.output(affine(ctx, capped, 1.0, lo, "unshift"))
    elif hi is not None:
        # min(x, hi) = hi - relu(hi - x)
        flipped = relu(ctx, affine(ctx, x, -1.0, hi, "flip"), None, "relu")
        ctx.output(affine(ctx, flipped, -1.0, hi, "unflip"))
    else:
        ctx.output(x)
