"""Self-attention with one fused q/k/v projection, as ViT-style exports write it: one
MultiHeadAttention layer; and a softmax over the last axis written as Flatten -> Softmax ->
Reshape (how a Softmax before opset 13 reads once brought to one opset): a Softmax layer.

The attention form (PaddlePaddle's SVTR, timm's ViT blocks with the scale on q)::

    qkv = Reshape(x @ Wqkv + bqkv, [N, L, 3, H, D])
    q, k, v = (Squeeze(Transpose(Slice(qkv, i:i+1 on axis 2), (2, 0, 3, 1, 4)), 0)
               for i in 0, 1, 2)                                   # each [N, H, L, D]
    p = softmax((q * c) @ Transpose(k, (0, 1, 3, 2)))              # over the last axis
    y = Reshape(Transpose(p @ v, (0, 2, 1, 3)), [N, L, H * D]) @ Wo + bo

is Keras's MultiHeadAttention(num_heads=H, key_dim=D) called on (x, x), whose query, key and
value projections are the three column blocks of Wqkv (as (C, H, D) kernels) and whose output
projection is Wo (as (H, D, C_out)), when ``c`` is the float32 of ``1 / sqrt(D)``: Keras scales
the projected query by that constant before the product, softmaxes over the keys and
projects, in the same order. Every intermediate value must be read only inside the block.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from ...models import Node
from ..onnx_normalize import optional_input
from .core import Ctx, attr, pattern


def _producer(v: ir.Value | None) -> ir.Node | None:
    return v.producer() if v is not None else None


def _op(node: ir.Node | None, op: str) -> ir.Node | None:
    return node if node is not None and node.op_type == op else None


def _only_use(v: ir.Value | None) -> ir.Node | None:
    """The one node reading ``v`` (not a graph output), else None."""
    if v is None or v.is_graph_output():
        return None
    uses = list(v.uses())
    return uses[0].node if len(uses) == 1 else None


def _ints(ctx: Ctx, v: ir.Value | None) -> list[int] | None:
    value = ctx.const(v)
    return None if value is None else [int(i) for i in np.asarray(value).reshape(-1)]


def _perm(node: ir.Node | None) -> tuple[int, ...] | None:
    return tuple(int(p) for p in attr(node, "perm")) if node is not None and \
        attr(node, "perm") is not None else None


def _dense(ctx: Ctx, v: ir.Value | None) -> tuple[ir.Value, np.ndarray, np.ndarray,
                                                   list[ir.Node]] | None:
    """``v = x @ W + b`` with constant 2-D W and 1-D b: (x, W, b, [MatMul, Add])."""
    add = _op(_producer(v), "Add")
    if add is None or len(add.inputs) != 2:
        return None
    for mm_v, b_v in (add.inputs, add.inputs[::-1]):
        mm = _op(_producer(mm_v), "MatMul")
        b = ctx.const(b_v)
        if mm is None or b is None or b.ndim != 1 or _only_use(mm_v) is not add:
            continue
        w = ctx.const(mm.inputs[1])
        x = mm.inputs[0]
        if w is None or w.ndim != 2 or x is None or ctx.const(x) is not None or \
                w.shape[1] != b.shape[0]:
            continue
        return x, np.asarray(w, np.float32), np.asarray(b, np.float32), [mm, add]
    return None


def _head(ctx: Ctx, v: ir.Value | None) -> tuple[ir.Value, int, list[ir.Node]] | None:
    """``v = Squeeze(Transpose(Slice(qkv, i:i+1 on axis 2), (2, 0, 3, 1, 4)), 0)``:
    (qkv, i, the three nodes)."""
    squeeze = _op(_producer(v), "Squeeze")
    if squeeze is None:
        return None
    axes = _ints(ctx, optional_input(squeeze, 1)) if len(squeeze.inputs) > 1 else \
        [int(a) for a in attr(squeeze, "axes", [])]
    transpose = _op(_producer(squeeze.inputs[0]), "Transpose")
    if axes != [0] or transpose is None or _perm(transpose) != (2, 0, 3, 1, 4) or \
            _only_use(squeeze.inputs[0]) is not squeeze:
        return None
    slc = _op(_producer(transpose.inputs[0]), "Slice")
    if slc is None or _only_use(transpose.inputs[0]) is not transpose or len(slc.inputs) < 3:
        return None
    starts, ends = _ints(ctx, slc.inputs[1]), _ints(ctx, slc.inputs[2])
    axes_s = _ints(ctx, optional_input(slc, 3)) if len(slc.inputs) > 3 else [0]
    steps = _ints(ctx, optional_input(slc, 4)) if len(slc.inputs) > 4 else [1]
    if starts is None or ends is None or axes_s not in ([2], [-3]) or steps != [1] or \
            len(starts) != 1 or ends != [starts[0] + 1] or starts[0] not in (0, 1, 2):
        return None
    qkv = slc.inputs[0]
    return None if qkv is None else (qkv, starts[0], [slc, transpose, squeeze])


def _softmax_last(ctx: Ctx, v: ir.Value | None) -> tuple[ir.Value, list[ir.Node]] | None:
    """``v`` a softmax over the last axis of ``s``: (s, the nodes), directly or as the
    Flatten(axis r - 1) -> Softmax -> Reshape(Shape(s) or s's static shape) of opset < 13."""
    node = _producer(v)
    if node is None or v is None:
        return None
    if node.op_type == "Softmax":
        s = node.inputs[0]
        rank = len(s.shape) if s is not None and s.shape is not None else None
        axis = int(attr(node, "axis", -1))
        if s is not None and rank is not None and rank >= 2 and axis % rank == rank - 1:
            return s, [node]
        return None
    reshape = _op(node, "Reshape")
    soft = _op(_producer(reshape.inputs[0]), "Softmax") if reshape is not None else None
    flat = _op(_producer(soft.inputs[0]), "Flatten") if soft is not None else None
    if reshape is None or soft is None or flat is None or \
            _only_use(reshape.inputs[0]) is not reshape or \
            _only_use(soft.inputs[0]) is not soft:
        return None
    s = flat.inputs[0]
    if s is None or s.shape is None or v.shape is None:
        return None
    rank = len(s.shape)  # rank 1 is the batch alone, which Keras's softmax would run over
    if rank < 2 or int(attr(flat, "axis", 1)) % rank != rank - 1 or \
            int(attr(soft, "axis", -1)) not in (-1, 1):
        return None
    target = reshape.inputs[1]
    shape_node = _op(_producer(target), "Shape")
    if shape_node is not None:
        if shape_node.inputs[0] is not s or attr(shape_node, "start") is not None or \
                attr(shape_node, "end") is not None:
            return None
        inner = [flat, soft, reshape] + ([shape_node] if _only_use(target) is reshape else [])
        return s, inner
    dims = _ints(ctx, target)
    if dims is None or any(not isinstance(d, int) for d in s.shape) or dims != list(s.shape):
        return None
    return s, [flat, soft, reshape]


@pattern
def softmax_over_flatten(ctx: Ctx, graph: ir.Graph) -> None:
    """Flatten(axis r - 1) -> Softmax -> Reshape back: a Softmax layer over the last axis."""
    for node in list(graph):
        if node.op_type != "Reshape" or id(node) in ctx.absorbed or id(node) in ctx.fused:
            continue
        found = _softmax_last(ctx, node.outputs[0])
        if found is None:
            continue
        s, inner = found
        ctx.fuse([n for n in inner if n is not node], node, "Softmax", {"axis": -1}, [s])


@pattern
def fused_qkv_attention(ctx: Ctx, graph: ir.Graph) -> None:
    """The self-attention block of the module docstring: MultiHeadAttention."""
    for node in list(graph):
        if node.op_type == "MatMul" and id(node) not in ctx.absorbed:
            _fuse_attention(ctx, node)


def _fuse_attention(ctx: Ctx, scores: ir.Node) -> None:
    """Claim the attention block whose q @ k^T is ``scores``, if it is one."""
    scaled, kt_v = scores.inputs[0], scores.inputs[1]
    mul = _op(_producer(scaled), "Mul")
    kt = _op(_producer(kt_v), "Transpose")
    if mul is None or kt is None or _perm(kt) != (0, 1, 3, 2):
        return
    q_v = next((v for v in mul.inputs if ctx.const(v) is None), None)
    c = ctx.const(next((v for v in mul.inputs if v is not q_v), None))
    q, k = _head(ctx, q_v), _head(ctx, kt.inputs[0])
    soft = _softmax_of(ctx, scores.outputs[0])
    if q is None or k is None or c is None or c.size != 1 or soft is None:
        return
    probs = _last(soft[1]).outputs[0]
    pv = _only_use(probs)
    if pv is None or pv.op_type != "MatMul" or pv.inputs[0] is not probs:
        return
    v = _head(ctx, pv.inputs[1])
    back = _op(_only_use(pv.outputs[0]), "Transpose")
    merge = _op(_only_use(back.outputs[0]), "Reshape") if back is not None else None
    if v is None or back is None or _perm(back) != (0, 2, 1, 3) or merge is None:
        return
    out = _dense_after(ctx, merge.outputs[0])
    if out is None or {q[1], k[1], v[1]} != {0, 1, 2} or q[1] != 0 or k[1] != 1:
        return
    qkv = q[0]
    if k[0] is not qkv or v[0] is not qkv:
        return
    reshape = _op(_producer(qkv), "Reshape")
    dense_in = _dense(ctx, reshape.inputs[0]) if reshape is not None else None
    if reshape is None or dense_in is None or len(list(qkv.uses())) != 3 or \
            qkv.is_graph_output() or _only_use(reshape.inputs[0]) is not reshape:
        return
    shape = qkv.shape
    if shape is None or len(shape) != 5 or not all(isinstance(d, int) for d in shape[2:]) or \
            shape[2] != 3:
        return
    heads, dim = shape[3], shape[4]
    if not isinstance(heads, int) or not isinstance(dim, int):
        return
    x, w, b, in_nodes = dense_in
    x_shape = x.shape
    if x_shape is None or len(x_shape) != 3 or w.shape[1] != 3 * heads * dim:
        return
    # Keras multiplies the query by float32(1 / sqrt(key_dim)); only that constant is exact
    if np.float32(c.reshape(-1)[0]) != np.float32(1.0 / math.sqrt(dim)):
        return
    merged = merge.outputs[0].shape
    if merged is None or len(merged) != 3 or merged[-1] != heads * dim:
        return
    # the split and the merge keep the batch axis as it is, so (by the element count) the
    # length too: no row crosses a sample
    if not _keeps_batch(ctx, reshape, x_shape[0]) or not _keeps_batch(ctx, merge, x_shape[0]):
        return
    wo, bo, out_nodes = out
    channels = w.shape[0]
    blocks = [w[:, i * heads * dim:(i + 1) * heads * dim].reshape(channels, heads, dim)
              for i in range(3)]
    biases = [b[i * heads * dim:(i + 1) * heads * dim].reshape(heads, dim) for i in range(3)]
    weights = [("query_dense/kernel", blocks[0]), ("query_dense/bias", biases[0]),
               ("key_dense/kernel", blocks[1]), ("key_dense/bias", biases[1]),
               ("value_dense/kernel", blocks[2]), ("value_dense/bias", biases[2]),
               ("output_dense/kernel", wo.reshape(heads, dim, wo.shape[1])),
               ("output_dense/bias", bo)]
    config = {"num_heads": heads, "key_dim": dim, "value_dim": dim, "dropout": 0.0,
              "use_bias": True, "output_shape": None, "attention_axes": None}
    inner = [*in_nodes, reshape, *q[2], *k[2], *v[2], mul, kt, scores, *soft[1], pv, back,
             merge, *out_nodes]
    last = out_nodes[-1]
    ctx.absorbed.update(id(n) for n in inner if n is not last)

    def emit(ctx: Ctx, node: ir.Node) -> None:
        ref = ctx.ref(x)
        ctx.output(ctx.layer("MultiHeadAttention", config, ref, weights=weights,
                             call=Node([ref, ref])))

    ctx.fused[id(last)] = emit


def _softmax_of(ctx: Ctx, s: ir.Value) -> tuple[ir.Value, list[ir.Node]] | None:
    """The softmax over the last axis that is all that reads ``s`` (``_softmax_last``)."""
    if s.is_graph_output():
        return None
    for use in s.uses():
        node = use.node
        start = node if node.op_type == "Softmax" else _only_use(node.outputs[0]) \
            if node.op_type == "Flatten" else None
        if start is None:
            continue
        end = _only_use(start.outputs[0]) if start.op_type == "Softmax" and \
            node.op_type == "Flatten" else start
        if end is None:
            continue
        found = _softmax_last(ctx, end.outputs[0])
        if found is None or found[0] is not s:
            return None
        readers = {id(u.node) for u in s.uses()}
        return found if readers <= {id(n) for n in found[1]} else None
    return None


def _same_dims(a, b) -> bool:
    """Whether two shape prefixes are the same dims (equal sizes or the same symbol)."""
    return len(a) == len(b) and all(
        x == y and (isinstance(x, int) or str(x) not in ("", "None"))
        for x, y in zip(a, b))


def _keeps_batch(ctx: Ctx, reshape: ir.Node, batch: object) -> bool:
    """Whether ``reshape``'s output axis 0 is ``batch``: inferred so, or its input's axis 0 is
    and the target copies it (a constant 0 there, without allowzero)."""
    out, src = reshape.outputs[0].shape, reshape.inputs[0]
    if out is not None and _same_dims(out[:1], [batch]):
        return True
    target = _ints(ctx, reshape.inputs[1])
    return target is not None and target[:1] == [0] and not attr(reshape, "allowzero", 0) \
        and src is not None and src.shape is not None and _same_dims(src.shape[:1], [batch])


def _last(nodes: list[ir.Node]) -> ir.Node:
    """The node of ``nodes`` whose output the others lead to (the Softmax or the Reshape)."""
    return next(n for n in nodes if n.op_type in ("Reshape", "Softmax") and
                not (n.op_type == "Softmax" and any(m.op_type == "Reshape" for m in nodes)))


def _dense_after(ctx: Ctx, v: ir.Value) -> tuple[np.ndarray, np.ndarray, list[ir.Node]] | None:
    """``v @ Wo + bo`` read only there: (Wo, bo, [MatMul, Add])."""
    mm = _op(_only_use(v), "MatMul")
    if mm is None or mm.inputs[0] is not v:
        return None
    add = _op(_only_use(mm.outputs[0]), "Add")
    if add is None:
        return None
    found = _dense(ctx, add.outputs[0])
    if found is None or found[0] is not v:
        return None
    return found[1], found[2], found[3]
