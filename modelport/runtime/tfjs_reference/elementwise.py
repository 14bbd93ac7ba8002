"""Elementwise math: binary arithmetic (NumPy broadcasting is TF's), unary math (including the
trigonometric and hyperbolic functions and their inverses), IsNan/IsInf, comparisons, logic,
selection and clipping.

TF's integer semantics differ from Python's in places:

* ``Div`` on integers truncates toward zero (C++ ``/``); ``FloorDiv``/``FloorMod`` floor (the
  remainder takes the divisor's sign), for floats too: ``FloorMod`` is ``fmod`` moved by ``y``
  when the signs differ.
* ``Round`` rounds half to even; ``Sign(0) = 0``.
* Outside their domains the inverse functions give NaN (``Asin(2)``, ``Acosh(0.5)``) and
  ``Atanh(±1) = ±inf``, as in C; ``IsInf`` is true for both infinities.
* ``Select`` (v1) with a vector condition and a higher-rank value picks whole rows (first axis);
  ``SelectV2`` broadcasts all three. ``Where`` with one input (TF's only form) returns the int64
  coordinates of the true (non-zero) elements, row-major; given three inputs (as some TF.js
  graphs carry it) it is ``SelectV2``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._base import Op, OpFn, register
from .activations import erf


def _int(x: np.ndarray) -> bool:
    return x.dtype.kind in "iu"


def _same(fn):
    """Binary op whose result keeps the inputs' dtype (NumPy may widen int32 * int64 etc.)."""
    def op_fn(op: Op) -> np.ndarray:
        a, b = op.arg(0), op.arg(1)
        out = fn(a, b)
        dtype = np.result_type(a, b) if a.dtype != b.dtype else a.dtype
        return np.asarray(out).astype(dtype, copy=False)
    return op_fn


def _truncate_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if _int(a) and _int(b):
        q = np.abs(a) // np.abs(b)
        return np.where((a < 0) != (b < 0), -q, q)
    return a / b


def _floor_mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if _int(a) and _int(b):
        return np.mod(a, b)
    r = np.fmod(a, b)
    return np.where((r != 0) & ((r < 0) != (b < 0)), r + b, r)


def _floor_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if _int(a) and _int(b):
        return np.floor_divide(a, b)
    return np.floor(a / b)


BINARY = {
    "Add": np.add, "AddV2": np.add, "Sub": np.subtract, "Mul": np.multiply,
    "RealDiv": lambda a, b: a / b, "Div": _truncate_div, "FloorDiv": _floor_div,
    "FloorMod": _floor_mod, "Maximum": np.maximum, "Minimum": np.minimum, "Pow": np.power,
    "SquaredDifference": lambda a, b: np.square(a - b),
    "Atan2": np.arctan2,  # atan2(y, x): the angle of (x, y), in (-pi, pi]
    # 0 wherever the divisor is 0, even against inf or NaN (TF's definition)
    "DivNoNan": lambda a, b: np.where(b == 0, 0, a / np.where(b == 0, 1, b)),
}
for _name, _fn in BINARY.items():
    register(_name)(_same(_fn))


@register("AddN")
def _add_n(op: Op) -> np.ndarray:
    total = op.arg(0)
    for other in op.inputs[1:]:
        total = total + other
    return total.astype(op.x.dtype, copy=False)


def _rsqrt(x: np.ndarray) -> np.ndarray:
    return 1 / np.sqrt(x)


UNARY = {
    "Neg": np.negative, "Abs": np.abs, "Exp": np.exp, "Log": np.log, "Log1p": np.log1p,
    "Sqrt": np.sqrt, "Rsqrt": _rsqrt, "Square": np.square,
    "Reciprocal": lambda x: (1 / x) if x.dtype.kind == "f" else _truncate_div(np.ones_like(x), x),
    "Floor": np.floor, "Ceil": np.ceil, "Round": np.round, "Sign": np.sign,
    "Erf": erf, "Sin": np.sin, "Cos": np.cos, "Tan": np.tan,
    "Asin": np.arcsin, "Acos": np.arccos, "Atan": np.arctan, "Sinh": np.sinh, "Cosh": np.cosh,
    "Asinh": np.arcsinh, "Acosh": np.arccosh, "Atanh": np.arctanh, "Expm1": np.expm1,
}


def _unary(fn):
    def op_fn(op: Op) -> np.ndarray:
        x = op.x
        if x.dtype.kind in "iu" and fn in (np.floor, np.ceil, np.round):
            return x
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return np.asarray(fn(x)).astype(x.dtype, copy=False)
    return op_fn


for _name, _fn in UNARY.items():
    register(_name)(_unary(_fn))


@register("IsNan")
def _is_nan(op: Op) -> np.ndarray:
    return np.isnan(op.x)


@register("IsFinite")
def _is_finite(op: Op) -> np.ndarray:
    return np.isfinite(op.x)


@register("IsInf")
def _is_inf(op: Op) -> np.ndarray:
    return np.isinf(op.x)  # either sign (TF's IsInf has no detect_* attributes)


COMPARE = {"Equal": np.equal, "NotEqual": np.not_equal, "Greater": np.greater,
           "GreaterEqual": np.greater_equal, "Less": np.less, "LessEqual": np.less_equal}


def _comparison(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> OpFn:
    """The op function of a comparison ``fn`` of the two inputs."""
    def compare(op: Op) -> np.ndarray:
        return fn(op.arg(0), op.arg(1))
    return compare


for _name, _fn in COMPARE.items():
    register(_name)(_comparison(_fn))


@register("LogicalAnd")
def _and(op: Op) -> np.ndarray:
    return np.logical_and(op.arg(0), op.arg(1))


@register("LogicalOr")
def _or(op: Op) -> np.ndarray:
    return np.logical_or(op.arg(0), op.arg(1))


@register("LogicalNot")
def _not(op: Op) -> np.ndarray:
    return np.logical_not(op.x)


def _select_values(op: Op, cond: np.ndarray, t: np.ndarray, e: np.ndarray) -> np.ndarray:
    return np.where(cond.astype(bool), t, e).astype(np.result_type(t, e), copy=False)


@register("Select")
def _select(op: Op) -> np.ndarray:
    cond, t, e = op.arg(0), op.arg(1), op.arg(2)
    if t.shape != e.shape:
        raise op.invalid(f"then and else shapes differ: {list(t.shape)} vs {list(e.shape)}")
    if cond.ndim == 1 and t.ndim > 1:  # a row selector
        if cond.shape[0] != t.shape[0]:
            raise op.invalid(f"condition of length {cond.shape[0]} for {t.shape[0]} rows")
        cond = cond.reshape((-1,) + (1,) * (t.ndim - 1))
    elif cond.ndim and cond.shape != t.shape:
        raise op.invalid(f"condition shape {list(cond.shape)} for values {list(t.shape)}")
    return _select_values(op, cond, t, e)


@register("SelectV2")
def _select_v2(op: Op) -> np.ndarray:
    return _select_values(op, op.arg(0), op.arg(1), op.arg(2))


@register("Where")
def _where(op: Op) -> np.ndarray:
    if len(op.inputs) == 3:
        return _select_values(op, op.arg(0), op.arg(1), op.arg(2))
    return np.argwhere(op.x).astype(np.int64)


@register("ClipByValue")
def _clip(op: Op) -> np.ndarray:
    x = op.x
    return np.minimum(np.maximum(x, op.arg(1)), op.arg(2)).astype(x.dtype, copy=False)
