"""ONNX -> TF.js: shapes, indexing, padding and the like (layout-agnostic ops)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ...errors import FormatError
from ...models.tfjs_graph import a_bool, a_int, a_list, a_str, a_type
from .core import (
    CheckFn,
    Ctx,
    all_known,
    attr,
    concat,
    onnx_enum_dtype,
    rule,
    strided_attrs,
    unsupported,
)
from .math_ops import binary, unary

INT32_MAX = 2**31 - 1


def _const_input(ctx: Ctx, node: ir.Node, index: int) -> np.ndarray | None:
    return ctx.value(ctx.opt(node, index))


def _const_required(ctx: Ctx, node: ir.Node, index: int) -> np.ndarray:
    """Input ``index``, required and constant (the rule's check refused a run-time one)."""
    value = ctx.value(ctx.inp(node, index))
    if value is None:
        raise unsupported(node, f"input {index} is computed at run time")
    return value


def _needs_const(*indices: int, what: str = "input") -> CheckFn:
    def check(ctx: Ctx, node: ir.Node) -> str | None:
        for i in indices:
            v = ctx.opt(node, i)
            if v is not None and ctx.value(v) is None:
                return f"{what} {v.name!r} is computed at run time"
        return None
    return check


def _rank_check(ctx: Ctx, node: ir.Node) -> str | None:
    return None if ctx.rank(node.inputs[0]) is not None else "the input's rank is unknown"


def _both(*checks: CheckFn) -> CheckFn:
    def check(ctx: Ctx, node: ir.Node) -> str | None:
        for c in checks:
            why = c(ctx, node)
            if why:
                return why
        return None
    return check


# --- reshaping ----------------------------------------------------------------------------------

def _reshape_check(ctx: Ctx, node: ir.Node) -> str | None:
    s = ctx.inp(node, 1)
    if ctx.value(s) is None and not attr(node, "allowzero", 0) and (
            (ctx.shape(s) or [None])[0] is None or ctx.rank(node.inputs[0]) is None):
        return "a run-time shape of unknown length (its 0s would copy input dimensions)"
    return None


@rule("Reshape", check=_reshape_check)
def reshape(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Reshape -> TF Reshape; without allowzero a 0 in the shape copies the input's
    dimension (for a run-time shape, by a SelectV2 against the input's shape)."""
    v, s = ctx.inp(node, 0), ctx.inp(node, 1)
    x = ctx.x(v)
    shape = ctx.value(s)
    if shape is None:
        target = ctx.x(s)
        if not attr(node, "allowzero", 0):  # ONNX: a 0 copies the input's dimension
            n, rank = ctx.need_dim(s, 0, node), ctx.need_rank(v, node)
            in_dims = ctx.shape_of(x)
            if n > rank:
                in_dims = concat(ctx, [in_dims, ctx.i32([0] * (n - rank), "zeros")], 0)
            elif n < rank:
                in_dims = ctx.slice1(in_dims, 0, n)
            target = ctx.op("SelectV2", [binary(ctx, "Equal", target, ctx.i32(0)), in_dims,
                                         target])
        return [ctx.op("Reshape", [x, target])]
    dims = [int(d) for d in shape.reshape(-1)]
    if 0 in dims and not attr(node, "allowzero", 0):
        in_shape = ctx.shape(v) or []
        parts: list[int | str] = []
        for i, d in enumerate(dims):
            known_dim = in_shape[i] if i < len(in_shape) else None
            if d != 0:
                parts.append(d)
            elif known_dim is not None:
                parts.append(known_dim)
            else:
                parts.append(ctx.dim_of(x, i))
        return [ctx.op("Reshape", [x, ctx.shape_vector(parts)])]
    return [ctx.op("Reshape", [x, ctx.i32(dims, "shape")])]


def static_reshape_target(ctx: Ctx, x: str, shape: list[int | None]) -> str:
    """Shape tensor for a reshape to ``shape``: one unknown becomes -1, more are computed."""
    unknown = [i for i, d in enumerate(shape) if d is None]
    if len(unknown) <= 1:
        return ctx.i32([-1 if d is None else d for d in shape], "shape")
    return ctx.shape_vector([d if d is not None else ctx.dim_of(x, i)
                             for i, d in enumerate(shape)])


@rule("Flatten", check=_rank_check)
def flatten(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Flatten -> TF Reshape to 2-D; when neither side of ``axis`` has a static size, the
    leading one is computed with Prod."""
    v = ctx.inp(node, 0)
    rank = ctx.need_rank(v, node)
    axis = attr(node, "axis", 1)
    axis = axis + rank if axis < 0 else axis  # ONNX: axis in [-rank, rank]
    shape = ctx.need_shape(v, node)
    x = ctx.x(v)
    head, tail = all_known(shape[:axis]), all_known(shape[axis:])
    a = int(np.prod(head)) if head is not None else None
    b = int(np.prod(tail)) if tail is not None else None
    if a is not None or b is not None:
        return [ctx.op("Reshape", [x, ctx.i32([-1 if a is None else a,
                                               -1 if b is None else b], "shape")])]
    prod = ctx.op("Prod", [ctx.slice1(ctx.shape_of(x), 0, axis), ctx.i32([0], "axes")],
                  {"keep_dims": a_bool(True)})
    return [ctx.op("Reshape", [x, concat(ctx, [prod, ctx.i32([-1])], 0)])]


def _axes(ctx: Ctx, node: ir.Node) -> list[int] | None:
    if "axes" in node.attributes:
        return list(attr(node, "axes"))
    value = _const_input(ctx, node, 1)
    return None if value is None else [int(a) for a in value.reshape(-1)]


@rule("Squeeze", check=_needs_const(1, what="axes"))
def squeeze(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Squeeze -> TF Squeeze with constant axes (an attribute, or input 1 since opset 13);
    without axes, the dimensions known to be 1 (tfjs decides when the shape is not static)."""
    xv = ctx.inp(node, 0)
    x = ctx.x(xv)
    axes = _axes(ctx, node)
    rank = ctx.rank(xv)
    if not axes:
        if rank is None:
            return [ctx.op("Squeeze", [x])]  # tfjs: every dimension of size 1
        shape = all_known(ctx.need_shape(xv, node))
        if shape is None:
            return [ctx.op("Squeeze", [x])]
        axes = [i for i, d in enumerate(shape) if d == 1]
    if rank is not None:
        axes = sorted(a % rank for a in axes)
    return [ctx.op("Squeeze", [x], {"squeeze_dims": a_list("i", axes)})]


@rule("Unsqueeze", check=_needs_const(1, what="axes"))
def unsqueeze(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Unsqueeze -> one TF ExpandDims per axis, in increasing order; negative axes need
    the input's rank."""
    xv = ctx.inp(node, 0)
    x = ctx.x(xv)
    axes = _axes(ctx, node)
    rank = ctx.rank(xv)
    if axes is None:
        raise FormatError(f"Unsqueeze node {node.name!r}: no axes (an attribute before opset "
                          "13, input 1 since)", layer=node.name)
    if any(a < 0 for a in axes):
        if rank is None:
            raise unsupported(node, "negative axes on an input of unknown rank")
        axes = [a % (rank + len(axes)) for a in axes]
    for a in sorted(axes):
        x = ctx.op("ExpandDims", [x, ctx.i32(a, "axis")])
    return [x]


def transpose_ref(ctx: Ctx, x: str, perm: list[int], shape: list[int | None] | None) -> str:
    """Transpose; a Reshape when only dimensions of size 1 move (no data moves then)."""
    if perm == list(range(len(perm))):
        return ctx.op("Identity", [x])
    if shape is not None and len(shape) == len(perm):
        moved = [shape[p] for p in perm]
        kept = [i for i in perm if shape[i] != 1]
        if kept == sorted(kept) and moved.count(None) <= 1:
            return ctx.op("Reshape", [x, ctx.i32([-1 if d is None else d for d in moved],
                                                 "shape")])
    return ctx.op("Transpose", [x, ctx.i32(perm, "perm")])


@rule("Transpose")
def transpose(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Transpose -> TF Transpose (axes reversed without ``perm``), or a Reshape when only
    dimensions of size 1 move."""
    v = ctx.inp(node, 0)
    perm = attr(node, "perm")
    if perm is None:
        rank = ctx.need_rank(v, node)
        perm = list(reversed(range(rank)))
    return [transpose_ref(ctx, ctx.x(v), list(perm), ctx.shape(v))]


@rule("Concat")
def concat_op(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Concat -> TF ConcatV2 (Identity for one input); a negative axis is made
    non-negative where some input's rank is known."""
    refs = [ctx.x(v) for v in node.inputs if v is not None]
    axis = attr(node, "axis")
    rank = next((ctx.rank(v) for v in node.inputs if ctx.rank(v) is not None), None)
    if axis < 0 and rank is not None:
        axis %= rank
    if len(refs) == 1:
        return [ctx.op("Identity", refs)]
    return [concat(ctx, refs, axis)]


@rule("Split", check=_rank_check)
def split(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Split -> TF SplitV, or Split into equal parts when neither the sizes nor the
    dimension are known; run-time sizes go to SplitV as a tensor."""
    v = ctx.inp(node, 0)
    rank = ctx.need_rank(v, node)
    axis = attr(node, "axis", 0) % rank
    n = len(node.outputs)
    sizes = attr(node, "split")
    if sizes is None:
        value = _const_input(ctx, node, 1)
        sizes = None if value is None else [int(s) for s in value.reshape(-1)]
    dim = ctx.need_shape(v, node)[axis]
    run_time = sizes is None and len(node.inputs) > 1 and node.inputs[1] is not None
    if sizes is None and dim is not None and not run_time:
        chunk = -(-dim // n)
        sizes = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
    x = ctx.x(v)
    if run_time:
        # run-time sizes: SplitV reads them as a tensor (the number of outputs is static)
        outs = ctx.op_n("SplitV", [x, ctx.x(ctx.inp(node, 1)), ctx.i32(axis, "axis")], None, n)
    elif sizes is None:
        outs = ctx.op_n("Split", [ctx.i32(axis, "axis"), x], {"num_split": a_int(n)}, n)
    else:
        outs = ctx.op_n("SplitV", [x, ctx.i32(sizes, "sizes"), ctx.i32(axis, "axis")], None, n)
    return outs


# --- slicing and indexing -----------------------------------------------------------------------

def _slice_check(ctx: Ctx, node: ir.Node) -> str | None:
    if ctx.rank(node.inputs[0]) is None:
        return "the input's rank is unknown"
    if "starts" in node.attributes:
        return None
    # starts and ends may be computed at run time (position_ids[:, :seq]): StridedSlice reads
    # them as tensors; how many there are, the axes and the steps' signs must be known here
    for i in (1, 2):
        v = ctx.inp(node, i)
        if ctx.value(v) is None and (ctx.shape(v) is None or None in (ctx.shape(v) or [])):
            return f"slice parameter {v.name!r} is computed at run time and its length is unknown"
    return _needs_const(3, 4, what="slice parameter")(ctx, node)


@rule("Slice", check=_slice_check)
def slice_op(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Slice -> TF StridedSlice (starts/ends attributes before opset 10, constant inputs
    since); ONNX's clamping is applied where a dimension is known, masks mark open ends."""
    v = ctx.inp(node, 0)
    rank = ctx.need_rank(v, node)
    shape = ctx.need_shape(v, node)
    if "starts" in node.attributes:  # opset < 10
        starts, ends = attr(node, "starts"), attr(node, "ends")
        axes, steps = attr(node, "axes", list(range(len(starts)))), [1] * len(starts)
    else:
        if ctx.value(ctx.inp(node, 1)) is None or ctx.value(ctx.inp(node, 2)) is None:
            return [_run_time_slice(ctx, node)]
        starts = [int(s) for s in _const_required(ctx, node, 1).reshape(-1)]
        ends = [int(e) for e in _const_required(ctx, node, 2).reshape(-1)]
        a = _const_input(ctx, node, 3)
        axes = list(range(len(starts))) if a is None else [int(x) for x in a.reshape(-1)]
        s = _const_input(ctx, node, 4)
        steps = [1] * len(starts) if s is None else [int(x) for x in s.reshape(-1)]
    begin, end, stride = [0] * rank, [0] * rank, [1] * rank
    begin_mask = end_mask = (1 << rank) - 1
    for start, stop, axis, step in zip(starts, ends, axes, steps):
        axis %= rank
        bit = 1 << axis
        stride[axis] = step
        d = shape[axis]
        if d is not None:  # ONNX's clamping rules, exactly
            start = start + d if start < 0 else start
            stop = stop + d if stop < 0 else stop
            # bounds that cross give ONNX an empty slice; tfjs fails on them ("Negative size
            # values"), so they are made to meet
            if step > 0:
                start, stop = min(max(start, 0), d), min(max(stop, 0), d)
                stop = max(stop, start)
            else:
                start, stop = min(max(start, 0), d - 1), min(max(stop, -1), d - 1)
                start = max(start, stop)
            begin[axis] = start
            begin_mask &= ~bit
            if stop == -1 and step < 0:
                continue  # through index 0: only the end mask says so
            end[axis] = stop
            end_mask &= ~bit
            continue
        if (step > 0 and start > -INT32_MAX) or (step < 0 and start < INT32_MAX):
            begin[axis] = max(min(start, INT32_MAX), -INT32_MAX)
            begin_mask &= ~bit
        if (step > 0 and stop < INT32_MAX) or (step < 0 and stop > -INT32_MAX):
            end[axis] = max(min(stop, INT32_MAX), -INT32_MAX)
            end_mask &= ~bit
    return [ctx.op("StridedSlice", [ctx.x(v), ctx.i32(begin, "begin"), ctx.i32(end, "end"),
                                    ctx.i32(stride, "strides")],
                   strided_attrs(begin_mask=begin_mask, end_mask=end_mask))]


def _run_time_slice(ctx: Ctx, node: ir.Node) -> str:
    """ONNX Slice whose starts or ends are computed at run time -> one StridedSlice with run-time
    begin/end vectors. TF's StridedSlice (tfjs's ``sliceInfo``) normalises exactly as ONNX does:
    a negative index counts from the end, then it is clamped to [0, dim] for a positive step
    and to [-1, dim - 1] for a negative one; so the values go in as they are. Constant entries
    beyond int32 become masks (an open end); unsliced axes are masked."""
    v = ctx.inp(node, 0)
    rank = ctx.need_rank(v, node)
    sv, ev = ctx.inp(node, 1), ctx.inp(node, 2)
    known_starts = ctx.value(sv)
    count = ctx.need_dim(sv, 0, node) if known_starts is None else known_starts.size
    a = _const_input(ctx, node, 3)
    axes = list(range(count)) if a is None else [int(x) % rank for x in a.reshape(-1)]
    st = _const_input(ctx, node, 4)
    steps = [1] * count if st is None else [int(x) for x in st.reshape(-1)]
    begin: list[int | str] = [0] * rank
    end: list[int | str] = [0] * rank
    stride = [1] * rank
    begin_mask = end_mask = (1 << rank) - 1
    for i, (axis, step) in enumerate(zip(axes, steps)):
        bit = 1 << axis
        stride[axis] = step
        for values, out, is_begin in ((sv, begin, True), (ev, end, False)):
            const = ctx.value(values)
            if const is None:
                out[axis] = ctx.slice1(_as_int32(ctx, values), i, i + 1)
            else:
                x = int(const.reshape(-1)[i])
                # (an index beyond int32 only ever means "from/through the far end")
                forward = (step > 0) == is_begin
                if (x <= -INT32_MAX) if forward else (x >= INT32_MAX):
                    continue
                out[axis] = max(min(x, INT32_MAX), -INT32_MAX)
            if is_begin:
                begin_mask &= ~bit
            else:
                end_mask &= ~bit
        if not (begin_mask | end_mask) & bit and not (step > 0 and begin[axis] == 0) and \
                any(isinstance(p, str) for p in (begin[axis], end[axis])):
            begin[axis], end[axis] = _ordered(ctx, v, axis, step, begin[axis], end[axis])
    return ctx.op("StridedSlice", [ctx.x(v), ctx.shape_vector(begin), ctx.shape_vector(end),
                                   ctx.i32(stride, "strides")],
                  strided_attrs(begin_mask=begin_mask, end_mask=end_mask))


def _ordered(ctx: Ctx, v: ir.Value, axis: int, step: int, begin: int | str,
             end: int | str) -> tuple[str, str]:
    """Run-time bounds that never cross: tfjs's simple-slice path fails on an end before the
    begin ("Negative size values") where ONNX gives an empty slice. Both are normalised as ONNX
    does (negative + dim, clamped to [0, dim], or [0, dim - 1] and [-1, dim - 1] for a negative
    step); then the end is raised to the begin (positive step), or the begin to the end
    (negative step): the same elements, none, where they crossed."""
    d = ctx.need_shape(v, ctx.node)[axis] if ctx.node is not None else None
    dim = ctx.i32([d], "dim") if d is not None else ctx.dim_of(ctx.x(v), axis)

    def norm(x: int | str, lo: int, hi_offset: int) -> str:
        ref = x if isinstance(x, str) else ctx.i32([x], "bound")
        wrapped = ctx.op("SelectV2", [binary(ctx, "Less", ref, ctx.i32(0)),
                                      binary(ctx, "AddV2", ref, dim), ref])
        high = binary(ctx, "AddV2", dim, ctx.i32(hi_offset)) if hi_offset else dim
        return binary(ctx, "Minimum", binary(ctx, "Maximum", wrapped, ctx.i32(lo)), high)

    if step > 0:
        b = norm(begin, 0, 0)
        return b, binary(ctx, "Maximum", norm(end, 0, 0), b)
    # (the end stays as given: a normalised -1 would read as dim - 1 again)
    e = norm(end, -1, -1)
    end_ref = end if isinstance(end, str) else ctx.i32([end], "bound")
    return binary(ctx, "Maximum", norm(begin, 0, -1), e), end_ref


def _as_int32(ctx: Ctx, v: ir.Value) -> str:
    """A run-time integer tensor as int32 (tfjs holds int64 as int32 already)."""
    ref = ctx.x(v)
    return ref if ctx.tf_dtype(v) == "int32" else ctx.op("Cast", [ref],
                                                         {"DstT": a_type("int32")})


def _nonneg_indices(ctx: Ctx, iv: ir.Value, data: ir.Value, axis: int, x: str) -> str:
    """ONNX indices may be negative (from the end); tfjs's gather wants 0..n-1."""
    value = ctx.value(iv)
    dim = (ctx.shape(data) or [None] * (axis + 1))[axis]
    if value is not None:
        if not (value < 0).any():
            return ctx.x(iv)
        if dim is not None:
            return ctx.const(np.where(value < 0, value + dim, value).astype(np.int32), "indices")
    d = ctx.i32(dim) if dim is not None else ctx.op(
        "Squeeze", [ctx.dim_of(x, axis)], {"squeeze_dims": a_list("i", [0])})
    idx = ctx.x(iv)
    return binary(ctx, "FloorMod", idx, d)


@rule("Gather", check=_rank_check)
def gather(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Gather -> TF GatherV2; negative indices are moved into 0..n-1 first (folded into a
    constant where possible, else by FloorMod)."""
    v, iv = ctx.inputs(node, 2)
    rank = ctx.need_rank(v, node)
    axis = attr(node, "axis", 0) % rank
    x = ctx.x(v)
    idx = _nonneg_indices(ctx, iv, v, axis, x)
    return [ctx.op("GatherV2", [x, idx, ctx.i32(axis, "axis")], {"batch_dims": a_int(0)})]


def _static_indices_check(ctx: Ctx, node: ir.Node) -> str | None:
    s = ctx.shape(node.inputs[1])
    if s is None or ctx.shape(node.inputs[0]) is None:
        return "the rank of the data or the indices is unknown"
    return None


def _element_coords(ctx: Ctx, node: ir.Node, data: ir.Value, iv: ir.Value) -> str:
    """[..., rank] coordinates for GatherNd/TensorScatterUpdate from per-element indices: the
    indices on ``axis``, each other axis's position elsewhere (constant grids for a static
    indices shape; Range broadcast to the indices' run-time shape otherwise)."""
    rank = ctx.need_rank(data, node)
    axis = attr(node, "axis", 0) % rank
    ishape = ctx.need_shape(iv, node)
    x = ctx.x(data)
    idx = _nonneg_indices(ctx, iv, data, axis, x)
    static = all_known(ishape)
    if static is not None:
        grids = np.indices(static, dtype=np.int32)
        parts = [idx if d == axis else ctx.const(grids[d], "grid") for d in range(rank)]
    else:
        full = ctx.shape_of(ctx.x(iv))
        parts = []
        for d in range(rank):
            if d == axis:
                parts.append(idx)
                continue
            n = ishape[d]
            limit = ctx.i32(n, "limit") if n is not None else ctx.op(
                "Squeeze", [ctx.dim_of(ctx.x(iv), d)], {"squeeze_dims": a_list("i", [0])})
            line = ctx.op("Range", [ctx.i32(0), limit, ctx.i32(1)], {"Tidx": a_type("int32")})
            along = [1] * rank
            along[d] = -1
            line = ctx.op("Reshape", [line, ctx.i32(along, "shape")])
            parts.append(ctx.op("BroadcastTo", [line, full]))
    return ctx.op("Pack", parts, {"axis": a_int(rank), "N": a_int(rank)})


@rule("GatherElements", check=_static_indices_check)
def gather_elements(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX GatherElements -> TF GatherNd on per-element coordinates (built at run time when
    the indices' shape is not static)."""
    data, iv = ctx.inputs(node, 2)
    coords = _element_coords(ctx, node, data, iv)
    return [ctx.op("GatherNd", [ctx.x(data), coords])]


@rule("ScatterElements", check=lambda ctx, n: _static_indices_check(ctx, n) or (
    None if attr(n, "reduction", "none") == "none" else f"reduction={attr(n, 'reduction')!r}"))
def scatter_elements(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX ScatterElements (reduction none) -> TF TensorScatterUpdate on per-element
    coordinates (built at run time when the indices' shape is not static)."""
    data, iv, upd = ctx.inputs(node, 3)
    coords = _element_coords(ctx, node, data, iv)
    return [ctx.op("TensorScatterUpdate", [ctx.x(data), coords, ctx.x(upd)])]


@rule("GatherND", check=lambda ctx, n: None if attr(n, "batch_dims", 0) == 0
      else "batch_dims > 0")
def gather_nd(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX GatherND (batch_dims 0) -> TF GatherNd."""
    return [ctx.op("GatherNd", [ctx.x(ctx.inp(node, 0)), ctx.x(ctx.inp(node, 1))])]


@rule("ScatterND", check=lambda ctx, n: None if attr(n, "reduction", "none") == "none"
      else f"reduction={attr(n, 'reduction')!r}")
def scatter_nd(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX ScatterND (reduction none) -> TF TensorScatterUpdate."""
    return [ctx.op("TensorScatterUpdate",
                   [ctx.x(ctx.inp(node, i)) for i in range(len(node.inputs))])]


# --- padding, tiling, broadcasting --------------------------------------------------------------

def _pad_check(ctx: Ctx, node: ir.Node) -> str | None:
    mode = attr(node, "mode", "constant")
    if mode not in ("constant", "reflect", "edge", "wrap"):
        return f"mode={mode!r}"
    if ctx.rank(node.inputs[0]) is None:
        return "the input's rank is unknown"
    if "pads" not in node.attributes:
        pads = ctx.inp(node, 1)
        run_time = ctx.value(pads) is None
        if run_time and mode not in ("constant", "reflect"):
            return f"mode={mode!r} with pads computed at run time"
        if run_time and (ctx.shape(pads) is None or None in (ctx.shape(pads) or [])):
            return f"pads {pads.name!r} are computed at run time and their count is unknown"
        why = _needs_const(3, what="axes")(ctx, node)
        if why:
            return why
    if mode in ("edge", "wrap") and None in ctx.need_shape(ctx.inp(node, 0), node):
        return f"mode={mode!r} on a tensor with run-time dimensions"
    return None


@rule("Pad", check=_pad_check)
def pad(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Pad -> TF PadV2 (constant), MirrorPad (reflect), or for edge/wrap one GatherV2 of
    clamped or wrapped indices per padded axis; negative pads crop with a StridedSlice. Pads
    computed at run time (constant, reflect) go to ``_run_time_pad``."""
    v = ctx.inp(node, 0)
    rank = ctx.need_rank(v, node)
    mode = attr(node, "mode", "constant")
    if "pads" in node.attributes:
        pads = np.asarray(attr(node, "pads"), np.int64)
        value = attr(node, "value", 0.0)
        value_ref = ctx.scalar(value, ctx.tf_dtype(v))
    else:
        if ctx.value(ctx.inp(node, 1)) is None:
            return [_run_time_pad(ctx, node, v, rank, mode)]
        pads = _const_required(ctx, node, 1).reshape(-1).astype(np.int64)
        value_ref = _pad_value(ctx, node, v)
    axes_value = _const_input(ctx, node, 3)
    axes = list(range(rank)) if axes_value is None else [int(a) % rank
                                                        for a in axes_value.reshape(-1)]
    if len(pads) != 2 * len(axes):
        raise FormatError(f"Pad node {node.name!r}: {len(pads)} pads for {len(axes)} axes "
                          f"(ONNX wants two per axis)")
    full = np.zeros((rank, 2), np.int64)
    for i, a in enumerate(axes):
        full[a] = (pads[i], pads[i + len(axes)])
    x = ctx.x(v)
    grow, crop = np.maximum(full, 0), np.minimum(full, 0)
    if mode == "constant":
        y = ctx.op("PadV2", [x, ctx.i32(grow, "paddings"), value_ref])
    elif mode == "reflect":
        y = ctx.op("MirrorPad", [x, ctx.i32(grow, "paddings")], {"mode": a_str("REFLECT")})
    else:  # edge / wrap: gather with clamped (or wrapped) indices, axis by axis
        shape = ctx.static_shape(v, node)
        y = x
        for a in range(rank):
            if not grow[a].any():
                continue
            idx = np.arange(-grow[a, 0], shape[a] + grow[a, 1])
            idx = np.clip(idx, 0, shape[a] - 1) if mode == "edge" else idx % shape[a]
            y = ctx.op("GatherV2", [y, ctx.i32(idx, "indices"), ctx.i32(a, "axis")],
                       {"batch_dims": a_int(0)})
    if crop.any():
        begin = [-int(c[0]) for c in crop]
        end = [int(c[1]) if c[1] else 0 for c in crop]
        mask = sum(1 << a for a in range(rank) if crop[a, 1] == 0)
        y = ctx.op("StridedSlice", [y, ctx.i32(begin, "begin"), ctx.i32(end, "end"),
                                    ctx.i32([1] * rank, "strides")],
                   strided_attrs(end_mask=mask))
    return [y]


def _run_time_pad(ctx: Ctx, node: ir.Node, v: ir.Value, rank: int, mode: str) -> str:
    """Pad with pads computed at run time (SAME padding of a dynamic size, padding to a
    multiple of a window): tfjs's PadV2 and MirrorPad read the paddings tensor when they run.
    The [rank, 2] paddings are built from ONNX's [begins..., ends...] (0 for axes not
    listed); negative pads crop, so the paddings are clamped at 0 and a StridedSlice removes
    what the negative ones take away (a no-op slice when none is)."""
    pads = ctx.x(ctx.inp(node, 1))
    count = ctx.need_dim(ctx.inp(node, 1), 0, node) // 2
    axes_value = _const_input(ctx, node, 3)
    axes = list(range(count)) if axes_value is None else [int(a) % rank
                                                          for a in axes_value.reshape(-1)]
    sides = []
    for offset in (0, count):
        parts: list[int | str] = [0] * rank
        for i, a in enumerate(axes):
            parts[a] = ctx.slice1(pads, offset + i, offset + i + 1)
        sides.append(ctx.shape_vector(parts))
    zero = ctx.i32(0)
    paddings = ctx.op("Pack", sides, {"axis": a_int(1), "N": a_int(2)})
    grow = binary(ctx, "Maximum", paddings, zero)
    x = ctx.x(v)
    if mode == "constant":
        y = ctx.op("PadV2", [x, grow, _pad_value(ctx, node, v)])
    else:
        y = ctx.op("MirrorPad", [x, grow], {"mode": a_str("REFLECT")})
    crop_begin = binary(ctx, "Maximum", unary(ctx, "Neg", sides[0]), zero)
    crop_end = binary(ctx, "Maximum", unary(ctx, "Neg", sides[1]), zero)
    end = binary(ctx, "Sub", ctx.shape_of(y), crop_end)
    return ctx.op("StridedSlice", [y, crop_begin, end, ctx.i32([1] * rank, "strides")],
                  strided_attrs())


def _pad_value(ctx: Ctx, node: ir.Node, v: ir.Value) -> str:
    """The Pad's constant value, input 2 (0 when omitted), as a 0-d tensor of ``v``'s type."""
    cv = ctx.opt(node, 2)
    if cv is None:
        return ctx.scalar(0, ctx.tf_dtype(v))
    cval = ctx.value(cv)
    if cval is not None:
        return ctx.scalar(cval.reshape(-1)[0] if cval.size else 0, ctx.tf_dtype(v))
    ref = ctx.x(cv)
    if ctx.rank(cv):
        ref = ctx.op("Reshape", [ref, ctx.i32([], "shape")])
    return ref


@rule("Expand")
def expand(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Expand -> TF BroadcastTo (Identity when nothing grows); a run-time shape is first
    broadcast with the input's (BroadcastArgs), since ONNX broadcasts both ways."""
    v, s = ctx.inputs(node, 2)
    x = ctx.x(v)
    target = ctx.value(s)
    shape = ctx.shape(v)
    static = None if shape is None else all_known(shape)
    if target is not None and static is not None:
        out = list(np.broadcast_shapes(tuple(static), tuple(int(d) for d in target.reshape(-1))))
        if out == static:
            return [ctx.op("Identity", [x])]
        return [ctx.op("BroadcastTo", [x, ctx.i32(out, "shape")])]
    # ONNX broadcasts both ways (a 1 in the shape keeps x's dimension); BroadcastTo only one.
    full = ctx.op("BroadcastArgs", [ctx.shape_of(x), ctx.x(s)])
    return [ctx.op("BroadcastTo", [x, full])]


@rule("ConstantOfShape")
def constant_of_shape(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX ConstantOfShape -> TF Fill of the ``value`` element (0 without one), in the
    output's dtype (float32 when unknown)."""
    value = attr(node, "value")
    value = np.zeros(1, np.float32) if value is None else value.reshape(-1)
    dtype = ctx.tf_dtype(node.outputs[0]) if node.outputs[0].dtype is not None else \
        "float32"
    return [ctx.op("Fill", [ctx.x(ctx.inp(node, 0)), ctx.scalar(value[0], dtype)],
                   {"T": a_type(dtype)})]


@rule("Range")
def range_op(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Range -> TF Range; start, limit and delta that have a rank are reshaped to
    scalars."""
    dtype = ctx.tf_dtype(node.inputs[0])
    refs = []
    for i in range(len(node.inputs)):
        v = ctx.inp(node, i)
        r = ctx.x(v)
        if ctx.rank(v):  # tfjs reads each as a number; a [1] tensor works too
            r = ctx.op("Reshape", [r, ctx.i32([], "shape")])
        refs.append(r)
    return [ctx.op("Range", refs, {"Tidx": a_type(dtype)})]


@rule("Shape")
def shape_op(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Shape -> TF Shape, sliced to [start, end) when either is given."""
    x = ctx.x(ctx.inp(node, 0))
    s = ctx.op("Shape", [x])
    start, end = attr(node, "start", 0), attr(node, "end")
    if start == 0 and end is None:
        return [s]
    rank = ctx.rank(node.inputs[0])
    if rank is not None:
        start = max(0, min(rank, start + rank if start < 0 else start))
        end = rank if end is None else max(0, min(rank, end + rank if end < 0 else end))
        return [ctx.slice1(s, start, end)]
    return [ctx.slice1(s, start, end)]


@rule("NonZero")
def nonzero(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX NonZero -> TF Where, transposed to ONNX's [rank, n] layout."""
    coords = ctx.op("Where", [ctx.x(ctx.inp(node, 0))])  # [n, rank]; ONNX wants [rank, n]
    return [ctx.op("Transpose", [coords, ctx.i32([1, 0], "perm")])]


@rule("OneHot", check=_rank_check)
def one_hot(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX OneHot -> TF OneHot (values are [off, on]; negative indices count from the end of
    depth); the new axis is transposed into place when it is not the last."""
    iv, dv, vv = ctx.inputs(node, 3)
    rank = ctx.need_rank(iv, node) + 1
    axis = attr(node, "axis", -1) % rank
    idx = ctx.x(iv)
    if ctx.tf_dtype(iv) != "int32":
        idx = ctx.op("Cast", [idx], {"DstT": a_type("int32")})
    depth = ctx.x(dv)
    if ctx.tf_dtype(dv) != "int32":
        depth = ctx.op("Cast", [depth], {"DstT": a_type("int32")})
    if ctx.rank(dv):
        depth = ctx.op("Reshape", [depth, ctx.i32([], "shape")])
    # ONNX: negative indices count from the end of depth.
    idx = ctx.op("SelectV2", [binary(ctx, "Less", idx, ctx.i32(0)),
                              binary(ctx, "AddV2", idx, depth), idx])
    values = ctx.x(vv)
    dtype = ctx.tf_dtype(vv)
    off = ctx.slice1(values, 0, 1)
    on = ctx.slice1(values, 1, 2)
    y = ctx.op("OneHot", [idx, depth, on, off], {"T": a_type(dtype)})
    if axis != rank - 1:
        perm = list(range(axis)) + [rank - 1] + list(range(axis, rank - 1))
        y = ctx.op("Transpose", [y, ctx.i32(perm, "perm")])
    return [y]


@rule("TopK", check=_rank_check)
def topk(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX TopK -> TF TopKV2, which works on the last axis (another axis is transposed there
    and back); largest=0 negates the input and the values."""
    v = ctx.inp(node, 0)
    rank = ctx.need_rank(v, node)
    axis = attr(node, "axis", -1) % rank
    x = ctx.x(v)
    if axis != rank - 1:
        perm = [d for d in range(rank) if d != axis] + [axis]
        x = ctx.op("Transpose", [x, ctx.i32(perm, "perm")])
    largest = attr(node, "largest", 1)
    if not largest:
        x = unary(ctx, "Neg", x)
    k = ctx.x(ctx.inp(node, 1))
    if ctx.rank(node.inputs[1]):
        k = ctx.op("Reshape", [k, ctx.i32([], "shape")])
    values, indices = ctx.op_n("TopKV2", [x, k], {"sorted": a_bool(True)}, 2)
    if not largest:
        values = unary(ctx, "Neg", values)
    if axis != rank - 1:
        inverse = [int(i) for i in np.argsort(perm)]
        values = ctx.op("Transpose", [values, ctx.i32(inverse, "perm")])
        indices = ctx.op("Transpose", [indices, ctx.i32(inverse, "perm")])
    return [values, indices]


# --- misc ---------------------------------------------------------------------------------------

def _dropout_check(ctx: Ctx, node: ir.Node) -> str | None:
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        training = ctx.value(node.inputs[2])
        if training is None or bool(training.reshape(-1)[0]):
            return "training_mode is (or may be) true"
    return None


@rule("Dropout", check=_dropout_check)
def dropout(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Dropout (inference only) -> TF Identity, plus an all-true mask when the node has a
    second output."""
    x = ctx.x(ctx.inp(node, 0))
    outs = [ctx.op("Identity", [x])]
    if len(node.outputs) > 1:
        outs.append(ctx.op("Fill", [ctx.shape_of(x), ctx.scalar(True, "bool")],
                           {"T": a_type("bool")}))
    return outs


@rule("CastLike")
def cast_like(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX CastLike -> TF Cast to the dtype tfjs holds the second input as."""
    return [ctx.op("Cast", [ctx.x(ctx.inp(node, 0))],
                   {"DstT": a_type(ctx.tf_dtype(node.inputs[1]))})]


@rule("Cast", replace=True)
def cast(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Cast -> TF Cast to the dtype tfjs holds ``to`` as; casts from or to strings are
    refused."""
    to = onnx_enum_dtype(attr(node, "to"))
    if to == "string" or ctx.tf_dtype(node.inputs[0]) == "string":
        raise unsupported(node, "casts from or to strings")
    return [ctx.op("Cast", [ctx.x(ctx.inp(node, 0))], {"DstT": a_type(to)})]


def _static_shape_check(ctx: Ctx, node: ir.Node) -> str | None:
    s = ctx.shape(node.inputs[0])
    return None if s is not None and None not in s else "the input's shape is not static"


@rule("Trilu", check=_static_shape_check)
def trilu(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Trilu -> TF SelectV2 with a constant triangle mask (static shape); a run-time k is
    compared with a constant j - i grid instead."""
    v = ctx.inp(node, 0)
    shape = ctx.static_shape(v, node)
    n, m = shape[-2], shape[-1]
    upper = bool(attr(node, "upper", 1))
    kin = node.inputs[1] if len(node.inputs) > 1 else None
    if kin is not None and ctx.value(kin) is None:
        # k at run time: keep element (i, j) where j - i >= k (upper) or <= k (lower)
        diag = np.arange(m, dtype=np.int32)[None, :] - np.arange(n, dtype=np.int32)[:, None]
        k = ctx.x(kin)
        if ctx.rank(kin):
            k = ctx.op("Reshape", [k, ctx.i32([], "shape")])
        mask = binary(ctx, "GreaterEqual" if upper else "LessEqual", ctx.const(diag, "diag"), k)
    else:
        kv = _const_input(ctx, node, 1)
        diagonal = 0 if kv is None else int(kv.reshape(-1)[0])
        mask = ctx.const(np.triu(np.ones((n, m), bool), diagonal) if upper else
                         np.tril(np.ones((n, m), bool), diagonal), "mask")
    return [ctx.op("SelectV2", [mask, ctx.x(v), ctx.scalar(0, ctx.tf_dtype(v))])]


@rule("EyeLike", check=_static_shape_check)
def eye_like(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX EyeLike -> a TF constant identity matrix (static shape), in ``dtype`` or else the
    input's dtype."""
    xv = ctx.inp(node, 0)
    n, m = ctx.static_shape(xv, node)
    dtype = attr(node, "dtype")
    np_dtype = ir.DataType(dtype).numpy() if dtype is not None else ctx.np_dtype(xv)
    eye = np.eye(n, m, attr(node, "k", 0), dtype=np_dtype)
    return [ctx.op("Identity", [ctx.const(eye, "eye")])]
