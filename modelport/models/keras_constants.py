"""NumPy arrays passed to a Keras 3 operation node, in the form Keras 3 writes them.

Keras 3 serializes an array argument of a ``keras.ops`` call in a functional graph (say
``ops.subtract(c, x)`` with a NumPy ``c``) as ``{"class_name": "__numpy__", "config":
{"value": nested lists, "dtype": name}}`` (``keras.src.saving.serialization_lib``) and turns it
back into an array when it loads the model. The ONNX raising writes constants of operations so;
shape inference and the NumPy reference read them back here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

NUMPY = "__numpy__"


def numpy_arg(value: np.ndarray) -> dict:
    """``value`` as Keras 3 writes a NumPy argument of an operation node."""
    value = np.asarray(value)
    return {"class_name": NUMPY, "config": {"value": value.tolist(), "dtype": str(value.dtype)}}


def numpy_value(obj: Any) -> np.ndarray | None:
    """The array a ``__numpy__`` argument holds; None for anything else."""
    if not isinstance(obj, dict) or obj.get("class_name") != NUMPY:
        return None
    config = obj.get("config")
    if not isinstance(config, dict) or "value" not in config:
        return None
    return np.asarray(config["value"], dtype=np.dtype(config.get("dtype") or "float32"))
