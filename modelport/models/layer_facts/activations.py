"""Activation layers: elementwise, shaped like their input."""

from __future__ import annotations

from .base import TensorSpec, TfjsRule, declarer
from .helpers import leaf, no_variables, same_shape

declare = declarer(__name__)

declare("Activation", "Softmax", shape=same_shape, variables=no_variables, tfjs=True)

declare("ReLU", shape=same_shape, variables=no_variables, tfjs=True, tfjs_blockers=(
    TfjsRule(lambda c: bool(c.get("negative_slope")) or bool(c.get("threshold")),
             "tfjs-layers' ReLU has only max_value (no negative_slope or threshold)"),))

# Keras 2 and TF.js call the slope alpha.
declare("LeakyReLU", shape=same_shape, variables=no_variables, tfjs=True,
        keras2_names={"negative_slope": "alpha"})

declare("ELU", shape=same_shape, variables=no_variables, tfjs=True, tfjs_blockers=(
    TfjsRule(lambda c: float(c.get("alpha", 1.0)) != 1.0,
             "tfjs-layers 4.22 supports ELU only with alpha=1"),))

declare("ThresholdedReLU", shape=same_shape, variables=no_variables, tfjs=True,
        keras3_missing="Keras 3 has no ThresholdedReLU layer (ReLU(threshold=theta) differs "
                       "from it at x == theta)")


def _prelu_variable_shapes(config: dict, spec: TensorSpec) -> dict[str, tuple]:
    shape = list(spec.shape[1:])
    for axis in config.get("shared_axes") or []:
        shape[int(axis) - 1] = 1
    return {"alpha": tuple(shape)}


declare("PReLU", shape=same_shape, variables=leaf(lambda c: ["alpha"]),
        variable_shapes=_prelu_variable_shapes, tfjs=True)
