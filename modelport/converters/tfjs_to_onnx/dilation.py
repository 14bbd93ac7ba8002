"""The dilated convolutions TF writes, folded back into one dilated convolution.

TF (and so ``tensorflowjs_converter``) writes a convolution with ``dilations`` > 1 as

    SpaceToBatchND(x, block, paddings) -> [ExpandDims] -> conv -> [Squeeze]
        -> BatchToSpaceND(., block, crops)

where the conv (``Conv2D``, ``DepthwiseConv2dNative`` or grappler's ``_FusedConv2D``, with its
bias, folded batch norm and activation) is undilated, stride 1 and VALID; ``ExpandDims`` /
``Squeeze`` around it are how ``Conv1D`` is written. The phases SpaceToBatchND moves to the batch
axis are the taps of the dilated kernel: output ``j`` of the chain is
``sum_t w[t] * padded[j + t * block]`` cut by ``crops``, which is exactly a convolution with
``dilations = block`` on ``x`` with explicit padding ``paddings - crops`` (the fused bias and
activations act per position and per channel, so they commute with the rearrangement).

``fuse`` rewrites each such chain in a copy of the graph: the first node of the chain reads
``x`` directly, the conv gets the dilations and padding, its readers read the chain's end, and
the BatchToSpaceND becomes an Identity of it (for a signature output that names it). A chain
whose block, paddings or crops are not constants, or that does not fit the rule (strides or
dilations already set, SAME padding, crops larger than the padding, a middle tensor read
elsewhere) is left alone: the SpaceToBatchND / BatchToSpaceND mappings in ``extra`` convert it
as it is.
"""

from __future__ import annotations

import base64
import dataclasses

import numpy as np

from ...models import TfjsGraph, TfNode
from ...models import tfjs_graph as tg

CONVS = {"Conv2D", "DepthwiseConv2dNative", "_FusedConv2D", "FusedDepthwiseConv2dNative",
         "Conv3D"}
# What a fused conv may apply after the convolution and still commute with BatchToSpaceND:
# per-channel steps and elementwise activations (a residual Add reads a tensor in the
# batch layout: not folded).
PER_POSITION = {"BiasAdd", "FusedBatchNorm", "FusedBatchNormV3", "Relu", "Relu6", "Elu",
                "LeakyRelu", "Sigmoid", "Tanh", "Selu", "Prelu", "GeluExact",
                "GeluApproximate", "_FusedHardSwish"}


def fuse(graph: TfjsGraph) -> TfjsGraph:
    """``graph``, or a copy with every dilated-convolution chain folded (``graph`` itself is not
    changed: the parity check runs it as it is)."""
    by_name = {n.name: n for n in graph.nodes}
    readers: dict[str, list[str]] = {}
    for node in graph.nodes:
        for ref in node.inputs:
            readers.setdefault(tg.input_name(ref)[0], []).append(node.name)
    kept = {tg.input_name(info.tensor)[0] for info in graph.outputs}
    replaced: dict[str, TfNode] = {}
    for node in graph.nodes:
        if node.op == "BatchToSpaceND":
            rewrite = _chain(node, by_name, readers, kept, graph)
            if rewrite is not None:
                replaced.update({n.name: n for n in rewrite})
    if not replaced:
        return graph
    # Readers of a folded BatchToSpaceND read the chain's end instead; the Identity left in
    # its place serves a signature output that names it.
    alias = {n.name: n.inputs[0] for n in replaced.values() if n.op == "Identity"
             and by_name[n.name].op == "BatchToSpaceND"}
    nodes = []
    for node in graph.nodes:
        node = replaced.get(node.name, node)
        inputs = [_aliased(ref, alias) for ref in node.inputs]
        nodes.append(node if inputs == node.inputs else dataclasses.replace(node, inputs=inputs))
    return dataclasses.replace(graph, nodes=nodes)


def _aliased(ref: str, alias: dict[str, str]) -> str:
    name, k = tg.input_name(ref)
    if k != 0 or name not in alias:
        return ref
    return alias[name]


def _const(graph: TfjsGraph, by_name: dict[str, TfNode], ref: str) -> np.ndarray | None:
    """The value of ``ref`` when a Const node holds it."""
    name, k = tg.input_name(ref)
    node = by_name.get(name)
    if node is None or node.op != "Const" or k != 0:
        return None
    value = graph.weights.get(name)
    return None if value is None else np.asarray(value)


def _single(ref: str, by_name: dict[str, TfNode], readers: dict[str, list[str]],
            kept: set[str]) -> TfNode | None:
    """The producer of ``ref`` when it is output 0, read by one node only and no signature
    output."""
    name, k = tg.input_name(ref)
    node = by_name.get(name)
    if node is None or k != 0 or len(readers.get(name, [])) != 1 or name in kept:
        return None
    return node


def _chain(b2s: TfNode, by_name: dict[str, TfNode], readers: dict[str, list[str]],
           kept: set[str], graph: TfjsGraph) -> list[TfNode] | None:
    """The rewritten nodes of the chain ending at ``b2s``, or None where it does not fit."""
    refs = [r for r in b2s.inputs if not r.startswith("^")]
    if len(refs) != 3:
        return None
    end = _single(refs[0], by_name, readers, kept)
    squeeze = end if end is not None and end.op == "Squeeze" else None
    conv = _single(end.inputs[0], by_name, readers, kept) if squeeze is not None and \
        end is not None and end.inputs else end
    if conv is None or conv.op not in CONVS or not conv.inputs:
        return None
    start = _single(conv.inputs[0], by_name, readers, kept)
    expand = start if start is not None and start.op == "ExpandDims" else None
    s2b_ref = expand.inputs[0] if expand is not None and expand.inputs else conv.inputs[0]
    s2b = by_name.get(tg.input_name(s2b_ref)[0])
    if s2b is None or s2b.op != "SpaceToBatchND" or tg.input_name(s2b_ref)[1] != 0 or \
            (expand is None) != (squeeze is None) or len(s2b.inputs) != 3:
        return None
    if expand is not None and s2b.name in kept:
        return None
    sizes, sizes2 = _const(graph, by_name, s2b.inputs[1]), _const(graph, by_name, refs[1])
    if sizes is None or sizes2 is None:
        return None
    block = [int(v) for v in sizes.reshape(-1)]
    m = len(block)
    if block != [int(v) for v in sizes2.reshape(-1)]:
        return None
    difference = _difference(s2b.inputs[2], refs[2], by_name, graph)
    if difference is None or difference.shape != (m, 2):
        return None
    explicit = difference.astype(np.int64)
    if (explicit < 0).any():
        return None
    rank = 5 if conv.op == "Conv3D" else 4
    spatial = _spatial_axes(m, rank, expand, squeeze, by_name, graph)
    if spatial is None or not _plain(conv, by_name, graph):
        return None
    dilations = [1] * rank
    flat = [0] * (2 * rank)  # (Conv3D has no EXPLICIT padding in TF; the ONNX mapping reads it)
    for i, axis in enumerate(spatial):
        dilations[axis] = block[i]
        flat[2 * axis], flat[2 * axis + 1] = int(explicit[i, 0]), int(explicit[i, 1])
    attrs = dict(conv.attrs)
    attrs["dilations"] = {"list": {"i": [str(d) for d in dilations]}}
    if any(flat):
        attrs["padding"] = {"s": base64.b64encode(b"EXPLICIT").decode()}
        attrs["explicit_paddings"] = {"list": {"i": [str(p) for p in flat]}}
    out: list[TfNode] = []
    if expand is None:
        conv_inputs = [s2b.inputs[0], *conv.inputs[1:]]
    else:
        conv_inputs = list(conv.inputs)
        out.append(dataclasses.replace(expand, inputs=[s2b.inputs[0], *expand.inputs[1:]]))
    out.append(dataclasses.replace(conv, inputs=conv_inputs, attrs=attrs))
    identity_attrs = {k: v for k, v in b2s.attrs.items() if k == "T"}
    out.append(TfNode(b2s.name, "Identity", [refs[0]], identity_attrs, b2s.device))
    return out


def _difference(a: str, b: str, by_name: dict[str, TfNode], graph: TfjsGraph
                ) -> np.ndarray | None:
    """``a - b`` where it is the same at every run (paddings minus crops), else None.

    Constants subtract. On a dynamic height/width TF computes both at run time
    (``required_space_to_batch_paddings``): ``paddings = [[start, end + extra]]`` and
    ``crops = [[0, extra]]`` with ``extra`` from the input's Shape. Their difference is proved
    constant structurally: equal refs differ by 0; ``X + K`` and ``X`` by ``K``; Packs and
    identical StridedSlices of tensors whose difference is constant, by that difference packed or
    sliced the same way.
    """
    if a == b or (tg.input_name(a) == tg.input_name(b)):
        return np.zeros((), np.int64)
    ca, cb = _const(graph, by_name, a), _const(graph, by_name, b)
    if ca is not None and cb is not None:
        return None if ca.dtype.kind not in "iu" else ca.astype(np.int64) - cb.astype(np.int64)
    na, nb = by_name.get(tg.input_name(a)[0]), by_name.get(tg.input_name(b)[0])
    if na is None or tg.input_name(a)[1] != 0:
        return None
    if na.op in ("AddV2", "Add") and len(na.inputs) == 2:
        for x, k in (na.inputs, na.inputs[::-1]):
            constant = _const(graph, by_name, k)
            rest = _difference(x, b, by_name, graph) if constant is not None else None
            if rest is not None and constant is not None and constant.dtype.kind in "iu":
                return rest + constant.astype(np.int64)
        return None
    if nb is None or tg.input_name(b)[1] != 0 or na.op != nb.op or na.attrs != nb.attrs:
        return None
    if na.op == "Pack" and len(na.inputs) == len(nb.inputs):
        found = [_difference(x, y, by_name, graph) for x, y in zip(na.inputs, nb.inputs)]
        parts = [p for p in found if p is not None]
        if len(parts) != len(found):
            return None
        return np.stack(np.broadcast_arrays(*parts), axis=tg.attr_int(na, "axis", 0) or 0)
    if na.op == "StridedSlice" and len(na.inputs) == 4 and len(nb.inputs) == 4:
        inner = _difference(na.inputs[0], nb.inputs[0], by_name, graph)
        found = [_const(graph, by_name, r) for r in na.inputs[1:] + nb.inputs[1:]]
        values = [v for v in found if v is not None]
        if inner is None or inner.ndim == 0 or len(values) != 6 or \
                not all(np.array_equal(x, y) for x, y in zip(values[:3], values[3:])):
            return None
        args = values[:3]
        from ...runtime.tfjs_reference import REGISTRY
        from ...runtime.tfjs_reference._base import Op

        sliced = REGISTRY.require("StridedSlice")(Op(na, [inner, *args]))
        return np.asarray(sliced[0] if isinstance(sliced, list) else sliced)
    return None


def _plain(conv: TfNode, by_name: dict[str, TfNode], graph: TfjsGraph) -> bool:
    """An undilated, stride-1, VALID, channels-last conv (what TF puts inside the chain) whose fused
    steps, if any, act per position with per-channel constants (bias, batch norm, PReLU's
    alpha), so that they commute with the rearrangement."""
    if tg.attr_str(conv, "padding", "VALID") != "VALID" or \
            tg.attr_str(conv, "data_format", "NHWC") not in ("NHWC", "NDHWC"):
        return False
    if any(op not in PER_POSITION for op in tg.attr_list(conv, "fused_ops", "s")):
        return False
    for ref in conv.inputs[2:]:
        if ref.startswith("^"):
            continue
        value = _const(graph, by_name, ref)
        if value is None or any(d != 1 for d in value.shape[:-1]):
            return False
    for name in ("strides", "dilations"):
        values = tg.attr_list(conv, name, "i")
        if values and any(int(v) != 1 for v in values):
            return False
    return True


def _spatial_axes(m: int, rank: int, expand: TfNode | None, squeeze: TfNode | None,
                  by_name: dict[str, TfNode], graph: TfjsGraph) -> list[int] | None:
    """The conv's channels-last axes that the block's M axes are: every spatial axis of a
    rank-``rank`` conv (H, W; D, H, W for Conv3D); for Conv1D's ``ExpandDims(axis 1)`` /
    ``Squeeze([1])`` around a Conv2D, W."""
    if expand is None:
        return list(range(1, rank - 1)) if m == rank - 2 else None
    if rank != 4:
        return None
    axis = _const(graph, by_name, expand.inputs[1]) if len(expand.inputs) > 1 else None
    dims = tg.attr_list(squeeze, "squeeze_dims", "i") if squeeze is not None else []
    if m != 1 or axis is None or axis.size != 1 or int(axis.reshape(-1)[0]) not in (1, -3) or \
            [int(d) for d in dims] not in ([1], [-3]):
        return None
    return [2]
