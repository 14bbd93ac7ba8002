"""ONNX control flow made simpler before any target mapping: an ``If`` whose condition is a
constant is replaced by the branch it always takes.

Exporters write such ``If`` nodes where a Python-level branch was traced with a value the
export fixed (a voice-activity model that branches on its sample rate, once the rate is a
constant): the branch taken never changes, so its nodes join the enclosing graph and the ``If``
goes. Nothing else changes: the other branch was never run.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

log = logging.getLogger(__name__)


def fold_constant_ifs(model: ir.Model) -> int:
    """Inline every ``If`` (main graph and, recursively, subgraphs) whose condition is a
    constant; returns how many went. The caller folds constants again when any did."""
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
    for name, init in list(branch.initializers.items()):
        branch.initializers.pop(name)
        taken = name in graph.initializers or any(v.name == name for v in graph.inputs)
        if taken:
            init.name = f"{node.name or 'If'}/{name}"  # (a new name for a clash)
        graph.register_initializer(init)
    moved = list(branch)
    for inner in moved:
        branch.remove(inner)
    graph.insert_before(node, moved)
    results = list(branch.outputs)
    branch.outputs.clear()
    for out, result in zip(node.outputs, results):
        identity = ir.node("Identity", [result], name=f"{node.name or 'If'}/taken_{out.index()}")
        graph.insert_before(node, identity)
        new = identity.outputs[0]
        new.shape, new.type = out.shape or result.shape, out.type or result.type
        out_name = out.name
        out.replace_all_uses_with(new, replace_graph_outputs=True)
        out.name = None
        new.name = out_name
    graph.remove(node, safe=True)
