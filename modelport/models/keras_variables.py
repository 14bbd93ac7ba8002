"""Which variables each Keras layer class owns, in Keras's own order, and where they live.

Every format stores a layer's variables differently (HDF5 by name in "legacy" order, ``.keras``
by position under object paths such as ``layers/lstm/cell/vars/0``, TF.js by name), so all of
them need the same fact: for a layer config, the ordered list of ``(path, trainable)``, where
``path`` is the Keras 3 object path inside the layer with the variable's name last
(``kernel``, ``cell/recurrent_kernel``, ``forward_layer/cell/bias``, ``layer/kernel``).

Each class's list is its ``variables`` in ``layer_facts``. Keras 3 and Keras 2 agree on this
order for every class there (checked against files the real frameworks wrote: ``fixtures/keras2``
and ``fixtures/keras3``).
"""

from __future__ import annotations

from typing import TypeVar

from ..errors import UnsupportedError
from .layer_facts import FACTS, MODEL_CLASSES, layer_variables

__all__ = ["ALIASES", "MODEL_CLASSES", "is_known", "layer_variables", "legacy_order",
           "same_variable", "snake_case", "unknown_class", "weights_folder"]

# Names other versions give the same variable (Keras 3 calls DepthwiseConv2D's kernel "kernel").
ALIASES = {"depthwise_kernel": {"kernel"}}

_T = TypeVar("_T")


def unknown_class(class_name: str, layer: str) -> UnsupportedError:
    """The refusal of a layer whose class modelport does not know: most often a custom class
    the program that wrote the file registered itself (@upscalerjs's ``MultiplyBeta`` and
    ``PixelShuffle``), whose code is not in the file, so no route can tell what it computes."""
    return UnsupportedError(
        f"layer class {class_name!r} is unknown to modelport: it is none of the Keras or "
        "tfjs-layers classes modelport converts, and a custom class (one the program that "
        "wrote the file registered itself) keeps its code outside the file",
        layer=layer,
        hint="no route converts a layer whose computation the file does not hold: export the "
             "model again from its program with stock layers in its place, or as a TF.js "
             "graph-model (tensorflowjs_converter --output_format=tfjs_graph_model), which "
             "stores the ops the layer runs; modelport converts that to ONNX")


def same_variable(stored_name: str, canonical: str) -> bool:
    """Whether a stored variable name (last path part, ``:0`` dropped) is ``canonical``."""
    return stored_name == canonical or stored_name in ALIASES.get(canonical, ())


def is_known(class_name: str) -> bool:
    """Whether modelport knows which variables a layer of ``class_name`` owns."""
    facts = FACTS.get(class_name)
    return facts is not None and facts.variables is not None


def legacy_order(items: list[tuple[_T, bool]]) -> list[_T]:
    """Keras's HDF5 order: trainable variables first, then the others, each in natural order."""
    return [x for x, t in items if t] + [x for x, t in items if not t]


def snake_case(class_name: str) -> str:
    """Keras's ``to_snake_case``: the name ``.keras`` files use for a layer's weight folder."""
    import re

    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def weights_folder(class_name: str) -> str:
    """The folder a ``.keras`` file keeps a layer's variables in (before Keras's ``_<n>``): its
    Python class's name in snake case (``grouped_query_attention``)."""
    facts = FACTS.get(class_name)
    python = facts.python_class if facts is not None else None
    return snake_case(python or class_name)
