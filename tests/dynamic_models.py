"""ONNX test models with dynamic input dims, built with onnx's helper (onnxruntime runs them).

* ``shape_cnn``: NCHW image ``x[N, 3, H, W]`` (N, H, W dynamic) -> padded Conv -> Relu ->
  MaxPool 2x2 -> Conv -> Reshape to ``[N, C, H*W/4]`` whose target is computed from ``Shape``
  (Shape -> Gather -> Unsqueeze -> Concat, the pattern PyTorch exports write) -> ReduceMean ->
  a ``Gemm`` head. Its post-processing output ``probs`` (Softmax) lets ``--outputs`` cut it.
* ``big_pool``: ``x[N, 1, H, W]`` -> Conv 3x3 stride 2 -> MaxPool 8x8 stride 8 -> Flatten-free
  GlobalAveragePool: the smallest height/width it runs at is 16 (the default free size, 8, is
  too small: the pool window is larger than its input).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array, name)


def shape_cnn(seed: int = 0) -> onnx.ModelProto:
    """See the module: a CNN whose Reshape target comes from ``Shape`` at run time."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    inits = [
        _init("w1", (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(f32)),
        _init("b1", (rng.standard_normal(8) * 0.1).astype(f32)),
        _init("w2", (rng.standard_normal((6, 8, 3, 3)) * 0.2).astype(f32)),
        _init("b2", (rng.standard_normal(6) * 0.1).astype(f32)),
        _init("wd", (rng.standard_normal((6, 4)) * 0.5).astype(f32)),
        _init("bd", (rng.standard_normal(4) * 0.1).astype(f32)),
        _init("idx0", np.asarray(0, np.int64)),
        _init("idx1", np.asarray(1, np.int64)),
        _init("axes0", np.asarray([0], np.int64)),
        _init("minus1", np.asarray([-1], np.int64)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2],
                         name="pool1"),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("Shape", ["c2"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "idx0"], ["n"], axis=0, name="gather_n"),
        helper.make_node("Gather", ["s", "idx1"], ["ch"], axis=0, name="gather_c"),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsq_n"),
        helper.make_node("Unsqueeze", ["ch", "axes0"], ["c1d"], name="unsq_c"),
        helper.make_node("Concat", ["n1", "c1d", "minus1"], ["target"], axis=0, name="concat"),
        helper.make_node("Reshape", ["c2", "target"], ["flat"], name="reshape"),
        helper.make_node("ReduceMean", ["flat"], ["pooled"], axes=[2], keepdims=0,
                         name="mean"),
        helper.make_node("Gemm", ["pooled", "wd", "bd"], ["logits"], name="head"),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1, name="softmax"),
    ]
    graph = helper.make_graph(
        nodes, "shape_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def big_pool(seed: int = 0) -> onnx.ModelProto:
    """See the module: a pool window that needs height and width of at least 16."""
    rng = np.random.default_rng(seed)
    inits = [_init("w", (rng.standard_normal((4, 1, 3, 3)) * 0.3).astype(np.float32))]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[8, 8], strides=[8, 8],
                         name="pool"),
        helper.make_node("GlobalAveragePool", ["p"], ["y"], name="gap"),
    ]
    graph = helper.make_graph(
        nodes, "big_pool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 1, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def fixed_flatten(seed: int = 0, side: int = 37) -> onnx.ModelProto:
    """``x[N, 1, H, W]`` reshaped to ``[-1, side*side]`` and multiplied by a weight: free dims in
    the file, yet it runs only where ``H*W`` is a multiple of ``side*side`` (no size a check
    can guess from strides or pools)."""
    rng = np.random.default_rng(seed)
    inits = [_init("shape", np.asarray([-1, side * side], np.int64)),
             _init("w", (rng.standard_normal((side * side, 2)) * 0.05).astype(np.float32))]
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["flat"], name="flatten"),
             helper.make_node("MatMul", ["flat", "w"], ["y"], name="dense")]
    graph = helper.make_graph(
        nodes, "fixed_flatten",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["M", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def shape_arithmetic(seed: int = 0) -> onnx.ModelProto:
    """``x[N, S]`` (both free) plus run-time shape arithmetic as transformer exports write it:
    ``Range(0, S)`` as positions, ``ConstantOfShape(Shape(x))`` as a mask, an ``Expand`` of a
    bias to ``Shape(x)``."""
    rng = np.random.default_rng(seed)
    inits = [_init("one_i", np.asarray(1, np.int64)), _init("zero_i", np.asarray(0, np.int64)),
             _init("step", np.asarray(1, np.int64)),
             _init("bias", (rng.standard_normal((1, 1)) * 0.5).astype(np.float32))]
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "one_i"], ["seq"], axis=0, name="seq_len"),
        helper.make_node("Range", ["zero_i", "seq", "step"], ["positions"], name="range"),
        helper.make_node("Cast", ["positions"], ["positions_f"], to=TensorProto.FLOAT,
                         name="cast"),
        helper.make_node("ConstantOfShape", ["shape"], ["ones"], name="mask",
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [2.0])),
        helper.make_node("Expand", ["bias", "shape"], ["bias_full"], name="expand"),
        helper.make_node("Mul", ["x", "ones"], ["scaled"], name="scale"),
        helper.make_node("Add", ["scaled", "positions_f"], ["placed"], name="place"),
        helper.make_node("Add", ["placed", "bias_full"], ["y"], name="bias_add"),
    ]
    graph = helper.make_graph(
        nodes, "shape_arithmetic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "S"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "S"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
