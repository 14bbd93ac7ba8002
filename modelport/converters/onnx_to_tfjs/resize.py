"""ONNX -> TF.js: Resize and Upsample, mapped from their channels-last twins.

ONNX's Resize is separable: along each resized axis, output position ``x`` reads the input at
a coordinate ``x_original`` (``coordinate_transformation_mode``), then picks one element
(``nearest`` with ``nearest_mode``) or blends neighbours (``linear``, ``cubic``). With static
input and output sizes the converter computes, per axis, which input elements each output
reads and with what weights (``onnx_plan``), and the same for tfjs's ResizeBilinear and
ResizeNearestNeighbor under each (align_corners, half_pixel_centers) setting (``tfjs_plan``,
from the kernels' documented formulas). Where a tfjs kernel reads exactly the same elements
with the same weights on every resized axis of a 4-D image, that kernel is emitted. Otherwise
each axis becomes a GatherV2 with constant indices (nearest) or a batched matrix product with a
constant interpolation matrix (linear, cubic): exact, whatever the mode.

Sizes known only at run time (a dynamic input, or scales/sizes computed in the graph) go to
``resize_dynamic``. Refused up front: antialiasing, ``tf_crop_and_resize``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx_ir as ir

from ...errors import ModelportError
from ...models.tfjs_graph import a_bool, a_int
from . import resize_dynamic
from .core import Ctx, all_known, attr, rule, unsupported
from .resize_plan import (
    COORD_MODES,
    NEAREST_MODES,
    TFJS_SETTINGS,
    _inputs,
    _settings,
    _to_nchw,
    onnx_plan,
    tfjs_plan,
)

Sizes = list[int | None]
RUN_TIME = "sizes known only at run time"  # (resize_dynamic's case)


def _axis_sizes(ctx: Ctx, node: ir.Node) -> tuple[Sizes, Sizes, list[float]] | str:
    """(input sizes, output sizes, scales) per axis in ONNX (NCHW) order, or why not.

    A size may be None (known only at run time, a dynamic batch) on an axis that is not
    resized; every resized axis needs its sizes when converting.
    """
    shape = ctx.shape(node.inputs[0])
    if shape is None:
        return "the input's rank is unknown"
    rank = len(shape)
    nchw = [shape[p] for p in _to_nchw(rank)]
    sv, zv = _inputs(node)
    scales = ctx.value(sv) if sv is not None else None
    sizes = ctx.value(zv) if zv is not None else None
    if (sv is not None and scales is None) or (zv is not None and sizes is None):
        return RUN_TIME
    axes = attr(node, "axes")
    axes = list(range(rank)) if axes is None else [a % rank for a in axes]
    out: Sizes
    if sizes is not None and sizes.size:
        want = {a: int(s) for a, s in zip(axes, sizes.reshape(-1))}
        by_sizes = _from_sizes(nchw, axes, want, attr(node, "keep_aspect_ratio_policy",
                                                      "stretch"))
        if isinstance(by_sizes, str):
            return by_sizes
        out, scale = by_sizes
    elif scales is not None and scales.size:
        given = {a: float(s) for a, s in zip(axes, scales.reshape(-1))}
        scale = [given.get(a, 1.0) for a in range(rank)]
        if any(nchw[a] is None and scale[a] != 1.0 for a in range(rank)):
            return RUN_TIME
        out = [None if d is None else math.floor(d * f) for d, f in zip(nchw, scale)]
    else:
        return "neither scales nor sizes is given"
    if any(o is not None and o <= 0 for o in out):
        return f"an empty output {out}"
    return nchw, out, scale


def _from_sizes(nchw: Sizes, axes: list[int], want: dict[int, int],
                policy: str) -> tuple[Sizes, list[float]] | str:
    """(output sizes, scales) per axis for output sizes ``want`` (by axis), or why not."""
    rank = len(nchw)
    sized = {a: d for a in want if (d := nchw[a]) is not None}  # their input sizes
    if len(sized) != len(want):
        return RUN_TIME
    if policy == "stretch":
        # (an axis not resized keeps its size: scale 1, its size known or not)
        return ([want.get(a, nchw[a]) for a in range(rank)],
                [want[a] / sized[a] if a in want else 1.0 for a in range(rank)])
    if policy not in ("not_larger", "not_smaller"):
        return f"keep_aspect_ratio_policy={policy!r}"
    ratios = [want[a] / sized[a] for a in axes]
    common = min(ratios) if policy == "not_larger" else max(ratios)
    scale = [common if a in want else 1.0 for a in range(rank)]
    # the spec rounds half away from zero here (not Python's round-half-even)
    return ([math.floor(sized[a] * scale[a] + 0.5) if a in want else nchw[a]
             for a in range(rank)], scale)


def resize_check(ctx: Ctx, node: ir.Node) -> str | None:
    """Why a Resize/Upsample cannot be mapped, or None: an unknown mode, coordinate
    transformation or nearest mode, tf_crop_and_resize, antialiased linear/cubic,
    linear/cubic of a non-float tensor, or sizes and scales not known when converting."""
    s = _settings(node)
    if s["mode"] not in ("nearest", "linear", "cubic"):
        return f"mode={s['mode']!r}"
    if s["coord"] == "tf_crop_and_resize":
        return "coordinate_transformation_mode='tf_crop_and_resize'"
    if s["coord"] not in COORD_MODES:
        return f"coordinate_transformation_mode={s['coord']!r}"
    if s["mode"] == "nearest" and s["nearest"] not in NEAREST_MODES:
        return f"nearest_mode={s['nearest']!r}"
    if attr(node, "antialias", 0) and s["mode"] != "nearest":
        return "antialias=1"
    if ctx.tf_dtype(node.inputs[0]) != "float32" and s["mode"] != "nearest":
        return "linear/cubic resizing of a non-float tensor"
    sizes = _axis_sizes(ctx, node)
    if sizes == RUN_TIME:

        run_time = resize_dynamic.plan(ctx, node)
        return run_time if isinstance(run_time, str) else None
    return sizes if isinstance(sizes, str) else None


def _kernel_settings(s: dict[str, Any], plans: dict[int, np.ndarray],
                     sizes: tuple[Sizes, Sizes]) -> tuple[bool, bool] | None:
    """tfjs's flags whose kernel reads what ``plans`` read (on the axes they resize)."""
    kind = "nearest" if s["mode"] == "nearest" else "bilinear" if s["mode"] == "linear" \
        else None
    if kind is None:
        return None
    n_in, n_out = sizes
    for align, half in TFJS_SETTINGS:
        if all(np.allclose(tfjs_plan(kind, _int(n_in[a]), _int(n_out[a]), align, half), w,
                           atol=1e-6) for a, w in plans.items()):
            return align, half
    return None


@rule("Resize", "Upsample", check=resize_check, layout=True)
def resize(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX Resize/Upsample (channels-last twin, static sizes) -> TF ResizeBilinear or
    ResizeNearestNeighbor where a tfjs kernel reads exactly what ONNX does on a 4-D image's
    H and W; otherwise, per resized axis, a GatherV2 (nearest) or a BatchMatMulV2 with a
    constant interpolation matrix (linear, cubic)."""
    s = _settings(node)
    sizes = _axis_sizes(ctx, node)
    if sizes == RUN_TIME:

        run_time = resize_dynamic.plan(ctx, node)
        if isinstance(run_time, str):  # (resize_check has refused the node already)
            raise unsupported(node, run_time)
        return resize_dynamic.emit(ctx, node, run_time)
    if isinstance(sizes, str):  # (resize_check has refused the node already)
        raise unsupported(node, sizes)
    n_in, n_out, scale = sizes
    rank = len(n_in)
    where = _to_nchw(rank)  # NCHW axis -> channels-last axis
    plans: dict[int, np.ndarray] = {}
    for a in range(rank):
        size_in = n_in[a]
        if size_in is None:
            continue
        plan = onnx_plan(s, size_in, _int(n_out[a]), scale[a])
        if size_in != n_out[a] or not np.array_equal(plan, np.eye(size_in)):
            plans[a] = plan
    x = ctx.x(ctx.inp(node, 0))
    if not plans:
        return [ctx.op("Identity", [x])]
    hw = all_known(n_in[2:4]) if rank == 4 else None
    if hw is not None and set(plans) <= {2, 3}:
        for a, size_in in zip((2, 3), hw):
            plans.setdefault(a, np.eye(size_in))
        flags = _kernel_settings(s, plans, (n_in, n_out))
        if flags is not None:
            op = "ResizeNearestNeighbor" if s["mode"] == "nearest" else "ResizeBilinear"
            y = ctx.op(op, [x, ctx.i32([n_out[2], n_out[3]], "size")],
                       {"align_corners": a_bool(flags[0]), "half_pixel_centers": a_bool(flags[1])})
            return [y]
    shape = [n_in[where.index(j)] for j in range(rank)]  # channels-last shape, updated per axis
    for a, w in sorted(plans.items()):
        j = where[a]
        if s["mode"] == "nearest":
            idx = np.argmax(w, axis=1).astype(np.int32)
            x = ctx.op("GatherV2", [x, ctx.i32(idx, "indices"), ctx.i32(j, "axis")],
                       {"batch_dims": a_int(0)})
        else:
            if (None in shape[:j] and None in shape[j + 1:]) or shape.count(None) > 1:
                raise unsupported(node, "more than one dimension known only at run time")
            head, tail = all_known(shape[:j]), all_known(shape[j + 1:])
            outer = -1 if head is None else int(np.prod(head))
            inner = -1 if tail is None else int(np.prod(tail))
            x3 = ctx.op("Reshape", [x, ctx.i32([outer, shape[j], inner], "shape")])
            y3 = ctx.op("BatchMatMulV2", [ctx.const(w[None].astype(np.float32), "interp"), x3],
                        {"adj_x": a_bool(False), "adj_y": a_bool(False)})
            shape[j] = n_out[a]
            x = ctx.op("Reshape", [y3, ctx.i32([-1 if d is None else d for d in shape],
                                               "shape")])
        shape[j] = n_out[a]
    return [x]


def _int(size: int | None) -> int:
    """A size that is known here: every resized axis has static sizes (``_axis_sizes``)."""
    if size is None:
        raise ModelportError("internal error: a resized axis of unknown size")
    return size
