"""ONNX subgraphs (``If`` branches, ``Loop``/``Scan`` bodies) as TF.js library functions.

An ONNX subgraph reads values of the graphs around it by name; a TF function sees only its
arguments. ``captured`` lists the outer values a subgraph reads (constants excepted: a function
holds its own Const), and the control-flow rules pass them as extra arguments. ``emit_function``
maps the subgraph's nodes with the same rules as the main graph, in a child ``Ctx`` that shares
the weights, the used names and the library (tfjs keeps one weight map for the model and its
functions, keyed by node name, so names stay unique across all of them), and records a
``TfFunction`` whose outputs are Identities of the subgraph's outputs.

A value inside a subgraph whose rank ONNX inference left unknown (downstream of an ``If``
whose branches return different ranks: scripted PyTorch's squeeze-if-size-1) gets the rank
its consumers require from ``converters.onnx_ranks``, which ``fold_constants`` runs first.

Layout-sensitive ops (convolutions, pooling, ...) inside a subgraph get the same channels-last
twin as in the main graph (``subgraphs_channels_last``: each wrapped in its own Transposes; the
layout pass that cancels them works on the main graph only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import onnx_ir as ir

from ...errors import UnsupportedError
from ...models.tfjs_graph import TfFunction
from ..onnx_normalize import NHWC, _constant_attr, const_array, explicit_perms, to_channels_last
from .core import RULES, Ctx, sanitize

STANDARD = ("", "ai.onnx")


def _defined(graph: ir.Graph) -> set[int]:
    """ids of the values ``graph`` and its nested subgraphs define."""
    out: set[int] = set()
    for g in (graph, *graph.subgraphs()):
        out.update(id(v) for v in g.inputs)
        out.update(id(v) for v in g.initializers.values())
        for node in g:
            out.update(id(v) for v in node.outputs)
    return out


def captured(*graphs: ir.Graph) -> list[ir.Value]:
    """The outer values ``graphs`` (and their nested subgraphs) read, constants excepted, in
    order of first use."""
    seen: set[int] = set()
    out: list[ir.Value] = []
    for graph in graphs:
        inside = _defined(graph)
        reads: list[ir.Value | None] = [v for n in graph.all_nodes() for v in n.inputs]
        reads += list(graph.outputs)
        for v in reads:
            if v is None or id(v) in inside or id(v) in seen or const_array(v) is not None:
                continue
            seen.add(id(v))
            out.append(v)
    return out


def problems(ctx: Ctx, graph: ir.Graph, where: str) -> list[str]:
    """Why nodes of subgraph ``graph`` (``where`` names it) cannot be mapped; empty if all can.
    Nested control flow is checked by its own rule's check."""
    out = []
    sub = child(ctx, graph)
    for node in graph:
        label = f"{where}: {node.op_type} node {node.name!r}"
        rule = RULES.get(node.op_type)
        if _is_constant(node):
            try:
                _constant_attr(node)
            except UnsupportedError as e:
                out.append(f"{where}: {e.message}")
        elif node.domain not in (*STANDARD, NHWC):
            out.append(f"{label}: op of domain {node.domain!r}, which has no TF mapping")
        elif rule is None:
            out.append(f"{label}: no TF mapping for this op")
        elif rule.layout != (node.domain == NHWC):
            out.append(f"{label}: internal: the channels-last rewrite missed this node")
        elif rule.check is not None:
            try:
                why = rule.check(sub, node)
            except UnsupportedError as e:
                why = e.message
            if why:
                out.append(f"{label}: {why}")
    return out


def _is_constant(node: ir.Node) -> bool:
    # Constant nodes stay only inside subgraphs, where one makes a subgraph output (folding
    # turns the others into initializers, and a graph output may not be one): a Const.
    return node.op_type == "Constant" and node.domain in STANDARD


def non_tensor(v: ir.Value) -> str | None:
    """What ``v`` holds when it is not a tensor ("a sequence", "an optional", ...), else None."""
    if v.type is None or isinstance(v.type, ir.TensorType):
        return None
    kind = type(v.type).__name__.removesuffix("Type").lower()
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} value"


def non_tensor_io(node: ir.Node) -> list[str]:
    """Why ``node``'s inputs and outputs that are sequences or optionals cannot be mapped."""
    return [f"{what} {v.name!r} is {kind} (tfjs has no sequence or optional values)"
            for what, values in (("input", node.inputs), ("output", node.outputs))
            for v in values if v is not None and (kind := non_tensor(v)) is not None]


def child(ctx: Ctx, graph: ir.Graph) -> Ctx:
    """A Ctx for a function body: its own nodes and refs, the parent's weights, names and
    library."""
    sub = Ctx(graph)
    sub.weights, sub.used, sub.reserved, sub.functions = (ctx.weights, ctx.used, ctx.reserved,
                                                          ctx.functions)
    return sub


def emit_nodes(ctx: Ctx, nodes: Iterable[ir.Node]) -> None:
    """Map ``nodes`` (in order) through their rules, binding their outputs."""
    for node in nodes:
        ctx.scope = sanitize(node.name or node.op_type)
        ctx.node = node
        if _is_constant(node):
            outs = [ctx.const(_constant_attr(node), "value")]
        else:
            outs = RULES[node.op_type].fn(ctx, node)
        for i, v in enumerate(node.outputs):
            if i < len(outs):
                ctx.bind(v, outs[i])
            elif v.uses() or v.is_graph_output():
                raise UnsupportedError(f"{node.op_type} node {node.name!r}: output {i} "
                                       f"({v.name!r}) has no TF counterpart", layer=node.name)


# A function body's builder: given the child Ctx and the argument refs, emit the nodes and
# return the refs of the function's outputs.
Body = Callable[[Ctx, list[str]], list[str]]


def emit_function(ctx: Ctx, hint: str, args: list[tuple[str, str]], graph: ir.Graph,
                  body: Body, out_dtypes: list[str]) -> str:
    """Record a library function; returns its name.

    ``args``: (hint, dtype) per argument; ``body`` builds the outputs from the argument refs in
    a child Ctx of ``graph``; ``out_dtypes`` types them.
    """
    name = ctx.unique(f"{hint}_fn").replace("/", "_").replace(".", "_")
    ctx.functions[name] = TfFunction(name, [], [], [], {})  # reserve the name
    sub = child(ctx, graph)
    explicit_perms(graph)
    sub.scope = name
    arg_names = []
    for i, (arg_hint, dtype) in enumerate(args):
        arg = ctx.unique(f"{name}_{sanitize(arg_hint)}_{i}").replace("/", "_").replace(".", "_")
        arg_names.append((arg, dtype))
    outs = body(sub, [a for a, _ in arg_names])
    ret = {}
    outputs = []
    sub.scope, sub.node = name, None
    for i, (ref, dtype) in enumerate(zip(outs, out_dtypes)):
        # An Identity per output: tfjs returns a function's outputs by node, one each.
        ident = sub.op("Identity", [ref], hint=f"out_{i}")
        ret[f"out_{i}"] = f"{ident}:0"
        outputs.append((f"out_{i}", dtype))
    # (tfjs makes a Placeholder of each argument from the signature)
    ctx.functions[name] = TfFunction(name, arg_names, outputs, sub.nodes, ret)
    return name


def subgraphs_channels_last(model: ir.Model, layout_ops: set[str]) -> int:
    """The channels-last rewrite (``onnx_normalize.to_channels_last``) in every subgraph of
    ``model``; how many nodes it wrapped."""
    wrapped = 0
    for graph in list(model.graph.subgraphs()):
        part = ir.Model(graph, ir_version=model.ir_version)
        part.opset_imports.update(model.opset_imports)
        wrapped += to_channels_last(part, layout_ops)
    if wrapped:
        model.opset_imports[NHWC] = 1
    return wrapped
