"""TF's 1-D convolutions as ONNX 1-D convolutions.

TF has no 1-D convolution op: ``Conv1D`` is written ``ExpandDims(axis 1) -> Conv2D (1 x k
filter) -> Squeeze([1])`` on NWC tensors. Mapped op by op that is, in ONNX,

    Unsqueeze([1]) -> Transpose(0,3,1,2) -> Conv(kernel [1, k]) -> Transpose(0,2,3,1)
        -> Squeeze([1])

and the Unsqueeze/Squeeze between consecutive convs keep ``converters.layout`` from cancelling
their Transposes (a Conv1D stack keeps two per conv). ``to_conv1d`` rewrites each such chain
into ``Transpose(0,2,1) -> Conv(kernel [k]) -> Transpose(0,2,1)``: the same sums (the height
axis is 1 everywhere), and Transposes the layout pass can cancel.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ..rewire import replace_value


def to_conv1d(graph: ir.Graph) -> int:
    """Rewrite every Conv1D chain of ``graph`` in place (main graph only); how many."""
    done = 0
    for conv in [n for n in graph if n.op_type == "Conv"]:
        if _rewrite(graph, conv):
            done += 1
    return done


def _ints(node: ir.Node, name: str) -> list[int] | None:
    attr = node.attributes.get(name)
    return None if attr is None else [int(v) for v in attr.value]


def _only_use(value: ir.Value | None, op_type: str) -> ir.Node | None:
    """The one node reading ``value`` when it is an ``op_type`` and ``value`` is no graph
    output."""
    if value is None or value.is_graph_output():
        return None
    users = {id(node): node for node, _ in value.uses()}
    if len(users) != 1:
        return None
    node = next(iter(users.values()))
    return node if node.op_type == op_type else None


def _const_axes(node: ir.Node) -> list[int] | None:
    """Unsqueeze/Squeeze axes given as a constant input (opset 13+)."""
    if len(node.inputs) < 2 or node.inputs[1] is None or node.inputs[1].const_value is None:
        return None
    return [int(a) for a in node.inputs[1].const_value.numpy().reshape(-1)]


def _rewrite(graph: ir.Graph, conv: ir.Node) -> bool:
    t1 = conv.inputs[0].producer() if conv.inputs and conv.inputs[0] is not None else None
    if t1 is None or t1.op_type != "Transpose" or _ints(t1, "perm") != [0, 3, 1, 2] or \
            _only_use(t1.outputs[0], "Conv") is not conv:
        return False
    unsqueeze = t1.inputs[0].producer() if t1.inputs[0] is not None else None
    if unsqueeze is None or unsqueeze.op_type != "Unsqueeze" or \
            _const_axes(unsqueeze) not in ([1], [-3]) or \
            _only_use(unsqueeze.outputs[0], "Transpose") is not t1:
        return False
    t2 = _only_use(conv.outputs[0], "Transpose")
    if t2 is None or _ints(t2, "perm") != [0, 2, 3, 1]:
        return False
    squeeze = _only_use(t2.outputs[0], "Squeeze")
    if squeeze is None or _const_axes(squeeze) not in ([1], [-3]):
        return False
    weight = conv.inputs[1] if len(conv.inputs) > 1 else None
    kernel = _ints(conv, "kernel_shape")
    if weight is None or weight.const_value is None or kernel is None or len(kernel) != 2 or \
            kernel[0] != 1 or "auto_pad" in conv.attributes:
        return False
    array = weight.const_value.numpy()
    if array.ndim != 4 or array.shape[2] != 1:
        return False
    strides = _ints(conv, "strides") or [1, 1]
    dilations = _ints(conv, "dilations") or [1, 1]
    pads = _ints(conv, "pads") or [0, 0, 0, 0]
    if pads[0] or pads[2]:
        return False
    w = ir.Value(name=_unique(graph, f"{weight.name}_1d"),
                 const_value=ir.Tensor(np.ascontiguousarray(array[:, :, 0, :])))
    graph.register_initializer(w)
    group = conv.attributes.get("group")
    attrs: dict[str, int | list[int]] = {
        "kernel_shape": [kernel[1]], "strides": [strides[1]], "dilations": [dilations[1]],
        "pads": [pads[1], pads[3]], "group": int(group.value) if group is not None else 1}
    x = unsqueeze.inputs[0]
    before = ir.node("Transpose", [x], {"perm": [0, 2, 1]})
    new = ir.node("Conv", [before.outputs[0], w, *conv.inputs[2:]], attrs)
    after = ir.node("Transpose", [new.outputs[0]], {"perm": [0, 2, 1]})
    graph.insert_after(squeeze, [before, new, after])
    out = squeeze.outputs[0]
    after.outputs[0].type, after.outputs[0].shape = out.type, out.shape
    replace_value(out, after.outputs[0])
    for node in (squeeze, t2, conv, t1, unsqueeze):
        graph.remove(node, safe=True)
    return True


def _unique(graph: ir.Graph, base: str) -> str:
    name, i = base, 0
    while name in graph.initializers:
        i += 1
        name = f"{base}_{i}"
    return name
