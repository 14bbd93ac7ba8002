"""Matrix products and biases: MatMul, BatchMatMul(V2/V3), _FusedMatMul, Einsum, BiasAdd.

* ``MatMul`` is 2-D with ``transpose_a``/``transpose_b``; ``BatchMatMul`` multiplies the last
  two axes with ``adj_x``/``adj_y`` (adjoint: conjugate transpose) over equal batch dimensions,
  ``V2``/``V3`` broadcast them (``V3`` also names the output type ``Tout``).
* ``_FusedMatMul`` is ``MatMul`` followed by its ``fused_ops`` (BiasAdd, then an activation),
  like the fused convolutions.
* ``BiasAdd`` adds a vector along the channel axis: the last one, or axis 1 for ``NCHW``.
* ``Einsum`` is NumPy's einsum (ellipsis broadcasting and all).
"""

from __future__ import annotations

import numpy as np

from ._base import Op, register
from .conv import apply_fused


def _matmul(op: Op) -> np.ndarray:
    a, b = op.arg(0), op.arg(1)
    if a.ndim != 2 or b.ndim != 2:
        raise op.invalid(f"MatMul of ranks {a.ndim} and {b.ndim} (both must be 2)")
    if op.b("transpose_a"):
        a = a.T
    if op.b("transpose_b"):
        b = b.T
    return np.matmul(a, b)


@register("MatMul")
def _matmul_op(op: Op) -> np.ndarray:
    return _matmul(op)


@register("_FusedMatMul")
def _fused_matmul(op: Op) -> np.ndarray:
    return apply_fused(op, _matmul(op), op.inputs[2:])


def _adjoint(x: np.ndarray) -> np.ndarray:
    x = np.swapaxes(x, -1, -2)
    return np.conj(x) if np.iscomplexobj(x) else x


@register("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
def _batch_matmul(op: Op) -> np.ndarray:
    a, b = op.arg(0), op.arg(1)
    if a.ndim < 2 or b.ndim < 2:
        raise op.invalid(f"BatchMatMul of ranks {a.ndim} and {b.ndim} (both must be >= 2)")
    if op.type == "BatchMatMul" and a.shape[:-2] != b.shape[:-2]:
        raise op.invalid(f"batch dimensions {list(a.shape[:-2])} and {list(b.shape[:-2])} "
                         "differ (BatchMatMul does not broadcast)")
    if op.b("adj_x"):
        a = _adjoint(a)
    if op.b("adj_y"):
        b = _adjoint(b)
    y = np.matmul(a, b)
    if op.type == "BatchMatMulV3":
        y = y.astype(op.dtype("Tout", str(y.dtype)), copy=False)
    return y


@register("BiasAdd")
def _bias_add(op: Op) -> np.ndarray:
    x, bias = op.x, op.arg(1)
    if bias.ndim != 1:
        raise op.invalid(f"bias of rank {bias.ndim} (must be a vector)")
    axis = 1 if op.data_format() in ("NCHW", "NCDHW") and x.ndim > 2 else x.ndim - 1
    if x.shape[axis] != bias.shape[0]:
        raise op.invalid(f"bias of {bias.shape[0]} for {x.shape[axis]} channels")
    shape = [1] * x.ndim
    shape[axis] = -1
    return (x + bias.reshape(shape)).astype(x.dtype, copy=False)


@register("Einsum")
def _einsum(op: Op) -> np.ndarray:
    equation = op.s("equation")
    if not equation:
        raise op.invalid("has no equation")
    y = np.einsum(equation.replace(" ", ""), *op.inputs, optimize=True)
    return np.asarray(y).astype(op.x.dtype, copy=False)
