"""Graph plumbing: inputs, constants and the ops that pass values through unchanged."""

from __future__ import annotations

import numpy as np

from ._base import Op, register


@register("Placeholder")
def _placeholder(op: Op) -> np.ndarray:
    if op.value is None:
        raise op.invalid("is not fed (every Placeholder the outputs depend on needs a value)")
    return op.value


@register("PlaceholderWithDefault")
def _placeholder_with_default(op: Op) -> np.ndarray:
    return op.x if op.value is None else op.value


@register("Const")
def _const(op: Op) -> np.ndarray:
    if op.value is None:
        raise op.invalid("has no value in the weights")
    return op.value


@register("Identity", "StopGradient")
def _identity(op: Op) -> np.ndarray:
    return op.x


@register("IdentityN")
def _identity_n(op: Op) -> list[np.ndarray]:
    return list(op.inputs)


@register("NoOp")
def _noop(op: Op) -> list[np.ndarray]:
    return []
