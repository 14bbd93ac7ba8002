"""Feeding one model's arrays to another that holds them in the other layout (channels-first
ONNX from Keras, channels-last Keras raised from ONNX), recognised from the shapes alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..runtime.engines import InputSpec


def _fits(shape: Sequence[int], spec_shape: Sequence[int | None]) -> bool:
    return len(shape) == len(spec_shape) and all(d is None or d == s
                                                 for d, s in zip(spec_shape, shape))


def match_input(array: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Feed an array to a model that takes it in the other layout (channels-first ONNX from
    Keras, or a channels-last Keras model raised from ONNX), recognised by the shapes."""
    if array.ndim < 3 or _fits(array.shape, spec.shape):
        return array
    for moved in (np.moveaxis(array, -1, 1), np.moveaxis(array, 1, -1)):
        if _fits(moved.shape, spec.shape):
            return np.ascontiguousarray(moved)
    return np.ascontiguousarray(np.moveaxis(array, -1, 1))


def match_output(expected: object, actual: object) -> np.ndarray:
    """The source's output in the target's layout, when only a channel move tells them
    apart."""
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    if expected.ndim < 3 or expected.shape == actual.shape:
        return expected
    for moved in (np.moveaxis(expected, 1, -1), np.moveaxis(expected, -1, 1)):
        if moved.shape == actual.shape:
            return np.ascontiguousarray(moved)
    return expected
