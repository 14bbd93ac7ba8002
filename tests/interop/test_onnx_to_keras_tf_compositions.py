"""The tf2onnx byte classifier built like Magika (``fixtures/make_tf2onnx_forms_fixture.py``:
``OneHot`` of the cast float input, TF's LayerNormalization over axis 1, a Reshape to
``[batch, n, -1]``, GELU Dense layers) converted with the default check to ``.keras``, ``.h5``
and a TF.js layers-model, then run by real Keras 3 and real ``@tensorflow/tfjs-layers`` under
Node against onnxruntime on the source. The recorded inputs hold byte values in the vocabulary
and outside it (negative, fractional, past the depth), where the two Embedding lookups that
replace the OneHot must still match ONNX. The tanh-GELU Dense (its cube a Multiply of three
copies) runs the same way, and a cube whose base other layers also read (tfjs-layers loses a
tensor one layer reads twice, so each copy is a Reshape there)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import modelport
from tests.test_onnx_to_keras_tf_compositions import EVERY_INDEX, N, _model, _one_hot_dense

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "tf2onnx_forms"


def _inputs_and_onnx(name: str = "byte_classifier") -> tuple[np.ndarray, np.ndarray]:
    x = np.load(FIXTURE / f"{name}.npz")["x"]
    session = ort.InferenceSession(str(FIXTURE / f"{name}.onnx"),
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


@pytest.mark.parametrize("to", ["keras", "tfjs-layers"])
def test_real_consumers_run_the_tanh_gelu(to, tmp_path, keras3, tfjs):
    dst = tmp_path / ("m.keras" if to == "keras" else "web")
    report = modelport.convert(FIXTURE / "gelu_tanh.onnx", dst, to=to)
    assert report.parity is not None and report.parity.passed
    x, want = _inputs_and_onnx("gelu_tanh")
    if to == "keras":
        got = keras3.saving.load_model(dst, compile=False).predict(x, verbose=0)
    else:
        got = tfjs.run_layers_model(dst / "model.json", [("x", x)])["arrays"][0]
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-6, rtol=1e-5)


def test_tfjs_runs_a_cube_whose_base_is_read_elsewhere(tmp_path, tfjs):
    proto = _model([N("Relu", ["x"], ["r"]), N("Pow", ["r", "n"], ["p"]),
                    N("Add", ["p", "r"], ["y"])], [None, 7], {"n": np.float32(3)})
    src = tmp_path / "m.onnx"
    src.write_bytes(proto.SerializeToString())
    report = modelport.convert(src, tmp_path / "web", to="tfjs-layers")
    assert report.parity is not None and report.parity.passed
    x = np.random.default_rng(0).standard_normal((4, 7)).astype(np.float32)
    want = np.maximum(x, 0) ** 3 + np.maximum(x, 0)
    got = tfjs.run_layers_model(tmp_path / "web" / "model.json", [("x", x)])["arrays"][0]
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("to", ["keras", "tfjs-layers"])
def test_real_consumers_read_every_index_as_onnx_one_hot(to, tmp_path, keras3, tfjs):
    """Indices at -1, just above it, past the depth, negative past it, huge: bit-identical."""
    proto = _one_hot_dense(tensordot=True, bias=True)
    shape = proto.graph.output[0].type.tensor_type.shape
    shape.dim.add().dim_param = "batch"
    shape.dim.add().dim_value = 20
    shape.dim.add().dim_value = 3
    src = tmp_path / "m.onnx"
    src.write_bytes(proto.SerializeToString())
    dst = tmp_path / ("m.keras" if to == "keras" else "web")
    report = modelport.convert(src, dst, to=to)
    assert report.parity is not None and report.parity.passed
    x = np.stack([EVERY_INDEX, EVERY_INDEX[::-1]])
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    want = session.run(None, {"x": x})[0]
    if to == "keras":
        got = keras3.saving.load_model(dst, compile=False).predict(x, verbose=0)
    else:
        got = tfjs.run_layers_model(dst / "model.json", [("x", x)])["arrays"][0]
    np.testing.assert_array_equal(np.asarray(got), want)
