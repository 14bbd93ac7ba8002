"""``ReverseSequence`` over whole sequences as the time reversal it is.

tf2onnx writes ``tf.reverse(x, [0])`` of a time-major tensor (Keras's ``go_backwards``, the
backward half of a ``Bidirectional``) as ``ReverseSequence(x, Expand(T, [B]))``: every sequence
reversed over its full length T. That is a ``Slice`` with step -1 over the time axis, the form
the recurrent views (``recurrent_views.py``) follow, so the node is rewritten as one before
raising. A ``ReverseSequence`` with lengths shorter than the axis (or not constant) stays, and
is refused by name.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import const_array, optional_input
from ..rewire import replace_value

STANDARD = ("", "ai.onnx")


def _full_lengths(lengths: ir.Value | None, size: int) -> bool:
    """The lengths are all ``size``: a constant, or an Expand of a constant."""
    if lengths is None:
        return False
    c = const_array(lengths)
    node = lengths.producer()
    if c is None and node is not None and node.op_type == "Expand" and \
            node.domain in STANDARD:
        c = const_array(optional_input(node, 0))
    return c is not None and c.size > 0 and bool(np.all(c == size))


def rewrite_full_reversals(graph: ir.Graph) -> int:
    """Replace each ReverseSequence over whole sequences by a reversing Slice; how many."""
    done = 0
    for node in list(graph):
        if node.op_type != "ReverseSequence" or node.domain not in STANDARD:
            continue
        x = optional_input(node, 0)
        time_attr = node.attributes.get("time_axis")
        axis = int(time_attr.value) if time_attr is not None else 0
        size = x.shape[axis] if x is not None and x.shape is not None and \
            len(x.shape) > axis else None
        if x is None or not isinstance(size, int) or \
                not _full_lengths(optional_input(node, 1), size):
            continue
        base = node.name or "reverse"
        consts = []
        for suffix, values in (("starts", [-1]), ("ends", [-(2 ** 63)]), ("axes", [axis]),
                               ("steps", [-1])):
            array = np.array(values, np.int64)
            value = ir.Value(name=f"{base}/{suffix}", shape=ir.Shape([1]),
                             type=ir.TensorType(ir.DataType.INT64),
                             const_value=ir.Tensor(array))
            graph.register_initializer(value)
            consts.append(value)
        reverse = ir.node("Slice", [x, *consts], name=f"{base}/Slice")
        out = node.outputs[0]
        reverse.outputs[0].type, reverse.outputs[0].shape = out.type, out.shape
        graph.insert_before(node, reverse)
        replace_value(out, reverse.outputs[0], always_rename=True)
        graph.remove(node, safe=True)
        done += 1
    return done
