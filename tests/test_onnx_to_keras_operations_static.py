"""ONNX ops that break the batch-axis rule at a static batch of one, raised to Keras 3
operations on literal shapes (``converters/onnx_to_keras/operations_static.py``): MoveNet's
keypoint decoding in small (Reshape/Unsqueeze across axis 0, Concat with a constant batch
index, GatherND ``batch_dims=0``, a constant grid broadcasting a tensor to a bigger shape,
operands of different ranks, an integer tensor times a constant tensor). Each case is converted
with the default check (onnxruntime against the NumPy Keras reference), then the ``.keras`` is
loaded in real Keras 3 and run against onnxruntime; and the refusals: free shapes, ``.h5``,
tfjs-layers."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import modelport

from .onnx_graphs import model as _model
from .onnx_graphs import raised_keras_matches, refused_keras
from .onnx_graphs import value as _in

F, I32, I64 = TensorProto.FLOAT, TensorProto.INT32, TensorProto.INT64


def _i64(*values):
    return np.array(values, np.int64)


# a [1, 34] row of 17 (y, x) pairs -> [17, 2], the pairs' sum per keypoint -> [17] -> [17, 1]
RESHAPES = _model([helper.make_node("Relu", ["x"], ["r"]),
                   helper.make_node("Reshape", ["r", "pairs"], ["p"]),
                   helper.make_node("ReduceSum", ["p", "one"], ["s"], keepdims=0),
                   helper.make_node("Unsqueeze", ["s", "one"], ["y"])],
                  [_in("x", F, [1, 34])], [_in("p", F, [17, 2]), _in("y", F, [17, 1])],
                  [("pairs", _i64(17, -1)), ("one", _i64(1))])

# keypoint heatmap [1, 4, 4, 3]: per keypoint the row of its largest row maximum and the column
# of its largest column maximum, the indices [0, row, col] stacked with a constant batch index,
# GatherND batch_dims=0 of the offsets [1, 4, 4, 6] at them: [3, 6]; then a [1, 3] score +
# [3] offsets (different ranks)
_KEYPOINT_NODES = [
    helper.make_node("ReduceMax", ["x"], ["rm"], axes=[2], keepdims=0),  # [1, 4, 3]
    helper.make_node("ArgMax", ["rm"], ["ra"], axis=1, keepdims=0),  # [1, 3] int64
    helper.make_node("ReduceMax", ["x"], ["cm"], axes=[1], keepdims=0),
    helper.make_node("ArgMax", ["cm"], ["ca"], axis=1, keepdims=0),
    helper.make_node("Reshape", ["ra", "k"], ["row"]),  # [3]
    helper.make_node("Reshape", ["ca", "k"], ["col"]),
    helper.make_node("Unsqueeze", ["row", "one"], ["row1"]),  # [3, 1]
    helper.make_node("Unsqueeze", ["col", "one"], ["col1"]),
    helper.make_node("Concat", ["batch", "row1", "col1"], ["idx"], axis=1),  # [3, 3]
    helper.make_node("Relu", ["o"], ["ro"]),
    helper.make_node("GatherND", ["ro", "idx"], ["g"]),  # [3, 6]
    helper.make_node("ReduceMax", ["rm"], ["score"], axes=[1], keepdims=0),  # [1, 3]
    helper.make_node("Slice", ["g", "zero", "one", "one"], ["g0"]),  # [3, 1]
    helper.make_node("Reshape", ["g0", "k"], ["g3"]),  # [3]
    helper.make_node("Add", ["score", "g3"], ["sum"]),  # [1, 3] + [3] -> [1, 3]
]
KEYPOINTS = _model(_KEYPOINT_NODES,
                   [_in("x", F, [1, 4, 4, 3]), _in("o", F, [1, 4, 4, 6])],
                   [_in("g", F, [3, 6]), _in("sum", F, [1, 3]), _in("idx", I64, [3, 3])],
                   [("k", _i64(3)), ("one", _i64(1)), ("zero", _i64(0)),
                    ("batch", np.zeros((3, 1), np.int64))])

# a [1, 5] row minus a constant [4, 4, 1] grid: [4, 4, 5], squared (a tensor times itself)
GRID = _model([helper.make_node("Sub", ["grid", "x"], ["d"]),
               helper.make_node("Mul", ["d", "d"], ["y"])],
              [_in("x", F, [1, 5])], [_in("y", F, [4, 4, 5])],
              [("grid", np.arange(16, dtype=np.float32).reshape(4, 4, 1) / 4)])

# an int32 model input times a constant tensor (no float input to compute a constant from),
# then a Cast to float of a GatherND at constant indices (a negative one counts from the end)
INTEGER = _model([helper.make_node("Mul", ["x", "c"], ["m"]),
                  helper.make_node("GatherND", ["m", "i"], ["g"]),
                  helper.make_node("Cast", ["g"], ["y"], to=F)],
                 [_in("x", I32, [1, 2, 3])], [_in("m", I32, [1, 2, 3]), _in("y", F, [2])],
                 [("c", np.array([[[1, -2, 3], [4, 5, -6]]], np.int32)),
                  ("i", np.array([[0, 1, -1], [0, 0, 1]], np.int64))])

# case -> (model, the Keras operation classes it raises to)
CASES = {
    "reshape_unsqueeze_across_batch": (RESHAPES, {"Reshape"}),
    "keypoints_gather_nd_concat_add": (KEYPOINTS, {"Reshape", "Concatenate", "Take", "Add"}),
    "constant_grid_broadcasts_bigger": (GRID, {"Subtract"}),
    "integer_tensor_times_constant": (INTEGER, {"Multiply", "Take"}),
}


def _feed(proto, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feed = {}
    for v in proto.graph.input:
        dims = [d.dim_value for d in v.type.tensor_type.shape.dim]
        if v.type.tensor_type.elem_type == I32:
            feed[v.name] = rng.integers(-9, 10, dims).astype(np.int32)
        else:
            feed[v.name] = rng.standard_normal(dims).astype(np.float32)
    return feed


@pytest.mark.parametrize("case", sorted(CASES))
def test_static_op_raises_to_keras_operation_and_real_keras_agrees(case, tmp_path, keras3):
    proto, classes = CASES[case]

    def close(got, want, what):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=f"{case} {what}")

    raised_keras_matches(proto, classes, tmp_path, keras3, _feed, close)
    # it runs one sample (literal shapes), and its inputs say so rather than a free batch
    written = modelport.load(tmp_path / "m.keras")
    assert all(layer.config["batch_shape"][0] == 1 for layer in written.layers
               if layer.class_name == "InputLayer")


def test_h5_refuses_the_operations_naming_keras(tmp_path):
    src = tmp_path / "m.onnx"
    onnx.save(RESHAPES, src)
    with pytest.raises(modelport.UnsupportedError, match="keras.ops nodes") as e:
        modelport.convert(src, tmp_path / "m.h5")
    assert "--to keras" in str(e.value)
    assert not (tmp_path / "m.h5").exists()


def test_tfjs_layers_keeps_the_batch_axis_refusal(tmp_path):
    src = tmp_path / "m.onnx"
    onnx.save(RESHAPES, src)
    with pytest.raises(modelport.UnsupportedError) as e:
        modelport.convert(src, tmp_path / "out", to="tfjs-layers")
    assert "moves elements across the batch axis" in e.value.message


# case -> (model, words the refusal must hold): shapes that are not all static
REFUSED = {
    "reshape_free_batch": (_model([helper.make_node("Reshape", ["x", "pairs"], ["y"])],
                                  [_in("x", F, ["N", 34])], [_in("y", F, [17, 2])],
                                  [("pairs", _i64(17, 2))]),
                           "moves elements across the batch axis"),
    "grid_free_batch": (_model([helper.make_node("Sub", ["grid", "x"], ["y"])],
                               [_in("x", F, ["N", 5])], [_in("y", F, [4, 4, 5])],
                               [("grid", np.zeros((4, 4, 1), np.float32))]),
                        "broadcasts the tensor to a bigger shape"),
    "gather_nd_free_batch": (_model([helper.make_node("GatherND", ["x", "i"], ["y"])],
                                    [_in("x", F, ["N", 4, 3])], [_in("y", F, [2, 3])],
                                    [("i", _i64(0, 1, 0, 2).reshape(2, 2))]), "batch_dims=0"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_free_shapes_keep_the_layer_refusal(case, tmp_path):
    proto, words = REFUSED[case]
    assert words in refused_keras(proto, tmp_path, case).message
