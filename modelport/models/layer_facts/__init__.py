"""What modelport knows about each Keras layer class, declared once per class.

Each family module (``core``, ``activations``, ``conv``, ``pooling``, ``normalization``,
``merging``, ``reshaping``, ``recurrent``, ``attention``, the same families as the ONNX
lowering and the NumPy reference) declares its classes with ``declare(name, ...)`` (made by
``declarer(__name__)``): a ``LayerFacts`` record in ``FACTS`` holding the class's shape rule,
its variables (names, order, trainable), the shapes they must have, what tfjs-layers 4.22 makes
of it and how Keras 2 spells
its config. Declaring a class twice is an error.

The machinery that uses the facts lives beside this package and walks graphs and configs:
``keras_shapes`` (shape inference), ``weight_shapes`` (the variables' shapes), ``keras_variables``
(which variables a layer owns, for every format), ``keras_dialect`` (Keras 2 <-> 3),
``tfjs_support`` (what tfjs-layers can load). Facts about a route (how a class is lowered to
ONNX, how the NumPy reference computes it) are registered with that route's code.
"""

from __future__ import annotations

# Importing the families declares their classes.
from . import (  # noqa: F401
    activations,
    attention,
    conv,
    core,
    merging,
    normalization,
    pooling,
    recurrent,
    reshaping,
)
from .base import (
    FACTS,
    MODEL_CLASSES,
    SHAPE_RULES,
    VARIABLE_SHAPE_RULES,
    FactView,
    LayerFacts,
    ShapeRule,
    TensorSpec,
    TfjsRule,
    VariableShapeRule,
    VariablesRule,
    declarer,
    layer_variables,
    shape_rule,
)

__all__ = [
    "FACTS",
    "MODEL_CLASSES",
    "SHAPE_RULES",
    "VARIABLE_SHAPE_RULES",
    "FactView",
    "LayerFacts",
    "ShapeRule",
    "TensorSpec",
    "TfjsRule",
    "VariableShapeRule",
    "VariablesRule",
    "declarer",
    "layer_variables",
    "shape_rule",
]
