"""Shape and data movement: Reshape, Squeeze, ExpandDims, Transpose, ConcatV2, Pack, Unpack,
Split, SplitV, Slice, StridedSlice, Pad, PadV2, MirrorPad, Tile, BroadcastTo, BroadcastArgs,
ReverseV2, GatherV2, GatherNd, TensorScatterUpdate, SparseToDense, DepthToSpace, SpaceToDepth.

TF's rules worth knowing:

* ``Split(axis, value)`` has the axis first; ``SplitV(value, size_splits, axis)`` allows one
  ``-1`` size (the rest).
* ``Slice`` sizes of ``-1`` mean "to the end".
* ``StridedSlice`` is Python slicing spelled as masks: bit ``i`` of ``begin_mask``/``end_mask``
  ignores begin/end ``i``; ``ellipsis_mask`` marks an ``...``; ``new_axis_mask`` a ``newaxis``
  (begin/end/stride ignored); ``shrink_axis_mask`` indexes with ``begin`` (the axis goes away).
  Out-of-range bounds clamp like Python's. Spec entries with ellipsis win over new-axis, which
  win over shrink.
* ``GatherV2(params, indices, axis)`` with ``batch_dims`` b: the first b axes of params and
  indices are matched, not gathered; indices out of ``[0, n)`` are an error (TF's CPU kernel).
* ``MirrorPad`` ``REFLECT`` excludes the edge, ``SYMMETRIC`` repeats it.
* ``BroadcastArgs(s0, s1)`` is the broadcast shape of two shape vectors, in their dtype.
* ``ReverseV2(tensor, axis)`` flips the listed axes (negative count from the end; none: a copy).
* ``TensorScatterUpdate(tensor, indices, updates)``: indices ``[..., K]`` address slices of the
  first K axes, replaced by ``updates`` (shape ``indices.shape[:-1] + tensor.shape[K:]``);
  indices out of range are an error (TF's CPU kernel); a repeated index keeps the last update.
* ``SparseToDense(indices, output_shape, values, default)``: ``default`` everywhere but at
  ``indices`` (``[N, R]``, ``[N]`` for R = 1, or a scalar), which get ``values`` (``[N]`` or one
  scalar for all); indices out of range are an error.
* ``DepthToSpace``/``SpaceToDepth`` use TF's "DCR" order: depth index ``(i * b + j) * C' + c``.
* ``MatrixBandPart(input, num_lower, num_upper)`` keeps, in each matrix of the last two axes,
  entry ``(m, n)`` where ``num_lower < 0 or m - n <= num_lower`` and ``num_upper < 0 or
  n - m <= num_upper``, and zeroes the rest (Keras's causal attention mask is ``(-1, 0)``).
"""

from __future__ import annotations

import numpy as np

from ...errors import EngineRunError
from ._base import Op, register


def _out_of_range(op: Op, what: str) -> EngineRunError:
    """Indices out of range are a fact about the inputs, not the file: a model that computes
    its indices (a crop, a spatial transformer's sampling grid) from its inputs leaves the
    range on made-up inputs, and TF and tfjs throw on them as this does. An engine that
    cannot run these inputs (exit 4, the check may try others), not a malformed file (3)."""
    return EngineRunError(
        f"{op.type} node {op.name!r}: {what} on these inputs (the model computes them from its "
        "inputs; TF and tfjs refuse them too)",
        hint="check with inputs the model takes: --inputs FILE.npz (or --no-validate to "
             "write the result unchecked)")


def _axis(op: Op, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise op.invalid(f"axis {axis} for rank {rank}")
    return axis % rank


@register("Reshape")
def _reshape(op: Op) -> np.ndarray:
    return op.x.reshape(op.ints_arg(1))


@register("Squeeze")
def _squeeze(op: Op) -> np.ndarray:
    x = op.x
    dims = op.ints("squeeze_dims")
    if not dims:
        return x.reshape([d for d in x.shape if d != 1])
    axes = {_axis(op, d, x.ndim) for d in dims}
    for a in axes:
        if x.shape[a] != 1:
            raise op.invalid(f"cannot squeeze axis {a} of size {x.shape[a]}")
    return x.reshape([d for i, d in enumerate(x.shape) if i not in axes])


@register("ExpandDims")
def _expand_dims(op: Op) -> np.ndarray:
    x = op.x
    return np.expand_dims(x, _axis(op, op.int_arg(1), x.ndim + 1))


@register("Transpose")
def _transpose(op: Op) -> np.ndarray:
    return np.array(np.transpose(op.x, op.ints_arg(1)), copy=True, order="C")


@register("ConcatV2")
def _concat(op: Op) -> np.ndarray:
    values = op.inputs[:-1]
    axis = _axis(op, op.int_arg(len(op.inputs) - 1), values[0].ndim)
    return np.concatenate(values, axis=axis)


@register("Pack")
def _pack(op: Op) -> np.ndarray:
    axis = _axis(op, op.i("axis", 0), op.x.ndim + 1)
    return np.stack(op.inputs, axis=axis)


@register("Unpack")
def _unpack(op: Op) -> list[np.ndarray]:
    x = op.x
    axis = _axis(op, op.i("axis", 0), x.ndim)
    return [np.array(v, copy=True, order="C") for v in np.moveaxis(x, axis, 0)]


@register("Split")
def _split(op: Op) -> list[np.ndarray]:
    x = op.arg(1)
    axis = _axis(op, op.int_arg(0), x.ndim)
    n = op.i("num_split", 1)
    if x.shape[axis] % n:
        raise op.invalid(f"cannot split {x.shape[axis]} into {n} equal parts")
    return np.split(x, n, axis=axis)


@register("SplitV")
def _split_v(op: Op) -> list[np.ndarray]:
    x = op.x
    sizes = op.ints_arg(1)
    axis = _axis(op, op.int_arg(2), x.ndim)
    if sizes.count(-1) > 1:
        raise op.invalid("more than one size_splits entry is -1")
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - sum(s for s in sizes if s != -1)
    if sum(sizes) != x.shape[axis] or min(sizes, default=0) < 0:
        raise op.invalid(f"size_splits {sizes} for an axis of {x.shape[axis]}")
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


@register("Slice")
def _slice(op: Op) -> np.ndarray:
    x = op.x
    begin, size = op.ints_arg(1), op.ints_arg(2)
    index = []
    for d, (b, s) in enumerate(zip(begin, size)):
        end = x.shape[d] if s == -1 else b + s
        if b < 0 or end > x.shape[d] or end < b:
            raise op.invalid(f"begin {begin} and size {size} for shape {list(x.shape)}")
        index.append(slice(b, end))
    return x[tuple(index)]


@register("StridedSlice")
def _strided_slice(op: Op) -> np.ndarray:
    x = op.x
    begin, end, strides = op.ints_arg(1), op.ints_arg(2), op.ints_arg(3)
    masks = {k: op.i(k, 0) for k in ("begin_mask", "end_mask", "ellipsis_mask",
                                     "new_axis_mask", "shrink_axis_mask")}
    index: list = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides)):
        bit = 1 << i
        if masks["ellipsis_mask"] & bit:
            index.append(Ellipsis)
        elif masks["new_axis_mask"] & bit:
            index.append(np.newaxis)
        elif masks["shrink_axis_mask"] & bit:
            index.append(b)
        else:
            if s == 0:
                raise op.invalid("a stride is 0")
            index.append(slice(None if masks["begin_mask"] & bit else b,
                               None if masks["end_mask"] & bit else e, s))
    return np.array(x[tuple(index)], copy=True, order="C")


def _paddings(op: Op, x: np.ndarray) -> list[tuple[int, int]]:
    p = np.asarray(op.arg(1)).reshape(-1, 2)
    if p.shape[0] != x.ndim:
        raise op.invalid(f"paddings for rank {p.shape[0]}, input rank {x.ndim}")
    pads = [(int(a), int(b)) for a, b in p]
    op.sized([d + a + b for d, (a, b) in zip(x.shape, pads)])
    return pads


@register("Pad", "PadV2")
def _pad(op: Op) -> np.ndarray:
    x = op.x
    value = np.asarray(op.arg(2)).reshape(()) if len(op.inputs) > 2 else 0
    return np.pad(x, _paddings(op, x), constant_values=value)


@register("MirrorPad")
def _mirror_pad(op: Op) -> np.ndarray:
    x = op.x
    mode = op.s("mode", "REFLECT")
    if mode not in ("REFLECT", "SYMMETRIC"):
        raise op.unsupported(f"mode {mode!r}")
    if mode == "REFLECT":
        return np.pad(x, _paddings(op, x), mode="reflect")
    return np.pad(x, _paddings(op, x), mode="symmetric")


@register("Tile")
def _tile(op: Op) -> np.ndarray:
    reps = op.ints_arg(1)
    if len(reps) != op.x.ndim:
        raise op.invalid(f"{len(reps)} multiples for rank {op.x.ndim}")
    op.sized([d * r for d, r in zip(op.x.shape, reps)])
    return np.tile(op.x, reps)


@register("BroadcastTo")
def _broadcast_to(op: Op) -> np.ndarray:
    return np.array(np.broadcast_to(op.x, op.sized(op.ints_arg(1))))


@register("BroadcastArgs")
def _broadcast_args(op: Op) -> np.ndarray:
    s0, s1 = np.asarray(op.arg(0)), np.asarray(op.arg(1))
    if s0.ndim != 1 or s1.ndim != 1:
        raise op.invalid(f"shapes must be vectors, got ranks {s0.ndim} and {s1.ndim}")
    a, b = [int(d) for d in s0], [int(d) for d in s1]
    try:
        shape = np.broadcast_shapes(tuple(a), tuple(b))
    except ValueError:
        raise op.invalid(f"shapes {a} and {b} do not broadcast") from None
    return np.asarray(shape, dtype=np.result_type(s0, s1))


@register("ReverseV2")
def _reverse(op: Op) -> np.ndarray:
    x = op.x
    axes = [_axis(op, a, x.ndim) for a in op.ints_arg(1)]
    if len(set(axes)) != len(axes):
        raise op.invalid(f"axis {op.ints_arg(1)} names an axis twice")
    return np.ascontiguousarray(np.flip(x, tuple(axes))) if axes else x


@register("TensorScatterUpdate")
def _tensor_scatter_update(op: Op) -> np.ndarray:
    x, indices, updates = op.x, np.asarray(op.arg(1)).astype(np.int64), np.asarray(op.arg(2))
    if indices.ndim < 1:
        raise op.invalid("indices must have rank >= 1")
    k = indices.shape[-1]
    if k > x.ndim:
        raise op.invalid(f"index depth {k} for a tensor of rank {x.ndim}")
    want = indices.shape[:-1] + x.shape[k:]
    if updates.shape != want:
        raise op.invalid(f"updates of shape {list(updates.shape)}, expected {list(want)}")
    coords = indices.reshape(-1, k)
    bounds = np.asarray(x.shape[:k])
    if coords.size and ((coords < 0).any() or (coords >= bounds).any()):
        raise _out_of_range(op, f"indices out of range for shape {list(x.shape)}")
    y = np.array(x, copy=True)
    rows = updates.reshape((coords.shape[0],) + x.shape[k:])
    for index, row in zip(coords, rows):  # in order: a repeated index keeps the last update
        y[tuple(index)] = row
    return y


@register("SparseToDense")
def _sparse_to_dense(op: Op) -> np.ndarray:
    indices = np.asarray(op.x).astype(np.int64)
    shape = [int(d) for d in op.ints_arg(1)]
    values, default = np.asarray(op.arg(2)), np.asarray(op.arg(3))
    if indices.ndim > 2:
        raise op.invalid(f"sparse_indices of rank {indices.ndim}")
    coords = indices.reshape(-1, 1) if indices.ndim < 2 else indices
    if coords.shape[1] != len(shape):
        raise op.invalid(f"indices of depth {coords.shape[1]} for a shape of rank {len(shape)}")
    if coords.size and ((coords < 0).any() or (coords >= np.asarray(shape)).any()):
        raise _out_of_range(op, f"indices out of range for shape {shape}")
    y = np.full(shape, default, dtype=values.dtype)
    y[tuple(coords.T)] = np.broadcast_to(values, (coords.shape[0],))
    return y


@register("GatherV2")
def _gather(op: Op) -> np.ndarray:
    params, indices = op.x, np.asarray(op.arg(1)).astype(np.int64)
    axis = op.int_arg(2) if len(op.inputs) > 2 else 0
    batch = op.i("batch_dims", 0)
    if batch < 0:
        batch += indices.ndim
    axis = _axis(op, axis, params.ndim)
    if not 0 <= batch <= min(axis, indices.ndim):
        raise op.invalid(f"batch_dims {batch} for axis {axis} and indices of rank "
                         f"{indices.ndim}")
    n = params.shape[axis]
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise _out_of_range(op, f"indices outside [0, {n})")
    if batch == 0:
        return np.take(params, indices, axis=axis)
    if params.shape[:batch] != indices.shape[:batch]:
        raise op.invalid(f"batch dimensions {list(params.shape[:batch])} and "
                         f"{list(indices.shape[:batch])} differ")
    # Advanced indexing: batch positions and indices broadcast together and come first.
    grids = [np.arange(d).reshape((-1,) + (1,) * (indices.ndim - 1 - i))
             for i, d in enumerate(params.shape[:batch])]
    middle = axis - batch  # non-batch params axes before the gathered one
    y = params[tuple(grids) + (slice(None),) * middle + (indices,)]
    # y: (*batch, *indices[batch:], *params[batch:axis], *params[axis+1:])
    k = indices.ndim - batch
    order = (list(range(batch)) + list(range(indices.ndim, indices.ndim + middle))
             + list(range(batch, batch + k)) + list(range(indices.ndim + middle, y.ndim)))
    return np.array(np.transpose(y, order), copy=True, order="C")


@register("GatherNd")
def _gather_nd(op: Op) -> np.ndarray:
    params, indices = op.x, np.asarray(op.arg(1)).astype(np.int64)
    k = indices.shape[-1]
    if k > params.ndim:
        raise op.invalid(f"index depth {k} for params of rank {params.ndim}")
    bounds = np.asarray(params.shape[:k])
    if indices.size and ((indices < 0).any() or (indices >= bounds).any()):
        raise _out_of_range(op, f"indices out of range for shape {list(params.shape)}")
    return params[tuple(np.moveaxis(indices, -1, 0))]


def _block(op: Op) -> int:
    b = op.i("block_size", 0)
    if b < 2:
        raise op.invalid(f"block_size {b} (must be >= 2)")
    return b


@register("DepthToSpace")
def _depth_to_space(op: Op) -> np.ndarray:
    cf = op.channels_first()
    x = np.moveaxis(op.x, 1, -1) if cf else op.x
    b = _block(op)
    n, h, w, c = x.shape
    if c % (b * b):
        raise op.invalid(f"depth {c} is not a multiple of block_size^2 = {b * b}")
    y = x.reshape(n, h, w, b, b, c // (b * b)).transpose(0, 1, 3, 2, 4, 5)
    y = y.reshape(n, h * b, w * b, c // (b * b))
    return np.ascontiguousarray(np.moveaxis(y, -1, 1) if cf else y)


@register("SpaceToDepth")
def _space_to_depth(op: Op) -> np.ndarray:
    cf = op.channels_first()
    x = np.moveaxis(op.x, 1, -1) if cf else op.x
    b = _block(op)
    n, h, w, c = x.shape
    if h % b or w % b:
        raise op.invalid(f"height {h} and width {w} must be multiples of block_size {b}")
    y = x.reshape(n, h // b, b, w // b, b, c).transpose(0, 1, 3, 2, 4, 5)
    y = y.reshape(n, h // b, w // b, b * b * c)
    return np.ascontiguousarray(np.moveaxis(y, -1, 1) if cf else y)


@register("MatrixBandPart")
def _matrix_band_part(op: Op) -> np.ndarray:
    x = op.x
    if x.ndim < 2:
        raise op.invalid(f"input of rank {x.ndim}: needs matrices (rank >= 2)")
    lower, upper = op.int_arg(1), op.int_arg(2)
    m = np.arange(x.shape[-2])[:, None]
    n = np.arange(x.shape[-1])[None, :]
    keep = ((lower < 0) | (m - n <= lower)) & ((upper < 0) | (n - m <= upper))
    return np.where(keep, x, np.zeros((), x.dtype)).astype(x.dtype, copy=False)
