"""Merge layers: elementwise over several inputs, Concatenate, Dot."""

from __future__ import annotations

from ...errors import FormatError
from .base import TensorSpec, TfjsRule, declarer
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


def _tfjs_wrong_axis(cfg: dict) -> bool:
    """tfjs-layers 4.22's backend ``concatenate`` turns any negative axis into the rank, i.e.
    the last axis: right for -1, another axis's numbers for -2 and below (its output shape
    still says Keras's, so nothing fails)."""
    return int(cfg.get("axis", -1)) < -1


def _tfjs_concatenate(layer, specs) -> tuple[dict, str] | None:
    """A negative axis other than -1 counted from the front, where every call's rank is known
    (the same concatenation in Keras; what tfjs-layers needs to compute it)."""
    axis = int(layer.config.get("axis", -1))
    if axis >= -1:
        return None
    ranks = set()
    for node in layer.inbound_nodes:
        refs = node.inputs()
        spec = specs.get((refs[0].layer, refs[0].node, refs[0].tensor)) if refs else None
        if spec is None:
            return None
        ranks.add(len(spec.shape))
    if len(ranks) != 1:
        return None
    rank = ranks.pop()
    if not -rank <= axis < 0:
        return None
    note = (f"{layer.name}: Concatenate axis {axis} -> {axis + rank} (tfjs-layers 4.22 "
            "concatenates along the last axis for any negative one)")
    return {**layer.config, "axis": axis + rank}, note


declare("Concatenate", shape=_concatenate, variables=no_variables, tfjs=True, tfjs_blockers=(
    TfjsRule(_tfjs_wrong_axis,
             "tfjs-layers 4.22 concatenates along the last axis for any negative axis, and "
             "this one's rank is unknown here, so it cannot be counted from the front"),),
        tfjs_rewrite=_tfjs_concatenate)


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
