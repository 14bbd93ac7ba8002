"""An ONNX ``If`` whose condition the model computes (openWakeWord's wake-word models run a
verifier network only when a first score reaches 0.5) raises to Keras as both branches and a
``Where`` per output (``onnx_control_flow.select_ifs``), with the comparison as a Keras
operation: the ``.keras`` file real Keras 3 loads picks the branch ONNX takes, on inputs that
take each. The check looks for the branches' layers among the values of the model with the
select made (onnxruntime hands out no value computed inside a branch). ``.h5`` and tfjs-layers
hold no Keras operations and refuse by name; an ``If`` whose branches give other shapes stays
refused."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.cli import main


def _verifier(path, else_shape=(1, 1)) -> np.ndarray:
    """The model at ``path``; its first score's kernel."""
    rng = np.random.default_rng(4)
    w1 = rng.standard_normal((6, 1)).astype(np.float32)
    w2 = rng.standard_normal((6, 1)).astype(np.float32)
    then = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w2"], ["g2"], name="verify"),
         helper.make_node("Sigmoid", ["g2"], ["p2"], name="verify_sigmoid")],
        "then", [], [helper.make_tensor_value_info("p2", TensorProto.FLOAT, [1, 1])])
    other = [helper.make_node("Identity", ["p1"], ["q"], name="keep")] \
        if else_shape == (1, 1) else \
        [helper.make_node("Expand", ["p1", "wide"], ["q"], name="widen")]
    otherwise = helper.make_graph(
        other, "else", [], [helper.make_tensor_value_info("q", TensorProto.FLOAT,
                                                         list(else_shape))])
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["g1"], name="score"),
             helper.make_node("Sigmoid", ["g1"], ["p1"], name="score_sigmoid"),
             helper.make_node("GreaterOrEqual", ["p1", "half"], ["passed"], name="passed"),
             helper.make_node("If", ["passed"], ["y"], name="gate", then_branch=then,
                              else_branch=otherwise)]
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half"),
             numpy_helper.from_array(np.array(else_shape, np.int64), "wide")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "n"])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                ir_version=8), path)
    return w1


def _ort(path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_a_computed_if_runs_both_branches_and_selects_in_real_keras(tmp_path, keras3):
    w1 = _verifier(tmp_path / "m.onnx")
    report = modelport.convert(tmp_path / "m.onnx", tmp_path / "m.keras")
    assert report.parity.passed, report.parity.notes
    found = report.parity.intermediates
    assert found is not None and found.first_not_held is None and found.compared >= 2
    from modelport.formats.loading import load

    classes = {layer.class_name for layer in load(tmp_path / "m.keras").iter_layers()}
    assert {"Where", "GreaterEqual"} <= classes
    model = keras3.saving.load_model(tmp_path / "m.keras")
    rng = np.random.default_rng(0)
    taken = set()
    for _ in range(40):
        x = rng.standard_normal((1, 6)).astype(np.float32) * 2
        expected = _ort(tmp_path / "m.onnx", x)
        taken.add(bool((x @ w1).item() >= 0))  # the first score reaches 0.5
        np.testing.assert_allclose(np.asarray(model.predict(x, verbose=0)), expected,
                                   atol=1e-6, rtol=1e-5)
    assert len(taken) > 1


@pytest.mark.parametrize("target", ["m.h5", "web"])
def test_formats_without_keras_operations_refuse_it_by_name(tmp_path, target):
    _verifier(tmp_path / "m.onnx")
    args = ["convert", str(tmp_path / "m.onnx"), str(tmp_path / target)]
    if target == "web":
        args += ["--to", "tfjs-layers"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 4, result.output
    assert "GreaterEqual" in result.output or "GreaterOrEqual" in result.output
    assert not (tmp_path / target).exists()


def test_an_if_whose_branches_differ_in_shape_stays_refused(tmp_path):
    _verifier(tmp_path / "m.onnx", else_shape=(1, 3))
    result = CliRunner().invoke(main, ["convert", str(tmp_path / "m.onnx"),
                                       str(tmp_path / "m.keras")])
    assert result.exit_code == 4, result.output
    assert "If node 'gate'" in result.output
