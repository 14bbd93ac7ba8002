"""TF -> ONNX mappings for the less common ops: extra math (Expm1, Atan2, IsFinite...),
reversal, scatter (ScatterNd, SparseToDense...), broadcast-shape helpers, and SpaceToBatchND /
BatchToSpaceND (how older graphs write dilated convolutions).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ...models import tfjs_graph as tg
from .core import INT64_MIN, MAPPINGS, TfOp

# --- more math ------------------------------------------------------------------------------

@MAPPINGS.register("Expm1")
def _expm1(op: TfOp) -> ir.Value:
    return op.emit("Sub", op.emit("Exp", op.inputs[0]), op.scalar(1.0))


@MAPPINGS.register("Rint")
def _rint(op: TfOp) -> ir.Value:
    return op.emit("Round", op.inputs[0])  # both round half to even


@MAPPINGS.register("IsFinite")
def _is_finite(op: TfOp) -> ir.Value:
    x = op.inputs[0]
    return op.emit("Not", op.emit("Or", op.emit("IsNaN", x), op.emit("IsInf", x)))


@MAPPINGS.register("Atan2")
def _atan2(op: TfOp) -> ir.Value:
    # atan(y / x) moved by pi into the right quadrant; x = 0 gives +-pi/2 (the sign of y).
    y, x = op.inputs
    zero, pi = op.scalar(0.0), op.scalar(np.pi)
    base = op.emit("Atan", op.emit("Div", y, x))
    sign_y = op.emit("Where", op.emit("Less", y, zero), op.scalar(-1.0), op.scalar(1.0))
    shifted = op.emit("Add", base, op.emit("Mul", sign_y, pi))
    result = op.emit("Where", op.emit("Less", x, zero), shifted, base)
    half = op.emit("Mul", sign_y, op.scalar(np.pi / 2))
    on_axis = op.emit("Where", op.emit("Equal", y, zero), zero, half)
    return op.emit("Where", op.emit("Equal", x, zero), on_axis, result)


@MAPPINGS.register("EuclideanNorm")
def _euclidean_norm(op: TfOp) -> ir.Value:
    axes = op.const_ints(1, "axes")
    if not axes:
        return op.emit("Abs", op.inputs[0])
    return op.b_.reduce("ReduceL2", op.inputs[0], axes, op.b("keep_dims"))


@MAPPINGS.register("ReverseV2")
def _reverse(op: TfOp) -> ir.Value:
    axes = op.const_ints(1, "axis")
    if not axes:
        return op.emit("Identity", op.inputs[0])
    n = len(axes)
    return op.b_.slice(op.inputs[0], [-1] * n, [INT64_MIN] * n, axes, [-1] * n)


@MAPPINGS.register("ShapeN")
def _shape_n(op: TfOp) -> list[ir.Value]:
    dtype = tg.attr_type(op.node, "out_type", "int32")
    outs = [op.emit("Shape", x) for x in op.inputs]
    return [op.cast_to(y, dtype) if dtype != "int64" else y for y in outs]


@MAPPINGS.register("BroadcastArgs")
def _broadcast_args(op: TfOp) -> ir.Value:
    # The broadcast shape of two shapes: the shape of Expand(Expand(0, s0), s1).
    zero = op.b_.const(np.asarray(0, np.int8), f"{op.name}/zero")
    both = op.emit("Expand", op.emit("Expand", zero, op.int64(0)), op.int64(1))
    shape = op.emit("Shape", both)
    dtype = op.dtype(0)
    return op.cast_to(shape, dtype) if dtype != "int64" else shape


@MAPPINGS.register("ScatterNd")
def _scatter_nd(op: TfOp) -> ir.Value:
    # TF adds the updates of repeated indices into zeros; ONNX's ScatterND sums with
    # reduction="add" (opset 16+).
    if op.ctx.opset < 16:
        raise op.fail(f"duplicate-index sums need ScatterND reduction (opset 16+, converting "
                      f"at {op.ctx.opset})")
    zeros = op.emit("Expand", op.scalar(0, op.dtype(1)), op.int64(2))
    return op.emit("ScatterND", zeros, op.int64(0), op.inputs[1], reduction="add")


@MAPPINGS.register("TensorScatterUpdate", "TensorScatterAdd")
def _tensor_scatter(op: TfOp) -> ir.Value:
    x, _, updates = op.inputs
    if op.op == "TensorScatterAdd":
        if op.ctx.opset < 16:
            raise op.fail(f"needs ScatterND reduction (opset 16+, converting at "
                          f"{op.ctx.opset})")
        return op.emit("ScatterND", x, op.int64(1), updates, reduction="add")
    return op.emit("ScatterND", x, op.int64(1), updates)


@MAPPINGS.register("SparseToDense")
def _sparse_to_dense(op: TfOp) -> ir.Value:
    # dense = default everywhere, values[i] at indices[i]: ONNX's ScatterND into an Expand of
    # the default. TF's indices are [N, R], [N] (R = 1) or a scalar; values [N] or a scalar
    # (every index gets it). validate_indices only makes TF fail on unsorted or repeated
    # indices, which a model that runs does not hold.
    rank = op.rank(0)
    if rank > 2:
        raise op.bad(f"sparse_indices has rank {rank}, not 0, 1 or 2")
    indices = op.int64(0)
    if rank < 2:
        indices = op.emit("Reshape", indices, op.b_.const(np.asarray([-1, 1], np.int64),
                                                          f"{op.name}/column"))
    dtype = op.dtype(2)
    dense = op.emit("Expand", op.inputs[3], op.int64(1))
    count = op.emit("Shape", indices, start=0, end=1)
    updates = op.emit("Expand", op.inputs[2], count) if op.rank(2) == 0 else op.inputs[2]
    if op.dtype(3) != dtype:
        dense = op.cast_to(dense, dtype)
    return op.emit("ScatterND", dense, indices, updates)


@MAPPINGS.register("MatrixBandPart")
def _matrix_band_part(op: TfOp) -> ir.Value:
    # Entry (m, n) of each matrix (the last two axes) is kept where m - n <= num_lower and
    # n - m <= num_upper (a negative bound keeps that whole triangle). The rows and columns
    # come from the input's shape, so a run-time size works too.
    x = op.inputs[0]
    rank = op.rank(0)
    if rank < 2:
        raise op.bad(f"input of rank {rank}: needs matrices (rank >= 2)")
    lower, upper = op.const_int(1, "num_lower"), op.const_int(2, "num_upper")
    shape = op.emit("Shape", x)
    zero, one = (op.b_.const(np.asarray(v, np.int64), f"{op.name}/{v}") for v in (0, 1))
    rows = op.emit("Range", zero, op.emit("Squeeze", op.b_.slice(shape, [-2], [-1], [0]),
                                          op.b_.ints([0])), one)
    cols = op.emit("Range", zero, op.emit("Squeeze", op.b_.slice(shape, [-1], [rank], [0]),
                                          op.b_.ints([0])), one)
    below = op.emit("Sub", op.b_.unsqueeze(rows, [1]), op.b_.unsqueeze(cols, [0]))  # m - n
    keep = None
    if lower >= 0:
        keep = op.emit("LessOrEqual", below, op.b_.const(np.asarray(lower, np.int64)))
    if upper >= 0:
        above = op.emit("LessOrEqual", op.emit("Neg", below),
                        op.b_.const(np.asarray(upper, np.int64)))
        keep = above if keep is None else op.emit("And", keep, above)
    if keep is None:
        return op.emit("Identity", x)
    if op.dtype(0) == "bool":  # a boolean mask (onnxruntime's Where has no bool kernel)
        return op.emit("And", x, keep)
    return op.emit("Where", keep, x, op.scalar(0, op.dtype(0)))


# --- space <-> batch (the dilated convolutions of older graphs) -----------------------------
# A chain SpaceToBatchND -> conv -> BatchToSpaceND is folded into one dilated conv before
# mapping (``dilation.py``); these map what is left. With static spatial sizes the shapes are
# constants; on a dynamic height/width (TF then computes paddings and crops from the input's
# Shape) they are computed from the tensor's shape at run time.

def _static_inner(op: TfOp, k: int) -> list[int] | None:
    """Input ``k``'s sizes after the batch axis when all are static, else None (its rank must
    be known)."""
    shape = op.known_shape(k)
    inner = [d for d in shape[1:] if d is not None]
    return inner if len(inner) == len(shape) - 1 else None


def _rest(op: TfOp, m: int) -> list[int]:
    """Input 0's static sizes after the batch and the ``m`` block axes (refused if dynamic)."""
    rest = [d for d in op.known_shape(0)[1 + m:] if d is not None]
    if len(rest) != len(op.known_shape(0)[1 + m:]):
        raise op.fail("needs static sizes for the axes after the block axes")
    return rest


def _shape_part(op: TfOp, shape: ir.Value, start: int, end: int) -> ir.Value:
    """``shape[start:end]`` of an int64 shape vector."""
    return op.b_.slice(shape, [start], [end], [0])


def _pairs(op: TfOp, k: int, column: int) -> ir.Value:
    """Column ``column`` ([M]) of the [M, 2] input ``k`` (paddings, crops), as int64."""
    index = op.b_.const(np.asarray(column, np.int64), f"{op.name}/column")
    return op.emit("Gather", op.int64(k), index, axis=1)


@MAPPINGS.register("SpaceToBatchND")
def _space_to_batch(op: TfOp) -> ir.Value:
    inner = _static_inner(op, 0)
    block = op.const_ints(1, "block_shape")
    m = len(block)
    rest = _rest(op, m)
    perm = [2 + 2 * i for i in range(m)] + [0] + [1 + 2 * i for i in range(m)] + \
        list(range(1 + 2 * m, 1 + 2 * m + len(rest)))
    if inner is None or op.const(2) is None:
        return _space_to_batch_dynamic(op, block, rest, perm)
    pads = np.asarray(op.const_ints(2, "paddings")).reshape(-1, 2)
    padded = [inner[i] + int(pads[i].sum()) for i in range(m)]
    if any(p % b for p, b in zip(padded, block)):
        raise op.bad(f"padded sizes {padded} are not multiples of the block {block}")
    flat = [0] + [int(a) for a, _ in pads] + [0] * len(rest) + \
        [0] + [int(b) for _, b in pads] + [0] * len(rest)
    x = op.emit("Pad", op.inputs[0], op.b_.ints(flat), mode="constant")
    split = [0] + [v for p, b in zip(padded, block) for v in (p // b, b)] + rest
    x = op.b_.reshape(x, split)
    x = op.emit("Transpose", x, perm=perm)
    return op.b_.reshape(x, [-1] + [p // b for p, b in zip(padded, block)] + rest)


def _space_to_batch_dynamic(op: TfOp, block: list[int], rest: list[int], perm: list[int]
                            ) -> ir.Value:
    m = len(block)
    zero, zeros = op.b_.ints([0]), op.b_.ints([0] * len(rest)) if rest else None
    begins = [zero, _pairs(op, 2, 0)] + ([zeros] if zeros is not None else [])
    ends = [zero, _pairs(op, 2, 1)] + ([zeros] if zeros is not None else [])
    pads = op.emit("Concat", *begins, *ends, axis=0)
    x = op.emit("Pad", op.inputs[0], pads, mode="constant")
    shape = op.emit("Shape", x)
    quotient = op.emit("Div", _shape_part(op, shape, 1, 1 + m), op.b_.ints(block))
    pieces = [_shape_part(op, shape, 0, 1)]
    for i in range(m):
        pieces += [op.b_.slice(quotient, [i], [i + 1], [0]), op.b_.ints([block[i]])]
    pieces += [op.b_.ints(rest)] if rest else []
    x = op.emit("Reshape", x, op.emit("Concat", *pieces, axis=0))
    x = op.emit("Transpose", x, perm=perm)
    final = [op.b_.ints([-1]), quotient] + ([op.b_.ints(rest)] if rest else [])
    return op.emit("Reshape", x, op.emit("Concat", *final, axis=0))


@MAPPINGS.register("BatchToSpaceND")
def _batch_to_space(op: TfOp) -> ir.Value:
    inner = _static_inner(op, 0)
    block = op.const_ints(1, "block_shape")
    m = len(block)
    rest = _rest(op, m)
    perm = [m] + [v for i in range(m) for v in (m + 1 + i, i)] + \
        list(range(1 + 2 * m, 1 + 2 * m + len(rest)))
    if inner is None or op.const(2) is None:
        return _batch_to_space_dynamic(op, block, rest, perm)
    crops = np.asarray(op.const_ints(2, "crops")).reshape(-1, 2)
    spatial = inner[:m]
    x = op.b_.reshape(op.inputs[0], block + [-1] + spatial + rest)
    x = op.emit("Transpose", x, perm=perm)
    full = [s * b for s, b in zip(spatial, block)]
    x = op.b_.reshape(x, [-1] + full + rest)
    if crops.any():
        x = op.b_.slice(x, [int(c) for c in crops[:, 0]],
                        [f - int(c) for f, c in zip(full, crops[:, 1])], list(range(1, 1 + m)))
    return x


def _batch_to_space_dynamic(op: TfOp, block: list[int], rest: list[int], perm: list[int]
                            ) -> ir.Value:
    m = len(block)
    spatial = _shape_part(op, op.emit("Shape", op.inputs[0]), 1, 1 + m)
    tail = [op.b_.ints(rest)] if rest else []
    split = op.emit("Concat", op.b_.ints(block + [-1]), spatial, *tail, axis=0)
    x = op.emit("Transpose", op.emit("Reshape", op.inputs[0], split), perm=perm)
    full = op.emit("Mul", spatial, op.b_.ints(block))
    x = op.emit("Reshape", x, op.emit("Concat", op.b_.ints([-1]), full, *tail, axis=0))
    ends = op.emit("Sub", full, _pairs(op, 2, 1))
    return op.emit("Slice", x, _pairs(op, 2, 0), ends, op.b_.ints(list(range(1, 1 + m))))
