"""Elementwise arithmetic: merge layers between tensors; constants folded into a layer.

Keras layers take no constant inputs, so ``x op c`` becomes:
- ``c`` one number: Rescaling(scale, offset) (Add, Sub, Mul, Div), or ReLU compositions (Max,
  Min);
- ``c`` varying only along the last axis: a BatchNormalization holding the affine map
  (moving mean 0, variance 1, epsilon 0, so it computes gamma * x + beta exactly);
- anything else is refused: no Keras layer adds an arbitrary constant tensor.
Between tensors, both must carry the batch axis (equal ranks); Keras merge layers broadcast
size-1 axes as ONNX does.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ...errors import UnsupportedError
from ...models import TensorRef
from . import operations, operations_numeric, operations_static
from .activations import affine, relu
from .core import Ctx, rule, static

_MERGE = {"Add": "Add", "Sum": "Add", "Sub": "Subtract", "Mul": "Multiply", "Max": "Maximum",
          "Min": "Minimum", "Mean": "Average"}


def _scalar(c: np.ndarray) -> float | None:
    flat = np.asarray(c, np.float64).reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return float(flat[0])
    return None


def _per_channel(ctx: Ctx, c: np.ndarray, x: ir.Value) -> np.ndarray | None:
    """``c`` as a vector over x's last axis, when it varies along that axis only."""
    shape = ctx.shape(x)
    if c.ndim > len(shape) or c.ndim == 0:
        return None
    full = (1,) * (len(shape) - c.ndim) + c.shape
    if any(d != 1 for d in full[:-1]) or shape[-1] is None or full[-1] not in (1, shape[-1]):
        return None
    return np.broadcast_to(c.reshape(-1), (shape[-1],)).astype(np.float32)


def _channel_affine(ctx: Ctx, x: TensorRef, gamma: np.ndarray, beta: np.ndarray) -> TensorRef:
    ones, zeros = np.ones_like(gamma), np.zeros_like(gamma)
    return ctx.layer("BatchNormalization", {"axis": -1, "epsilon": 0.0, "momentum": 0.99,
                                            "center": True, "scale": True}, x,
                     weights=[("gamma", gamma), ("beta", beta), ("moving_mean", zeros),
                              ("moving_variance", ones)])


def _with_constant(ctx: Ctx, node: ir.Node, x: ir.Value, c: np.ndarray, x_first: bool) -> None:
    op = node.op_type
    ref = ctx.ref(x)
    out_shape = ctx.shape(node.outputs[0])
    if len(out_shape) != ctx.rank(x) or any(
            o is not None and i is not None and o != i for o, i in zip(out_shape,
                                                                      ctx.shape(x))):
        raise ctx.refuse(f"the constant {c.shape} broadcasts the tensor to a bigger shape")
    k = _scalar(c)
    if k is not None:
        if op in ("Add", "Sum"):
            return ctx.output(affine(ctx, ref, 1.0, k))
        if op == "Sub":
            return ctx.output(affine(ctx, ref, 1.0, -k) if x_first else affine(ctx, ref, -1.0, k))
        if op == "Mul":
            return ctx.output(affine(ctx, ref, k, 0.0))
        if op == "Div" and x_first and k != 0:
            return ctx.output(affine(ctx, ref, 1.0 / k, 0.0))
        if (op, k) in (("Max", -np.inf), ("Min", np.inf)):  # jax2tf's max(x, -inf): x
            return ctx.output(ref)
        if op == "Max":
            if k == 0.0:
                return ctx.output(relu(ctx, ref))
            # max(x, k) = k + relu(x - k)
            return ctx.output(affine(ctx, relu(ctx, affine(ctx, ref, 1.0, -k, "shift"),
                                               None, "relu"), 1.0, k))
        if op == "Min":
            # min(x, k) = k - relu(k - x)
            return ctx.output(affine(ctx, relu(ctx, affine(ctx, ref, -1.0, k, "flip"),
                                               None, "relu"), -1.0, k))
        if op == "Div":  # k / x: no layer, the Keras operation Divide
            return operations.divide(ctx, node)
        raise ctx.refuse(f"{op} of a constant by a tensor has no Keras layer")
    v = _per_channel(ctx, c, x)
    if v is None:
        return _with_constant_tensor(ctx, node, x, c, x_first)
    one, zero = np.ones_like(v), np.zeros_like(v)
    if op in ("Add", "Sum"):
        return ctx.output(_channel_affine(ctx, ref, one, v))
    if op == "Sub":
        return ctx.output(_channel_affine(ctx, ref, one, -v) if x_first else
                          _channel_affine(ctx, ref, -one, v))
    if op == "Mul":
        return ctx.output(_channel_affine(ctx, ref, v, zero))
    if op == "Div" and x_first and np.all(v != 0):
        return ctx.output(_channel_affine(ctx, ref, (1.0 / v).astype(np.float32), zero))
    raise ctx.refuse(f"{op} with a per-channel constant has no Keras layer")


@rule("Add", "Sub", "Mul", "Div", "Sum", "Max", "Min", "Mean")
def binary(ctx: Ctx, node: ir.Node) -> None:
    """Add, Sub, Mul, Div, Sum, Max, Min, Mean: a merge layer between tensors, a folded layer with a
    constant (else an operation on the static shapes, operations_static)."""
    try:
        _binary(ctx, node)
    except UnsupportedError as refusal:
        operations_static.instead(ctx, node, refusal)


def _binary(ctx: Ctx, node: ir.Node) -> None:
    values = [v for v in node.inputs if v is not None]
    if node.op_type == "Div" and values[0].dtype is not None and \
            values[0].dtype not in operations.FLOATS:
        # Rescaling(1/k) or Divide alone would be true division: 7 / 2 = 3.5, not ONNX's 3
        operations_numeric.integer_divide(ctx, node)
        return
    tensors = [v for v in values if ctx.is_tensor(v)]
    consts = [v for v in values if not ctx.is_tensor(v)]
    if len(values) == 1:
        ctx.output(ctx.ref(values[0]))
        return
    if consts:
        if len(values) != 2 or len(tensors) != 1 or node.op_type == "Mean":
            raise ctx.refuse("constants among more than two operands")
        c = ctx.const(consts[0])
        if c is None:
            raise ctx.refuse(f"{consts[0].name!r} is neither a constant nor computed from the "
                             "inputs")
        _with_constant(ctx, node, tensors[0], c, values[0] is tensors[0])
        return
    if node.op_type == "Div":  # no layer divides: the Keras operation Divide
        operations.divide(ctx, node)
        return
    rank = ctx.rank(values[0])
    if any(ctx.rank(v) != rank for v in values):
        raise ctx.refuse("operands of different ranks: one of them has no batch axis")
    cls = _MERGE[node.op_type]
    if cls == "Subtract" and len(values) != 2:
        raise ctx.refuse("Subtract takes two operands")
    ctx.output(ctx.layer(cls, {}, [ctx.ref(v) for v in values]))


@rule("Neg")
def neg(ctx: Ctx, node: ir.Node) -> None:
    """Neg: Rescaling(-1)."""
    ctx.output(affine(ctx, ctx.ref(ctx.input(node, 0)), -1.0, 0.0))


@rule("Abs")
def abs_(ctx: Ctx, node: ir.Node) -> None:
    """Abs: ReLU(x) + ReLU(-x), exact (one of the two is 0 and adding 0 rounds nothing), in
    layers every target holds (TF's PReLU is written relu(x) + alpha * (x - |x|) / 2)."""
    x = ctx.ref(ctx.input(node, 0))
    negated = relu(ctx, affine(ctx, x, -1.0, 0.0, "negated"), suffix="negative_part")
    ctx.output(ctx.layer("Add", {}, [relu(ctx, x, suffix="positive_part"), negated]))


_CONST_LIMIT = 1 << 24  # elements: a bigger constant operand is refused, not materialised


def _with_constant_tensor(ctx: Ctx, node: ir.Node, x: ir.Value, c: np.ndarray,
                          x_first: bool) -> None:
    """``x op c`` for a constant varying along several axes: ``c`` becomes a Keras tensor
    (``Ctx.constant``) and the op a merge layer."""
    shape = ctx.shape(x)
    dims = static(shape[1:])
    if dims is None:
        raise ctx.refuse(f"a constant operand against a tensor of unknown shape {shape}")
    full = (1,) * (len(shape) - c.ndim) + c.shape
    if full[0] != 1:
        raise ctx.refuse(f"a constant of shape {list(c.shape)} varies along the batch axis")
    value = np.broadcast_to(c.reshape(full)[0], dims)
    if value.size > _CONST_LIMIT:
        raise ctx.refuse(f"a constant operand of {value.size} elements")
    op = node.op_type
    if op == "Div":
        if not x_first or np.any(value == 0):
            raise ctx.refuse("division by a tensor (or by a constant holding zeros)")
        value, op = (1.0 / value.astype(np.float64)).astype(np.float32), "Mul"
    const = ctx.constant(value)
    ref = ctx.ref(x)
    pair = [ref, const] if x_first else [const, ref]
    cls = _MERGE.get(op)
    if cls is None or cls == "Average":
        raise ctx.refuse(f"{op} with a constant tensor has no Keras layer")
    ctx.output(ctx.layer(cls, {}, pair))
