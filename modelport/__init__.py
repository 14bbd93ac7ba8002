"""modelport: move trained models between Keras (.h5, .keras), ONNX and TF.js, and prove it.

The public API is small::

    import modelport
    model = modelport.load("model.h5")               # a LayersModel
    modelport.save(model, "web_model/", quantize=["uint8"])
    report = modelport.convert("model.keras", "web_model/")
    parity = modelport.validate("model.onnx", "model.h5")   # a ParityReport
"""

from ._lazy import defer_heavy_imports
from ._version import __version__

defer_heavy_imports()

from .api import ConversionReport, Model, convert, inspect, load, save, validate  # noqa: E402
from .check.parity import OutputReport, ParityReport, Tolerance, Tolerances  # noqa: E402
from .errors import (  # noqa: E402
    FormatError,
    ModelportError,
    OutputExistsError,
    ParityError,
    UnsafeInputError,
    UnsupportedError,
)
from .models import LayersModel, TfjsGraph  # noqa: E402

__all__ = [
    "ConversionReport",
    "FormatError",
    "LayersModel",
    "Model",
    "ModelportError",
    "OutputExistsError",
    "OutputReport",
    "ParityError",
    "ParityReport",
    "TfjsGraph",
    "Tolerance",
    "Tolerances",
    "UnsafeInputError",
    "UnsupportedError",
    "__version__",
    "convert",
    "inspect",
    "load",
    "save",
    "validate",
]
