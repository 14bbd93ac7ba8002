"""Buffers for weights that are about to be filled from a file.

Fresh anonymous memory is paid for page by page on first touch; on virtualized hosts that is
several times the cost of the read that fills it (measured: 2.8 s per GB of page faults against
0.35 s for the same memory mapped with ``MAP_POPULATE``, which faults it in one kernel call).
``empty`` hands out large buffers that way where the platform has it; the array owns its
mapping and returns it to the system when freed.
"""

from __future__ import annotations

import math
import mmap

import numpy as np

# Below this, ordinary allocations (the allocator's recycled memory) are as fast.
POPULATE_MIN_BYTES = 1 << 20
_FLAGS = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0) \
    | getattr(mmap, "MAP_POPULATE", 0)


def empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A writable, C-ordered, uninitialized array, its memory faulted in up front when large."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < POPULATE_MIN_BYTES or not getattr(mmap, "MAP_POPULATE", 0) \
            or dtype.hasobject:
        return np.empty(shape, dtype)
    try:
        buffer = mmap.mmap(-1, nbytes, flags=_FLAGS)
    except (OSError, ValueError, OverflowError):
        return np.empty(shape, dtype)
    return np.frombuffer(buffer, dtype, count=math.prod(shape)).reshape(shape)
