"""Static shape and dtype inference over a canonical ``LayersModel`` (no Keras, no TensorFlow).

``infer`` gives every symbolic tensor a ``TensorSpec``, keyed by ``(layer, node, tensor)`` like
``TensorRef``. Each layer class's rule is its ``shape`` in ``layer_facts`` (``RULES`` here is a
view of them): ``rule(config, input specs, call kwargs) -> output specs``. The rules follow
Keras 3's ``compute_output_shape``/``compute_output_spec``, so they agree with the specs Keras
records in its files (checked in ``tests/test_keras_shapes.py`` against those files and against
Keras itself). Where Keras's symbolic answer is not what the layer returns, the rules say so:

* ``MultiHeadAttention`` attention scores: Keras says ``(batch, heads, Tq, Tq)`` whatever the
  key length or ``attention_axes``; the layer returns ``(batch, <other axes>, heads, <query
  axes>, <key axes>)``. We give the latter: the shape is structural, downstream users need it.
* Dtypes: a layer's output is its policy's compute dtype (``mixed_float16`` -> ``float16``)
  whatever it is fed, except that ``Reshape``, ``Flatten``, ``Permute`` and ``Identity`` keep a
  non-float input's dtype. That is what Keras records; at run time most data-movement layers
  (Dropout, pooling, cropping, merges, ...) in fact hand int tensors back as int.

This module walks the graph, and holds the rules of the keras.ops operations Keras 3 records in
functional graphs (they are not layer classes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import FormatError, ModelportError, UnsupportedError
from ..registry import Registry
from . import Layer, LayersModel, TensorRef
from .keras_constants import numpy_value
from .layer_facts import SHAPE_RULES, TensorSpec, shape_rule
from .layer_facts.helpers import MAX_DIM, broadcast, sized

__all__ = ["MAX_DIM", "OPERATIONS", "RULES", "Key", "TensorSpec", "infer", "input_specs",
           "output_specs"]

Key = tuple  # (layer name, node index, tensor index)
RULES = SHAPE_RULES  # every class's shape rule, read from its facts


# --- public API ---------------------------------------------------------------------------------

def infer(model: LayersModel, input_shapes: dict[str, tuple] | None = None
          ) -> dict[Key, TensorSpec]:
    """Spec of every tensor of ``model`` (nested models' inner tensors excepted).

    ``input_shapes`` maps an input layer's name to a full shape (batch included, ``None`` where
    left open) or a ``TensorSpec``; it may only fill in what the model leaves unknown. A
    ``Sequential`` model without an ``InputLayer`` takes its input under its first layer's name.
    """
    return _infer(model, None, dict(input_shapes or {}))[0]


def input_specs(model: LayersModel, input_shapes: dict[str, tuple] | None = None
                ) -> list[TensorSpec]:
    """Specs of the model's inputs, in order."""
    return _infer(model, None, dict(input_shapes or {}))[1]


def output_specs(model: LayersModel, input_shapes: dict[str, tuple] | None = None
                 ) -> list[TensorSpec]:
    """Specs of the model's outputs, in order."""
    return _infer(model, None, dict(input_shapes or {}))[2]


# --- graph walk ---------------------------------------------------------------------------------

Result = tuple[dict[Key, TensorSpec], list[TensorSpec], list[TensorSpec]]


def _infer(model: LayersModel, feed: list[TensorSpec] | None, input_shapes: dict) -> Result:
    """(all specs, input specs, output specs); ``feed`` is what a nested model is called on."""
    if not model.layers:
        raise FormatError(f"model {model.name!r} has no layers")
    if model.kind == "Sequential":
        return _infer_sequential(model, feed, input_shapes)
    return _infer_functional(model, feed, input_shapes)


def _infer_sequential(model: LayersModel, feed: list[TensorSpec] | None,
                      input_shapes: dict) -> Result:
    specs: dict[Key, TensorSpec] = {}
    first, rest = model.layers[0], model.layers
    _check_names(input_shapes, [first.name])
    if feed is not None and len(feed) != 1:
        raise FormatError(f"Sequential model {model.name!r} is called on {len(feed)} tensors")
    if first.class_name == "InputLayer":
        spec = _input_layer_spec(first, input_shapes.get(first.name))
        if feed is not None:  # Keras converts a nested model's inputs to its own Input dtypes
            spec = TensorSpec(feed[0].shape, spec.dtype)
        specs[(first.name, 0, 0)] = spec
        rest = model.layers[1:]
    elif feed is not None:
        spec = feed[0]
    elif first.name in input_shapes:
        spec = _given_spec(first.name, input_shapes[first.name], None)
    else:
        raise UnsupportedError(
            f"Sequential model {model.name!r} has no InputLayer, so its input shape is unknown",
            layer=first.name, hint=f"pass input_shapes={{{first.name!r}: (None, ...)}}")
    inputs = [spec]
    for layer in rest:
        outs = _apply(layer, 0, [spec], {})
        if len(outs) != 1:
            raise UnsupportedError(f"{layer.class_name} returns {len(outs)} tensors; a Sequential "
                                   "model passes exactly one from layer to layer", layer=layer.name)
        spec = specs[(layer.name, 0, 0)] = outs[0]
    return specs, inputs, [spec]


def _infer_functional(model: LayersModel, feed: list[TensorSpec] | None,
                      input_shapes: dict) -> Result:
    specs: dict[Key, TensorSpec] = {}
    input_layers = [layer for layer in model.layers if layer.class_name == "InputLayer"]
    _check_names(input_shapes, [layer.name for layer in input_layers])
    if feed is not None and len(feed) != len(model.inputs):
        raise FormatError(f"nested model {model.name!r} is called on {len(feed)} tensors but "
                          f"has {len(model.inputs)} inputs")
    for layer in input_layers:
        specs[(layer.name, 0, 0)] = _input_layer_spec(layer, input_shapes.get(layer.name))
    for i, ref in enumerate(model.inputs):
        if _key(ref) not in specs:
            raise FormatError(f"input {ref.as_list()} of model {model.name!r} is not an InputLayer")
        if feed is not None:  # Keras converts a nested model's inputs to its own Input dtypes
            specs[_key(ref)] = TensorSpec(feed[i].shape, specs[_key(ref)].dtype)

    # Shared layers can make a node wait for a layer listed after it: resolve in dependency
    # order rather than list order, without recursion (deep models would hit Python's limit).
    pending = [(layer, k) for layer in model.layers if layer.class_name != "InputLayer"
               for k in range(len(layer.inbound_nodes))]
    while pending:
        waiting = []
        for layer, k in pending:
            node = layer.inbound_nodes[k]
            if not all(_key(r) in specs for r in node.inputs()):
                waiting.append((layer, k))
                continue
            args, kwargs = _substitute(node.args, specs), _substitute(node.kwargs, specs)
            outs = _apply_operation(layer, args) if layer.is_operation else \
                _apply(layer, k, _flat_specs(args), kwargs)
            for i, out in enumerate(outs):
                specs[(layer.name, k, i)] = out
        if len(waiting) == len(pending):
            layer, k = waiting[0]
            missing = [r.as_list() for r in layer.inbound_nodes[k].inputs() if _key(r) not in specs]
            raise FormatError(f"node {k} waits on tensors that are never produced (a missing "
                              f"layer, a cycle or a bad index): {missing}", layer=layer.name)
        pending = waiting
    for ref in model.outputs:
        if _key(ref) not in specs:
            raise FormatError(f"output {ref.as_list()} of model {model.name!r} is never produced")
    return (specs, [specs[_key(r)] for r in model.inputs],
            [specs[_key(r)] for r in model.outputs])


def _apply(layer: Layer, node: int, inputs: list[TensorSpec], kwargs: dict) -> list[TensorSpec]:
    if layer.model is not None:
        try:
            return _infer(layer.model, inputs, {})[2]
        except ModelportError as e:
            _attach_layer(e, f"{layer.name}/{e.layer}" if e.layer else layer.name)
            raise
    rule = shape_rule(layer.class_name, layer.name)
    try:
        return sized(rule(layer.config, inputs, kwargs), f"{layer.class_name} node {node}")
    except ModelportError as e:
        if e.layer is None:
            _attach_layer(e, layer.name)
        raise
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise FormatError(f"{layer.class_name} node {node}: cannot infer its output from its "
                          f"config and inputs {[s.shape for s in inputs]} "
                          f"({type(e).__name__}: {e})", layer=layer.name) from e


def _attach_layer(error: ModelportError, name: str) -> None:
    error.layer = name
    error.args = (str(error),)


def _key(ref: TensorRef) -> Key:
    return (ref.layer, ref.node, ref.tensor)


def _substitute(obj: Any, specs: dict) -> Any:
    if isinstance(obj, TensorRef):
        return specs[_key(obj)]
    array = numpy_value(obj)  # an operation's NumPy operand: a tensor of its shape to Keras
    if array is not None:
        return TensorSpec(tuple(array.shape), str(array.dtype))
    if isinstance(obj, dict):
        return {k: _substitute(v, specs) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_substitute(v, specs) for v in obj]
    return obj


def _flat_specs(obj: Any) -> list[TensorSpec]:
    if isinstance(obj, TensorSpec):
        return [obj]
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else []
    return [s for v in items for s in _flat_specs(v)]


def _check_names(input_shapes: dict, known: list[str]) -> None:
    unknown = sorted(set(input_shapes) - set(known))
    if unknown:
        raise ValueError(f"input_shapes names {unknown} are not inputs of the model; its inputs "
                         f"are {known}")


def _given_spec(name: str, given: Any, declared: TensorSpec | None) -> TensorSpec:
    dtype = declared.dtype if declared is not None else "float32"
    if isinstance(given, TensorSpec):
        given, dtype = given.shape, given.dtype
    shape = tuple(None if d is None else int(d) for d in given)
    if declared is not None:
        if len(shape) != len(declared.shape) or any(
                c is not None and g is not None and c != g for c, g in zip(declared.shape, shape)):
            raise ValueError(f"input shape {shape} given for {name!r} does not fit its declared "
                             f"shape {declared.shape}")
        shape = tuple(c if g is None else g for c, g in zip(declared.shape, shape))
    return TensorSpec(shape, dtype)


def _input_layer_spec(layer: Layer, given: Any) -> TensorSpec:
    spec = shape_rule("InputLayer")(layer.config, [], {})[0]
    return spec if given is None else _given_spec(layer.name, given, spec)


# --- keras.ops nodes ----------------------------------------------------------------------------
# Keras 3 records mask computations and Python arithmetic on Keras tensors as operation nodes
# (``NotEqual(ids, 0)``, ``x + 3.0``). Their positional args mix tensors and Python scalars.

OperationRule = Callable[[dict, list[TensorSpec]], "TensorSpec | list[TensorSpec]"]
# Every keras.ops operation with a shape rule: rule(config, tensor operands) -> output spec.
OPERATIONS: Registry[OperationRule] = Registry("Keras operation shape rule")


def _apply_operation(layer: Layer, args: list) -> list[TensorSpec]:
    tensors = _flat_specs(args)
    if not tensors:
        raise UnsupportedError(f"operation {layer.class_name} has no tensor operand",
                               layer=layer.name)
    rule = OPERATIONS.get(layer.class_name)
    if rule is None:
        raise UnsupportedError(f"no shape rule for the keras.ops operation {layer.class_name!r}",
                               layer=layer.name)
    out = rule(layer.config, tensors)
    return out if isinstance(out, list) else [out]  # a list: an operation of several outputs


def _broadcast_all(tensors: list[TensorSpec]) -> tuple:
    shape = tensors[0].shape
    for t in tensors[1:]:
        shape = broadcast(shape, t.shape)
    return shape


@OPERATIONS.register("NotEqual", "Equal", "Greater", "GreaterEqual", "Less", "LessEqual",
                     "LogicalAnd", "LogicalOr", "LogicalXor")
def _compare(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    return TensorSpec(_broadcast_all(tensors), "bool")


@OPERATIONS.register("Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum",
                     "Minimum", "Power", "Mod")
def _arithmetic(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    floats = [t.dtype for t in tensors if t.dtype.startswith(("float", "bfloat"))]
    return TensorSpec(_broadcast_all(tensors), floats[0] if floats else tensors[0].dtype)


@OPERATIONS.register("Negative", "ZerosLike", "OnesLike", "Abs", "Sqrt", "Exp", "Relu",
                     "Sigmoid", "Tanh", "ConvertToTensor", "Log", "Round", "Floor", "Ceil",
                     "Reciprocal")
def _same(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    return TensorSpec(tensors[0].shape, cfg.get("dtype") or tensors[0].dtype)


@OPERATIONS.register("Matmul")
def _matmul(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    a, b = tensors[0], tensors[1]
    lead = broadcast(a.shape[:-2], b.shape[:-2])
    return TensorSpec(tuple(lead) + (a.shape[-2], b.shape[-1]), a.dtype)


@OPERATIONS.register("LogicalNot")
def _logical_not(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    return TensorSpec(tensors[0].shape, "bool")


@OPERATIONS.register("Concatenate")
def _concatenate(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    x = tensors[0]
    axis = int(cfg.get("axis", 0)) % len(x.shape)
    sizes = [t.shape[axis] for t in tensors]
    total = None if any(d is None for d in sizes) else sum(d for d in sizes if d is not None)
    return TensorSpec(x.shape[:axis] + (total,) + x.shape[axis + 1:], x.dtype)


@OPERATIONS.register("Cast")
def _cast(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    return TensorSpec(tensors[0].shape, cfg["dtype"])


def _op_axes(cfg: dict, rank: int) -> list[int]:
    """An operation's ``axis`` (an int or a list) as non-negative axes."""
    axis: Any = cfg["axis"]
    return [a % rank for a in (axis if isinstance(axis, (list, tuple)) else [axis])]


@OPERATIONS.register("Any", "All")
def _reduce_bool(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    x = tensors[0]
    rank = len(x.shape)
    axes = list(range(rank)) if cfg.get("axis") is None else _op_axes(cfg, rank)
    if cfg.get("keepdims"):
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    else:
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    return TensorSpec(shape, "bool")


@OPERATIONS.register("Min", "Max", "Sum", "Mean")
def _reduce(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    return TensorSpec(_reduce_bool(cfg, tensors).shape, tensors[0].dtype)


@OPERATIONS.register("Where")
def _where(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    values = tensors[1:] or tensors  # the condition's dtype is not the result's
    return TensorSpec(_broadcast_all(tensors), values[0].dtype)


@OPERATIONS.register("Pad")
def _pad(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    x = tensors[0]
    pads = cfg["pad_width"]
    pads = pads * len(x.shape) if len(pads) == 1 else pads
    return TensorSpec(tuple(None if d is None else d + int(lo) + int(hi)
                            for d, (lo, hi) in zip(x.shape, pads)), x.dtype)


@OPERATIONS.register("Argmax", "Argmin")
def _arg_reduce(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    return TensorSpec(_reduce_bool(cfg, tensors).shape, "int32")


@OPERATIONS.register("ExpandDims")
def _expand_dims(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    x = tensors[0]
    axis = int(cfg["axis"]) % (len(x.shape) + 1)
    return TensorSpec(x.shape[:axis] + (1,) + x.shape[axis:], x.dtype)


@OPERATIONS.register("Squeeze")
def _squeeze(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    x = tensors[0]
    axes = [i for i, d in enumerate(x.shape) if d == 1] if cfg.get("axis") is None else \
        _op_axes(cfg, len(x.shape))
    return TensorSpec(tuple(d for i, d in enumerate(x.shape) if i not in axes), x.dtype)


@OPERATIONS.register("TopK")
def _top_k(cfg: dict, tensors: list[TensorSpec]) -> list[TensorSpec]:
    """``ops.top_k``: the values and their int32 indices, ``k`` along the last axis."""
    x = tensors[0]
    shape = x.shape[:-1] + (int(cfg["k"]),)
    return [TensorSpec(shape, x.dtype), TensorSpec(shape, "int32")]


@OPERATIONS.register("TakeAlongAxis")
def _take_along_axis(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    """``ops.take_along_axis``: the indices' size on ``axis``, the others broadcast."""
    x, indices = tensors[0], tensors[1]
    axis = int(cfg["axis"]) % len(x.shape)
    ones = [tuple(1 if k == axis else d for k, d in enumerate(t.shape)) for t in (x, indices)]
    shape = list(broadcast(*ones))
    shape[axis] = indices.shape[axis]
    return TensorSpec(tuple(shape), x.dtype)


@OPERATIONS.register("Take")
def _take(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    """``ops.take(x, i, axis)`` with a Python int ``i`` (a tensor ``i`` would be the second
    operand): the axis removed, or replaced by ``i``'s shape."""
    x = tensors[0]
    axis = int(cfg["axis"]) % len(x.shape)
    middle = tensors[1].shape if len(tensors) > 1 else ()
    return TensorSpec(x.shape[:axis] + tuple(middle) + x.shape[axis + 1:], x.dtype)


@OPERATIONS.register("Reshape")
def _reshape_op(cfg: dict, tensors: list[TensorSpec]) -> TensorSpec:
    """``ops.reshape(x, newshape)``: the whole shape, batch axis included (one -1 inferred
    where the input's size is known)."""
    x = tensors[0]
    shape = [int(d) for d in cfg["newshape"]]
    if -1 in shape:
        known = [d for d in x.shape if d is not None]
        rest = 1
        for d in shape:
            rest *= d if d != -1 else 1
        size = 1
        for d in known:
            size *= d
        fill = size // rest if len(known) == len(x.shape) and rest else None
        return TensorSpec(tuple(fill if d == -1 else d for d in shape), x.dtype)
    return TensorSpec(tuple(shape), x.dtype)
