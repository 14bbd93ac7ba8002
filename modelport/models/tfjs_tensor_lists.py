"""TF tensor lists (``TensorListReserve``/``FromTensor``/``GetItem``/``SetItem``/``Stack``) held
as dense tensors, so that control flow carrying them (a Keras RNN's ``while`` loop, as
``tensorflowjs_converter`` writes it) is plain tensor math for the NumPy TF reference and the
ONNX mapping.

A list of ``n`` elements of shape ``S`` is the tensor ``[n, *S]``:

* ``TensorListFromTensor(t)`` is ``t``; ``TensorListStack(l)`` is ``l``;
  ``TensorListGetItem(l, i)`` is ``GatherV2(l, i, axis 0)``; ``TensorListLength(l)`` is
  ``Shape(l)[0]``.
* ``TensorListReserve(element_shape, n)`` is zeros ``[n, 1, ..., 1]`` (one 1 per element
  dimension: the element shape may be known only at run time, a dynamic batch), and
  ``TensorListSetItem(l, i, item)`` broadcasts ``l`` to ``[n, *shape(item)]`` (a no-op after the
  first write) and scatters ``item`` at ``i`` (``TensorScatterUpdate``). An element read before
  it is written is zeros, as TF gives for a known element shape. Where the reserve's element
  shape has an unknown rank (a TF2 ``map_fn``'s results), the rank is the one the list's
  ``TensorListStack`` states.

A ``StatelessWhile``/``StatelessIf`` argument that carries a list is typed with the list's
element dtype in the called functions (TF types it ``variant``). A list op this does not
cover, or a reserved list whose element rank is unknown, is an UnsupportedError naming it.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from .tfjs_graph import (
    TfFunction,
    TfjsGraph,
    TfNode,
    a_int,
    a_type,
    attr_type,
    const_node,
    input_name,
)

LIST_OPS = frozenset({"TensorListReserve", "TensorListFromTensor", "TensorListGetItem",
                      "TensorListSetItem", "TensorListStack", "TensorListLength"})


def has_lists(graph: TfjsGraph) -> bool:
    """Whether any node of ``graph`` (functions included) is a tensor-list op."""
    return any(n.op.startswith("TensorList") for n in graph.all_nodes())


def dense(graph: TfjsGraph) -> TfjsGraph:
    """``graph`` with its tensor lists as dense tensors (``graph`` itself where it has none)."""
    if not has_lists(graph):
        return graph
    weights = dict(graph.weights)
    rewriter = _Rewriter(weights, _stacked_ranks(graph))
    nodes = rewriter.nodes(graph.nodes)
    functions = {name: TfFunction(f.name, list(f.inputs), list(f.outputs),
                                  rewriter.nodes(f.nodes), dict(f.ret), f.extra)
                 for name, f in graph.functions.items()}
    _retype(nodes, graph, functions)
    for fn in functions.values():
        _retype(fn.nodes, graph, functions)
    return TfjsGraph(nodes, weights, graph.inputs, graph.outputs, versions=graph.versions,
                     extra=graph.extra, quantization=graph.quantization, source=graph.source,
                     functions=functions)


def _fail(node: TfNode, why: str) -> UnsupportedError:
    return UnsupportedError(f"{node.op} node {node.name!r}: {why}", layer=node.name)


def _stacked_ranks(graph: TfjsGraph) -> dict[str, int]:
    """Reserved list -> the element rank a ``TensorListStack`` of it declares (its
    ``element_shape`` input, a constant of known rank), found by following the list back from
    the Stack through Identities and the loop values of ``StatelessWhile``/``While`` (output k
    is what input k became) in the main graph. A TF2 ``map_fn`` reserves its result lists with
    an unknown element shape and states it only where it stacks them."""
    by_name = {n.name: n for n in graph.nodes}
    ranks: dict[str, int] = {}
    for stack in graph.nodes:
        if stack.op != "TensorListStack":
            continue
        data = [r for r in stack.inputs if not r.startswith("^")]
        shape = graph.weights.get(input_name(data[1])[0]) if len(data) > 1 else None
        if shape is None or _unknown_rank(shape):
            continue
        ref, seen = data[0], set()
        while True:
            name, k = input_name(ref)
            node = by_name.get(name)
            if node is None or name in seen:
                break
            seen.add(name)
            inputs = [r for r in node.inputs if not r.startswith("^")]
            if node.op == "TensorListReserve":
                ranks.setdefault(name, int(np.size(shape)))
                break
            if node.op == "Identity" and inputs:
                ref = inputs[0]
            elif node.op in ("StatelessWhile", "While") and k < len(inputs):
                ref = inputs[k]
            else:
                break
    return ranks


class _Rewriter:
    def __init__(self, weights: dict[str, np.ndarray], stacked: dict[str, int] | None = None
                 ) -> None:
        self.weights = weights
        self.stacked = stacked or {}  # reserved list -> element rank its Stack declares
        self.added: list[TfNode] = []

    def const(self, base: str, value: np.ndarray) -> str:
        name = f"{base}/dense_list_{len(self.weights)}"
        while name in self.weights:
            name += "_"
        value = np.asarray(value)
        dtype = {np.dtype(np.int32): "int32", np.dtype(np.float32): "float32",
                 np.dtype(np.bool_): "bool"}[value.dtype]
        self.weights[name] = value
        self.added.append(const_node(name, dtype, list(value.shape)))
        return name

    def op(self, base: str, suffix: str, op: str, inputs: list[str], attrs: dict | None = None
           ) -> str:
        name = f"{base}/dense_list/{suffix}"
        self.added.append(TfNode(name, op, inputs, attrs or {}))
        return name

    def nodes(self, nodes: list[TfNode]) -> list[TfNode]:
        out: list[TfNode] = []
        for node in nodes:
            self.added = []
            replacement = self.rewrite(node)
            out.extend(self.added)
            out.append(replacement)
        return out

    def rewrite(self, node: TfNode) -> TfNode:
        if not node.op.startswith("TensorList"):
            return node
        if node.op not in LIST_OPS:
            raise _fail(node, "this tensor-list op is not supported (only Reserve, FromTensor, "
                              "GetItem, SetItem, Stack and Length are)")
        data = [r for r in node.inputs if not r.startswith("^")]
        controls = [r for r in node.inputs if r.startswith("^")]
        dtype = attr_type(node, "element_dtype", "float32") or "float32"
        n = node.name
        if node.op in ("TensorListFromTensor", "TensorListStack"):
            return TfNode(n, "Identity", [data[0], *controls], {"T": a_type(dtype)})
        if node.op == "TensorListGetItem":
            axis = self.const(n, np.asarray(0, np.int32))
            return TfNode(n, "GatherV2", [data[0], data[1], axis, *controls],
                          {"batch_dims": a_int(0)})
        if node.op == "TensorListLength":
            shape = self.op(n, "shape", "Shape", [data[0]])
            return TfNode(n, "StridedSlice", [shape, self.const(n, np.asarray([0], np.int32)),
                                              self.const(n, np.asarray([1], np.int32)),
                                              self.const(n, np.asarray([1], np.int32)),
                                              *controls], _shrink())
        if node.op == "TensorListReserve":
            rank = self._element_rank(node, data[0])
            count = self.op(n, "count", "Reshape", [data[1],
                                                    self.const(n, np.asarray([1], np.int32))])
            shape = self.op(n, "shape", "ConcatV2",
                            [count, self.const(n, np.ones(rank, np.int32)),
                             self.const(n, np.asarray(0, np.int32))], {"N": a_int(2)})
            zero = self.const(n, np.zeros((), _NUMPY.get(dtype, np.float32)))
            return TfNode(n, "Fill", [shape, zero, *controls], {"T": a_type(dtype)})
        # TensorListSetItem(list, index, item)
        lst, index, item = data[:3]
        shape = self.op(n, "list_shape", "Shape", [lst])
        count = self.op(n, "count", "StridedSlice",
                        [shape, self.const(n, np.asarray([0], np.int32)),
                         self.const(n, np.asarray([1], np.int32)),
                         self.const(n, np.asarray([1], np.int32))], _shrink(0))
        full = self.op(n, "full_shape", "ConcatV2",
                       [count, self.op(n, "item_shape", "Shape", [item]),
                        self.const(n, np.asarray(0, np.int32))], {"N": a_int(2)})
        grown = self.op(n, "broadcast", "BroadcastTo", [lst, full])
        where = self.op(n, "index", "Reshape", [index, self.const(n, np.asarray([1, 1],
                                                                                np.int32))])
        update = self.op(n, "update", "ExpandDims", [item, self.const(n, np.asarray(0,
                                                                                    np.int32))])
        return TfNode(n, "TensorScatterUpdate", [grown, where, update, *controls],
                      {"T": a_type(dtype)})

    def _element_rank(self, node: TfNode, ref: str) -> int:
        value = self.weights.get(input_name(ref)[0])
        if value is None:
            if node.name in self.stacked:
                return self.stacked[node.name]
            raise _fail(node, "its element_shape is computed at run time (its rank is needed)")
        if _unknown_rank(value):
            if node.name in self.stacked:  # the Stack of it states the rank
                return self.stacked[node.name]
            raise _fail(node, "its element_shape has an unknown rank (and no TensorListStack "
                              "of it states one)")
        return int(np.size(value))


def _unknown_rank(shape: np.ndarray) -> bool:
    """Whether an ``element_shape`` tensor says the rank is unknown: the scalar -1 (``[-1]``
    is a vector of unknown length, rank 1)."""
    value = np.asarray(shape)
    return value.ndim == 0 and int(value) == -1


_NUMPY = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}


def _shrink(mask: int = 1) -> dict:
    """StridedSlice attributes that take element 0 as a scalar (``mask`` 1) or keep it as
    ``[1]`` (``mask`` 0)."""
    return {"begin_mask": a_int(0), "end_mask": a_int(0), "ellipsis_mask": a_int(0),
            "new_axis_mask": a_int(0), "shrink_axis_mask": a_int(mask)}


def _retype(nodes: list[TfNode], graph: TfjsGraph, functions: dict[str, TfFunction]) -> None:
    """Arguments of the control-flow nodes in ``nodes`` that carry lists: typed with the
    lists' element dtype in the functions they call (TF types them ``variant``)."""
    producers = {n.name: n for n in graph.nodes}
    for fn in graph.functions.values():
        producers.update({n.name: n for n in fn.nodes})
    for node in nodes:
        if node.op not in ("StatelessWhile", "While", "StatelessIf", "If"):
            continue
        data = [r for r in node.inputs if not r.startswith("^")]
        offset = 1 if node.op in ("StatelessIf", "If") else 0
        attrs = ("cond", "body") if offset == 0 else ("then_branch", "else_branch")
        for attr in attrs:
            name = ((node.attrs.get(attr) or {}).get("func") or {}).get("name")
            called = functions.get(name or "")
            if called is None:
                continue
            for k, (arg, dtype) in enumerate(called.inputs):
                if dtype != "variant" or k + offset >= len(data):
                    continue
                source = producers.get(input_name(data[k + offset])[0])
                element = attr_type(source, "element_dtype", "float32") if source is not None \
                    else "float32"
                called.inputs[k] = (arg, element or "float32")
                if offset == 0 and attr == "body" and k < len(called.outputs):
                    called.outputs[k] = (called.outputs[k][0], element or "float32")
