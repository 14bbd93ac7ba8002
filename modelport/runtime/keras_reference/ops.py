"""Keras operations that Keras 3 records as nodes of a functional graph.

When a Keras 3 functional model is built, the masks that layers compute (``compute_mask``) are
computed symbolically, outside any layer, so each ``keras.ops`` call becomes a graph node (an
"operation layer" with a config holding its arguments), and a mask a layer consumes is
serialized as an explicit ``mask=`` argument of that layer's node. ``Embedding(mask_zero=True)``
records ``NotEqual(ids, 0)``; ``Masking`` records ``NotEqual`` + ``Any``; merge layers
``LogicalOr``; ``Concatenate`` ``ExpandDims``/``ZerosLike``/``OnesLike``/``LogicalOr``/an op
``Concatenate``/``Any``. These are those operations (``Concatenate``'s op form shares the
layer's semantics and registration). Operations carry no masks.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

from ._base import Call, register


def _operands(call: Call) -> list:
    """Positional operands: tensors as arrays, Python scalars as they are."""
    return list(call.args)


def _dtype(name, like: np.ndarray) -> np.dtype:
    return like.dtype if name is None else np.dtype(name)


def _binary(fn):
    def run(call: Call) -> list[np.ndarray]:
        a, b = _operands(call)[:2]
        return [fn(a, b)]
    return run


# two operands, NumPy's broadcasting (and Keras's); matmul over the last two axes
for _name, _fn in {"NotEqual": np.not_equal, "Equal": np.equal, "Greater": np.greater,
                   "GreaterEqual": np.greater_equal, "Less": np.less,
                   "LessEqual": np.less_equal, "Matmul": np.matmul}.items():
    register(_name)(_binary(_fn))


def _reduction(fn):
    def run(call: Call) -> list[np.ndarray]:
        axis = call.cfg.get("axis")
        axis = tuple(axis) if isinstance(axis, list) else axis
        return [fn(call.x, axis=axis, keepdims=bool(call.cfg.get("keepdims", False)))]
    return run


register("Any")(_reduction(np.any))
register("All")(_reduction(np.all))


@register("LogicalOr")
def _logical_or(call: Call) -> list[np.ndarray]:
    return [reduce(np.logical_or, _operands(call))]


@register("LogicalAnd")
def _logical_and(call: Call) -> list[np.ndarray]:
    return [reduce(np.logical_and, _operands(call))]


@register("LogicalNot")
def _logical_not(call: Call) -> list[np.ndarray]:
    return [np.logical_not(call.x)]


@register("ExpandDims")
def _expand_dims(call: Call) -> list[np.ndarray]:
    axis = call.cfg.get("axis", -1)
    return [np.expand_dims(call.x, tuple(axis) if isinstance(axis, list) else axis)]


@register("Squeeze")
def _squeeze(call: Call) -> list[np.ndarray]:
    axis = call.cfg.get("axis")
    return [np.squeeze(call.x, tuple(axis) if isinstance(axis, list) else axis)]


@register("ZerosLike")
def _zeros_like(call: Call) -> list[np.ndarray]:
    return [np.zeros(call.x.shape, _dtype(call.cfg.get("dtype"), call.x))]


@register("OnesLike")
def _ones_like(call: Call) -> list[np.ndarray]:
    return [np.ones(call.x.shape, _dtype(call.cfg.get("dtype"), call.x))]


@register("Cast")
def _cast(call: Call) -> list[np.ndarray]:
    return [call.x.astype(np.dtype(call.cfg["dtype"]))]


@register("ConvertToTensor")
def _convert_to_tensor(call: Call) -> list[np.ndarray]:
    """``ops.convert_to_tensor``: Attention's ``compute_mask`` records it on the query mask."""
    return [call.x.astype(_dtype(call.cfg.get("dtype"), call.x))]


# keras.ops that the ONNX raising writes for ops no layer computes (Log, ReduceMin, ArgMax,
# ArgMin, Mod), as Keras 3 records them in functional graphs (keras.src.ops.numpy).
@register("Log")
def _log(call: Call) -> list[np.ndarray]:
    return [np.log(call.x)]


register("Min")(_reduction(np.min))


def _arg(fn):
    def run(call: Call) -> list[np.ndarray]:
        axis = call.cfg.get("axis")
        y = fn(call.x, axis=None if axis is None else int(axis)).astype(np.int32)
        if call.cfg.get("keepdims", False):
            y = np.expand_dims(y, int(axis)) if axis is not None else y.reshape(
                (1,) * call.x.ndim)
        return [y]
    return run


register("Argmax")(_arg(np.argmax))
register("Argmin")(_arg(np.argmin))


@register("Mod")
def _mod(call: Call) -> list[np.ndarray]:
    a, b = _operands(call)[:2]
    return [np.mod(a, b)]


# Sqrt, Sum, Max, Where and Pad: the ONNX raising writes them where no layer computes Sqrt,
# a reduction over arbitrary non-batch axes, Where, or a constant Pad of the last axis.
def _weak(args: list) -> list:
    """Python scalars as the float tensors' dtype (Keras's weak scalars), arrays as they are."""
    dtype = next((a.dtype for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"),
                 None)
    return [a if isinstance(a, np.ndarray) or dtype is None else np.asarray(a, dtype)
            for a in args]


@register("Reciprocal")
def _reciprocal(call: Call) -> list[np.ndarray]:
    x = np.asarray(call.x)
    with np.errstate(divide="ignore"):  # 1 / 0 is inf, as every backend gives it
        return [np.reciprocal(x) if x.dtype.kind == "f" else np.reciprocal(x.astype(np.float32))]


@register("Sqrt")
def _sqrt(call: Call) -> list[np.ndarray]:
    return [np.sqrt(call.x)]


register("Sum")(_reduction(np.sum))
register("Max")(_reduction(np.max))
register("Mean")(_reduction(np.mean))


@register("Where")
def _where(call: Call) -> list[np.ndarray]:
    cond, a, b = _operands(call)[:3]
    a, b = _weak([a, b])
    return [np.where(cond, a, b)]


@register("Pad")
def _pad(call: Call) -> list[np.ndarray]:
    args = _operands(call)  # Keras records ops.pad's constant_values as a keyword
    value = args[1] if len(args) > 1 else call.kwargs.get("constant_values")
    value = 0 if value is None else value
    pads = [tuple(int(p) for p in pair) for pair in call.cfg["pad_width"]]
    if call.cfg.get("mode", "constant") != "constant":
        raise ValueError(f"Pad mode {call.cfg.get('mode')!r} is not implemented")
    return [np.pad(call.x, pads if len(pads) > 1 else pads[0], constant_values=value)]


# Round, Floor, Ceil and TopK: the ONNX raising writes them for run-time quantization and
# detectors' post-processing (onnx_to_keras/operations_numeric.py, operations_index.py).
@register("Round")
def _round(call: Call) -> list[np.ndarray]:
    if int(call.cfg.get("decimals", 0)) != 0:
        raise ValueError("Round with decimals != 0 is not implemented")
    return [np.round(call.x)]  # halves to even, as every Keras backend and ONNX


register("Floor")(lambda call: [np.floor(call.x)])
register("Ceil")(lambda call: [np.ceil(call.x)])


@register("TopK")
def _top_k(call: Call) -> list[np.ndarray]:
    """The k largest along the last axis, descending; equal values lower index first (ONNX,
    ``lax.top_k``, ``tf.math.top_k``): a stable sort of the negated values."""
    x = call.x
    k = int(call.cfg["k"])
    keys = -(x.astype(np.int64) if x.dtype.kind in "iub" else x)
    order = np.argsort(keys, axis=-1, kind="stable")[..., :k]
    return [np.take_along_axis(x, order, axis=-1), order.astype(np.int32)]


def _gather(call: Call) -> tuple[np.ndarray, np.ndarray, int]:
    """A gather's data, indices and axis (one is required: over the flattened tensor is not
    implemented)."""
    x, indices = _operands(call)[:2]
    axis = call.cfg.get("axis")
    if axis is None:
        raise ValueError(f"{call.class_name} over the flattened tensor is not implemented")
    return x, np.asarray(indices), int(axis)


@register("TakeAlongAxis")
def _take_along_axis(call: Call) -> list[np.ndarray]:
    """``ops.take_along_axis``: NumPy's, which broadcasts the other axes (as every backend)."""
    x, indices, axis = _gather(call)
    if indices.dtype.kind not in "iu":  # as Keras: "indices must be of integer type"
        raise ValueError(f"TakeAlongAxis indices must be of integer type, got {indices.dtype}")
    return [np.take_along_axis(x, indices, axis=axis)]


@register("Take")
def _take(call: Call) -> list[np.ndarray]:
    """``ops.take`` along an axis (ONNX GatherND's index columns: a Python int index)."""
    x, indices, axis = _gather(call)
    return [np.take(x, indices, axis=axis)]
