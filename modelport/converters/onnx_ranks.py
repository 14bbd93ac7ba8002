"""Ranks ONNX shape inference leaves unknown, found from what the ops' definitions require.

ONNX inference gives an ``If`` output no shape when its branches return different ranks
(PyTorch's scripted exports squeeze a dimension only when its run-time size is 1:
``If(Shape(x)[k] == 1, Squeeze(x, k), x)``), and everything downstream of it stays unknown —
inside branches too, where a ``Conv`` or an ``LSTM`` then cannot get its channels-last or
time-major form. Yet an op's definition often fixes the rank of what it reads: ``Conv``'s ``X``
has the rank of its weight, ``LSTM``/``GRU``/``RNN``'s ``X`` is 3-D, ``Unsqueeze``'s input has
``len(axes)`` dimensions fewer than its output. Any run onnxruntime completes has those ranks,
so they may be assumed.

``infer_ranks`` propagates ranks (not sizes: every dimension it adds is unknown) until nothing
changes: forward through rank-preserving and rank-shifting ops, backward from the ops'
requirements. Only unknown shapes are filled; a declared or inferred shape is never changed.

Backward steps stay in one scope: a consumer inside a branch runs only when that branch does,
so what it requires is not a fact about an outer value (a branch taken only for 1-D inputs
says nothing about the rank when the other one runs). From an ``If``'s output into each
branch's output is sound (whichever branch ran produced it), and so is the converse where the
branches agree.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

log = logging.getLogger(__name__)

STANDARD = ("", "ai.onnx")
MAX_ROUNDS = 100

# ops whose output has the rank of their (first) input
SAME_RANK = {
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "BitwiseNot", "Cast", "CastLike",
    "Ceil", "Celu", "Clip", "Cos", "Cosh", "CumSum", "Dropout", "Elu", "Erf", "Exp", "Floor",
    "Gelu", "HardSigmoid", "HardSwish", "Hardmax", "Identity", "IsInf", "IsNaN", "LeakyRelu",
    "Log", "LogSoftmax", "LpNormalization", "Mish", "Neg", "Not", "Reciprocal", "Relu", "Round",
    "Selu", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Softmax", "Softplus", "Softsign",
    "Sqrt", "Tan", "Tanh", "ThresholdedRelu", "Trilu",
}
# elementwise ops with broadcasting: the output has the largest rank of the inputs
BROADCAST = {
    "Add", "And", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "Div", "Equal",
    "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Max", "Mean", "Min", "Mod", "Mul",
    "Or", "Pow", "PRelu", "Sub", "Sum", "Where", "Xor",
}
REDUCE = {"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
          "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "ArgMax", "ArgMin"}
RECURRENT = {"LSTM", "GRU", "RNN"}  # X: [seq, batch, input] (or batch-major): 3-D


def rank(v: ir.Value | None) -> int | None:
    """``v``'s rank, None when unknown."""
    return None if v is None or v.shape is None else len(v.shape)


def infer_ranks(model: ir.Model) -> int:
    """Give every value of ``model`` (main graph and subgraphs) whose rank the ops fix but
    whose shape is unknown a shape of that rank (unknown dimensions); how many got one.
    ``Shape``'s output becomes ``[rank]`` where its input's rank is found."""
    graphs = [model.graph, *model.graph.subgraphs()]
    ranks = _Backward(model.graph)
    total = 0
    for _ in range(MAX_ROUNDS):
        found = 0
        for graph in graphs:
            nodes = [n for n in graph if n.domain in STANDARD]
            # forward in order, backward in reverse: a chain is crossed in one round
            found += sum(_forward(node) for node in nodes)
            found += sum(ranks.node(graph, node) for node in reversed(nodes))
        if not found:
            break
        total += found
    if total:
        log.info("ranks found for %d value(s) that shape inference left unknown", total)
    return total


def _set(v: ir.Value | None, r: int | None) -> int:
    """Give ``v`` a shape of rank ``r`` (unknown dims) when its shape is unknown; 1 if done."""
    if v is None or r is None or r < 0 or v.shape is not None:
        return 0
    v.shape = ir.Shape([None] * r)
    return 1


def _const(v: ir.Value | None) -> np.ndarray | None:
    return None if v is None or v.const_value is None else v.const_value.numpy()


def _axes_count(node: ir.Node) -> int | None:
    """How many axes an Unsqueeze/Squeeze/Reduce names (input 1 since opset 13/18, else the
    attribute); None when they are computed at run time or (Squeeze, Reduce) not given."""
    attr = node.attributes.get("axes")
    if attr is not None:
        return len(attr.value)
    axes = _const(node.inputs[1]) if len(node.inputs) > 1 else None
    return None if axes is None else int(np.size(axes))


def _graphs(node: ir.Node) -> list[ir.Graph]:
    return [a.value for a in node.attributes.values() if a.type == ir.AttributeType.GRAPH]


def _forward(node: ir.Node) -> int:
    op, ins, outs = node.op_type, node.inputs, node.outputs
    first = rank(ins[0]) if ins else None
    if op in SAME_RANK:
        return _set(outs[0], first)
    if op in BROADCAST:
        ranks = [rank(v) for v in ins if v is not None]
        known = [r for r in ranks if r is not None]
        return _set(outs[0], max(known)) if known and len(known) == len(ranks) else 0
    if op == "Shape":
        if first is None:
            return 0
        # start/end (opset 15; PyTorch >= 1.12 writes start=0) slice the dims as Python does
        start, end = node.attributes.get("start"), node.attributes.get("end")
        length = len(range(first)[(start.value if start is not None else 0):
                                  (end.value if end is not None else None)])
        found = _set(outs[0], 1)
        if found or (outs[0].shape is not None and not isinstance(outs[0].shape[0], int)):
            outs[0].shape = ir.Shape([length])  # (its one dimension is the count: static)
        return found
    if op == "Size":
        return _set(outs[0], 0)
    if op in ("Reshape", "ConstantOfShape"):
        # the output has one dimension per entry of the shape tensor, whose length is static
        # even where its values are computed at run time (Paddle's exports build Reshape's
        # shape from Shape slices and leave ONNX inference with no shape after it)
        shape = ins[-1] if op == "Reshape" and len(ins) > 1 else ins[0] if ins else None
        return _set(outs[0], _static_length(shape))
    if op == "Slice" and first == 1:
        return _slice_length(node)
    if op == "Concat" and first == 1:
        return _concat_length(node)
    if op in ("Concat", "Transpose", "Slice", "Tile", "Pad"):
        return _set(outs[0], first)
    if op == "Split":
        return sum(_set(out, first) for out in outs)
    if op == "MatMul" and len(ins) == 2:
        other = rank(ins[1])
        # batched products broadcast their leading axes; a 1-D operand loses its axis
        if first is None or other is None or min(first, other) < 1:
            return 0
        if min(first, other) >= 2:
            return _set(outs[0], max(first, other))
        return _set(outs[0], max(first, other) - 1)
    if op == "Gather" and len(ins) == 2:
        idx = rank(ins[1])
        return 0 if first is None or idx is None else _set(outs[0], first + idx - 1)
    if op == "Flatten":
        return _set(outs[0], 2)
    if op == "Unsqueeze":
        n = _axes_count(node)
        return 0 if first is None or n is None else _set(outs[0], first + n)
    if op == "Squeeze":
        n = _axes_count(node)
        return 0 if first is None or n is None else _set(outs[0], first - n)
    if op in REDUCE:
        keep = node.attributes.get("keepdims")
        if keep is None or keep.value:
            return _set(outs[0], first)
        n = _axes_count(node)
        return 0 if first is None or n is None else _set(outs[0], first - n)
    if op == "If":
        branches = _graphs(node)
        found = 0
        for k, out in enumerate(outs):
            agreed = {rank(g.outputs[k]) for g in branches if k < len(g.outputs)}
            if len(agreed) == 1 and len(branches) == 2:
                found += _set(out, agreed.pop())
        return found
    return 0


def _static_length(v: ir.Value | None) -> int | None:
    """The length of a 1-D value whose one dimension is static; None otherwise."""
    if v is None or v.shape is None or len(v.shape) != 1:
        return None
    d = v.shape[0]
    return d if isinstance(d, int) else None


def _sized(out: ir.Value, length: int | None) -> int:
    """Give a 1-D ``out`` of unknown (or unknown-length) shape the static ``length``."""
    if length is None:
        return _set(out, 1)
    if out.shape is None or (len(out.shape) == 1 and not isinstance(out.shape[0], int)):
        out.shape = ir.Shape([length])
        return 1
    return 0


def _constant(v: ir.Value | None) -> np.ndarray | None:
    """``v``'s value where it is an initializer or a ``Constant`` node's output."""
    if v is None:
        return None
    tensor = ir.convenience.get_const_tensor(v)
    return None if tensor is None else tensor.numpy()


def _slice_length(node: ir.Node) -> int:
    """A slice of a 1-D vector of static length by constant bounds (a shape tensor cut from
    ``Shape``'s output) has a static length: Reshape and Expand need it to know their rank."""
    ins = node.inputs
    n = _static_length(ins[0])
    bounds = [_constant(ins[k]) if len(ins) > k else None for k in range(1, 5)]
    starts, ends, axes, steps = bounds
    if n is None or starts is None or ends is None or np.size(starts) != 1 or \
            np.size(ends) != 1 or (len(ins) > 3 and ins[3] is not None and axes is None) or \
            (len(ins) > 4 and ins[4] is not None and steps is None) or \
            (axes is not None and int(np.ravel(axes)[0]) not in (0, -1)):
        return _sized(node.outputs[0], None)
    step = 1 if steps is None else int(np.ravel(steps)[0])
    # ONNX clamps the bounds into range the way Python's slicing does
    cut = range(n)[int(np.ravel(starts)[0]):int(np.ravel(ends)[0]):step]
    return _sized(node.outputs[0], len(cut))


def _concat_length(node: ir.Node) -> int:
    """Concatenated 1-D vectors of static lengths: the sum of the lengths."""
    lengths = [_static_length(v) for v in node.inputs]
    known = [n for n in lengths if n is not None]
    return _sized(node.outputs[0], sum(known) if len(known) == len(lengths) else None)


class _Backward:
    """What nodes require of their inputs' ranks, set on the values their scope defines.

    A requirement on a value from an outer scope is remembered per graph (``wants``): an
    ``If`` whose two branches both require the same rank of an outer value requires it itself
    (whichever branch runs needs it), so it moves out a scope; a ``Loop`` body's may never run
    and stays where it is.
    """

    def __init__(self, top: ir.Graph) -> None:
        self.top = top  # the main graph: its inputs keep their declared shapes
        # graph id -> value id -> (value, rank required; None where two requirements differ)
        self.wants: dict[int, dict[int, tuple[ir.Value, int | None]]] = {}

    def require(self, graph: ir.Graph, v: ir.Value | None, r: int | None) -> int:
        """Rank ``r`` for ``v`` as a node of ``graph`` requires it; 1 if ``v`` got it."""
        if v is None or r is None:
            return 0
        producer = v.producer()
        if producer is not None:
            local = producer.graph is graph
        else:
            # (the model's own inputs keep the shapes the file declares: its interface)
            local = v in graph.inputs and graph is not self.top
        if local:
            return _set(v, r)
        wants = self.wants.setdefault(id(graph), {})
        seen = wants.get(id(v))
        wants[id(v)] = (v, r if seen is None or seen[1] == r else None)
        return 0

    def node(self, graph: ir.Graph, node: ir.Node) -> int:
        """Apply ``node``'s requirements (a node of ``graph``); how many values got a rank."""
        op, ins, outs = node.op_type, node.inputs, node.outputs
        out = rank(outs[0]) if outs else None
        x = ins[0] if ins else None
        if op in SAME_RANK:
            return self.require(graph, x, out)
        if op in ("Unsqueeze", "Squeeze"):
            n = _axes_count(node)
            if out is None or n is None:
                return 0
            return self.require(graph, x, out - n if op == "Unsqueeze" else out + n)
        if op in REDUCE and out is not None:
            keep = node.attributes.get("keepdims")
            if keep is None or keep.value:
                return self.require(graph, x, out)
            n = _axes_count(node)
            return 0 if n is None else self.require(graph, x, out + n)
        if op in ("Conv", "ConvTranspose", "ConvInteger") and len(ins) > 1:
            return self.require(graph, x, rank(ins[1]))
        if op in RECURRENT:
            return self.require(graph, x, 3)
        if op == "If":
            return self._if(graph, node)
        return 0

    def _if(self, graph: ir.Graph, node: ir.Node) -> int:
        found = 0
        branches = _graphs(node)
        for k, v in enumerate(node.outputs):
            for branch in branches:
                if k < len(branch.outputs):
                    found += _set(_branch_local(branch, branch.outputs[k]), rank(v))
        if len(branches) != 2:
            return found
        first, second = (self.wants.get(id(b), {}) for b in branches)
        for key, (v, r) in list(first.items()):
            other = second.get(key)
            if r is not None and other is not None and other[1] == r:
                found += self.require(graph, v, r)
        return found


def _branch_local(branch: ir.Graph, v: ir.Value) -> ir.Value | None:
    """A branch output the branch itself makes (one read from outside is not the branch's to
    type)."""
    producer = v.producer()
    return v if producer is not None and producer.graph is branch else None
