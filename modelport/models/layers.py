"""The Keras layers model: what Keras ``.h5``, ``.keras`` and TF.js layers-models hold.

``LayersModel`` is what Keras ``.h5``, Keras ``.keras`` and TF.js layers-models are read into and
written from: the Keras layer graph in one canonical config dialect (the Keras 3 forms; see
``models/keras_dialect.py``) plus typed, ordered weights. Nothing in here knows about files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TensorRef:
    """Output ``tensor`` of call number ``node`` of layer ``layer`` (Keras 3 numbering)."""

    layer: str
    node: int = 0
    tensor: int = 0

    def as_list(self) -> list:
        """``[layer, node, tensor]``, the reference's JSON form."""
        return [self.layer, self.node, self.tensor]


@dataclass
class Node:
    """One call of a layer: positional ``args`` and keyword ``kwargs``.

    Both are JSON-like structures whose leaves are ``TensorRef`` (a symbolic tensor) or plain
    values. A merge layer called on a list has ``args == [[ref, ref, ...]]``.
    """

    args: list
    kwargs: dict = field(default_factory=dict)

    def inputs(self) -> list[TensorRef]:
        """Every tensor this call reads, in order of appearance (args first, then kwargs)."""
        found: list[TensorRef] = []
        _collect_refs(self.args, found)
        _collect_refs(self.kwargs, found)
        return found


def _collect_refs(obj: Any, found: list[TensorRef]) -> None:
    if isinstance(obj, TensorRef):
        found.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _collect_refs(v, found)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _collect_refs(v, found)


@dataclass
class Weight:
    """A variable of a layer.

    ``path`` locates it inside its layer the way Keras 3 does, with the variable's name as the
    last part: ``kernel``, ``cell/recurrent_kernel``, ``forward_layer/cell/bias``, ``layer/kernel``.
    ``quantization`` records how the source stored it when that was lossy (TF.js uint8/uint16/
    float16); ``array`` is then the dequantized value.
    """

    path: str
    array: np.ndarray
    trainable: bool = True
    quantization: dict | None = None

    @property
    def name(self) -> str:
        """The variable's name: the last part of ``path``."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def nbytes(self) -> int:
        """The array's size in bytes."""
        return int(self.array.nbytes)


@dataclass
class Layer:
    """A Keras layer: class, canonical config, its calls, and its own weights.

    A model used as a layer has ``model`` set; its weights live on the inner layers.
    """

    class_name: str
    name: str
    config: dict
    inbound_nodes: list[Node] = field(default_factory=list)
    weights: list[Weight] = field(default_factory=list)
    model: LayersModel | None = None
    # Set for the keras.ops nodes Keras 3 records in functional graphs (``keras.src.ops.numpy``
    # for a mask's NotEqual, or ``x + 3.0``): operations, not layers, though some share names.
    module: str | None = None

    @property
    def is_operation(self) -> bool:
        """Whether this is a keras.ops node (its module under ``keras.src.ops``), not a layer."""
        return bool(self.module and self.module.startswith("keras.src.ops"))

    def all_weights(self) -> Iterator[tuple[str, Weight]]:
        """(owner layer path, weight) for this layer and, for nested models, every inner layer."""
        if self.model is not None:
            for inner in self.model.layers:
                for owner, w in inner.all_weights():
                    yield f"{self.name}/{owner}", w
        else:
            for w in self.weights:
                yield self.name, w


@dataclass
class SourceInfo:
    """Where a model came from; informational (inspect, reports), never used for semantics."""

    format: str  # "keras-h5" | "keras-v3" | "tfjs-layers"
    path: str
    dialect: str  # "keras2" | "keras3"
    keras_version: str | None = None
    backend: str | None = None


@dataclass
class LayersModel:
    """A Keras model: ``Functional`` (a graph) or ``Sequential`` (a stack, no nodes)."""

    name: str
    kind: str  # "Functional" | "Sequential"
    layers: list[Layer]
    inputs: list[TensorRef] = field(default_factory=list)
    outputs: list[TensorRef] = field(default_factory=list)
    config: dict = field(default_factory=dict)  # model-level keys other than layers and I/O
    source: SourceInfo | None = None
    # Shape and dtype of symbolic tensors, keyed by (layer, node, tensor), where the source
    # recorded them (Keras 3 does); informational, not part of the structure.
    tensor_specs: dict = field(default_factory=dict)

    def layer(self, name: str) -> Layer:
        """The layer named ``name``; KeyError where there is none."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def iter_layers(self) -> Iterator[Layer]:
        """Every layer, depth first, nested models' inner layers included (after the outer)."""
        for layer in self.layers:
            yield layer
            if layer.model is not None:
                yield from layer.model.iter_layers()

    def all_weights(self) -> Iterator[tuple[str, Weight]]:
        """(owner layer path, weight) of every layer, nested models' inner layers included."""
        for layer in self.layers:
            yield from layer.all_weights()

    @property
    def input_layers(self) -> list[Layer]:
        """The input layers: those of ``inputs`` (Functional), or the first layer where it is an
        InputLayer (Sequential)."""
        if self.kind == "Sequential":
            first = self.layers[0] if self.layers else None
            return [first] if first is not None and first.class_name == "InputLayer" else []
        return [self.layer(ref.layer) for ref in self.inputs]

    def parameter_count(self) -> int:
        """How many numbers the weights hold, nested models included."""
        return int(sum(w.array.size for _, w in self.all_weights()))

    def weight_bytes(self) -> int:
        """How many bytes the weights' arrays take, nested models included."""
        return int(sum(w.nbytes for _, w in self.all_weights()))

    def structure(self) -> dict:
        """A JSON-able description of everything but weight values: for equality checks."""
        return {
            "name": self.name,
            "kind": self.kind,
            "config": self.config,
            "inputs": [r.as_list() for r in self.inputs],
            "outputs": [r.as_list() for r in self.outputs],
            "layers": [_layer_structure(layer) for layer in self.layers],
        }


def _layer_structure(layer: Layer) -> dict:
    return {
        "class_name": layer.class_name,
        "name": layer.name,
        "config": layer.config,
        "inbound_nodes": [
            {"args": _refs_to_json(n.args), "kwargs": _refs_to_json(n.kwargs)}
            for n in layer.inbound_nodes
        ],
        "weights": [(w.path, list(w.array.shape), str(w.array.dtype)) for w in layer.weights],
        "model": layer.model.structure() if layer.model is not None else None,
        "module": layer.module,
    }


def _refs_to_json(obj: Any) -> Any:
    if isinstance(obj, TensorRef):
        return {"ref": obj.as_list()}
    if isinstance(obj, dict):
        return {k: _refs_to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_refs_to_json(v) for v in obj]
    return obj
