"""How many parameters and bytes of weights a model holds: one count for every report, so that
``inspect`` and ``convert`` agree on the same file.

An ONNX model keeps weights in more places than its main graph's initializers: exporters write
many as ``Constant`` nodes, and control flow keeps its own in subgraphs (the branches of an
``If``, the bodies of ``Loop`` and ``Scan``, at any depth) as initializers or Constants; local
functions hold Constants too. All of them count, each array once (one tensor object reached
from two places, an initializer shared after a rewrite, say, is one array). A TF.js
graph-model holds every constant, its function library's included, in ``weights`` by node name,
so each is counted once there already; string tensors are not weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .layers import LayersModel
from .tfjs_graph import TfjsGraph

if TYPE_CHECKING:  # heavy (onnx_ir imports onnx); only ONNX models reach it, already loaded
    import onnx_ir as ir


def onnx_weights(model: ir.Model) -> list[Any]:
    """Every weight array of an ONNX model (``onnx_ir`` tensors), each once: the initializers
    of the main graph and of every subgraph, and the value of every standard ``Constant``
    node in them and in the model's functions."""
    found: dict[int, Any] = {}
    for graph in (model.graph, *model.graph.subgraphs()):
        for value in graph.initializers.values():
            if value.const_value is not None:
                found.setdefault(id(value.const_value), value.const_value)
    for node in _all_nodes(model):
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            attr = node.attributes.get("value")
            if attr is not None and attr.value is not None:
                found.setdefault(id(attr.value), attr.value)
    return list(found.values())


def _all_nodes(model: ir.Model) -> Iterator[ir.Node]:
    """The nodes of the main graph, its subgraphs, and the functions (and theirs)."""
    import onnx_ir as ir

    yield from model.graph.all_nodes()
    for function in model.functions.values():
        yield from ir.traversal.RecursiveGraphIterator(function)


def weight_totals(model: LayersModel | TfjsGraph | ir.Model) -> tuple[int, int]:
    """(parameters, bytes of weights) of any model modelport holds."""
    if isinstance(model, LayersModel):
        return model.parameter_count(), model.weight_bytes()
    if isinstance(model, TfjsGraph):
        arrays = [a for a in model.weights.values() if a.dtype != object]
        return int(sum(a.size for a in arrays)), model.weight_bytes()
    tensors = onnx_weights(model)
    return int(sum(t.size for t in tensors)), int(sum(t.nbytes for t in tensors))
