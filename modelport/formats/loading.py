"""Reading any model file modelport knows: the format is sniffed from the content."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .._lazy import DeferredModule
from ..errors import UnsupportedError
from ..models import LayersModel, TfjsGraph
from . import keras_h5, keras_v3, sniff, tfjs_layers

if TYPE_CHECKING:
    from typing import TypeAlias

    import onnx_ir as ir

    Model: TypeAlias = LayersModel | ir.Model | TfjsGraph
    """What ``load`` returns: Keras and TF.js layers-models are ``LayersModel``, ``.onnx``
    files ``onnx_ir.Model``, TF.js graph-models ``TfjsGraph``."""
else:
    # onnx_ir (with onnx and ml_dtypes under it) is imported when an ONNX model is read, or when
    # ``Model`` or ``load``'s annotations are read, not by routes that never meet ONNX; ``load``
    # spells the union out, since ``typing.get_type_hints`` reads only the module's globals.
    ir = DeferredModule("onnx_ir")

    def __getattr__(name: str) -> object:
        """``Model``, made on first use (hidden from type checkers, which read the alias)."""
        if name == "Model":
            union = LayersModel | ir.Model | TfjsGraph
            globals()["Model"] = union
            return union
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_READERS = {sniff.KERAS_H5: keras_h5.read, sniff.KERAS_V3: keras_v3.read,
            sniff.TFJS_LAYERS: tfjs_layers.read}


def load(path: str | os.PathLike, *, format: str | None = None, scan_values: bool = True
         ) -> LayersModel | ir.Model | TfjsGraph:
    """Read a model: a ``LayersModel`` for Keras ``.h5``/``.keras`` files and TF.js
    layers-models, an ``onnx_ir.Model`` for ``.onnx`` files. Weights holding NaN or Inf are
    logged as warnings (``scan_values=False``: left to the caller, see ``api.core._scan``)."""
    fmt = format or sniff.sniff(path)
    if fmt == sniff.ONNX:
        from . import onnx as onnx_format

        return onnx_format.read(path, scan_values=scan_values)
    if fmt == sniff.TFJS_GRAPH:
        from . import tfjs_graph

        return tfjs_graph.read(path)
    reader = _READERS.get(fmt)
    if reader is None:
        raise UnsupportedError(f"reading {fmt} models is not supported yet",
                               file=path)
    return reader(path, scan_values=scan_values)
