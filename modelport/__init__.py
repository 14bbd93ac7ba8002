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

from ._lazy import defer_heavy_imports
from ._version import __version__

defer_heavy_imports()

from .api import (  # noqa: E402
    CheckOptions,
    ConversionReport,
    ConvertOptions,
    Inspection,
    Model,
    convert,
    convert_with,
    inspect,
    load,
    save,
    validate,
    validate_with,
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
