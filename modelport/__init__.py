"""modelport: move trained models between Keras (.h5, .keras), ONNX and TF.js, and prove it.

The public API is small::

    import modelport
    model = modelport.load("model.h5")               # a LayersModel
    modelport.save(model, "web_model/", quantize=["uint8"])
    report = modelport.convert("model.keras", "web_model/")
    parity = modelport.validate("model.onnx", "model.h5")   # a ParityReport
"""

__version__ = "0.1.0"

from ._lazy import defer_heavy_imports  # noqa: E402

defer_heavy_imports()

from .api import ConversionReport, convert, inspect, load, save, validate  # noqa: E402
from .errors import (  # noqa: E402
    FormatError,
    ModelportError,
    OutputExistsError,
    ParityError,
    UnsafeInputError,
    UnsupportedError,
)
from .models import LayersModel  # noqa: E402

__all__ = [
    "__version__", "load", "save", "convert", "validate", "inspect", "ConversionReport",
    "LayersModel",
    "ModelportError", "FormatError", "UnsafeInputError", "UnsupportedError", "OutputExistsError",
    "ParityError",
]
