"""Casts, shapes and new tensors: Cast, Shape, Size, Rank, Fill, ZerosLike, OnesLike, Range,
OneHot.

* ``Cast`` float -> int truncates toward zero; -> bool is ``!= 0``; narrower ints wrap.
* ``Shape``/``Size`` return ``out_type`` (int32 default); ``Rank`` an int32 scalar.
* ``Range(start, limit, delta)`` has ``ceil(|limit - start| / |delta|)`` elements (integer
  arithmetic for integers); element ``i`` is ``start + i * delta`` in the range's dtype (not a
  running sum: float32 ranges do not accumulate rounding).
* ``OneHot(indices, depth, on, off)`` inserts the depth axis at ``axis`` (-1: last); indices
  outside ``[0, depth)`` give a row of ``off``.
"""

from __future__ import annotations

import numpy as np

from ._base import Op, register


@register("Cast")
def _cast(op: Op) -> np.ndarray:
    x = op.x
    dst = op.dtype("DstT")
    if dst.kind in "iu" and x.dtype.kind == "f":
        x = np.trunc(x)
        with np.errstate(invalid="ignore"):
            return x.astype(np.int64).astype(dst)
    return x.astype(dst)


@register("Shape")
def _shape(op: Op) -> np.ndarray:
    return np.asarray(op.x.shape, dtype=op.dtype("out_type", "int32"))


@register("Size")
def _size(op: Op) -> np.ndarray:
    return np.asarray(op.x.size, dtype=op.dtype("out_type", "int32"))


@register("Rank")
def _rank(op: Op) -> np.ndarray:
    return np.asarray(op.x.ndim, dtype=np.int32)


@register("Fill")
def _fill(op: Op) -> np.ndarray:
    value = np.asarray(op.arg(1))
    if value.size != 1:
        raise op.invalid("the fill value is not a scalar")
    return np.full(op.sized(op.ints_arg(0)), value.reshape(()), dtype=value.dtype)


@register("ZerosLike")
def _zeros_like(op: Op) -> np.ndarray:
    return np.zeros_like(op.x)


@register("OnesLike")
def _ones_like(op: Op) -> np.ndarray:
    return np.ones_like(op.x)


@register("Range")
def _range(op: Op) -> np.ndarray:
    start, limit, delta = (np.asarray(op.arg(k)).reshape(()) for k in range(3))
    dtype = op.dtype("Tidx", str(start.dtype))
    if delta == 0:
        raise op.invalid("delta is 0")
    if (delta > 0 and limit < start) or (delta < 0 and limit > start):
        raise op.invalid(f"start {start}, limit {limit} and delta {delta} run backwards")
    if dtype.kind in "iu":
        s, lim, d = int(start), int(limit), int(delta)
        count = op.sized([(abs(lim - s) + abs(d) - 1) // abs(d)])[0]
        return (s + d * np.arange(count, dtype=np.int64)).astype(dtype)
    fs, flim, fd = (np.asarray(v, dtype=dtype) for v in (start, limit, delta))
    fcount = op.sized([int(np.ceil(np.abs((flim - fs) / fd)))])[0]
    return (np.arange(fcount).astype(dtype) * fd + fs).astype(dtype)  # start + i * delta


@register("OneHot")
def _one_hot(op: Op) -> np.ndarray:
    indices = np.asarray(op.x).astype(np.int64)
    depth = op.int_arg(1)
    on, off = np.asarray(op.arg(2)).reshape(()), np.asarray(op.arg(3)).reshape(())
    axis = op.i("axis", -1)
    rank = indices.ndim + 1
    if not -1 <= axis < rank:
        raise op.invalid(f"axis {axis} for output rank {rank}")
    op.sized([*indices.shape, depth])
    hot = indices[..., None] == np.arange(depth)
    y = np.where(hot, on, off).astype(np.result_type(on, off))
    return np.ascontiguousarray(np.moveaxis(y, -1, axis)) if axis != -1 else y
