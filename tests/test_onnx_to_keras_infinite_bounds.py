"""Clip with an infinite bound raised to Keras (issue 18): ``-inf``/``inf`` is no bound.

TF graphs write ``ClipByValue(x, 0, inf)``; raised as ``ReLU(max_value=inf)`` (or shifted by the
bound: NaN) the written config held ``Infinity``, which the file's read-back refused as not
JSON (exit 3 on a valid model), as the ``-inf`` Pad of a max pool did
(test_onnx_to_keras_pad_max_pool.py). Each case is converted with the default check and the
written file run in real Keras 3 against onnxruntime.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.converters.onnx_to_keras import raise_model

F = TensorProto.FLOAT
INF = float("inf")


def _clip(lo: float | None, hi: float | None) -> onnx.ModelProto:
    """x [2, 5] -> MatMul (a tensor Keras computes) -> Clip(lo, hi) -> y."""
    consts = {"w": np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32) * 3}
    ins = ["m", "", ""]
    if lo is not None:
        consts["lo"] = np.asarray(lo, np.float32)
        ins[1] = "lo"
    if hi is not None:
        consts["hi"] = np.asarray(hi, np.float32)
        ins[2] = "hi"
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]),
         helper.make_node("Clip", ins, ["y"])],
        "clip", [helper.make_tensor_value_info("x", F, [None, 5])],
        [helper.make_tensor_value_info("y", F, None)],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


CASES = {"relu-to-inf": (0.0, INF), "no-bounds": (-INF, INF), "floor-only": (-1.5, INF),
         "ceiling-only": (-INF, 2.0)}


@pytest.mark.parametrize("target", ["m.h5", "m.keras"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_infinite_clip_bounds_are_no_bounds_in_real_keras(case, target, tmp_path, keras3):
    proto = _clip(*CASES[case])
    src = tmp_path / "m.onnx"
    onnx.save(proto, str(src))
    report = modelport.convert(src, tmp_path / target)
    assert report.parity is not None and report.parity.passed
    raised = raise_model(ir.from_proto(proto))
    assert raised.input_perms[0] is None and raised.output_perms[0] is None
    model = keras3.models.load_model(tmp_path / target, compile=False)
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    want = ort.InferenceSession(proto.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(model.predict(x, verbose=0), want, atol=1e-6, rtol=1e-6)
