"""TF.js graph-model (``TfjsGraph``) -> ONNX, one registered mapping per TF op.

``convert`` walks the TF nodes in dependency order and hands each to its mapping: a function
registered in ``MAPPINGS`` (family modules ``from_tfjs_nn`` — convolutions, pooling, matmuls,
normalization, activations —, ``from_tfjs_ops`` — elementwise math, reductions, shapes,
slicing — and ``from_tfjs_extra`` — rarer math, scatter, space/batch), or else a 1:1 row of ``table.RENAMES`` (read through ``table.BY_TF``).

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx_ir as ir

from ...errors import FormatError, ModelportError, UnsupportedError
from ...formats import tfjs_graph as tg
from ...models import TfjsGraph, TfNode
from .. import layout
from ..irbuild import tensor
from ..keras_to_onnx import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
from ..keras_to_onnx.context import ONNX_DTYPES, Builder
from ..registry import Registry
from . import table

log = logging.getLogger(__name__)

MAPPINGS: Registry = Registry("TF -> ONNX mapping")
# Ops with nothing to compute: their node becomes no ONNX node at all.
PASSIVE = {"Placeholder", "PlaceholderWithDefault", "Const", "NoOp"}
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


@dataclass
class Probe:
    """What the dummy runs learnt about each TF tensor (``node:k``)."""

    shapes: dict[str, list[int | None]] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)
    consts: dict[str, np.ndarray] = field(default_factory=dict)


class NodeInputs(list):
    """A TF node's data inputs (values or their refs). A model.json may give any op any
    number of inputs, so reading one the node does not have is a FormatError that names the
    node, wherever a mapping reads it, slices included."""

    def __init__(self, items, node: TfNode, total: int | None = None) -> None:
        super().__init__(items)
        self.node = node
        self.total = len(self) if total is None else total

    def __getitem__(self, k):
        if isinstance(k, slice):
            return NodeInputs(list.__getitem__(self, k), self.node, self.total)
        try:
            return list.__getitem__(self, k)
        except IndexError:
            raise FormatError(f"{self.node.op} node {self.node.name!r} has {self.total} data "
                              f"input(s), too few for {self.node.op}") from None


@dataclass
class TfOp:
    """One TF node being mapped: its data inputs as ONNX values and what is known of them."""

    node: TfNode
    inputs: list[ir.Value]
    refs: list[str]
    probe: Probe
    ctx: Ctx

    # --- node facts ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.node.name

    @property
    def op(self) -> str:
        return self.node.op

    def fail(self, message: str) -> UnsupportedError:
        return UnsupportedError(f"{self.op} node {self.name!r}: {message}")

    def bad(self, message: str) -> FormatError:
        return FormatError(f"{self.op} node {self.name!r}: {message}")

    def i(self, name: str, default: int | None = None) -> int:
        value = tg.attr_int(self.node, name, default)
        if value is None:
            raise self.bad(f"has no integer attribute {name!r}")
        return value

    def f(self, name: str, default: float | None = None) -> float:
        value = tg.attr_float(self.node, name, default)
        if value is None:
            raise self.bad(f"has no float attribute {name!r}")
        return value

    def b(self, name: str, default: bool = False) -> bool:
        return bool(tg.attr_bool(self.node, name, default))

    def s(self, name: str, default: str | None = None) -> str:
        value = tg.attr_str(self.node, name, default)
        if value is None:
            raise self.bad(f"has no string attribute {name!r}")
        return value

    def ints(self, name: str, length: int | None = None, default: list[int] | None = None
             ) -> list[int]:
        values = tg.attr_list(self.node, name, "i")
        if not values and default is not None:
            return list(default)
        if length is not None and len(values) != length:
            raise self.bad(f"attribute {name!r} has {len(values)} values, not {length}")
        return values

    # --- input facts -----------------------------------------------------------------------
    def dtype(self, k: int) -> str:
        dtype = self.probe.dtypes.get(self.refs[k])
        if dtype is None:
            dtype = tg.attr_type(self.node, "T", "float32") or "float32"
        return dtype

    def out_dtype(self, k: int = 0) -> str | None:
        return self.probe.dtypes.get(f"{self.name}:{k}")

    def shape(self, k: int) -> list[int | None] | None:
        return self.probe.shapes.get(self.refs[k])

    def out_shape(self, k: int = 0) -> list[int | None] | None:
        return self.probe.shapes.get(f"{self.name}:{k}")

    def rank(self, k: int) -> int:
        shape = self.shape(k)
        if shape is None:
            raise self.fail(f"needs the rank of {self.refs[k]!r}, which is unknown")
        return len(shape)

    def const(self, k: int) -> np.ndarray | None:
        return self.probe.consts.get(self.refs[k]) if k < len(self.refs) else None

    def const_ints(self, k: int, what: str) -> list[int]:
        value = self.const(k)
        if value is None:
            raise self.fail(f"its {what} (input {k}) is computed at run time; only constant "
                            f"{what}s are supported")
        return [int(v) for v in np.asarray(value).reshape(-1)]

    def const_int(self, k: int, what: str) -> int:
        values = self.const_ints(k, what)
        if len(values) != 1:
            raise self.bad(f"its {what} has {len(values)} values, not one")
        return values[0]

    def is_float(self, k: int = 0) -> bool:
        return self.dtype(k).startswith(("float", "bfloat"))

    # --- building --------------------------------------------------------------------------
    @property
    def b_(self) -> Builder:
        return self.ctx.builder

    def emit(self, op_type: str, *inputs: ir.Value | None, **attrs: Any) -> ir.Value:
        return self.ctx.builder.op(op_type, *inputs, **attrs)

    def emits(self, op_type: str, *inputs: ir.Value | None, outputs: int, **attrs: Any
              ) -> list[ir.Value]:
        return self.ctx.builder.ops(op_type, *inputs, outputs=outputs, **attrs)

    def scalar(self, value: float, dtype: str | None = None) -> ir.Value:
        return self.ctx.builder.const(np.asarray(value, dtype=dtype or self.dtype(0)),
                                      f"{self.name}/scalar")

    def int64(self, k: int) -> ir.Value:
        """Input ``k`` as int64 (ONNX's type for shapes, axes, pads, repeats, k)."""
        value = self.const(k)
        if value is not None:
            return self.ctx.builder.const(np.asarray(value, dtype=np.int64), f"{self.name}/i64")
        if self.dtype(k) == "int64":
            return self.inputs[k]
        return self.emit("Cast", self.inputs[k], to=ir.DataType.INT64)

    def cast_to(self, x: ir.Value, dtype: str) -> ir.Value:
        if dtype not in ONNX_DTYPES:
            raise self.fail(f"dtype {dtype} has no ONNX equivalent")
        return self.emit("Cast", x, to=ONNX_DTYPES[dtype])

    def axis(self, axis: int, rank: int) -> int:
        if not -rank <= axis < rank:
            raise self.bad(f"axis {axis} is out of range for rank {rank}")
        return axis % rank


class _Builder(Builder):
    def const(self, array: Any, name: str | None = None, dtype: Any = None) -> ir.Value:
        # np.ascontiguousarray (used by the shared Builder) turns a 0-d array into shape [1];
        # TF scalars must stay scalars (Concat of Unsqueezed scalars, Clip bounds, Pad value).
        # No copy of a weight that is already C-ordered and of the right dtype: the initializer
        # is a read-only view of the source graph's array (nothing may write through it, and
        # the source graph stays as it was for the parity check).
        data = np.asarray(array, dtype=dtype) if dtype is not None else np.asarray(array)
        if data.dtype == np.float64 and dtype is None:
            data = data.astype(np.float32)
        if not data.flags.c_contiguous:
            data = np.array(data, order="C")
        data = data.view()
        data.flags.writeable = False
        label = self.unique(name or f"{self.prefix}const")
        if data.ndim == 0:
            # A Constant node, not an initializer: formats.onnx's streaming writer stores 0-d
            # initializers as shape [1]. const_value still lets passes see the number.
            value = self.tape.op("Constant", [], {"value": tensor(data, name=label)},
                                 name=self.unique(f"{label}/Constant"))
            value.name = label
            value.const_value = tensor(data, name=label)
            return value
        return self.tape.initializer(tensor(data, name=label), name=label)


class Ctx:
    def __init__(self, opset: int) -> None:
        self.opset = opset
        self.builder = _Builder(opset)


def convert(graph: TfjsGraph, opset: int | None = None, *, release: bool = False) -> ir.Model:
    """Map ``graph`` to an ONNX model at ``opset`` (default ``DEFAULT_OPSET``).

    ``release=True`` is for a caller that reads ``graph`` only to convert it: a large weight
    the mappings turned into a new initializer (a convolution's filter, transposed to ONNX's
    layout) is dropped from ``graph.weights`` once its last reader is mapped, so that the
    source and the converted weights are not both held to the end. ``graph`` cannot be run
    afterwards.
    """
    from . import from_tfjs_extra, from_tfjs_nn, from_tfjs_ops  # noqa: F401  (register the mappings)

    opset = opset or DEFAULT_OPSET
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UnsupportedError(f"opset {opset} is outside the supported {MIN_OPSET}-{MAX_OPSET}")
    nodes = tg.order(graph)
    needed = _needed(graph)
    missing = [(n.name, n.op) for n in nodes if n.name in needed and n.op not in PASSIVE
               and n.op not in MAPPINGS and n.op not in table.BY_TF]
    if missing:
        listed = ", ".join(f"{name} ({op})" for name, op in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise UnsupportedError(
            f"no ONNX mapping for {len(missing)} TF node(s): {listed}{more}",
            hint=f"mapped ops: {len(supported_ops())}; see modelport.converters.onnx_tfjs."
                 "from_tfjs.supported_ops()")
    probe = run_probe(graph, needed)
    ctx = Ctx(opset)
    builder = ctx.builder
    # Signature keys name the ONNX inputs and outputs; reserve them before any other name.
    for info in graph.inputs + graph.outputs:
        builder.unique(info.key)
    values: dict[str, ir.Value] = {}
    onnx_inputs = []
    by_name = {n.name: n for n in graph.nodes}
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
        if shape is None:
            raise UnsupportedError(f"input {info.key!r} has an unknown rank")
        dims = [d if d is not None else f"{info.key}_d{i}"
                for i, d in enumerate(shape)]
        value = ir.Value(name=info.key, type=ir.TensorType(ONNX_DTYPES[dtype]),
                         shape=ir.Shape(dims))
        onnx_inputs.append(value)
        x = value
        if info.dtype == "int64":  # TF.js feeds int32; the graph computes in int64
            x = builder.op("Cast", value, to=ir.DataType.INT64)
        values[f"{node_name}:0"] = x
    readers: Counter[str] = Counter(r if ":" in r else f"{r}:0" for n in nodes
                                    if n.name in needed for r in n.inputs
                                    if not r.startswith("^"))
    kept = {info.tensor for info in graph.outputs}
    for node in nodes:
        if node.name not in needed:
            continue
        builder.prefix = f"{node.name}/"
        try:
            _map_node(ctx, node, values, probe)
        except ModelportError as e:
            if e.layer is None and node.name not in e.message:
                e.layer = node.name
                e.args = (str(e),)
            raise
        if release:
            _release(node, readers, kept, values, probe, graph, builder)
    builder.prefix = ""
    outputs = []
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
            value.shape = ir.Shape([d if d is not None else f"{info.key}_d{i}"
                                    for i, d in enumerate(shape)])
        outputs.append(value)
    onnx_graph = ir.Graph(onnx_inputs, outputs, nodes=builder.tape.nodes,
                          initializers=builder.tape.initializers, opset_imports={"": opset},
                          name="tfjs_graph")
    from ... import __version__
    from ...formats.onnx import ir_version_for

    model = ir.Model(onnx_graph, ir_version=ir_version_for(opset), producer_name="modelport",
                     producer_version=__version__)
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
    initializers = getattr(builder.tape, "_initializers", None)
    for ref in (r if ":" in r else f"{r}:0" for r in node.inputs if not r.startswith("^")):
        readers[ref] -= 1
        array = probe.consts.get(ref)
        if readers[ref] > 0 or ref in kept or array is None or \
                np.asarray(array).nbytes < RELEASE_MIN_BYTES:
            continue
        value = values.get(ref)
        if value is not None:
            # an initializer of the tape (the graph is not built yet) that nothing reads
            where = [i for i, v in enumerate(initializers) if v is value] \
                if isinstance(initializers, list) else []
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

    from ...formats import onnx as onnx_format

    bare = onnx_format.declare_as_inputs(*onnx_format.skeleton(model, 1024))  # no weight copies
    inferred = onnx.shape_inference.infer_shapes(bare, data_prop=True)
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
    from . import from_tfjs_extra, from_tfjs_nn, from_tfjs_ops  # noqa: F401

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
            result = MAPPINGS.get(node.op)(op)
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
            attrs[a.onnx] = op.f(a.tf, a.onnx_default)
        elif a.kind in ("i", "b"):
            value = tg.attr_bool(op.node, a.tf) if a.kind == "b" else tg.attr_int(op.node, a.tf)
            attrs[a.onnx] = int(value if value is not None else a.onnx_default or 0)
        else:
            attrs[a.onnx] = op.s(a.tf, a.onnx_default)
    return op.emit(row.onnx, *op.inputs, **attrs)


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
    from ...runtime.engines import MAX_INPUT_ELEMENTS
    from ...runtime.tfjs_reference import REGISTRY
    from ...runtime.tfjs_reference._base import NUMPY_DTYPES, Op

    known = known or {}
    rng = np.random.default_rng(0)
    feeds: dict[str, np.ndarray] = {}
    for info in graph.inputs:
        node = tg.input_name(info.tensor)[0]
        if info.shape is None or info.dtype not in NUMPY_DTYPES:
            continue
        shape = [free if d is None else d for d in info.shape]
        if math.prod(shape) > MAX_INPUT_ELEMENTS:
            continue  # a crafted size: left unknown here; the parity check names it
        dtype = NUMPY_DTYPES[info.dtype]
        feeds[node] = (rng.standard_normal(shape).astype(dtype)
                       if np.dtype(dtype).kind == "f" else np.zeros(shape, dtype))
    order = [node for node in tg.order(graph) if node.name in needed]
    inputs = {node.name: [r if ":" in r else f"{r}:0" for r in node.inputs
                          if not r.startswith("^")] for node in order}
    readers: Counter[str] = Counter(r for refs in inputs.values() for r in refs)
    out: dict[str, tuple[tuple[int, ...], np.dtype, np.ndarray | None]] = {}
    live: dict[str, np.ndarray] = {}  # values some node still has to read
    consts: set[str] = set()
    with np.errstate(all="ignore"):
        for node in order:
            refs = inputs[node.name]
            results = _probe_node(node, refs, live, graph, feeds, known, REGISTRY, Op)
            if results is not None:
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


def _probe_node(node: TfNode, refs: list[str], live: dict[str, np.ndarray], graph: TfjsGraph,
                feeds: dict[str, np.ndarray], known: dict[str, np.ndarray], registry,
                op_class) -> list | None:
    """One node's outputs in a dummy run, or None where it cannot run."""
    if f"{node.name}:0" in known:
        results = []
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


def perm_to_nchw(rank: int) -> list[int]:
    return [0, rank - 1] + list(range(1, rank - 1))


def perm_to_nhwc(rank: int) -> list[int]:
    return [0] + list(range(2, rank)) + [1]


def to_first(op: TfOp, x: ir.Value, rank: int) -> ir.Value:
    return op.b_.transpose(x, perm_to_nchw(rank))


def to_last(op: TfOp, x: ir.Value, rank: int) -> ir.Value:
    return op.b_.transpose(x, perm_to_nhwc(rank))


def as_list(values: Sequence[int]) -> list[int]:
    return [int(v) for v in values]
