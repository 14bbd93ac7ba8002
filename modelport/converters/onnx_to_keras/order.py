"""Layers in the order Keras lists them, which its legacy .h5 loader matches weights by.

Keras 3 orders a functional model's layers by depth from the outputs (deepest first), ties
broken by the order a depth-first walk from the outputs first meets them
(``keras/src/ops/function.py``, ``map_graph``). A raised model is written in that order, so
that Keras reads each layer's weights back into the layer they belong to.
"""

from __future__ import annotations

import sys

from ...models import Layer, TensorRef


def keras_order(layers: list[Layer], inputs: list[TensorRef],
                outputs: list[TensorRef]) -> list[Layer]:
    """``layers`` in the order Keras 3 lists a functional model's layers (see the module)."""
    by_name = {layer.name: layer for layer in layers}
    index: dict[str, int] = {}
    post: list[str] = []  # post-order: each layer after the layers it reads
    seen: set[str] = set()
    input_names = {r.layer for r in inputs}

    def visit(name: str) -> None:
        if name in seen:
            return
        if name not in index:
            index[name] = len(index)
        seen.add(name)
        layer = by_name[name]
        if name not in input_names:
            for node in layer.inbound_nodes:
                for ref in node.inputs():
                    visit(ref.layer)
        post.append(name)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(layers) + 1000))
    try:
        for ref in outputs:
            visit(ref.layer)
    finally:
        sys.setrecursionlimit(limit)
    depth: dict[str, int] = {}
    for name in reversed(post):
        d = depth.setdefault(name, 0)
        if name in input_names:
            continue
        for node in by_name[name].inbound_nodes:
            for ref in node.inputs():
                depth[ref.layer] = max(depth.get(ref.layer, 0), d + 1)
    for ref in inputs:
        if ref.layer not in depth:
            depth[ref.layer], index[ref.layer] = 0, -1
    ordered = sorted(depth, key=lambda n: (-depth[n], index[n]))
    return [by_name[n] for n in ordered]
