"""An independent NumPy executor of Keras 3 layer semantics.

``run(model, inputs)`` evaluates a ``LayersModel`` (Functional or Sequential, nested models,
shared layers, several inputs and outputs, any batch size) the way Keras 3 does at inference,
from the layers' documented semantics: NumPy only, no Keras/TensorFlow/JAX/SciPy, and no code
shared with any ONNX lowering, so that it can judge one. Convolutions are im2col
(``sliding_window_view``) + BLAS; only recurrences loop, over time steps.

Keras masks are propagated the way Keras 3 does it: ``Embedding(mask_zero=True)`` and
``Masking`` make them, layers that support masking pass them on (see ``_base.register``), the
recurrent layers, Bidirectional, GlobalAveragePooling1D, Softmax and MultiHeadAttention use
them, and every other layer drops them.

One family per module: ``core``, ``activations``, ``conv``, ``pooling``, ``reshaping``,
``normalization``, ``merging``, ``recurrent``, ``attention``, and ``ops`` (the Keras operations
that Keras 3 records in functional graphs to compute masks); each registers one small function
per Keras class in ``_base.REGISTRY``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import FormatError, ModelportError, UnsupportedError
from ...models import Layer, LayersModel, Node, TensorRef
from ...models.layer_facts import MODEL_CLASSES
from ..precision import rounded, widened
from . import (  # noqa: F401
    activations,
    attention,
    conv,
    core,
    merging,
    normalization,
    ops,
    pooling,  # (imported to register their layers)
    recurrent,
    reshaping,
)
from ._base import REGISTRY, Call, Masked, Weights, dispatch, is_array
from .activations import erf

log = logging.getLogger(__name__)

Key = tuple  # (layer name, node index, tensor index), as TensorRef

# Classes the executor handles itself rather than through the registry.
GRAPH_CLASSES = {"InputLayer"} | MODEL_CLASSES

__all__ = ["REGISTRY", "ReferenceResult", "erf", "run", "supported_classes"]


@dataclass
class ReferenceResult:
    """The model's outputs, in its output order; with ``capture``, every tensor of its graph.

    ``tensors`` is keyed like ``TensorRef``: ``(layer name, node index, tensor index)``, node
    ``k`` being the ``k``-th entry of the layer's ``inbound_nodes`` (InputLayers: node 0;
    Sequential models: node 0 of every layer). Tensors inside nested models appear only as the
    nested layer's outputs.
    """

    outputs: list[np.ndarray]
    tensors: dict[Key, np.ndarray] = field(default_factory=dict)


@dataclass
class _Tensor:
    value: np.ndarray
    mask: np.ndarray | None = None


def supported_classes() -> set[str]:
    """Every Keras class name the reference executes (Lambda is registered but always refuses)."""
    return set(REGISTRY) | GRAPH_CLASSES


def run(model: LayersModel, inputs: list[np.ndarray] | dict[str, np.ndarray] | np.ndarray, *,
        capture: bool = False) -> ReferenceResult:
    """Evaluate ``model`` on ``inputs`` (a list in input order, or a dict by input name)."""
    feeds = _order_inputs(model, inputs)
    tensors: dict[Key, _Tensor] = {}
    outputs = _run_model(model, [_Tensor(np.asarray(a)) for a in feeds], tensors)
    return ReferenceResult([t.value for t in outputs],
                           {k: t.value for k, t in tensors.items()} if capture else {})


# --- inputs -------------------------------------------------------------------------------------

def input_names(model: LayersModel) -> list[str]:
    if model.kind == "Sequential":
        return [model.layers[0].name] if model.layers else []
    return [ref.layer for ref in model.inputs]


def _order_inputs(model: LayersModel, inputs: Any) -> list[np.ndarray]:
    names = input_names(model)
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    if isinstance(inputs, dict):
        missing = [n for n in names if n not in inputs]
        extra = sorted(set(inputs) - set(names))
        if missing or extra:
            raise ValueError(f"inputs are keyed {sorted(inputs)}; the model's inputs are {names}")
        return [inputs[n] for n in names]
    inputs = list(inputs)
    if len(inputs) != len(names):
        raise ValueError(f"got {len(inputs)} inputs; the model has {len(names)}: {names}")
    return inputs


def _input_value(layer: Layer, feed: _Tensor) -> _Tensor:
    """Keras converts what a model is fed to its Input's dtype (masks survive)."""
    dtype = layer.config.get("dtype") or "float32"
    try:
        dtype = np.dtype(dtype if isinstance(dtype, str) else "float32")
    except TypeError:
        return feed
    dtype = widened(dtype)
    value = feed.value if feed.value.dtype == dtype else feed.value.astype(dtype)
    return _Tensor(value, feed.mask)


# --- graph walk ---------------------------------------------------------------------------------

def _run_model(model: LayersModel, feeds: list[_Tensor], tensors: dict[Key, _Tensor]
               ) -> list[_Tensor]:
    if not model.layers:
        raise FormatError(f"model {model.name!r} has no layers")
    if model.kind == "Sequential":
        return _run_sequential(model, feeds, tensors)
    return _run_functional(model, feeds, tensors)


def _run_sequential(model: LayersModel, feeds: list[_Tensor], tensors: dict) -> list[_Tensor]:
    if len(feeds) != 1:
        raise FormatError(f"Sequential model {model.name!r} is fed {len(feeds)} tensors")
    current, layers = feeds[0], model.layers
    if layers[0].class_name == "InputLayer":
        current = tensors[(layers[0].name, 0, 0)] = _input_value(layers[0], current)
        layers = layers[1:]
    for layer in layers:
        outs = _call_layer(layer, 0, [current], {}, [current.mask], {})
        if len(outs) != 1:
            raise UnsupportedError(f"{layer.class_name} returns {len(outs)} tensors; a Sequential "
                                   "model passes exactly one from layer to layer", layer=layer.name)
        current = tensors[(layer.name, 0, 0)] = outs[0]
    return [current]


def _run_functional(model: LayersModel, feeds: list[_Tensor], tensors: dict) -> list[_Tensor]:
    if len(feeds) != len(model.inputs):
        raise FormatError(f"model {model.name!r} has {len(model.inputs)} inputs, fed "
                          f"{len(feeds)}")
    for ref, feed in zip(model.inputs, feeds):
        tensors[_key(ref)] = _input_value(model.layer(ref.layer), feed)
    pending = [(layer, k) for layer in model.layers if layer.class_name != "InputLayer"
               for k in range(len(layer.inbound_nodes))]
    while pending:  # dependency order, not list order: shared layers can wait on later ones
        waiting = []
        for layer, k in pending:
            node = layer.inbound_nodes[k]
            if not all(_key(r) in tensors for r in node.inputs()):
                waiting.append((layer, k))
                continue
            outs = _call_node(layer, k, node, tensors)
            for i, out in enumerate(outs):
                tensors[(layer.name, k, i)] = out
        if len(waiting) == len(pending):
            layer, k = waiting[0]
            missing = [r.as_list() for r in layer.inbound_nodes[k].inputs()
                       if _key(r) not in tensors]
            raise FormatError(f"node {k} waits on tensors that are never produced: {missing}",
                              layer=layer.name)
        pending = waiting
    try:
        return [tensors[_key(ref)] for ref in model.outputs]
    except KeyError as e:
        raise FormatError(f"output {e} of model {model.name!r} is never produced") from None


def _call_node(layer: Layer, k: int, node: Node, tensors: dict) -> list[_Tensor]:
    args = _substitute(node.args, tensors, "value")
    kwargs = _substitute(node.kwargs, tensors, "value")
    arg_masks = _substitute(node.args, tensors, "mask")
    kwarg_masks = _substitute(node.kwargs, tensors, "mask")
    return _call_layer(layer, k, args, kwargs, arg_masks, kwarg_masks)


def _call_layer(layer: Layer, k: int, args: list, kwargs: dict, arg_masks: list,
                kwarg_masks: dict) -> list[_Tensor]:
    if isinstance(args, list) and args and isinstance(args[0], _Tensor):
        args, arg_masks = [a.value for a in args], [a.mask for a in args]
    try:
        if layer.model is not None:
            flat = _flatten_pairs(args, arg_masks)
            return _run_model(layer.model, flat, {})
        if layer.class_name == "InputLayer":
            raise FormatError("an InputLayer is called like a layer")
        call = Call(layer.name, layer.class_name, layer.config, Weights.of(layer.weights,
                                                                            layer.name),
                    list(args), dict(kwargs), list(arg_masks), dict(kwarg_masks))
        result: Masked = dispatch(call)
    except ModelportError as e:
        if e.layer is None or (layer.model is not None and not e.layer.startswith(layer.name)):
            e.layer = layer.name if e.layer is None else f"{layer.name}/{e.layer}"
            e.args = (str(e),)
        raise
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise FormatError(f"{layer.class_name} node {k}: cannot evaluate it on inputs of shapes "
                          f"{[np.shape(t.value) for t in _flatten_pairs(args, arg_masks)]} "
                          f"({type(e).__name__}: {e})", layer=layer.name) from e
    return [_Tensor(rounded(v), m) for v, m in zip(result.values, result.masks)]


def _flatten_pairs(values: Any, masks: Any) -> list[_Tensor]:
    if isinstance(values, _Tensor):
        return [values]
    if is_array(values):
        return [_Tensor(values, masks if is_array(masks) else None)]
    if isinstance(values, dict):
        by_key = masks if isinstance(masks, dict) else {}
        return [t for key, v in values.items() for t in _flatten_pairs(v, by_key.get(key))]
    if isinstance(values, (list, tuple)):
        in_order = masks if isinstance(masks, (list, tuple)) else [None] * len(values)
        return [t for v, mv in zip(values, in_order) for t in _flatten_pairs(v, mv)]
    return []


def _key(ref: TensorRef) -> Key:
    return (ref.layer, ref.node, ref.tensor)


def _substitute(obj: Any, tensors: dict, part: str) -> Any:
    if isinstance(obj, TensorRef):
        return getattr(tensors[_key(obj)], part)
    if isinstance(obj, dict):
        return {k: _substitute(v, tensors, part) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_substitute(v, tensors, part) for v in obj]
    return obj if part == "value" else None
