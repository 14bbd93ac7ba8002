"""The library's API: load, save, convert, validate, inspect.

It orchestrates (sniff, read, route, write, check) and holds no layer or op knowledge: formats
read and write, converters translate, ``check`` proves the result. ``routes`` is the table of
conversions, ``options`` the option objects and where each option applies.
"""

from ..check.options import CheckOptions
from ..check.validate import validate, validate_with
from ..formats.loading import Model, load
from .core import convert, convert_with, human_bytes, save
from .inspection import Inspection, inspect
from .options import ConvertOptions
from .report import ConversionReport

__all__ = ["CheckOptions", "ConversionReport", "ConvertOptions", "Inspection", "Model",
           "convert", "convert_with", "human_bytes", "inspect", "load", "save", "validate",
           "validate_with"]
