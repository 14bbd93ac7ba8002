"""A ``Pad`` with ``-inf`` feeding a ``MaxPool``, made the pool's own pads.

TensorFlow has no padded max pool: graphs that pad before pooling (onnx-tf's output, NanoDet's
``PadV2(x, pads, -inf) -> MaxPool``) spell the pads as a ``Pad`` whose value is ``-inf``.
ONNX's ``MaxPool`` pads mean exactly that (the padded cells are ``-inf``), so the two nodes are
one ``MaxPool`` with those pads added to its own, which ``nn.pool`` raises (a ``same`` pool or
edge padding). Left as a ``Pad``, the ``-inf`` could only be shifted through a ``ZeroPadding``
(``x + inf`` then ``- inf``: NaN, and a config holding ``Infinity``, which is not JSON).

Only where the result is the same: a constant ``-inf`` on the spatial axes only (not batch or
channels, NCHW as ``MaxPool`` reads it), the ``Pad`` read by this ``MaxPool`` alone, no
``auto_pad``, no ``ceil_mode`` (whose last window ONNX drops when it starts in the right
padding), and the indices output unread (padding shifts them).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import const_array, optional_input

STANDARD = ("", "ai.onnx")


def fold_padded_max_pools(graph: ir.Graph) -> int:
    """Fold each ``-inf`` Pad into the MaxPool that alone reads it; how many."""
    done = 0
    for node in list(graph):
        if node.op_type == "MaxPool" and node.domain in STANDARD and _fold(graph, node):
            done += 1
    return done


def _spatial_pads(pad: ir.Node, rank: int) -> list[int] | None:
    """The ``-inf`` Pad's pads as MaxPool writes them (begins, then ends, spatial axes only), or
    None where the Pad is not one MaxPool can take."""
    mode = pad.attributes.get("mode")
    if mode is not None and mode.value not in ("constant", b"constant"):
        return None
    pads, fill = const_array(optional_input(pad, 1)), const_array(optional_input(pad, 2))
    if pads is None or fill is None or np.size(fill) != 1 or len(pad.inputs) > 3 or \
            pads.size != 2 * rank:
        return None
    value = float(np.asarray(fill).reshape(-1)[0])
    if not (np.isinf(value) and value < 0):
        return None
    p = [int(i) for i in pads.reshape(-1)]
    if any(i < 0 for i in p) or p[0] or p[1] or p[rank] or p[rank + 1]:
        return None
    return p[2:rank] + p[rank + 2:]


def _fold(graph: ir.Graph, pool: ir.Node) -> bool:
    x = pool.inputs[0] if pool.inputs else None
    pad = x.producer() if x is not None else None
    if x is None or pad is None or pad.op_type != "Pad" or pad.domain not in STANDARD or \
            pad.graph is not graph or len(list(x.uses())) != 1 or x.is_graph_output() or \
            x.shape is None:
        return False
    auto = pool.attributes.get("auto_pad")
    ceil = pool.attributes.get("ceil_mode")
    if (auto is not None and auto.value not in ("NOTSET", b"NOTSET")) or \
            (ceil is not None and ceil.value) or \
            (len(pool.outputs) > 1 and (pool.outputs[1].uses() or
                                        pool.outputs[1].is_graph_output())):
        return False
    rank = len(x.shape)
    added = _spatial_pads(pad, rank)
    if added is None:
        return False
    own_attr = pool.attributes.get("pads")
    own = [int(i) for i in own_attr.value] if own_attr is not None else [0] * (2 * (rank - 2))
    if len(own) != len(added):
        return False
    pool.attributes["pads"] = ir.AttrInt64s("pads", [a + b for a, b in zip(own, added)])
    pool.replace_input_with(0, pad.inputs[0])
    if not any(out.uses() or out.is_graph_output() for out in pad.outputs):
        graph.remove(pad, safe=True)
    return True
