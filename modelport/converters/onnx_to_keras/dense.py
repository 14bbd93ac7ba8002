"""Matrix products with constant weights (Dense) and LayerNormalization."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ...models import TensorRef
from ..onnx_normalize import optional_input
from . import operations
from .core import Ctx, attr, reduction_axes, rule


def _bias_after(ctx: Ctx, out: ir.Value, units: int) -> tuple[np.ndarray, ir.Node] | None:
    """A following ``Add`` of a constant vector over the units, absorbed as the bias."""
    uses = list(out.uses())
    if len(uses) != 1 or out.is_graph_output():
        return None
    add = uses[0].node
    if add.op_type != "Add" or len(add.inputs) != 2:
        return None
    other = add.inputs[1 - uses[0].idx]
    c = ctx.const(other)
    # one number, or a vector along the last axis (any leading axes of size 1)
    if c is None or c.size not in (1, units) or (c.ndim and c.size != c.shape[-1]):
        return None
    return np.broadcast_to(c.reshape(-1).astype(np.float32), (units,)).copy(), add


def dense(ctx: Ctx, x: ir.Value, kernel: np.ndarray, bias: np.ndarray | None,
          out: ir.Value) -> TensorRef:
    """A Dense layer over ``x`` with the given weights, bound to ``out``."""
    units = int(kernel.shape[1])
    # no copies of big weights here: the layer holds views of the source's (memory-mapped)
    # arrays where their layout already is Keras's
    weights = [("kernel", np.asarray(kernel, np.float32))]
    if bias is not None:
        weights.append(("bias", np.asarray(bias, np.float32)))
    return ctx.layer("Dense", {"units": units, "activation": "linear",
                               "use_bias": bias is not None}, ctx.ref(x), weights=weights,
                     out=out)


@rule("Gemm")
def gemm(ctx: Ctx, node: ir.Node) -> None:
    """Gemm with constant B (and C): Dense (transA refused: it would move the batch axis)."""
    a, b = ctx.input(node, 0), ctx.input(node, 1)
    c_v = optional_input(node, 2)
    if int(attr(node, "transA", 0)):
        raise ctx.refuse("transA=1 transposes the batch axis away")
    w = ctx.const(b)
    if w is None:
        raise ctx.refuse("its B operand is computed at run time; Dense holds constant weights")
    if w.ndim != 2:
        raise ctx.malformed(f"its B operand has rank {w.ndim}; Gemm multiplies matrices")
    w = w.T if int(attr(node, "transB", 0)) else w
    alpha = float(attr(node, "alpha", 1.0))
    if alpha != 1.0:
        w = w * alpha
    bias = None
    if c_v is not None:
        c = ctx.const(c_v)
        if c is None:
            raise ctx.refuse("its C operand is computed at run time")
        units = w.shape[1]
        if c.size not in (1, units) or (c.ndim == 2 and c.shape[0] != 1):
            raise ctx.refuse(f"C of shape {list(c.shape)} varies along the batch axis")
        bias = np.broadcast_to(c.reshape(-1), (units,))
        beta = float(attr(node, "beta", 1.0))
        if beta != 1.0:
            bias = bias * beta
    dense(ctx, a, w, bias, node.outputs[0])


@rule("MatMul")
def matmul(ctx: Ctx, node: ir.Node) -> None:
    """MatMul by a constant matrix: Dense, taking in a following Add of a bias vector; of two rank-3
    tensors: Dot."""
    a, b = ctx.input(node, 0), ctx.input(node, 1)
    w = ctx.const(b)
    if w is None or ctx.const(a) is not None:
        if ctx.is_tensor(a) and ctx.is_tensor(b) and ctx.rank(a) == 3 and ctx.rank(b) == 3:
            ctx.output(ctx.layer("Dot", {"axes": [2, 1], "normalize": False},
                                 [ctx.ref(a), ctx.ref(b)]))
            return
        if ctx.is_tensor(a) and ctx.is_tensor(b) and ctx.rank(a) == ctx.rank(b) > 3:
            # attention's [batch, heads, n, d] products: no layer; NumPy's matmul, as ONNX's
            ctx.output(operations.operation(ctx, "Matmul", {}, [ctx.ref(a), ctx.ref(b)]))
            return
        raise ctx.refuse("a product whose right operand is not a constant matrix (or both "
                         "tensors of one rank, 3 or more) has no Keras layer")
    if w.ndim != 2:
        raise ctx.refuse(f"a right operand of rank {w.ndim}: Dense holds a matrix")
    if ctx.rank(a) < 2:
        raise ctx.refuse("a vector left operand has no batch axis")
    fused = _bias_after(ctx, node.outputs[0], w.shape[1])
    if fused is not None:
        bias, add = fused
        ctx.absorbed.add(id(add))
        dense(ctx, a, w, bias, add.outputs[0])
        ctx.bind(node.outputs[0], ctx.tensors[id(add.outputs[0])])
        return
    dense(ctx, a, w, None, node.outputs[0])


@rule("LayerNormalization")
def layer_norm(ctx: Ctx, node: ir.Node) -> None:
    """LayerNormalization over the last axis, constant scale and bias."""
    x = ctx.input(node, 0)
    rank = ctx.rank(x)
    axis = int(attr(node, "axis", -1)) % rank
    if axis != rank - 1:
        raise ctx.refuse("normalization over several axes is raised only for the last one")
    if int(attr(node, "stash_type", 1)) != 1 or (len(node.outputs) > 1 and any(
            o.uses() for o in node.outputs[1:])):
        raise ctx.refuse("mean/inv-std outputs have no Keras equivalent")
    units = ctx.shape(x)[-1]
    if units is None:
        raise ctx.refuse("the size of its last axis is unknown; LayerNormalization holds one "
                         "weight per feature")
    scale = ctx.const(ctx.input(node, 1))
    bias_v = optional_input(node, 2)
    bias = ctx.const(bias_v) if bias_v is not None else np.zeros(units, np.float32)
    if scale is None or bias is None:
        raise ctx.refuse("its scale and bias are computed at run time")
    scale = np.broadcast_to(scale.reshape(-1), (units,)).astype(np.float32)
    bias = np.broadcast_to(bias.reshape(-1), (units,)).astype(np.float32)
    config = {"axis": -1, "epsilon": float(attr(node, "epsilon", 1e-5)), "center": True,
              "scale": True}
    ctx.output(ctx.layer("LayerNormalization", config, ctx.ref(x),
                         weights=[("gamma", scale), ("beta", bias)]))


@rule("ReduceSum")
def reduce_sum(ctx: Ctx, node: ir.Node) -> None:
    """sum(a * b, axis 1, keepdims) of two 2-D tensors: a row-wise dot product (Keras Dot)."""
    x = ctx.input(node, 0)
    axes = reduction_axes(ctx, node)
    mul = x.producer()
    left = optional_input(mul, 0) if mul is not None else None
    right = optional_input(mul, 1) if mul is not None else None
    if mul is None or mul.op_type != "Mul" or axes is None or \
            [int(a) % 2 for a in axes] != [1] or not int(attr(node, "keepdims", 1)) or \
            ctx.rank(x) != 2 or len(mul.inputs) != 2 or \
            not (ctx.is_tensor(left) and ctx.rank(left) == 2 and
                 ctx.is_tensor(right) and ctx.rank(right) == 2) or \
            ctx.shape(left)[1:] != ctx.shape(right)[1:]:
        operations.reduce_sum(ctx, node)  # not a Dot: the Keras operation Sum
        return
    ctx.output(ctx.layer("Dot", {"axes": 1, "normalize": False},
                         [ctx.ref(left), ctx.ref(right)]))
