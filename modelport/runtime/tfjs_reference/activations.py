"""Activations, softmax, and the activation step of TF's fused ops.

TF's definitions (CPU kernels, Eigen functors):

* ``Relu6`` ``min(max(x, 0), 6)``; ``Elu`` ``x > 0 ? x : exp(x) - 1``; ``Selu`` the same scaled
  (``alpha`` 1.6732632…, ``scale`` 1.0507009…); ``LeakyRelu`` ``x > 0 ? x : alpha x`` (attr
  ``alpha``, default 0.2; a select, so ``alpha > 1`` is not a max); ``Softsign`` ``x / (1 + |x|)``.
* ``Softplus`` is piecewise with threshold ``t = log(eps_f32) + 2``: ``x`` where ``x > -t``,
  ``exp(x)`` where ``x < t``, ``log1p(exp(x))`` between.
* ``Prelu`` (a TF.js op made by its converter): ``x > 0 ? x : alpha x``, ``alpha`` broadcast.
* ``Softmax``/``LogSoftmax`` over the last axis.
"""

from __future__ import annotations

import math

import numpy as np

from ..precision import rounded_absolute
from ._base import Op, register

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def erf(x: np.ndarray) -> np.ndarray:
    """The error function in float64 (absolute error ~1e-15): a power series below 3,
    Laplace's continued fraction for erfc above."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    out = np.empty_like(a)
    near = a < 3.0
    s = a[near]
    s2 = s * s
    term, total = s.copy(), s.copy()  # sum_n (-1)^n s^(2n+1) / (n! (2n+1))
    power = s.copy()
    for n in range(1, 80):
        power = -power * s2 / n
        term = power / (2 * n + 1)
        total += term
    out[near] = total * (2.0 / math.sqrt(math.pi))
    far = a[~near]
    frac = far.copy()
    for k in range(80, 0, -1):
        frac = far + (k / 2.0) / frac
    out[~near] = 1.0 - np.exp(-far * far) / math.sqrt(math.pi) / frac
    return np.copysign(out, x)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """TF's Sigmoid, without overflow for large |x|, in ``x``'s dtype."""
    z = np.exp(-np.abs(x))
    y = np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(x.dtype, copy=False)
    return rounded_absolute(y)  # (the noise run: other engines' sigmoid rounds absolutely)


def elu(x: np.ndarray) -> np.ndarray:
    """TF's Elu: x where x > 0, else exp(x) - 1."""
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)


def leaky_relu(x: np.ndarray, alpha: float) -> np.ndarray:
    """TF's LeakyRelu: x where x > 0, else alpha * x (a select, so alpha > 1 is not a max)."""
    return np.where(x > 0, x, x * np.asarray(alpha, x.dtype))


def prelu(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """TF.js's Prelu: x where x > 0, else alpha * x, ``alpha`` broadcast."""
    return np.where(x > 0, x, x * alpha.astype(x.dtype, copy=False))


def relu6(x: np.ndarray) -> np.ndarray:
    """TF's Relu6: min(max(x, 0), 6)."""
    return np.minimum(np.maximum(x, 0), 6).astype(x.dtype, copy=False)


def softplus(x: np.ndarray) -> np.ndarray:
    """TF's Softplus, piecewise as its kernel: x above -t, exp(x) below t, log1p(exp(x))
    between (t = log(eps) + 2 for ``x``'s dtype)."""
    threshold = math.log(float(np.finfo(x.dtype).eps)) + 2.0
    mid = np.log1p(np.exp(np.clip(x, threshold, -threshold)))
    return np.where(x > -threshold, x, np.where(x < threshold, np.exp(x), mid)).astype(x.dtype)


# The activation a fused op (_FusedConv2D, FusedDepthwiseConv2dNative, _FusedMatMul) applies
# after its BiasAdd/FusedBatchNorm: name -> fn(y, op, extra args) (Prelu takes an arg).
FUSED_ACTIVATIONS = {
    "Relu": lambda y, op: np.maximum(y, 0).astype(y.dtype, copy=False),
    "Relu6": lambda y, op: relu6(y),
    "Elu": lambda y, op: elu(y),
    "LeakyRelu": lambda y, op: leaky_relu(y, op.f("leakyrelu_alpha", 0.2)),
    "Sigmoid": lambda y, op: sigmoid(y),
    "Tanh": lambda y, op: np.tanh(y),
    # grappler's oneDNN remapper fuses Keras's hard_swish, x * relu6(x + 3) / 6, into convs
    "_FusedHardSwish": lambda y, op: (y * (relu6(y + 3) / 6)).astype(y.dtype, copy=False),
}


@register("Relu")
def _relu(op: Op) -> np.ndarray:
    return np.maximum(op.x, 0).astype(op.x.dtype, copy=False)


@register("Relu6")
def _relu6(op: Op) -> np.ndarray:
    return relu6(op.x)


@register("Elu")
def _elu(op: Op) -> np.ndarray:
    return elu(op.x)


@register("Selu")
def _selu(op: Op) -> np.ndarray:
    x = op.x
    neg = SELU_SCALE * SELU_ALPHA * np.expm1(np.minimum(x, 0).astype(np.float64))
    return np.where(x > 0, SELU_SCALE * x.astype(np.float64), neg).astype(x.dtype)


@register("Softplus")
def _softplus(op: Op) -> np.ndarray:
    return softplus(op.x)


@register("Softsign")
def _softsign(op: Op) -> np.ndarray:
    return (op.x / (1 + np.abs(op.x))).astype(op.x.dtype, copy=False)


@register("Sigmoid")
def _sigmoid(op: Op) -> np.ndarray:
    return sigmoid(op.x)


@register("Tanh")
def _tanh(op: Op) -> np.ndarray:
    return np.tanh(op.x)


@register("LeakyRelu")
def _leaky_relu(op: Op) -> np.ndarray:
    return leaky_relu(op.x, op.f("alpha", 0.2))


@register("Prelu")
def _prelu(op: Op) -> np.ndarray:
    return prelu(op.x, op.arg(1))


@register("Softmax")
def _softmax(op: Op) -> np.ndarray:
    x = op.x.astype(np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(op.x.dtype)


@register("LogSoftmax")
def _log_softmax(op: Op) -> np.ndarray:
    x = op.x.astype(np.float64)
    z = x - x.max(axis=-1, keepdims=True)
    return (z - np.log(np.exp(z).sum(axis=-1, keepdims=True))).astype(op.x.dtype)
