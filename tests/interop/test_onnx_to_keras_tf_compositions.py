"""The tf2onnx byte classifier built like Magika (``fixtures/make_tf2onnx_onehot_fixture.py``:
``OneHot`` of the cast float input, TF's LayerNormalization over axis 1, a Reshape to
``[batch, n, -1]``, GELU Dense layers) converted with the default check to ``.keras``, ``.h5``
and a TF.js layers-model, then run by real Keras 3 and real ``@tensorflow/tfjs-layers`` under
Node against onnxruntime on the source. The recorded inputs hold byte values in the vocabulary
and outside it (negative, fractional, past the depth), where the two Embedding lookups that
replace the OneHot must still match ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import modelport

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "tf2onnx_onehot"


def _inputs_and_onnx() -> tuple[np.ndarray, np.ndarray]:
    x = np.load(FIXTURE / "byte_classifier.npz")["x"]
    session = ort.InferenceSession(str(FIXTURE / "byte_classifier.onnx"),
                                   providers=["CPUExecutionProvider"])
    return x, session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras3_runs_the_byte_classifier(suffix, tmp_path, keras3):
    dst = tmp_path / f"m{suffix}"
    report = modelport.convert(FIXTURE / "byte_classifier.onnx", dst)
    assert report.parity is not None and report.parity.passed
    x, want = _inputs_and_onnx()
    got = keras3.saving.load_model(dst, compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-6, rtol=1e-5)


def test_tfjs_runs_the_byte_classifier(tmp_path, tfjs):
    report = modelport.convert(FIXTURE / "byte_classifier.onnx", tmp_path / "web",
                               to="tfjs-layers")
    assert report.parity is not None and report.parity.passed
    x, want = _inputs_and_onnx()
    result = tfjs.run_layers_model(tmp_path / "web" / "model.json", [("bytes", x)])
    np.testing.assert_allclose(result["arrays"][0], want, atol=1e-6, rtol=1e-5)
