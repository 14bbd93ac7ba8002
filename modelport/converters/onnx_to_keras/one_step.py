"""A recurrent op run for one time step on a batch-first matrix, in the form the raising knows.

An ``LSTMCell``/``GRUCell`` exported by PyTorch (Silero VAD's decoder, streaming models that
carry their state between calls) is an ONNX ``LSTM``/``GRU``/``RNN`` over a sequence of one:
``X = Unsqueeze(x, axes=[0])`` turns the ``[B, F]`` matrix into the time-major ``[1, B, F]``,
and the initial states are ``Unsqueeze(h, axes=[0])`` too. The same values are the batch-first
``[B, 1, F]`` with time and batch swapped, ``Transpose(Unsqueeze(x, axes=[1]), [1, 0, 2])``,
which the recurrent views (``recurrent_views.py``) follow, so X is rewritten so before raising;
Keras's layer then runs one step from the given states.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import const_array, optional_input

STANDARD = ("", "ai.onnx")
RECURRENT = {"LSTM", "GRU", "RNN"}


def _axes(node: ir.Node) -> list[int] | None:
    if "axes" in node.attributes:
        return [int(a) for a in node.attributes["axes"].value]
    c = const_array(optional_input(node, 1))
    return None if c is None else [int(a) for a in np.asarray(c).reshape(-1)]


def rewrite_one_step_inputs(graph: ir.Graph) -> int:
    """Rewrite each time-major recurrent X that is ``Unsqueeze(matrix, axes=[0])`` as the
    swapped batch-first view (see the module); how many."""
    done = 0
    for node in list(graph):
        if node.op_type not in RECURRENT or node.domain not in STANDARD:
            continue
        layout = node.attributes.get("layout")
        if layout is not None and int(layout.value) != 0:
            continue
        x = optional_input(node, 0)
        unsq = x.producer() if x is not None else None
        if x is None or unsq is None or unsq.op_type != "Unsqueeze" or \
                unsq.domain not in STANDARD or _axes(unsq) != [0]:
            continue
        matrix = optional_input(unsq, 0)
        if matrix is None or matrix.shape is None or len(matrix.shape) != 2 or \
                x.shape is None:
            continue
        base = unsq.name or "one_step"
        axes = ir.Value(name=f"{base}/batch_first_axes", shape=ir.Shape([1]),
                        type=ir.TensorType(ir.DataType.INT64),
                        const_value=ir.Tensor(np.array([1], np.int64)))
        graph.register_initializer(axes)
        rows = ir.node("Unsqueeze", [matrix, axes], name=f"{base}/batch_first")
        rows.outputs[0].type = x.type
        rows.outputs[0].shape = ir.Shape([matrix.shape[0], 1, matrix.shape[1]])
        swap = ir.node("Transpose", [rows.outputs[0]], attributes={"perm": [1, 0, 2]},
                       name=f"{base}/time_major")
        swap.outputs[0].type, swap.outputs[0].shape = x.type, x.shape
        graph.insert_before(node, [rows, swap])
        node.replace_input_with(0, swap.outputs[0])
        if not list(x.uses()) and not x.is_graph_output():
            graph.remove(unsq, safe=True)
        done += 1
    return done


