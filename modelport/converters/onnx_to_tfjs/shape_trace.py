"""What one element of a small integer/float vector computed at run time stands for.

Exporters build a Resize's ``sizes`` (and Reshape targets, Slice ends) from ``Shape`` of some
tensor: ``Concat(Shape(x)[0:2], hw)``. A rule that must know whether, say, the batch and channel
entries of such a vector leave those axes alone asks ``element(ctx, v, i)``, which follows
``Concat``, ``Slice``, ``Gather``, ``Cast``, ``Unsqueeze``/``Squeeze``/``Reshape`` of 1-element
vectors and ``Transpose`` back to either a constant or "dimension ``axis`` of value ``x``".
Anything it cannot follow is ``None`` (unknown): callers then take the general route, never a
guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from .core import Ctx, attr

MAX_DEPTH = 32


@dataclass(frozen=True)
class Dim:
    """Dimension ``axis`` (non-negative) of ``value``."""

    value: ir.Value
    axis: int


Element = Dim | float | int | None


def element(ctx: Ctx, v: ir.Value | None, i: int, depth: int = 0) -> Element:
    """Element ``i`` of 1-D (or 0-D, ``i`` 0) value ``v``: a constant, a ``Dim``, or None."""
    if v is None or depth > MAX_DEPTH:
        return None
    const = ctx.value(v)
    if const is not None:
        flat = const.reshape(-1)
        if not 0 <= i < flat.size:
            return None
        item = flat[i].item()
        return item if isinstance(item, (int, float)) else None
    node = v.producer()
    if node is None:
        return None
    op, ins = node.op_type, list(node.inputs)
    if node.domain not in ("", "ai.onnx"):
        return None
    if not ins or ins[0] is None:
        return None
    if op == "Shape":
        rank = ctx.rank(ins[0])
        if rank is None:
            return None
        start = attr(node, "start", 0)
        start = max(0, min(rank, start + rank if start < 0 else start))
        axis = start + i
        return _dim(ctx, ins[0], axis, depth) if axis < rank else None
    if op in ("Cast", "Identity") or (op in ("Unsqueeze", "Squeeze", "Reshape") and
                                      _length(ctx, v) == 1 and _length(ctx, ins[0]) == 1):
        return element(ctx, ins[0], i, depth + 1)
    if op == "Concat" and ctx.rank(v) == 1:
        for part in ins:
            n = _length(ctx, part)
            if n is None:
                return None
            if i < n:
                return element(ctx, part, i, depth + 1)
            i -= n
        return None
    if op == "Slice" and ctx.rank(ins[0]) == 1:
        return _slice_element(ctx, node, i, depth)
    if op == "Gather" and ctx.rank(ins[0]) == 1:
        idx = ctx.value(ins[1]) if len(ins) > 1 else None
        if idx is None or not 0 <= i < idx.size:
            return None
        j = int(idx.reshape(-1)[i])
        n = _length(ctx, ins[0])
        if j < 0:
            if n is None:
                return None
            j += n
        return element(ctx, ins[0], j, depth + 1)
    return None


def _slice_element(ctx: Ctx, node: ir.Node, i: int, depth: int) -> Element:
    ins = list(node.inputs) + [None] * 5
    starts, steps = ctx.value(ins[1]), ctx.value(ins[4])
    if starts is None or starts.size != 1:
        return None
    step = 1 if steps is None else int(steps.reshape(-1)[0])
    start = int(starts.reshape(-1)[0])
    n = _length(ctx, ins[0])
    if start < 0:
        if n is None:
            return None
        start = max(start + n, 0)
    if step <= 0:
        return None
    return element(ctx, ins[0], start + i * step, depth + 1)


def _dim(ctx: Ctx, v: ir.Value, axis: int, depth: int) -> Dim:
    """Dimension ``axis`` of ``v``, moved back through Transposes to where it was made."""
    while depth <= MAX_DEPTH:
        node = v.producer()
        if node is None or node.op_type != "Transpose" or node.domain not in ("", "ai.onnx"):
            break
        perm, source = attr(node, "perm"), node.inputs[0]
        if perm is None or source is None:
            break
        v, axis = source, int(perm[axis])
        depth += 1
    return Dim(v, axis)


def _length(ctx: Ctx, v: ir.Value | None) -> int | None:
    """The element count of a vector (or scalar) whose shape is static."""
    s = ctx.shape(v)
    if s is None or None in s:
        return None
    return int(np.prod([d for d in s if d is not None], dtype=np.int64))


def same_dim(ctx: Ctx, a: Element, v: ir.Value, axis: int) -> bool:
    """Whether ``a`` is certainly dimension ``axis`` of ``v`` (the same tensor's dimension,
    traced through Transposes, or equal static sizes)."""
    here = _dim(ctx, v, axis, 0)
    if isinstance(a, Dim):
        if a.value is here.value and a.axis == here.axis:
            return True
        return _same_size(a.value, a.axis, here.value, here.axis) or \
            _same_size(a.value, a.axis, v, axis)
    if isinstance(a, (int, np.integer)) and not isinstance(a, bool):
        d = (ctx.shape(v) or [])[axis:axis + 1]
        return bool(d) and d[0] == int(a)
    return False


def _same_size(v1: ir.Value, a1: int, v2: ir.Value, a2: int) -> bool:
    s1, s2 = v1.shape, v2.shape
    if s1 is None or s2 is None or a1 >= len(s1) or a2 >= len(s2):
        return False
    d1, d2 = s1[a1], s2[a2]
    # Static sizes only: two dimensions with the same symbolic name are meant to be equal, but
    # onnxruntime does not hold a model to that (two inputs may share "height" and differ),
    # and taking them as equal would leave an axis unresized.
    return isinstance(d1, int) and isinstance(d2, int) and d1 == d2
