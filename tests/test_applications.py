"""Real architectures from keras.applications (seeded weights, no downloads) convert to ONNX
and match real Keras; CNNs keep at most two Transposes. MobileNetV2 is committed; the others are
made by fixtures/make_applications.py on first use (needs Keras 3, a test dependency)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import modelport

from .conftest import FIXTURES, assert_close

sys.path.insert(0, str(FIXTURES))
import make_applications

NAMES = ["MobileNetV2", "MobileNetV3Small", "ResNet50", "EfficientNetB0", "DenseNet121"]


@pytest.mark.parametrize("name", NAMES)
def test_application_converts_and_matches_keras(name, tmp_path, keras3):
    src = make_applications.ensure(name)
    with np.load(src.with_suffix(".npz")) as data:
        x = next(data[k] for k in data.files if k.startswith("input:"))
        expected = next(data[k] for k in data.files if k.startswith("output:"))
    report = modelport.convert(src, tmp_path / f"{name}.onnx", device="cpu",
                               inputs=src.with_suffix(".npz"))
    assert report.onnx.transposes <= 2, report.onnx
    assert report.parity.passed, report.parity.outputs
    from modelport.runtime.engines import OnnxRuntime

    got = OnnxRuntime(tmp_path / f"{name}.onnx", device="cpu").run([x])[0]
    assert_close(got, expected, what=f"{name}: onnxruntime vs real Keras")
