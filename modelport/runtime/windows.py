"""Receptive fields as a strided view: the im2col of both NumPy executors (Keras semantics in
``keras_reference``, TF op semantics in ``tfjs_reference``), without the copy."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def windows(x: np.ndarray, kernel: tuple, strides: tuple, dilation: tuple,
            pads: list[tuple[int, int]], pad_value: float = 0.0) -> np.ndarray:
    """(N, *out, C, *k) view of every receptive field (im2col without the copy)."""
    n = x.ndim - 2
    if any(p != (0, 0) for p in pads):
        x = np.pad(x, [(0, 0), *pads, (0, 0)], constant_values=pad_value)
    k_eff = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    if any(e > s for e, s in zip(k_eff, x.shape[1:-1])):
        raise ValueError(f"window {k_eff} is larger than the padded input {x.shape[1:-1]}")
    view = sliding_window_view(x, k_eff, axis=tuple(range(1, n + 1)))
    index = ((slice(None),) + tuple(slice(None, None, s) for s in strides) + (slice(None),)
             + tuple(slice(None, None, d) for d in dilation))
    return view[index]
