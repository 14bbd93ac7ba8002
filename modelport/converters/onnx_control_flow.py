"""ONNX control flow made simpler before any target mapping: an ``If`` whose condition is a
constant is replaced by the branch it always takes.

Exporters write such ``If`` nodes where a Python-level branch was traced with a value the
export fixed (a voice-activity model that branches on its sample rate, once the rate is a
constant): the branch taken never changes, so its nodes join the enclosing graph and the ``If``
goes. Nothing else changes: the other branch was never run.

For targets that hold no control flow (Keras layers), ``select_ifs`` also replaces an ``If``
whose condition is computed by both branches and a ``Where`` per output: openWakeWord's
wake-word models run a verifier network only when a first score passes 0.5. Both branches
then run every time; the select picks the taken one's values exactly, whatever the other
computed. Only simple ``If`` nodes are taken: a one-element condition, branches without
control flow of their own, and outputs of one static shape in both branches.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import onnx_ir as ir

from .onnx_ranks import infer_ranks
from .rewire import replace_value

log = logging.getLogger(__name__)


MAX_ROUNDS = 50  # folding rounds (each may expose another constant condition)
SUBGRAPH_FOLD_LIMIT = 1 << 20  # elements: bigger results inside subgraphs stay computed


def fold_constant_ifs(model: ir.Model) -> int:
    """Inline every ``If`` (main graph and, recursively, subgraphs) whose condition is a
    constant, after folding the constants inside subgraphs (``Shape`` of a value whose shape
    inference made static, nodes of constants), and again while that exposes more: scripted
    PyTorch exports branch on ranks and sizes that pinned input shapes make constant. Returns
    how many nodes went; the caller folds the main graph's constants again when any did."""
    total = 0
    for _ in range(MAX_ROUNDS):
        # ranks the ops fix (a Conv's input, an LSTM's) let Size(Shape(x)) fold: the rank tests
        # scripted exports branch on
        infer_ranks(model)
        changed = _fold_subgraph_constants(model) + _inline_ifs(model)
        if not changed:
            break
        total += changed
        _reinfer_subgraphs(model)
    return total


def _inline_ifs(model: ir.Model) -> int:
    folded = 0
    for graph in [model.graph, *model.graph.subgraphs()]:
        for node in list(graph):
            if node.op_type != "If" or node.domain not in ("", "ai.onnx") or not node.inputs:
                continue
            cond = node.inputs[0]
            value = None if cond is None or cond.const_value is None \
                else cond.const_value.numpy()
            if value is None or np.size(value) != 1:
                continue
            branch = node.attributes.get("then_branch" if bool(np.asarray(value).reshape(-1)[0])
                                         else "else_branch")
            if branch is None or branch.type != ir.AttributeType.GRAPH:
                continue
            _inline(graph, node, branch.value)
            folded += 1
    if folded:
        log.info("%d If node(s) with a constant condition inlined", folded)
    return folded


def _inline(graph: ir.Graph, node: ir.Node, branch: ir.Graph) -> None:
    """Move ``branch``'s nodes and initializers in front of ``node``, then route each of
    ``node``'s outputs through an Identity of the branch's output (a branch may return an
    outer value or an initializer, which an Identity turns into a value of this graph)."""
    results = _move(graph, node, branch)
    for out, result in zip(node.outputs, results):
        identity = ir.node("Identity", [result], name=f"{node.name or 'If'}/taken_{out.index()}")
        graph.insert_before(node, identity)
        new = identity.outputs[0]
        new.shape, new.type = _more_static(out.shape, result.shape), out.type or result.type
        replace_value(out, new, always_rename=True)
    graph.remove(node, safe=True)


def select_ifs(model: ir.Model) -> int:
    """Replace each simple ``If`` of the main graph whose condition is computed (see the
    module) by both branches' nodes and ``Where(cond, then, else)`` per output. Returns how
    many went."""
    graph = model.graph
    done = 0
    for node in list(graph):
        if node.op_type != "If" or node.domain not in ("", "ai.onnx") or not node.inputs:
            continue
        cond = node.inputs[0]
        dims = _static(cond)
        if cond is None or cond.const_value is not None or dims is None or math.prod(dims) != 1:
            continue
        branches = [node.attributes.get(k) for k in ("then_branch", "else_branch")]
        if any(b is None or b.type != ir.AttributeType.GRAPH for b in branches):
            continue
        then_g, else_g = (b.value for b in branches if b is not None)
        if not _selectable(node, then_g, else_g, len(dims)):
            continue
        prefix = node.name or "If"
        picked = [_move(graph, node, g, f"{prefix}/{tag}") for g, tag in
                  ((then_g, "then"), (else_g, "else"))]
        for out, t, e in zip(node.outputs, *picked):
            where = ir.node("Where", [cond, t, e], name=f"{prefix}/select_{out.index()}")
            graph.insert_before(node, where)
            new = where.outputs[0]
            new.shape, new.type = _more_static(out.shape, t.shape), out.type or t.type
            replace_value(out, new, always_rename=True)
        graph.remove(node, safe=True)
        done += 1
    if done:
        log.info("%d If node(s) with a computed condition run both branches and select", done)
    return done


def _selectable(node: ir.Node, then_g: ir.Graph, else_g: ir.Graph, cond_rank: int) -> bool:
    """Whether both branches are free of control flow and give outputs of one static shape
    each, of at least the condition's rank (so the select keeps their shape)."""
    for g in (then_g, else_g):
        if len(g.outputs) != len(node.outputs):
            return False
        for inner in g:
            if any(a.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)
                   for a in inner.attributes.values()):
                return False
    for t, e in zip(then_g.outputs, else_g.outputs):
        ts, es = _static(t), _static(e)
        if ts is None or ts != es or len(ts) < cond_rank or t.dtype != e.dtype:
            return False
    return True


def _move(graph: ir.Graph, node: ir.Node, branch: ir.Graph, prefix: str | None = None
          ) -> list[ir.Value]:
    """Move ``branch``'s initializers and nodes in front of ``node``; its outputs. With
    ``prefix`` every name moved goes under it (both branches of one ``If`` may use the same
    names); without, only an initializer whose name is taken gets a new one."""
    for name, init in list(branch.initializers.items()):
        branch.initializers.pop(name)
        if prefix is not None:
            init.name = f"{prefix}/{name}"
        elif name in graph.initializers or any(v.name == name for v in graph.inputs):
            init.name = f"{node.name or 'If'}/{name}"  # (a new name for a clash)
        graph.register_initializer(init)
    moved = list(branch)
    for inner in moved:
        branch.remove(inner)
        if prefix is not None:
            inner.name = f"{prefix}/{inner.name or inner.op_type}"
            for v in inner.outputs:
                if v.name:
                    v.name = f"{prefix}/{v.name}"
    graph.insert_before(node, moved)
    results = list(branch.outputs)
    branch.outputs.clear()
    return results


# --- constants inside subgraphs -------------------------------------------------------------------

def _more_static(a: ir.Shape | None, b: ir.Shape | None) -> ir.Shape | None:
    """Of two shapes of one value, the one with more known dimensions."""
    if a is None or b is None:
        return a or b
    return b if sum(isinstance(d, int) for d in b) > sum(isinstance(d, int) for d in a) else a


def _static(v: ir.Value | None) -> list[int] | None:
    if v is None or v.shape is None:
        return None
    dims = [d for d in v.shape if isinstance(d, int)]
    return dims if len(dims) == len(v.shape) else None


def _const(v: ir.Value | None) -> np.ndarray | None:
    return None if v is None or v.const_value is None else v.const_value.numpy()


def _fold_subgraph_constants(model: ir.Model) -> int:
    """Nodes inside subgraphs whose result is known: ``Shape``/``Size`` of a value with a
    static shape, and nodes whose inputs are all constants (evaluated by ``onnx.reference``).
    Their outputs become initializers of the subgraph."""
    opset = model.opset_imports.get("", 17)
    folded = 0
    for graph in list(model.graph.subgraphs()):
        for node in list(graph):
            if node.graph is not graph:
                continue  # (a Shape removed above once its dims folded)
            if node.domain not in ("", "ai.onnx") or node.op_type in NONDETERMINISTIC or any(
                    a.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)
                    for a in node.attributes.values()):
                continue
            if any(out.is_graph_output() for out in node.outputs):
                continue  # a subgraph's output stays a node's (an initializer may not be one)
            results = _evaluate(node, opset)
            if results is None:
                continue
            for out, array in zip(node.outputs, results):
                value = ir.Value(name=out.name, shape=ir.Shape(array.shape),
                                 type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
                                 const_value=ir.Tensor(array))
                out.name = None
                out.replace_all_uses_with(value)
                graph.register_initializer(value)
            source = node.inputs[0].producer() if node.inputs and node.inputs[0] else None
            graph.remove(node, safe=True)
            if source is not None and source.graph is graph and source.op_type == "Shape" \
                    and not any(out.uses() or out.is_graph_output() for out in source.outputs):
                graph.remove(source, safe=True)  # (a Shape whose dims all folded)
            folded += 1
    return folded


NONDETERMINISTIC = {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike",
                    "Multinomial", "Bernoulli", "Dropout"}


def _picked_dims(node: ir.Node) -> list[np.ndarray] | None:
    """``Gather(Shape(x), k)`` with constant ``k`` where those dimensions of ``x`` are static
    (``x``'s others need not be: ``state.shape[0]`` of a ``[2, batch, 128]`` state)."""
    data, indices = node.inputs[0], _const(node.inputs[1]) if len(node.inputs) > 1 else None
    shape_node = None if data is None else data.producer()
    if indices is None or shape_node is None or shape_node.op_type != "Shape" or \
            shape_node.domain not in ("", "ai.onnx") or \
            shape_node.inputs[0] is None or shape_node.inputs[0].shape is None:
        return None
    axis = node.attributes.get("axis")
    if axis is not None and axis.value != 0:
        return None
    # Shape's start/end (opset 15; PyTorch >= 1.12 writes start=0 on every Shape) pick the
    # dims as a Python slice does (negative counts from the end, out of range clamps)
    start, end = shape_node.attributes.get("start"), shape_node.attributes.get("end")
    dims = list(shape_node.inputs[0].shape)[(start.value if start is not None else 0):
                                            (end.value if end is not None else None)]
    try:
        picked = np.asarray(np.asarray(dims, dtype=object)[np.asarray(indices, np.int64)],
                            dtype=object)
    except IndexError:
        return None
    if not all(isinstance(d, int) for d in picked.reshape(-1)):
        return None
    return [picked.astype(np.int64)]


def _evaluate(node: ir.Node, opset: int) -> list[np.ndarray] | None:
    if node.op_type == "Gather" and node.inputs:
        dims_picked = _picked_dims(node)
        if dims_picked is not None:
            return dims_picked
    if node.op_type in ("Shape", "Size") and node.inputs:
        dims = _static(node.inputs[0])
        if dims is None:
            return None
        if node.op_type == "Size":
            return [np.asarray(int(np.prod(dims)), np.int64)]
        start = node.attributes.get("start")
        end = node.attributes.get("end")
        picked = dims[(start.value if start is not None else 0):
                      (end.value if end is not None else None)]
        return [np.asarray(picked, np.int64)]
    if node.op_type == "Constant":
        value = node.attributes.get("value")
        if value is None or value.type != ir.AttributeType.TENSOR:
            return None  # (value_float, value_ints, ...: left to the mapping)
        return [np.asarray(value.value.numpy())]
    if not node.inputs or any(
            v is not None and _const(v) is None for v in node.inputs):
        return None
    arrays = [None if v is None else _const(v) for v in node.inputs]
    if sum(a.size for a in arrays if a is not None) > SUBGRAPH_FOLD_LIMIT:
        return None
    try:
        import onnx
        from onnx.reference import ReferenceEvaluator

        proto = ir.serde.serialize_node(node)
        names = [f"in{k}" if v is not None else "" for k, v in enumerate(node.inputs)]
        outs = [f"out{k}" for k in range(len(node.outputs))]
        del proto.input[:]
        proto.input.extend(names)
        del proto.output[:]
        proto.output.extend(outs)
        graph = onnx.helper.make_graph(
            [proto], "fold",
            [onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(
                a.dtype), a.shape) for n, a in zip(names, arrays) if a is not None],
            [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None)
             for o in outs])
        single = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid(
            "", opset)])
        results = ReferenceEvaluator(single).run(None, {n: a for n, a in zip(names, arrays)
                                                       if a is not None})
    except Exception:  # noqa: BLE001 - what the reference cannot fold stays computed
        return None
    out = [np.asarray(r) for r in results]
    if any(a.dtype == object or a.size > SUBGRAPH_FOLD_LIMIT for a in out):
        return None
    return out


def _reinfer_subgraphs(model: ir.Model) -> None:
    """Shapes ONNX inference now finds for subgraph values that had none (after inlining, an
    ``If``'s output takes its branch's shape, and what reads it can be known)."""
    import onnx

    from ..models.onnx_model import declare_as_inputs, skeleton

    def forget(g: onnx.GraphProto) -> None:
        # shapes found before a branch was inlined may be stale: inferred afresh
        del g.value_info[:]
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    forget(a.g)
    try:
        proto = declare_as_inputs(*skeleton(model, 1024))
        for n in proto.graph.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    forget(a.g)
        from ..budget import data_prop_safe  # data propagation only where bounded

        inferred = onnx.shape_inference.infer_shapes(proto, check_type=False,
                                                     strict_mode=False,
                                                     data_prop=data_prop_safe(proto))
    except Exception as e:  # noqa: BLE001 - inference is best effort here
        log.info("shape inference inside subgraphs failed: %s", e)
        return
    found: dict[str, onnx.ValueInfoProto] = {}

    def collect(g: onnx.GraphProto) -> None:
        for info in g.value_info:
            found.setdefault(info.name, info)
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    collect(a.g)
                for sub in a.graphs:
                    collect(sub)
    collect(inferred.graph)
    for graph in model.graph.subgraphs():
        for node in graph:
            for v in node.outputs:
                info = found.get(v.name or "")
                if info is None or not info.type.HasField("tensor_type"):
                    continue
                tt = info.type.tensor_type
                if v.type is None and tt.elem_type:
                    v.type = ir.TensorType(ir.DataType(tt.elem_type))
                if not tt.HasField("shape"):
                    continue
                dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                        for d in tt.shape.dim]
                known = sum(isinstance(d, int) for d in dims)
                if v.shape is None or len(v.shape) != len(dims) or known > sum(
                        isinstance(d, int) for d in v.shape):
                    v.shape = ir.Shape(dims)  # (inferred afresh: an inlined branch's shape)
