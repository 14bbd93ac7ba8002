"""Strided Slices raised to Keras (``onnx_to_keras/strided_slice.py``: Cropping + MaxPooling of
pool size 1, Permutes for a step on the last axis) written as TF.js layers-models with the
default parity check, and run by real ``@tensorflow/tfjs-layers`` under Node against
onnxruntime on the ONNX source: the YOLO Focus block and the table's static cases. The Focus
block also pins the Concatenate after it to a non-negative axis: tfjs-layers 4.22 joins along
the last axis for any negative one."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest

import modelport
from modelport.converters.onnx_to_keras import raise_model
from tests.test_onnx_to_keras_strided_slice import CASES, _feed, _ort, _to_keras

TFJS_CASES = ["focus-even", "focus-nonsquare", "rank4-two-axes", "rank4-last-axis-step",
              "rank4-with-channel-crop", "rank3", "rank5", "rank5-last-axis-step"]


@pytest.mark.parametrize("case", TFJS_CASES)
def test_layers_model_runs_in_real_tfjs(case, tmp_path, tfjs):
    proto, shape = CASES[case]
    src = tmp_path / "m.onnx"
    onnx.save(proto, str(src))
    report = modelport.convert(src, tmp_path / "web", to="tfjs-layers")  # default check
    assert report.parity is not None and report.parity.passed
    raised = raise_model(ir.from_proto(proto), for_tfjs=True)
    x = _feed(shape)
    result = tfjs.run_layers_model(tmp_path / "web" / "model.json",
                                   [("x", _to_keras(x, raised.input_perms[0]))])
    np.testing.assert_allclose(result["arrays"][0],
                               _to_keras(_ort(proto, x), raised.output_perms[0]),
                               atol=1e-5, rtol=1e-5)
