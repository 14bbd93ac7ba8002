"""ONNX ops no Keras layer computes, raised to the Keras 3 operations that do.

A Keras 3 functional graph may hold ``keras.ops`` calls as nodes of their own ("operation
layers", module ``keras.src.ops.numpy``, config: the call's arguments), and Keras 3 loads them
from ``.keras`` files (its legacy ``.h5`` loader cannot rebuild them: "Unknown layer", so the
``.h5`` writer refuses them, and tfjs-layers has no such layers). Where an ONNX op is exactly
one of them it is raised so:
``Log`` -> ``Log``; ``ReduceMin`` over non-batch axes -> ``Min``; ``ArgMax`` / ``ArgMin`` (first
index of ties, a non-batch axis) -> ``Argmax`` / ``Argmin``; ``Equal`` -> ``Equal``;
``Greater``, ``GreaterOrEqual``, ``Less``, ``LessOrEqual`` -> ``Greater``, ``GreaterEqual``,
``Less``, ``LessEqual``; integer
``Mod`` with Python's sign rule (``fmod=0``) -> ``Mod``; ``Sqrt`` -> ``Sqrt``; float ``Div``
that no layer folds (a tensor by a tensor, a number by a tensor) -> ``Divide``; ``Where`` ->
``Where``; ``ReduceMax`` / ``ReduceSum`` / ``ReduceMean`` over non-batch axes that global
pooling / ``Dot`` do not take -> ``Max`` / ``Sum`` / ``Mean``; constant ``Pad`` that
ZeroPadding cannot express (the last axis of a rank-3 tensor) -> ``Pad``. The layer rules of
Div, ReduceMax, ReduceSum, ReduceMean and Pad hand
those cases here. A constant operand of a binary op must be one number (it becomes the call's
Python scalar). Keras's broadcasting is NumPy's, which is ONNX's multidirectional one.
Everything else these ops can do is refused by name (``fmod=1`` has no Keras operation;
``select_last_index`` neither). Rounding, casts, TopK and GatherND: ``operations_numeric.py``,
``operations_index.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from ...models import Node, TensorRef
from ...models.keras_constants import numpy_arg
from .core import Ctx, attr, reduction_axes, rule

MODULE = "keras.src.ops.numpy"


def operation(ctx: Ctx, class_name: str, config: dict, args: list) -> TensorRef:
    """A Keras 3 operation node ``class_name(*args, **config)``; tensors in ``args`` as refs."""
    refs = [a for a in args if isinstance(a, TensorRef)]
    ref = ctx.layer(class_name, {}, refs[0] if len(refs) == 1 else refs, call=Node(list(args)))
    layer = ctx.layers[-1]
    layer.module = MODULE
    layer.config = {"name": layer.name, **config}  # an operation's config: its arguments only
    return ref


def operand(ctx: Ctx, v: ir.Value) -> Any:
    """A tensor's ref, or a constant's one number as a Python scalar."""
    if ctx.is_tensor(v):
        return ctx.ref(v)
    c = ctx.const(v)
    if c is None or c.size != 1:
        raise ctx.refuse(f"operand {v.name!r} is a constant of shape "
                         f"{list(c.shape) if c is not None else '?'}: a Keras operation's "
                         "constant operand is one number")
    return c.reshape(-1)[0].item()


@rule("Log")
def log(ctx: Ctx, node: ir.Node) -> None:
    """Log: the Keras operation ``Log``."""
    ctx.output(operation(ctx, "Log", {}, [ctx.ref(ctx.input(node, 0))]))


@rule("ReduceMin")
def reduce_min(ctx: Ctx, node: ir.Node) -> None:
    """ReduceMin over non-batch axes: the Keras operation ``Min``."""
    x = ctx.input(node, 0)
    rank = ctx.rank(x)
    axes = reduction_axes(ctx, node)
    if axes is None:
        if int(attr(node, "noop_with_empty_axes", 0)):
            ctx.output(ctx.ref(x))
            return
        raise ctx.refuse("a reduction over all axes includes the batch")
    axes = sorted(int(a) % rank for a in axes)
    if 0 in axes:
        raise ctx.refuse("a reduction over the batch axis has no Keras form")
    config = {"axis": axes, "keepdims": bool(int(attr(node, "keepdims", 1))), "initial": None}
    ctx.output(operation(ctx, "Min", config, [ctx.ref(x)]))


@rule("ArgMax", "ArgMin")
def arg_extreme(ctx: Ctx, node: ir.Node) -> None:
    """ArgMax / ArgMin along a non-batch axis, first index of ties: ``Argmax`` / ``Argmin``."""
    x = ctx.input(node, 0)
    rank = ctx.rank(x)
    axis = int(attr(node, "axis", 0)) % rank
    if axis == 0:
        raise ctx.refuse("an index along the batch axis has no Keras form")
    if int(attr(node, "select_last_index", 0)):
        raise ctx.refuse("select_last_index=1 (the last index of ties) has no Keras operation")
    name = "Argmax" if node.op_type == "ArgMax" else "Argmin"
    config = {"axis": axis, "keepdims": bool(int(attr(node, "keepdims", 1)))}
    ctx.output(operation(ctx, name, config, [ctx.ref(x)]))


@rule("Equal")
def equal(ctx: Ctx, node: ir.Node) -> None:
    """Equal of a tensor and a tensor, one number or a constant array (jax2tf's one_hot:
    ``x[..., None] == arange(n)``, the array a NumPy operand): the Keras operation ``Equal``."""
    a, b = ctx.input(node, 0), ctx.input(node, 1)
    if not ctx.is_tensor(a) and not ctx.is_tensor(b):
        raise ctx.refuse("both operands are constants")
    ctx.output(operation(ctx, "Equal", {}, [array_operand(ctx, a), array_operand(ctx, b)]))


_COMPARISONS = {"Greater": "Greater", "GreaterOrEqual": "GreaterEqual", "Less": "Less",
                "LessOrEqual": "LessEqual"}


@rule(*_COMPARISONS)
def compare(ctx: Ctx, node: ir.Node) -> None:
    """Greater / GreaterOrEqual / Less / LessOrEqual of tensors, numbers or constant arrays:
    the Keras operations of the same names (``GreaterEqual``, ``LessEqual``)."""
    a, b = ctx.input(node, 0), ctx.input(node, 1)
    if not ctx.is_tensor(a) and not ctx.is_tensor(b):
        raise ctx.refuse("both operands are constants")
    ctx.output(operation(ctx, _COMPARISONS[node.op_type], {},
                         [array_operand(ctx, a), array_operand(ctx, b)]))


def array_operand(ctx: Ctx, v: ir.Value) -> Any:
    """``operand``, or a constant array as a NumPy operand (Keras broadcasts it as NumPy and
    ONNX do; its leading axes of size 1 stand for the batch)."""
    c = None if ctx.is_tensor(v) else ctx.const(v)
    if c is None or c.size == 1:
        return operand(ctx, v)
    if c.dtype.kind in "iu" and (c.min() < np.iinfo(np.int32).min or
                                 c.max() > np.iinfo(np.int32).max):
        raise ctx.refuse(f"the constant {v.name!r} holds integers beyond int32")
    value = c.astype(np.int32) if c.dtype.kind in "iu" else c.astype(np.float32)
    return numpy_arg(value)


@rule("Reciprocal")
def reciprocal(ctx: Ctx, node: ir.Node) -> None:
    """Reciprocal that no pattern took (a LayerNorm's or l2_normalize's rsqrt is taken whole):
    the Keras operation ``Reciprocal``."""
    x = ctx.input(node, 0)
    if x.dtype not in FLOATS:
        raise ctx.refuse(f"a reciprocal of {x.dtype} values")
    ctx.output(operation(ctx, "Reciprocal", {}, [ctx.ref(x)]))


@rule("Mod")
def mod(ctx: Ctx, node: ir.Node) -> None:
    """Integer Mod with the divisor's sign (``fmod=0``): the Keras operation ``Mod``."""
    a, b = ctx.input(node, 0), ctx.input(node, 1)
    if int(attr(node, "fmod", 0)):
        raise ctx.refuse("fmod=1 (C's fmod, the dividend's sign) has no Keras operation")
    if not ctx.is_tensor(a):
        raise ctx.refuse("a constant dividend: Keras's Mod is raised with the tensor first")
    divisor = operand(ctx, b)
    if not isinstance(divisor, TensorRef) and divisor == 0:
        raise ctx.refuse("a modulus by zero")
    if a.dtype not in (ir.DataType.INT32, ir.DataType.INT64):
        raise ctx.refuse(f"Mod of {a.dtype} values (ONNX requires fmod=1 for floats)")
    ctx.output(operation(ctx, "Mod", {}, [ctx.ref(a), divisor]))



def _reduction(ctx: Ctx, node: ir.Node, class_name: str, config: dict) -> None:
    """A reduction over non-batch axes as the Keras operation ``class_name`` (``axis``,
    ``keepdims`` from the node, ``config`` added)."""
    x = ctx.input(node, 0)
    rank = ctx.rank(x)
    axes = reduction_axes(ctx, node)
    if axes is None and len(node.inputs) > 1 and node.inputs[1] is not None:
        raise ctx.refuse("its axes are computed at run time")
    if not axes:  # none given: all axes, or none with noop_with_empty_axes
        if int(attr(node, "noop_with_empty_axes", 0)):
            ctx.output(ctx.ref(x))
            return
        raise ctx.refuse("a reduction over all axes includes the batch")
    axes = sorted({int(a) % rank for a in axes})
    if 0 in axes:
        raise ctx.refuse("a reduction over the batch axis has no Keras form")
    keepdims = bool(int(attr(node, "keepdims", 1)))
    ctx.output(operation(ctx, class_name, {"axis": axes, "keepdims": keepdims, **config},
                         [ctx.ref(x)]))


FLOATS = (ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.DOUBLE, ir.DataType.BFLOAT16)


def reduce_max(ctx: Ctx, node: ir.Node) -> None:
    """ReduceMax over non-batch axes: the Keras operation ``Max`` (nn.reduce_spatial hands
    over what is not global pooling)."""
    if ctx.input(node, 0).dtype == ir.DataType.BOOL:
        raise ctx.refuse("a max of bool values")
    _reduction(ctx, node, "Max", {"initial": None})


def reduce_mean(ctx: Ctx, node: ir.Node) -> None:
    """Float ReduceMean over non-batch axes that no global pooling takes: the Keras operation
    ``Mean`` (nn.reduce_spatial hands it over)."""
    if ctx.input(node, 0).dtype not in FLOATS:
        raise ctx.refuse("a mean of integers (Keras's Mean returns floats)")
    _reduction(ctx, node, "Mean", {})


def reduce_sum(ctx: Ctx, node: ir.Node) -> None:
    """Float ReduceSum over non-batch axes: the Keras operation ``Sum`` (dense.reduce_sum
    hands over what is not a row-wise dot product)."""
    if ctx.input(node, 0).dtype not in FLOATS:
        raise ctx.refuse("a sum of integers (Keras's Sum widens small integer types)")
    _reduction(ctx, node, "Sum", {})


def divide(ctx: Ctx, node: ir.Node) -> None:
    """Float Div of a tensor by a tensor, or of one number by a tensor: the Keras operation
    ``Divide`` (elementwise.binary hands over what no layer folds)."""
    a, b = ctx.input(node, 0), ctx.input(node, 1)
    if a.dtype not in FLOATS:
        raise ctx.refuse(f"Div of {a.dtype} values truncates; Keras's Divide is true division")
    ctx.output(operation(ctx, "Divide", {}, [operand(ctx, a), operand(ctx, b)]))


def constant_pad(ctx: Ctx, x: ir.Value, pairs: list[tuple[int, int]], fill: float) -> TensorRef:
    """Constant padding that no ZeroPadding layer expresses: the Keras operation ``Pad``
    (``pairs``: per axis, the batch's (0, 0) first; ``fill`` the call's constant value)."""
    dtype = x.dtype
    value: float | int = fill
    if dtype not in FLOATS:
        if fill != int(fill):
            raise ctx.refuse(f"padding {dtype} values with {fill}")
        value = int(fill)
    config = {"pad_width": [list(p) for p in pairs], "mode": "constant"}
    args: list = [ctx.ref(x)] + ([value] if value != 0 else [])
    return operation(ctx, "Pad", config, args)


@rule("Sqrt")
def sqrt(ctx: Ctx, node: ir.Node) -> None:
    """Sqrt: the Keras operation ``Sqrt``."""
    ctx.output(operation(ctx, "Sqrt", {}, [ctx.ref(ctx.input(node, 0))]))


@rule("Where")
def where(ctx: Ctx, node: ir.Node) -> None:
    """Where of a computed bool condition between tensors or numbers: the Keras operation
    ``Where``."""
    cond, a, b = (ctx.input(node, i) for i in range(3))
    if not ctx.is_tensor(cond):
        raise ctx.refuse("its condition is a constant")
    if cond.dtype != ir.DataType.BOOL:
        raise ctx.refuse(f"a {cond.dtype} condition (ONNX requires bool)")
    if not ctx.is_tensor(a) and not ctx.is_tensor(b):
        raise ctx.refuse("both values are constants: the result's dtype would be Keras's")
    ctx.output(operation(ctx, "Where", {}, [ctx.ref(cond), operand(ctx, a), operand(ctx, b)]))
