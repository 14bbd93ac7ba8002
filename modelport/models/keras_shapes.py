"""Static shape and dtype inference over a canonical ``LayersModel`` (no Keras, no TensorFlow).

``infer`` gives every symbolic tensor a ``TensorSpec``, keyed by ``(layer, node, tensor)`` like
``TensorRef``. Each layer class has one rule in ``RULES``: ``rule(config, input specs, call
kwargs) -> output specs``. The rules follow Keras 3's ``compute_output_shape``/
``compute_output_spec``, so they agree with the specs Keras records in its files (checked in
``tests/test_keras_shapes.py`` against those files and against Keras itself). Where Keras's
symbolic answer is not what the layer returns, this module says so:

* ``MultiHeadAttention`` attention scores: Keras says ``(batch, heads, Tq, Tq)`` whatever the
  key length or ``attention_axes``; the layer returns ``(batch, <other axes>, heads, <query
  axes>, <key axes>)``. We give the latter: the shape is structural, downstream users need it.
* Dtypes: a layer's output is its policy's compute dtype (``mixed_float16`` -> ``float16``)
  whatever it is fed, except that ``Reshape``, ``Flatten``, ``Permute`` and ``Identity`` keep a
  non-float input's dtype. That is what Keras records; at run time most data-movement layers
  (Dropout, pooling, cropping, merges, ...) in fact hand int tensors back as int.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..errors import FormatError, ModelportError, UnsupportedError
from ..registry import Registry
from . import Layer, LayersModel, TensorRef

Key = tuple  # (layer name, node index, tensor index)


@dataclass(frozen=True)
class TensorSpec:
    """Shape (``None`` where unknown, e.g. the batch) and dtype name of a symbolic tensor."""

    shape: tuple[int | None, ...]
    dtype: str


Rule = Callable[[dict, list[TensorSpec], dict], list[TensorSpec]]
RULES: Registry[Rule] = Registry("Keras shape rule")


def register(*class_names: str, **bound: Any) -> Callable[[Callable], Callable]:
    """Register a rule for ``class_names``; ``bound`` keyword arguments are fixed for them."""
    def deco(fn: Callable) -> Callable:
        for name in class_names:
            RULES.add(name, partial(fn, **bound) if bound else fn)
        return fn
    return deco


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
    rule = _rule(layer.class_name, layer.name)
    try:
        return _sized(rule(layer.config, inputs, kwargs), f"{layer.class_name} node {node}")
    except ModelportError as e:
        if e.layer is None:
            _attach_layer(e, layer.name)
        raise
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise FormatError(f"{layer.class_name} node {node}: cannot infer its output from its "
                          f"config and inputs {[s.shape for s in inputs]} "
                          f"({type(e).__name__}: {e})", layer=layer.name) from e


# What ONNX (int64 dims) and every array library can hold; a config that asks for more (or for a
# negative size) is refused here, not by the writer of the converted file.
MAX_DIM = 2**63 - 1


def _sized(specs: list[TensorSpec], what: str) -> list[TensorSpec]:
    for spec in specs:
        for d in spec.shape:
            if d is not None and not 0 <= d <= MAX_DIM:
                raise FormatError(f"{what}: a dimension of {d} in shape {list(spec.shape)} "
                                  "(sizes are 0 to 2**63-1)")
    return specs


def _rule(class_name: str, layer_name: str | None) -> Rule:
    if class_name not in RULES:
        raise UnsupportedError(f"no shape rule for layer class {class_name!r}", layer=layer_name,
                               hint=f"supported: {', '.join(sorted(RULES))}")
    return RULES[class_name]


def _attach_layer(error: ModelportError, name: str) -> None:
    error.layer = name
    error.args = (str(error),)


def _key(ref: TensorRef) -> Key:
    return (ref.layer, ref.node, ref.tensor)


def _substitute(obj: Any, specs: dict) -> Any:
    if isinstance(obj, TensorRef):
        return specs[_key(obj)]
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
    spec = _input_layer(layer.config, [], {})[0]
    return spec if given is None else _given_spec(layer.name, given, spec)


# --- shared helpers for rules -------------------------------------------------------------------

def _compute_dtype(cfg: dict) -> str:
    name = cfg.get("dtype") or "float32"
    if isinstance(name, dict):  # a policy object that escaped canonicalisation
        name = (name.get("config") or {}).get("name", "float32")
    if not isinstance(name, str):
        raise FormatError(f"dtype {name!r} is not a dtype name")
    if "_from_" in name:  # quantized policies ("int8_from_mixed_bfloat16") compute in their source
        name = name.split("_from_", 1)[1]
    return {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}.get(name, name)


def _out(cfg: dict, shape: tuple | list) -> list[TensorSpec]:
    return [TensorSpec(tuple(shape), _compute_dtype(cfg))]


def _one(inputs: list[TensorSpec], rank: int | None = None, *, min_rank: int = 0) -> TensorSpec:
    if not inputs:
        raise FormatError("the layer is called on no tensor")
    x = inputs[0]
    if (rank is not None and len(x.shape) != rank) or len(x.shape) < min_rank:
        want = f"rank {rank}" if rank is not None else f"rank >= {min_rank}"
        raise FormatError(f"expects an input of {want}, got shape {x.shape}")
    return x


def _ints(value: Any, n: int) -> tuple[int, ...]:
    """Keras's ``standardize_tuple``: an int, or a list of ``n`` ints."""
    out = (int(value),) * n if isinstance(value, int) else tuple(int(v) for v in value)
    if len(out) != n:
        raise FormatError(f"expected {n} values, got {value}")
    return out


def _pairs(value: Any, n: int) -> tuple[tuple[int, int], ...]:
    """Padding or cropping amounts: int, ``n`` ints (symmetric), or ``n`` (before, after) pairs."""
    if isinstance(value, int):
        return ((value, value),) * n
    value = list(value)
    if n == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
        return ((value[0], value[1]),)  # the 1D form is a single (before, after) pair
    if len(value) != n:
        raise FormatError(f"expected {n} (before, after) amounts, got {value}")
    return tuple((v, v) if isinstance(v, int) else (int(v[0]), int(v[1])) for v in value)


def _channels_first(cfg: dict) -> bool:
    return cfg.get("data_format") == "channels_first"


def _positive(d: int, what: str) -> int:
    if d <= 0:
        raise FormatError(f"{what} would leave a dimension of size {d}")
    return d


def _per_axis(cfg: dict, inputs: list, n: int, size: Callable[[int, int], int],
              channels: Callable[[Any], Any] = lambda c: c) -> list[TensorSpec]:
    """Spatial layers: ``size(d, axis)`` for each known spatial size, ``channels(c)``."""
    x = _one(inputs, n + 2)
    cf = _channels_first(cfg)
    spatial = x.shape[2:] if cf else x.shape[1:-1]
    c = channels(x.shape[1] if cf else x.shape[-1])
    out = tuple(None if d is None else size(d, i) for i, d in enumerate(spatial))
    return _out(cfg, (x.shape[0], c, *out) if cf else (x.shape[0], *out, c))


# --- core ---------------------------------------------------------------------------------------

@register("InputLayer")
def _input_layer(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    shape = cfg.get("batch_shape")
    if shape is None:
        raise FormatError("InputLayer has no batch_shape")
    dtype = cfg.get("dtype") or "float32"
    if not isinstance(dtype, str):
        raise FormatError(f"InputLayer dtype {dtype!r} is not a dtype name")
    return _sized([TensorSpec(tuple(None if d is None else int(d) for d in shape), dtype)],
                  "InputLayer")


@register("Dense")
def _dense(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    return _out(cfg, _one(inputs, min_rank=1).shape[:-1] + (int(cfg["units"]),))


@register("Activation", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
          "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Masking",
          "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
          "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "ThresholdedReLU", "Rescaling",
          "Normalization", "modelport>LocalResponseNormalization")
def _same_shape(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    return _out(cfg, _one(inputs).shape)


def _moved(cfg: dict, x: TensorSpec, shape: tuple) -> list[TensorSpec]:
    # Only floats are autocast on the way in; these layers hand back what they were given.
    return [TensorSpec(tuple(shape), _compute_dtype(cfg) if "float" in x.dtype else x.dtype)]


@register("Identity")
def _identity(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    return _moved(cfg, _one(inputs), _one(inputs).shape)


@register("Flatten")
def _flatten(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    x = _one(inputs, min_rank=1)
    size = None if None in x.shape[1:] else math.prod(x.shape[1:])  # rank 1 -> (batch, 1)
    return _moved(cfg, x, (x.shape[0], size))


@register("Reshape")
def _reshape(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    x = _one(inputs, min_rank=1)
    target, rest = [int(d) for d in cfg["target_shape"]], x.shape[1:]
    if target.count(-1) > 1:
        raise FormatError(f"target_shape {target} has more than one -1")
    if None in rest:  # Keras leaves -1 unresolved when any input dimension is unknown
        return _moved(cfg, x, (x.shape[0], *(None if d == -1 else d for d in target)))
    size, known = math.prod(rest), math.prod(d for d in target if d != -1)
    if -1 in target and known and size % known == 0:
        target[target.index(-1)] = size // known
    if math.prod(target) != size:
        raise FormatError(f"cannot reshape {rest} ({size} values) to {cfg['target_shape']}")
    return _moved(cfg, x, (x.shape[0], *target))


@register("Permute")
def _permute(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    x = _one(inputs)
    dims = [int(d) for d in cfg["dims"]]
    if sorted(dims) != list(range(1, len(x.shape))):
        raise FormatError(f"dims {dims} is not a permutation of the axes of {x.shape}")
    return _moved(cfg, x, (x.shape[0], *(x.shape[d] for d in dims)))


@register("RepeatVector")
def _repeat_vector(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    x = _one(inputs, 2)
    return _out(cfg, (x.shape[0], int(cfg["n"]), x.shape[1]))


@register("Embedding")
def _embedding(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    # Integer ids in, vectors out: the compute dtype, never the ids' dtype.
    return _out(cfg, _one(inputs).shape + (int(cfg["output_dim"]),))


@register("Lambda")
def _lambda(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    raise UnsupportedError("Lambda: its output shape is whatever its Python code returns; "
                           "static inference cannot know it")


# --- convolution and pooling --------------------------------------------------------------------

def _window(cfg: dict, kernel: tuple, strides: tuple,
            dilation: tuple) -> Callable[[int, int], int]:
    """``size(d, axis)`` of a sliding window (convolution or pooling)."""
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same", "causal"):
        raise FormatError(f"padding {padding!r} is not valid, same or causal")

    def size(d: int, i: int) -> int:
        if padding == "valid":
            span = dilation[i] * (kernel[i] - 1) + 1
            return _positive((d - span) // strides[i] + 1, "the window")
        return (d - 1) // strides[i] + 1  # causal pads on the left only, by as much as same
    return size


def _conv_window(cfg: dict, n: int) -> Callable[[int, int], int]:
    return _window(cfg, _ints(cfg["kernel_size"], n), _ints(cfg.get("strides", 1), n),
                   _ints(cfg.get("dilation_rate", 1), n))


@register("Conv1D", "SeparableConv1D", n=1)
@register("Conv2D", "SeparableConv2D", n=2)
@register("Conv3D", n=3)
def _conv(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    # groups splits the channels but never changes the output's: filters is the output width.
    return _per_axis(cfg, inputs, n, _conv_window(cfg, n), lambda c: int(cfg["filters"]))


@register("DepthwiseConv1D", n=1)
@register("DepthwiseConv2D", n=2)
def _depthwise_conv(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    multiplier = int(cfg.get("depth_multiplier", 1))
    return _per_axis(cfg, inputs, n, _conv_window(cfg, n),
                     lambda c: None if c is None else c * multiplier)


@register("Conv1DTranspose", n=1)
@register("Conv2DTranspose", n=2)
@register("Conv3DTranspose", n=3)
def _conv_transpose(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    s, d = _ints(cfg.get("strides", 1), n), _ints(cfg.get("dilation_rate", 1), n)
    k = [(ki - 1) * di + 1 for ki, di in zip(_ints(cfg["kernel_size"], n), d)]
    pads = None if cfg.get("output_padding") is None else _ints(cfg["output_padding"], n)
    same = str(cfg.get("padding", "valid")).lower() == "same"

    def size(x: int, i: int) -> int:
        # Keras's deconv length; "same" with output_padding uses k % 2 (not k - 1 - 2 (k // 2)).
        if same:
            return x * s[i] if pads is None else (x - 1) * s[i] + k[i] % 2 + pads[i]
        return (x - 1) * s[i] + k[i] + (max(k[i], s[i]) - k[i] if pads is None else pads[i])
    return _per_axis(cfg, inputs, n, size, lambda c: int(cfg["filters"]))


@register("MaxPooling1D", "AveragePooling1D", n=1)
@register("MaxPooling2D", "AveragePooling2D", n=2)
@register("MaxPooling3D", "AveragePooling3D", n=3)
def _pooling(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    pool = _ints(cfg.get("pool_size", 2), n)
    strides = pool if cfg.get("strides") is None else _ints(cfg["strides"], n)
    return _per_axis(cfg, inputs, n, _window(cfg, pool, strides, (1,) * n))


@register("GlobalMaxPooling1D", "GlobalAveragePooling1D", n=1)
@register("GlobalMaxPooling2D", "GlobalAveragePooling2D", n=2)
@register("GlobalMaxPooling3D", "GlobalAveragePooling3D", n=3)
def _global_pooling(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    x = _one(inputs, n + 2)
    c = x.shape[1] if _channels_first(cfg) else x.shape[-1]
    if not cfg.get("keepdims"):
        return _out(cfg, (x.shape[0], c))
    return _out(cfg, (x.shape[0], c, *(1,) * n) if _channels_first(cfg) else
                (x.shape[0], *(1,) * n, c))  # 1 even where the input size is unknown


@register("Cropping1D", n=1)
@register("Cropping2D", n=2)
@register("Cropping3D", n=3)
def _cropping(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    crops = _pairs(cfg.get("cropping", 1), n)
    return _per_axis(cfg, inputs, n, lambda d, i: _positive(d - sum(crops[i]), "cropping"))


@register("ZeroPadding1D", n=1)
@register("ZeroPadding2D", n=2)
@register("ZeroPadding3D", n=3)
def _zero_padding(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    pads = _pairs(cfg.get("padding", 1), n)
    return _per_axis(cfg, inputs, n, lambda d, i: d + sum(pads[i]))


@register("UpSampling1D", n=1)
@register("UpSampling2D", n=2)
@register("UpSampling3D", n=3)
def _upsampling(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    factors = _ints(cfg.get("size", 2), n)
    return _per_axis(cfg, inputs, n, lambda d, i: d * factors[i])


@register("CenterCrop", "Resizing")
def _image_resize(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    shape = list(_one(inputs).shape)
    if len(shape) not in (3, 4):
        raise FormatError(f"expects an image batch (rank 4) or one image (rank 3), got {shape}")
    # Keras reads a rank-3 tensor as ONE unbatched image, even a (batch, h, w) one: mirror it.
    first = len(shape) - 3 + (1 if _channels_first(cfg) else 0)
    shape[first:first + 2] = [int(cfg["height"]), int(cfg["width"])]
    return _out(cfg, shape)


# --- merging ------------------------------------------------------------------------------------

def _broadcast(a: tuple, b: tuple) -> tuple:
    if len(a) < len(b):
        a, b = b, a
    out = list(a[:len(a) - len(b)])
    for i, j in zip(a[len(a) - len(b):], b):
        if i is not None and j is not None and 1 not in (i, j) and i != j:
            raise FormatError(f"inputs of shapes {a} and {b} do not broadcast")
        out.append(None if None in (i, j) else j if i == 1 else i)
    return tuple(out)


@register("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
def _elementwise(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    # Keras broadcasts all but the batch axis, then keeps a batch size only if all inputs agree.
    if len(inputs) < 2:
        raise FormatError(f"a merge layer needs at least 2 inputs, got {len(inputs)}")
    shape = inputs[0].shape[1:]
    for x in inputs[1:]:
        shape = _broadcast(shape, x.shape[1:])
    batches = {x.shape[0] for x in inputs} - {None}
    return _out(cfg, ((batches.pop() if len(batches) == 1 else None), *shape))


@register("Concatenate")
def _concatenate(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    axis = int(cfg.get("axis", -1))
    out = list(_one(inputs).shape)
    sizes = [x.shape[axis] for x in inputs]
    out[axis] = None if None in sizes else sum(sizes)  # other axes: the first input's, as Keras
    return _out(cfg, out)


@register("Dot")
def _dot(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    if len(inputs) != 2:
        raise FormatError(f"Dot needs exactly 2 inputs, got {len(inputs)}")
    a, b = (list(x.shape) for x in inputs)
    axes = cfg["axes"]
    if isinstance(axes, int):
        axes = [axes % len(a), axes % len(b)] if axes < 0 else [axes, axes]
    a.pop(int(axes[0]))
    b.pop(int(axes[1]))
    out = a + b[1:]  # the second batch axis pairs with the first
    return _out(cfg, out + [1] if len(out) == 1 else out)


# --- recurrent ----------------------------------------------------------------------------------

def _with_states(cfg: dict, out: tuple, state: tuple, count: int) -> list[TensorSpec]:
    shapes = [out] + ([state] * count if cfg.get("return_state") else [])
    return [s for shape in shapes for s in _out(cfg, shape)]


@register("SimpleRNN", "GRU", states=1)
@register("LSTM", states=2)
def _rnn(cfg: dict, inputs: list, kwargs: dict, *, states: int) -> list[TensorSpec]:
    batch, steps, _ = _one(inputs, 3).shape
    units = int(cfg["units"])
    out = (batch, steps, units) if cfg.get("return_sequences") else (batch, units)
    return _with_states(cfg, out, (batch, units), states)


@register("ConvLSTM1D", n=1)
@register("ConvLSTM2D", n=2)
@register("ConvLSTM3D", n=3)
def _conv_lstm(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    x = _one(inputs, n + 3)
    one_step = [TensorSpec((x.shape[0], *x.shape[2:]), x.dtype)]
    step = _conv(cfg, one_step, {}, n=n)[0].shape
    out = (step[0], x.shape[1], *step[1:]) if cfg.get("return_sequences") else step
    return _with_states(cfg, out, step, 2)  # (h, c), each shaped like one step's output


def _inner(entry: dict, inputs: list[TensorSpec]) -> list[TensorSpec]:
    """Outputs of a wrapped layer given as ``{"class_name", "config"}``."""
    cfg = entry["config"]
    return _rule(entry["class_name"], cfg.get("name"))(cfg, inputs, {})


@register("Bidirectional")
def _bidirectional(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    x = _one(inputs)
    fwd = _inner(cfg["layer"], [x])
    bwd = _inner(cfg.get("backward_layer") or cfg["layer"], [x])
    mode, f, b = cfg.get("merge_mode", "concat"), fwd[0], bwd[0]
    if mode == "concat":
        last = None if None in (f.shape[-1], b.shape[-1]) else f.shape[-1] + b.shape[-1]
        merged = [TensorSpec(f.shape[:-1] + (last,), f.dtype)]
    elif mode in ("sum", "mul", "ave", None):
        merged = [f] if mode else [f, b]
    else:
        raise FormatError(f"merge_mode {mode!r} is not concat, sum, mul, ave or None")
    return merged + fwd[1:] + bwd[1:]


@register("TimeDistributed")
def _time_distributed(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    x = _one(inputs, min_rank=3)
    dtype = _compute_dtype(cfg) if "float" in x.dtype else x.dtype  # the wrapper autocasts too
    outs = _inner(cfg["layer"], [TensorSpec((x.shape[0], *x.shape[2:]), dtype)])
    return [TensorSpec((o.shape[0], x.shape[1], *o.shape[1:]), o.dtype) for o in outs]


# --- attention ----------------------------------------------------------------------------------

@register("MultiHeadAttention")
def _multi_head_attention(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    positional = list(inputs)
    query = kwargs["query"] if "query" in kwargs else positional.pop(0)
    value = kwargs["value"] if "value" in kwargs else positional.pop(0)
    key = kwargs.get("key") or (positional.pop(0) if positional else value)
    if value.shape[1:-1] != key.shape[1:-1]:
        raise FormatError(f"value {value.shape} and key {key.shape} differ in more than the "
                          "last dimension")
    tail = cfg.get("output_shape")
    tail = query.shape[-1:] if tail is None else [tail] if isinstance(tail, int) else tail
    outs = _out(cfg, query.shape[:-1] + tuple(int(d) for d in tail))
    if not kwargs.get("return_attention_scores"):
        return outs
    # Not Keras's symbolic (batch, heads, Tq, Tq) (see the module docstring) but what it returns.
    rank = len(query.shape)
    axes = cfg.get("attention_axes")
    axes = range(1, rank - 1) if axes is None else [axes] if isinstance(axes, int) else axes
    axes = [a + rank if a < 0 else a for a in axes]
    others = [query.shape[i] for i in range(1, rank - 1) if i not in axes]
    scores = (query.shape[0], *others, int(cfg["num_heads"]), *(query.shape[a] for a in axes),
              *(key.shape[a] for a in axes))
    return outs + _out(cfg, scores)


# --- keras.ops nodes ----------------------------------------------------------------------------
# Keras 3 records mask computations and Python arithmetic on Keras tensors as operation nodes
# (``NotEqual(ids, 0)``, ``x + 3.0``). Their positional args mix tensors and Python scalars.

_COMPARE = {"NotEqual", "Equal", "Greater", "GreaterEqual", "Less", "LessEqual", "LogicalAnd",
            "LogicalOr", "LogicalXor"}
_ARITHMETIC = {"Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum",
               "Power"}
_SAME = {"Negative", "LogicalNot", "ZerosLike", "OnesLike", "Abs", "Sqrt", "Exp", "Relu",
         "Sigmoid", "Tanh"}


def _apply_operation(layer: Layer, args: list) -> list[TensorSpec]:
    tensors = _flat_specs(args)
    if not tensors:
        raise UnsupportedError(f"operation {layer.class_name} has no tensor operand",
                               layer=layer.name)
    cfg = layer.config
    op = layer.class_name
    if op in _COMPARE or op in _ARITHMETIC:
        shape = tensors[0].shape
        for t in tensors[1:]:
            shape = _broadcast(shape, t.shape)
        if op in _COMPARE:
            return [TensorSpec(shape, "bool")]
        floats = [t.dtype for t in tensors if t.dtype.startswith(("float", "bfloat"))]
        return [TensorSpec(shape, floats[0] if floats else tensors[0].dtype)]
    x = tensors[0]
    if op in _SAME:
        dtype = "bool" if op == "LogicalNot" else cfg.get("dtype") or x.dtype
        return [TensorSpec(x.shape, dtype)]
    if op == "Concatenate":
        axis = int(cfg.get("axis", 0)) % len(x.shape)
        sizes = [t.shape[axis] for t in tensors]
        total = None if any(d is None for d in sizes) else sum(sizes)
        return [TensorSpec(x.shape[:axis] + (total,) + x.shape[axis + 1:], x.dtype)]
    if op == "Cast":
        return [TensorSpec(x.shape, cfg["dtype"])]
    if op in ("Any", "All"):
        rank = len(x.shape)
        axis = cfg.get("axis")
        axes = list(range(rank)) if axis is None else [a % rank for a in (
            axis if isinstance(axis, (list, tuple)) else [axis])]
        if cfg.get("keepdims"):
            shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        return [TensorSpec(shape, "bool")]
    if op == "ExpandDims":
        axis = int(cfg["axis"]) % (len(x.shape) + 1)
        return [TensorSpec(x.shape[:axis] + (1,) + x.shape[axis:], x.dtype)]
    if op == "Squeeze":
        axis = cfg.get("axis")
        rank = len(x.shape)
        axes = [i for i, d in enumerate(x.shape) if d == 1] if axis is None else \
            [a % rank for a in (axis if isinstance(axis, (list, tuple)) else [axis])]
        return [TensorSpec(tuple(d for i, d in enumerate(x.shape) if i not in axes), x.dtype)]
    raise UnsupportedError(f"no shape rule for the keras.ops operation {op!r}", layer=layer.name)
