"""Weights left in their file until needed.

A read-back check (``api.convert`` reads what it wrote and compares it bit for bit with what it
meant to write) needs every weight once, one at a time; reading the whole written model first
would hold a second copy of the weights. Readers called with ``deferred=True`` put a
``Deferred`` stand-in where each large weight goes: it has the weight's shape and dtype (a
read-only broadcast zero, no data), and ``load()`` reads the stored bytes into a new array.
Everything else (structure, names, shapes, dtypes, declared sizes) is read and checked as usual.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Weights smaller than this are read at once even when deferring.
DEFER_MIN_BYTES = 1 << 20


class Deferred(np.ndarray):
    """A stored weight not read yet: its shape and dtype, no data; ``load()`` reads it."""

    load: Callable[[], np.ndarray]


def stand_in(shape: tuple[int, ...], dtype: np.dtype, load: Callable[[], np.ndarray]) -> Deferred:
    array = np.broadcast_to(np.zeros((), dtype), tuple(shape)).view(Deferred)
    array.load = load
    return array


def materialize(array: np.ndarray) -> np.ndarray:
    """``array`` itself, or the stored weight a ``Deferred`` stands for, read now."""
    load = getattr(array, "load", None) if isinstance(array, Deferred) else None
    return load() if load is not None else array
