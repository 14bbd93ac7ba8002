"""Walking a Keras layer graph: the order calls can run in, and Sequential as a graph."""

from __future__ import annotations

import copy

from ..errors import FormatError, UnsupportedError
from . import Layer, LayersModel, Node, TensorRef


def as_functional(model: LayersModel) -> LayersModel:
    """A Functional view of ``model``: a Sequential stack becomes a chain of calls.

    Layers are shallow copies (configs and weights shared); tensor keys are ``(layer, 0, 0)``,
    as for the stack itself.
    """
    if model.kind != "Sequential":
        return model
    if not model.layers or model.layers[0].class_name != "InputLayer":
        raise UnsupportedError(f"Sequential model {model.name!r} has no InputLayer, so its input "
                               "shape is unknown")
    layers, previous = [], None
    for layer in model.layers:
        clone = copy.copy(layer)
        clone.inbound_nodes = [] if previous is None else [Node([TensorRef(previous)])]
        layers.append(clone)
        previous = layer.name
    return LayersModel(model.name, "Functional", layers, inputs=[TensorRef(model.layers[0].name)],
                       outputs=[TensorRef(model.layers[-1].name)], config=model.config,
                       source=model.source,
                       tensor_specs=model.tensor_specs)


def call_order(model: LayersModel) -> list[tuple[Layer, int]]:
    """Every (layer, call index) of a Functional model, each after the calls it reads from."""
    done: set[tuple[str, int]] = {(layer.name, 0) for layer in model.layers
                                  if layer.class_name == "InputLayer"}
    pending = [(layer, k) for layer in model.layers if layer.class_name != "InputLayer"
               for k in range(len(layer.inbound_nodes))]
    order: list[tuple[Layer, int]] = []
    while pending:
        waiting = []
        for layer, k in pending:
            if all((r.layer, r.node) in done for r in layer.inbound_nodes[k].inputs()):
                order.append((layer, k))
                done.add((layer.name, k))
            else:
                waiting.append((layer, k))
        if len(waiting) == len(pending):
            layer, k = waiting[0]
            raise FormatError(f"call {k} waits on tensors that are never produced",
                              layer=layer.name)
        pending = waiting
    return order
