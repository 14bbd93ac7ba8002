"""Merge layers: elementwise merges, Concatenate, Dot.

Elementwise merges broadcast; an input of lower rank first gets new axes at position 1 until
the ranks agree (Keras's ``_reshape_required`` path). Output mask: elementwise merges OR the
input masks when every input has one; Concatenate broadcasts each mask to its input, all-true
for unmasked inputs, concatenates along ``axis`` and reduces with ``any`` over the last axis;
Dot has none.

The elementwise classes double as the ``keras.ops`` nodes that Python arithmetic on Keras tensors
records in a functional graph (``x + 3.0`` is an ``Add`` operation on ``[x, 3.0]``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce

import numpy as np

from ._base import Call, LayerFn, Masked, as_float, register, unsupported


def _same_rank(xs: list[np.ndarray]) -> list[np.ndarray]:
    top = max(x.ndim for x in xs)
    return [x.reshape(x.shape[:1] + (1,) * (top - x.ndim) + x.shape[1:]) for x in xs]


def _or_mask(call: Call):
    masks = call.masks
    if not masks or any(m is None for m in masks):
        return None
    return reduce(np.logical_or, [np.asarray(m, bool) for m in masks])


def is_operation(call: Call) -> bool:
    """A ``keras.ops`` node (``x + 3.0`` in a functional graph), not a layer: operations are
    called on positional operands and their configs hold no layer keys."""
    return "trainable" not in call.cfg and "dtype" not in call.cfg


def _operation(call: Call, op) -> Masked:
    """``keras.ops`` elementwise arithmetic: NumPy broadcasting, Python scalars are weak (they
    take the tensor's dtype)."""
    arrays = [a for a in call.args if isinstance(a, np.ndarray)]
    dtype = next((a.dtype for a in arrays if a.dtype.kind == "f"), None)
    operands = [a if isinstance(a, np.ndarray) else np.asarray(a, dtype=dtype)
                for a in call.args]
    result = np.asarray(op(operands))
    return Masked([result.astype(dtype) if dtype is not None else result], [None])


def _elementwise(op):
    def fn(call: Call) -> Masked:
        if is_operation(call):
            return _operation(call, op)
        xs = _same_rank([as_float(x, call.cfg) for x in call.inputs])
        if len(xs) < 2:
            raise unsupported(call, f"needs at least 2 inputs, got {len(xs)}")
        return Masked([op(xs).astype(xs[0].dtype)], [_or_mask(call)])
    return fn


def _refuse_operation(call: Call) -> None:
    if is_operation(call):
        raise unsupported(call, f"the keras.ops form of {call.class_name} (an operation node, "
                                "not the layer) is not implemented")


def _subtract(xs: list[np.ndarray]) -> np.ndarray:
    if len(xs) != 2:
        raise ValueError(f"Subtract takes exactly 2 inputs, got {len(xs)}")
    return xs[0] - xs[1]


register("Add")(_elementwise(lambda xs: reduce(np.add, xs)))
register("Subtract")(_elementwise(_subtract))
register("Multiply")(_elementwise(lambda xs: reduce(np.multiply, xs)))
register("Maximum")(_elementwise(lambda xs: reduce(np.maximum, xs)))
register("Minimum")(_elementwise(lambda xs: reduce(np.minimum, xs)))
_average = _elementwise(lambda xs: reduce(np.add, xs) / np.float32(len(xs)))


@register("Average")
def _average_layer(call: Call) -> Masked:
    _refuse_operation(call)  # ops.average is a weighted mean along an axis
    return _average(call)


# keras.ops arithmetic that Python operators on Keras tensors leave in functional graphs.
def _arithmetic(fn: Callable[[list[np.ndarray]], np.ndarray]) -> LayerFn:
    """The layer function of a keras.ops arithmetic ``fn`` of the operands."""
    def layer(call: Call) -> Masked:
        return _operation(call, fn)
    return layer


for _name, _op in [("TrueDivide", lambda xs: xs[0] / xs[1]), ("Divide", lambda xs: xs[0] / xs[1]),
                   ("Power", lambda xs: np.power(xs[0], xs[1]))]:
    register(_name)(_arithmetic(_op))
register("Negative")(lambda call: _operation(call, lambda xs: -xs[0]))


@register("Concatenate")
def _concatenate(call: Call) -> Masked:
    xs = call.inputs
    axis = int(call.cfg.get("axis", -1))
    floats = [x for x in xs if x.dtype.kind == "f"]
    if floats:
        xs = [as_float(x, call.cfg) for x in xs]
    y = np.concatenate(xs, axis=axis)
    masks = call.masks
    if all(m is None for m in masks):
        return Masked([y], [None])
    full = []
    for x, m in zip(xs, masks):
        if m is None:
            full.append(np.ones(x.shape, bool))
        elif m.ndim < x.ndim:
            full.append(np.broadcast_to(np.expand_dims(np.asarray(m, bool), -1), x.shape))
        else:
            full.append(np.asarray(m, bool))
    return Masked([y], [np.any(np.concatenate(full, axis=axis), axis=-1)])


def _l2_normalize(x: np.ndarray, axis: int) -> np.ndarray:
    x64 = x.astype(np.float64)
    with np.errstate(divide="ignore"):
        inv = np.minimum(1.0 / np.sqrt(np.sum(x64 * x64, axis=axis, keepdims=True)), 1e7)
    return (x64 * inv).astype(x.dtype)


@register("Dot")
def _dot(call: Call) -> list[np.ndarray]:
    _refuse_operation(call)  # ops.dot is numpy's dot, not the layer's batch dot
    xs = [as_float(x, call.cfg) for x in call.inputs]
    if len(xs) != 2:
        raise unsupported(call, f"Dot needs exactly 2 inputs, got {len(xs)}")
    a, b = xs
    axes = call.cfg["axes"]
    axes = [axes, axes] if isinstance(axes, int) else list(axes)
    axes = [int(axes[0]) % a.ndim, int(axes[1]) % b.ndim]
    if 0 in axes:
        raise unsupported(call, "cannot contract the batch axis")
    if call.cfg.get("normalize"):
        a, b = _l2_normalize(a, axes[0]), _l2_normalize(b, axes[1])
    # out[n, a-rest..., b-rest...] = sum_k a[n, ..k..] b[n, ..k..]
    letters = "abcdefghijklmopqrstuvwxy"  # neither n (batch) nor z (contracted)
    la = ["n"] + [letters[i] for i in range(a.ndim - 1)]
    lb = ["n"] + [letters[a.ndim - 1 + i] for i in range(b.ndim - 1)]
    lb[axes[1]] = la[axes[0]] = "z"
    out = [c for c in la if c != "z"] + [c for c in lb[1:] if c != "z"]
    y = np.einsum(f"{''.join(la)},{''.join(lb)}->{''.join(out)}", a, b)
    return [y.reshape(y.shape[0], 1) if y.ndim == 1 else y]
