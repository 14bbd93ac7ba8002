"""TF.js graph-model (``TfjsGraph``) -> ONNX, one registered mapping per TF op.

``convert`` walks the TF nodes in dependency order and hands each to its mapping: a function
registered in ``MAPPINGS`` (family modules ``nn`` — convolutions, pooling, matmuls,
normalization, activations —, ``ops`` — elementwise math, reductions, shapes, slicing — and
``extra`` — rarer math, scatter, space/batch), or else a 1:1 row of ``table.RENAMES`` (read
through ``table.BY_TF``).

Values inside the ONNX graph keep TF's dtypes (an ``int32`` TF tensor is an ``int32`` ONNX
value); where ONNX insists on ``int64`` (shapes, axes, pads, repeats, TopK's k, GatherND
indices) the mapping casts, and where ONNX produces ``int64`` (Shape, ArgMax, TopK indices) it
casts back to the dtype TF declares. The graph's ``int64`` inputs are ``int32`` at the ONNX
boundary, as in TF.js itself (it has no int64 tensors; the TF.js engine feeds int32), and are
widened right after.

Static facts the mappings need (a tensor's rank and dimensions, the value of constant
subgraphs such as a ``Pack`` of constants) come from ``probe``: the graph is evaluated twice
with the NumPy TF executor on dummy inputs whose free dimensions differ (2, then 3); a
dimension that agrees in both runs is static. Only shapes and constant-only subgraphs are
taken from it, so the numerical check against that executor still judges the op mapping.

Convolutions and pooling are NHWC in TF and NCHW in ONNX: each mapping wraps its op in
Transposes and ``converters.layout`` cancels the pairs between consecutive ops afterwards.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any

import numpy as np
import onnx_ir as ir

from ..._version import __version__
from ...errors import FormatError, ModelportError, UnsupportedError
from ...models import TfjsGraph, TfNode
from ...models import tfjs_graph as tg
from ...models.onnx_model import (
    declare_as_inputs,
    ir_version_for,
    resolve_opset,
    skeleton,
)
from .. import layout
from .. import tf_op_table as table
from ..keras_to_onnx.context import ONNX_DTYPES
from . import (  # noqa: F401 - the families register their mappings
    control_flow,
    conv1d,
    dilation,
    extra,
    nms,
    nn,
    ops,
)
from .core import MAPPINGS, PASSIVE, Ctx, NodeInputs, Probe, TfOp, _Builder

log = logging.getLogger(__name__)


def convert(graph: TfjsGraph, opset: int | None = None, *, release: bool = False) -> ir.Model:
    """Map ``graph`` to an ONNX model at ``opset`` (default ``DEFAULT_OPSET``).

    ``release=True`` is for a caller that reads ``graph`` only to convert it: a large weight
    the mappings turned into a new initializer (a convolution's filter, transposed to ONNX's
    layout) is dropped from ``graph.weights`` once its last reader is mapped, so that the
    source and the converted weights are not both held to the end. ``graph`` cannot be run
    afterwards.
    """
    opset = resolve_opset(opset)
    graph = dilation.fuse(graph)  # SpaceToBatchND -> conv -> BatchToSpaceND: one dilated conv
    graph = control_flow.lift_v1(graph)  # TF1 Switch/Merge/Enter frames as If/While
    nodes = tg.order(graph)
    needed = _needed(graph)
    problems = _unmapped(nodes, needed)
    probe = run_probe(graph, needed)
    ctx = Ctx(opset)
    ctx.graph = graph  # (control flow reads the function library)
    ctx.convert = convert  # (and converts its functions with this driver)
    # Signature keys name the ONNX inputs and outputs; reserve them before any other name.
    for info in graph.inputs + graph.outputs:
        ctx.builder.unique(info.key)
    values: dict[str, ir.Value] = {}
    by_name = {n.name: n for n in graph.nodes}
    onnx_inputs = _graph_inputs(graph, by_name, ctx.builder, values)
    _map_nodes(ctx, graph, [n for n in nodes if n.name in needed], values, probe, release,
               problems)
    if problems:
        raise _refusal(problems)
    outputs = _graph_outputs(graph, by_name, ctx.builder, values, onnx_inputs, probe)
    return _assemble(ctx, onnx_inputs, outputs, opset)


MAX_LISTED = 50  # nodes named in a refusal; the count says how many more


def _unmapped(nodes: list[TfNode], needed: set[str]) -> list[tuple[TfNode, str]]:
    """Needed nodes that no mapping or rename covers, each with why."""
    return [(n, "no ONNX mapping for this op") for n in nodes if n.name in needed
            and n.op not in PASSIVE and n.op not in MAPPINGS and n.op not in table.BY_TF]


def _refusal(problems: list[tuple[TfNode, str]]) -> UnsupportedError:
    """One error naming every node that blocks the conversion (up to ``MAX_LISTED``)."""
    more = len(problems) - MAX_LISTED
    tail = f" and {more} more" if more > 0 else ""
    if all(why == "no ONNX mapping for this op" for _, why in problems):
        listed = ", ".join(f"{n.name} ({n.op})" for n, _ in problems[:MAX_LISTED])
        head = f"no ONNX mapping for {len(problems)} TF node(s): {listed}{tail}"
    else:
        lines = [why if why.startswith(f"{n.op} node {n.name!r}") else
                 f"{n.op} node {n.name!r}: {why}" for n, why in problems[:MAX_LISTED]]
        ops = ", ".join(sorted({n.op for n, _ in problems}))
        head = (f"{len(problems)} TF node(s) cannot be mapped to ONNX ({ops}): "
                + "; ".join(lines) + tail)
    v1 = f"{control_flow.V1_HINT}; " if any(n.op in control_flow.V1_OPS for n, _ in problems) \
        else ""
    return UnsupportedError(head, hint=f"{v1}mapped ops: {len(supported_ops())}; see "
                            "modelport.converters.tfjs_to_onnx.driver.supported_ops()")


def _graph_inputs(graph: TfjsGraph, by_name: dict[str, TfNode], builder: _Builder,
                  values: dict[str, ir.Value]) -> list[ir.Value]:
    """The ONNX graph inputs, one per signature input (a Placeholder), named by its key; each
    Placeholder's value goes into ``values`` (cast to int64 where TF computes in int64)."""
    onnx_inputs = []
    for info in graph.inputs:
        node_name, k = tg.input_name(info.tensor)
        node = by_name[node_name]
        if node.op not in ("Placeholder", "PlaceholderWithDefault") or k != 0:
            raise UnsupportedError(f"signature input {info.key!r} is {info.tensor!r}, not a "
                                   "Placeholder")
        dtype = info.dtype if info.dtype != "int64" else "int32"
        if dtype not in ONNX_DTYPES:
            raise UnsupportedError(f"input {info.key!r} has dtype {info.dtype}, which has no "
                                   "ONNX equivalent here")
        shape = info.shape if info.shape is not None else tg.attr_shape(node, "shape")
        if shape is None:  # (a signature with unknownRank: rvm's recurrent states)
            raise UnsupportedError(
                f"input {info.key!r} has an unknown rank",
                hint=f"pin its shape with --input-shape {info.key}=D0,D1,... (the sizes the "
                     "app feeds; repeat per input; input_shapes= in the library)")
        value = ir.Value(name=info.key, type=ir.TensorType(ONNX_DTYPES[dtype]),
                         shape=_onnx_shape(shape, info.key))
        onnx_inputs.append(value)
        x = value
        if info.dtype == "int64":  # TF.js feeds int32; the graph computes in int64
            x = builder.op("Cast", value, to=ir.DataType.INT64)
        values[f"{node_name}:0"] = x
    return onnx_inputs


def _onnx_shape(shape: list[int | None], key: str) -> ir.Shape:
    """A TF shape as an ONNX one, an unknown dimension ``i`` named ``<key>_d<i>``."""
    return ir.Shape([d if d is not None else f"{key}_d{i}" for i, d in enumerate(shape)])


def _map_nodes(ctx: Ctx, graph: TfjsGraph, nodes: list[TfNode], values: dict[str, ir.Value],
               probe: Probe, release: bool, problems: list[tuple[TfNode, str]]) -> None:
    """Map ``nodes`` (in dependency order) into ``values``; an error names the node. With
    ``release``, large constants are dropped once their last reader is mapped.

    A node that cannot be mapped (no mapping, listed in ``problems`` already, or one that
    refuses it) is added to ``problems`` and the nodes after it are still mapped, each output
    it would have made standing in as a free value of the probe's type and shape, so that one
    refusal lists every blocking node; a refusal about an input the probe could not size
    past a refused op is that op's, and not listed again. Once something was refused, any
    other error ends the walk (it may come from a stand-in) and the refusal is what the
    caller raises."""
    readers: Counter[str] = Counter(r if ":" in r else f"{r}:0" for n in nodes
                                    for r in n.inputs if not r.startswith("^"))
    kept = {info.tensor for info in graph.outputs}
    read: dict[str, list[str]] = {}  # node -> its outputs some node reads
    for ref in readers:
        read.setdefault(tg.input_name(ref)[0], []).append(ref)
    refused = {id(n) for n, _ in problems}
    blind: set[str] = set()  # values after a refused node that the probe could not size
    for node in nodes:
        ctx.builder.prefix = f"{node.name}/"
        refs = [r if ":" in r else f"{r}:0" for r in node.inputs if not r.startswith("^")]
        unsized = [r for r in refs if r in blind]
        try:
            if id(node) in refused:
                raise UnsupportedError("no ONNX mapping for this op")  # listed already
            _map_node(ctx, node, values, probe)
        except UnsupportedError as e:
            # A refusal about an input the probe could not size past a refused op (its rank,
            # say) follows from that op's refusal: it is not this node's own.
            if id(node) not in refused and not any(repr(r) in e.message for r in unsized):
                problems.append((node, e.message))
            _stand_in(read.get(node.name, []), values, probe)
            blind.update(r for r in read.get(node.name, []) if r not in probe.shapes)
            continue
        except ModelportError as e:
            if problems:
                break
            if e.layer is None and node.name not in e.message:
                e.layer = node.name
                e.args = (str(e),)
            raise
        if unsized:
            blind.update(r for r in read.get(node.name, []) if r not in probe.shapes)
        if release:
            _release(node, readers, kept, values, probe, graph, ctx.builder)
    ctx.builder.prefix = ""


def _stand_in(outputs: list[str], values: dict[str, ir.Value], probe: Probe) -> None:
    """Free values for the read ``outputs`` of a node that was not mapped (``_map_nodes``)."""
    for ref in [r for r in outputs if r not in values]:
        dtype = ONNX_DTYPES.get(probe.dtypes.get(ref, ""), ir.DataType.FLOAT)
        shape = probe.shapes.get(ref)
        values[ref] = ir.Value(name=f"{ref}_not_mapped", type=ir.TensorType(dtype),
                               shape=ir.Shape(shape) if shape is not None else None)


def _graph_outputs(graph: TfjsGraph, by_name: dict[str, TfNode], builder: _Builder,
                   values: dict[str, ir.Value], onnx_inputs: list[ir.Value], probe: Probe
                   ) -> list[ir.Value]:
    """The ONNX graph outputs, one per signature output, named by its key and typed with what
    the probe learnt (else the signature's word, else left to ONNX's shape inference)."""
    outputs: list[ir.Value] = []
    for info in graph.outputs:
        if info.tensor not in values:
            raise FormatError(f"signature output {info.key!r} ({info.tensor}) is not produced "
                              "by the graph")
        value = values[info.tensor]
        if value in onnx_inputs or value in outputs or value.is_initializer() or \
                value.name in {i.key for i in graph.outputs if i is not info}:
            value = builder.op("Identity", value)
        value.name = info.key
        # Unknown to the probe: left to ONNX's shape inference (_infer_missing_output_shapes).
        dtype = probe.dtypes.get(info.tensor)
        shape = probe.shapes.get(info.tensor)
        if shape is None:
            shape = _shape_hint(by_name, info.tensor, probe)
            dtype = info.dtype if shape is not None else None  # the signature's word then
        if dtype in ONNX_DTYPES:
            value.type = ir.TensorType(ONNX_DTYPES[dtype])
        if shape is not None:
            value.shape = _onnx_shape(shape, info.key)
        outputs.append(value)
    return outputs


def _assemble(ctx: Ctx, onnx_inputs: list[ir.Value], outputs: list[ir.Value], opset: int
              ) -> ir.Model:
    """The model from the builder's nodes and initializers, its layout optimized, unused
    constants dropped and every output shaped."""
    builder = ctx.builder
    onnx_graph = ir.Graph(onnx_inputs, outputs, nodes=builder.tape.nodes,
                          initializers=builder.tape.initializers, opset_imports={"": opset},
                          name="tfjs_graph")
    model = ir.Model(onnx_graph, ir_version=ir_version_for(opset), producer_name="modelport",
                     producer_version=__version__)
    conv1d.to_conv1d(model.graph)  # Conv1D's Unsqueeze/Squeeze would pin its Transposes
    left = layout.optimize(model)
    # Constants that mappings consumed as attributes (axes, perms, sizes) are left unused.
    for name, value in list(model.graph.initializers.items()):
        if not value.uses() and not value.is_graph_output():
            del model.graph.initializers[name]
    _infer_missing_output_shapes(model)
    log.info("TF.js graph -> ONNX: %d nodes, %d Transposes left", model.graph.num_nodes(), left)
    return model


RELEASE_MIN_BYTES = 1 << 20


def _release(node: TfNode, readers: Counter[str], kept: set[str], values: dict[str, ir.Value],
             probe: Probe, graph: TfjsGraph, builder: _Builder) -> None:
    """Drop the large constants ``node`` was the last reader of that no ONNX node reads: the
    mapping made what it needed from them (see ``convert(release=True)``)."""
    # the tape's own list (private to onnx_ir: where it is not a list, nothing is dropped)
    found = getattr(builder.tape, "_initializers", None)
    initializers: list[ir.Value] = found if isinstance(found, list) else []
    for ref in (r if ":" in r else f"{r}:0" for r in node.inputs if not r.startswith("^")):
        readers[ref] -= 1
        array = probe.consts.get(ref)
        if readers[ref] > 0 or ref in kept or array is None or \
                np.asarray(array).nbytes < RELEASE_MIN_BYTES:
            continue
        value = values.get(ref)
        if value is not None:
            # an initializer of the tape (the graph is not built yet) that nothing reads
            where = [i for i, v in enumerate(initializers) if v is value]
            if value.uses() or not where:
                continue
            del initializers[where[0]]
            del values[ref]
        del probe.consts[ref]
        name, k = tg.input_name(ref)
        if k == 0:
            graph.weights.pop(name, None)


def _shape_hint(by_name: dict[str, TfNode], tensor: str, probe: Probe
                ) -> list[int | None] | None:
    """The rank of a tensor the probe could not size, when its op's shape input has a known
    length (Reshape, Fill, BroadcastTo to a computed shape)."""
    node_name, k = tg.input_name(tensor)
    node = by_name.get(node_name)
    if node is not None and node.op in ("Identity", "StopGradient", "Snapshot") and k == 0:
        ref = node.inputs[0]
        return probe.shapes.get(ref if ":" in ref else f"{ref}:0") or _shape_hint(
            by_name, ref if ":" in ref else f"{ref}:0", probe)
    if node is None or k != 0 or node.op not in ("Reshape", "Fill", "BroadcastTo"):
        return None
    ref = node.inputs[0 if node.op == "Fill" else 1]
    length = probe.shapes.get(ref if ":" in ref else f"{ref}:0")
    producer = by_name.get(tg.input_name(ref)[0])
    if length is None and producer is not None and producer.op == "Pack":
        # A shape vector packed from scalars has one element per input.
        length = [len([r for r in producer.inputs if not r.startswith("^")])]
    if length is None or len(length) != 1 or length[0] is None:
        return None
    return [None] * length[0]


def _infer_missing_output_shapes(model: ir.Model) -> None:
    """Outputs the probe could not size get the shape ONNX's own inference gives them (a
    graph output needs at least its rank)."""
    missing = [v for v in model.graph.outputs if v.shape is None or v.type is None]
    if not missing:
        return
    import onnx


    bare = declare_as_inputs(*skeleton(model, 1024))  # no weight copies
    from ...budget import data_prop_safe

    inferred = onnx.shape_inference.infer_shapes(bare, data_prop=data_prop_safe(bare))
    found = {o.name: o for o in inferred.graph.output}
    for value in missing:
        proto = found.get(value.name)
        if proto is None or not proto.type.tensor_type.HasField("shape") or \
                not proto.type.tensor_type.elem_type:
            raise UnsupportedError(f"the shape of output {value.name!r} cannot be determined")
        value.type = ir.TensorType(ir.DataType(proto.type.tensor_type.elem_type))
        dims = [d.dim_value if d.HasField("dim_value") else f"{value.name}_d{i}"
                for i, d in enumerate(proto.type.tensor_type.shape.dim)]
        value.shape = ir.Shape(dims)


def supported_ops() -> list[str]:
    """Every TF op with a mapping (functions and 1:1 renames)."""

    return sorted(set(MAPPINGS.names()) | set(table.BY_TF) | PASSIVE)


def _needed(graph: TfjsGraph) -> set[str]:
    """Nodes the signature outputs depend on (control inputs included: they order nothing
    here, but a dangling one is still a broken graph, caught by the reader)."""
    by_name = {n.name: n for n in graph.nodes}
    stack = [tg.input_name(o.tensor)[0] for o in graph.outputs]
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        stack.extend(tg.input_name(r)[0] for r in by_name[name].inputs if not r.startswith("^"))
    return seen


def _map_node(ctx: Ctx, node: TfNode, values: dict[str, ir.Value], probe: Probe) -> None:
    if node.op in ("Placeholder", "PlaceholderWithDefault"):
        if f"{node.name}:0" in values:
            return
        if node.op == "PlaceholderWithDefault" and node.inputs:
            values[f"{node.name}:0"] = values[node.inputs[0]] if ":" in node.inputs[0] \
                else values[f"{node.inputs[0]}:0"]
            return
        raise UnsupportedError(f"Placeholder {node.name!r} is not a signature input")
    if node.op == "NoOp":
        return
    refs = [r if ":" in r else f"{r}:0" for r in node.inputs if not r.startswith("^")]
    ref0 = f"{node.name}:0"
    if node.op == "Const" or (ref0 in probe.consts and _all_const(node, refs, probe)):
        # Constants, and subgraphs of constants folded by the probe, become initializers.
        k = 0
        while f"{node.name}:{k}" in probe.consts:
            values[f"{node.name}:{k}"] = _initializer(ctx, node, probe.consts[f"{node.name}:{k}"],
                                                      k)
            k += 1
        if node.op == "Const" and k == 0:
            raise FormatError(f"Const node {node.name!r} has no value")
        return
    try:
        inputs = [values[r] for r in refs]
    except KeyError as e:
        raise FormatError(f"node {node.name!r} reads {e.args[0]!r}, which its producer does "
                          "not output") from None
    op = TfOp(node, NodeInputs(inputs, node), NodeInputs(refs, node), probe, ctx)
    try:
        if node.op in MAPPINGS:
            result = MAPPINGS.require(node.op)(op)
        else:
            result = _rename(op, table.BY_TF[node.op])
    except (KeyError, IndexError, TypeError, ValueError) as e:
        # A graph-model has no checker of its own (ONNX's has); as the TF reference does when
        # it evaluates a node, a node whose inputs or attributes break its op is named here.
        raise FormatError(f"{node.op} node {node.name!r}: cannot be mapped to ONNX from "
                          f"inputs of shapes {[op.shape(k) for k in range(len(refs))]} "
                          f"({type(e).__name__}: {e}); if tfjs runs this model, please "
                          "report it") from e
    outs = [result] if isinstance(result, ir.Value) else list(result)
    for k, value in enumerate(outs):
        if value.name is None or value.name.startswith("val_"):
            value.name = ctx.builder.unique(node.name if k == 0 else f"{node.name}:{k}")
        values[f"{node.name}:{k}"] = value


def _all_const(node: TfNode, refs: list[str], probe: Probe) -> bool:
    return bool(refs) and all(r in probe.consts for r in refs)


def _initializer(ctx: Ctx, node: TfNode, array: np.ndarray, k: int) -> ir.Value:
    array = np.asarray(array)
    if array.dtype.kind in "OUS":
        raise UnsupportedError(f"constant {node.name!r} holds strings, which ONNX models here "
                               "cannot compute with")
    name = node.name if k == 0 else f"{node.name}:{k}"
    return ctx.builder.const(array, name, dtype=array.dtype)


# --- 1:1 renames ----------------------------------------------------------------------------

def _rename(op: TfOp, row: table.Rename) -> ir.Value:
    if len(op.inputs) != row.inputs:
        raise op.bad(f"has {len(op.inputs)} inputs, TF's {op.op} takes {row.inputs}")
    if row.dtypes == "float" and not op.is_float(0):
        raise op.fail(f"on {op.dtype(0)} tensors has no 1:1 ONNX equivalent")
    attrs: dict[str, Any] = dict(row.fixed)
    for a in row.attrs:
        if a.kind == "type":
            dtype = tg.attr_type(op.node, a.tf)
            if dtype not in ONNX_DTYPES:
                raise op.fail(f"{a.tf} {dtype} has no ONNX equivalent")
            attrs[a.onnx] = ONNX_DTYPES[dtype]
        elif a.kind == "f":
            attrs[a.onnx] = op.f(a.tf, _number(a.onnx_default))
        elif a.kind in ("i", "b"):
            value = tg.attr_bool(op.node, a.tf) if a.kind == "b" else tg.attr_int(op.node, a.tf)
            attrs[a.onnx] = int(value if value is not None else _number(a.onnx_default) or 0)
        else:
            default = a.onnx_default
            attrs[a.onnx] = op.s(a.tf, default if isinstance(default, str) else None)
    return op.emit(row.onnx, *op.inputs, **attrs)


def _number(default: object) -> float | None:
    """A rename row's ONNX default for a numeric attribute (None where it has none)."""
    return default if isinstance(default, (int, float)) else None


# --- the probe ------------------------------------------------------------------------------

def run_probe(graph: TfjsGraph, needed: set[str]) -> Probe:
    """Shapes, dtypes and constant values of every tensor, from two dummy runs.

    Only constants are kept: an activation is dropped once the last node reading it has run.
    The second run reuses the first's constants (they do not depend on the inputs' free
    dimensions) instead of computing a second copy of every folded weight.
    """
    first = _dummy_run(graph, needed, 2)
    second = _dummy_run(graph, needed, 3,
                        known={ref: v for ref, (_, _, v) in first.items() if v is not None})
    probe = Probe()
    for ref, (sa, dtype, const) in first.items():
        b = second.get(ref)
        if b is None:
            continue
        sb = b[0]
        if len(sa) == len(sb):
            probe.shapes[ref] = [x if x == y else None for x, y in zip(sa, sb)]
        probe.dtypes[ref] = dtype.name if dtype.kind != "U" else "string"
        if const is not None:
            probe.consts[ref] = const
    return probe


def _dummy_run(graph: TfjsGraph, needed: set[str], free: int,
               known: dict[str, np.ndarray] | None = None
               ) -> dict[str, tuple[tuple[int, ...], np.dtype, np.ndarray | None]]:
    """Evaluate with the NumPy TF executor: (shape, dtype, value if constant) per tensor. A node
    it cannot run leaves its outputs (and everything downstream) unknown rather than failing
    the conversion here. ``known`` constants are taken as they are, not computed again."""
    from ...limits import MAX_CHECK_INPUT_ELEMENTS as MAX_INPUT_ELEMENTS
    from ...runtime.tfjs_reference import REGISTRY
    from ...runtime.tfjs_reference._base import NUMPY_DTYPES, Op

    known = known or {}
    rng = np.random.default_rng(0)
    feeds: dict[str, np.ndarray] = {}
    for info in graph.inputs:
        placeholder = tg.input_name(info.tensor)[0]
        if info.shape is None or info.dtype not in NUMPY_DTYPES:
            continue
        shape = [free if d is None else d for d in info.shape]
        if math.prod(shape) > MAX_INPUT_ELEMENTS:
            continue  # a crafted size: left unknown here; the parity check names it
        dtype = NUMPY_DTYPES[info.dtype]
        feeds[placeholder] = (rng.standard_normal(shape).astype(dtype)
                       if np.dtype(dtype).kind == "f" else np.zeros(shape, dtype))
    order = [node for node in tg.order(graph) if node.name in needed]
    inputs = {node.name: [r if ":" in r else f"{r}:0" for r in node.inputs
                          if not r.startswith("^")] for node in order}
    readers: Counter[str] = Counter(r for refs in inputs.values() for r in refs)
    out: dict[str, tuple[tuple[int, ...], np.dtype, np.ndarray | None]] = {}
    live: dict[str, np.ndarray] = {}  # values some node still has to read
    consts: set[str] = set()
    from ...runtime.tfjs_reference import run as run_reference
    from ...runtime.tfjs_reference.control_flow import library
    with np.errstate(all="ignore"), library(graph, run_reference):  # (control flow calls it)
        for node in order:
            refs = inputs[node.name]
            results = _probe_node(node, refs, live, graph, feeds, known, REGISTRY, Op)
            if results is None:
                _fill_shape(node, refs, live, out)
            else:
                is_const = node.op == "Const" or (bool(refs) and node.op not in (
                    "Placeholder", "PlaceholderWithDefault") and all(r in consts for r in refs))
                for k, r in enumerate(results):
                    ref = f"{node.name}:{k}"
                    value = np.asarray(r)
                    out[ref] = (value.shape, value.dtype, value if is_const else None)
                    if readers[ref]:
                        live[ref] = value
                    if is_const:
                        consts.add(ref)
            for ref in refs:  # free what no later node reads
                readers[ref] -= 1
                if readers[ref] <= 0:
                    live.pop(ref, None)
    return out


def _fill_shape(node: TfNode, refs: list[str], live: dict[str, np.ndarray],
                out: dict[str, tuple[tuple[int, ...], np.dtype, np.ndarray | None]]) -> None:
    """A Fill the NumPy executor would not build (past the memory budget: ONNX's light models
    hold their weights as ConstantOfShape, folded no further than ``FOLD_LIMIT``) still has
    the shape its constant dims input gives: recorded without a value, so its readers know its
    rank."""
    if node.op != "Fill" or len(refs) < 2 or refs[0] not in live or refs[1] not in out:
        return
    dims = np.asarray(live[refs[0]])
    if dims.ndim != 1 or dims.dtype.kind not in "iu" or (dims < 0).any():
        return
    out[f"{node.name}:0"] = (tuple(int(d) for d in dims), out[refs[1]][1], None)


def _probe_node(node: TfNode, refs: list[str], live: dict[str, np.ndarray], graph: TfjsGraph,
                feeds: dict[str, np.ndarray], known: dict[str, np.ndarray], registry,
                op_class) -> list | None:
    """One node's outputs in a dummy run, or None where it cannot run."""
    if f"{node.name}:0" in known:
        results: list[np.ndarray] = []
        while f"{node.name}:{len(results)}" in known:
            results.append(known[f"{node.name}:{len(results)}"])
        return results
    if any(r not in live for r in refs):
        return None
    fn = registry.get(node.op)
    if fn is None:
        return None
    value = feeds.get(node.name) if node.op in ("Placeholder", "PlaceholderWithDefault") \
        else graph.weights.get(node.name) if node.op == "Const" else None
    if node.op == "Placeholder" and value is None:
        return None
    args = [live[r] for r in refs]
    try:
        result = fn(op_class(node, args, value))
    except (ModelportError, ValueError, TypeError, IndexError, KeyError,
            ZeroDivisionError, OverflowError, MemoryError):
        return None
    results = list(result) if isinstance(result, (list, tuple)) else [result]
    return _scalars_kept(node, args, results)


def _expected_rank(node: TfNode, args: list[np.ndarray]) -> int | None:
    if not args:
        return None
    rank = np.ndim(args[0])
    if node.op == "Unpack":
        return rank - 1
    if node.op == "Transpose":
        return rank
    if node.op == "StridedSlice":
        new = tg.attr_int(node, "new_axis_mask", 0) or 0
        shrink = tg.attr_int(node, "shrink_axis_mask", 0) or 0
        ellipsis = tg.attr_int(node, "ellipsis_mask", 0) or 0
        return rank + (new & ~ellipsis).bit_count() - (shrink & ~new & ~ellipsis).bit_count()
    return None


def _scalars_kept(node: TfNode, args: list[np.ndarray], results: list) -> list:
    """The NumPy executor returns some 0-d results as shape [1] (np.ascontiguousarray makes
    arrays at least 1-d): Unpack of a vector, StridedSlice down to a scalar, Transpose of a
    scalar. The probe restores the rank TF gives them, so that shapes and folded constants
    are TF's."""
    expected = _expected_rank(node, args)
    if expected != 0:
        return results
    return [np.asarray(r).reshape(()) if np.shape(r) == (1,) else r for r in results]
