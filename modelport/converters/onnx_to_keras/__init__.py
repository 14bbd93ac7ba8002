"""ONNX -> Keras layers (raising), channels-last.

``raise_model(model)`` runs, in order:

1. The ONNX preparation shared with the TF.js graph route (``onnx_tfjs.to_tfjs_prepare``): one
   opset, shape inference, constant folding, each layout-sensitive op (convolutions, pools,
   normalizations, Resize) rewritten as its channels-last twin between two Transposes, and
   ``layout.optimize``, which cancels the Transposes between neighbours. What is left is a graph
   whose every value is in the layout the Keras model will hold it in, with an explicit
   Transpose wherever the layout really changes (before a Flatten of a feature map, say).
   Between shape inference and the rest, layers that modelport's own Keras -> ONNX route
   recorded in the metadata are proven by re-lowering and replaced by one ``KerasLayer`` node
   each (``relower.py``); the record is a hypothesis, never trusted.
2. Inputs: a graph input whose every use is the same Transpose (NCHW -> NHWC) becomes a
   channels-last Keras input (unless ``channels_first_inputs``, which keeps ONNX's layout and
   raises those Transposes as a leading Permute). Outputs produced by a Transpose back to NCHW
   are likewise taken channels-last. The permutations are returned, so that a parity check
   feeds and compares the same numbers.
3. Patterns claim subgraphs that are one Keras layer (``patterns.py``), then every node goes
   through its rule (``core.RULES``, filled by the family modules), in topological order. A
   node that cannot be raised is collected, not raised at once, and ONE ``UnsupportedError``
   lists all of them (type, name, why) before anything is written, with a
   hint to the TF.js graph-model route, which maps ops instead of layers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import onnx
import onnx_ir as ir

from ...errors import ModelportError, UnsupportedError
from ...models import Layer, LayersModel, SourceInfo, TensorRef
from .. import layout
from ..onnx_normalize import (
    NHWC,
    explicit_perms,
    fold_constants,
    normalize,
    opset_of,
    reinfer,
    to_channels_last,
)
from . import activations, dense, elementwise, nn, patterns, recurrent, relower, shape  # noqa: F401
from .core import PATTERN_OPS, PATTERNS, RULES, Ctx, Rule, sanitize
from .order import keras_order

log = logging.getLogger(__name__)

__all__ = ["RULES", "Raised", "raise_model", "raised_ops"]

STANDARD = ("", "ai.onnx")
MAX_LISTED = 50
GRAPH_ROUTE_HINT = ("nothing was written; ops without a Keras layer convert to a TF.js "
                    "graph-model instead: modelport convert model.onnx out_dir --to tfjs-graph")
# Ops whose rules read only their first inputs as values; the rest (target shapes, sizes)
# they take from ONNX's inferred output shape, so what computes those at run time (Shape of
# the batch, ...) is not raised.
DATA_INPUTS = {"Reshape": 1, "Resize": 1, "Upsample": 1, "Expand": 1}
INPUT_DTYPES = {ir.DataType.FLOAT: "float32", ir.DataType.INT32: "int32",
                ir.DataType.INT64: "int32"}


@dataclass
class Raised:
    model: LayersModel
    # Per input/output: the permutation p with keras_array = onnx_array.transpose(p), or None.
    input_perms: list[list[int] | None] = field(default_factory=list)
    output_perms: list[list[int] | None] = field(default_factory=list)
    # Keras layer name -> (ONNX value name, ONNX node name) it computes.
    origin: dict[str, tuple[str, str]] = field(default_factory=dict)
    permutes: int = 0


def raised_ops() -> list[str]:
    """The ONNX op types (standard domain) that have a rule."""
    return sorted(RULES)


def raise_model(model: ir.Model, *, channels_first_inputs: bool = False,
                for_tfjs: bool = False, name: str | None = None,
                source: str | None = None) -> Raised:
    """Raise an ONNX model (any opset 9..newest) to a channels-last Keras functional model.

    ``for_tfjs``: prefer forms tfjs-layers runs (a grouped convolution as one convolution with
    a block-diagonal kernel, global pooling without keepdims) where Keras has a shorter one.
    """
    name_nodes(model.graph)
    opset = opset_of(model)
    model = normalize(model)
    # after normalize, which leaves opsets >= 17 as they are and gives every value its shape
    proven = relower.replace_proven(model, opset)
    fold_constants(model)
    explicit_perms(model.graph)
    problems: list[tuple[ir.Node | None, str]] = []
    # nodes that cannot be raised, listed only if the outputs need them (a Shape that only
    # feeds a Resize's sizes, say, is not raised: the rule reads the inferred shape)
    early: dict[int, tuple[ir.Node, str]] = {}
    for node in model.graph:
        if node.domain == relower.DOMAIN and node.name in proven:
            continue
        if node.domain not in STANDARD:
            early[id(node)] = (node, f"op of domain {node.domain!r}, which has no Keras layer")
        elif node.op_type not in RULES and node.op_type not in PATTERN_OPS:
            early[id(node)] = (node, "no Keras layer computes this op")
        elif node.op_type in RULES and RULES[node.op_type].layout and _rank(node) is None:
            early[id(node)] = (node, ("the rank of its input is unknown (ONNX shape "
                                      "inference found none), so its channels-last form "
                                      "cannot be built"))
    skip = set(early)
    to_channels_last(model, {op for op, r in RULES.items() if r.layout}, skip)
    layout.optimize(model)
    _hoist_transposes(model.graph)  # not optimized again: that would push them back down
    reinfer(model)
    model.graph.sort()
    graph = model.graph
    ctx = Ctx(graph, for_tfjs=for_tfjs)
    inputs, input_perms, done = _inputs(ctx, graph, channels_first_inputs, problems)
    outputs, output_perms = _plan_outputs(ctx, graph, channels_first_inputs)
    needed = _needed(graph, outputs, done)
    for node in graph:
        if node.domain == relower.DOMAIN and node.name in proven:
            ctx.fused[id(node)] = proven[node.name].emit
    for fn in PATTERNS:
        fn(ctx, graph)
    failed: set[int] = set()
    for node in graph:
        if id(node) in done or id(node) in ctx.absorbed or id(node) not in needed:
            continue
        if id(node) in skip:
            problems.append(early[id(node)])
            failed.update(id(v) for v in node.outputs)
            continue
        if any(v is not None and id(v) in failed for v in node.inputs):
            failed.update(id(v) for v in node.outputs)
            continue
        rule = RULES.get(node.op_type)
        fused = ctx.fused.get(id(node))
        if fused is not None:
            rule = Rule(node.op_type, fused, None, node.domain == NHWC)
        if rule is None or rule.layout != (node.domain == NHWC):
            if (node.op_type, node.name) not in {(n.op_type, n.name) for n, _ in problems
                                                 if n is not None}:
                problems.append((node, "no Keras layer computes this op"))
            failed.update(id(v) for v in node.outputs)
            continue
        ctx.node = node
        try:
            rule.fn(ctx, node)
        except UnsupportedError as e:
            problems.append((node, _reason(e, node)))
            failed.update(id(v) for v in node.outputs)
        finally:
            ctx.node = None
    if problems:
        raise UnsupportedError(_listing(problems), hint=GRAPH_ROUTE_HINT)
    refs = []
    for v in outputs:
        if not ctx.is_tensor(v):
            raise UnsupportedError(f"graph output {v.name!r} is a constant: a Keras model's "
                                   "outputs are computed from its inputs", hint=GRAPH_ROUTE_HINT)
        refs.append(ctx.tensors[id(v)])
    input_refs = [TensorRef(layer.name) for layer in inputs]
    result = LayersModel(
        name=sanitize(name or graph.name or "model"), kind="Functional",
        layers=keras_order(inputs + ctx.layers, input_refs, refs), inputs=input_refs,
        outputs=refs, config={"trainable": True},
        source=SourceInfo("onnx", source or "", "keras3"))
    permutes = sum(1 for layer in ctx.layers if layer.class_name == "Permute")
    log.info("ONNX -> Keras: %d layers, %d Permutes", len(ctx.layers), permutes)
    return Raised(result, input_perms, output_perms, dict(ctx.origin), permutes)


def name_nodes(graph) -> None:
    """Name unnamed nodes by position, as ``runtime.divergence`` names them in the source, so
    that a Keras layer can be traced back to the node it was raised from."""
    for i, node in enumerate(graph.node if isinstance(graph, onnx.GraphProto) else graph):
        if not node.name:
            node.name = f"{node.op_type}_{i}"


def _hoist_transposes(graph: ir.Graph) -> int:
    """Move each Transpose above the chain of elementwise unary ops it follows (Relu,
    Sigmoid, ...), so that a graph input read through such a chain is read through the
    Transpose first and can become a channels-last Keras input. (``layout.optimize`` pushes
    Transposes towards the outputs; this is the other direction, for the input side.)"""
    moved = 0
    for _ in range(10_000):
        for node in graph:
            if node.op_type != "Transpose" or node.domain not in STANDARD:
                continue
            unary = node.inputs[0].producer()
            if unary is None or unary.op_type not in layout.UNARY or \
                    unary.domain not in STANDARD or len(unary.outputs[0].uses()) != 1 or \
                    unary.outputs[0].is_graph_output() or \
                    any(v is not None and v.const_value is None
                        for v in unary.inputs[1:]):
                continue
            perm = _perm(node)
            source = unary.inputs[0]
            t = ir.node("Transpose", [source], {"perm": perm})
            t.outputs[0].type = source.type
            if source.shape is not None:
                t.outputs[0].shape = ir.Shape([source.shape[p] for p in perm])
            u = ir.Node(unary.domain, unary.op_type, [t.outputs[0], *unary.inputs[1:]],
                        attributes=list(unary.attributes.values()), name=unary.name)
            u.outputs[0].type, u.outputs[0].shape = node.outputs[0].type, \
                node.outputs[0].shape
            graph.insert_before(unary, [t, u])
            out = node.outputs[0]
            was_output, name = out.is_graph_output(), out.name
            out.replace_all_uses_with(u.outputs[0], replace_graph_outputs=True)
            if was_output:
                out.name = None
                u.outputs[0].name = name
            graph.remove(node, safe=True)
            graph.remove(unary, safe=True)
            moved += 1
            break
        else:
            break
    return moved


def _rank(node: ir.Node) -> int | None:
    for v in (node.inputs[0] if node.inputs else None, node.outputs[0]):
        if v is not None and v.shape is not None:
            return len(v.shape)
    return None


def _perm(node: ir.Node) -> list[int]:
    return [int(p) for p in node.attributes["perm"].value]


def _inputs(ctx: Ctx, graph: ir.Graph, channels_first: bool, problems: list):
    """InputLayers; a graph input read only through one NCHW->NHWC Transpose is taken
    channels-last (the Transposes are then done)."""
    layers, perms, done = [], [], set()
    for x in graph.inputs:
        dtype = INPUT_DTYPES.get(x.dtype)
        if x.dtype == ir.DataType.BOOL and x.uses() and all(
                u.node.domain == relower.DOMAIN for u in x.uses()):
            dtype = "bool"  # only proven Keras layers read it (an attention mask, say)
        if dtype is None or x.shape is None:
            why = "its shape is unknown" if x.shape is None else \
                f"Keras inputs here are float32 or integer, not {x.dtype}"
            problems.append((None, f"graph input {x.name!r}: {why}"))
            perms.append(None)
            continue
        dims = [d if isinstance(d, int) else None for d in x.shape]
        users = [u.node for u in x.uses()]
        perm = None
        if not channels_first and len(dims) >= 3 and users and all(
                n.op_type == "Transpose" and n.domain in STANDARD for n in users):
            candidates = {tuple(_perm(n)) for n in users}
            if len(candidates) == 1:
                p = list(candidates.pop())
                if p[0] == 0:
                    perm = p
        if perm is not None:
            dims = [dims[p] for p in perm]
        if not dims:
            problems.append((None, (f"graph input {x.name!r} is a scalar: Keras inputs have "
                                    "a batch axis")))
            perms.append(None)
            continue
        name = ctx.unique(x.name or "input")
        layer = Layer("InputLayer", name, {"batch_shape": [None, *dims[1:]], "dtype": dtype,
                                           "sparse": False, "name": name})
        layers.append(layer)
        ref = TensorRef(name)
        ctx.bind(x, ref)
        ctx.input_shapes[id(x)] = dims
        if perm is not None:
            for n in users:
                ctx.bind(n.outputs[0], ref)
                done.add(id(n))
        perms.append(perm)
    return layers, perms, done


def _plan_outputs(ctx: Ctx, graph: ir.Graph, channels_first: bool):
    """Graph outputs as Keras outputs: one made by a Transpose that keeps the batch is taken
    before it (channels-last), with the permutation recorded."""
    values, perms = [], []
    for y in graph.outputs:
        producer = y.producer()
        if not channels_first and producer is not None and producer.op_type == "Transpose" \
                and producer.domain in STANDARD and _perm(producer)[0] == 0 \
                and len(_perm(producer)) >= 3 and not producer.inputs[0].is_graph_input():
            p = _perm(producer)
            values.append(producer.inputs[0])
            perms.append([p.index(i) for i in range(len(p))])
        else:
            values.append(y)
            perms.append(None)
    return values, perms


def _needed(graph: ir.Graph, outputs: list[ir.Value], done: set[int]) -> set[int]:
    """Nodes the outputs depend on (others would be layers Keras cannot place)."""
    needed: set[int] = set()
    stack = [v for v in outputs]
    seen: set[int] = set()
    while stack:
        v = stack.pop()
        if v is None or id(v) in seen:
            continue
        seen.add(id(v))
        node = v.producer()
        if node is None or id(node) in done:
            continue
        needed.add(id(node))
        data = DATA_INPUTS.get(node.op_type)
        inputs = node.inputs if data is None else node.inputs[:data]
        stack.extend(v for i, v in enumerate(inputs) if not recurrent.zero_initial_state(node, i))
    return needed


def _reason(e: ModelportError, node: ir.Node) -> str:
    prefix = f"{node.op_type} node {node.name!r}: "
    return e.message.removeprefix(prefix)


def _listing(problems: list[tuple[ir.Node | None, str]]) -> str:
    lines = []
    for node, why in problems[:MAX_LISTED]:
        where = f"{node.op_type} node {node.name!r}" if node is not None else "model"
        lines.append(f"{where}: {why}")
    more = len(problems) - MAX_LISTED
    head = (f"{len(problems)} node(s) cannot be raised to Keras layers" if len(problems) > 1
            else "a node cannot be raised to Keras layers")
    return head + ": " + "; ".join(lines) + (f"; and {more} more" if more > 0 else "")
