"""Slice as Keras layers: what a Slice of constant starts/ends/axes/steps cuts off each axis
(``slice_cuts``), the Cropping that cuts it (``crop``), and the 1-wide pooling that keeps every
step-th cell of the middle axes (``strided``): the YOLO "Focus" ``x[..., ::2, ::2]``.

Why a step s > 0 along a middle axis is exact: ONNX's Slice with start b, end e and step s
along an axis of size d takes the cells b', b' + s, b' + 2s, ... below e' (b', e': b and e
clamped to [0, d]), ceil((e' - b') / s) of them. A Cropping of b' cells before and d - e' after
leaves the L = e' - b' cells from b' on; a pooling with pool size 1, stride s and ``valid``
padding then has floor((L - 1) / s) + 1 = ceil(L / s) windows of one cell each, at 0, s, 2s,
...: the same cells. It is a MaxPooling: the max of one cell is that cell, no arithmetic (the
form Keras's own ResNetV2 shortcuts use). Pooling strides only the middle axes of a
channels-last tensor, so a step on the last axis is taken between two Permutes that swap it
with a middle axis (the Focus block reads an NCHW image the layout pass leaves channels-first,
so its width is the last axis). A step on the batch, a negative step (a reversal) and a step
on a rank-2 or rank > 5 tensor are refused by name.

An axis without a static size is cut only where the cut does not depend on its size: a start
b >= 0, and an end "to the end" (at least 2**31 - 1, what exporters write for ``x[b:]``) or
k < 0 cells before it. Cropping b before and k after is then the same slice wherever the axis
holds at least b + k cells (a shorter one is empty in ONNX and an error in Keras, never a
different number).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx_ir as ir

from ...models import TensorRef
from ..onnx_normalize import optional_input
from .core import Ctx, crop_axis, static

# An end at least this large reaches the end of any axis a tensor can have here.
TO_THE_END = 2**31 - 1
PIN_HINT = "pin the input's shape with --input-shape (input_shapes= in the library)"


@dataclass(frozen=True)
class Cut:
    """What a Slice does to one axis: ``lo`` cells dropped before, ``hi`` after, then every
    ``step``-th cell kept."""

    lo: int = 0
    hi: int = 0
    step: int = 1

    @property
    def whole(self) -> bool:
        """Whether the axis is kept as it is."""
        return (self.lo, self.hi, self.step) == (0, 0, 1)


def slice_cuts(ctx: Ctx, node: ir.Node, shape: list[int | None]) -> list[Cut]:
    """The ``Cut`` of each axis of a ``shape`` tensor by the Slice ``node`` (constant starts,
    ends, axes, steps); a refusal where they are computed at run time, a step is negative, the
    slice is empty, or an axis without a static size is cut where its size decides."""
    rank = len(shape)
    given = [optional_input(node, i) for i in range(1, 5)]
    consts = [ctx.const(v) if v is not None else None for v in given]
    starts_c, ends_c, axes_c, steps_c = consts
    if starts_c is None or ends_c is None or any(
            v is not None and c is None for v, c in zip(given[2:], consts[2:])):
        raise ctx.refuse("its starts/ends/axes/steps are computed at run time")
    starts, ends = starts_c.reshape(-1), ends_c.reshape(-1)
    axes = axes_c.reshape(-1) if axes_c is not None else np.arange(len(starts))
    steps = steps_c.reshape(-1) if steps_c is not None else np.ones(len(starts), np.int64)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ctx.malformed(f"{len(starts)} starts, {len(ends)} ends, {len(axes)} axes and "
                            f"{len(steps)} steps (ONNX wants as many of each)")
    cuts = [Cut() for _ in range(rank)]
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if not -rank <= int(axis) < rank:
            raise ctx.malformed(f"axis {int(axis)} of a rank-{rank} input")
        axis = int(axis) % rank
        cuts[axis] = _cut(ctx, int(start), int(end), int(step), axis, shape[axis])
    return cuts


def _cut(ctx: Ctx, start: int, end: int, step: int, axis: int, size: int | None) -> Cut:
    """One axis's ``Cut`` (ONNX clamps start and end to the axis)."""
    if step == 0:
        raise ctx.malformed(f"a step of 0 along axis {axis}")
    if step < 0:
        raise ctx.refuse(f"a negative step ({step}) along axis {axis} (a reversal) has no "
                         "Keras layer")
    if size is None:
        if start < 0:
            raise ctx.refuse(f"axis {axis} has no static size, and the slice starts {-start} "
                             f"cells before its end; {PIN_HINT}")
        if end >= TO_THE_END:
            return Cut(start, 0, step)
        if end < 0:
            return Cut(start, -end, step)
        raise ctx.refuse(f"axis {axis} has no static size, so whether the slice's end {end} "
                         f"falls inside it is known only at run time; {PIN_HINT}")
    lo = min(max(start + size if start < 0 else start, 0), size)
    hi = min(max(end + size if end < 0 else end, 0), size)
    if hi <= lo:
        raise ctx.refuse(f"an empty slice of axis {axis}")
    return Cut(lo, size - hi, step)


def crop(ctx: Ctx, ref: TensorRef, shape: list[int | None],
         cuts: list[Cut]) -> tuple[TensorRef, list[int | None]]:
    """``ref`` (shape ``shape``) with the cells ``cuts`` drop cut off every non-batch axis;
    returns (ref, new shape). The middle axes of a rank-3 to rank-5 tensor are cut by one
    Cropping layer (any sizes; for tfjs-layers, which has Cropping2D only, a sequence is cut
    as a one-column image); the others, and for tfjs-layers the middle ones of rank 5, one
    axis at a time by ``crop_axis`` (static sizes)."""
    rank = len(shape)
    n = rank - 2
    dims = list(shape)
    middle = [[c.lo, c.hi] for c in cuts[1:-1]]
    # tfjs-layers: a sequence as a one-column image (static sizes: its Reshape resolves no -1)
    as_image = ctx.for_tfjs and n == 1 and static(dims[1:]) is not None
    one_layer = 1 <= n <= 3 and (n == 2 or not ctx.for_tfjs or as_image)
    if one_layer and any(m != [0, 0] for m in middle):
        if as_image:
            ref = ctx.layer("Reshape", {"target_shape": [dims[1], 1, dims[-1]]}, ref,
                            suffix="to2d")
            ref = ctx.layer("Cropping2D", {"cropping": [middle[0], [0, 0]],
                                           "data_format": "channels_last"}, ref)
            length = dims[1] - middle[0][0] - middle[0][1]  # type: ignore[operator]
            ref = ctx.layer("Reshape", {"target_shape": [length, dims[-1]]}, ref,
                            suffix="back")
        else:
            config: dict[str, Any] = {"cropping": middle[0] if n == 1 else middle}
            if n > 1:
                config["data_format"] = "channels_last"
            ref = ctx.layer(f"Cropping{n}D", config, ref)
        dims[1:-1] = [None if d is None else d - lo - hi
                      for d, (lo, hi) in zip(dims[1:-1], middle)]
    for axis in ([rank - 1] if one_layer else range(1, rank)):
        cut = cuts[axis]
        if (cut.lo, cut.hi) == (0, 0):
            continue
        if static(dims[1:]) is None:
            raise ctx.refuse(f"cutting axis {axis} of a tensor of unknown shape {shape} takes "
                             f"a Reshape of static sizes; {PIN_HINT}")
        ref, dims = crop_axis(ctx, ref, dims, axis, cut.lo, cut.hi)
    return ref, dims


def strided(ctx: Ctx, ref: TensorRef, shape: list[int | None], cuts: list[Cut]) -> TensorRef:
    """A Slice with steps > 1 on non-batch axes of ``ref``: ``crop``, then a MaxPooling of pool
    size 1 whose strides are the steps of the middle axes (see the module docstring); a step
    on the last axis between two Permutes that swap it with the first middle one."""
    rank = len(shape)
    n = rank - 2
    if not 1 <= n <= 3:
        raise ctx.refuse(f"a strided slice of a rank-{rank} tensor has no Keras layer: pooling "
                         "strides the middle axes of rank-3 to rank-5 tensors only")
    middle = [Cut(), *cuts[1:-1], Cut()]
    last = cuts[-1]
    if last.step == 1:  # the last axis cropped with the rest
        middle[-1] = last
    ref, dims = crop(ctx, ref, shape, middle)
    steps = [c.step for c in cuts[1:-1]]
    if any(s != 1 for s in steps):
        ref = _pool(ctx, ref, steps, "step")
        dims[1:-1] = [None if d is None else -(-d // s) for d, s in zip(dims[1:-1], steps)]
    if last.step != 1:
        # the last axis (the channels, or an NCHW image's width where the layout stayed
        # channels-first) cut and pooled as the first middle one: each Permute swaps the two
        # (its own inverse), and the Cropping takes any size there
        swap = [rank - 1, *range(2, rank - 1), 1]
        ref = ctx.layer("Permute", {"dims": swap}, ref, suffix="last_in")
        swapped = [dims[0], dims[-1], *dims[2:-1], dims[1]]
        ref, _ = crop(ctx, ref, swapped, [Cut(), last, *[Cut()] * (rank - 2)])
        ref = _pool(ctx, ref, [last.step] + [1] * (n - 1), "last_step")
        ref = ctx.layer("Permute", {"dims": swap}, ref, suffix="last_out")
    return ref


def _pool(ctx: Ctx, ref: TensorRef, strides: list[int], suffix: str) -> TensorRef:
    """Every ``strides``-th cell of the middle axes: a MaxPooling of pool size 1."""
    n = len(strides)
    pool: dict[str, Any] = {"pool_size": [1] * n, "strides": strides, "padding": "valid"}
    if n > 1:
        pool["data_format"] = "channels_last"
    return ctx.layer(f"MaxPooling{n}D", pool, ref, suffix=suffix)
