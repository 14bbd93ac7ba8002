"""The library's API: load, save, convert, validate, inspect.

It orchestrates (sniff, read, route, write, check) and holds no layer or op knowledge: formats
read and write, converters translate, ``check`` proves the result. ``routes`` is the table of
conversions, ``options`` the option objects and where each option applies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..check.options import CheckOptions
from ..formats.loading import load
from .core import convert, convert_with, human_bytes, save
from .inspection import Inspection, inspect
from .options import ConvertOptions
from .report import ConversionReport

if TYPE_CHECKING:
    from ..check.validate import validate, validate_with
    from ..formats.loading import Model

# Imported on first use: the numeric check and the ``Model`` union need onnx_ir (and onnx under
# it), which a conversion that never meets ONNX (Keras -> TF.js layers-model) does not import.
_DEFERRED = {"validate": "..check.validate", "validate_with": "..check.validate",
             "Model": "..formats.loading"}

# Hidden from type checkers, which read the names above: a module ``__getattr__`` would make them
# type every unknown name as ``object`` instead of reporting it.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """``validate``, ``validate_with`` and ``Model``, imported on first use."""
        if name not in _DEFERRED:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(_DEFERRED[name], __name__), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        """The module's names, the deferred ones included."""
        return sorted({*globals(), *_DEFERRED})

__all__ = ["CheckOptions", "ConversionReport", "ConvertOptions", "Inspection", "Model",
           "convert", "convert_with", "human_bytes", "inspect", "load", "save", "validate",
           "validate_with"]
