"""Weights left in their file until needed.

A read-back check (``api.convert`` reads what it wrote and compares it bit for bit with what it
meant to write) needs every weight once, one at a time; reading the whole written model first
would hold a second copy of the weights. Readers called with ``deferred=True`` put a
``Deferred`` stand-in where each large weight goes: it has the weight's shape and dtype (a
read-only broadcast zero, no data), and ``load()`` reads the stored bytes into a new array.
Everything else (structure, names, shapes, dtypes, declared sizes) is read and checked as usual.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from . import memory

# Weights smaller than this are read at once even when deferring.
DEFER_MIN_BYTES = 1 << 20


Loader = Callable[[np.ndarray | None], np.ndarray]


class Deferred(np.ndarray):
    """A stored weight not read yet: its shape and dtype, no data. ``load(out)`` reads it into
    ``out`` (an array of its shape and dtype) or, with ``None``, into a new array."""

    load: Loader


def stand_in(shape: tuple[int, ...], dtype: np.dtype, load: Loader) -> Deferred:
    array = np.broadcast_to(np.zeros((), dtype), tuple(shape)).view(Deferred)
    array.load = load
    return array


class Scratch:
    """One reusable buffer for deferred weights that are looked at one after another: what
    ``take`` returns is valid until the next ``take``."""

    def __init__(self) -> None:
        self.buffer: np.ndarray | None = None

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        nbytes = math.prod(shape) * dtype.itemsize
        if self.buffer is None or self.buffer.nbytes < nbytes:
            self.buffer = None  # freed before its successor is made
            self.buffer = memory.empty((nbytes,), np.dtype(np.uint8))
        return self.buffer[:nbytes].view(dtype).reshape(shape)


def materialize(array: np.ndarray, scratch: Scratch | None = None) -> np.ndarray:
    """``array`` itself, or the stored weight a ``Deferred`` stands for, read now (into
    ``scratch``'s buffer when given)."""
    load = getattr(array, "load", None) if isinstance(array, Deferred) else None
    if load is None:
        return array
    return load(scratch.take(array.shape, array.dtype) if scratch is not None else None)
