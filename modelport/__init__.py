"""modelport: move trained models between Keras (.h5, .keras), ONNX and TF.js, and prove it.

The public API is small::

    import modelport
    model = modelport.load("model.h5")               # a Model: LayersModel here
    modelport.save(model, "web_model/", quantize=["uint8"])
    report = modelport.convert("model.keras", "web_model/")   # a ConversionReport
    print(report.to_json())
    parity = modelport.validate("model.onnx", "model.h5")   # a ParityReport
    info = modelport.inspect("model.onnx")                    # an Inspection
"""

import importlib
from typing import TYPE_CHECKING

from ._lazy import defer_heavy_imports
from ._version import __version__

defer_heavy_imports()

from .api import (  # noqa: E402
    CheckOptions,
    ConversionReport,
    ConvertOptions,
    Inspection,
    convert,
    convert_with,
    inspect,
    load,
    save,
)
from .check.parity import OutputReport, ParityReport, Tolerance, Tolerances  # noqa: E402
from .check.readback import Quantization, ReadbackCheck  # noqa: E402
from .errors import (  # noqa: E402
    FormatError,
    ModelportError,
    OutputError,
    OutputExistsError,
    ParityError,
    UnsafeInputError,
    UnsupportedError,
    UsageError,
)
from .models import LayersModel, TfjsGraph  # noqa: E402

if TYPE_CHECKING:
    from .api import Model, validate, validate_with

# Imported on first use (see ``api``): they need onnx_ir and onnx, which a Keras -> TF.js
# layers-model conversion never imports.
_DEFERRED = frozenset({"Model", "validate", "validate_with"})

# Hidden from type checkers, which read the names above: a module ``__getattr__`` would make them
# type every unknown name as ``object`` instead of reporting it.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """``Model``, ``validate`` and ``validate_with``, imported from ``api`` on first use."""
        if name not in _DEFERRED:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(".api", __name__), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        """The module's names, the deferred ones included."""
        return sorted({*globals(), *_DEFERRED})

__all__ = [
    "CheckOptions",
    "ConversionReport",
    "ConvertOptions",
    "FormatError",
    "Inspection",
    "LayersModel",
    "Model",
    "ModelportError",
    "OutputError",
    "OutputExistsError",
    "OutputReport",
    "ParityError",
    "ParityReport",
    "Quantization",
    "ReadbackCheck",
    "TfjsGraph",
    "Tolerance",
    "Tolerances",
    "UnsafeInputError",
    "UnsupportedError",
    "UsageError",
    "__version__",
    "convert",
    "convert_with",
    "inspect",
    "load",
    "save",
    "validate",
    "validate_with",
]
