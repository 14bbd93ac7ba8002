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

A run frees each tensor once its last reader has run (what the check's budget sizes by
liveness, ``check.keras_sizes``): only the outputs survive it, and the tensors asked for with
``keep`` (every one with ``capture``, for the comparisons that walk all of them).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import FormatError, ModelportError, UnsupportedError
from ...models import Layer, LayersModel, Node, TensorRef
from ...models.keras_constants import numpy_value
from ...models.layer_facts import MODEL_CLASSES
from ..precision import rounded_unless_integral, widened
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
    """The model's outputs, in its output order; with ``capture``, every tensor of its graph
    (with ``keep``, those of its keys).

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
        capture: bool = False, keep: Collection[tuple] | None = None) -> ReferenceResult:
    """Evaluate ``model`` on ``inputs`` (a list in input order, or a dict by input name).

    Each tensor is freed once its last reader has run, unless ``capture`` (every tensor is
    kept and returned) or ``keep`` names it, by its key or its (layer name, node index)
    (kept and returned)."""
    feeds = _order_inputs(model, inputs)
    tensors: dict[Key, _Tensor] = {}
    retain = None if capture else set(keep or ())
    outputs = _run_model(model, [_Tensor(np.asarray(a)) for a in feeds], tensors, retain)
    wanted = tensors if retain is None else {k: t for k, t in tensors.items()
                                             if _retained(k, retain)}
    return ReferenceResult([t.value for t in outputs],
                           {k: t.value for k, t in wanted.items()} if capture or keep else {})


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

def _run_model(model: LayersModel, feeds: list[_Tensor], tensors: dict[Key, _Tensor],
               retain: set[tuple] | None) -> list[_Tensor]:
    """Run ``model``; ``tensors`` ends with its outputs and the tensors of ``retain`` (None:
    every tensor), each other tensor freed after its last reader ran."""
    if not model.layers:
        raise FormatError(f"model {model.name!r} has no layers")
    if model.kind == "Sequential":
        return _run_sequential(model, feeds, tensors, retain)
    return _run_functional(model, feeds, tensors, retain)


def _run_sequential(model: LayersModel, feeds: list[_Tensor], tensors: dict,
                    retain: set[tuple] | None) -> list[_Tensor]:
    if len(feeds) != 1:
        raise FormatError(f"Sequential model {model.name!r} is fed {len(feeds)} tensors")
    current, layers = feeds[0], model.layers
    if layers[0].class_name == "InputLayer":
        current = _input_value(layers[0], current)
        _hold(tensors, (layers[0].name, 0, 0), current, retain)
        layers = layers[1:]
    for layer in layers:
        outs = _call_layer(layer, 0, [current], {}, [current.mask], {})
        if len(outs) != 1:
            raise UnsupportedError(f"{layer.class_name} returns {len(outs)} tensors; a Sequential "
                                   "model passes exactly one from layer to layer", layer=layer.name)
        current = outs[0]  # the previous layer's tensor is freed here unless held
        _hold(tensors, (layer.name, 0, 0), current, retain)
    return [current]


def _hold(tensors: dict, key: Key, tensor: _Tensor, retain: set[tuple] | None) -> None:
    if _retained(key, retain):
        tensors[key] = tensor


def _retained(key: Key, retain: set[tuple] | None) -> bool:
    return retain is None or key in retain or key[:2] in retain


def _run_functional(model: LayersModel, feeds: list[_Tensor], tensors: dict,
                    retain: set[tuple] | None) -> list[_Tensor]:
    if len(feeds) != len(model.inputs):
        raise FormatError(f"model {model.name!r} has {len(model.inputs)} inputs, fed "
                          f"{len(feeds)}")
    for ref, feed in zip(model.inputs, feeds):
        tensors[_key(ref)] = _input_value(model.layer(ref.layer), feed)
    pending = [(layer, k) for layer in model.layers if layer.class_name != "InputLayer"
               for k in range(len(layer.inbound_nodes))]
    # liveness: how many calls still read each tensor; one at zero is freed (the outputs and
    # the retained ones excepted), so a run holds what is alive at once, not every tensor
    readers: dict[Key, int] = {}
    for layer, k in pending:
        for key in {_key(r) for r in layer.inbound_nodes[k].inputs()}:
            readers[key] = readers.get(key, 0) + 1
    outputs = {_key(ref) for ref in model.outputs}
    produced: set[Key] = set(tensors)
    while pending:  # dependency order, not list order: shared layers can wait on later ones
        waiting = []
        for layer, k in pending:
            node = layer.inbound_nodes[k]
            if not all(_key(r) in produced for r in node.inputs()):
                waiting.append((layer, k))
                continue
            outs = _call_node(layer, k, node, tensors)
            for i, out in enumerate(outs):
                tensors[(layer.name, k, i)] = out
                produced.add((layer.name, k, i))
            if retain is not None:
                _free(tensors, readers, outputs, retain, node.inputs(),
                      [(layer.name, k, i) for i in range(len(outs))])
        if len(waiting) == len(pending):
            layer, k = waiting[0]
            missing = [r.as_list() for r in layer.inbound_nodes[k].inputs()
                       if _key(r) not in produced]
            raise FormatError(f"node {k} waits on tensors that are never produced: {missing}",
                              layer=layer.name)
        pending = waiting
    try:
        return [tensors[_key(ref)] for ref in model.outputs]
    except KeyError as e:
        raise FormatError(f"output {e} of model {model.name!r} is never produced") from None


def _free(tensors: dict, readers: dict[Key, int], outputs: set[Key], retain: set[tuple],
          read: list[TensorRef], made: list[Key]) -> None:
    """After a call: the tensors it read that no later call reads, and those it made that no
    call reads, are dropped (the model's outputs and the retained ones excepted)."""
    for key in {_key(r) for r in read}:
        readers[key] -= 1
        if readers[key] <= 0 and key not in outputs and not _retained(key, retain):
            tensors.pop(key, None)
    for key in made:
        if not readers.get(key) and key not in outputs and not _retained(key, retain):
            tensors.pop(key, None)


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
            return _run_model(layer.model, flat, {}, set())
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
    return [_Tensor(rounded_unless_integral(v), m) for v, m in zip(result.values, result.masks)]


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
    array = numpy_value(obj)  # an operation's NumPy operand (it has no mask)
    if array is not None:
        return array if part == "value" else None
    if isinstance(obj, dict):
        return {k: _substitute(v, tensors, part) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_substitute(v, tensors, part) for v in obj]
    return obj if part == "value" else None
