"""The arithmetic a check's run does, estimated from ONNX's inferred shapes.

The default batch fills a probe with as many rows as its input elements allow cheaply
(``probes.default_batch``), which says nothing of the work per row: Magika 1.0's 2048 bytes a
row take 0.37 G multiply-adds (a one-hot Dense, a 5-wide convolution to 512 channels), and 16
rows a probe took real tfjs's pure-JavaScript CPU backend 97 s for the two probes (about 0.15 G
multiply-adds a second there; onnxruntime does hundreds). The check counts the multiply-adds
of the convolutions and matrix products (where nearly all the time goes) and
gives a probe no more rows than WORK_MACS allow; one row is a check all the same.
"""

from __future__ import annotations

import math
from typing import Any

WORK_MACS = 500_000_000  # multiply-adds a probe may take where the user chose no batch


def onnx_macs(graph: Any) -> int:
    """The multiply-adds of ``graph``'s (an inferred ``onnx.GraphProto``) Conv, ConvTranspose,
    MatMul and Gemm nodes, from the shapes its value infos hold; a node whose shapes are not
    all known counts nothing (the estimate is a floor)."""
    shapes: dict[str, list[int]] = {}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = [d.dim_value for d in dims]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    total = 0
    for node in graph.node:
        if node.op_type not in ("Conv", "ConvTranspose", "MatMul", "Gemm") or \
                len(node.input) < 2 or not node.output:
            continue
        a, b = shapes.get(node.input[0]), shapes.get(node.input[1])
        out = shapes.get(node.output[0])
        if a is None or b is None or out is None:
            continue
        if node.op_type == "Conv" and len(b) >= 3:  # each output: C/group x kernel terms
            total += math.prod(out) * math.prod(b[1:])
        elif node.op_type == "ConvTranspose" and len(b) >= 3:  # each input: M/group x kernel
            total += math.prod(a) * math.prod(b[1:])
        elif node.op_type in ("MatMul", "Gemm") and a:
            trans = any(at.name == "transA" and at.i for at in node.attribute)
            depth = a[0] if node.op_type == "Gemm" and trans else a[-1]
            total += math.prod(out) * depth
    return total
