"""TensorFlow's 1-D convolution as tf2onnx writes it, made one 1-D ``Conv`` again.

TF computes ``Conv1D`` as a 2-D convolution over a height of 1: ``ExpandDims`` of the sequence,
``Conv2D`` with a ``(1, k)`` kernel, ``Squeeze``, then ``BiasAdd``; Keras's ``padding="causal"``
is a ``Pad`` of ``(k - 1) * d`` steps before the sequence. tf2onnx keeps that shape
(``Pad -> Unsqueeze -> [Transpose] -> Conv -> Squeeze -> Add``), which would raise as
``ZeroPadding1D``, ``Reshape``s and a ``Conv2D``. Rewritten before raising as one ``Conv``
with a 1-D kernel, the Pad's zeros in its ``pads`` and the per-channel ``Add`` as its bias, it
raises as the ``Conv1D`` it came from (``nn.conv`` writes ``padding="causal"`` for pads of
``(k - 1) * d`` before only). Every rewrite here is an identity: the same products summed in
the same order, the same zeros.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import const_array, optional_input
from ..rewire import replace_value
from .initializers import add_initializer

STANDARD = ("", "ai.onnx")


def _is(node: ir.Node | None, op: str) -> bool:
    return node is not None and node.op_type == op and node.domain in STANDARD


def _ints(node: ir.Node, name: str) -> list[int] | None:
    a = node.attributes.get(name)
    return None if a is None else [int(i) for i in a.value]


def _axes(node: ir.Node, rank: int) -> list[int] | None:
    """Squeeze/Unsqueeze axes (input or attribute), normalised for a result of ``rank``."""
    given = const_array(optional_input(node, 1))
    axes = [int(i) for i in given.reshape(-1)] if given is not None else _ints(node, "axes")
    return None if axes is None else sorted(a % rank for a in axes)


def _only_use(v: ir.Value) -> ir.Node | None:
    uses = list(v.uses())
    return uses[0].node if len(uses) == 1 and not v.is_graph_output() else None


def _source(x4: ir.Value) -> tuple[ir.Value, bool] | None:
    """The rank-3 tensor an NCHW ``[B, C, 1, W]`` conv input was made from: (it, whether it is
    channels-last [B, W, C]), where only this path reads the intermediate values."""
    p = x4.producer()
    if _is(p, "Unsqueeze") and p is not None and _axes(p, 4) == [2] and \
            _only_use(x4) is not None:
        return p.inputs[0], False  # type: ignore[return-value]
    if _is(p, "Transpose") and p is not None and _ints(p, "perm") == [0, 3, 1, 2]:
        u = p.inputs[0].producer() if p.inputs[0] is not None else None
        if _is(u, "Unsqueeze") and u is not None and _axes(u, 4) == [1] and \
                _only_use(p.inputs[0]) is p:  # type: ignore[arg-type]
            return u.inputs[0], True  # type: ignore[return-value]
    return None


def _zero_pad(v: ir.Value, axis: int) -> tuple[ir.Value, int, int] | None:
    """(input, before, after) of a constant-zero Pad of ``v`` on ``axis`` only."""
    pad = v.producer()
    if not _is(pad, "Pad") or pad is None or _only_use(v) is None:
        return None
    mode = pad.attributes.get("mode")
    if mode is not None and mode.value not in ("constant", b"constant"):
        return None
    pads = const_array(optional_input(pad, 1))
    fill = optional_input(pad, 2)
    if pads is None or pads.size != 6 or len(pad.inputs) > 3 or \
            (fill is not None and (const_array(fill) is None or np.any(const_array(fill)))):
        return None
    p = [int(i) for i in pads.reshape(-1)]
    before, after = p[axis], p[axis + 3]
    if before < 0 or after < 0 or any(p[i] or p[i + 3] for i in range(3) if i != axis):
        return None
    return pad.inputs[0], before, after  # type: ignore[return-value]


def rewrite_conv1d(graph: ir.Graph) -> int:
    """Rewrite each 2-D Conv over a height of 1 between an Unsqueeze and a Squeeze as a 1-D
    Conv (taking in a zero Pad before and a per-channel Add after); how many."""
    done = 0
    for conv in list(graph):
        if _is(conv, "Conv") and _rewrite(graph, conv):
            done += 1
    return done


def _rewrite(graph: ir.Graph, conv: ir.Node) -> bool:
    kernel = const_array(optional_input(conv, 1))
    x4 = optional_input(conv, 0)
    auto = conv.attributes.get("auto_pad")
    if kernel is None or kernel.ndim != 4 or kernel.shape[2] != 1 or x4 is None or \
            len(conv.inputs) > 2 or (auto is not None and auto.value not in ("NOTSET", b"NOTSET")):
        return False
    strides = _ints(conv, "strides") or [1, 1]
    dilations = _ints(conv, "dilations") or [1, 1]
    pads = _ints(conv, "pads") or [0, 0, 0, 0]
    squeeze = _only_use(conv.outputs[0])
    found = _source(x4)
    if found is None or strides[0] != 1 or pads[0] or pads[2] or squeeze is None or \
            not _is(squeeze, "Squeeze") or _axes(squeeze, 4) != [2]:
        return False
    x, channels_last = found
    before, after = pads[1], pads[3]
    padded = _zero_pad(x, 1 if channels_last else 2)
    if padded is not None:
        x, lo, hi = padded
        before, after = before + lo, after + hi
    out = squeeze.outputs[0]
    bias, last = _bias(out, int(kernel.shape[0]))
    base = conv.name or "conv1d"
    new_nodes = []
    if channels_last:
        t = ir.node("Transpose", [x], {"perm": [0, 2, 1]}, name=f"{base}/to_ncw")
        t.outputs[0].type = x.type
        if x.shape is not None:
            t.outputs[0].shape = ir.Shape([x.shape[0], x.shape[2], x.shape[1]])
        new_nodes.append(t)
        x = t.outputs[0]
    inputs = [x, add_initializer(graph, f"{base}/W1d", np.ascontiguousarray(kernel[:, :, 0, :]))]
    if bias is not None:
        inputs.append(add_initializer(graph, f"{base}/B1d", bias))
    attrs: dict[str, Any] = {"kernel_shape": [int(kernel.shape[3])], "strides": [strides[1]],
             "dilations": [dilations[1]], "pads": [before, after],
             "group": int(conv.attributes["group"].value) if "group" in conv.attributes else 1}
    new = ir.node("Conv", inputs, attrs, name=f"{base}/1d")
    result = last.outputs[0]
    new.outputs[0].type, new.outputs[0].shape = result.type, result.shape
    new_nodes.append(new)
    graph.insert_before(conv, new_nodes)
    replace_value(result, new.outputs[0], always_rename=True)
    _sweep(graph, [last, squeeze, conv, x4.producer()])
    return True


def _bias(out: ir.Value, channels: int) -> tuple[np.ndarray | None, ir.Node]:
    """A per-channel constant Add of an NCW ``out`` (read only there) as the Conv's bias, and
    the node whose result the Conv then computes."""
    add = _only_use(out)
    squeeze = out.producer()
    assert squeeze is not None
    if not _is(add, "Add") or add is None or len(add.inputs) != 2:
        return None, squeeze
    c = const_array(add.inputs[1] if add.inputs[0] is out else add.inputs[0])
    if c is None or c.size != channels or c.ndim > 3 or \
            (c.ndim >= 2 and c.shape[-2:] != (channels, 1)) or c.dtype != np.float32:
        return None, squeeze
    return np.ascontiguousarray(c.reshape(-1)), add


def _sweep(graph: ir.Graph, nodes: list[ir.Node | None]) -> None:
    """Remove the replaced nodes, and the producers left unread by them (Unsqueeze, Pad)."""
    todo = [n for n in nodes if n is not None]
    while todo:
        node = todo.pop(0)
        if node.graph is not graph or any(o.uses() or o.is_graph_output()
                                          for o in node.outputs):
            continue
        producers = [v.producer() for v in node.inputs if v is not None]
        graph.remove(node, safe=True)
        todo.extend(p for p in producers if p is not None)
