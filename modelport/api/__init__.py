"""The library's API: load, save, convert, validate, inspect.

It orchestrates (sniff, read, route, write, check) and holds no layer or op knowledge: formats
read and write, converters translate, ``check`` proves the result.
"""

from ..check.validate import validate
from ..formats.loading import Model, load
from .core import ConversionReport, convert, human_bytes, save
from .inspection import inspect

__all__ = ["ConversionReport", "Model", "convert", "human_bytes", "inspect", "load", "save",
           "validate"]
