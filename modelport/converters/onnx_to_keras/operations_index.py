"""ONNX TopK raised to the Keras 3 operation ``TopK`` (``keras.ops.top_k``).

``TopK(X, K)`` with ``largest=1``, ``sorted=1`` along the last axis and a constant ``K`` is
``ops.top_k(x, k, sorted=True)``: the k largest values in descending order and their indices.
Keras records it as one operation node with two outputs (``keras_history`` ``[top_k, 0, 0]``
for the values, ``[top_k, 0, 1]`` for the indices) and loads it so from a ``.keras`` file.
Ties: ONNX puts the lower index first; so do the JAX (``lax.top_k``) and TensorFlow
(``tf.math.top_k``) backends of Keras 3, and the NumPy reference the check runs. (Keras's
NumPy backend, which only runs inference, orders equal values by a reversed ``argsort``, and
torch's ``topk`` leaves their order unspecified.) The indices are int32, as every integer
tensor of the raised model is (ONNX's int64). ``largest=0`` (Keras's top_k has no smallest),
``sorted=0`` (ONNX leaves the order to the runtime) and other axes are refused by name.

TF's batch gather (``tf.gather(x, i, batch_dims=1)``, CenterNet's box lookup) reaches ONNX,
for a batch of one, as ``Reshape(x [1, d..., C] -> [M, C])``, ``Gather(axis=0)`` by
``Reshape(i [1, K] -> [K])`` and ``Reshape(-> [1, K, C])``: each sample's rows picked by its
own indices. That is ``take_along_axis(reshape(x, [1, M, C]), i[..., None], axis=1)``, a Keras
``Reshape`` layer and the operations ``Cast`` (int32: Keras takes integer indices only, and the
integer arithmetic that computes them may have been raised to float32 layers), ``ExpandDims``
and ``TakeAlongAxis``, which keep the batch
(the ONNX graph runs at batch 1 only; the Keras model gathers per sample at any batch).

``GatherND`` has no Keras operation (``keras.ops`` has ``take`` and ``take_along_axis`` only)
and keeps the default refusal.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx_ir as ir

from ...models import TensorRef
from .core import Ctx, attr, pattern, rule, static
from .operations import operation

MATH = "keras.src.ops.math"


@rule("TopK")
def top_k(ctx: Ctx, node: ir.Node) -> None:
    """TopK of the largest values along the last axis, sorted, a constant K: ``TopK``."""
    x = ctx.input(node, 0)
    rank = ctx.rank(x)
    axis = int(attr(node, "axis", -1)) % max(rank, 1)
    if rank < 2 or axis != rank - 1:
        raise ctx.refuse(f"axis {axis} of a rank-{rank} tensor: Keras's top_k takes the last "
                         "axis, and never the batch")
    if not int(attr(node, "largest", 1)):
        raise ctx.refuse("largest=0 (the k smallest) has no Keras operation")
    if not int(attr(node, "sorted", 1)):
        raise ctx.refuse("sorted=0 leaves the order of the k values to the runtime")
    k = ctx.const(ctx.input(node, 1))
    if k is None or k.size != 1:
        raise ctx.refuse("its K is computed at run time (Keras's top_k takes a number)")
    size = ctx.shape(x)[-1]
    k_ = int(k.reshape(-1)[0])
    if size is not None and not 0 <= k_ <= size:
        raise ctx.malformed(f"K={k_} is more than the {size} values along the axis")
    values = operation(ctx, "TopK", {"k": k_, "sorted": True}, [ctx.ref(x)])
    ctx.layers[-1].module = MATH  # ops.top_k lives in keras.src.ops.math
    ctx.output(values, 0)
    if len(node.outputs) > 1:
        ctx.output(TensorRef(values.layer, values.node, 1), 1)


def _only_use(v: ir.Value) -> ir.Node | None:
    uses = list(v.uses())
    return uses[0].node if len(uses) == 1 and not v.is_graph_output() else None


def _static_shape(v: ir.Value) -> list[int] | None:
    """``v``'s shape where every size is known, else None."""
    if v.shape is None:
        return None
    return static([d if isinstance(d, int) else None for d in v.shape])


def _reshaped(node: ir.Node | None) -> ir.Value | None:
    """The input of a Reshape (else None)."""
    if node is None or node.op_type != "Reshape" or not node.inputs:
        return None
    return node.inputs[0]


@pattern
def batch_gather(ctx: Ctx, graph: ir.Graph) -> None:
    """Reshape -> Gather(axis 0) -> Reshape of a batch of one: a per-sample gather."""
    for gather in list(graph):
        if gather.op_type != "Gather" or int(attr(gather, "axis", 0)) != 0 or \
                len(gather.inputs) != 2:
            continue
        data, indices = gather.inputs
        if data is None or indices is None:
            continue
        x, i = _reshaped(data.producer()), _reshaped(indices.producer())
        after = _only_use(gather.outputs[0])
        if x is None or i is None or after is None or after.op_type != "Reshape" or \
                _only_use(data) is not gather or i.shape is None or len(i.shape) != 2 or \
                i.dtype not in (ir.DataType.INT32, ir.DataType.INT64):
            continue
        x_shape, rows, out = _static_shape(x), _static_shape(data), \
            _static_shape(after.outputs[0])
        picks = [d if isinstance(d, int) else None for d in i.shape]
        # x's batch is 1, so is every batch-first tensor's, i's among them ([1, K] -> [K]):
        # its size along axis 1 may be unknown to shape inference (TopK's K folded late)
        if x_shape is None or rows is None or out is None or x_shape[0] != 1 or \
                len(rows) < 2 or int(np.prod(rows)) != int(np.prod(x_shape)) or \
                out[0] != 1 or out[2:] != rows[1:] or picks[0] not in (1, None) or \
                picks[1] not in (out[1], None):
            continue
        inner = [data.producer(), gather]
        if _only_use(indices) is gather:
            inner.append(indices.producer())
        ctx.absorbed.update(id(n) for n in inner if n is not None)
        ctx.fused[id(after)] = _emit(x, x_shape, i, rows)


def _emit(x: ir.Value, x_shape: list[int], i: ir.Value, rows: list[int]
          ) -> Callable[[Ctx, ir.Node], None]:
    """The raising of a batch gather of ``x``'s ``rows`` by ``i`` (see ``batch_gather``)."""
    def emit(ctx: Ctx, node: ir.Node) -> None:
        data = ctx.ref(x)
        if x_shape[1:] != rows:
            data = ctx.layer("Reshape", {"target_shape": rows}, data, suffix="rows")
        # integer ONNX arithmetic on the indices may have been raised to float32 layers
        # (Subtract, Rescaling: integers below 2**24, exact); Keras takes integer indices only
        index = operation(ctx, "Cast", {"dtype": "int32"}, [ctx.ref(i)])
        ctx.layers[-1].module = "keras.src.ops.core"
        for _ in rows[1:]:  # one index per row: broadcast along the row's axes
            index = operation(ctx, "ExpandDims", {"axis": -1}, [index])
        ctx.output(operation(ctx, "TakeAlongAxis", {"axis": 1}, [data, index]))
    return emit
