"""onnx_ir attributes and tensors from Python values, typed up front.

onnx_ir's conveniences (``ir.tensor``, attribute inference) ask a value whether it is a graph,
a tensor or a type through runtime-checkable Protocols: about 20 us a value, which made a tenth
of converting MobileNetV2. The values converters pass are NumPy arrays and plain ints, floats,
strings and lists of them, typed here directly; anything else goes to onnx_ir as is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir


def typed(attrs: dict[str, Any] | None) -> dict[str, Any] | None:
    """``attrs`` with plain values made ``ir.Attr``s (``None`` values dropped)."""
    if not attrs:
        return None
    out: dict[str, Any] = {}
    for name, value in attrs.items():
        if value is None:
            continue
        out[name] = _attr(name, value)
    return out or None


def _attr(name: str, value: Any) -> Any:
    if isinstance(value, (int, np.integer)):  # bool too: ONNX has no bool attribute
        return ir.AttrInt64(name, int(value))
    if isinstance(value, (float, np.floating)):
        return ir.AttrFloat32(name, float(value))
    if isinstance(value, str):
        return ir.AttrString(name, value)
    if isinstance(value, (list, tuple)) and value:
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
            return ir.AttrInt64s(name, [int(v) for v in value])
        if all(isinstance(v, (float, np.floating)) for v in value):
            return ir.AttrFloat32s(name, [float(v) for v in value])
        if all(isinstance(v, str) for v in value):
            return ir.AttrStrings(name, list(value))
    return value


def tensor(array: np.ndarray, name: str | None = None) -> ir.TensorProtocol:
    """An ``ir.Tensor`` of a numeric NumPy array (``ir.tensor`` for anything else)."""
    if isinstance(array, np.ndarray) and array.dtype.kind in "biuf":
        return ir.Tensor(array, name=name)
    return ir.tensor(array, name=name)
