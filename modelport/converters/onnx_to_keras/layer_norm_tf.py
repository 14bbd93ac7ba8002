"""Keras's ``LayerNormalization`` as TensorFlow computes it, in the form the raising knows.

On TensorFlow, Keras 3's ``LayerNormalization`` is ``tf.nn.batch_normalization`` over moments
of the last axis: ``inv = rsqrt(var + eps) * gamma``, ``y = x * inv + (beta - mean * inv)``.
tf2onnx writes exactly that (the means as ``GlobalAveragePool`` of the rank-3 tensor or
``ReduceMean``). The layer-normalization pattern (``patterns.layer_normalization``) claims the
centred form ``(x - mean) * rsqrt(var + eps) * gamma + beta``, so a subgraph of the TF shape,
matched node by node (each intermediate read only where the formula reads it), is rewritten as
that form before raising; it then raises as one ``LayerNormalization``. The two forms are the
same function; they round differently in the last bits, which the parity check measures.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import const_array, optional_input
from ..rewire import remove_unread, replace_value
from .initializers import add_initializer

STANDARD = ("", "ai.onnx")


def _is(node: ir.Node | None, op: str) -> bool:
    return node is not None and node.op_type == op and node.domain in STANDARD


def _users(v: ir.Value) -> list[ir.Node]:
    return [] if v.is_graph_output() else [u.node for u in v.uses()]


def _other(node: ir.Node, v: ir.Value) -> ir.Value | None:
    ins = list(node.inputs)
    if len(ins) != 2 or v not in ins:
        return None
    return ins[1] if ins[0] is v and ins[1] is not v else ins[0] if ins[1] is v else None


def _mean_axes(node: ir.Node | None, x: ir.Value) -> list[int] | None:
    """The sorted non-batch axes ``node`` takes the mean of ``x`` over, keeping them."""
    if node is None or node.inputs[0] is not x or x.shape is None:
        return None
    rank = len(x.shape)
    if _is(node, "GlobalAveragePool"):
        return [2] if rank == 3 else None
    if not _is(node, "ReduceMean"):
        return None
    keep = node.attributes.get("keepdims")
    given = const_array(optional_input(node, 1))
    attr = node.attributes.get("axes")
    axes = [int(a) for a in given.reshape(-1)] if given is not None else \
        [int(a) for a in attr.value] if attr is not None else None
    if (keep is not None and int(keep.value) != 1) or not axes:
        return None
    found = sorted({a % rank for a in axes})
    return found if 0 not in found else None


class _Match:
    """The TF layer normalization around one ``Sqrt``: its values and nodes."""

    def __init__(self, sqrt: ir.Node) -> None:
        self.ok = False
        self.nodes: list[ir.Node] = [sqrt]
        add = self._producer(sqrt.inputs[0])
        var_v = next((v for v in add.inputs if const_array(v) is None), None) \
            if add is not None and _is(add, "Add") else None
        eps = const_array(_other(add, var_v)) if add is not None and var_v is not None else None
        var = self._producer(var_v)
        square = self._producer(var.inputs[0]) if var is not None else None
        if eps is None or eps.size != 1 or var is None or square is None or \
                not _is(square, "Mul") or square.inputs[0] is not square.inputs[1]:
            return
        d = square.inputs[0]
        sub = self._producer(d)
        if sub is None or not _is(sub, "Sub"):
            return
        x, mean_v = sub.inputs[0], sub.inputs[1]
        mean = mean_v.producer() if mean_v is not None else None
        axes = _mean_axes(mean, x) if x is not None and mean_v is not None else None
        if x is None or mean_v is None or axes is None or \
                _mean_axes(var, square.outputs[0]) != axes:
            return
        self.x, self.eps, self.axes, self.sub = x, float(eps.reshape(-1)[0]), axes, sub
        self.nodes += [add, var, square, sub, mean]  # type: ignore[list-item]
        self.ok = self._tail(sqrt, mean_v)

    def _producer(self, v: ir.Value | None) -> ir.Node | None:
        """The producer of ``v`` when the chain alone reads ``v``."""
        if v is None or len({id(n) for n in _users(v)}) != 1 or v.is_graph_output():
            return None
        return v.producer()

    def _tail(self, sqrt: ir.Node, mean_v: ir.Value) -> bool:
        users = _users(sqrt.outputs[0])
        rec = users[0] if len(users) == 1 and _is(users[0], "Reciprocal") else None
        if rec is None:
            return False
        inv, gamma, self.nodes = rec.outputs[0], None, self.nodes + [rec]
        users = _users(inv)
        if len(users) == 1 and _is(users[0], "Mul"):
            gamma = const_array(_other(users[0], inv))
            if gamma is None:
                return False
            self.nodes.append(users[0])
            inv = users[0].outputs[0]
        self.gamma = gamma
        scales = _users(inv)
        by_x = [n for n in scales if _is(n, "Mul") and _other(n, inv) is self.x]
        rest = [n for n in scales if n not in by_x and _is(n, "Mul")]
        others = [n for n in _users(mean_v) if n is not self.sub]
        if len(scales) != 2 or len(by_x) != 1 or len(rest) != 1 or len(others) != 1:
            return False
        found = self._shift(rest[0], inv, others[0])
        if found is None:
            return False
        shifted, self.beta = found
        after = _users(shifted)
        if len(after) != 1 or not _is(after[0], "Add"):
            return False
        other = _other(after[0], shifted)
        if other is not by_x[0].outputs[0] or len(_users(other)) != 1:
            return False
        self.last = after[0]
        self.nodes += [by_x[0], after[0]]
        return True

    def _shift(self, scale: ir.Node, inv: ir.Value, reader: ir.Node
               ) -> tuple[ir.Value, np.ndarray | None] | None:
        """The value ``beta - mean * inv`` (or ``-mean * inv``) and beta, from ``scale``, the
        other Mul reading ``inv``, and ``reader``, the node reading the mean beside the Sub.
        Keras 3 on TF writes ``Neg(mean) * inv`` then ``+ beta``; TF's
        ``tf.nn.batch_normalization`` ``beta - mean * inv``, or ``Neg(mean * inv)``."""
        if _is(reader, "Neg") and _other(scale, inv) is reader.outputs[0] and \
                len(_users(reader.outputs[0])) == 1:
            self.nodes += [reader, scale]
            shifted = scale.outputs[0]
            after = _users(shifted)
            beta = const_array(_other(after[0], shifted)) \
                if len(after) == 1 and _is(after[0], "Add") else None
            if beta is None:
                return shifted, None
            self.nodes.append(after[0])
            return after[0].outputs[0], beta
        if reader is not scale:
            return None
        self.nodes.append(scale)
        after = _users(scale.outputs[0])
        if len(after) != 1:
            return None
        if _is(after[0], "Neg"):
            self.nodes.append(after[0])
            return after[0].outputs[0], None
        beta = const_array(after[0].inputs[0]) if _is(after[0], "Sub") and \
            after[0].inputs[1] is scale.outputs[0] else None
        if beta is None:
            return None
        self.nodes.append(after[0])
        return after[0].outputs[0], beta


def rewrite_tf_layer_norms(model: ir.Model) -> int:
    """Rewrite each TF-form layer normalization in the centred form; how many."""
    graph = model.graph
    opset = model.opset_imports.get("", 13)
    done = 0
    for sqrt in list(graph):
        if sqrt.graph is not graph or not _is(sqrt, "Sqrt"):
            continue
        m = _Match(sqrt)
        if m.ok:
            _replace(graph, m, opset)
            done += 1
    return done


def _replace(graph: ir.Graph, m: _Match, opset: int) -> None:
    base = m.last.name or "layer_norm"
    x = m.x
    made: list[ir.Node] = []

    def add(op: str, inputs: list, attrs: dict | None = None) -> ir.Value:
        node = ir.node(op, inputs, attrs or {}, name=f"{base}/{op}_{len(made)}")
        node.outputs[0].type = x.type
        made.append(node)
        return node.outputs[0]

    def mean(v: ir.Value) -> ir.Value:
        if opset >= 18:
            return add("ReduceMean", [v, add_initializer(graph, f"{base}/axes",
                                                         np.array(m.axes, np.int64))],
                       {"keepdims": 1})
        return add("ReduceMean", [v], {"axes": m.axes, "keepdims": 1})

    mu = mean(x)
    centred = add("Sub", [x, mu])
    var = mean(add("Mul", [centred, centred]))
    eps = add_initializer(graph, f"{base}/epsilon", np.array(m.eps, np.float32))
    root = add("Sqrt", [add("Add", [var, eps])])
    y = add("Mul", [centred, add("Reciprocal", [root])])
    if m.gamma is not None:
        y = add("Mul", [y, add_initializer(graph, f"{base}/gamma", m.gamma)])
    if m.beta is not None:
        y = add("Add", [y, add_initializer(graph, f"{base}/beta", m.beta)])
    graph.insert_before(m.last, made)
    out = m.last.outputs[0]
    y.shape = out.shape
    replace_value(out, y, always_rename=True)
    for node in reversed(m.nodes):
        if node.graph is graph:
            graph.remove(node, safe=False)


# --- Keras 2's form: a fused batch normalization over the rows ----------------------------------
#
# tf_keras computes LayerNormalization over the last axis as ``FusedBatchNormV3`` of ``x``
# reshaped to ``[1, rows, features, 1]`` with scale ones and offset zeros made at run time
# (``Expand``) and the moments of that reshape, then reshapes back and applies gamma and beta.
# The subgraph from ``x`` to the reshape back depends on ``x`` alone; it is run by
# ``onnx.reference`` on a seeded ``x`` and, where it equals ``(x - mean) / sqrt(var + eps)`` over
# the last axis (eps: the BatchNormalization's), rewritten as the centred form; the Mul / Add of
# gamma and beta after it are taken in by the pattern as before.

MAX_NODES = 48
TOLERANCE = 1e-5


def _ancestors(y: ir.Value, x: ir.Value) -> list[ir.Node] | None:
    """The nodes ``y`` is computed by from ``x`` and constants only, or None."""
    nodes: dict[int, ir.Node] = {}
    stack = [y]
    while stack:
        v = stack.pop()
        if v is x or const_array(v) is not None:
            continue
        p = v.producer()
        if p is None or p.domain not in STANDARD or len(nodes) > MAX_NODES:
            return None
        if id(p) not in nodes:
            nodes[id(p)] = p
            stack.extend(i for i in p.inputs if i is not None)
    graph = y.graph
    order = {id(n): i for i, n in enumerate(graph)} if graph is not None else {}
    return sorted(nodes.values(), key=lambda n: order.get(id(n), 0))


def _normalizes_rows(nodes: list[ir.Node], x: ir.Value, y: ir.Value, eps: float,
                     opset: int) -> bool:
    import onnx
    from onnx.reference import ReferenceEvaluator

    dims = [d if isinstance(d, int) else 2 for d in (x.shape or [])]
    if len(dims) < 2 or x.name is None or y.name is None or \
            any(not isinstance(d, int) for d in list(x.shape or [])[1:]):
        return False
    inits, seen = [], set()
    for n in nodes:
        for v in n.inputs:
            c = const_array(v) if v is not None else None
            if v is not None and c is not None and v.name not in seen:
                seen.add(v.name)
                inits.append(onnx.numpy_helper.from_array(np.asarray(c), v.name))
    graph = onnx.helper.make_graph(
        [ir.serde.serialize_node(n) for n in nodes], "ln",
        [onnx.helper.make_tensor_value_info(x.name, onnx.TensorProto.FLOAT, None)],
        [onnx.helper.make_tensor_value_info(y.name, 0, None)], inits)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    trial = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
    try:
        (got,) = ReferenceEvaluator(model).run(None, {x.name: trial})
    except Exception:  # noqa: BLE001 - what the reference cannot run proves nothing
        return False
    t = trial.astype(np.float64)
    mean = t.mean(axis=-1, keepdims=True)
    want = (t - mean) / np.sqrt(((t - mean) ** 2).mean(axis=-1, keepdims=True) + eps)
    got = np.asarray(got)
    return got.shape == want.shape and bool(np.max(np.abs(got - want)) <= TOLERANCE * 10)


def rewrite_batchnorm_layer_norms(model: ir.Model) -> int:
    """Rewrite each Keras 2 layer normalization (a BatchNormalization over the rows of a
    reshape, proven on a seeded input) in the centred form; how many."""
    graph = model.graph
    opset = model.opset_imports.get("", 13)
    done = 0
    for bn in list(graph):
        if bn.graph is not graph or not _is(bn, "BatchNormalization"):
            continue
        flat = bn.inputs[0].producer() if bn.inputs[0] is not None else None
        users = _users(bn.outputs[0])
        back = users[0] if len(users) == 1 and _is(users[0], "Reshape") else None
        if flat is None or not _is(flat, "Reshape") or back is None or flat.inputs[0] is None:
            continue
        x, y = flat.inputs[0], back.outputs[0]
        eps_attr = bn.attributes.get("epsilon")
        eps = float(eps_attr.value) if eps_attr is not None else 1e-5
        nodes = _ancestors(y, x)
        if nodes is None or x.shape is None or y.shape is None or \
                list(x.shape)[1:] != list(y.shape)[1:] or \
                not _normalizes_rows(nodes, x, y, eps, opset):
            continue
        _centred(graph, x, y, eps, opset, back.name or "layer_norm")
        done += 1
    return done


def _centred(graph: ir.Graph, x: ir.Value, y: ir.Value, eps: float, opset: int,
             base: str) -> None:
    """``y`` (the normalized rows of ``x``) recomputed in the centred form, the old nodes
    left to the sweep."""
    rank = len(x.shape) if x.shape is not None else 0
    made: list[ir.Node] = []

    def add(op: str, inputs: list, attrs: dict | None = None) -> ir.Value:
        node = ir.node(op, inputs, attrs or {}, name=f"{base}/{op}_{len(made)}")
        node.outputs[0].type = x.type
        made.append(node)
        return node.outputs[0]

    def mean(v: ir.Value) -> ir.Value:
        if opset >= 18:
            return add("ReduceMean", [v, add_initializer(graph, f"{base}/axes", np.array([-1]))],
                       {"keepdims": 1})
        return add("ReduceMean", [v], {"axes": [rank - 1], "keepdims": 1})

    centred = add("Sub", [x, mean(x)])
    var = mean(add("Mul", [centred, centred]))
    root = add("Sqrt", [add("Add", [var, add_initializer(graph, f"{base}/epsilon",
                                                  np.array(eps, np.float32))])])
    out = add("Mul", [centred, add("Reciprocal", [root])])
    producer = y.producer()
    assert producer is not None
    graph.insert_before(producer, made)
    out.shape = y.shape
    replace_value(y, out, always_rename=True)
    remove_unread(graph)
