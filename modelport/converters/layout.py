"""Layout done once: push Transposes down through layout-agnostic ops until they cancel.

Lowerings emit ONNX's channels-first ops (Conv, pooling, Resize, ...) wrapped in a Transpose to
NCHW and one back to NHWC, so each is right on its own. This pass then moves every Transpose
below the ops that do not care about layout (elementwise ops, broadcasts against constants,
Concat, Pad, reductions, Softmax), rewriting their axes and constants, and composes adjacent
Transposes, dropping those that become the identity. A CNN ends with at most one Transpose at
each boundary. ``optimize`` returns the number of Transposes left.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ..errors import FormatError
from .onnx_normalize import input_of

UNARY = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Elu", "Selu", "Softplus", "Softsign",
         "HardSigmoid", "HardSwish", "Exp", "Log", "Neg", "Abs", "Sqrt", "Reciprocal", "Erf",
         "Cast", "Identity", "Mish", "Gelu", "Floor", "Ceil", "Round", "Sign", "Not",
         "ThresholdedRelu", "Celu", "Sin", "Cos"}
# Elementwise with broadcasting; every input must be movable to the transposed layout.
BROADCAST = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu", "Equal",
             "Greater", "Less", "And", "Or", "Where"}
REDUCE = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL2"}
AXIS = {"Softmax", "LogSoftmax", "Concat"}
# Slice with constant starts/ends/axes/steps is pushed with its axes remapped (_push_slice).


def count_transposes(model: ir.Model) -> int:
    """How many Transpose nodes ``model``'s main graph holds."""
    return sum(1 for n in model.graph if n.op_type == "Transpose")


def optimize(model: ir.Model) -> int:
    """Push Transposes down through layout-agnostic ops until they cancel, in place; the
    number of Transposes left.

    Only the main graph is rewritten: a subgraph (an If branch, a Loop or Scan body) is left
    as it is, and a node of a subgraph that reads a main-graph Transpose stops its push (the
    Transpose stays, and the branch reads the same values)."""
    graph = model.graph
    used = [name for name, v in graph.initializers.items() if v.uses()]
    for _ in range(1_000):  # each pass moves something; a bound all the same (hostile graphs)
        if not _one_pass(graph):
            break
    _remove_dead(graph)
    # constants a rewrite replaced by its moved copy (pads, axes, shapes, broadcast operands)
    for name in used:
        v = graph.initializers.get(name)
        if v is not None and not v.uses() and not v.is_graph_output() and not v.is_graph_input():
            graph.initializers.pop(name)
    graph.sort()
    return count_transposes(model)


def _remove_dead(graph: ir.Graph) -> None:
    """Drop nodes none of whose outputs is used (pushing leaves orphaned Transposes behind)."""
    changed = True
    while changed:
        changed = False
        for node in reversed(list(graph)):
            if all(not v.uses() and not v.is_graph_output() for v in node.outputs):
                graph.remove(node, safe=True)
                changed = True


def _label(node: ir.Node) -> str:
    """The node's name, or (ONNX leaves names optional) the name of what it computes."""
    return repr(node.name) if node.name else f"computing {node.outputs[0].name!r}"


def _perm(node: ir.Node) -> list[int]:
    perm = list(node.attributes["perm"].value)
    if sorted(perm) != list(range(len(perm))):
        raise FormatError(f"Transpose node {_label(node)}: perm {perm} is not a permutation")
    return perm


def _one_pass(graph: ir.Graph) -> bool:
    """One walk over the graph, moving every Transpose as far as it goes. The walk is live:
    a rewrite inserts its new Transpose after the node it replaces, so the same walk reaches
    it. A later pass is needed only where a push waited on a Transpose made further on (a
    broadcast or Concat whose other input was not yet transposed), which keeps the whole pass
    linear in the graph instead of a rescan from the top after every rewrite."""
    changed = False
    for node in graph:
        while node.graph is not None and node.op_type == "Transpose" and _step(graph, node):
            changed = True
    return changed


def _step(graph: ir.Graph, node: ir.Node) -> bool:
    perm = _perm(node)
    x = input_of(node, 0)
    y = node.outputs[0]
    if perm == list(range(len(perm))) and not y.is_graph_output():
        y.replace_all_uses_with(x)
        graph.remove(node, safe=True)
        return True
    producer = x.producer()
    if producer is not None and producer.graph is not graph:
        producer = None  # computed in an outer scope: not this walk's to rewrite
    if producer is not None and producer.op_type == "Reshape" and _fold_into_reshape(
            graph, node, producer, perm):
        return True
    if producer is not None and producer.op_type == "Transpose" and not _recurrent_swap(node):
        inner = _perm(producer)
        if len(inner) != len(perm):
            raise FormatError(f"Transpose node {_label(node)}: perm {perm} does not fit the "
                              f"rank-{len(inner)} output of Transpose node {_label(producer)}")
        composed = [inner[p] for p in perm]
        source = input_of(producer, 0)
        if composed == list(range(len(composed))):
            new = ir.node("Identity", [source]) if y.is_graph_output() else None
        else:
            new = ir.node("Transpose", [source], {"perm": ir.AttrInt64s("perm", composed)})
        _replace(graph, node, new, source)
        if not producer.outputs[0].uses() and not producer.outputs[0].is_graph_output():
            graph.remove(producer, safe=True)
        return True
    for consumer in list(y.consumers()):
        if _push(graph, node, consumer):
            if not y.uses() and not y.is_graph_output():
                graph.remove(node, safe=True)
            return True
    return False


def _recurrent_swap(node: ir.Node) -> bool:
    """Whether ``node`` swaps time and batch of a rank-3 tensor that only recurrent ops read
    as X: it stays a Transpose of its own (composed into the Transpose before it, the raising
    would no longer see a time-major view of a batch-first tensor)."""
    uses = list(node.outputs[0].uses())
    return _perm(node) == [1, 0, 2] and bool(uses) and all(
        u.node.op_type in ("LSTM", "GRU", "RNN") and u.idx == 0 for u in uses)


def _fold_into_reshape(graph: ir.Graph, node: ir.Node, reshape: ir.Node, perm: list[int]) -> bool:
    """Transpose(Reshape(x, s)) is Reshape(x, s permuted) when the permutation only moves
    dimensions of size 1 (the [N,1,1,C] <-> [N,C,1,1] of squeeze-and-excite blocks)."""
    shape_value = reshape.inputs[1]
    if shape_value is None or shape_value.const_value is None:
        return False
    shape = [int(d) for d in shape_value.const_value.numpy().reshape(-1)]
    if len(shape) != len(perm) or perm[0] != 0 or any(d in (0, -1) for d in shape[1:]):
        return False
    moved = [shape[p] for p in perm]
    # the axes that are not 1 must keep their order: comparing their sizes would take a swap
    # of two equal-sized axes (seq == head_dim in attention) for no move at all
    kept = [p for p in perm if shape[p] != 1]
    if kept != sorted(kept):
        return False
    new_shape = ir.Value(name=None, const_value=ir.Tensor(np.asarray(moved, np.int64)))
    graph.register_initializer(_named(graph, new_shape, "shape"))
    data = input_of(reshape, 0)
    new = ir.node("Reshape", [data, new_shape])
    _replace(graph, node, new, data)
    if not reshape.outputs[0].uses() and not reshape.outputs[0].is_graph_output():
        graph.remove(reshape, safe=True)
    return True


def _replace(graph: ir.Graph, node: ir.Node, new: ir.Node | None, source: ir.Value) -> None:
    """Replace single-output ``node`` by ``new`` (or by ``source`` itself when None)."""
    y = node.outputs[0]
    name, was_output = y.name, y.is_graph_output()
    if new is not None:
        graph.insert_after(node, new)
        new.outputs[0].type, new.outputs[0].shape = y.type, y.shape
    replacement = new.outputs[0] if new is not None else source
    y.replace_all_uses_with(replacement, replace_graph_outputs=True)
    graph.remove(node, safe=True)
    if was_output:
        replacement.name = name


def _inverse(perm: list[int]) -> list[int]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def _push(graph: ir.Graph, transpose: ir.Node, consumer: ir.Node) -> bool:
    """Rewrite ``consumer(Transpose_P(x), ...)`` as ``Transpose_P(consumer'(x, ...))``."""
    perm = _perm(transpose)
    rank = len(perm)
    op = consumer.op_type
    # A node inside a subgraph (an If branch, a Loop body) may read the Transpose from the
    # outer scope: it belongs to its own graph, which this walk does not rewrite.
    if consumer.graph is not graph or len(consumer.outputs) != 1 or \
            consumer.domain not in ("", "ai.onnx"):
        return False
    if op in UNARY:
        if consumer.inputs[0] is not transpose.outputs[0] or (len(consumer.inputs) > 1 and \
                any(v is not None and v.const_value is None for v in consumer.inputs[1:])):
            return False
        return _rewrite(graph, consumer, [transpose.inputs[0]] + list(consumer.inputs[1:]), {},
                        perm)
    if op in BROADCAST:
        new_inputs = []
        for v in consumer.inputs:
            moved = _in_source_layout(graph, v, perm, rank)
            if moved is None:
                return False
            new_inputs.append(moved)
        return _rewrite(graph, consumer, new_inputs, {}, perm)
    if op in AXIS:
        axis = consumer.attributes["axis"].value if "axis" in consumer.attributes else -1
        axis = axis % rank
        new_inputs = []
        for v in consumer.inputs:
            moved = _source_of(v, perm) if v is not None else None
            if moved is None:
                return False
            new_inputs.append(moved)
        return _rewrite(graph, consumer, new_inputs, {"axis": perm[axis]}, perm)
    if op == "Pad":
        pads_input = consumer.inputs[1] if len(consumer.inputs) > 1 else None
        pads = pads_input.const_value if pads_input is not None else None
        if pads is None or len(consumer.inputs) > 3 or \
                consumer.inputs[0] is not transpose.outputs[0]:
            return False
        p = pads.numpy().reshape(2, rank)
        # y = transpose(x, perm): y axis i is x axis perm[i]; pads follow the axes.
        pads_moved = np.zeros_like(p)
        pads_moved[:, perm] = p
        pads_value = ir.Value(name=None,
                              const_value=ir.Tensor(pads_moved.reshape(-1).astype(np.int64)))
        graph.register_initializer(_named(graph, pads_value, "pads"))
        return _rewrite(graph, consumer, [transpose.inputs[0], pads_value,
                                          *consumer.inputs[2:]], {}, perm)
    if op in REDUCE:
        return _push_reduce(graph, transpose, consumer, perm)
    if op == "Slice":
        return _push_slice(graph, transpose, consumer, perm)
    return False


def _push_slice(graph: ir.Graph, transpose: ir.Node, consumer: ir.Node, perm: list[int]) -> bool:
    # A Slice over axis a of Transpose(x, perm) is the same Slice over axis perm[a] of x.
    inputs = list(consumer.inputs)
    axes_const = inputs[3].const_value if len(inputs) >= 4 and inputs[3] is not None else None
    if inputs[0] is not transpose.outputs[0] or axes_const is None or \
            any(v is not None and v.const_value is None for v in inputs[1:]):
        return False
    rank = len(perm)
    axes = [perm[int(a) % rank] for a in axes_const.numpy().reshape(-1)]
    axes_value = ir.Value(name=None, const_value=ir.Tensor(np.asarray(axes, np.int64)))
    graph.register_initializer(_named(graph, axes_value, "axes"))
    return _rewrite(graph, consumer, [transpose.inputs[0], inputs[1], inputs[2], axes_value,
                                      *inputs[4:]], {}, perm)


def _named(graph: ir.Graph, value: ir.Value, base: str) -> ir.Value:
    i = 0
    name = f"layout_{base}"
    while name in graph.initializers:
        i += 1
        name = f"layout_{base}_{i}"
    value.name = name
    return value


def _source_of(value: ir.Value, perm: list[int]) -> ir.Value | None:
    producer = value.producer()
    if producer is not None and producer.op_type == "Transpose" and _perm(producer) == perm:
        return producer.inputs[0]
    return None


def _in_source_layout(graph: ir.Graph, value: ir.Value | None, perm: list[int],
                      rank: int) -> ir.Value | None:
    """``value`` as it would be before the Transpose: its source, or a transposed constant."""
    if value is None:
        return None
    source = _source_of(value, perm)
    if source is not None:
        return source
    const = value.const_value
    if const is None or value.is_graph_input():
        return None
    array = const.numpy()
    if array.ndim > rank:
        return None
    if array.ndim == 0:
        return value
    full = array.reshape((1,) * (rank - array.ndim) + array.shape)
    moved = np.ascontiguousarray(np.transpose(full, _inverse(perm)))
    new = ir.Value(name=None, const_value=ir.Tensor(moved))
    graph.register_initializer(_named(graph, new, (value.name or "const").replace("/", "_")))
    return new


def _rewrite(graph: ir.Graph, consumer: ir.Node, inputs: list, attrs: dict,
             perm: list[int]) -> bool:
    attributes = {a.name: a for a in consumer.attributes.values()}
    for name, value in attrs.items():
        attributes[name] = ir.AttrInt64(name, int(value))
    new = ir.Node(consumer.domain, consumer.op_type, inputs, attributes=attributes.values(),
                  num_outputs=1, name=consumer.name)
    out = consumer.outputs[0]
    new.outputs[0].type = out.type
    after = ir.node("Transpose", [new.outputs[0]], {"perm": ir.AttrInt64s("perm", perm)})
    after.outputs[0].type = out.type
    after.outputs[0].shape = out.shape
    graph.insert_after(consumer, [new, after])
    out.replace_all_uses_with(after.outputs[0], replace_graph_outputs=True)
    name = out.name
    graph.remove(consumer, safe=True)
    after.outputs[0].name = name
    return True


def _push_reduce(graph: ir.Graph, transpose: ir.Node, consumer: ir.Node, perm: list[int]) -> bool:
    rank = len(perm)
    keepdims = consumer.attributes["keepdims"].value if "keepdims" in consumer.attributes else 1
    if "axes" in consumer.attributes:
        axes = list(consumer.attributes["axes"].value)
        axes_input = False
    elif len(consumer.inputs) > 1 and consumer.inputs[1] is not None and \
            consumer.inputs[1].const_value is not None:
        axes = [int(a) for a in consumer.inputs[1].const_value.numpy().reshape(-1)]
        axes_input = True
    else:
        return False
    axes = [a % rank for a in axes]
    source_axes = sorted(perm[a] for a in axes)
    inputs = [transpose.inputs[0]]
    if axes_input:
        axes_value = ir.Value(name=None, const_value=ir.Tensor(np.asarray(source_axes, np.int64)))
        graph.register_initializer(_named(graph, axes_value, "axes"))
        inputs.append(axes_value)
    attributes = {a.name: a for a in consumer.attributes.values()}
    if not axes_input:
        attributes["axes"] = ir.AttrInt64s("axes", source_axes)
    new = ir.Node(consumer.domain, consumer.op_type, inputs, attributes=attributes.values(),
                  num_outputs=1, name=consumer.name)
    out = consumer.outputs[0]
    new.outputs[0].type = out.type
    if keepdims:
        remaining = perm
    else:
        kept = [p for i, p in enumerate(perm) if i not in axes]  # source axes, in y's order
        order = sorted(kept)
        remaining = [order.index(p) for p in kept]
    nodes = [new]
    result = new.outputs[0]
    if remaining != sorted(remaining):
        after = ir.node("Transpose", [result], {"perm": ir.AttrInt64s("perm", remaining)})
        nodes.append(after)
        result = after.outputs[0]
    result.type = out.type
    result.shape = out.shape
    graph.insert_after(consumer, nodes)
    out.replace_all_uses_with(result, replace_graph_outputs=True)
    name = out.name
    graph.remove(consumer, safe=True)
    result.name = name
    return True
