"""ONNX TopK, TF's batch gather and per-sample GatherND raised to Keras 3 operations.

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

``GatherND`` has no Keras operation (``keras.ops`` has ``take`` and ``take_along_axis``); its
per-sample form (``batch_dims=1``: sample n's cells ``data[n, i[n, k, :]]``, what
``tf.gather_nd(..., batch_dims=1)`` exports to) is composed exactly of them: each index column
``Take``-n, wrapped into range by ``Mod`` (ONNX counts negative indices from the end), scaled by
its row stride (``Multiply``) and summed (``Add``), picks a row of the data reshaped to
``[rows, rest...]`` (``TakeAlongAxis`` along axis 1, the index expanded over the rest), all in
int32 integer arithmetic (exact below 2**31 cells). ``batch_dims=0`` indexes the batch axis
itself (a sample may read another's cells), which no Keras tensor may: refused, as are other
batch_dims and indices of rank above 3.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx_ir as ir

from ...models import TensorRef
from . import operations_static
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


@rule("GatherND")
def gather_nd(ctx: Ctx, node: ir.Node) -> None:
    """Per-sample GatherND (``batch_dims=1``, indices ``[N, m]`` or ``[N, K, m]``): the Keras
    operations Take/Mod/Multiply/Add/TakeAlongAxis over a reshaped data tensor."""
    data, indices = ctx.input(node, 0), ctx.input(node, 1)
    if int(attr(node, "batch_dims", 0)) == 0:  # the batch indexed: literal shapes only
        operations_static.instead(ctx, node, ctx.refuse(
            "batch_dims=0: only the per-sample gather (batch_dims=1) keeps each sample to its "
            "own cells"))
        return
    if int(attr(node, "batch_dims", 0)) != 1:
        raise ctx.refuse(f"batch_dims={int(attr(node, 'batch_dims', 0))}: only the per-sample "
                         "gather (batch_dims=1) keeps each sample to its own cells")
    dims, idx = ctx.shape(data), ctx.shape(indices)
    m = idx[-1]
    if len(idx) not in (2, 3) or m is None or not 1 <= m < len(dims):
        raise ctx.refuse(f"indices of shape {idx} (Keras's form takes [N, m] or [N, K, m] with "
                         "a known m)")
    known = static(dims[1:])
    if known is None:
        raise ctx.refuse(f"the data's shape {dims} is not static beyond the batch")
    cells, rest = known[:m], known[m:]
    # integer ONNX arithmetic on the indices may have been raised to float32 layers
    whole = operation(ctx, "Cast", {"dtype": "int32"}, [ctx.ref(indices)])
    ctx.layers[-1].module = "keras.src.ops.core"
    linear: TensorRef | None = None
    stride = int(np.prod(cells))
    for j, size in enumerate(cells):
        stride //= size
        column = operation(ctx, "Take", {"axis": -1}, [whole, j])
        column = operation(ctx, "Mod", {}, [column, size])
        if stride != 1:
            column = operation(ctx, "Multiply", {}, [column, stride])
        linear = column if linear is None else operation(ctx, "Add", {}, [linear, column])
    assert linear is not None  # m >= 1
    rows = ctx.layer("Reshape", {"target_shape": [int(np.prod(cells)), *rest]},
                     ctx.ref(data), suffix="rows")
    if len(idx) == 2:  # one cell per sample: [N] -> [N, 1]
        linear = operation(ctx, "ExpandDims", {"axis": 1}, [linear])
    for _ in rest:
        linear = operation(ctx, "ExpandDims", {"axis": -1}, [linear])
    picked = operation(ctx, "TakeAlongAxis", {"axis": 1}, [rows, linear])
    if len(idx) == 2:
        picked = operation(ctx, "Squeeze", {"axis": 1}, [picked])
    ctx.output(picked)
