"""What \"identical\" means wherever modelport proves a copy (a written model read back, a
subgraph lowered again): same shape, dtype and bit pattern."""

from __future__ import annotations

import numpy as np

_UINTS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_CHUNK = 1 << 18


def same_bits(x: np.ndarray, y: np.ndarray) -> bool:
    """Same shape, dtype and bit pattern (NaN payloads and -0.0 included); object (string)
    arrays are compared by value. No byte copies of either array are made."""
    if x.shape != y.shape or x.dtype != y.dtype:
        return False
    if x.dtype.hasobject:
        return bool(np.array_equal(x, y))
    as_uint = _UINTS.get(x.dtype.itemsize)
    if as_uint is None or x.dtype.fields is not None:  # complex128, long double, strings, records
        x = np.ascontiguousarray(x).reshape(-1).view(np.uint8)
        y = np.ascontiguousarray(y).reshape(-1).view(np.uint8)
        return bool(np.array_equal(x, y))
    x, y = x.view(as_uint), y.view(as_uint)
    if x.size > _CHUNK and x.flags.c_contiguous and y.flags.c_contiguous:
        # in slices: the temporaries stay small (and in cache) instead of a bool array as big
        # as the weight, freshly allocated for every weight
        x, y = x.reshape(-1), y.reshape(-1)
        return all(np.array_equal(x[i:i + _CHUNK], y[i:i + _CHUNK])
                   for i in range(0, x.size, _CHUNK))
    return bool(np.array_equal(x, y))
