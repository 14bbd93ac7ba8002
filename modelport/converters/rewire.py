"""Rewiring an onnx_ir graph after a rewrite: handing a value's readers to its replacement, and
removing the nodes nothing reads any more.

The rewrites before raising (``onnx_to_keras``), the layout pass, normalization and the TF.js
mappings all replace a node's result by a new value; a graph output keeps its name through the
replacement (a consumer of the converted model looks its outputs up by name).
"""

from __future__ import annotations

from collections.abc import Container

import onnx_ir as ir

STANDARD = ("", "ai.onnx")
_SUBGRAPH_OPS = ("Loop", "If")


def replace_value(old: ir.Value, new: ir.Value, *, always_rename: bool = False) -> None:
    """Make every reader of ``old`` (graph outputs included) read ``new`` instead.

    ``new`` takes ``old``'s name where ``old`` was a graph output (its name is the model's
    interface); with ``always_rename`` it takes it in every case (a rewrite whose result
    should keep the name the source model gave it). ``old`` must not be an initializer.
    """
    name, was_output = old.name, old.is_graph_output()
    old.replace_all_uses_with(new, replace_graph_outputs=True)
    if was_output or always_rename:
        old.name = None
        new.name = name


def remove_unread(graph: ir.Graph, op_types: Container[str] | None = None) -> None:
    """Remove the standard-domain nodes none of whose outputs is read (nor a graph output),
    repeatedly, as removing one can leave its producers unread; only nodes of ``op_types``
    where given, else any but ``Loop`` and ``If``."""
    def removable(n: ir.Node) -> bool:
        if n.domain not in STANDARD:
            return False
        return n.op_type in op_types if op_types is not None else n.op_type not in _SUBGRAPH_OPS

    while True:
        dead = [n for n in graph if removable(n) and
                all(not o.uses() and not o.is_graph_output() for o in n.outputs)]
        if not dead:
            return
        for n in reversed(dead):
            graph.remove(n, safe=True)
