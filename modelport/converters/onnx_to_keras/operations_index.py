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

``GatherND`` has no Keras operation (``keras.ops`` has ``take`` and ``take_along_axis`` only)
and keeps the default refusal.
"""

from __future__ import annotations

import onnx_ir as ir

from ...models import TensorRef
from .core import Ctx, attr, rule
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
