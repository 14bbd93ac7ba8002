"""A constant added to a graph as an initializer, for the rewrites that run before raising
(TF's Conv1D, repeats, layer norms and loops as tf2onnx writes them)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir


def add_initializer(graph: ir.Graph, name: str, array: np.ndarray) -> ir.Value:
    """``array`` as a new initializer of ``graph`` named ``name``; its value."""
    value = ir.Value(name=name, shape=ir.Shape(array.shape),
                     type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
                     const_value=ir.Tensor(array))
    graph.register_initializer(value)
    return value
