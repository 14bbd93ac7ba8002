"""Keras 3 activation functions and the activation layers.

Functions compute in float64 and hand back the input's float dtype: at float32 that is Keras's
own result to within one rounding. ``erf`` is implemented here (NumPy has none): a positive-term
series below |x| = 2.5 and a continued fraction for erfc above, both accurate to ~1e-15.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ...errors import UnsupportedError
from ..precision import rounded_absolute
from ._base import Call, as_float, register

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# --- erf ----------------------------------------------------------------------------------------

def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, in float64 (absolute error < 1e-14)."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    out = np.empty_like(a)
    small = a < 2.5
    # erf(a) = 2/sqrt(pi) exp(-a^2) sum_n a^(2n+1) 2^n / (2n+1)!!  (all terms positive)
    s = a[small]
    term, total = s.copy(), s.copy()
    two_s2 = 2.0 * s * s
    for n in range(1, 60):
        term = term * two_s2 / (2 * n + 1)
        total += term
    out[small] = 2.0 / math.sqrt(math.pi) * np.exp(-s * s) * total
    # erfc(a) = exp(-a^2)/sqrt(pi) / (a + (1/2)/(a + 1/(a + (3/2)/(a + ...))))
    b = a[~small]
    frac = b.copy()
    for k in range(60, 0, -1):
        frac = b + (k / 2.0) / frac
    out[~small] = 1.0 - np.exp(-b * b) / math.sqrt(math.pi) / frac
    return np.copysign(out, x)


# --- the functions ------------------------------------------------------------------------------

def _softmax(x: np.ndarray, axis=-1) -> np.ndarray:
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis=-1) -> np.ndarray:
    z = x - np.max(x, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(x, 0.0)


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 6.0)


def _sparsemax(x: np.ndarray, axis=-1) -> np.ndarray:
    z = np.moveaxis(x, axis, -1)
    srt = -np.sort(-z, axis=-1)
    cum = np.cumsum(srt, axis=-1)
    r = np.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    support = srt - (cum - 1.0) / r > 0
    k = np.sum(support, axis=-1, keepdims=True)
    tau = (np.sum(np.where(support, cum, 0.0), axis=-1, keepdims=True) - 1.0) / k
    return np.moveaxis(np.maximum(z - tau, 0.0), -1, axis)


def _glu(x: np.ndarray, axis=-1) -> np.ndarray:
    a, b = np.split(x, 2, axis=axis)
    return a * _sigmoid(b)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-x) overflows to inf for x < -88 in float32, which gives the right 0 (and x * 0 for
    # silu): the overflow is the formula's, not an error to print on every check
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


# Built-in activations by their Keras 3 names (plus modelport's canonical Keras 2 hard_sigmoid).
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": _relu6,
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.2 * x),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0))),
    "celu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "softplus": _softplus,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "silu": lambda x: x * _sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1.0 + erf(x / math.sqrt(2.0))),
    "hard_sigmoid": lambda x: _relu6(x + 3.0) / 6.0,
    "keras2_hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
    "hard_silu": lambda x: x * _relu6(x + 3.0) / 6.0,
    "hard_tanh": lambda x: np.clip(x, -1.0, 1.0),
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "exponential": np.exp,
    "log_sigmoid": lambda x: -_softplus(-x),
    "tanh_shrink": lambda x: x - np.tanh(x),
    "soft_shrink": lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0.0)),
    "hard_shrink": lambda x: np.where(np.abs(x) > 0.5, x, 0.0),
    "sparse_plus": lambda x: np.where(x <= -1, 0.0, np.where(x >= 1, x, (x + 1.0) ** 2 / 4.0)),
    "sparse_sigmoid": lambda x: np.where(x <= -1, 0.0, np.where(x >= 1, 1.0, (x + 1.0) / 2.0)),
    "squareplus": lambda x: (x + np.sqrt(x * x + 4.0)) / 2.0,
    "sparsemax": _sparsemax,
    "glu": _glu,
}
ALIASES = {"swish": "silu", "hard_swish": "hard_silu", None: "linear"}


def activation(name, layer: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """The function for an activation given as its canonical config value."""
    if isinstance(name, dict):
        cfg = name.get("config")
        name = cfg if isinstance(cfg, str) else name.get("class_name")
    key = ALIASES.get(name, name)
    fn = ACTIVATIONS.get(key) if isinstance(key, str) else None
    if fn is None:
        raise UnsupportedError(f"activation {name!r} is not a Keras built-in the reference knows",
                               layer=layer, hint=f"known: {', '.join(sorted(ACTIVATIONS))}")

    def apply(x: np.ndarray) -> np.ndarray:
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        y = np.asarray(fn(x.astype(np.float64)), dtype=dtype)
        # the noise run: other engines' sigmoid rounds absolutely (precision.rounded_absolute)
        return rounded_absolute(y) if key == "sigmoid" else y
    apply.__name__ = key
    return apply


def apply_activation(cfg: dict, x: np.ndarray, layer: str, key: str = "activation") -> np.ndarray:
    """``x`` through the activation ``cfg[key]`` names (``x`` itself for linear or none);
    ``layer`` names the layer in errors."""
    name = cfg.get(key, "linear")
    return x if name in (None, "linear") else activation(name, layer)(x)


# --- layers -------------------------------------------------------------------------------------

@register("Activation", mask="propagate")
def _activation(call: Call) -> list[np.ndarray]:
    return [activation(call.cfg.get("activation"), call.name)(as_float(call.x, call.cfg))]


@register("ReLU", mask="propagate")
def _relu(call: Call) -> list[np.ndarray]:
    x = as_float(call.x, call.cfg).astype(np.float64)
    slope = float(call.cfg.get("negative_slope") or 0.0)
    threshold = float(call.cfg.get("threshold") or 0.0)
    max_value = call.cfg.get("max_value")
    # Keras: x if x > threshold else 0, clipped at max_value, minus slope * relu(threshold - x).
    y = np.where(x > threshold, x, 0.0) if threshold else np.maximum(x, 0.0)
    if max_value is not None:
        y = np.minimum(y, float(max_value))
    if slope:
        y = y - slope * np.maximum(threshold - x, 0.0)
    return [y.astype(call.x.dtype if call.x.dtype.kind == "f" else np.float32)]


@register("LeakyReLU", mask="propagate")
def _leaky_relu(call: Call) -> list[np.ndarray]:
    x = as_float(call.x, call.cfg)
    slope = call.cfg.get("negative_slope", call.cfg.get("alpha", 0.3))
    return [np.where(x >= 0, x, x * np.asarray(slope, x.dtype))]


@register("PReLU", mask="propagate")
def _prelu(call: Call) -> list[np.ndarray]:
    x = as_float(call.x, call.cfg)
    alpha = call.w["alpha"].astype(x.dtype)  # already shaped (1 on shared axes) like x[1:]
    return [np.maximum(x, 0) - alpha * np.maximum(-x, 0)]


@register("ELU", mask="propagate")
def _elu(call: Call) -> list[np.ndarray]:
    x = as_float(call.x, call.cfg)
    alpha = float(call.cfg.get("alpha", 1.0))
    x64 = x.astype(np.float64)
    return [np.where(x64 > 0, x64, alpha * np.expm1(np.minimum(x64, 0.0))).astype(x.dtype)]


@register("ThresholdedReLU", mask="propagate")
def _thresholded_relu(call: Call) -> list[np.ndarray]:
    x = as_float(call.x, call.cfg)
    theta = float(call.cfg.get("theta", 1.0))
    return [np.where(x > theta, x, 0).astype(x.dtype)]


@register("Softmax", mask="propagate")
def _softmax_layer(call: Call) -> list[np.ndarray]:
    x = as_float(call.x, call.cfg).astype(np.float64)
    axis = call.cfg.get("axis", -1)
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    mask = call.mask  # explicit mask= input, else the input's Keras mask
    if mask is not None:
        mask = np.asarray(mask)
        keep = mask if mask.dtype == bool else mask > 0.5
        x = np.where(keep, x, -1e9 if call.x.dtype != np.float16 else -3e4)
    y = _softmax(x, axis=axis)
    if mask is not None:
        y = np.where(keep, y, 0.0)
    return [y.astype(np.float32 if call.x.dtype.kind != "f" else call.x.dtype)]

