"""ONNX -> ONNX steps before the TF mapping: one opset, static shapes, constants, layout.

1. ``normalize``: opsets 9..16 are converted to 17 with ``onnx.version_converter`` (older ones
   too where the converter can); 17 up to what this onnx knows stay as they are — the mapping
   handles each op's versions. Then ONNX shape inference (with data propagation).
2. ``fold_constants``: Constant nodes and nodes whose inputs are all constant become
   initializers (evaluated with ``onnx.reference``; ConstantOfShape as a zero-stride NumPy view,
   so the "light" models' uniform weights cost no memory), as do Shape/Size of tensors whose
   shape is static.
3. ``to_channels_last``: each layout-sensitive node X (convolutions, pools, normalizations
   over the channel axis, Resize, DepthToSpace, ...) becomes Transpose(NHWC->NCHW) ∘ X' ∘
   Transpose(NCHW->NHWC), X' a node of the private domain ``ai.modelport.nhwc`` with X's
   attributes and inputs whose tensor 0 (in and out) is channels-last; ``layout.optimize`` then
   cancels the Transposes between neighbours. X' nodes are barriers to that pass.
4. ``reinfer``: names for new values, and shapes for them by ONNX shape inference (X' outputs
   carry the shapes set here; inference skips the unknown domain).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import onnx
import onnx_ir as ir
from onnx import version_converter

from ..budget import budget, data_prop_safe  # data propagation only where bounded
from ..errors import FormatError, UnsupportedError
from ..models.onnx_model import NORMALIZED_OPSET, declare_as_inputs, opset_of, skeleton
from .onnx_control_flow import fold_constant_ifs
from .rewire import replace_value

log = logging.getLogger(__name__)

NHWC = "ai.modelport.nhwc"
TARGET_OPSET = NORMALIZED_OPSET
NONDETERMINISTIC = {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike",
                    "Multinomial", "Bernoulli", "Dropout"}
FOLD_LIMIT = 1 << 26  # elements; bigger results stay computed at run time


SKELETON_THRESHOLD = 1024  # bytes: initializers this big skip the proto round trips


def normalize(model: ir.Model) -> ir.Model:
    """``model`` at one opset, with ONNX's inferred shapes.

    The version converter and shape inference work on protos: the round trip is made on a
    skeleton whose big initializers (``SKELETON_THRESHOLD`` bytes and up) are typed graph
    inputs, which inference treats the same, and the original tensors are attached again by
    name afterwards, so the weights are never copied. Small ones stay, since data propagation
    and the converter's adapters read them (Reshape shapes, Resize scales, ...). Should the
    converter rename or drop one of the big ones, the model takes the round trip whole.
    """
    opset = opset_of(model)
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise UnsupportedError(f"opset {opset} is newer than onnx {onnx.__version__} knows "
                               f"({newest})")
    proto, values = skeleton(model, SKELETON_THRESHOLD)
    big = {v.name: v for v in values if v.name is not None}  # initializers: all named
    out = _normalize_proto(declare_as_inputs(proto, values), opset)
    inputs = {v.name: v for v in out.graph.inputs}
    # renamed or dropped: no input of that name, or one nothing uses any more
    missing = [name for name, v in big.items()
               if name not in inputs or (v.uses() and not inputs[name].uses())]
    if missing:
        log.debug("normalize: the version converter renamed or dropped initializer(s) %s; "
                  "converting the model with its weights", ", ".join(missing[:5]))
        return _legacy_prelu(_fix_inputs(_normalize_proto(ir.to_proto(model), opset)), opset)
    for name, v in big.items():
        value = inputs[name]
        out.graph.inputs.remove(value)
        value.const_value = v.const_value
        out.graph.register_initializer(value)
    return _legacy_prelu(_fix_inputs(out), opset)


def _normalize_proto(proto: onnx.ModelProto, opset: int) -> ir.Model:
    if opset < TARGET_OPSET:
        try:
            proto = version_converter.convert_version(proto, TARGET_OPSET)
        except onnx.shape_inference.InferenceError as e:  # it infers shapes as it converts
            raise FormatError(f"the model's declared shapes contradict its ops: "
                              f"{str(e).splitlines()[0][:200]}") from None
        except (RuntimeError, TypeError, version_converter.ConvertError) as e:
            raise UnsupportedError(f"onnx's version converter cannot take opset {opset} to "
                                   f"{TARGET_OPSET}: {str(e).splitlines()[0][:200]}") from None
    try:
        proto = onnx.shape_inference.infer_shapes(proto, check_type=False, strict_mode=False,
                                                  data_prop=data_prop_safe(proto))
    except (onnx.shape_inference.InferenceError, RuntimeError) as e:
        log.warning("ONNX shape inference failed (%s); shapes stay as declared", e)
    return ir.from_proto(proto)


def _legacy_prelu(model: ir.Model, opset: int) -> ir.Model:
    """Before opset 7 a 1-D PRelu slope ran along axis 1 (the channels); the version converter
    keeps the vector, which opset 7+ broadcasting lines up with the last axis instead (and
    onnxruntime refuses where the sizes differ). Give such slopes their axes back."""
    if opset >= 7:
        return model
    for node in model.graph:
        if node.op_type != "PRelu" or len(node.inputs) < 2:
            continue
        x, slope = node.inputs[0], node.inputs[1]
        value = const_array(slope)
        if slope is None or value is None or x is None or x.shape is None or len(x.shape) < 3:
            continue
        if value.ndim == 1 and value.size > 1 and x.shape[1] == value.size:
            shaped = value.reshape((-1,) + (1,) * (len(x.shape) - 2))
            new = ir.Value(name=f"{slope.name}_channels", shape=ir.Shape(shaped.shape),
                           type=slope.type, const_value=ir.Tensor(shaped))
            model.graph.register_initializer(new)
            node.replace_input_with(1, new)
            if not slope.uses() and not slope.is_graph_output() and slope.name is not None:
                model.graph.initializers.pop(slope.name, None)
    return model


def _fix_inputs(out: ir.Model) -> ir.Model:
    # IR < 4 lists initializers as graph inputs too: they are weights, not inputs.
    init_names = set(out.graph.initializers)
    for v in list(out.graph.inputs):
        if v.name in init_names:
            out.graph.inputs.remove(v)
    return out


# --- node inputs --------------------------------------------------------------------------------

def input_of(node: ir.Node, index: int) -> ir.Value:
    """Input ``index`` of ``node``, one its op requires; a FormatError naming the node if the
    model leaves it out (ONNX marks an omitted input by an empty name)."""
    v = node.inputs[index] if index < len(node.inputs) else None
    if v is None:
        raise FormatError(f"{node.op_type} node {node.name!r}: input {index} is missing, and "
                          f"{node.op_type} requires it", layer=node.name)
    return v


def optional_input(node: ir.Node, index: int) -> ir.Value | None:
    """Input ``index`` of ``node``, or None where the model omits it."""
    return node.inputs[index] if index < len(node.inputs) else None


def inputs_of(node: ir.Node, count: int) -> list[ir.Value]:
    """The ``count`` inputs of an op that takes exactly that many, all required."""
    if len(node.inputs) != count:
        raise FormatError(f"{node.op_type} node {node.name!r}: {len(node.inputs)} inputs, "
                          f"{node.op_type} takes {count}", layer=node.name)
    return [input_of(node, i) for i in range(count)]


def node_rank(node: ir.Node) -> int | None:
    """The rank of the node's first input, else of its first output; None when unknown."""
    for v in (node.inputs[0] if node.inputs else None, node.outputs[0]):
        if v is not None and v.shape is not None:
            return len(v.shape)
    return None


def explicit_perms(graph: ir.Graph) -> None:
    """Write ONNX's default perm (reversed axes) on Transposes: the layout pass reads it."""
    for node in graph:
        if node.op_type != "Transpose" or node.domain not in ("", "ai.onnx") or \
                "perm" in node.attributes:
            continue
        rank = node_rank(node)
        if rank is not None:
            node.attributes["perm"] = ir.AttrInt64s("perm", list(reversed(range(rank))))


# --- constant folding ---------------------------------------------------------------------------

def is_const(v: ir.Value | None) -> bool:
    """A value with a constant the converter may read (an initializer, not a graph input)."""
    return v is not None and v.const_value is not None and not v.is_graph_input()


def const_array(v: ir.Value | None) -> np.ndarray | None:
    """The value's constant as a NumPy array (see ``is_const``), else None."""
    if v is None or v.const_value is None or v.is_graph_input():
        return None
    return v.const_value.numpy()


def static_shape(v: ir.Value) -> list[int] | None:
    """The value's shape when every dimension is a known int, else None."""
    if v.shape is None:
        return None
    dims = [d for d in v.shape if isinstance(d, int)]
    return dims if len(dims) == len(v.shape) else None


def _constant_attr(node: ir.Node) -> np.ndarray:
    for name, attr in node.attributes.items():
        value = attr.value
        if name == "value":
            return value.numpy()
        if name == "value_float":
            return np.asarray(value, np.float32)
        if name == "value_floats":
            return np.asarray(list(value), np.float32)
        if name == "value_int":
            return np.asarray(value, np.int64)
        if name == "value_ints":
            return np.asarray(list(value), np.int64)
        if name == "value_string":
            return np.asarray(value, dtype=object)
        if name == "value_strings":
            return np.asarray(list(value), dtype=object)
    raise UnsupportedError(f"Constant node {node.name!r} has no value attribute it can read "
                           f"({', '.join(node.attributes)})")


def _evaluate(node: ir.Node, opset: int) -> list[np.ndarray | None] | None:
    """The node's outputs computed from its constant inputs (None for an output nothing
    reads), or None when it is not constant or cannot be evaluated here."""
    op = node.op_type
    if op == "Constant":
        return [_constant_attr(node)]
    if op in ("Shape", "Size"):
        shape = static_shape(input_of(node, 0))
        if shape is None:
            return None
        if op == "Size":
            return [np.asarray(int(np.prod(shape)), np.int64)]
        start = node.attributes["start"].value if "start" in node.attributes else 0
        end = node.attributes["end"].value if "end" in node.attributes else None
        return [np.asarray(shape[start:end], np.int64)]
    inputs = node.inputs
    if not all(v is None or is_const(v) for v in inputs) or not any(v is not None
                                                                    for v in inputs):
        return None
    arrays = [const_array(v) for v in inputs]
    if _result_elements(op, arrays) > _fold_limit():
        return None  # sized from its constant inputs before the reference allocates it
    if op == "ConstantOfShape":
        if arrays[0] is None:
            return None  # no shape input: the converter names the node
        value = node.attributes["value"].value.numpy().reshape(-1) if "value" in \
            node.attributes else np.zeros(1, np.float32)
        dims = tuple(int(d) for d in arrays[0].reshape(-1))
        return [np.broadcast_to(value[0], dims)]
    if op == "Identity":
        return [arrays[0]]
    for out in node.outputs:
        shape = static_shape(out) if out.shape is not None else None
        if shape is not None and int(np.prod(shape)) > _fold_limit():
            return None
    from onnx.reference import ReferenceEvaluator

    proto = ir.serde.serialize_node(node)
    names = [f"in{i}" for i in range(len(inputs))]
    del proto.input[:]
    proto.input.extend(["" if v is None else n for v, n in zip(inputs, names)])
    del proto.output[:]
    proto.output.extend([f"out{i}" if o.uses() or o.is_graph_output() else ""
                         for i, o in enumerate(node.outputs)])
    feeds = {n: a for n, a, v in zip(names, arrays, inputs) if v is not None}
    try:
        results = ReferenceEvaluator(proto, opsets={"": opset}).run(None, feeds)
    except Exception as e:  # noqa: BLE001 - a node the reference cannot fold stays a node
        log.debug("not folding %s %s: %s", op, node.name, e)
        return None
    if not isinstance(results, list):  # (a list whenever no intermediate results are asked)
        return None
    outs: list[np.ndarray | None] = []
    k = 0
    for name in proto.output:
        if name:
            outs.append(np.asarray(results[k]))
            k += 1
        else:
            outs.append(None)
    return outs


def _fold_limit() -> int:
    """Elements a folded value may have: FOLD_LIMIT, or more where ``--max-memory`` gives
    room (ONNX's light models hold ~100M-element weights as ConstantOfShape: a tiny file
    that claims gigabytes only when asked)."""
    limit, given = budget()
    return max(FOLD_LIMIT, limit // 8) if given else FOLD_LIMIT  # float32, held about twice


def _result_elements(op: str, arrays: list[np.ndarray | None]) -> int:
    """The elements a shape-making op (ConstantOfShape, Expand, Tile, Range) makes from
    these constant inputs; 0 where it is not one or they do not say."""
    try:
        if op == "ConstantOfShape" and arrays and arrays[0] is not None:
            return math.prod(max(int(d), 0) for d in arrays[0].reshape(-1))
        if op == "Expand" and len(arrays) > 1 and arrays[0] is not None \
                and arrays[1] is not None:
            target = [int(d) for d in arrays[1].reshape(-1)]
            ours = list(arrays[0].shape)
            rank = max(len(target), len(ours))
            target = [1] * (rank - len(target)) + target
            ours = [1] * (rank - len(ours)) + ours
            return math.prod(max(a, b, 0) for a, b in zip(target, ours))
        if op == "Tile" and len(arrays) > 1 and arrays[0] is not None \
                and arrays[1] is not None:
            return arrays[0].size * math.prod(max(int(r), 0) for r in arrays[1].reshape(-1))
        if op == "Range" and len(arrays) > 2 and all(a is not None for a in arrays[:3]):
            start, limit, delta = (float(np.asarray(a).reshape(-1)[0]) for a in arrays[:3])
            if delta == 0 or not math.isfinite(start + limit + delta):
                return 0
            return max(0, math.ceil((limit - start) / delta))
    except (ValueError, TypeError, OverflowError, IndexError):
        return 0
    return 0


def fold_constants(model: ir.Model) -> int:
    """Replace constant sub-computations by initializers; returns how many nodes went."""
    graph = model.graph
    opset = opset_of(model)
    folded = 0
    for node in list(graph):
        if node.domain not in ("", "ai.onnx") or node.op_type in NONDETERMINISTIC or any(
                a.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)
                for a in node.attributes.values()):
            continue
        results = _evaluate(node, opset)
        if results is None:
            continue
        if any(a is not None and a.dtype == object for a in results):
            continue  # strings stay nodes (tfjs has few string ops to feed)
        for out, array in zip(node.outputs, results):
            if array is None:
                continue
            if out.dtype is not None and array.dtype != out.dtype.numpy():
                array = array.astype(out.dtype.numpy())
            name = out.name or f"folded_{folded}_{out.index()}"
            out.name = None
            value = ir.Value(name=name, shape=ir.Shape(array.shape),
                             type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
                             const_value=ir.Tensor(array))
            out.replace_all_uses_with(value, replace_graph_outputs=True)
            graph.register_initializer(value)
        graph.remove(node, safe=True)
        folded += 1
    if fold_constant_ifs(model):  # a branch inlined may fold further
        folded += 1 + fold_constants(model)
    _drop_unused_initializers(graph)
    return folded


def _drop_unused_initializers(graph: ir.Graph) -> None:
    for name, v in list(graph.initializers.items()):
        if not v.uses() and not v.is_graph_output():
            graph.initializers.pop(name)


# --- layout -------------------------------------------------------------------------------------

def to_nhwc_perm(rank: int) -> list[int]:
    """The perm that moves the channel axis from second to last for rank ``rank``."""
    return [0, *range(2, rank), 1]


def to_nchw_perm(rank: int) -> list[int]:
    """The perm that moves the channel axis from last to second for rank ``rank``."""
    return [0, rank - 1, *range(1, rank - 1)]


def to_channels_last(model: ir.Model, layout_ops: set[str],
                     skip: set[int] | frozenset[int] = frozenset()) -> int:
    """Wrap each layout-sensitive node in Transposes around its channels-last twin.

    ``skip``: ids of nodes to leave alone (the converter has already refused them).
    """
    graph = model.graph
    wrapped = 0
    for node in list(graph):
        if node.domain not in ("", "ai.onnx") or node.op_type not in layout_ops or \
                id(node) in skip:
            continue
        x = input_of(node, 0)
        rank = len(x.shape) if x.shape is not None else None
        if rank is None:
            out_shape = node.outputs[0].shape
            rank = len(out_shape) if out_shape is not None else None
        if rank is None:
            raise UnsupportedError(f"{node.op_type} node {node.name!r}: the rank of its input "
                                   "is unknown", layer=node.name)
        inputs = list(node.inputs)
        new_nodes = []
        if rank > 2:
            t_in = ir.node("Transpose", [x], {"perm": to_nhwc_perm(rank)})
            t_in.outputs[0].type = x.type
            if x.shape is not None:
                t_in.outputs[0].shape = ir.Shape([x.shape[p] for p in to_nhwc_perm(rank)])
            new_nodes.append(t_in)
            inputs[0] = t_in.outputs[0]
        twin = ir.Node(NHWC, node.op_type, inputs,
                       attributes=list(node.attributes.values()),
                       num_outputs=len(node.outputs), name=node.name)
        new_nodes.append(twin)
        replacements = []
        for i, out in enumerate(node.outputs):
            t_out = twin.outputs[i]
            t_out.type = out.type
            if i == 0 and rank > 2:
                if out.shape is not None:
                    t_out.shape = ir.Shape([out.shape[p] for p in to_nhwc_perm(len(out.shape))])
                back = ir.node("Transpose", [t_out], {"perm": to_nchw_perm(rank)})
                back.outputs[0].type, back.outputs[0].shape = out.type, out.shape
                new_nodes.append(back)
                replacements.append((out, back.outputs[0]))
            else:
                t_out.shape = out.shape
                replacements.append((out, t_out))
        graph.insert_after(node, new_nodes)
        for old, new in replacements:
            replace_value(old, new)
        graph.remove(node, safe=True)
        wrapped += 1
    if wrapped:
        model.opset_imports[NHWC] = 1
    return wrapped


# --- names and shapes after the rewrites --------------------------------------------------------

def reinfer(model: ir.Model) -> None:
    """Name every value, then fill in shapes the rewrites left unknown (ONNX inference)."""
    from onnx_ir.passes.common import NameFixPass

    NameFixPass()(model)
    graph = model.graph
    # Constants the layout pass rewrote carry their values but no type or shape yet: give them
    # theirs (and make them initializers), or inference knows nothing downstream of them.
    for node in graph:
        for v in node.inputs:
            if v is None or v.const_value is None or v.is_graph_input():
                continue
            if v.shape is None:
                v.shape = ir.Shape(v.const_value.shape.numpy())  # a tensor's shape is static
            if v.type is None:
                v.type = ir.TensorType(v.const_value.dtype)
            if not v.is_initializer() and v.producer() is None and v.name:
                graph.register_initializer(v)
    proto = declare_as_inputs(*skeleton(model, SKELETON_THRESHOLD))
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=False, strict_mode=False,
                                                     data_prop=data_prop_safe(proto))
    except (onnx.shape_inference.InferenceError, RuntimeError) as e:
        log.warning("shape inference after the layout pass failed: %s", e)
        return
    by_name = {}
    for node in graph:
        for out in node.outputs:
            if out.name:
                by_name[out.name] = out
    for info in list(inferred.graph.value_info) + list(inferred.graph.output):
        v = by_name.get(info.name)
        if v is None or not info.type.HasField("tensor_type"):
            continue
        tt = info.type.tensor_type
        if v.type is None and tt.elem_type:
            v.type = ir.TensorType(ir.DataType(tt.elem_type))
        if v.shape is None and tt.HasField("shape"):
            v.shape = ir.Shape([d.dim_value if d.HasField("dim_value") else
                                (d.dim_param or None) for d in tt.shape.dim])
