"""Reductions and scans: Mean/Sum/Max/Min/Prod/All/Any, ArgMax/ArgMin, Cumsum, TopKV2.

* The axes come from input 1 (a scalar or a vector, negative counts from the end, an empty
  vector reduces nothing); ``keep_dims`` keeps reduced axes as 1.
* ``Mean`` of integers truncates toward zero (integer division of the sum).
* ``Max``/``Min`` over an empty axis give their identity: ``-inf``/``+inf`` for floats, the
  dtype's lowest/highest value for integers.
* ``ArgMax``/``ArgMin`` return the first extreme index, as ``output_type`` (int64 default).
* ``Cumsum`` accumulates sequentially in the input dtype (as TF's scan does); ``exclusive``
  shifts by one (starting at 0), ``reverse`` scans from the end.
* ``TopKV2`` returns the ``k`` largest values along the last axis, larger first, ties by lower
  index, with int32 indices. With ``sorted=false`` TF's CPU kernel returns the same elements in
  an unspecified (heap) order; the reference returns them sorted.
"""

from __future__ import annotations

import numpy as np

from ._base import Op, register


def _axes(op: Op, rank: int) -> tuple[int, ...]:
    axes = op.ints_arg(1)
    for a in axes:
        if not -rank <= a < max(rank, 1):
            raise op.invalid(f"axis {a} for a rank-{rank} input")
    return tuple(sorted({a % rank if rank else 0 for a in axes}))


def _reducer(fn):
    def op_fn(op: Op) -> np.ndarray:
        x = op.x
        axes = _axes(op, x.ndim)
        keep = op.b("keep_dims")
        return np.asarray(fn(x, axes, keep))
    return op_fn


def _mean(x: np.ndarray, axes: tuple, keep: bool) -> np.ndarray:
    if x.dtype.kind in "iu":
        count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        total = x.astype(np.int64).sum(axis=axes, keepdims=keep)
        q = np.abs(total) // max(count, 1)
        return np.where(total < 0, -q, q).astype(x.dtype)
    return x.astype(np.float64).mean(axis=axes, keepdims=keep).astype(x.dtype)


def _sum(x: np.ndarray, axes: tuple, keep: bool) -> np.ndarray:
    wide = np.float64 if x.dtype.kind == "f" else None
    return x.sum(axis=axes, keepdims=keep, dtype=wide).astype(x.dtype)


def _prod(x: np.ndarray, axes: tuple, keep: bool) -> np.ndarray:
    wide = np.float64 if x.dtype.kind == "f" else None
    return x.prod(axis=axes, keepdims=keep, dtype=wide).astype(x.dtype)


def _identity(x: np.ndarray, largest: bool):
    """Max's (``largest=False``) or Min's starting value: what an empty reduction returns."""
    if x.dtype.kind == "f":
        return -np.inf if not largest else np.inf
    info = np.iinfo(x.dtype)
    return info.max if largest else info.min


def _max(x: np.ndarray, axes: tuple, keep: bool) -> np.ndarray:
    return x.max(axis=axes, keepdims=keep, initial=_identity(x, False))


def _min(x: np.ndarray, axes: tuple, keep: bool) -> np.ndarray:
    return x.min(axis=axes, keepdims=keep, initial=_identity(x, True))


REDUCERS = {
    "Mean": _mean, "Sum": _sum, "Prod": _prod, "Max": _max, "Min": _min,
    "All": lambda x, axes, keep: np.all(x, axis=axes, keepdims=keep),
    "Any": lambda x, axes, keep: np.any(x, axis=axes, keepdims=keep),
    # sqrt(sum(x^2)) over the axes (no axes: |x| elementwise, TF's empty reduction)
    "EuclideanNorm": lambda x, axes, keep: np.sqrt(np.square(x.astype(np.float64)).sum(
        axis=axes, keepdims=keep)).astype(x.dtype),
}
for _name, _fn in REDUCERS.items():
    register(_name)(_reducer(_fn))


def _arg(fn):
    def op_fn(op: Op) -> np.ndarray:
        x = op.x
        axis = op.int_arg(1)
        if not -x.ndim <= axis < x.ndim:
            raise op.invalid(f"axis {axis} for a rank-{x.ndim} input")
        return fn(x, axis=axis).astype(op.dtype("output_type", "int64"))
    return op_fn


register("ArgMax")(_arg(np.argmax))
register("ArgMin")(_arg(np.argmin))


@register("Cumsum")
def _cumsum(op: Op) -> np.ndarray:
    x = op.x
    axis = op.int_arg(1)
    if not -x.ndim <= axis < x.ndim:
        raise op.invalid(f"axis {axis} for a rank-{x.ndim} input")
    reverse, exclusive = op.b("reverse"), op.b("exclusive")
    y = np.flip(x, axis) if reverse else x
    if exclusive:
        index = [slice(None)] * x.ndim
        index[axis] = slice(0, -1)
        zeros = np.zeros_like(np.take(y, [0], axis=axis))
        y = np.concatenate([zeros, y[tuple(index)]], axis=axis)
    y = np.cumsum(y, axis=axis, dtype=x.dtype)
    return np.ascontiguousarray(np.flip(y, axis)) if reverse else y


@register("TopKV2")
def _top_k(op: Op) -> list[np.ndarray]:
    x = op.x
    k = op.int_arg(1)
    if x.ndim < 1 or not 0 <= k <= x.shape[-1]:
        raise op.invalid(f"k={k} for a last axis of {x.shape[-1] if x.ndim else 'none'}")
    # Stable sort of the negated values: larger first, equal values in index order.
    key = -x.astype(np.float64) if x.dtype.kind != "b" else ~x
    order = np.argsort(key, axis=-1, kind="stable")[..., :k]
    return [np.take_along_axis(x, order, axis=-1), order.astype(np.int32)]
