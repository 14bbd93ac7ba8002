"""Layer configs hold finite numbers only: a Keras config is JSON, which has no ``Infinity`` or
``NaN``.

Python's ``json`` writes them anyway, and every reader (Keras, tfjs-layers, modelport's own
read-back) then refuses the file as not JSON, after it was written: a valid source ended in
exit 3, and ``inspect``, which writes nothing, called the route possible. A config value that
is not finite (a bound, a shift or a constant a raising could not express otherwise) is
refused before anything is written, naming the layer, by ``convert`` and ``inspect`` alike.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import UnsupportedError
from . import LayersModel


def check_finite(model: LayersModel) -> None:
    """Refuse ``model`` where a layer's config (nested models too) holds a non-finite float:
    an UnsupportedError naming the first such layer and key."""
    for layer in model.layers:
        where = _non_finite(layer.config, [])
        for k, node in enumerate(layer.inbound_nodes):
            # a keras.ops node's constants are call arguments (ops.pad's constant_values)
            where = where or _non_finite([node.args, node.kwargs], [f"call {k}"])
        if where is not None:
            path, value = where
            key = ".".join(str(p) for p in path)
            raise UnsupportedError(
                f"{layer.class_name}: its config holds {value} at {key!r}, and a Keras config "
                "is JSON, which has no infinity or NaN", layer=layer.name,
                hint="ONNX and a TF.js graph-model hold such constants as tensors: --to onnx "
                     "or --to tfjs-graph")
        if layer.model is not None:
            check_finite(layer.model)


def _non_finite(value: Any, path: list[Any]) -> tuple[list[Any], float] | None:
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, value)
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, [*path, key])
        if found is not None:
            return found
    return None
