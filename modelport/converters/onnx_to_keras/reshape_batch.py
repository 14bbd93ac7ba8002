"""A Reshape to ``[batch of x, d1, ..., -1, ...]``, its target made the constant
``[-1, d1, ..., k, ...]``.

Keras's ``Reshape`` (TF's ``tf.keras.layers.Reshape``, PyTorch's ``x.view(x.size(0), 384, -1)``)
is exported as a Reshape whose target starts with the batch size read from ``Shape(x)`` at run
time and holds a ``-1``. ONNX shape inference cannot size that ``-1`` (the batch is symbolic), so
every value after it has an unknown axis, and the layers downstream (a LayerNormalization over
it, a Dense on it) are refused. When every other axis of ``x`` is static, the ``-1`` is
``prod(x.shape[1:]) / prod(the other target dims)``, and the target ``[-1, d1, ..., k, ...]``
gives the same result for every batch: a constant, which shape inference sizes (the shapes
after it are dropped first, to be inferred again).
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import optional_input
from .initializers import add_initializer
from .shape_values import Dim, symbolic

STANDARD = ("", "ai.onnx")


def _constant_target(reshape: ir.Node) -> list[int] | None:
    """The constant target equal to ``reshape``'s run-time one, or None."""
    x = optional_input(reshape, 0)
    target = optional_input(reshape, 1)
    value = symbolic(target)
    if x is None or x.shape is None or len(x.shape) < 1 or value is None or value.scalar or \
            value.static is not None or len(value.items) < 2 or \
            value.items[0] != Dim(x, 0):
        return None
    rest = [i for i in value.items[1:] if isinstance(i, int)]
    static = [d for d in x.shape[1:] if isinstance(d, int)]
    if len(rest) != len(value.items) - 1 or len(static) != len(x.shape) - 1 or \
            any(i <= 0 and i != -1 for i in rest) or rest.count(-1) != 1:
        return None
    known = math.prod(i for i in rest if i > 0)
    total = math.prod(static)
    if known == 0 or total % known:
        return None
    return [-1] + [total // known if i == -1 else i for i in rest]


def fix_batch_reshapes(graph: ir.Graph) -> int:
    """Give each Reshape to ``[batch of x, ..., -1, ...]`` its constant target; how many."""
    done = 0
    for node in list(graph):
        if node.graph is not graph or node.op_type != "Reshape" or \
                node.domain not in STANDARD:
            continue
        allowzero = node.attributes.get("allowzero")
        if allowzero is not None and int(allowzero.value) != 0:
            continue
        target = _constant_target(node)
        if target is None:
            continue
        const = add_initializer(graph, f"{node.name or 'reshape'}/target",
                                np.array(target, np.int64))
        node.replace_input_with(1, const)
        _forget_shapes(node.outputs[0])
        done += 1
    return done


def _forget_shapes(v: ir.Value) -> None:
    """Drop the inferred shapes from ``v`` on, which ONNX inference (``reinfer``) keeps where
    a value has one: the unknown axis after the old target would stay unknown."""
    stack, seen = [v], set()
    while stack:
        value = stack.pop()
        if id(value) in seen or value.is_graph_output():
            continue
        seen.add(id(value))
        value.shape = None
        stack.extend(o for use in value.uses() for o in use.node.outputs)
