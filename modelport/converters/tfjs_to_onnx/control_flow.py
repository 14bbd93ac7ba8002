"""TF control flow v2 -> ONNX: ``StatelessIf`` -> ``If``, ``StatelessWhile`` -> ``Loop``.

``tensorflowjs_converter --control_flow_v2`` keeps ``tf.cond``/``tf.while_loop`` as these ops,
their branches, condition and body being functions of the model's library. Each function is
converted on its own (``models.tfjs_functions.as_graph`` makes it a graph whose inputs are its
args, shaped from the probe) by the same driver, and becomes an ONNX subgraph:

* ``StatelessIf(cond, args...)``: each branch's graph with its inputs replaced by the outer
  values of ``args`` (an ONNX branch has no inputs: it reads the enclosing graph). ``cond`` is
  taken as tfjs does, its first element, non-zero meaning true.
* ``StatelessWhile(args...)``: ``Loop(M="", cond(args), args...)`` whose body runs the TF
  body and then the TF condition on its results (ONNX checks the condition a body returns
  before the next trip, TF evaluates ``cond`` before each ``body``; the first check is the
  ``cond`` evaluated in the enclosing graph). A loop value whose shape changes between trips
  is given to the functions with that dimension unknown.

Every name inside a subgraph is prefixed with the node's, so no name is shared across scopes.
TF1 control flow (``Switch``/``Merge``/``Enter``/``Exit``/``NextIteration``/``LoopCond``, what
``tensorflowjs_converter`` writes without ``--control_flow_v2``) is lifted to v2 first
(``lift_v1``); a shape the lift does not recognise is refused naming the flag.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx_ir as ir

from ...errors import UnsupportedError
from ...models import TfjsGraph, tfjs_tensor_arrays
from ...models import tfjs_graph as tg
from ...models.tfjs_control_v1 import lift
from ...models.tfjs_functions import as_graph
from ...models.tfjs_tensor_lists import dense
from .core import MAPPINGS, TfOp

# TF1 frames: no mapping; the refusal says how to get v2 instead.
V1_OPS = ("Switch", "Merge", "Enter", "Exit", "NextIteration", "LoopCond")
V1_HINT = ("TF1 control flow (Switch/Merge/Enter/Exit/NextIteration): convert the model again "
           "with tensorflowjs_converter --control_flow_v2=true, whose StatelessIf/"
           "StatelessWhile become ONNX If/Loop")


def lift_v1(graph: TfjsGraph) -> TfjsGraph:
    """``graph`` with TF1 conds and loops lifted to ``StatelessIf``/``StatelessWhile``, and
    its tensor lists (a Keras RNN's loop) and TF1 TensorArrays (a TF1 ``map_fn``) as dense
    tensors (``models.tfjs_tensor_lists``, ``models.tfjs_tensor_arrays``)."""
    return dense(lift(tfjs_tensor_arrays.dense(graph)))


def _library(op: TfOp) -> TfjsGraph:
    graph = op.ctx.graph
    if graph is None:
        raise op.fail("the graph's function library is not available to the mapping")
    return graph


def _func(op: TfOp, attr: str) -> str:
    value = op.node.attrs.get(attr) or {}
    name = (value.get("func") or {}).get("name") if isinstance(value, dict) else None
    if not isinstance(name, str) or name not in _library(op).functions:
        raise op.bad(f"attribute {attr!r} names no function of the library ({name!r})")
    return name


def _convert(op: TfOp, name: str, shapes: list[list[int | None] | None]) -> ir.Graph:
    """Function ``name`` as an ONNX graph (its inputs the function's args), every name in it
    prefixed with a unique ``<node>/<function>/``."""
    convert = op.ctx.convert
    assert convert is not None  # (set by the driver before any mapping runs)
    if any(s is None for s in shapes):
        unknown = [k for k, s in enumerate(shapes) if s is None]
        raise op.fail(f"the rank of argument(s) {unknown} of function {name!r} is unknown")
    graph = convert(as_graph(_library(op), name, shapes), op.ctx.opset).graph
    prefix = op.ctx.builder.unique(f"{op.name}/{name}") + "/"
    for g in (graph, *graph.subgraphs()):
        for v in [*g.inputs, *g.initializers.values()]:
            v.name = prefix + (v.name or "v")
        for node in g:
            node.name = prefix + (node.name or node.op_type)
            for v in node.outputs:
                v.name = prefix + (v.name or "v")
    for name_, v in list(graph.initializers.items()):  # re-keyed by the new names
        graph.initializers.pop(name_)
        graph.register_initializer(v)
    return graph


def _arg_shapes(op: TfOp, count: int, start: int = 0) -> list[list[int | None] | None]:
    return [op.shape(start + k) for k in range(count)]


def _as_condition(op: TfOp, cond: ir.Value) -> ir.Value:
    """``cond`` as ONNX's one-element bool: its first element, non-zero meaning true."""
    shape = op.shape(0)
    if shape is None or int(np.prod([d if d is not None else 2 for d in shape])) != 1:
        cond = op.emit("Gather", op.emit("Reshape", cond, op.b_.ints([-1])),
                       op.b_.const(np.asarray(0, np.int64), f"{op.name}/first"))
    if op.dtype(0) != "bool":
        cond = op.emit("Not", op.emit("Equal", cond, op.emit("CastLike", op.scalar(0.0), cond)))
    return cond


def _bind(graph: ir.Graph, outer: list[ir.Value]) -> ir.Graph:
    """``graph`` with its inputs replaced by the enclosing graph's ``outer`` values."""
    for inner, value in zip(list(graph.inputs), outer):
        inner.replace_all_uses_with(value)
    graph.inputs.clear()
    return graph


@MAPPINGS.register("StatelessIf")
def _if(op: TfOp) -> list[ir.Value]:
    args = list(op.inputs[1:])
    shapes = _arg_shapes(op, len(args), 1)
    then_g = _bind(_convert(op, _func(op, "then_branch"), shapes), args)
    else_g = _bind(_convert(op, _func(op, "else_branch"), shapes), args)
    n_out = len(then_g.outputs)
    return op.emits("If", _as_condition(op, op.inputs[0]), outputs=n_out,
                    then_branch=then_g, else_branch=else_g)


@MAPPINGS.register("StatelessWhile")
def _while(op: TfOp) -> list[ir.Value]:
    args = list(op.inputs)
    shapes = _loop_shapes(op, len(args))
    cond_name, body_name = _func(op, "cond"), _func(op, "body")
    # the first check, in the enclosing graph
    first = _replay(op, _convert(op, cond_name, shapes), args)[0]
    first = _first_true(op, first)
    body = _convert(op, body_name, shapes)
    results = list(body.outputs)
    prefix = op.ctx.builder.unique(f"{op.name}/loop") + "/"
    check = _inline(_convert(op, cond_name, shapes), body, results, prefix)[0]
    check = _first_true_in(body, check, prefix)
    iteration = ir.Value(name=prefix + "iteration", type=ir.TensorType(ir.DataType.INT64),
                         shape=ir.Shape([]))
    cond_in = ir.Value(name=prefix + "cond_in", type=ir.TensorType(ir.DataType.BOOL),
                       shape=ir.Shape([]))
    body.inputs.insert(0, cond_in)
    body.inputs.insert(0, iteration)
    body.outputs.insert(0, check)
    return op.emits("Loop", None, first, *args, outputs=len(args), body=body)


def _loop_shapes(op: TfOp, count: int) -> list[list[int | None] | None]:
    """The loop values' shapes: the start value's, a dimension unknown where the value after
    the loop or the While's ``output_shapes`` says it varies."""
    out = []
    declared = tg.attr_list(op.node, "output_shapes", "shape")
    for k in range(count):
        shape = op.shape(k)
        after = op.out_shape(k)
        if shape is not None and after is not None and len(after) == len(shape):
            shape = [a if a == b else None for a, b in zip(shape, after)]
        if shape is not None and k < len(declared) and declared[k] is not None \
                and len(declared[k]) == len(shape):
            shape = [a if b is not None else None for a, b in zip(shape, declared[k])]
        out.append(shape)
    return out


def _first_true(op: TfOp, cond: ir.Value) -> ir.Value:
    """tfjs's truth of a condition tensor (its first element non-zero), in the outer graph."""
    flat = op.emit("Reshape", cond, op.b_.ints([-1]))
    first = op.emit("Gather", flat, op.b_.const(np.asarray(0, np.int64), f"{op.name}/first"))
    if cond.type is not None and cond.type.dtype == ir.DataType.BOOL:
        return first
    return op.emit("Not", op.emit("Equal", first, op.emit("CastLike", op.scalar(0.0), first)))


def _first_true_in(graph: ir.Graph, cond: ir.Value, prefix: str) -> ir.Value:
    """The same inside the loop body ``graph``."""
    def add(op_type: str, *inputs: ir.Value, **attrs: Any) -> ir.Value:
        node = ir.node(op_type, list(inputs), attributes=attrs or None,
                       name=f"{prefix}{op_type}_{len(list(graph))}")
        graph.append(node)
        node.outputs[0].name = f"{node.name}:0"
        return node.outputs[0]
    flat_shape = _const(graph, np.asarray([-1], np.int64), prefix + "flat")
    index = _const(graph, np.asarray(0, np.int64), prefix + "first")
    first = add("Gather", add("Reshape", cond, flat_shape), index)
    if cond.type is not None and cond.type.dtype == ir.DataType.BOOL:
        return add("Identity", first)
    zero = add("CastLike", _const(graph, np.asarray(0.0, np.float32), prefix + "zero"), first)
    return add("Not", add("Equal", first, zero))


def _const(graph: ir.Graph, array: np.ndarray, name: str) -> ir.Value:
    value = ir.Value(name=name, type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
                     shape=ir.Shape(array.shape), const_value=ir.tensor(array, name=name))
    graph.register_initializer(value)
    return value


def _replay(op: TfOp, graph: ir.Graph, inputs: list[ir.Value]) -> list[ir.Value]:
    """``graph``'s nodes emitted again in the enclosing graph, on ``inputs``; its outputs."""
    builder = op.ctx.builder

    def emit(node: ir.Node, ins: list[ir.Value | None]) -> list[ir.Value]:
        return list(builder.tape.op_multi_out(
            node.op_type, ins, dict(node.attributes), domain=node.domain,
            num_outputs=len(node.outputs), name=builder.unique(node.name or node.op_type)))
    return _copy(graph, inputs, emit,
                 lambda v: builder.const(_array(v), v.name),
                 builder.unique)


def _inline(graph: ir.Graph, into: ir.Graph, inputs: list[ir.Value], prefix: str
            ) -> list[ir.Value]:
    """``graph``'s nodes copied into ``into`` (a loop body), on ``inputs``; its outputs."""
    def emit(node: ir.Node, ins: list[ir.Value | None]) -> list[ir.Value]:
        copy = ir.Node(node.domain, node.op_type, ins, attributes=list(node.attributes.values()),
                       num_outputs=len(node.outputs), name=prefix + (node.name or ""))
        into.append(copy)
        return list(copy.outputs)
    return _copy(graph, inputs, emit,
                 lambda v: _const(into, _array(v), prefix + (v.name or "c")),
                 lambda name: prefix + name)


def _array(v: ir.Value) -> np.ndarray:
    if v.const_value is None:
        raise UnsupportedError(f"initializer {v.name!r} has no value")
    return v.const_value.numpy()


def _copy(graph: ir.Graph, inputs: list[ir.Value],
          emit: Callable[[ir.Node, list[ir.Value | None]], list[ir.Value]],
          initializer: Callable[[ir.Value], ir.Value], rename: Callable[[str], str]
          ) -> list[ir.Value]:
    mapping: dict[int, ir.Value] = {id(v): x for v, x in zip(graph.inputs, inputs)}
    for v in graph.initializers.values():
        mapping[id(v)] = initializer(v)
    for node in graph:
        for attr in node.attributes.values():
            if attr.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS):
                raise UnsupportedError(f"{node.op_type} node {node.name!r}: control flow "
                                       "inside a While condition is not mapped")
        ins = [None if v is None else mapping.get(id(v), v) for v in node.inputs]
        for old, new in zip(node.outputs, emit(node, ins)):
            new.type, new.shape = old.type, old.shape
            new.name = rename(old.name or f"{node.op_type}_out")
            mapping[id(old)] = new
    return [mapping.get(id(v), v) for v in graph.outputs]


