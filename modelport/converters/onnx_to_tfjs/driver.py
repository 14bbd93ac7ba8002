"""ONNX -> TF.js graph-model: prepare the ONNX graph, refuse up front, then emit TF nodes.

``convert(model)`` runs, in order:

1. ``converters.onnx_normalize``: one opset (17, or the model's own when newer), shape inference,
   constant folding, the channels-last rewrite of layout-sensitive ops, ``layout.optimize``
   (Transposes cancelled between neighbours) and shape inference again.
2. The up-front check: every node without a rule (unknown op, other domain) and every node
   whose rule's ``check`` refuses it, plus graph inputs/outputs of dtypes tfjs cannot hold, go
   into ONE ``UnsupportedError`` naming each node (type and name) and why — before anything is
   emitted, so a user sees the whole list at once.
3. Emission in topological order: a Placeholder per graph input, each node through its rule,
   an Identity named after each graph output; the signature names them with ONNX's names.
   ``models.tfjs_graph.check`` validates the result.

The rules live in the family modules (``math_ops``, ``norm``, ``shapes``, ``nn``, ``resize``);
importing them registers them in ``core.RULES``.
"""

from __future__ import annotations

import logging

import onnx_ir as ir

from ...errors import UnsupportedError
from ...models import TensorInfo, TfjsGraph, TfNode, tfjs_graph
from ...models.tfjs_graph import a_shape, a_type
from .. import layout
from ..onnx_normalize import (
    NHWC,
    explicit_perms,
    fold_constants,
    node_rank,
    normalize,
    reinfer,
    to_channels_last,
)

# each family registers its rules on import
from . import control_flow, math_ops, nn, norm, recurrent, resize, shapes  # noqa: F401
from .core import EMITS, RULES, Ctx, tfjs_dtype
from .quantized import decompose as decompose_quantized
from .quantized import keep_integer_weights
from .quantized_lstm import DOMAIN as CONTRIB
from .quantized_lstm import OPS as CONTRIB_OPS
from .subgraphs import emit_nodes, non_tensor, subgraphs_channels_last

log = logging.getLogger(__name__)

__all__ = ["EMITS", "RULES", "convert", "mapped_ops"]

STANDARD = ("", "ai.onnx")
# ONNX tensor types tfjs has a faithful tensor for (float32, int32 and narrower ints held as
# int32, int64 held as int32 when the values fit, bool, string).
IO_DTYPES = {ir.DataType.FLOAT, ir.DataType.INT32, ir.DataType.INT64, ir.DataType.INT8,
             ir.DataType.INT16, ir.DataType.UINT8, ir.DataType.UINT16, ir.DataType.BOOL,
             ir.DataType.STRING}
MAX_LISTED = 50  # nodes named in the error; the count says how many more


def mapped_ops() -> list[str]:
    """The ONNX op types (standard domain) that have a rule."""
    return sorted(RULES)


def convert(model: ir.Model) -> TfjsGraph:
    """Map an ONNX model (any opset 9..newest) to a TF.js graph-model."""
    scan8 = control_flow.scan8_to_loop(model)  # (normalize would change its inputs' shapes)
    model = normalize(model)
    # DynamicQuantizeLinear, ConvInteger, ...: their float ops
    quantized = decompose_quantized(model) or any(n.op_type in CONTRIB_OPS for n in model.graph)
    control_flow.scan8_shapes(model, scan8)
    fold_constants(model)
    explicit_perms(model.graph)
    problems: list[tuple[Problem, str]] = list(_unmapped(model.graph))
    skip = {id(n) for n, _ in problems}
    for node in model.graph:
        rule = RULES.get(node.op_type)
        if node.domain in STANDARD and rule is not None and rule.layout and id(node) not in skip \
                and node_rank(node) is None:
            problems.append((node, ("the rank of its input is unknown (ONNX shape inference "
                                    "found none), so its channels-last form cannot be built")))
            skip.add(id(node))
    layout_ops = {op for op, r in RULES.items() if r.layout}
    to_channels_last(model, layout_ops, skip)
    subgraphs_channels_last(model, layout_ops)
    left = layout.optimize(model)
    reinfer(model)
    model.graph.sort()
    ctx = Ctx(model.graph)
    problems += _refused(ctx, model.graph, skip)
    problems += _io_dtypes(model.graph)
    if problems:
        raise UnsupportedError(_listing(problems), hint=(
            "no file was written; the ops tfjs can run are listed by "
            "modelport.converters.onnx_to_tfjs.driver.mapped_ops()"))
    graph = _emit(ctx, model.graph)
    if quantized:
        keep_integer_weights(graph)  # the source's 8-bit weights stay 8-bit, exactly
    tfjs_graph.check(graph)
    log.info("ONNX -> TF.js graph: %d TF nodes, %d Transposes in ONNX after the layout pass",
             len(graph.nodes), left)
    return graph


# --- the up-front check --------------------------------------------------------------------------

def _unmapped(graph: ir.Graph) -> list[tuple[ir.Node, str]]:
    out = []
    for node in graph:
        if node.domain == CONTRIB and node.op_type in CONTRIB_OPS:
            continue  # onnxruntime's ops that have a rule (quantized_lstm)
        if node.domain not in STANDARD:
            out.append((node, f"op of domain {node.domain!r}, which has no TF mapping"))
        elif node.op_type not in RULES:
            out.append((node, "no TF mapping for this op"))
    return out


def _refused(ctx: Ctx, graph: ir.Graph, skip: set[int]) -> list[tuple[ir.Node, str]]:
    out = []
    for node in graph:
        if id(node) in skip or node.domain not in (*STANDARD, NHWC, CONTRIB):
            continue
        rule = RULES.get(node.op_type)
        if rule is None:
            continue  # listed by _unmapped
        if rule.layout != (node.domain == NHWC):
            out.append((node, "internal: the channels-last rewrite missed this node"))
            continue
        if rule.check is None:
            continue
        try:
            why = rule.check(ctx, node)
        except UnsupportedError as e:
            why = e.message
        if why:
            out.append((node, why))
    return out


def _io_dtypes(graph: ir.Graph) -> list[tuple[Problem, str]]:
    out: list[tuple[Problem, str]] = []
    for kind, values in (("input", graph.inputs), ("output", graph.outputs)):
        for v in values:
            if v.type is not None and not isinstance(v.type, ir.TensorType):
                why = (f"graph {kind} is {non_tensor(v)}, not a tensor (tfjs has no sequence or "
                       "optional values)")
                out.append((_IO(kind, v.name), why))
            elif v.dtype is not None and v.dtype not in IO_DTYPES:
                why = "tfjs has no double" if v.dtype == ir.DataType.DOUBLE else \
                    f"tfjs has no {v.dtype.name.lower()} tensors"
                out.append((_IO(kind, v.name), f"graph {kind} of type {v.dtype.name} ({why})"))
    return out


class _IO:
    """A graph input or output in the problem list (it has a name, no op type)."""

    def __init__(self, kind: str, name: str | None) -> None:
        self.op_type, self.name = f"graph {kind}", name


# What the problem list names: a node, or a graph input or output.
Problem = ir.Node | _IO


def _listing(problems: list[tuple[Problem, str]]) -> str:
    lines = [f"{n.op_type} {'' if isinstance(n, _IO) else 'node '}{n.name!r}: {why}"
             for n, why in problems[:MAX_LISTED]]
    more = len(problems) - MAX_LISTED
    ops = sorted({n.op_type for n, _ in problems})
    head = f"{len(problems)} node(s) cannot be mapped to TF.js ops ({', '.join(ops)}): "
    return head + "; ".join(lines) + (f"; and {more} more" if more > 0 else "")


# --- emission ------------------------------------------------------------------------------------

def _emit(ctx: Ctx, graph: ir.Graph) -> TfjsGraph:
    # Placeholders and output Identities get the ONNX names (sanitized), reserved first so that
    # no internal node takes them.
    in_names = [ctx.reserve(v.name or f"input_{i}") for i, v in enumerate(graph.inputs)]
    out_names = [ctx.reserve(v.name or f"output_{i}") for i, v in enumerate(graph.outputs)]
    inputs: list[TensorInfo] = []
    for v, name in zip(graph.inputs, in_names):
        dtype = tfjs_dtype(ctx.np_dtype(v))
        shape = ctx.shape(v)
        ctx.used.add(name)
        ctx.nodes.append(TfNode(name, "Placeholder", [], {"dtype": a_type(dtype),
                                                          **a_shape_attr(shape)}))
        ctx.bind(v, name)
        inputs.append(TensorInfo(v.name or name, f"{name}:0", dtype, shape))
    emit_nodes(ctx, graph)
    outputs: list[TensorInfo] = []
    ctx.scope, ctx.node = "outputs", None
    for v, name in zip(graph.outputs, out_names):
        ctx.used.add(name)
        ctx.nodes.append(TfNode(name, "Identity", [ctx.x(v)], {}))
        outputs.append(TensorInfo(v.name or name, f"{name}:0", tfjs_dtype(ctx.np_dtype(v)),
                                  ctx.shape(v)))
    return TfjsGraph(nodes=ctx.nodes, weights=ctx.weights, inputs=inputs, outputs=outputs,
                     versions={"producer": 1982}, extra={"generatedBy": "modelport (ONNX)"},
                     functions=ctx.functions)


def a_shape_attr(shape: list[int | None] | None) -> dict:
    """A Placeholder's shape attribute (none when the rank is unknown): an AttrValue holding a
    TensorShapeProto, ``{"shape": {"shape": {"dim": [...]}}}`` as tensorflowjs_converter writes
    it; tfjs reads ``model.inputs[i].shape`` from it (one level flatter, tfjs sees no shape)."""
    return {"shape": a_shape(shape)} if shape is not None else {}

