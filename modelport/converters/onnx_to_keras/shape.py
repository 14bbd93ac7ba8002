"""Shape and layout ops: Reshape, Flatten, Permute, Concatenate, ZeroPadding; pass-throughs.

Keras shapes leave the batch out, so every rule here proves that axis 0 stays where it is and
keeps its size; the rest of the target shape comes from ONNX's inferred output shape.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ...errors import UnsupportedError
from ...models import TensorRef
from ..onnx_normalize import optional_input
from . import operations, operations_numeric, operations_static
from .activations import affine
from .core import Ctx, attr, crop_axis, padding_layer, rule, static
from .strided_slice import crop, slice_cuts, strided


@rule("Identity", "Dropout")
def identity(ctx: Ctx, node: ir.Node) -> None:
    """Identity, and Dropout in inference mode: the input itself."""
    if node.op_type == "Dropout" and len(node.outputs) > 1 and node.outputs[1].uses():
        raise ctx.refuse("Dropout's mask output has no Keras equivalent")
    training = optional_input(node, 2) if node.op_type == "Dropout" else None
    if training is not None:
        mode = ctx.const(training)
        if mode is None or bool(mode):
            raise ctx.refuse("training_mode may be true at run time")
    ctx.output(ctx.ref(ctx.input(node, 0)))


@rule("Cast")
def cast(ctx: Ctx, node: ir.Node) -> None:
    """Cast between equal types or int32/int64 (Keras inputs are int32 alike): the input itself;
    other casts: the Keras operation ``Cast`` (operations_numeric)."""
    x = ctx.input(node, 0)
    src, dst = x.dtype, node.outputs[0].dtype
    ints = {ir.DataType.INT32, ir.DataType.INT64}
    if src != dst and not (src in ints and dst in ints):
        ctx.output(operations_numeric.cast(ctx, x, dst))
        return
    ctx.output(ctx.ref(x))


def reshape_to(ctx: Ctx, x: ir.Value, out: ir.Value, suffix: str = "") -> TensorRef:
    """A Keras Reshape from ``x`` to ``out``'s inferred shape, batch kept."""
    src, dst = ctx.shape(x), ctx.shape(out)
    if not dst:
        raise ctx.refuse("the result has no batch axis (a scalar)")
    if not src:
        # a scalar computed at run time (Shape -> Gather of a free dim, a YOLO head's sizes):
        # a Keras tensor always has a batch axis; pinned input sizes fold it to a constant
        raise ctx.refuse("the input is a scalar computed at run time (no batch axis)")
    if src[0] is not None and dst[0] is not None and src[0] != dst[0]:
        raise ctx.refuse(f"it moves elements across the batch axis ({src} -> {dst})")
    rest = dst[1:]
    if sum(d is None for d in rest) > 1:
        raise ctx.refuse(f"the target shape {dst} has more than one unknown axis")
    src_known, rest_known = static(src[1:]), static(rest)
    if src_known is not None and rest_known is not None and \
            int(np.prod(src_known, dtype=np.int64)) != int(np.prod(rest_known, dtype=np.int64)):
        raise ctx.refuse(f"it moves elements across the batch axis ({src} -> {dst})")
    target = [-1 if d is None else int(d) for d in rest]
    if list(src[1:]) == list(rest):
        return ctx.ref(x)
    return ctx.layer("Reshape", {"target_shape": target}, ctx.ref(x), suffix=suffix)


@rule("Reshape", "Squeeze", "Unsqueeze")
def reshape(ctx: Ctx, node: ir.Node) -> None:
    """Reshape, Squeeze, Unsqueeze: a Keras Reshape to the inferred shape, batch kept (else
    an operation on the static shapes, operations_static)."""
    try:
        ref = reshape_to(ctx, ctx.input(node, 0), node.outputs[0])
    except UnsupportedError as refusal:
        operations_static.instead(ctx, node, refusal)
        return
    ctx.output(ref)


@rule("Flatten")
def flatten(ctx: Ctx, node: ir.Node) -> None:
    """Flatten at axis 1: Flatten; elsewhere a Reshape."""
    x = ctx.input(node, 0)
    rank = ctx.rank(x)
    axis = int(attr(node, "axis", 1)) % max(rank, 1)
    if axis == 0 and rank > 0:
        raise ctx.refuse("Flatten(axis=0) folds the batch axis away")
    if axis == 1:
        ctx.output(ctx.ref(x) if rank == 2 else ctx.layer("Flatten", {"data_format":
                                                                       "channels_last"},
                                                          ctx.ref(x)))
        return
    ctx.output(reshape_to(ctx, x, node.outputs[0]))


@rule("Transpose")
def transpose(ctx: Ctx, node: ir.Node) -> None:
    """Transpose keeping the batch first: Permute (a Reshape where only size-1 axes move)."""
    x = ctx.input(node, 0)
    perm = [int(p) for p in attr(node, "perm")]
    if perm[0] != 0:
        raise ctx.refuse(f"perm {perm} moves the batch axis")
    if perm == list(range(len(perm))):
        ctx.output(ctx.ref(x))
        return
    shape = ctx.shape(x)
    moved = [p for p in perm if shape[p] != 1]
    if moved == sorted(moved) and all(d is not None for d in shape[1:]):
        # only size-1 axes move: the same elements in the same order, a Reshape
        ctx.output(reshape_to(ctx, x, node.outputs[0]))
    else:
        ctx.output(ctx.layer("Permute", {"dims": perm[1:]}, ctx.ref(x)))


@rule("Concat")
def concat(ctx: Ctx, node: ir.Node) -> None:
    """Concat of tensors along a non-batch axis: Concatenate (else an operation on the static
    shapes, operations_static)."""
    try:
        _concat(ctx, node)
    except UnsupportedError as refusal:
        operations_static.instead(ctx, node, refusal)


def _concat(ctx: Ctx, node: ir.Node) -> None:
    values = [v for v in node.inputs if v is not None]
    rank = ctx.rank(node.outputs[0])
    axis = int(attr(node, "axis")) % rank
    if axis == 0:
        raise ctx.refuse("concatenation along the batch axis")
    for v in values:
        if not ctx.is_tensor(v):
            raise ctx.refuse(f"input {v.name!r} is a constant; Concatenate joins tensors "
                             "computed from the inputs")
    if len(values) == 1:
        ctx.output(ctx.ref(values[0]))
    else:
        # the axis counted from the front: tfjs-layers 4.22 concatenates along the LAST axis
        # for any negative one (its backend's concatenate maps axis < 0 to the rank)
        ctx.output(ctx.layer("Concatenate", {"axis": axis}, [ctx.ref(v) for v in values]))


@rule("Pad")
def pad(ctx: Ctx, node: ir.Node) -> None:
    """Pad with constant pads of non-batch axes: ZeroPadding (shifted for a non-zero value), or
    copies of rows for reflect / edge."""
    x = ctx.input(node, 0)
    mode = attr(node, "mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode not in ("constant", "reflect", "edge"):
        raise ctx.refuse(f"{mode!r} padding has no Keras layer")
    given = ctx.const(ctx.input(node, 1))
    if given is None:
        raise ctx.refuse("its pads are computed at run time")
    fill = 0.0
    fill_v = optional_input(node, 2)
    if fill_v is not None:
        value = ctx.const(fill_v)
        if value is None:
            raise ctx.refuse("its padding value is computed at run time")
        fill = float(np.asarray(value).reshape(-1)[0])
    if optional_input(node, 3) is not None:
        raise ctx.refuse("Pad with axes is not raised")
    rank = ctx.rank(x)
    pads = [int(p) for p in given.reshape(-1)]
    if len(pads) != 2 * rank:
        raise ctx.malformed(f"{len(pads)} pads for a rank-{rank} input (ONNX wants two per "
                            "axis)")
    pairs = [(pads[i], pads[i + rank]) for i in range(rank)]
    if any(p < 0 for pair in pairs for p in pair):
        raise ctx.refuse("negative pads (cropping) are not raised")
    if pairs[0] != (0, 0):
        raise ctx.refuse("padding the batch axis")
    if all(p == (0, 0) for p in pairs):
        ctx.output(ctx.ref(x))
    elif mode != "constant":
        ctx.output(mirror_pad(ctx, ctx.ref(x), list(ctx.shape(x)), pairs, mode))
    else:
        ctx.output(_constant_pad(ctx, x, pairs, fill, pads))


def _constant_pad(ctx: Ctx, x: ir.Value, pairs: list[tuple[int, int]], fill: float,
                  pads: list[int]) -> TensorRef:
    """Padding with ``fill`` (``pairs``: per axis, the batch's (0, 0) first) by a ZeroPadding
    layer; ``pads`` as ONNX gave them, for the refusal."""
    rank = len(pairs)
    if not ((rank >= 3 and pairs[-1] == (0, 0)) or (rank == 4 and pairs[1] == (0, 0))):
        return operations.constant_pad(ctx, x, pairs, fill)  # no ZeroPadding: the Keras Pad
    if not np.isfinite(fill):
        # (x - v) padded with zeros, then + v, is NaN for an infinite v (a max pool's -inf
        # pads are folded into the pool before this: pad_max_pool)
        raise ctx.refuse(f"the padding value {fill} is not finite: only a MaxPool reading "
                         "the Pad alone takes -inf pads")
    ref = ctx.ref(x)
    if fill != 0.0:  # pad (x - v) with zeros, then add v back
        ref = affine(ctx, ref, 1.0, -fill, "shift")
    if rank >= 3 and pairs[-1] == (0, 0):
        ref = padding_layer(ctx, ref, pairs[1:-1], shape=ctx.shape(x))
    elif rank == 4 and pairs[1] == (0, 0):
        ref = ctx.layer("ZeroPadding2D", {"padding": [list(p) for p in pairs[2:]],
                                          "data_format": "channels_first"}, ref)
    else:
        raise ctx.refuse(f"pads {pads} pad the last axis of a rank-{rank} tensor, which "
                         "ZeroPadding does not")
    return affine(ctx, ref, 1.0, fill, "unshift") if fill != 0.0 else ref


def mirror_pad(ctx: Ctx, ref: TensorRef, dims: list[int | None], pairs: list[tuple[int, int]],
               mode: str) -> TensorRef:
    """Reflect / edge padding of ``ref`` (Keras shape ``dims``), one axis at a time: the rows
    it copies, each a crop of one row (``crop_axis``), concatenated around the tensor in ONNX's
    order. Exact: only copies."""
    dims = list(dims)
    if any(d is None for d in dims[1:]):
        raise ctx.refuse(f"{mode!r} padding of a tensor of unknown shape {dims}")
    for axis, (lo, hi) in enumerate(pairs):
        if (lo, hi) == (0, 0):
            continue
        n = dims[axis]
        if n is None:  # the batch axis, which no caller pads
            raise ctx.refuse(f"{mode!r} padding of an axis of unknown size")
        if mode == "reflect":
            if max(lo, hi) > n - 1:
                raise ctx.refuse(f"reflect pads ({lo}, {hi}) wider than axis {axis} ({n}) "
                                 "allows")
            rows = [*range(lo, 0, -1), None, *range(n - 2, n - 2 - hi, -1)]
        else:
            rows = [0] * lo + [None] + [n - 1] * hi
        crops: dict[int, TensorRef] = {}
        pieces: list[TensorRef] = []
        for row in rows:
            if row is None:
                pieces.append(ref)
                continue
            if row not in crops:
                crops[row], _ = crop_axis(ctx, ref, dims, axis, row, n - 1 - row,
                                          suffix=f"axis{axis}_row{row}_")
            pieces.append(crops[row])
        ref = ctx.layer("Concatenate", {"axis": axis}, pieces, suffix=f"pad_axis{axis}")
        dims[axis] = n + lo + hi
    return ref


@rule("Expand")
def expand(ctx: Ctx, node: ir.Node) -> None:
    """An Expand to the shape its input has already (jax2tf writes a BroadcastTo before every
    broadcast, most to the same shape): the identity. A broadcast to a bigger shape is
    refused."""
    x = ctx.input(node, 0)
    shape, out = ctx.shape(x), ctx.shape(node.outputs[0])
    if len(shape) != len(out) or static(shape[1:]) is None or shape != out:
        raise ctx.refuse(f"it broadcasts {shape} to the bigger shape {out}")
    ctx.output(ctx.ref(x))


@rule("Slice")
def slice_(ctx: Ctx, node: ir.Node) -> None:
    """Constant slices of the non-batch axes: a Cropping layer (``strided_slice.crop``), then,
    for steps > 1, a pooling of pool size 1 (``strided_slice.strided``); else (a reversal, the
    batch axis of a model of one sample) operations on the static shapes."""
    try:
        _slice(ctx, node)
    except UnsupportedError as refusal:
        operations_static.instead(ctx, node, refusal)


def _slice(ctx: Ctx, node: ir.Node) -> None:
    x = ctx.input(node, 0)
    shape = ctx.shape(x)
    cuts = slice_cuts(ctx, node, shape)
    if not cuts[0].whole:
        raise ctx.refuse("slicing the batch axis")
    if all(c.whole for c in cuts):
        ctx.output(ctx.ref(x))
    elif any(c.step != 1 for c in cuts):
        ctx.output(strided(ctx, ctx.ref(x), shape, cuts))
    else:
        ctx.output(crop(ctx, ctx.ref(x), shape, cuts)[0])


@rule("Split")
def split(ctx: Ctx, node: ir.Node) -> None:
    """Each part a crop of the split axis."""
    x = ctx.input(node, 0)
    shape = ctx.shape(x)
    rank = len(shape)
    axis = int(attr(node, "axis", 0)) % rank
    if axis == 0:
        raise ctx.refuse("splitting the batch axis")
    known = static(shape[1:])
    if known is None:
        raise ctx.refuse(f"splitting a tensor of unknown shape {shape}")
    length = known[axis - 1]
    given = [ctx.shape(o)[axis] for o in node.outputs]
    sizes = static(given)
    if sizes is None or sum(sizes) != length:
        raise ctx.refuse(f"split sizes {given} are not known to cover axis {axis}")
    start = 0
    for i, (out, size) in enumerate(zip(node.outputs, sizes)):
        if out.uses() or out.is_graph_output():
            ref, _ = crop_axis(ctx, ctx.ref(x), list(shape), axis, start,
                               length - start - size, suffix=f"part{i}_")
            ctx.output(ref, i)
        start += size


@rule("Gather")
def gather(ctx: Ctx, node: ir.Node) -> None:
    """Rows of a constant matrix picked by integer indices: an Embedding."""
    table, indices = ctx.input(node, 0), ctx.input(node, 1)
    weights = ctx.const(table)
    if weights is None or not ctx.is_tensor(indices) or int(attr(node, "axis", 0)) != 0 or \
            weights.ndim != 2:
        operations_static.instead(ctx, node, ctx.refuse(
            "only rows of a constant matrix picked by computed indices (an Embedding) are "
            "raised"))
        return
    ctx.output(ctx.layer("Embedding", {"input_dim": int(weights.shape[0]),
                                       "output_dim": int(weights.shape[1]),
                                       "mask_zero": False},
                         ctx.ref(indices), weights=[("embeddings", weights)]))
