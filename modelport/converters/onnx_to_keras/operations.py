"""ONNX ops no Keras layer computes, raised to the Keras 3 operations that do.

A Keras 3 functional graph may hold ``keras.ops`` calls as nodes of their own ("operation
layers", module ``keras.src.ops.numpy``, config: the call's arguments), and Keras 3 loads them
from ``.keras`` and ``.h5`` files. Where an ONNX op is exactly one of them it is raised so:
``Log`` -> ``Log``; ``ReduceMin`` over non-batch axes -> ``Min``; ``ArgMax`` / ``ArgMin`` (first
index of ties, a non-batch axis) -> ``Argmax`` / ``Argmin``; ``Equal`` -> ``Equal``; integer
``Mod`` with Python's sign rule (``fmod=0``) -> ``Mod``. A constant operand of a binary op
must be one number (it becomes the call's Python scalar). Everything else these ops can do is
refused by name (``fmod=1`` has no Keras operation; ``select_last_index`` neither). ``GatherND``
has no Keras operation at all and keeps the default refusal.
"""

from __future__ import annotations

from typing import Any

import onnx_ir as ir

from ...models import Node, TensorRef
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


def _operand(ctx: Ctx, v: ir.Value) -> Any:
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
    """Equal of a tensor and a tensor or one number: the Keras operation ``Equal``."""
    a, b = ctx.input(node, 0), ctx.input(node, 1)
    if not ctx.is_tensor(a) and not ctx.is_tensor(b):
        raise ctx.refuse("both operands are constants")
    ctx.output(operation(ctx, "Equal", {}, [_operand(ctx, a), _operand(ctx, b)]))


@rule("Mod")
def mod(ctx: Ctx, node: ir.Node) -> None:
    """Integer Mod with the divisor's sign (``fmod=0``): the Keras operation ``Mod``."""
    a, b = ctx.input(node, 0), ctx.input(node, 1)
    if int(attr(node, "fmod", 0)):
        raise ctx.refuse("fmod=1 (C's fmod, the dividend's sign) has no Keras operation")
    if not ctx.is_tensor(a):
        raise ctx.refuse("a constant dividend: Keras's Mod is raised with the tensor first")
    divisor = _operand(ctx, b)
    if not isinstance(divisor, TensorRef) and divisor == 0:
        raise ctx.refuse("a modulus by zero")
    if a.dtype not in (ir.DataType.INT32, ir.DataType.INT64):
        raise ctx.refuse(f"Mod of {a.dtype} values (ONNX requires fmod=1 for floats)")
    ctx.output(operation(ctx, "Mod", {}, [ctx.ref(a), divisor]))

