"""modelport's own layers (``modelport.keras_layers``, ``modelport/js/modelport_layers.js``) in
the real frameworks: LocalResponseNormalization, ONNX's LRN, which stock Keras and tfjs lack.

Models are built and saved by real Keras 3 with the registered layer (as a user who fine-tunes a
converted AlexNet would), then:

- modelport's NumPy reference matches real Keras's predictions (odd and even windows, rank 3
  and 4: the even window is ONNX's lopsided one, which onnxruntime does not run);
- ``.h5`` -> ``.keras`` and -> TF.js layers-model by modelport load in real Keras 3 and real
  tfjs (after ``register(tf)``) and predict the same;
- ``.h5`` -> ONNX lowers the layer to ONNX's LRN, and onnxruntime agrees with Keras;
- ONNX LRN -> ``.h5`` -> real Keras agrees with onnxruntime on random convolution weights.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.runtime.keras_reference import run as run_reference

from ..conftest import assert_close

RNG = np.random.default_rng(11)
# (id, input shape without batch, LRN settings)
CASES = [
    ("alexnet-window", (6, 7, 9), {"size": 5, "alpha": 1e-2, "beta": 0.75, "bias": 2.0}),
    ("even-window", (5, 8), {"size": 4, "alpha": 3e-2, "beta": 0.5, "bias": 1.0}),
    ("wide-window", (4, 4, 3), {"size": 7, "alpha": 0.5, "beta": 1.3, "bias": 0.7}),
]


def _keras_model(keras, shape, settings, path_stem):
    import modelport.keras_layers as layers

    inp = keras.Input(shape)
    y = keras.layers.Dense(shape[-1] + 2)(inp)
    y = layers.LocalResponseNormalization(**settings)(y)
    y = keras.layers.Activation("tanh")(y)
    model = keras.Model(inp, y)
    x = RNG.normal(size=(3, *shape)).astype(np.float32) * 2
    return model, x


@pytest.mark.parametrize("case_id,shape,settings", CASES, ids=[c[0] for c in CASES])
def test_keras_built_lrn_reads_converts_and_runs_everywhere(case_id, shape, settings, tmp_path,
                                                            keras3, tfjs):
    model, x = _keras_model(keras3, shape, settings, case_id)
    expected = np.asarray(model.predict(x, verbose=0))
    model.save(tmp_path / "m.h5")
    model.save(tmp_path / "m.keras")
    for source in ("m.h5", "m.keras"):
        loaded = modelport.load(tmp_path / source)
        assert any(layer.class_name == "modelport>LocalResponseNormalization"
                   for layer in loaded.layers)
        assert_close(run_reference(loaded, [x]).outputs[0], expected, atol=1e-5, rtol=1e-4,
                     what=f"NumPy reference on {source}")
    report = modelport.convert(tmp_path / "m.h5", tmp_path / "back.keras")
    assert report.custom_layers == ["modelport>LocalResponseNormalization"]
    again = keras3.models.load_model(tmp_path / "back.keras", compile=False)
    assert_close(np.asarray(again.predict(x, verbose=0)), expected, atol=1e-5, rtol=1e-4,
                 what="modelport's .keras in real Keras 3")
    modelport.convert(tmp_path / "m.h5", tmp_path / "web")
    result = tfjs.run_layers_model(tmp_path / "web" / "model.json", [("input", x)])
    assert_close(result["arrays"][0], expected, atol=1e-5, rtol=1e-4,
                 what="modelport's layers-model in real tfjs with modelport_layers.js")


def test_keras_lrn_lowers_to_onnx_lrn(tmp_path, keras3):
    # onnxruntime runs LRN on 4-D tensors with odd windows only
    model, x = _keras_model(keras3, (6, 7, 9), CASES[0][2], "onnx")
    model.save(tmp_path / "m.h5")
    report = modelport.convert(tmp_path / "m.h5", tmp_path / "m.onnx", inputs=None)
    assert report.parity.passed
    ops = [n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node]
    assert "LRN" in ops
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert_close(got, np.asarray(model.predict(x, verbose=0)), atol=1e-5, rtol=1e-4,
                 what="onnxruntime on the lowered LRN vs real Keras")


def test_onnx_lrn_raised_runs_in_real_keras(tmp_path, keras3):
    w = (RNG.standard_normal((8, 3, 3, 3)) * 0.7).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
         helper.make_node("LRN", ["c"], ["y"], size=5, alpha=0.05, beta=0.75, bias=1.5,
                          name="lrn")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8, 6, 6])],
        [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              str(tmp_path / "m.onnx"))
    report = modelport.convert(tmp_path / "m.onnx", tmp_path / "m.h5")
    assert report.parity.passed and report.custom_layers
    x = RNG.normal(size=(2, 3, 6, 6)).astype(np.float32)
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    from modelport import keras_layers  # noqa: F401 - what the user imports before loading

    keras_model = keras3.models.load_model(tmp_path / "m.h5", compile=False)
    got = np.asarray(keras_model.predict(x.transpose(0, 2, 3, 1), verbose=0))
    assert_close(got.transpose(0, 3, 1, 2), expected, atol=1e-5, rtol=1e-4,
                 what="real Keras on the raised LRN vs onnxruntime")
