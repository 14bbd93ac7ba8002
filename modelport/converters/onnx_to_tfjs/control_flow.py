"""ONNX ``If``, ``Loop`` and ``Scan`` -> TF control flow v2 (``StatelessIf``,
``StatelessWhile``).

tfjs-converter 4.22 runs control flow two ways: TF1's ``Switch``/``Merge``/``Enter``/``Exit``/
``NextIteration`` frames, or v2's ``StatelessIf``/``StatelessWhile`` whose branches, condition
and body are functions of the model's library (``control_executor``: ``If`` runs
``functionMap[then_branch or else_branch]`` on its args after reading ``cond``; ``While`` runs
``cond`` then ``body`` until ``cond``'s first element is false). v2 is what ONNX's subgraphs
are, so it is what is written. Either way tfjs runs such a model only with
``GraphModel.executeAsync`` (``execute`` throws "This execution contains the node ..., which
has the dynamic op ..."); the report says so.

* ``If(cond)`` -> ``StatelessIf(cond, captured...)``: both branches become functions of the
  values they read from outside (``subgraphs.captured``).
* ``Loop(M, cond, v...)`` -> ``StatelessWhile(i, M, cond, v..., acc..., captured...)``: the
  condition function is ``i < M and cond``; the body function runs the ONNX body on (i, cond,
  v...), returns ``i + 1``, M, the new cond, the new v..., each scan output appended to its
  accumulator (``ConcatV2`` of ``acc`` and the output with a new leading axis; the accumulator
  starts as an empty ``[0, ...]`` tensor, see ``append_item``), and the
  captured values unchanged. ONNX's int64 iteration count is int32 in tfjs (an ``M`` past
  int32 is clamped: no loop runs 2**31 times).
* ``Scan`` -> ``StatelessWhile`` over the scan length (the first scan input's size on its
  axis): each step gathers its element of every scan input (from the end for a reverse
  direction) and appends each scan output, which is then reversed and moved to its axis as
  the attributes say. Opset 8's Scan (a batch axis first) is first rewritten as a ``Loop`` over
  the batch around an opset 9 Scan (``scan8_to_loop``), which the version converter leaves
  alone.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ...errors import UnsupportedError
from ...models.onnx_model import opset_of
from ...models.tfjs_graph import a_int
from ..rewire import replace_value
from .core import Ctx, all_known, attr, concat, emits, rule, unsupported
from .subgraphs import captured, emit_function, emit_nodes, non_tensor_io, problems

emits("StatelessIf", "then_branch", "else_branch")
emits("StatelessWhile", "cond", "body")

INT32_MAX = 2**31 - 1


def _func(name: str) -> dict:
    return {"func": {"name": name}}


def _graph_attr(node: ir.Node, name: str) -> ir.Graph | None:
    a = node.attributes.get(name)
    return a.value if a is not None and a.type == ir.AttributeType.GRAPH else None


# --- If ------------------------------------------------------------------------------------------

def _if_check(ctx: Ctx, node: ir.Node) -> str | None:
    why = non_tensor_io(node)
    for branch in ("then_branch", "else_branch"):
        graph = _graph_attr(node, branch)
        if graph is None:
            return f"no {branch} graph"
        why += problems(ctx, graph, branch)
    return "; ".join(why) or None


@rule("If", check=_if_check)
def _if(ctx: Ctx, node: ir.Node) -> list[str]:
    """If -> StatelessIf over two library functions of the captured values."""
    then_g, else_g = _graph_attr(node, "then_branch"), _graph_attr(node, "else_branch")
    assert then_g is not None and else_g is not None  # (the check asked)
    outer = captured(then_g, else_g)
    args = [(v.name or "arg", ctx.tf_dtype(v)) for v in outer]
    out_dtypes = [ctx.tf_dtype(v) for v in node.outputs]

    def branch(graph: ir.Graph):
        def body(sub: Ctx, refs: list[str]) -> list[str]:
            for v, ref in zip(outer, refs):
                sub.bind(v, ref)
            emit_nodes(sub, graph)
            return [sub.x(v) for v in graph.outputs]
        return body

    scope = ctx.scope
    then_fn = emit_function(ctx, f"{scope}_then", args, then_g, branch(then_g), out_dtypes)
    else_fn = emit_function(ctx, f"{scope}_else", args, else_g, branch(else_g), out_dtypes)
    ctx.scope, ctx.node = scope, node
    return ctx.op_n("StatelessIf", [ctx.x(ctx.inp(node, 0)), *(ctx.x(v) for v in outer)],
                    {"then_branch": _func(then_fn), "else_branch": _func(else_fn)},
                    len(node.outputs), hint="If")


# --- Loop ----------------------------------------------------------------------------------------

def _loop_check(ctx: Ctx, node: ir.Node) -> str | None:
    body = _graph_attr(node, "body")
    if body is None:
        return "no body graph"
    n_carried = len(node.inputs) - 2
    n_scan = len(body.outputs) - 1 - n_carried
    why = non_tensor_io(node) + problems(ctx, body, "body")
    for k in range(n_scan):
        out = body.outputs[1 + n_carried + k]
        if ctx.shape(out) is None:
            why.append(f"the rank of scan output {k} ({out.name!r}) is unknown (its "
                       "accumulator starts as an empty tensor of that rank plus one)")
    return "; ".join(why) or None


@rule("Loop", check=_loop_check)
def _loop(ctx: Ctx, node: ir.Node) -> list[str]:
    """Loop -> StatelessWhile(i, M, cond, carried..., accumulators..., captured...)."""
    body_g = _graph_attr(node, "body")
    assert body_g is not None
    m_v, cond_v = ctx.opt(node, 0), ctx.opt(node, 1)
    carried = [ctx.inp(node, k) for k in range(2, len(node.inputs))]
    n_c = len(carried)
    scans = body_g.outputs[1 + n_c:]
    outer = captured(body_g)
    scope = ctx.scope

    # the loop's start values
    m = ctx.value(m_v)
    if m_v is None:
        m_ref = ctx.i32(INT32_MAX, "max_iterations")
    elif m is not None:
        m_ref = ctx.i32(min(int(np.asarray(m).reshape(-1)[0]), INT32_MAX), "max_iterations")
    else:
        m_ref = ctx.op("Reshape", [ctx.x(m_v), ctx.i32([], "scalar")], hint="max_iterations")
    cond_ref = ctx.const(np.asarray(True), "cond") if cond_v is None else \
        ctx.op("Reshape", [ctx.x(cond_v), ctx.i32([], "scalar")], hint="cond")
    accs = []
    dynamic = []  # scan outputs whose element shape is known only at run time
    for out in scans:
        shape = ctx.need_shape(out, node)
        dynamic.append(all_known(shape) is None)
        start = np.zeros([0, *(1 if d is None else d for d in shape)],
                         dtype=ctx.np_dtype(out) or np.float32)
        accs.append(ctx.const(start, "scan_start"))
    starts = [ctx.i32(0, "i"), m_ref, cond_ref, *(ctx.x(v) for v in carried), *accs,
              *(ctx.x(v) for v in outer)]
    dtypes = ["int32", "int32", "bool", *(ctx.tf_dtype(v) for v in carried),
              *(ctx.tf_dtype(v) for v in scans), *(ctx.tf_dtype(v) for v in outer)]
    names = ["i", "max", "cond", *(v.name or "v" for v in carried),
             *(f"scan_{k}" for k in range(len(scans))), *(v.name or "c" for v in outer)]
    args = list(zip(names, dtypes))

    def cond_body(sub: Ctx, refs: list[str]) -> list[str]:
        below = sub.op("Less", [refs[0], refs[1]], hint="below_max")
        return [sub.op("LogicalAnd", [below, refs[2]], hint="go_on")]

    def loop_body(sub: Ctx, refs: list[str]) -> list[str]:
        i, n, cond_in = refs[:3]
        vs = refs[3:3 + n_c]
        acc_refs = refs[3 + n_c:3 + n_c + len(scans)]
        for v, ref in zip(outer, refs[3 + n_c + len(scans):]):
            sub.bind(v, ref)
        ins = list(body_g.inputs)
        sub.bind(ins[0], i)
        sub.bind(ins[1], cond_in)
        for v, ref in zip(ins[2:], vs):
            sub.bind(v, ref)
        emit_nodes(sub, body_g)
        sub.scope, sub.node = sub.scope, node
        outs = [sub.x(v) for v in body_g.outputs]
        next_i = sub.op("AddV2", [i, sub.i32(1, "one")], hint="next_i")
        cond_out = sub.op("Reshape", [outs[0], sub.i32([], "scalar")], hint="cond_out")
        grown = [append_item(sub, acc, o, dyn)
                 for acc, o, dyn in zip(acc_refs, outs[1 + n_c:], dynamic)]
        return [next_i, n, cond_out, *outs[1:1 + n_c], *grown,
                *refs[3 + n_c + len(scans):]]

    cond_fn = emit_function(ctx, f"{scope}_cond", args, body_g, cond_body, ["bool"])
    body_fn = emit_function(ctx, f"{scope}_body", args, body_g, loop_body, dtypes)
    ctx.scope, ctx.node = scope, node
    refs = ctx.op_n("StatelessWhile", starts, {"cond": _func(cond_fn), "body": _func(body_fn)},
                    len(starts), hint="Loop")
    if len(node.outputs) != n_c + len(scans):
        raise unsupported(node, f"{len(node.outputs)} outputs for {n_c} carried values and "
                          f"{len(scans)} scan outputs")
    return refs[3:3 + n_c + len(scans)]


def append_item(sub: Ctx, acc: str, out: str, dynamic: bool) -> str:
    """``out`` appended to accumulator ``acc`` along a new leading axis. Where the element
    shape is known only at run time the accumulator starts as ``[0, 1, ...]`` (1 for each
    unknown dimension) and is broadcast to ``[n, *shape(out)]`` first, a no-op after the first
    step (so a loop that never runs returns ``[0, 1, ...]``: no elements, as ONNX's)."""
    if dynamic:
        shape = concat(sub, [sub.slice1(sub.shape_of(acc), 0, 1), sub.shape_of(out)], 0)
        acc = sub.op("BroadcastTo", [acc, shape], hint="scan_acc_shape")
    item = sub.op("ExpandDims", [out, sub.i32(0, "axis")], hint="scan_item")
    return sub.op("ConcatV2", [acc, item, sub.i32(0, "axis")], {"N": a_int(2)}, hint="scan_acc")


# --- Scan ----------------------------------------------------------------------------------------

def _scan_check(ctx: Ctx, node: ir.Node) -> str | None:
    body = _graph_attr(node, "body")
    if body is None:
        return "no body graph"
    m = attr(node, "num_scan_inputs")
    if m is None or m < 1:
        return "no scan inputs"
    why = non_tensor_io(node) + problems(ctx, body, "body")
    n_state = len(node.inputs) - m
    for k, out in enumerate(body.outputs[n_state:]):
        if ctx.shape(out) is None:
            why.append(f"the rank of scan output {k} ({out.name!r}) is unknown")
    for k, v in enumerate(node.inputs[n_state:]):
        if ctx.shape(v) is None:
            why.append(f"the rank of scan input {k} ({getattr(v, 'name', None)!r}) is unknown")
    return "; ".join(why) or None


# a value's name -> its type and shape
Shapes = dict[str, "tuple[ir.TypeProtocol | None, ir.Shape | None]"]


def scan8_to_loop(model: ir.Model) -> Shapes:
    """Rewrite each opset 8 ``Scan`` as a ``Loop`` over the batch around an opset 9 ``Scan``,
    before the model is taken to a newer opset; returns the shapes of the values made inside
    the Loops (for ``scan8_shapes``).

    Opset 8's Scan has a batch axis (axis 0 of every state and scan input, then the scan axis)
    and ``sequence_lens``; onnx's version converter takes it to opset 9 by dropping the batch
    axis from the values' declared shapes, graph inputs and outputs included, so the converted
    model would ask for inputs of another shape than the source's (ONNX's test_scan_sum: tfjs
    wanted ``initial`` as [2], the source says [1, 2]). Here the Loop's body takes batch entry
    ``b`` of each state and scan input (``Gather``, no declared shape, which the version
    converter leaves alone), runs the Scan on them (the same body, then converted to opset 9's
    form) and returns its results as the Loop's scan outputs: stacked on axis 0, the batch axis
    of opset 8's results. A ``sequence_lens`` given is refused by name.
    """
    shapes: Shapes = {}
    if opset_of(model) >= 9:
        return shapes
    done = 0
    for graph in (model.graph, *model.graph.subgraphs()):
        for node in list(graph):
            if node.op_type != "Scan" or node.domain not in ("", "ai.onnx"):
                continue
            if node.inputs and node.inputs[0] is not None:
                raise UnsupportedError(
                    f"Scan node {node.name!r}: opset {opset_of(model)} Scan with sequence_lens "
                    "(a length per batch entry) is not mapped to TF.js", layer=node.name,
                    hint="export the model at opset 9 or newer, where Scan has no batch axis")
            shapes.update(_scan8_as_loop(graph, node, done))
            done += 1
    return shapes


def scan8_shapes(model: ir.Model, shapes: Shapes) -> None:
    """Put back the shapes of the values ``scan8_to_loop`` made inside its Loops, once the
    model is at its new opset: the version converter inferred them for the opset 8 Scan, then
    took the first axis off (its opset 8 -> 9 adapter), one axis too many."""
    if not shapes:
        return
    for graph in model.graph.subgraphs():
        for node in graph:
            for v in node.outputs:
                if v.name in shapes:
                    v.type, v.shape = shapes[v.name]


def _unbatched(v: ir.Value | None) -> tuple[ir.TypeProtocol | None, ir.Shape | None]:
    if v is None:
        return None, None
    return v.type, None if v.shape is None or len(v.shape) == 0 else ir.Shape(v.shape[1:])


def _scan8_as_loop(graph: ir.Graph, node: ir.Node, k: int) -> Shapes:
    tag = f"scan8_{k}"
    values = list(node.inputs[1:])
    first_scan = values[len(values) - int(attr(node, "num_scan_inputs"))]
    assert first_scan is not None
    shape = ir.Node("", "Shape", [first_scan], name=f"{tag}_shape")
    # (a Constant node: an IR 3 model's version conversion wants initializers as inputs too)
    zero = ir.Node("", "Constant", [], [ir.AttrTensor("value", ir.tensor(np.asarray(0, np.int64)))],
                   name=f"{tag}_zero")
    batch = ir.Node("", "Gather", [shape.outputs[0], zero.outputs[0]],
                    {"axis": ir.AttrInt64("axis", 0)}, name=f"{tag}_batch")
    shape.outputs[0].name, batch.outputs[0].name = f"{tag}_shape_out", f"{tag}_batch_out"
    zero.outputs[0].name = f"{tag}_zero_out"
    b = ir.Value(name=f"{tag}_b", type=ir.TensorType(ir.DataType.INT64), shape=ir.Shape([]))
    cond_in = ir.Value(name=f"{tag}_cond_in", type=ir.TensorType(ir.DataType.BOOL),
                       shape=ir.Shape([]))
    picks = [ir.Node("", "Gather", [v, b], {"axis": ir.AttrInt64("axis", 0)},
                     name=f"{tag}_pick_{i}") for i, v in enumerate(values)]
    for i, pick in enumerate(picks):
        pick.outputs[0].name = f"{tag}_pick_{i}_out"
    attrs = [a for name, a in node.attributes.items()]
    inner = ir.Node("", "Scan", [None, *(p.outputs[0] for p in picks)], attrs,
                    num_outputs=len(node.outputs), name=f"{tag}_inner")
    for i, out in enumerate(inner.outputs):
        out.name = f"{tag}_inner_{i}"
    cond_out = ir.Node("", "Identity", [cond_in], name=f"{tag}_cond")
    cond_out.outputs[0].name = f"{tag}_cond_out"
    body = ir.Graph([b, cond_in], [cond_out.outputs[0], *inner.outputs],
                    nodes=[*picks, inner, cond_out], name=f"{tag}_body")
    loop = ir.Node("", "Loop", [batch.outputs[0], None], [ir.AttrGraph("body", body)],
                   num_outputs=len(node.outputs), name=node.name or tag)
    graph.insert_before(node, [shape, zero, batch, loop])
    for old, new in zip(node.outputs, loop.outputs):
        new.type, new.shape = old.type, old.shape
        replace_value(old, new, always_rename=True)
    graph.remove(node, safe=True)
    shapes = {p.outputs[0].name: _unbatched(v) for p, v in zip(picks, values)}
    shapes.update({out.name: _unbatched(v) for out, v in zip(inner.outputs, loop.outputs)})
    return {name: shape for name, shape in shapes.items() if name is not None}


@rule("Scan", check=_scan_check)
def _scan(ctx: Ctx, node: ir.Node) -> list[str]:
    """Scan -> StatelessWhile(i, n, states..., scan inputs..., accumulators..., captured...):
    step i reads element i (n-1-i in reverse) of each scan input along its axis, and appends
    each scan output; the stacked outputs are then reversed / moved to their axes."""
    body_g = _graph_attr(node, "body")
    assert body_g is not None
    m = int(attr(node, "num_scan_inputs"))
    values = [ctx.inp(node, k) for k in range(len(node.inputs))]
    n_state = len(values) - m
    states, scan_ins = values[:n_state], values[n_state:]
    in_axes = attr(node, "scan_input_axes", None) or [0] * m
    in_dirs = attr(node, "scan_input_directions", None) or [0] * m
    scans = body_g.outputs[n_state:]
    out_axes = attr(node, "scan_output_axes", None) or [0] * len(scans)
    out_dirs = attr(node, "scan_output_directions", None) or [0] * len(scans)
    ranks = [ctx.need_rank(v, node) for v in scan_ins]
    in_axes = [a % r for a, r in zip(in_axes, ranks)]
    outer = captured(body_g)
    scope = ctx.scope
    first = ctx.x(scan_ins[0])
    count = ctx.op("Reshape", [ctx.dim_of(first, in_axes[0]), ctx.i32([], "scalar")],
                   hint="scan_length")
    accs, dynamic = [], []
    for out in scans:
        shape = ctx.need_shape(out, node)
        dynamic.append(all_known(shape) is None)
        accs.append(ctx.const(np.zeros([0, *(1 if d is None else d for d in shape)],
                                       dtype=ctx.np_dtype(out) or np.float32), "scan_start"))
    starts = [ctx.i32(0, "i"), count, *(ctx.x(v) for v in states),
              *(ctx.x(v) for v in scan_ins), *accs, *(ctx.x(v) for v in outer)]
    dtypes = ["int32", "int32", *(ctx.tf_dtype(v) for v in states),
              *(ctx.tf_dtype(v) for v in scan_ins), *(ctx.tf_dtype(v) for v in scans),
              *(ctx.tf_dtype(v) for v in outer)]
    names = ["i", "n", *(v.name or "state" for v in states), *(v.name or "xs" for v in scan_ins),
             *(f"scan_{k}" for k in range(len(scans))), *(v.name or "c" for v in outer)]
    args = list(zip(names, dtypes))

    def cond_body(sub: Ctx, refs: list[str]) -> list[str]:
        return [sub.op("Less", [refs[0], refs[1]], hint="below_length")]

    def loop_body(sub: Ctx, refs: list[str]) -> list[str]:
        i, n = refs[:2]
        st = refs[2:2 + n_state]
        xs = refs[2 + n_state:2 + n_state + m]
        acc_refs = refs[2 + n_state + m:2 + n_state + m + len(scans)]
        rest = refs[2 + n_state + m + len(scans):]
        for v, ref in zip(outer, rest):
            sub.bind(v, ref)
        ins = list(body_g.inputs)
        for v, ref in zip(ins[:n_state], st):
            sub.bind(v, ref)
        back = sub.op("Sub", [sub.op("Sub", [n, sub.i32(1, "one")]), i], hint="back_i")
        for j, (v, x) in enumerate(zip(ins[n_state:], xs)):
            index = back if in_dirs[j] else i
            sub.bind(v, sub.op("GatherV2", [x, index, sub.i32(in_axes[j], "axis")],
                               {"batch_dims": a_int(0)}, hint="scan_item"))
        emit_nodes(sub, body_g)
        sub.node = node
        outs = [sub.x(v) for v in body_g.outputs]
        next_i = sub.op("AddV2", [i, sub.i32(1, "one")], hint="next_i")
        grown = [append_item(sub, acc, o, dyn)
                 for acc, o, dyn in zip(acc_refs, outs[n_state:], dynamic)]
        return [next_i, n, *outs[:n_state], *xs, *grown, *rest]

    cond_fn = emit_function(ctx, f"{scope}_cond", args, body_g, cond_body, ["bool"])
    body_fn = emit_function(ctx, f"{scope}_body", args, body_g, loop_body, dtypes)
    ctx.scope, ctx.node = scope, node
    refs = ctx.op_n("StatelessWhile", starts, {"cond": _func(cond_fn), "body": _func(body_fn)},
                    len(starts), hint="Scan")
    results = refs[2:2 + n_state]
    base = 2 + n_state + m
    for k, out in enumerate(scans):
        y = refs[base + k]
        if out_dirs[k]:
            y = ctx.op("ReverseV2", [y, ctx.i32([0], "axis")], hint="scan_reversed")
        rank = len(ctx.need_shape(out, node)) + 1
        axis = out_axes[k] % rank
        if axis:
            perm = [*range(1, axis + 1), 0, *range(axis + 1, rank)]
            y = ctx.op("Transpose", [y, ctx.i32(perm, "perm")], hint="scan_axis")
        results.append(y)
    return results
