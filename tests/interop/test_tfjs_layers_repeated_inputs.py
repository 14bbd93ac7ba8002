"""Real @tensorflow/tfjs 4.22 under Node on layers that read one computed tensor more than once
while other layers read it too (tests/test_tfjs_repeated_inputs.py has the models): written
as is, tfjs disposes the tensor too early and fails; with modelport's copies (``Reshape``, or an
identity ``Permute`` where a size is unknown) it gives Keras's and onnxruntime's numbers."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import modelport
from modelport.formats import tfjs_layers

from ..test_tfjs_repeated_inputs import square_plus, unrewritten  # noqa: F401

RNG = np.random.default_rng(1)
FORMS = [((3, 5), "multiply", (6, 3, 5)), ((None, 5), "multiply", (2, 7, 5)),
         ((5,), "concatenate", (4, 5))]


def _keras(keras3, path, x):
    return keras3.saving.load_model(path, compile=False).predict(x, verbose=0)


@pytest.mark.parametrize("shape,merge,batch", FORMS, ids=["reshape", "permute", "concat3"])
def test_real_tfjs_runs_the_copies_as_keras(shape, merge, batch, keras3, tmp_path, tfjs):
    src = square_plus(keras3, shape, merge=merge, path=tmp_path / "m.keras")
    report = modelport.convert(src, tmp_path / "web", to="tfjs-layers")
    assert any("repeated input" in note for note in report.rewrites)
    x = RNG.standard_normal(batch).astype(np.float32)
    got = tfjs.run_layers_model(tmp_path / "web" / "model.json", [("x", x)])["arrays"][0]
    np.testing.assert_allclose(got, _keras(keras3, src, x), atol=1e-6, rtol=1e-6)


def test_without_the_copies_real_tfjs_fails(keras3, tmp_path, tfjs, unrewritten):  # noqa: F811
    src = square_plus(keras3, (3, 5), path=tmp_path / "m.keras")
    tfjs_layers.write(modelport.load(src), tmp_path / "bad")
    x = RNG.standard_normal((2, 3, 5)).astype(np.float32)
    with pytest.raises(tfjs.TfjsError, match="disposed|reading 'backend'"):
        tfjs.run_layers_model(tmp_path / "bad" / "model.json", [("x", x)])


def test_onnx_relu_mul_add_converts_and_runs_in_real_tfjs(tmp_path, tfjs):
    """``Relu -> Mul(r, r) -> Add(., r)`` (it ended in exit 6 with tfjs's message before)."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Mul", ["r", "r"], ["p"]),
         helper.make_node("Add", ["p", "r"], ["y"])], "sq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 7])])
    src = tmp_path / "sq.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                                ir_version=8), src)
    report = modelport.convert(src, tmp_path / "web", to="tfjs-layers")
    assert report.parity is not None and report.parity.passed
    x = RNG.standard_normal((5, 7)).astype(np.float32)
    got = tfjs.run_layers_model(tmp_path / "web" / "model.json", [("x", x)])["arrays"][0]
    r = np.maximum(x, 0)
    np.testing.assert_array_equal(got, r * r + r)
