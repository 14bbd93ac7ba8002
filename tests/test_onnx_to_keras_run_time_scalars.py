"""A scalar computed at run time from a free dimension (``Shape -> Gather -> Mul ->
Unsqueeze``, the size arithmetic of a YOLOv8 head exported with dynamic axes, nudenet's
320n.onnx) reaching a Reshape/Unsqueeze rule of the Keras raising (issue 18).

Without pinned sizes the rule must refuse it (exit 4, naming the node and ``--input-shape``),
not fail inside (it read the batch axis of a rank-0 shape: an IndexError, exit 70, and
``inspect`` reported an internal error for every Keras target). With the sizes pinned the
arithmetic folds to constants and the model converts.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport


def _flatten_spatial() -> onnx.ModelProto:
    """x [N, 3, H, W] -> y = x + 1 flattened to [N, H*W, 3] plus a YOLO head's anchor
    column: z = ConstantOfShape(Concat(Unsqueeze(H * W), [1])), H and W from Shape(y)."""
    consts = {"i2": np.asarray(2, np.int64), "i3": np.asarray(3, np.int64),
              "one": np.asarray([1], np.int64), "ax": np.asarray([0], np.int64),
              "c1": np.asarray(1.0, np.float32),
              "flat": np.asarray([0, 3, -1], np.int64)}
    nodes = [
        helper.make_node("Add", ["x", "c1"], ["y"]),
        helper.make_node("Shape", ["y"], ["s"]),
        helper.make_node("Gather", ["s", "i2"], ["h"], axis=0),
        helper.make_node("Gather", ["s", "i3"], ["w"], axis=0),
        helper.make_node("Mul", ["h", "w"], ["hw"]),
        helper.make_node("Unsqueeze", ["hw", "ax"], ["hw1"]),
        helper.make_node("Concat", ["hw1", "one"], ["target"], axis=0),
        helper.make_node("ConstantOfShape", ["target"], ["z"],
                         value=numpy_helper.from_array(np.asarray([0.5], np.float32))),
        helper.make_node("Reshape", ["y", "flat"], ["t"]),
        helper.make_node("Transpose", ["t"], ["tt"], perm=[0, 2, 1]),
        helper.make_node("Add", ["tt", "z"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes, "run_time_scalar",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", "HW", 3])],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


@pytest.mark.parametrize("target", ["m.h5", "m.keras"])
def test_a_run_time_scalar_is_refused_naming_the_pin(target, tmp_path):
    src = tmp_path / "m.onnx"
    onnx.save(_flatten_spatial(), str(src))
    with pytest.raises(modelport.UnsupportedError) as e:
        modelport.convert(src, tmp_path / target)
    assert "--input-shape" in str(e.value), str(e.value)
    assert not (tmp_path / target).exists()


def test_inspect_names_the_refusal_not_an_internal_error(tmp_path):
    src = tmp_path / "m.onnx"
    onnx.save(_flatten_spatial(), str(src))
    targets = modelport.inspect(src).targets
    for name in ("h5", "keras", "tfjs-layers"):
        verdict = targets[name]
        assert not verdict.ok
        assert "internal error" not in str(verdict.note), verdict.note


def test_pinned_sizes_fold_the_scalar_and_convert(tmp_path):
    src = tmp_path / "m.onnx"
    onnx.save(_flatten_spatial(), str(src))
    modelport.convert(src, tmp_path / "m.h5", input_shapes={"x": (1, 3, 4, 5)})
    assert (tmp_path / "m.h5").is_file()
