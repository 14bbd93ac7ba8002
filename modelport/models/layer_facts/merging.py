"""Merge layers: elementwise over several inputs, Concatenate, Dot."""

from __future__ import annotations

from ...errors import FormatError
from .base import TensorSpec, declarer
from .helpers import broadcast, no_variables, one, out

declare = declarer(__name__)


def _elementwise(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    # Keras broadcasts all but the batch axis, then keeps a batch size only if all inputs agree.
    if len(inputs) < 2:
        raise FormatError(f"a merge layer needs at least 2 inputs, got {len(inputs)}")
    shape = inputs[0].shape[1:]
    for x in inputs[1:]:
        shape = broadcast(shape, x.shape[1:])
    batches = {x.shape[0] for x in inputs} - {None}
    return out(cfg, ((batches.pop() if len(batches) == 1 else None), *shape))


declare("Add", "Multiply", "Average", "Maximum", "Minimum", shape=_elementwise,
        variables=no_variables, tfjs=True)
declare("Subtract", shape=_elementwise, variables=no_variables)


def _concatenate(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    axis = int(cfg.get("axis", -1))
    shape = list(one(inputs).shape)
    sizes = [x.shape[axis] for x in inputs]
    shape[axis] = None if None in sizes else sum(sizes)  # other axes: the first input's, as Keras
    return out(cfg, shape)


declare("Concatenate", shape=_concatenate, variables=no_variables, tfjs=True)


def _dot(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    if len(inputs) != 2:
        raise FormatError(f"Dot needs exactly 2 inputs, got {len(inputs)}")
    a, b = (list(x.shape) for x in inputs)
    axes = cfg["axes"]
    if isinstance(axes, int):
        axes = [axes % len(a), axes % len(b)] if axes < 0 else [axes, axes]
    a.pop(int(axes[0]))
    b.pop(int(axes[1]))
    shape = a + b[1:]  # the second batch axis pairs with the first
    return out(cfg, shape + [1] if len(shape) == 1 else shape)


declare("Dot", shape=_dot, variables=no_variables, tfjs=True)
