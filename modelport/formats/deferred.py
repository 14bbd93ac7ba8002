"""Weights left in their file until needed.

A read-back check (``api.convert`` reads what it wrote and compares it bit for bit with what it
meant to write) needs every weight once, one at a time; reading the whole written model first
would hold a second copy of the weights. Readers called with ``deferred=True`` put a
``Deferred`` stand-in where each large weight goes: it has the weight's shape and dtype (a
read-only broadcast zero, no data), and ``load()`` reads the stored bytes into a new array.
Everything else (structure, names, shapes, dtypes, declared sizes) is read and checked as usual.

A reader that can also hand out the stored bytes piece by piece (``stream``) lets the check
compare them with what was written without ever holding the weight: each piece is read into
one small buffer and compared while it is still in the CPU cache. Reading a whole weight into
memory and comparing it afterwards costs twice the memory traffic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..fsutil import io_workers
from . import memory

# Weights smaller than this are read at once even when deferring.
DEFER_MIN_BYTES = 1 << 20


Loader = Callable[[np.ndarray | None], np.ndarray]
# stream(n): the stored bytes in order, in pieces of at most n bytes; each is valid until the next
Streamer = Callable[[int], Iterator[memoryview]]

# Bytes per piece when streaming: small enough to stay in the CPU cache between read and compare.
PIECE_BYTES = 1 << 20
# Weights compared at once: file reads and numpy comparisons release the GIL, so a read-back
# check runs at the speed of several cores; each worker holds one piece.
WORKERS = io_workers()


class Deferred(np.ndarray):
    """A stored weight not read yet: its shape and dtype, no data. ``load(out)`` reads it into
    ``out`` (an array of its shape and dtype) or, with ``None``, into a new array."""

    load: Loader
    stream: Streamer | None = None


def stand_in(shape: tuple[int, ...], dtype: np.dtype, load: Loader,
             stream: Streamer | None = None) -> Deferred:
    """A Deferred of ``shape`` and ``dtype`` (a broadcast zero: no memory) that ``load`` reads
    and ``stream``, if given, streams."""
    array = np.broadcast_to(np.zeros((), dtype), tuple(shape)).view(Deferred)
    array.load = load
    array.stream = stream
    return array


def streamed_same_bits(expected: np.ndarray, stored: np.ndarray) -> bool | None:
    """Whether ``stored`` (a ``Deferred`` that can stream) holds exactly ``expected``'s bytes,
    read piece by piece; ``None`` when that cannot be told this way (``stored`` is not a
    streaming stand-in, or the two differ in shape or dtype, or ``expected`` is not a plain
    C-ordered array), and the caller compares loaded arrays instead."""
    stream = getattr(stored, "stream", None) if isinstance(stored, Deferred) else None
    if (stream is None or isinstance(expected, Deferred) or expected.shape != stored.shape
            or expected.dtype != stored.dtype or expected.dtype.hasobject
            or not expected.flags.c_contiguous):
        return None
    want = expected.reshape(-1).view(np.uint8)
    done = 0
    for piece in stream(PIECE_BYTES):
        got = np.frombuffer(piece, np.uint8)
        n = got.size
        if done + n > want.size:
            return False
        mine = want[done:done + n]
        if n % 8 == 0:  # the same bytes compared as fewer, wider elements
            got, mine = got.view(np.uint64), mine.view(np.uint64)
        if not np.array_equal(got, mine):
            return False
        done += n
    return done == want.size


class Scratch:
    """One reusable buffer for deferred weights that are looked at one after another: what
    ``take`` returns is valid until the next ``take``."""

    def __init__(self) -> None:
        self.buffer: np.ndarray | None = None

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An array of ``shape`` and ``dtype`` over the buffer (grown when too small), valid until
        the next ``take``."""
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


def streamed_verdicts(pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[bool | None]:
    """``streamed_same_bits(expected, stored)`` of each pair, up to ``WORKERS`` at a time (each
    reads its own byte range through its own file handles)."""
    verdicts: list[bool | None] = [None] * len(pairs)
    todo = [i for i, (_, stored) in enumerate(pairs)
            if isinstance(stored, Deferred) and stored.stream is not None]
    workers = min(WORKERS, len(todo))
    if workers <= 1:
        for i in todo:
            verdicts[i] = streamed_same_bits(*pairs[i])
        return verdicts
    with ThreadPoolExecutor(workers, thread_name_prefix="modelport-read-back") as pool:
        for i, verdict in zip(todo, pool.map(lambda i: streamed_same_bits(*pairs[i]), todo)):
            verdicts[i] = verdict
    return verdicts
