"""Ranks after a Reshape whose shape is computed at run time (issue 18: PaddleOCR's PP-OCRv3
recogniser, ``ch_PP-OCRv3_rec_infer.onnx`` in rapidocr-onnxruntime 1.2.3).

Paddle's exports flatten with ``Reshape(x, Concat(Slice(Shape(x), 0, 2), [-1]))``: ONNX shape
inference gives that Reshape's output no shape at all, so the Transpose, MatMul and Add of
the attention blocks after it had no rank either, and ``--to tfjs-graph`` was refused (every
ONNX route of the model with it: "ReduceMean node ...: the input's rank is unknown", then "a
run-time shape of unknown length"). The shape vector's length is static (a Slice of
``Shape``'s output by constant bounds, concatenated with a constant), which fixes the
Reshape's rank; the MatMul/Gather/Split/Pad forms carry ranks on from there.

``paddle_flatten_model`` is that pattern built with ``onnx.helper``; the converted graph-model
runs in the NumPy TF reference against onnxruntime.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from modelport.converters.onnx_normalize import normalize
from modelport.converters.onnx_ranks import infer_ranks
from modelport.converters.onnx_to_tfjs import driver as to_tfjs
from modelport.runtime.tfjs_reference import run


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return h.make_node("Constant", [], [name], value=nh.from_array(value, name + "_v"))


def paddle_flatten_model() -> onnx.ModelProto:
    """x [-1, 4, H, W] (Paddle writes the batch as dim_value -1) -> Conv -> Reshape to [N, C, H*W] by a run-time shape -> Transpose ->
    MatMul + Add -> Reshape to [N, -1] by its own shape -> ReduceMean."""
    rng = np.random.default_rng(0)
    i64 = np.int64
    nodes = [
        h.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1]),
        h.make_node("Shape", ["y"], ["y_shape"]),
        _const("s0", np.array([0], i64)), _const("s2", np.array([2], i64)),
        _const("ax0", np.array([0], i64)),
        h.make_node("Slice", ["y_shape", "s0", "s2", "ax0"], ["nc"]),
        _const("minus1", np.array([-1], i64)),
        h.make_node("Concat", ["nc", "minus1"], ["flat_shape"], axis=0),
        h.make_node("Reshape", ["y", "flat_shape"], ["flat"]),          # [N, 8, H*W]
        h.make_node("Transpose", ["flat"], ["t"], perm=[0, 2, 1]),      # [N, H*W, 8]
        h.make_node("MatMul", ["t", "m"], ["mm"]),
        h.make_node("Add", ["mm", "b"], ["z"]),
        h.make_node("Shape", ["z"], ["z_shape"]),
        _const("s1", np.array([1], i64)),
        h.make_node("Slice", ["z_shape", "s0", "s1", "ax0"], ["n"]),
        h.make_node("Concat", ["n", "minus1"], ["rows"], axis=0),
        h.make_node("Reshape", ["z", "rows"], ["r"]),                   # [N, H*W*8]
        h.make_node("ReduceMean", ["r"], ["out"], axes=[1], keepdims=0),
    ]
    inits = [nh.from_array(rng.standard_normal((8, 4, 1, 1)).astype(np.float32), "w"),
             nh.from_array(rng.standard_normal((8, 8)).astype(np.float32), "m"),
             nh.from_array(rng.standard_normal(8).astype(np.float32), "b")]
    graph = h.make_graph(nodes, "paddle_flatten",
                         [h.make_tensor_value_info("x", T.FLOAT, [-1, 4, "H", "W"])],
                         [h.make_tensor_value_info("out", T.FLOAT, None)], initializer=inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 12)], ir_version=7)


def _by_output(model: ir.Model) -> dict[str, ir.Value]:
    return {o.name: o for n in model.graph for o in n.outputs}


def test_onnx_inference_leaves_the_run_time_reshape_without_a_shape():
    values = _by_output(normalize(ir.from_proto(paddle_flatten_model())))
    assert values["flat"].shape is None


def test_the_shape_vectors_length_fixes_the_reshapes_rank():
    model = normalize(ir.from_proto(paddle_flatten_model()))
    infer_ranks(model)
    values = _by_output(model)
    assert list(values["flat_shape"].shape) == [3]
    assert len(values["flat"].shape) == 3
    assert len(values["mm"].shape) == 3 and len(values["z"].shape) == 3
    assert list(values["rows"].shape) == [2]
    assert len(values["r"].shape) == 2


def test_converts_to_tfjs_graph_and_matches_onnxruntime():
    model = paddle_flatten_model()
    graph = to_tfjs.convert(ir.from_proto(model))
    x = np.random.default_rng(1).standard_normal((1, 4, 3, 5)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    got = run(graph, [x], [o.tensor for o in graph.outputs])
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-5)
