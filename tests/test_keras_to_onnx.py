"""Keras -> ONNX lowering: every case made by real Keras, run in onnxruntime (CPU), matches the
outputs Keras recorded (atol 1e-4, rtol 1e-3, float32)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest

import modelport
from modelport.converters.keras_to_onnx import LOWERINGS, lower
from modelport.runtime.onnxruntime import session

from .conftest import ALL_CASES, LAYER_CASES, assert_close, case_params

# Cases whose source cannot be lowered, with the reason the error must give.
NOT_LOWERED = {"lambda_layer": "Lambda"}
# Looser tolerances, with the reason, per case id.
TOLERANCES: dict[str, tuple[float, float, str]] = {}

MODEL_CASES = [c for c in ALL_CASES if c.generation != "tfjs" or c.kind == "tfjs"]


def _run(case, *, opset=17, batch=None, optimize=True):
    model = modelport.load(case.path)
    lowered = lower(model, opset=opset, optimize=optimize)
    proto = ir.to_proto(lowered.model)
    sess = session(proto.SerializeToString(), device="cpu")
    inputs = [(n, a[:batch] if batch else a) for n, a in case.inputs]
    feeds = {name: array for name, (_, array) in zip(lowered.input_names, inputs)}
    return lowered, sess.run(feeds)


def _check(case, outputs, batch=None):
    atol, rtol, _ = TOLERANCES.get(case.id, (1e-4, 1e-3, ""))
    assert len(outputs) == len(case.outputs)
    for (name, expected), actual in zip(case.outputs, outputs):
        expected = expected[:batch] if batch else expected
        assert_close(actual, expected, atol=atol, rtol=rtol, what=f"{case.id} output {name}")


@pytest.mark.parametrize("case", case_params(MODEL_CASES + LAYER_CASES))
def test_lowered_model_matches_keras(case):
    reason = NOT_LOWERED.get(case.name)
    if reason:
        with pytest.raises(modelport.UnsupportedError, match=reason):
            _run(case)
        return
    _, outputs = _run(case)
    _check(case, outputs)


@pytest.mark.parametrize("case", case_params([c for c in MODEL_CASES + LAYER_CASES
                                              if c.name not in NOT_LOWERED]))
def test_batch_size_is_dynamic(case):
    _, outputs = _run(case, batch=1)
    _check(case, outputs, batch=1)


def test_every_lowering_has_a_case():
    covered = {getattr(c, "layer_class", None) for c in LAYER_CASES}
    for case in MODEL_CASES:
        model = modelport.load(case.path)
        covered.update(layer.class_name for layer in model.iter_layers())
    missing = [name for name in LOWERINGS.names() if name not in covered]
    assert not missing, f"lowerings without a case made by real Keras: {missing}"


def test_relu_with_threshold_is_zero_at_the_threshold():
    """Keras 3 and tf_keras both give ReLU(threshold=0.3, negative_slope=0.2, max_value=1.2)
    0 at x == 0.3 (a strict comparison); seen in both: [0.3, 0.29, 0.31, 0, 2] ->
    [0, -0.002, 0.31, -0.06, 1.2]."""
    case = next(c for c in LAYER_CASES if c.name == "ReLU-all")
    lowered = lower(modelport.load(case.path))
    x = np.array([[0.3, 0.29, 0.31], [0.0, 2.0, 0.3]] * 5, np.float32).reshape(2, 5, 3)
    sess = session(ir.to_proto(lowered.model).SerializeToString(), device="cpu")
    got = sess.run({lowered.input_names[0]: x})[0]
    expected = np.array([[0.0, -0.002, 0.31], [-0.06, 1.2, 0.0]] * 5,
                        np.float32).reshape(2, 5, 3)
    np.testing.assert_allclose(got, expected, atol=1e-6)
