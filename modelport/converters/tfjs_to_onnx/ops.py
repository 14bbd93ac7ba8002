"""TF -> ONNX mappings for math, reductions, shapes, slicing and gathering.

Where a TF op takes a shape, axes, paddings or counts as an int32 tensor and ONNX wants int64,
``TfOp.int64`` converts (a constant in NumPy, a computed one with a Cast); where ONNX returns
int64 (Shape, Size, ArgMax, TopK) the result is cast back to the dtype TF declares.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from ...models import tfjs_graph as tg
from .core import INT64_MAX, INT64_MIN, MAPPINGS, TfOp, to_first, to_last

log = logging.getLogger(__name__)

# --- elementwise ----------------------------------------------------------------------------


@MAPPINGS.register("Square")
def _square(op: TfOp) -> ir.Value:
    return op.emit("Mul", op.inputs[0], op.inputs[0])


@MAPPINGS.register("Rsqrt")
def _rsqrt(op: TfOp) -> ir.Value:
    return op.emit("Reciprocal", op.emit("Sqrt", op.inputs[0]))


@MAPPINGS.register("Log1p")
def _log1p(op: TfOp) -> ir.Value:
    return op.emit("Log", op.emit("Add", op.inputs[0], op.scalar(1.0)))


@MAPPINGS.register("SquaredDifference")
def _squared_difference(op: TfOp) -> ir.Value:
    d = op.emit("Sub", op.inputs[0], op.inputs[1])
    return op.emit("Mul", d, d)


@MAPPINGS.register("NotEqual")
def _not_equal(op: TfOp) -> ir.Value:
    return op.emit("Not", op.emit("Equal", op.inputs[0], op.inputs[1]))


@MAPPINGS.register("RealDiv", "Div")
def _div(op: TfOp) -> ir.Value:
    # On integers both truncate toward zero in TF's CPU kernels, as ONNX's Div does.
    return op.emit("Div", op.inputs[0], op.inputs[1])


@MAPPINGS.register("DivNoNan")
def _div_no_nan(op: TfOp) -> ir.Value:
    # TF gives 0 wherever y is 0, whatever x is (inf and NaN included): Where picks it.
    x, y = op.inputs
    product = op.emit("Div", x, y)
    zero = op.scalar(0, op.dtype(1))
    return op.emit("Where", op.emit("Equal", y, zero), zero, product)


@MAPPINGS.register("FloorDiv")
def _floor_div(op: TfOp) -> ir.Value:
    a, b = op.inputs
    if op.is_float(0):
        return op.emit("Floor", op.emit("Div", a, b))
    # (a - floormod(a, b)) / b is exact, so ONNX's truncating Div gives the floor.
    return op.emit("Div", op.emit("Sub", a, op.emit("Mod", a, b, fmod=0)), b)


@MAPPINGS.register("FloorMod")
def _floor_mod(op: TfOp) -> ir.Value:
    a, b = op.inputs
    if not op.is_float(0):
        return op.emit("Mod", a, b, fmod=0)
    # ONNX's Mod needs fmod=1 on floats (C fmod); TF's FloorMod follows the divisor's sign.
    return op.emit("Sub", a, op.emit("Mul", op.emit("Floor", op.emit("Div", a, b)), b))


@MAPPINGS.register("Mod", "TruncateMod")
def _truncate_mod(op: TfOp) -> ir.Value:
    # TF's Mod is C's: the remainder of a truncating division, with the dividend's sign.
    return op.emit("Mod", op.inputs[0], op.inputs[1], fmod=1)


@MAPPINGS.register("TruncateDiv")
def _truncate_div(op: TfOp) -> ir.Value:
    if op.is_float(0):
        q = op.emit("Div", op.inputs[0], op.inputs[1])
        # Truncation toward zero: floor of |q| with q's sign.
        return op.emit("Mul", op.emit("Sign", q), op.emit("Floor", op.emit("Abs", q)))
    return op.emit("Div", op.inputs[0], op.inputs[1])


@MAPPINGS.register("BitwiseAnd", "BitwiseOr", "BitwiseXor")
def _bitwise(op: TfOp) -> ir.Value:
    if op.ctx.opset < 18:
        raise op.fail(f"ONNX has {op.op} from opset 18 (converting at {op.ctx.opset})")
    return op.emit(op.op, op.inputs[0], op.inputs[1])


@MAPPINGS.register("ClipByValue")
def _clip(op: TfOp) -> ir.Value:
    x, lo, hi = op.inputs
    return op.emit("Min", op.emit("Max", x, lo), hi)


@MAPPINGS.register("AddN")
def _add_n(op: TfOp) -> ir.Value:
    return op.emit("Sum", *op.inputs) if len(op.inputs) > 1 else op.emit("Identity",
                                                                          op.inputs[0])


@MAPPINGS.register("Select")
def _select(op: TfOp) -> ir.Value:
    # Select (v1) takes a vector condition for the first axis of higher-rank operands.
    cond, x, y = op.inputs
    rank_c, rank_x = op.rank(0), op.rank(1)
    if rank_c == 1 and rank_x > 1:
        cond = op.b_.unsqueeze(cond, list(range(1, rank_x)))
    return op.emit("Where", cond, x, y)


def _constant_of_shape(op: TfOp, shape: ir.Value, value: float, dtype: str) -> ir.Value:
    return op.emit("ConstantOfShape", shape,
                   value=ir.tensor(np.asarray([value], dtype=dtype), name=f"{op.name}/value"))


@MAPPINGS.register("ZerosLike", "OnesLike")
def _fill_like(op: TfOp) -> ir.Value:
    # A constant of x's shape, not x*0, which would keep NaN and Inf.
    return _constant_of_shape(op, op.emit("Shape", op.inputs[0]),
                              0 if op.op == "ZerosLike" else 1, op.dtype(0))


@MAPPINGS.register("Fill")
def _fill(op: TfOp) -> ir.Value:
    value = op.const(1)
    if value is not None and np.size(value) == 1 and op.dtype(1) != "string":
        return _constant_of_shape(op, op.int64(0), np.asarray(value).reshape(-1)[0],
                                  op.dtype(1))
    return op.emit("Expand", op.inputs[1], op.int64(0))


@MAPPINGS.register("BroadcastTo")
def _broadcast_to(op: TfOp) -> ir.Value:
    return op.emit("Expand", op.inputs[0], op.int64(1))


@MAPPINGS.register("Cast")
def _cast(op: TfOp) -> ir.Value:
    dtype = tg.attr_type(op.node, "DstT")
    if dtype is None:
        raise op.bad("has no DstT")
    # The source dtype as the probe saw it, else the node's SrcT; op.dtype's float32 fallback
    # would drop a Cast whose input the probe could not run (a bool from IsFinite).
    source = op.probe.dtypes.get(op.refs[0]) or tg.attr_type(op.node, "SrcT")
    if dtype == source:
        return op.emit("Identity", op.inputs[0])
    return op.cast_to(op.inputs[0], dtype)


@MAPPINGS.register("Shape", "Size")
def _shape(op: TfOp) -> ir.Value:
    y = op.emit(op.op, op.inputs[0])
    dtype = tg.attr_type(op.node, "out_type", "int32")
    return op.cast_to(y, dtype) if dtype != "int64" else y


@MAPPINGS.register("Rank")
def _rank(op: TfOp) -> ir.Value:
    return op.b_.const(np.asarray(op.rank(0), np.int32), f"{op.name}/rank")


@MAPPINGS.register("Range")
def _range(op: TfOp) -> ir.Value:
    return op.emit("Range", *op.inputs)


# --- reductions -----------------------------------------------------------------------------

REDUCE = {"Sum": "ReduceSum", "Mean": "ReduceMean", "Max": "ReduceMax", "Min": "ReduceMin",
          "Prod": "ReduceProd"}


@MAPPINGS.register(*REDUCE, "All", "Any")
def _reduce(op: TfOp) -> ir.Value:
    axes = op.const_ints(1, "axes")
    keep = op.b("keep_dims")
    x = op.inputs[0]
    if not axes:  # TF reduces nothing over an empty axis list; ONNX would reduce everything
        return op.emit("Identity", x)
    shape = op.shape(0)
    if shape is not None and any(shape[a] == 0 for a in axes if -len(shape) <= a < len(shape)):
        return _reduce_empty(op)
    if op.op in ("All", "Any"):
        as_int = op.cast_to(x, "int32")
        y = op.b_.reduce("ReduceMin" if op.op == "All" else "ReduceMax", as_int, axes, keep)
        return op.cast_to(y, "bool")
    return op.b_.reduce(REDUCE[op.op], x, axes, keep)


def _reduce_empty(op: TfOp) -> ir.Value:
    """TF's value of a reduction over a zero-size axis, as a constant: onnxruntime returns an
    empty tensor for ReduceMin/ReduceMax there, where TF (and ONNX's spec) fill in the identity."""
    out = op.out_shape(0)
    dtype = np.dtype(op.out_dtype(0) or op.dtype(0))
    if out is None or any(d is None for d in out):
        raise op.fail("a reduction over a zero-size axis needs a static output shape")
    value: float  # bools and ints included
    if dtype == np.bool_:
        value = op.op == "All"
    elif dtype.kind == "f":
        value = {"Sum": 0.0, "Prod": 1.0, "Max": -np.inf, "Min": np.inf, "Mean": np.nan}[op.op]
    else:
        info = np.iinfo(dtype)
        value = {"Sum": 0, "Prod": 1, "Max": info.min, "Min": info.max, "Mean": 0}[op.op]
    return op.b_.const(np.full(out, value, dtype=dtype))


@MAPPINGS.register("ArgMax", "ArgMin")
def _arg(op: TfOp) -> ir.Value:
    axis = op.const_int(1, "axis")
    y = op.emit(op.op, op.inputs[0], axis=axis, keepdims=0)
    dtype = tg.attr_type(op.node, "output_type", "int64")
    return op.cast_to(y, dtype) if dtype != "int64" else y


@MAPPINGS.register("TopKV2")
def _top_k(op: TfOp) -> list[ir.Value]:
    k = op.b_.reshape(op.int64(1), [1])
    values, indices = op.emits("TopK", op.inputs[0], k, outputs=2, axis=-1, largest=1,
                               sorted=1)
    dtype = tg.attr_type(op.node, "index_type", "int32")
    return [values, op.cast_to(indices, dtype) if dtype != "int64" else indices]


@MAPPINGS.register("Cumsum")
def _cumsum(op: TfOp) -> ir.Value:
    return op.emit("CumSum", op.inputs[0], op.inputs[1], exclusive=int(op.b("exclusive")),
                   reverse=int(op.b("reverse")))


# --- shapes ---------------------------------------------------------------------------------

@MAPPINGS.register("Reshape")
def _reshape(op: TfOp) -> ir.Value:
    shape = op.const(1)
    if shape is not None and 0 not in np.asarray(shape).reshape(-1):
        return op.emit("Reshape", op.inputs[0], op.int64(1))
    # A 0 in TF's shape means an empty dimension; ONNX reads it as "copy" unless allowzero.
    if op.ctx.opset >= 14:
        return op.emit("Reshape", op.inputs[0], op.int64(1), allowzero=1)
    if shape is not None:
        raise op.fail("a target shape with a 0 (an empty dimension) needs opset >= 14")
    # Opset 13 has no allowzero: a computed shape is taken as is; it would only differ from
    # TF if it held a 0 at run time (an empty tensor).
    log.warning("Reshape %r: computed shape at opset 13 (no allowzero); empty dimensions "
                "would be read as 'copy'", op.name)
    return op.emit("Reshape", op.inputs[0], op.int64(1))


@MAPPINGS.register("Squeeze")
def _squeeze(op: TfOp) -> ir.Value:
    dims = tg.attr_list(op.node, "squeeze_dims", "i") or tg.attr_list(op.node, "axis", "i")
    if not dims:
        return op.emit("Squeeze", op.inputs[0])  # every size-1 dimension, as in TF
    return op.b_.squeeze(op.inputs[0], dims)


@MAPPINGS.register("ExpandDims")
def _expand_dims(op: TfOp) -> ir.Value:
    # A negative axis counts from the end of the output in both TF and ONNX.
    return op.b_.unsqueeze(op.inputs[0], [op.const_int(1, "axis")])


@MAPPINGS.register("ConcatV2")
def _concat(op: TfOp) -> ir.Value:
    n = op.i("N", len(op.inputs) - 1)
    axis = op.const_int(len(op.inputs) - 1, "axis")
    if n != len(op.inputs) - 1:
        raise op.bad(f"N is {n} but it has {len(op.inputs) - 1} tensors to join")
    return op.emit("Concat", *op.inputs[:-1], axis=axis)


@MAPPINGS.register("Pack")
def _pack(op: TfOp) -> ir.Value:
    axis = op.i("axis", 0)
    parts = [op.b_.unsqueeze(x, [axis]) for x in op.inputs]
    return op.emit("Concat", *parts, axis=axis) if len(parts) > 1 else parts[0]


@MAPPINGS.register("Unpack")
def _unpack(op: TfOp) -> list[ir.Value]:
    rank = op.rank(0)
    axis = op.axis(op.i("axis", 0), rank)
    num = op.i("num")
    if num == 1:
        return [op.b_.squeeze(op.inputs[0], [axis])]
    parts = op.b_.split(op.inputs[0], [1] * num, axis)
    return [op.b_.squeeze(p, [axis]) for p in parts]


def _dim(op: TfOp, k: int, axis: int) -> int:
    shape = op.shape(k)
    size = shape[axis] if shape is not None else None
    if size is None:
        raise op.fail(f"splits dimension {axis}, whose size is only known at run time")
    return int(size)


@MAPPINGS.register("Split")
def _split(op: TfOp) -> list[ir.Value]:
    rank = op.rank(1)
    axis = op.axis(op.const_int(0, "axis"), rank)
    num = op.i("num_split")
    if num == 1:
        return [op.emit("Identity", op.inputs[1])]
    size = _dim(op, 1, axis)
    if size % num:
        raise op.bad(f"cannot split {size} into {num} equal parts")
    return op.b_.split(op.inputs[1], [size // num] * num, axis)


@MAPPINGS.register("SplitV")
def _split_v(op: TfOp) -> list[ir.Value]:
    rank = op.rank(0)
    axis = op.axis(op.const_int(2, "axis"), rank)
    sizes = op.const_ints(1, "size_splits")
    if -1 in sizes:
        sizes[sizes.index(-1)] = _dim(op, 0, axis) - (sum(sizes) + 1)
    if len(sizes) == 1:
        return [op.emit("Identity", op.inputs[0])]
    return op.b_.split(op.inputs[0], sizes, axis)


@MAPPINGS.register("Transpose")
def _transpose(op: TfOp) -> ir.Value:
    return op.emit("Transpose", op.inputs[0], perm=op.const_ints(1, "perm"))


@MAPPINGS.register("Tile")
def _tile(op: TfOp) -> ir.Value:
    return op.emit("Tile", op.inputs[0], op.int64(1))


# --- slicing --------------------------------------------------------------------------------

@MAPPINGS.register("Slice")
def _slice(op: TfOp) -> ir.Value:
    begin_value, size_value = op.const(1), op.const(2)
    if begin_value is not None and size_value is not None:
        begin = [int(v) for v in np.asarray(begin_value).reshape(-1)]
        size = [int(v) for v in np.asarray(size_value).reshape(-1)]
        ends = [INT64_MAX if s == -1 else b + s for b, s in zip(begin, size)]
        return op.b_.slice(op.inputs[0], begin, ends, list(range(len(begin))))
    n = (op.shape(1) or [None])[0]
    if n is None:
        raise op.fail("a computed begin of unknown length")
    starts, sizes = op.int64(1), op.int64(2)
    stops = op.emit("Where", op.emit("Equal", sizes, op.b_.ints([-1])),
                    op.b_.ints([INT64_MAX]), op.emit("Add", starts, sizes))
    return op.emit("Slice", op.inputs[0], starts, stops, op.b_.ints(list(range(n))))


@MAPPINGS.register("StridedSlice")
def _strided_slice(op: TfOp) -> ir.Value:
    begin = op.const_ints(1, "begin")
    end = op.const_ints(2, "end")
    strides = op.const_ints(3, "strides") if len(op.inputs) > 3 else [1] * len(begin)
    if not len(begin) == len(end) == len(strides):
        raise op.bad("begin, end and strides differ in length")
    rank = op.rank(0)
    masks = {m: op.i(m, 0) for m in ("begin_mask", "end_mask", "ellipsis_mask",
                                     "new_axis_mask", "shrink_axis_mask")}
    bit = {m: (lambda j, v=v: bool(v >> j & 1)) for m, v in masks.items()}
    spans = sum(1 for j in range(len(begin)) if not bit["new_axis_mask"](j)
                and not bit["ellipsis_mask"](j))
    starts, ends, axes, steps = [], [], [], []
    shrink: list[int] = []
    out_tokens: list[int | str] = []  # "new" or an input axis kept in the output
    d = 0
    for j in range(len(begin)):
        if bit["ellipsis_mask"](j):
            for _ in range(rank - spans):
                out_tokens.append(d)
                d += 1
            continue
        if bit["new_axis_mask"](j):
            out_tokens.append("new")
            continue
        if d >= rank:
            raise op.bad(f"slices more dimensions than the input's {rank}")
        s = strides[j]
        if s == 0:
            raise op.bad("has a zero stride")
        if bit["shrink_axis_mask"](j):
            b = begin[j]
            starts.append(b)
            ends.append(b + 1 if b != -1 else INT64_MAX)
            axes.append(d)
            steps.append(1)
            shrink.append(d)
        else:
            b = (0 if s > 0 else INT64_MAX) if bit["begin_mask"](j) else begin[j]
            e = (INT64_MAX if s > 0 else INT64_MIN) if bit["end_mask"](j) else end[j]
            if not (b in (0, INT64_MIN) and e == INT64_MAX and s == 1):
                starts.append(b)
                ends.append(e)
                axes.append(d)
                steps.append(s)
            out_tokens.append(d)
        d += 1
    out_tokens.extend(range(d, rank))
    x = op.inputs[0]
    if axes:
        x = op.b_.slice(x, starts, ends, axes, steps if any(s != 1 for s in steps) else None)
    if shrink:
        x = op.b_.squeeze(x, shrink)
    new = [i for i, t in enumerate(out_tokens) if t == "new"]
    if new:
        x = op.b_.unsqueeze(x, new)
    if x is op.inputs[0]:
        x = op.emit("Identity", x)
    return x


# --- padding --------------------------------------------------------------------------------

def _paddings(op: TfOp) -> list[list[int]]:
    pads = op.const(1)
    if pads is None:
        raise op.fail("its paddings are computed at run time; only constants are supported")
    pads = np.asarray(pads).reshape(-1, 2)
    return [[int(a), int(b)] for a, b in pads]


def _run_time_pads(op: TfOp) -> ir.Value:
    """TF's ``[rank, 2]`` paddings computed at run time (``tf.image.pad_to_bounding_box``) as
    ONNX's pads: every begin, then every end (the transpose, flattened), in int64."""
    pairs = op.int64(1)
    return op.emit("Reshape", op.emit("Transpose", pairs, perm=[1, 0]),
                   op.b_.const(np.asarray([-1], np.int64), f"{op.name}/flat"))


@MAPPINGS.register("Pad", "PadV2", "MirrorPad")
def _pad(op: TfOp) -> ir.Value:
    if op.const(1) is None and (op.op != "MirrorPad" or op.s("mode") == "REFLECT"):
        mode = "reflect" if op.op == "MirrorPad" else "constant"
        value = op.inputs[2] if op.op == "PadV2" else None
        return op.emit("Pad", op.inputs[0], _run_time_pads(op), value, mode=mode)
    pads = _paddings(op)
    flat = [a for a, _ in pads] + [b for _, b in pads]
    x = op.inputs[0]
    if op.op == "MirrorPad":
        mode = op.s("mode")
        if mode == "REFLECT":
            return op.emit("Pad", x, op.b_.ints(flat), mode="reflect")
        if mode != "SYMMETRIC":
            raise op.bad(f"mode {mode!r} is not REFLECT or SYMMETRIC")
        # ONNX has no symmetric mode: mirror slices (the edge included) joined along each axis.
        for axis, (a, b) in enumerate(pads):
            parts = []
            if a:
                parts.append(op.b_.slice(x, [a - 1], [INT64_MIN], [axis], [-1]))
            parts.append(x)
            if b:
                parts.append(op.b_.slice(x, [-1], [-b - 1], [axis], [-1]))
            if len(parts) > 1:
                x = op.emit("Concat", *parts, axis=axis)
        return x
    value = op.inputs[2] if op.op == "PadV2" else None
    return op.emit("Pad", x, op.b_.ints(flat), value, mode="constant")


# --- gathering ------------------------------------------------------------------------------

@MAPPINGS.register("GatherV2")
def _gather(op: TfOp) -> ir.Value:
    axis = op.const_int(2, "axis") if len(op.inputs) > 2 else 0
    batch = op.i("batch_dims", 0)
    if batch == 0:
        return op.emit("Gather", op.inputs[0], op.inputs[1], axis=axis)
    return _batched_gather(op, axis, batch)


def _batched_gather(op: TfOp, axis: int, batch: int) -> ir.Value:
    """GatherV2 with batch_dims b: out[B.., M.., I.., R..] = params[B.., M.., idx[B.., I..],
    R..]. ONNX's GatherND batches only leading axes and puts the gathered ones right after
    them: move the gathered axis to b, GatherND, then move the index axes behind M."""
    r, ri = op.rank(0), op.rank(1)
    b = batch + ri if batch < 0 else batch
    a = op.axis(axis, r)
    if not 0 <= b <= a or b > ri:
        raise op.bad(f"batch_dims {batch} does not fit axis {axis} and indices of rank {ri}")
    perm1 = list(range(b)) + [a] + list(range(b, a)) + list(range(a + 1, r))
    params = op.b_.transpose(op.inputs[0], perm1)
    indices = op.b_.unsqueeze(op.int64(1), [-1])
    y = op.emit("GatherND", params, indices, batch_dims=b)
    ni, mid = ri - b, a - b
    perm2 = list(range(b)) + list(range(b + ni, b + ni + mid)) + list(range(b, b + ni)) + \
        list(range(b + ni + mid, b + ni + mid + r - a - 1))
    return op.b_.transpose(y, perm2)


@MAPPINGS.register("GatherNd")
def _gather_nd(op: TfOp) -> ir.Value:
    return op.emit("GatherND", op.inputs[0], op.int64(1))


@MAPPINGS.register("OneHot")
def _one_hot(op: TfOp) -> ir.Value:
    indices, _, on, off = op.inputs
    values = op.emit("Concat", op.b_.reshape(off, [1]), op.b_.reshape(on, [1]), axis=0)
    depth = op.b_.reshape(op.int64(1), [1])
    # onnxruntime implements OneHot for int64 indices (not int32); TF gives an all-off row
    # for an index outside [0, depth), ONNX counts negative ones from the end: mask those.
    indices = op.int64(0)
    valid = op.emit("GreaterOrEqual", indices, op.b_.const(np.asarray(0, np.int64)))
    indices = op.emit("Where", valid, indices, depth)
    return op.emit("OneHot", indices, depth, values, axis=op.i("axis", -1))


@MAPPINGS.register("Where")
def _where(op: TfOp) -> ir.Value:
    if len(op.inputs) != 1:
        raise op.bad(f"has {len(op.inputs)} inputs; the one-input Where lists true positions")
    # TF: [count, rank] int64 coordinates in row-major order; ONNX NonZero: [rank, count].
    return op.emit("Transpose", op.emit("NonZero", op.inputs[0]), perm=[1, 0])


@MAPPINGS.register("IdentityN")
def _identity_n(op: TfOp) -> list[ir.Value]:
    return [op.emit("Identity", x) for x in op.inputs]


# --- images ---------------------------------------------------------------------------------

def _resize_sizes(op: TfOp, x_nchw: ir.Value) -> ir.Value:
    # Gather, not Slice: its output length (2) is known to shape inference even when the
    # indices are not visible as data (formats.onnx checks with initializers as inputs).
    batch_channels = op.emit("Gather", op.emit("Shape", x_nchw), op.b_.ints([0, 1]), axis=0)
    return op.emit("Concat", batch_channels, op.int64(1), axis=0)


@MAPPINGS.register("ResizeBilinear", "ResizeNearestNeighbor")
def _resize(op: TfOp) -> ir.Value:
    if op.rank(0) != 4:
        raise op.bad("resizes a tensor that is not NHWC")
    align, half = op.b("align_corners"), op.b("half_pixel_centers")
    nearest = op.op == "ResizeNearestNeighbor"
    if align:
        mode = "align_corners"
    elif half:
        # TF's nearest picks floor((x + 0.5) * scale), which is ONNX's half_pixel coordinate
        # rounded half up (tf_half_pixel_for_nn says the same but is deprecated).
        mode = "half_pixel"
    else:
        mode = "asymmetric"
    extra = {"nearest_mode": "round_prefer_ceil" if align or half else "floor"} \
        if nearest else {}
    x = to_first(op, op.inputs[0], 4)
    dtype = op.dtype(0)
    if dtype != "float32":
        x = op.cast_to(x, "float32")
    y = op.emit("Resize", x, None, None, _resize_sizes(op, x),
                mode="nearest" if nearest else "linear",
                coordinate_transformation_mode=mode, **extra)
    if dtype != "float32":
        y = op.cast_to(y, dtype)
    return to_last(op, y, 4)


@MAPPINGS.register("DepthToSpace", "SpaceToDepth")
def _depth_space(op: TfOp) -> ir.Value:
    if op.s("data_format", "NHWC") != "NHWC":
        raise op.fail("only NHWC is supported")
    x = to_first(op, op.inputs[0], 4)
    attrs = {"mode": "DCR"} if op.op == "DepthToSpace" else {}
    y = op.emit(op.op, x, blocksize=op.i("block_size"), **attrs)
    return to_last(op, y, 4)
