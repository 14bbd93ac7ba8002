"""Keras layer graph (``LayersModel``) -> ONNX model, one registered lowering per layer class.

``lower`` walks the calls in dependency order, hands each one to its lowering (family modules:
core, activations, conv, pooling, normalization, merging, recurrent, attention) and assembles an
``onnx_ir`` model. Every lowering is correct on its own in the Keras (channels-last) layout;
``converters.layout`` then removes the Transposes that cancel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TypeVar

import onnx_ir as ir

from ..._version import __version__
from ...errors import ModelportError, UnsupportedError
from ...models import Layer, LayersModel, Node, TensorRef, keras_graph, keras_shapes
from ...models.keras_shapes import TensorSpec
from ...models.onnx_model import (  # noqa: F401 - the opsets, re-exported for the lowering's users
    DEFAULT_OPSET,
    MAX_OPSET,
    MIN_OPSET,
    ir_version_for,
    resolve_opset,
)
from .. import layout

# Importing the families registers their lowerings.
from . import (  # noqa: F401
    activations,
    attention,
    conv,
    core,
    merging,
    normalization,
    operations,
    pooling,
    recurrent,
    reshaping,
)
from .context import LOWERINGS, ONNX_DTYPES, OPERATIONS, Builder, Call, Lowered

Key = tuple[str, int, int]  # a Keras tensor: (layer, call, output index)
_T = TypeVar("_T")

# The metadata key of the calls recorded for re-lowering: the calls of the classes registered
# with ``relowered=True`` (see ``context.Lowerings``), and of those computing explicit masks.
HINT_KEY = "modelport.keras_layers"


@dataclass
class LoweredModel:
    """What ``lower`` gives: the ONNX model, its input and output names, the ONNX value of each
    Keras tensor, the Transposes left and the opset."""

    model: ir.Model
    input_names: list[str]
    output_names: list[str]
    # ONNX value holding each Keras tensor (layer, call, output index), in the Keras layout;
    # complete when lowered with optimize=False (the layout pass may fold some away).
    tensor_names: dict[tuple[str, int, int], str] = field(default_factory=dict)
    transposes: int = 0
    opset: int = DEFAULT_OPSET


def unsupported_layers(model: LayersModel) -> list[tuple[str, str]]:
    """(layer, class) of every layer, wrapped ones included, that has no lowering."""
    found = []

    def visit(name: str, class_name: str, config: dict, operation: bool = False) -> None:
        if class_name not in (OPERATIONS if operation else LOWERINGS):
            found.append((name, class_name))
        for key in ("layer", "backward_layer"):
            inner = config.get(key)
            if isinstance(inner, dict) and "class_name" in inner:
                visit(name, inner["class_name"], inner.get("config") or {})

    for layer in model.iter_layers():
        if layer.model is None:
            visit(layer.name, layer.class_name, layer.config, layer.is_operation)
    return found


def lower(model: LayersModel, *, opset: int = DEFAULT_OPSET, channels_first_inputs: bool = False,
          optimize: bool = True) -> LoweredModel:
    """Lower ``model`` to ONNX at ``opset``; ``channels_first_inputs`` exposes image inputs as
    NCHW (the first op transposes them back)."""
    opset = resolve_opset(opset)
    missing = unsupported_layers(model)
    if missing:
        listed = ", ".join(f"{n} ({c})" for n, c in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise UnsupportedError(f"no ONNX lowering for: {listed}{more}", layer=missing[0][0],
                               hint=f"supported classes: {len(LOWERINGS.names())}; "
                                    "see `modelport inspect`")
    graph_model = keras_graph.as_functional(model)
    builder = Builder(opset)
    inputs: list[ir.Value] = []
    values: dict[Key, ir.Value] = {}
    for ref in graph_model.inputs:
        layer = graph_model.layer(ref.layer)
        spec = keras_shapes.input_specs(graph_model)[graph_model.inputs.index(ref)]
        value = ir.Value(name=builder.unique(layer.name), type=ir.TensorType(_dtype(spec, layer)),
                         shape=ir.Shape(_dims(spec, layer.name, channels_first_inputs)))
        inputs.append(value)
        x = value
        if channels_first_inputs and len(spec.shape) >= 3:
            x = builder.to_channels_last(value, len(spec.shape))
        values[(ref.layer, ref.node, ref.tensor)] = x
    tensor_names: dict[Key, str | None] = {}
    hints: list[dict] = []
    outputs = _lower_graph(builder, graph_model, values, {}, tensor_names, prefix="", hints=hints)
    out_values = []
    for ref, value in zip(graph_model.outputs, outputs):
        if value in inputs or value in out_values:
            value = builder.op("Identity", value)
            value.name = builder.unique(ref.layer)
        out_values.append(value)
    specs = keras_shapes.output_specs(graph_model)
    for value, spec in zip(out_values, specs):
        value.type = ir.TensorType(ONNX_DTYPES.get(spec.dtype, ir.DataType.FLOAT))
        value.shape = ir.Shape(_dims(spec, value.name, False))
    graph = ir.Graph(inputs, out_values, nodes=builder.tape.nodes,
                     initializers=builder.tape.initializers, opset_imports={"": opset},
                     name=model.name)
    result = ir.Model(graph, ir_version=ir_version_for(opset), producer_name="modelport",
                      producer_version=_version())
    if hints:
        result.metadata_props[HINT_KEY] = json.dumps(hints, separators=(",", ":"))
    transposes = layout.optimize(result) if optimize else layout.count_transposes(result)
    # An input's layout Transpose has no name until the graph is built: nothing can look it up.
    named = {key: name for key, name in tensor_names.items() if name is not None}
    return LoweredModel(result, [_named(v) for v in inputs], [_named(v) for v in out_values],
                        named, transposes, opset)


def _version() -> str:
    return __version__


def _dtype(spec: TensorSpec, layer: Layer) -> ir.DataType:
    if spec.dtype not in ONNX_DTYPES:
        raise UnsupportedError(f"input dtype {spec.dtype!r} has no ONNX equivalent here",
                               layer=layer.name)
    return ONNX_DTYPES[spec.dtype]


def _dims(spec: TensorSpec, name: str | None, channels_first: bool) -> list:
    dims: list = [d if d is not None else ("batch" if i == 0 else f"{name}_d{i}")
                  for i, d in enumerate(spec.shape)]
    if channels_first and len(dims) >= 3:
        dims = [dims[0], dims[-1]] + dims[1:-1]
    return dims


def _lower_graph(builder: Builder, model: LayersModel, values: dict[Key, ir.Value],
                 masks: dict[Key, ir.Value], tensor_names: dict[Key, str | None],
                 prefix: str, hints: list | None = None) -> list[ir.Value]:
    """Lower every call of ``model`` in dependency order into ``values`` (and the Keras masks
    into ``masks``); the values of the model's outputs. ``hints`` collects the re-lowering
    records of the top-level graph (None inside a nested model)."""
    specs = keras_shapes.infer(model)
    mask_ops = _mask_operations(model) if hints is not None else set()
    if prefix == "":
        tensor_names.update({key: value.name for key, value in values.items()})
    for layer, k in keras_graph.call_order(model):
        node = layer.inbound_nodes[k]
        call = _call(layer, k, specs, values, masks)
        builder.prefix = f"{prefix}{layer.name}/"
        lowered = _lower_call(builder, layer, call, prefix)
        _record_outputs(builder, layer, k, call, lowered, values, masks, tensor_names, prefix)
        if hints is not None and _wants_hint(layer, node, call, mask_ops):
            _add_hint(hints, layer, node, values, lowered)
    builder.prefix = prefix
    return [values[_key(r)] for r in model.outputs]


def _call(layer: Layer, k: int, specs: dict[Key, TensorSpec], values: dict[Key, ir.Value],
          masks: dict[Key, ir.Value]) -> Call:
    """Call ``k`` of ``layer``: its tensor arguments as ONNX values, with specs and masks."""
    node = layer.inbound_nodes[k]
    arg_refs = [r for r in node.inputs() if not _is_kwarg(node, r)]
    kwargs = _kwargs(node.kwargs, values)
    in_masks: list[ir.Value | None] = [masks.get(_key(r)) for r in arg_refs]
    if isinstance(kwargs.get("mask"), ir.Value) and in_masks:
        in_masks[0] = kwargs["mask"]  # Keras 3 records the mask a layer consumes explicitly
    return Call(layer=layer, node=k,
                inputs=[values[_key(r)] for r in arg_refs],
                in_specs=[specs[_key(r)] for r in arg_refs],
                out_specs=_out_specs(specs, layer, k),
                kwargs=kwargs, masks=in_masks, args=_kwargs(node.args, values),
                kwarg_masks={name: masks.get(_key(v)) for name, v in node.kwargs.items()
                             if isinstance(v, TensorRef)})


def _lower_call(builder: Builder, layer: Layer, call: Call, prefix: str) -> Lowered:
    """``call`` lowered by its class's lowering (a nested model: its own graph, recursively);
    an error names the layer."""
    try:
        if layer.model is not None:
            inner_values = _inner_inputs(builder, layer.model, call)
            outs = _lower_graph(builder, keras_graph.as_functional(layer.model), inner_values,
                                {}, {}, prefix=f"{prefix}{layer.name}/")
            lowered = Lowered(outs)
        else:
            table = OPERATIONS if layer.is_operation else LOWERINGS
            result = table.require(layer.class_name, layer=layer.name)(builder, call)
            lowered = result if isinstance(result, Lowered) else Lowered(list(result))
    except ModelportError as e:
        if e.layer is None:
            e.layer = f"{prefix}{layer.name}"
            e.args = (str(e),)
        raise
    if len(lowered.outputs) != len(call.out_specs):
        raise UnsupportedError(f"lowering produced {len(lowered.outputs)} outputs, Keras "
                               f"has {len(call.out_specs)}", layer=layer.name)
    return lowered


def _record_outputs(builder: Builder, layer: Layer, k: int, call: Call, lowered: Lowered,
                    values: dict[Key, ir.Value], masks: dict[Key, ir.Value],
                    tensor_names: dict[Key, str | None], prefix: str) -> None:
    """Store the call's outputs and their masks (a layer that propagates masks passes its
    input's on), naming the values that have no name of their own yet."""
    out_masks = lowered.masks
    if out_masks is None:
        propagates = layer.class_name in LOWERINGS.propagates_mask and not layer.is_operation
        inherited = call.masks[0] if call.masks and propagates else None
        out_masks = [inherited] * len(lowered.outputs)
    for i, (value, mask) in enumerate(zip(lowered.outputs, out_masks)):
        key = (layer.name, k, i)
        values[key] = value
        if mask is not None:
            masks[key] = mask
        if value.name is None or value.name.startswith("val_"):
            value.name = builder.unique(f"{prefix}{layer.name}" if (k, i) == (0, 0)
                                        else f"{prefix}{layer.name}:{k}:{i}")
        if prefix == "":
            tensor_names[key] = value.name


def _wants_hint(layer: Layer, node: Node, call: Call, mask_ops: set[str]) -> bool:
    """Whether raising needs a record of this call: a layer called once whose lowering no
    op-by-op rule reads back, or one that computes or consumes an explicit mask."""
    explicit_mask = isinstance(node.kwargs.get("mask"), TensorRef)
    return layer.model is None and len(layer.inbound_nodes) == 1 and (
        layer.name in mask_ops or explicit_mask or (layer.class_name in LOWERINGS.relowered
                                                    and not any(m is not None
                                                                for m in call.masks)))


def _add_hint(hints: list, layer: Layer, node: Node, values: dict[Key, ir.Value],
              lowered: Lowered) -> None:
    """Append the re-lowering record of ``layer``'s call, unless its config is not JSON."""
    hint = _hint(layer, node, [values[_key(r)].name for r in dict.fromkeys(node.inputs())],
                 [v.name for v in lowered.outputs])
    try:
        json.dumps(hint)
    except (TypeError, ValueError):  # a config that is not JSON: no hint, no raising
        return
    hints.append(hint)


def _named(value: ir.Value) -> str:
    """A value's name, once the graph is built (which names every value)."""
    if value.name is None:
        raise ModelportError("internal error: an ONNX value was left without a name")
    return value.name


def _mask_operations(model: LayersModel) -> set[str]:
    """Keras 3 records the masks it hands a layer explicitly (``mask=`` a NotEqual or Any
    operation's output): the operations that compute them, which the raising re-lowers too."""
    by_name = {layer.name: layer for layer in model.layers}
    found: set[str] = set()
    todo = [n.kwargs["mask"] for layer in model.layers for n in layer.inbound_nodes
            if isinstance(n.kwargs.get("mask"), TensorRef)]
    while todo:
        layer = by_name.get(todo.pop().layer)
        if layer is None or not layer.is_operation or layer.name in found:
            continue
        found.add(layer.name)
        todo.extend(r for n in layer.inbound_nodes for r in n.inputs())
    return found


def _hint(layer: Layer, node: Node, inputs: list[str | None], outputs: list[str | None]
          ) -> dict:
    """What re-lowering ``layer`` needs: its class, config, call (tensors as input indices),
    the ONNX values it reads and makes, and its weights' paths, shapes and dtypes."""
    refs = list(dict.fromkeys(node.inputs()))

    def encode(obj):
        if isinstance(obj, TensorRef):
            return {"__input__": refs.index(obj)}
        if isinstance(obj, dict):
            return {k: encode(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [encode(v) for v in obj]
        return obj

    return {"name": layer.name, "class_name": layer.class_name, "module": layer.module,
            "config": layer.config,
            "args": encode(node.args), "kwargs": encode(node.kwargs), "inputs": inputs,
            "outputs": outputs,
            "weights": [[w.path, list(w.array.shape), str(w.array.dtype)] for w in layer.weights]}


def _inner_inputs(builder: Builder, model: LayersModel, call: Call) -> dict[Key, ir.Value]:
    """A nested model's input values: the call's, cast to the dtypes its Inputs declare."""
    inner = keras_graph.as_functional(model)
    out = {}
    for ref, value, spec in zip(inner.inputs, call.inputs, call.in_specs):
        declared = inner.layer(ref.layer).config.get("dtype", "float32")
        if declared != spec.dtype and declared in ONNX_DTYPES:
            value = builder.cast(value, declared)  # Keras casts to the inner Input's dtype
        out[_key(ref)] = value
    return out


def _out_specs(specs: dict[Key, TensorSpec], layer: Layer, k: int) -> list[TensorSpec]:
    out, i = [], 0
    while (layer.name, k, i) in specs:
        out.append(specs[(layer.name, k, i)])
        i += 1
    return out


def _is_kwarg(node: Node, ref: TensorRef) -> bool:
    def contains(obj) -> bool:
        if isinstance(obj, TensorRef):
            return obj == ref
        if isinstance(obj, dict):
            return any(contains(v) for v in obj.values())
        if isinstance(obj, (list, tuple)):
            return any(contains(v) for v in obj)
        return False
    return contains(node.kwargs) and not contains(node.args)


def _kwargs(kwargs: _T, values: dict[Key, ir.Value]) -> _T:
    """``kwargs`` (a call's args or kwargs) with each TensorRef replaced by its value."""
    def sub(obj):
        if isinstance(obj, TensorRef):
            return values[_key(obj)]
        if isinstance(obj, dict):
            return {k: sub(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [sub(v) for v in obj]
        return obj
    return sub(kwargs)


def _key(ref: TensorRef) -> Key:
    return (ref.layer, ref.node, ref.tensor)
