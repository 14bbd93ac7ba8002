"""Layers tfjs-layers 4.22 lacks, rewritten as exact compositions of layers it has.

``tfjs_support.prepare_with_notes`` runs these on its copy of a model before the layers-model
writer checks and writes it; the read-back check compares the written file with the rewritten
model, and tests/interop/test_tfjs_layers_rewrites.py runs each composition in real tfjs
against real Keras.

- an activation of Keras 3's ``hard_sigmoid`` (tfjs's is Keras 2's) -> ``Rescaling(offset=3)``,
  ``Activation("relu6")``, ``Rescaling(1/6)`` after the layer.
- ``Subtract()([a, b])`` -> ``Add()([a, Rescaling(-1)(b)])``: ``a - b`` is ``a + (-b)`` in IEEE
  arithmetic (negation is exact), so the numbers are the same.
- ``Conv1D(padding="causal")`` on a ``(steps, channels)`` input with static steps ->
  ``Reshape((steps, 1, channels))``, ``ZeroPadding2D(((dilation * (k - 1), 0), (0, 0)))``,
  ``Conv2D((k, 1), dilation (d, 1), strides (s, 1), "valid")`` with the kernel reshaped to
  ``(k, 1, channels, filters)`` (same values), and ``Reshape((out_steps, filters))``: causal
  padding is exactly "pad left by dilation * (k - 1), then valid", and a width-1 image is the
  1-D signal. tfjs-layers has no ZeroPadding1D, and its ``Conv1D`` throws on ``causal``.
- global pooling with ``keepdims=True`` (which tfjs-layers 4.22 ignores) -> the pooling
  without it, then a ``Reshape`` to the kept shape (the same values).
- ``Normalization`` over the last axis -> ``BatchNormalization`` (no centre or scale, epsilon
  0) holding the mean and the variance floored at Keras's epsilon squared.
- ``ELU(alpha)`` with alpha other than 1 (tfjs-layers refuses it) -> ``relu(x) + alpha *
  min(ELU(x), 0)`` from ELU, Rescaling, Activation and Add layers.
- ``ZeroPadding1D`` on a static ``(steps, channels)`` input -> ``Reshape``, ``ZeroPadding2D``,
  ``Reshape`` (the same values: zeros added, nothing computed).
- ``BatchNormalization`` or ``Softmax`` over one axis other than the last, on an input of
  known rank -> ``Permute`` (the axis moved last), the layer with ``axis=-1``, ``Permute``
  back: tfjs's CPU batchNorm kernel walks its mean, variance, gamma and beta cyclically over
  the flat input, so only the last axis gets its own statistics (wrong numbers, no error), and
  tfjs-core's softmax throws on any axis but the last. The same arithmetic on each element;
  transposes are exact.
- a call that reads one computed tensor more than once (``Multiply([r, r])``): each read after
  the first goes through a ``Reshape`` of the tensor to its own shape (a ``Permute`` that keeps
  the axes where a size is unknown). tfjs-layers 4.22's executor counts a tensor's readers by
  layer but counts down once per read, so it disposes the tensor while a later layer still
  needs it ("Tensor is disposed", "Cannot read properties of undefined (reading 'backend')");
  the copy is a tensor of its own with the same values.

The layer keeps its name where it holds weights (the Conv2D, the Add), so the weight names in the
manifest stay ``<layer>/kernel``; the layers added are named after it.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..errors import UnsupportedError
from . import Layer, LayersModel, Node, TensorRef, Weight
from .layer_facts.base import TensorSpec

# the graph's tensor shapes by (layer, node, tensor), plus the aliases the rewrites add
Specs = dict[Any, TensorSpec]
# the key, in ``rewrite``'s copy of the specs, of a Sequential layer's input
_SEQUENTIAL_INPUT = "sequential input of"


def rewrite(model: LayersModel, specs: Mapping[tuple, TensorSpec]) -> list[str]:
    """Rewrite ``model``'s layers tfjs-layers lacks, in place (``model`` and its ``layers`` list
    are the caller's copies; the layers replaced are not mutated), one note per rewrite."""
    notes: list[str] = []
    taken = {layer.name for layer in model.iter_layers()}
    # a copy: a layer added reads or stands for a tensor under a new name (see ``_alias``)
    shapes: Specs = dict(specs)
    notes += _split_activations(model, taken, shapes)
    if model.kind == "Sequential" and any(_needs_graph(layer) for layer in model.layers):
        _make_functional(model)
    if model.kind == "Sequential":  # each layer reads the one before it, as first listed
        for before, after in itertools.pairwise(model.layers):
            if (before.name, 0, 0) in shapes:
                shapes[_SEQUENTIAL_INPUT, after.name] = shapes[(before.name, 0, 0)]
    for name in [layer.name for layer in model.layers]:
        # by name: a rewrite before may have given this layer new nodes (a new object)
        found = next((x for x in model.layers if x.name == name), None)
        if found is None or found.model is not None:
            continue
        rule = _RULES.get(found.class_name)
        if rule is None:
            continue
        done = rule(model, found, shapes, taken)
        if done is not None:
            notes.append(done)
    # last: the compositions above may read a tensor in several places too
    notes += _repeated_inputs(model, shapes, taken)
    return notes


def _needs_graph(layer: Layer) -> bool:
    """Whether ``layer``'s rewrite branches (a Sequential model cannot hold it)."""
    if layer.class_name == "ELU":
        return _elu_alpha(layer) is not None
    return layer.class_name == "UpSampling2D" and layer.config.get("interpolation") == "bilinear"


def _make_functional(model: LayersModel) -> None:
    """``model`` (a Sequential stack starting with its InputLayer) as the same Functional
    graph: each layer called once on the one before."""
    if not model.layers or model.layers[0].class_name != "InputLayer":
        return
    for before, layer in zip(model.layers, model.layers[1:]):
        layer.inbound_nodes = [Node([TensorRef(before.name, 0, 0)])]
    model.kind = "Functional"
    model.inputs = [TensorRef(model.layers[0].name, 0, 0)]
    model.outputs = [TensorRef(model.layers[-1].name, 0, 0)]
    model.config = {k: v for k, v in model.config.items() if k not in ("build_input_shape",
                                                                       "dtype")}


def _unique(base: str, taken: set[str]) -> str:
    name, i = base, 1
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name


def _plain(layer: Layer, class_name: str, name: str, **config: Any) -> Layer:
    """A weightless layer with ``layer``'s dtype and trainability."""
    base = {"name": name, "trainable": layer.config.get("trainable", True),
            "dtype": layer.config.get("dtype", "float32")}
    return Layer(class_name, name, {**base, **config})


def _replace(model: LayersModel, old: Layer, new: list[Layer]) -> None:
    i = model.layers.index(old)
    model.layers[i:i + 1] = new


def _alias(specs: dict, source: str, target: str) -> None:
    """``target``'s outputs have ``source``'s shapes (it computes them in ``source``'s stead), so
    that a rule for a layer after it still finds its input's shape."""
    for key in [k for k in specs if isinstance(k, tuple) and k and k[0] == source]:
        specs[(target,) + tuple(key[1:])] = specs[key]


def _redirect(model: LayersModel, source: str, target: str, skip: set[str],
              specs: dict) -> None:
    """Every reference to ``source``'s outputs now reads ``target``'s (same node and tensor):
    the layers that read them get new nodes (the caller's originals are left alone)."""
    _alias(specs, source, target)
    def moved(obj: Any) -> Any:
        if isinstance(obj, TensorRef):
            return TensorRef(target, obj.node, obj.tensor) if obj.layer == source else obj
        if isinstance(obj, dict):
            return {k: moved(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(moved(v) for v in obj)
        return obj

    for i, layer in enumerate(model.layers):
        if layer.name in skip or not layer.inbound_nodes:
            continue
        nodes = [Node(moved(n.args), moved(n.kwargs)) for n in layer.inbound_nodes]
        if nodes != layer.inbound_nodes:
            copied = copy.copy(layer)
            copied.inbound_nodes = nodes
            model.layers[i] = copied
    model.outputs = [moved(r) for r in model.outputs]


# --- Keras 3's hard_sigmoid ---------------------------------------------------------------------

def _split_activations(model: LayersModel, taken: set[str], specs: dict) -> list[str]:
    """Keras 3's ``hard_sigmoid`` (``relu6(x + 3) / 6``; tfjs's is Keras 2's ``clip(0.2 x +
    0.5)``) as an activation of a layer other than a recurrent one: the layer without it, then
    ``Rescaling(offset=3)``, ``Activation("relu6")``, ``Rescaling(1/6)``."""
    notes = []
    for name in [layer.name for layer in model.layers]:
        # by name: a rewrite before may have given this layer new nodes (a new object)
        layer = next(x for x in model.layers if x.name == name)
        if layer.model is not None or layer.config.get("activation") != "hard_sigmoid" \
                or "recurrent_activation" in layer.config or "layer" in layer.config:
            continue
        shift = _plain(layer, "Rescaling", _unique(f"{layer.name}_shift", taken), scale=1.0,
                       offset=3.0)
        relu6 = _plain(layer, "Activation", _unique(f"{layer.name}_relu6", taken),
                       activation="relu6")
        scale = _plain(layer, "Rescaling", _unique(f"{layer.name}_scale", taken),
                       scale=1.0 / 6.0, offset=0.0)
        chain = [shift, relu6, scale]
        if layer.class_name != "Activation":  # else the activation is all the layer does
            bare = copy.copy(layer)
            bare.config = {**layer.config, "activation": "linear"}
            chain.insert(0, bare)
        if model.kind != "Sequential":
            if chain[0] is shift:
                shift.inbound_nodes = [Node(n.args, n.kwargs) for n in layer.inbound_nodes]
            calls = len(layer.inbound_nodes)
            for before, part in itertools.pairwise(chain):
                part.inbound_nodes = [Node([TensorRef(before.name, j, 0)]) for j in range(calls)]
        _replace(model, layer, chain)
        for part in chain:
            _alias(specs, layer.name, part.name)
        if model.kind != "Sequential":
            _redirect(model, layer.name, scale.name, skip={p.name for p in chain}, specs=specs)
        notes.append(f"{layer.name}: activation hard_sigmoid (Keras 3's relu6(x + 3) / 6) -> "
                     "Rescaling(offset=3), Activation(relu6), Rescaling(1/6) (tfjs's "
                     "hard_sigmoid is Keras 2's)")
    return notes


# --- Subtract -----------------------------------------------------------------------------------

def _subtract(model: LayersModel, layer: Layer, specs: Specs, taken: set[str]) -> str | None:
    if model.kind == "Sequential" or not layer.inbound_nodes:
        return None
    calls = []
    for node in layer.inbound_nodes:
        if node.kwargs or len(node.args) != 1 or not isinstance(node.args[0], (list, tuple)) \
                or len(node.args[0]) != 2 \
                or not all(isinstance(r, TensorRef) for r in node.args[0]):
            return None
        calls.append(tuple(node.args[0]))
    negate = _plain(layer, "Rescaling", _unique(f"{layer.name}_negate", taken),
                    scale=-1.0, offset=0.0)
    negate.inbound_nodes = [Node([b]) for _, b in calls]
    add = Layer("Add", layer.name, {k: layer.config[k] for k in ("name", "trainable", "dtype")
                                    if k in layer.config})
    add.inbound_nodes = [Node([[a, TensorRef(negate.name, j, 0)]]) for j, (a, _) in
                         enumerate(calls)]
    _replace(model, layer, [negate, add])
    return (f"{layer.name}: Subtract -> Add with Rescaling(scale=-1) on its second input "
            "(tfjs-layers has no Subtract; a - b is a + (-b) exactly)")


# --- causal Conv1D ------------------------------------------------------------------------------

def _ints(value: Any) -> list[int]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return [int(v) for v in items]


def _steps(model: LayersModel, layer: Layer, specs: Specs) -> int | None:
    """The static number of steps every call of ``layer`` sees (None: unknown or mixed)."""
    shape = _sequence_shape(model, layer, specs)
    return shape[0] if shape is not None else None


def _sequence_shape(model: LayersModel, layer: Layer, specs: Specs) -> tuple[int, int] | None:
    """The static (steps, channels) of the rank-3 input every call of ``layer`` sees (None:
    unknown, mixed, or another rank)."""
    shape = _input_shape(model, layer, specs)
    if shape is None or len(shape) != 3 or shape[1] is None or shape[2] is None:
        return None
    return int(shape[1]), int(shape[2])


def _input_shape(model: LayersModel, layer: Layer, specs: Specs) -> tuple | None:
    """The shape of the one input every call of ``layer`` reads (None: unknown or mixed)."""
    if model.kind == "Sequential":
        keys: list[tuple] = [(_SEQUENTIAL_INPUT, layer.name)]
    else:
        keys = []
        for node in layer.inbound_nodes:
            refs = node.inputs()
            if len(refs) != 1 or node.kwargs:
                return None
            keys.append((refs[0].layer, refs[0].node, refs[0].tensor))
    shapes = {specs[k].shape if k in specs else None for k in keys}
    return shapes.pop() if len(shapes) == 1 else None


def _causal_conv1d(model: LayersModel, layer: Layer, specs: Specs,
                   taken: set[str]) -> str | None:
    cfg = layer.config
    if cfg.get("padding") != "causal" or cfg.get("data_format", "channels_last") != \
            "channels_last" or cfg.get("groups", 1) not in (1, None):
        return None
    kernel = next((w for w in layer.weights if w.name == "kernel"), None)
    steps = _steps(model, layer, specs)
    if kernel is None or kernel.array.ndim != 3 or steps is None:
        return None
    k, channels, filters = (int(d) for d in kernel.array.shape)
    stride, dilation = _ints(cfg.get("strides", 1))[0], _ints(cfg.get("dilation_rate", 1))[0]
    out_steps = math.ceil(steps / stride)  # causal keeps "same"'s length
    expand = _plain(layer, "Reshape", _unique(f"{layer.name}_expand", taken),
                    target_shape=[steps, 1, channels])
    pad = _plain(layer, "ZeroPadding2D", _unique(f"{layer.name}_pad", taken),
                 padding=[[dilation * (k - 1), 0], [0, 0]], data_format="channels_last")
    conv_cfg = {**cfg, "kernel_size": [k, 1], "strides": [stride, 1], "padding": "valid",
                "dilation_rate": [dilation, 1]}
    weights = [Weight(w.path, w.array.reshape(k, 1, channels, filters), w.trainable,
                      w.quantization) if w is kernel else w for w in layer.weights]
    conv = Layer("Conv2D", layer.name, conv_cfg, weights=weights)
    squeeze = _plain(layer, "Reshape", _unique(f"{layer.name}_squeeze", taken),
                     target_shape=[out_steps, filters])
    chain = [expand, pad, conv, squeeze]
    if model.kind != "Sequential":
        previous: str | None = None
        for part in chain:
            part.inbound_nodes = [
                Node(node.args, node.kwargs) if previous is None
                else Node([TensorRef(previous, j, 0)])
                for j, node in enumerate(layer.inbound_nodes)]
            previous = part.name
    _replace(model, layer, chain)
    if model.kind != "Sequential":
        _redirect(model, layer.name, squeeze.name, skip={p.name for p in chain},
                  specs=specs)
    return (f"{layer.name}: Conv1D(padding='causal') -> Reshape, ZeroPadding2D (left "
            f"{dilation * (k - 1)}), Conv2D({k}x1, valid), Reshape (tfjs-layers rejects causal "
            "padding; the same arithmetic)")


# --- ZeroPadding1D ------------------------------------------------------------------------------

def _zero_padding1d(model: LayersModel, layer: Layer, specs: Specs,
                    taken: set[str]) -> str | None:
    shape = _sequence_shape(model, layer, specs)
    padding = _ints(layer.config.get("padding", 1))
    if shape is None or len(padding) > 2:
        return None
    left, right = (padding * 2)[:2]
    steps, channels = shape
    expand = _plain(layer, "Reshape", _unique(f"{layer.name}_expand", taken),
                    target_shape=[steps, 1, channels])
    pad = _plain(layer, "ZeroPadding2D", _unique(f"{layer.name}_pad2d", taken),
                 padding=[[left, right], [0, 0]], data_format="channels_last")
    # the last keeps the layer's name: the layers after it read it as before
    squeeze = _plain(layer, "Reshape", layer.name,
                     target_shape=[steps + left + right, channels])
    chain = [expand, pad, squeeze]
    if model.kind != "Sequential":
        previous: str | None = None
        for part in chain:
            part.inbound_nodes = [
                Node(node.args, node.kwargs) if previous is None
                else Node([TensorRef(previous, j, 0)])
                for j, node in enumerate(layer.inbound_nodes)]
            previous = part.name
    _replace(model, layer, chain)
    return (f"{layer.name}: ZeroPadding1D -> Reshape, ZeroPadding2D ({left}, {right}), Reshape "
            "(tfjs-layers has no ZeroPadding1D; the same values)")


# --- bilinear UpSampling2D ----------------------------------------------------------------------

def _taps(s: int) -> int:
    """How many input samples the filter that turns an ``s``-times nearest upsampling into
    Keras's (half-pixel) bilinear one spans: for output ``s*i + r`` the weights of ``x[i-1]``,
    ``x[i]``, ``x[i+1]`` are those of linear interpolation at ``i + (r + 0.5) / s - 0.5``, which
    a centred filter of ``s`` ones over ``s`` gives for an odd ``s`` (an average pool of ``s``),
    and ``[1/2, 1 x (s - 1), 1/2]`` over ``s`` for an even one (an average pool of ``s``, then
    one of 2)."""
    return s if s % 2 else s + 1


def _image_shape(model: LayersModel, layer: Layer, specs: Specs) -> tuple[int, int, int] | None:
    """The static (height, width, channels) every call of ``layer`` reads (None: unknown)."""
    shapes = set()
    for node in layer.inbound_nodes:
        refs = node.inputs()
        if len(refs) != 1 or node.kwargs:
            return None
        spec = specs.get((refs[0].layer, refs[0].node, refs[0].tensor))
        shapes.add(spec.shape if spec is not None else None)
    shape = shapes.pop() if len(shapes) == 1 else None
    if shape is None or len(shape) != 4:
        return None
    height, width, channels = shape[1:]
    if height is None or width is None or channels is None:
        return None
    return height, width, channels


def _bilinear_upsampling(model: LayersModel, layer: Layer, specs: Specs,
                         taken: set[str]) -> str | None:
    cfg = layer.config
    if cfg.get("interpolation", "nearest") != "bilinear" or cfg.get(
            "data_format", "channels_last") != "channels_last" or model.kind == "Sequential":
        return None
    shape = _image_shape(model, layer, specs)
    size = _ints(cfg.get("size", 2))
    if shape is None or len(size) != 2 or min(size) < 1:
        return None
    height, width, _ = shape
    sh, sw = size
    ch, cw = (_taps(sh) - 1) // 2, (_taps(sw) - 1) // 2

    def named(suffix: str) -> str:
        return _unique(f"{layer.name}_{suffix}", taken)

    def crop(name: str, top: int, bottom: int, left: int, right: int) -> Layer:
        return _plain(layer, "Cropping2D", name, cropping=[[top, bottom], [left, right]],
                      data_format="channels_last")

    # the edge pixels repeated once on every side: bilinear clamps its source to the image
    top, bottom = crop(named("top"), 0, height - 1, 0, 0), crop(named("bottom"), height - 1, 0,
                                                                 0, 0)
    rows = _plain(layer, "Concatenate", named("rows"), axis=1)
    left, right = crop(named("left"), 0, 0, 0, width - 1), crop(named("right"), 0, 0,
                                                                width - 1, 0)
    cols = _plain(layer, "Concatenate", named("cols"), axis=2)
    nearest = _plain(layer, "UpSampling2D", named("nearest"), size=[sh, sw],
                     data_format="channels_last", interpolation="nearest")
    pools = [_plain(layer, "AveragePooling2D", named("average"), pool_size=[sh, sw],
                    strides=[1, 1], padding="valid", data_format="channels_last")]
    if sh % 2 == 0 or sw % 2 == 0:
        pools.append(_plain(layer, "AveragePooling2D", named("average"),
                            pool_size=[2 - sh % 2, 2 - sw % 2], strides=[1, 1],
                            padding="valid", data_format="channels_last"))
    # the last keeps the layer's name: the layers after it read it as before
    final = crop(layer.name, sh - ch, sh - ch, sw - cw, sw - cw)
    for j, node in enumerate(layer.inbound_nodes):
        x = node.inputs()[0]
        top.inbound_nodes.append(Node([x]))
        bottom.inbound_nodes.append(Node([x]))
        rows.inbound_nodes.append(Node([[TensorRef(top.name, j, 0), x,
                                         TensorRef(bottom.name, j, 0)]]))
        r = TensorRef(rows.name, j, 0)
        left.inbound_nodes.append(Node([r]))
        right.inbound_nodes.append(Node([r]))
        cols.inbound_nodes.append(Node([[TensorRef(left.name, j, 0), r,
                                         TensorRef(right.name, j, 0)]]))
        previous = TensorRef(cols.name, j, 0)
        for part in (nearest, *pools, final):
            part.inbound_nodes.append(Node([previous]))
            previous = TensorRef(part.name, j, 0)
    _replace(model, layer, [top, bottom, rows, left, right, cols, nearest, *pools, final])
    return (f"{layer.name}: UpSampling2D(bilinear) -> edge pixels repeated (Cropping2D, "
            f"Concatenate), UpSampling2D(nearest), {len(pools)} AveragePooling2D, Cropping2D "
            "(tfjs-layers resizes without half-pixel centres; the same interpolation, summed "
            "in another order)")


# --- global pooling with keepdims -------------------------------------------------------------

def _global_keepdims(model: LayersModel, layer: Layer, specs: Specs,
                     taken: set[str]) -> str | None:
    cfg = layer.config
    shape = _input_shape(model, layer, specs)
    if not cfg.get("keepdims") or shape is None:
        return None
    first = cfg.get("data_format", "channels_last") == "channels_first"
    channels = shape[1] if first else shape[-1]
    if channels is None:
        return None
    ones = [1] * (len(shape) - 2)
    pool = Layer(layer.class_name, _unique(f"{layer.name}_pool", taken),
                 {**cfg, "keepdims": False})
    pool.config["name"] = pool.name
    # the last keeps the layer's name: the layers after it read it as before
    reshape = _plain(layer, "Reshape", layer.name,
                     target_shape=[channels, *ones] if first else [*ones, channels])
    if model.kind != "Sequential":
        pool.inbound_nodes = [Node(n.args, n.kwargs) for n in layer.inbound_nodes]
        reshape.inbound_nodes = [Node([TensorRef(pool.name, j, 0)])
                                 for j in range(len(layer.inbound_nodes))]
    _replace(model, layer, [pool, reshape])
    return (f"{layer.name}: {layer.class_name}(keepdims=True) -> {layer.class_name} and a "
            "Reshape to keep the pooled axes (tfjs-layers 4.22 ignores keepdims; the same "
            "values)")


# --- Normalization ------------------------------------------------------------------------------

# Keras's Normalization divides by max(sqrt(variance), epsilon), with its backend epsilon
KERAS_EPSILON = 1e-7


def _normalization(model: LayersModel, layer: Layer, specs: Specs,
                   taken: set[str]) -> str | None:
    cfg = layer.config
    axis = cfg.get("axis", [-1])
    axis = axis if isinstance(axis, (list, tuple)) else [axis]
    if cfg.get("invert") or list(axis) != [-1]:
        return None
    by_name = {w.name: w.array for w in layer.weights}
    mean, variance = by_name.get("mean"), by_name.get("variance")
    if mean is None or variance is None:
        if cfg.get("mean") is None or cfg.get("variance") is None:
            return None
        mean, variance = np.asarray(cfg["mean"]), np.asarray(cfg["variance"])
    shape = _input_shape(model, layer, specs)
    channels = shape[-1] if shape else None
    if channels is None or mean.size not in (1, channels) or variance.size not in (1, channels):
        return None
    mean = np.broadcast_to(np.asarray(mean, np.float32).reshape(-1), (channels,)).copy()
    variance = np.broadcast_to(np.asarray(variance, np.float32).reshape(-1), (channels,))
    # (x - mean) * rsqrt(max(variance, eps^2)) is (x - mean) / max(sqrt(variance), eps)
    floored = np.maximum(variance, np.float32(KERAS_EPSILON) ** 2).astype(np.float32)
    zeros = {"class_name": "Zeros", "config": {}}
    bn = Layer("BatchNormalization", layer.name, {
        "name": layer.name, "trainable": False, "dtype": cfg.get("dtype", "float32"),
        "axis": -1, "momentum": 0.99, "epsilon": 0.0, "center": False, "scale": False,
        "beta_initializer": zeros, "gamma_initializer": {"class_name": "Ones", "config": {}},
        "moving_mean_initializer": zeros,
        "moving_variance_initializer": {"class_name": "Ones", "config": {}},
        "beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None,
        "gamma_constraint": None},
        inbound_nodes=[Node(n.args, n.kwargs) for n in layer.inbound_nodes],
        weights=[Weight("moving_mean", mean, False), Weight("moving_variance", floored, False)])
    _replace(model, layer, [bn])
    return (f"{layer.name}: Normalization -> BatchNormalization(center=False, scale=False, "
            "epsilon=0) holding its mean and variance (tfjs-layers has no Normalization; the "
            "same arithmetic, a reciprocal square root times instead of a division)")


# --- ELU(alpha) ---------------------------------------------------------------------------------

def _elu_alpha(layer: Layer) -> float | None:
    """An ELU layer's alpha where it is not 1 (None: 1, or not a number)."""
    alpha = layer.config.get("alpha", 1.0)
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or alpha == 1.0:
        return None
    return float(alpha)


def _elu(model: LayersModel, layer: Layer, specs: Specs, taken: set[str]) -> str | None:
    alpha = _elu_alpha(layer)
    if alpha is None or model.kind == "Sequential":
        return None

    def named(suffix: str) -> str:
        return _unique(f"{layer.name}_{suffix}", taken)

    # ELU_alpha(x) = relu(x) + alpha * min(ELU_1(x), 0), and min(e, 0) = -relu(-e)
    elu = _plain(layer, "ELU", named("unit"), alpha=1.0)
    flip = _plain(layer, "Rescaling", named("flip"), scale=-1.0, offset=0.0)
    clip = _plain(layer, "Activation", named("clip"), activation="relu")
    scale = _plain(layer, "Rescaling", named("scale"), scale=-alpha, offset=0.0)
    relu = _plain(layer, "Activation", named("relu"), activation="relu")
    add = Layer("Add", layer.name, {k: layer.config[k] for k in ("name", "trainable", "dtype")
                                    if k in layer.config})
    for j, node in enumerate(layer.inbound_nodes):
        x = node.inputs()[0]
        elu.inbound_nodes.append(Node([x]))
        previous = TensorRef(elu.name, j, 0)
        for part in (flip, clip, scale):
            part.inbound_nodes.append(Node([previous]))
            previous = TensorRef(part.name, j, 0)
        relu.inbound_nodes.append(Node([x]))
        add.inbound_nodes.append(Node([[TensorRef(relu.name, j, 0), previous]]))
    _replace(model, layer, [elu, flip, clip, scale, relu, add])
    return (f"{layer.name}: ELU(alpha={alpha:g}) -> relu(x) + {alpha:g} * min(ELU(x), 0) "
            "(ELU, Rescaling, Activation, Add: tfjs-layers supports ELU with alpha 1 only)")


# --- BatchNormalization and Softmax over another axis than the last ----------------------------

# why each class needs its axis last in tfjs-layers 4.22
_LAST_AXIS_ONLY = {
    "BatchNormalization": "tfjs-layers 4.22's CPU kernel normalizes only the last axis "
                          "correctly (it cycles the statistics over the flat input)",
    "Softmax": "tfjs-core 4.22's softmax throws on any axis but the last",
}


def _axis_last(model: LayersModel, layer: Layer, specs: Specs, taken: set[str]) -> str | None:
    axis = layer.config.get("axis", -1)
    if isinstance(axis, (list, tuple)) and len(axis) == 1:
        axis = axis[0]
    if not isinstance(axis, int) or isinstance(axis, bool) or axis == -1:
        return None
    if model.kind == "Sequential":
        shape = _input_shape(model, layer, specs)
    else:  # keyword arguments other than tensors (training=False) stay with the layer
        calls = [node.inputs() for node in layer.inbound_nodes]
        found = {specs[k].shape if k in specs else None
                 for refs in calls if len(refs) == 1
                 for k in [(refs[0].layer, refs[0].node, refs[0].tensor)]}
        shape = found.pop() if len(found) == 1 and all(len(r) == 1 for r in calls) else None
    if shape is None:
        raise UnsupportedError(
            f"{layer.class_name}(axis={axis}): {_LAST_AXIS_ONLY[layer.class_name]}, and this "
            "input's rank is unknown here (or it is called with a mask), so the axis cannot be "
            "moved last", layer=layer.name, hint="use `--to tfjs-graph`")
    rank = len(shape)
    last = axis % rank
    if last in (0, rank - 1):  # the last axis already (or the batch axis: Keras refuses)
        return None
    forward = [i for i in range(1, rank) if i != last] + [last]
    back = [forward.index(i) + 1 for i in range(1, rank)]
    to_last = _plain(layer, "Permute", _unique(f"{layer.name}_to_last", taken), dims=forward)
    norm = copy.copy(layer)
    norm.config, norm.inbound_nodes = {**layer.config, "axis": -1}, []
    restore = _plain(layer, "Permute", _unique(f"{layer.name}_back", taken), dims=back)
    chain = [to_last, norm, restore]
    if model.kind != "Sequential":
        for j, node in enumerate(layer.inbound_nodes):
            to_last.inbound_nodes.append(Node([node.inputs()[0]]))
            norm.inbound_nodes.append(Node([TensorRef(to_last.name, j, 0)], node.kwargs))
            restore.inbound_nodes.append(Node([TensorRef(norm.name, j, 0)]))
    _replace(model, layer, chain)
    if model.kind != "Sequential":
        _redirect(model, layer.name, restore.name, skip={p.name for p in chain},
                  specs=specs)
    cls = layer.class_name
    return (f"{layer.name}: {cls}(axis={axis}) -> Permute{tuple(forward)}, {cls}(axis=-1), "
            f"Permute{tuple(back)} ({_LAST_AXIS_ONLY[cls]}; the same arithmetic)")


# --- a tensor read twice by one call ------------------------------------------------------------

def _repeated_inputs(model: LayersModel, specs: Specs, taken: set[str]) -> list[str]:
    """Each call's second and later reads of one computed tensor through an identity layer of
    its own (see the module's docstring); model inputs are left alone (tfjs never disposes a
    fed tensor)."""
    if model.kind == "Sequential":  # one input per layer: nothing is read twice
        return []
    fed = {ref.layer for ref in model.inputs}
    notes = []
    for name in [layer.name for layer in model.layers]:
        layer = next(x for x in model.layers if x.name == name)
        added: list[Layer] = []
        make = functools.partial(_copy_into, added, layer, specs, taken)
        nodes = []
        for node in layer.inbound_nodes:
            seen: set[TensorRef] = set()
            nodes.append(Node(_reads_once(node.args, seen, fed, make),
                              _reads_once(node.kwargs, seen, fed, make)))
        if not added:
            continue
        rewritten = copy.copy(layer)
        rewritten.inbound_nodes = nodes
        _replace(model, layer, [*added, rewritten])
        kinds = sorted({part.class_name for part in added})
        notes.append(f"{layer.name}: {len(added)} repeated input(s) read through "
                     f"{' / '.join(kinds)} to the same shape (tfjs-layers 4.22 disposes a "
                     "tensor one layer reads twice while another still needs it; the same "
                     "values)")
    return notes


def _reads_once(obj: Any, seen: set[TensorRef], fed: set[str],
                make: Callable[[TensorRef], TensorRef]) -> Any:
    """``obj`` (a call's args or kwargs) with each read of a computed tensor already in ``seen``
    replaced by ``make(ref)``, in order of appearance."""
    if isinstance(obj, TensorRef):
        if obj.layer in fed or obj not in seen:
            seen.add(obj)
            return obj
        return make(obj)
    if isinstance(obj, dict):
        return {k: _reads_once(v, seen, fed, make) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_reads_once(v, seen, fed, make) for v in obj)
    return obj


def _copy_into(added: list[Layer], layer: Layer, specs: Specs, taken: set[str],
               ref: TensorRef) -> TensorRef:
    """A new identity layer on ``ref`` (appended to ``added``), for ``layer`` to read."""
    part = _identity(layer, ref, specs, taken)
    added.append(part)
    return TensorRef(part.name, 0, 0)


def _identity(layer: Layer, ref: TensorRef, specs: Specs, taken: set[str]) -> Layer:
    """A layer tfjs-layers has that gives ``ref``'s values as a tensor of its own: a Reshape
    to its shape, or a Permute keeping its axes where a size is unknown."""
    spec = specs.get((ref.layer, ref.node, ref.tensor))
    rank = len(spec.shape) if spec is not None else 0
    if rank < 2:
        raise UnsupportedError(
            f"{layer.class_name} reads the tensor of {ref.layer!r} more than once, and "
            "tfjs-layers 4.22 disposes such a tensor while other layers still need it; its "
            "shape is unknown here, so no copy of it can be made", layer=layer.name,
            hint="use `--to tfjs-graph`")
    assert spec is not None
    dims = spec.shape[1:]
    name = _unique(f"{layer.name}_copy", taken)
    static = [int(d) for d in dims if d is not None]
    if len(static) == len(dims):
        part = _plain(layer, "Reshape", name, target_shape=static)
    else:
        part = _plain(layer, "Permute", name, dims=list(range(1, rank)))
    part.inbound_nodes = [Node([ref])]
    specs[(name, 0, 0)] = spec
    return part


_RULES: dict[str, Callable[[LayersModel, Layer, Specs, set[str]], str | None]] = {
    "Subtract": _subtract,
    "Conv1D": _causal_conv1d,
    "ZeroPadding1D": _zero_padding1d,
    "UpSampling2D": _bilinear_upsampling,
    "Normalization": _normalization,
    "ELU": _elu,
    **dict.fromkeys(_LAST_AXIS_ONLY, _axis_last),
    **dict.fromkeys(("GlobalMaxPooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling2D",
                     "GlobalAveragePooling2D"), _global_keepdims),
}
