"""ONNX -> Keras layers (raising), channels-last.

``raise_model(model)`` runs, in order:

1. The ONNX preparation shared with the TF.js graph route (``converters.onnx_normalize``): one
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
from ..onnx_control_flow import select_ifs
from ..onnx_normalize import (
    NHWC,
    explicit_perms,
    fold_constants,
    node_rank,
    normalize,
    opset_of,
    optional_input,
    reinfer,
    to_channels_last,
)
from ..rewire import replace_value
from . import (  # noqa: F401
    activations,
    affine_fuse,
    attention,
    dense,
    depth_space,
    elementwise,
    nn,
    onehot,
    operations,
    operations_index,
    operations_numeric,
    patterns,
    powers,
    recurrent,
    relower,
    shape,
    squeeze_pairs,
    tensordot,
)
from .core import PATTERN_OPS, PATTERNS, RULES, Ctx, Rule, sanitize
from .hoist_views import hoist_views
from .order import keras_order
from .shape_values import fold_static_shapes
from .tf_forms import rewrite_tf_forms

log = logging.getLogger(__name__)

PATTERNS.append(affine_fuse.scale_then_shift)  # last: see its docstring

__all__ = ["RULES", "Raised", "raise_model", "raised_ops"]

STANDARD = ("", "ai.onnx")
MAX_LISTED = 50
GRAPH_ROUTE_HINT = ("nothing was written; ops without a Keras layer convert to a TF.js "
                    "graph-model instead: modelport convert model.onnx out_dir --to tfjs-graph")


def route_hint(source: str | None) -> str:
    """The refusal's hint, naming the real source: an ONNX file converts to a TF.js
    graph-model, which maps ops instead of layers; a TF.js graph-model already is one (and
    converts to ONNX)."""
    if not source:
        return GRAPH_ROUTE_HINT
    if source.lower().endswith(".onnx"):
        return ("nothing was written; ops without a Keras layer convert to a TF.js graph-model "
                f"instead: modelport convert {source} out_dir --to tfjs-graph")
    return ("nothing was written; ops without a Keras layer run where the model is kept as a "
            f"graph of ops: {source} is a TF.js graph-model already (tfjs runs it as it is), "
            f"or convert it to ONNX: modelport convert {source} model.onnx --to onnx")
# Ops whose rules read only their first inputs as values; the rest (target shapes, sizes)
# they take from ONNX's inferred output shape, so what computes those at run time (Shape of
# the batch, ...) is not raised.
# What a value that was not raised is bound to, so that the nodes after it are examined too.
STAND_IN = "__not_raised__"
DATA_INPUTS = {"Reshape": 1, "Resize": 1, "Upsample": 1, "Expand": 1}
INPUT_DTYPES = {ir.DataType.FLOAT: "float32", ir.DataType.INT32: "int32",
                ir.DataType.INT64: "int32"}


@dataclass
class Raised:
    """A raised model, with what a parity check needs to compare it with its source."""

    model: LayersModel
    # Per input/output: the permutation p with keras_array = onnx_array.transpose(p), or None.
    input_perms: list[list[int] | None] = field(default_factory=list)
    output_perms: list[list[int] | None] = field(default_factory=list)
    # Keras layer name -> (ONNX value name, ONNX node name) it computes.
    origin: dict[str, tuple[str, str]] = field(default_factory=dict)
    permutes: int = 0
    # the layers whose output is an ONNX value (not the inner layers of a composition): what
    # the parity check may look for among the source's values (check.sampled_layers)
    bound: frozenset[str] = frozenset()
    # the ONNX model the raising started from (pinned, folded), whose values the check may
    # look the layers up in where the source hides them in an If's branch
    onnx: ir.Model | None = field(default=None, repr=False, compare=False)


def raised_ops() -> list[str]:
    """The ONNX op types (standard domain) that have a rule."""
    return sorted(RULES)


def raise_model(model: ir.Model, *, channels_first_inputs: bool = False,
                for_tfjs: bool = False, name: str | None = None,
                source: str | None = None, one_sample: bool = False) -> Raised:
    """Raise an ONNX model (any opset 9..newest) to a channels-last Keras functional model.

    ``for_tfjs``: prefer forms tfjs-layers runs (a grouped convolution as one convolution with
    a block-diagonal kernel, global pooling without keepdims) where Keras has a shorter one.
    ``one_sample``: the inputs are declared with the static batch the model was pinned to
    (its shapes were folded at that batch).
    """
    given = model
    model, proven, selected = _prepare(model)
    early = _unraisable(model.graph, proven)
    _channels_last(model, set(early))
    graph = model.graph
    ctx = Ctx(graph, for_tfjs=for_tfjs)
    problems: list[tuple[ir.Node | None, str]] = []
    inputs, input_perms, done = _inputs(ctx, graph, channels_first_inputs, problems)
    outputs, output_perms = _plan_outputs(ctx, graph, channels_first_inputs)
    needed = _needed(graph, outputs, done)
    _claim(ctx, graph, proven)
    # values not computed (a refused graph input among them: a node reading one is listed for
    # what it does itself, not for an operand that looks constant because it was refused)
    failed: set[int] = {id(x) for x in graph.inputs if not ctx.is_tensor(x)}
    for node in graph:
        if id(node) in done or id(node) in ctx.absorbed or id(node) not in needed:
            continue
        if not _raise_node(ctx, node, early, failed, problems):
            failed.update(id(v) for v in node.outputs)
    if problems:
        raise UnsupportedError(_listing(problems), hint=route_hint(source))
    refs = _output_refs(ctx, outputs, source)
    if ctx.literal_batch or one_sample:  # it runs one sample only: declared so
        for layer, x in zip(inputs, graph.inputs):
            first = x.shape[0] if x.shape is not None and len(x.shape) else 1
            layer.config["batch_shape"] = [first if isinstance(first, int) else 1,
                                           *layer.config["batch_shape"][1:]]
    input_refs = [TensorRef(layer.name) for layer in inputs]
    result = LayersModel(
        name=sanitize(name or graph.name or "model"), kind="Functional",
        layers=keras_order(inputs + ctx.layers, input_refs, refs), inputs=input_refs,
        outputs=refs, config={"trainable": True},
        source=SourceInfo("onnx", source or "", "keras3"))
    permutes = sum(1 for layer in ctx.layers if layer.class_name == "Permute")
    log.info("ONNX -> Keras: %d layers, %d Permutes", len(ctx.layers), permutes)
    bound = frozenset(ref.layer for ref in ctx.tensors.values())
    return Raised(result, input_perms, output_perms, dict(ctx.origin), permutes, bound,
                  onnx=selected or given)


def _prepare(model: ir.Model) -> tuple[ir.Model, dict[str, relower.Proven], ir.Model | None]:
    """Step 1 before the layout pass: one opset, every value's shape, the recorded Keras layers
    proven and replaced, constants folded. Also the model with its computed ``If`` nodes made
    selects, where there were any (None otherwise): onnxruntime hands out no value computed
    inside a branch, so the check looks for the raised layers among that model's values."""
    name_nodes(model.graph)
    opset = opset_of(model)
    model = normalize(model)
    selected = None
    if select_ifs(model):  # no Keras layer branches: both branches run, a Where picks
        model = normalize(model)
        selected = ir.from_proto(ir.to_proto(model))
    # after normalize, which leaves opsets >= 17 as they are and gives every value its shape
    proven = relower.replace_proven(model, opset)
    # shape arithmetic that the static dims make constant (Shape(x)[1:], ...), then the rest
    fold_static_shapes(model.graph)
    fold_constants(model)
    rewrite_tf_forms(model)  # Keras layers as TF computes them, in the forms raised below
    explicit_perms(model.graph)
    return model, proven, selected


def _unraisable(graph: ir.Graph, proven: dict[str, relower.Proven]
                ) -> dict[int, tuple[ir.Node, str]]:
    """Nodes that cannot be raised whatever their neighbours, by id, with why. They are listed
    only if the outputs need them (a Shape that only feeds a Resize's sizes, say, is not
    raised: the rule reads the inferred shape)."""
    early: dict[int, tuple[ir.Node, str]] = {}
    for node in graph:
        why = _no_rule(node, proven)
        if why is not None:
            early[id(node)] = (node, why)
    return early


def _no_rule(node: ir.Node, proven: dict[str, relower.Proven]) -> str | None:
    if node.domain == relower.DOMAIN and node.name in proven:
        return None
    if node.domain not in STANDARD:
        return f"op of domain {node.domain!r}, which has no Keras layer"
    if node.op_type not in RULES and node.op_type not in PATTERN_OPS:
        return "no Keras layer computes this op"
    if node.op_type in RULES and RULES[node.op_type].layout and node_rank(node) is None:
        return ("the rank of its input is unknown (ONNX shape inference found none), so its "
                "channels-last form cannot be built")
    return None


def _channels_last(model: ir.Model, skip: set[int]) -> None:
    """Step 1's layout pass: layout-sensitive ops (but ``skip``) as channels-last twins, the
    Transposes between neighbours cancelled, and those under a graph input's unary ops hoisted
    above them; then shapes inferred again and the nodes in topological order."""
    to_channels_last(model, {op for op, r in RULES.items() if r.layout}, skip)
    layout.optimize(model)
    hoist_views(model.graph)  # views of an input (YOLO's Focus) read it channels-last
    _hoist_transposes(model.graph)  # not optimized again: that would push them back down
    reinfer(model)
    model.graph.sort()


def _claim(ctx: Ctx, graph: ir.Graph, proven: dict[str, relower.Proven]) -> None:
    """Before the rules: proven Keras layers and patterns claim the nodes they raise."""
    for node in graph:
        if node.domain == relower.DOMAIN and node.name is not None and node.name in proven:
            ctx.fused[id(node)] = proven[node.name].emit
    for fn in PATTERNS:
        fn(ctx, graph)


def _raise_node(ctx: Ctx, node: ir.Node, early: dict[int, tuple[ir.Node, str]],
                failed: set[int], problems: list[tuple[ir.Node | None, str]]) -> bool:
    """Raise ``node`` through its rule; False where it is not, with the problem listed.

    A node after a refused one is still examined (the refusal lists every blocking node, not
    the first of a chain): an input that was not raised stands for a Keras tensor of its
    inferred shape. The layers built on such a stand-in are never written, since a refusal
    follows; a rule that cannot work on one at all (it needed the layer behind it) is not
    listed, as its input is."""
    if id(node) in early:
        problems.append(early[id(node)])
        return False
    after_failed = False
    for v in node.inputs:
        if v is not None and id(v) in failed:
            after_failed = True
            if not ctx.is_tensor(v):
                ctx.bind(v, TensorRef(STAND_IN))
    rule = _rule_for(ctx, node)
    if rule is None:
        if (node.op_type, node.name) not in {(n.op_type, n.name) for n, _ in problems
                                             if n is not None}:
            problems.append((node, "no Keras layer computes this op"))
        return False
    ctx.node = node
    try:
        rule.fn(ctx, node)
    except UnsupportedError as e:
        problems.append((node, _reason(e, node)))
        return False
    except Exception:  # only after a stand-in (then the earlier refusal stands)
        if not after_failed:
            raise
        return False
    finally:
        ctx.node = None
    return True


def _rule_for(ctx: Ctx, node: ir.Node) -> Rule | None:
    """What raises ``node``: what a pattern claimed it with, else its op's rule; None where
    the rule is for the other layout (a twin raised from its channels-last form only)."""
    rule = RULES.get(node.op_type)
    fused = ctx.fused.get(id(node))
    if fused is not None:
        rule = Rule(node.op_type, fused, None, node.domain == NHWC)
    if rule is None or rule.layout != (node.domain == NHWC):
        return None
    return rule


def _output_refs(ctx: Ctx, outputs: list[ir.Value], source: str | None) -> list[TensorRef]:
    """The Keras tensors of the planned outputs; a constant output is refused."""
    refs = []
    for v in outputs:
        if not ctx.is_tensor(v):
            raise UnsupportedError(f"graph output {v.name!r} is a constant: a Keras model's "
                                   "outputs are computed from its inputs",
                                   hint=route_hint(source))
        refs.append(ctx.tensors[id(v)])
    return refs


def name_nodes(graph: ir.Graph | onnx.GraphProto) -> None:
    """Name unnamed nodes by position, as ``check.divergence`` names them in the source, so
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
        found = _next_hoist(graph)
        if found is None:
            break
        _hoist(graph, *found)
        moved += 1
    return moved


def _next_hoist(graph: ir.Graph) -> tuple[ir.Node, ir.Node, ir.Value] | None:
    """The first standard Transpose reading an elementwise unary op that only it reads (and
    whose other inputs are constants): (the Transpose, the op, the op's input)."""
    for node in graph:
        if node.op_type != "Transpose" or node.domain not in STANDARD:
            continue
        x = optional_input(node, 0)
        unary = x.producer() if x is not None else None
        source = optional_input(unary, 0) if unary is not None else None
        if unary is None or source is None or unary.op_type not in layout.UNARY or \
                unary.domain not in STANDARD or len(unary.outputs[0].uses()) != 1 or \
                unary.outputs[0].is_graph_output() or \
                any(v is not None and v.const_value is None for v in unary.inputs[1:]):
            continue
        return node, unary, source
    return None


def _hoist(graph: ir.Graph, node: ir.Node, unary: ir.Node, source: ir.Value) -> None:
    """Transpose ``source`` first, then apply ``unary``: the same values as ``node`` made."""
    perm = _perm(node)
    t = ir.node("Transpose", [source], {"perm": perm})
    t.outputs[0].type = source.type
    if source.shape is not None:
        t.outputs[0].shape = ir.Shape([source.shape[p] for p in perm])
    u = ir.Node(unary.domain, unary.op_type, [t.outputs[0], *unary.inputs[1:]],
                attributes=list(unary.attributes.values()), name=unary.name)
    u.outputs[0].type, u.outputs[0].shape = node.outputs[0].type, node.outputs[0].shape
    graph.insert_before(unary, [t, u])
    replace_value(node.outputs[0], u.outputs[0])
    graph.remove(node, safe=True)
    graph.remove(unary, safe=True)


def _perm(node: ir.Node) -> list[int]:
    return [int(p) for p in node.attributes["perm"].value]


_Inputs = tuple[list[Layer], list["list[int] | None"], set[int]]


def _inputs(ctx: Ctx, graph: ir.Graph, channels_first: bool,
            problems: list[tuple[ir.Node | None, str]]) -> _Inputs:
    """InputLayers, each input's permutation (or None) and the Transposes done: a graph input
    read only through one NCHW->NHWC Transpose is taken channels-last."""
    layers: list[Layer] = []
    perms: list[list[int] | None] = []
    done: set[int] = set()
    for x in graph.inputs:
        dtype = _input_dtype(x)
        if dtype is None or x.shape is None:
            why = "its shape is unknown" if x.shape is None else \
                f"Keras inputs here are float32 or integer, not {x.dtype}"
            problems.append((None, f"graph input {x.name!r}: {why}"))
            perms.append(None)
            continue
        dims = [d if isinstance(d, int) else None for d in x.shape]
        users = [u.node for u in x.uses()]
        perm = None if channels_first or len(dims) < 3 else _input_perm(users)
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


def _input_dtype(x: ir.Value) -> str | None:
    """The Keras dtype of graph input ``x``, or None where Keras inputs here have none."""
    if x.dtype == ir.DataType.BOOL and x.uses() and all(
            u.node.domain == relower.DOMAIN for u in x.uses()):
        return "bool"  # only proven Keras layers read it (an attention mask, say)
    return INPUT_DTYPES.get(x.dtype) if x.dtype is not None else None


def _input_perm(users: list[ir.Node]) -> list[int] | None:
    """The permutation every user of an input applies, when all are one standard Transpose
    keeping the batch first."""
    if not users or not all(n.op_type == "Transpose" and n.domain in STANDARD for n in users):
        return None
    candidates = {tuple(_perm(n)) for n in users}
    if len(candidates) != 1:
        return None
    p = list(candidates.pop())
    return p if p[0] == 0 else None


def _plan_outputs(ctx: Ctx, graph: ir.Graph, channels_first: bool
                  ) -> tuple[list[ir.Value], list[list[int] | None]]:
    """Graph outputs as Keras outputs: one made by a Transpose that keeps the batch is taken
    before it (channels-last), with the permutation recorded."""
    values: list[ir.Value] = []
    perms: list[list[int] | None] = []
    for y in graph.outputs:
        producer = y.producer()
        before = optional_input(producer, 0) if producer is not None else None
        if not channels_first and producer is not None and before is not None and \
                producer.op_type == "Transpose" and producer.domain in STANDARD and \
                _perm(producer)[0] == 0 and len(_perm(producer)) >= 3 and \
                not before.is_graph_input():
            p = _perm(producer)
            values.append(before)
            perms.append([p.index(i) for i in range(len(p))])
        else:
            values.append(y)
            perms.append(None)
    return values, perms


def _needed(graph: ir.Graph, outputs: list[ir.Value], done: set[int]) -> set[int]:
    """Nodes the outputs depend on (others would be layers Keras cannot place)."""
    needed: set[int] = set()
    stack: list[ir.Value | None] = list(outputs)
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
