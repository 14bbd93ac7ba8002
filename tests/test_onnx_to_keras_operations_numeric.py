"""ONNX Round/Floor/Ceil, Cast between floats, integers and bool, and TopK raised to Keras 3
operations (``converters/onnx_to_keras/operations_numeric.py``, ``operations_index.py``), each
from a table of cases: converted with the default check (onnxruntime against the NumPy Keras
reference), then the ``.keras`` loaded in real Keras 3 and run on inputs with halves and ties,
against onnxruntime; and the refusals of what has no Keras operation."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import modelport

from .onnx_graphs import model as _model
from .onnx_graphs import raised_keras_matches, refused_keras
from .onnx_graphs import value as _in

F, I32, I64, U8, B = (TensorProto.FLOAT, TensorProto.INT32, TensorProto.INT64, TensorProto.UINT8,
                      TensorProto.BOOL)


def _unary(op, **attrs):
    return _model([helper.make_node(op, ["x"], ["y"], **attrs)], [_in("x", F, ["N", 3, 4])],
                  [_in("y", F, ["N", 3, 4])])


def _cast_to(to, elem):
    """x * 7 cast to ``to``: a float -> integer (or bool) cast of values with fractions."""
    return _model([helper.make_node("Mul", ["x", "s"], ["m"]),
                   helper.make_node("Cast", ["m"], ["y"], to=to)],
                  [_in("x", F, ["N", 6])], [_in("y", elem, ["N", 6])],
                  [("s", np.array(7.0, np.float32))])


# ONNX's dynamic quantization of an activation (what onnxruntime writes around ConvInteger):
# round(x / scale) clipped to uint8, cast to uint8 and back, times the scale
QUANTIZE = _model([helper.make_node("Div", ["x", "s"], ["d"]),
                   helper.make_node("Round", ["d"], ["r"]),
                   helper.make_node("Relu", ["r"], ["c"]),
                   helper.make_node("Cast", ["c"], ["q"], to=U8),
                   helper.make_node("Cast", ["q"], ["f"], to=F),
                   helper.make_node("Mul", ["f", "s"], ["y"])],
                  [_in("x", F, ["N", 8])], [_in("y", F, ["N", 8])],
                  [("s", np.array(0.125, np.float32))])

# TF's batch gather at batch 1 (CenterNet's boxes at its top-k centres): the rows of x picked
# by indices computed in the model, through Reshape -> Gather(axis 0) -> Reshape
BATCH_GATHER = _model([helper.make_node("ReduceSum", ["x", "a3"], ["s"], keepdims=0),
                       helper.make_node("Reshape", ["s", "flat"], ["sf"]),
                       helper.make_node("TopK", ["sf", "k"], ["v", "i"]),
                       # integer arithmetic on the indices (raised to float32 layers)
                       helper.make_node("Mod", ["i", "three"], ["m"]),
                       helper.make_node("Sub", ["i", "m"], ["i3"]),
                       helper.make_node("Reshape", ["i3", "k"], ["i1"]),
                       helper.make_node("Reshape", ["x", "rows"], ["xr"]),
                       helper.make_node("Gather", ["xr", "i1"], ["g"], axis=0),
                       helper.make_node("Reshape", ["g", "back"], ["y"])],
                      [_in("x", F, [1, 4, 5, 3])], [_in("v", F, [1, 6]), _in("y", F, [1, 6, 3])],
                      [("a3", np.array([3], np.int64)), ("flat", np.array([1, 20], np.int64)),
                       ("k", np.array([6], np.int64)), ("rows", np.array([20, 3], np.int64)),
                       ("back", np.array([1, 6, 3], np.int64)),
                       ("three", np.array(3, np.int64))])

# tf.gather_nd(x, i, batch_dims=1) with indices computed in the model (TopK over x's columns)
def _gather_nd(k: int, squeeze: bool):
    nodes = [helper.make_node("ReduceMax", ["x"], ["s"], axes=[3], keepdims=0),
             helper.make_node("TopK", ["s", "k"], ["v", "i"])]
    if squeeze:  # [N, 4, k] -> [N, k] (one cell per sample when k == 2)
        nodes.append(helper.make_node("ReduceMin", ["i"], ["ii"], axes=[1], keepdims=0))
    nodes += [helper.make_node("Sub", ["ii" if squeeze else "i", "one"], ["neg"]),  # -1: last
              helper.make_node("GatherND", ["x", "neg"], ["y"], batch_dims=1)]
    out = [1, 3] if squeeze else [1, 4, 3]
    return _model(nodes, [_in("x", F, [1, 4, 4, 3])], [_in("y", F, out)],
                  [("k", np.array([k], np.int64)), ("one", np.array(1, np.int64))])


# case -> (model, the Keras operation classes it raises to)
CASES = {
    "round": (_unary("Round"), {"Round"}),
    "floor": (_unary("Floor"), {"Floor"}),
    "ceil": (_unary("Ceil"), {"Ceil"}),
    "cast_float_to_int32": (_cast_to(I32, I32), {"Cast"}),
    "cast_float_to_int64": (_cast_to(I64, I64), {"Cast"}),
    "cast_float_to_bool": (_cast_to(B, B), {"Cast"}),
    "cast_bool_to_float": (_model([helper.make_node("Floor", ["x"], ["f"]),
                                   helper.make_node("Equal", ["f", "z"], ["e"]),
                                   helper.make_node("Cast", ["e"], ["y"], to=F)],
                                  [_in("x", F, ["N", 5])], [_in("y", F, ["N", 5])],
                                  [("z", np.array(0.0, np.float32))]),
                           {"Floor", "Equal", "Cast"}),
    "cast_int_to_float": (_model([helper.make_node("ArgMax", ["x"], ["a"], axis=2),
                                  helper.make_node("Cast", ["a"], ["y"], to=F)],
                                 [_in("x", F, ["N", 3, 5])], [_in("y", F, ["N", 3, 1])]),
                          {"Argmax", "Cast"}),
    "quantize_uint8": (QUANTIZE, {"Round", "Cast"}),
    "topk_values_and_indices": (_model([helper.make_node("TopK", ["x", "k"], ["v", "i"])],
                                       [_in("x", F, ["N", 10])],
                                       [_in("v", F, ["N", 3]), _in("i", I64, ["N", 3])],
                                       [("k", np.array([3], np.int64))], opset=11), {"TopK"}),
    "topk_rank3_indices_as_float": (_model([helper.make_node("TopK", ["x", "k"], ["v", "i"],
                                                             axis=-1),
                                            helper.make_node("Cast", ["i"], ["y"], to=F)],
                                           [_in("x", F, ["N", 2, 6])],
                                           [_in("v", F, ["N", 2, 4]), _in("y", F, ["N", 2, 4])],
                                           [("k", np.array([4], np.int64))], opset=11),
                                    {"TopK", "Cast"}),
    "gather_nd_rows": (_gather_nd(2, False),
                       {"TopK", "Take", "Mod", "Multiply", "Add", "TakeAlongAxis"}),
    "gather_nd_one_cell": (_gather_nd(2, True), {"Take", "TakeAlongAxis", "Squeeze"}),
    "batch_gather": (BATCH_GATHER, {"TopK", "Mod", "Cast", "ExpandDims", "TakeAlongAxis"}),
}


def _feed(proto, seed: int) -> dict[str, np.ndarray]:
    """Inputs with exact halves (Round's ties) and repeated values (TopK's ties)."""
    rng = np.random.default_rng(seed)
    feed = {}
    for v in proto.graph.input:
        dims = [2 if not d.dim_value else d.dim_value for d in v.type.tensor_type.shape.dim]
        x = (rng.integers(-8, 9, dims) / 4.0).astype(np.float32)  # quarters and halves
        feed[v.name] = x
    return feed


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_raises_to_keras_operation_and_real_keras_agrees(case, tmp_path, keras3):
    proto, classes = CASES[case]

    def exact(got, want, what):  # rounding, casts and a selection compute no new value
        np.testing.assert_array_equal(got, want, err_msg=f"{case} {what}")

    src = raised_keras_matches(proto, classes, tmp_path, keras3, _feed, exact)
    with pytest.raises(modelport.UnsupportedError, match="keras.ops nodes"):
        modelport.convert(src, tmp_path / "m.h5")


def _topk(**attrs):
    return _model([helper.make_node("TopK", ["x", "k"], ["v", "i"], **attrs)],
                  [_in("x", F, ["N", 4, 6])], [_in("v", F, ["N", "a", "b"]),
                                              _in("i", I64, ["N", "a", "b"])],
                  [("k", np.array([2], np.int64))], opset=11)


# case -> (model, words the refusal must hold)
REFUSED = {
    "topk_smallest": (_topk(largest=0), "largest=0"),
    "topk_unsorted": (_topk(sorted=0), "sorted=0"),
    "topk_inner_axis": (_topk(axis=1), "last axis"),
    "gather_nd_batch": (_model([helper.make_node("GatherND", ["x", "i"], ["y"])],
                               [_in("x", F, ["N", 4, 3])], [_in("y", F, [2, 3])],
                               [("i", np.array([[0, 1], [0, 2]], np.int64))]), "batch_dims=0"),
    "round_of_ints": (_model([helper.make_node("ArgMax", ["x"], ["a"], axis=1),
                              helper.make_node("Round", ["a"], ["y"])],
                             [_in("x", F, ["N", 5])], [_in("y", I64, ["N", 1])]), "Round of"),
    "cast_to_double": (_model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.DOUBLE)],
                              [_in("x", F, ["N", 5])], [_in("y", TensorProto.DOUBLE, ["N", 5])]),
                       "DOUBLE"),
}


# with the batch free this is refused; k is computed from the batch size (Shape -> Slice), so
# the conversion raises it again at a batch of one, where k is 1
AT_ONE_SAMPLE = {
    "topk_computed_k": _model([helper.make_node("Shape", ["x"], ["s"]),
                               helper.make_node("Slice", ["s", "a", "b"], ["k"]),
                               helper.make_node("TopK", ["x", "k"], ["v", "i"])],
                              [_in("x", F, ["N", 6])],
                              [_in("v", F, ["N", "k"]), _in("i", I64, ["N", "k"])],
                              [("a", np.array([0], np.int64)), ("b", np.array([1], np.int64))],
                              opset=11),
}


@pytest.mark.parametrize("case", sorted(AT_ONE_SAMPLE))
def test_free_batch_raises_at_one_sample(case, tmp_path):
    src = tmp_path / f"{case}.onnx"
    onnx.save(AT_ONE_SAMPLE[case], src)
    report = modelport.convert(src, tmp_path / "one.keras")
    assert report.parity is not None and report.parity.passed
    assert any("pinned to 1" in note for note in report.notes), report.notes


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_op_without_keras_operation_is_refused_by_name(case, tmp_path):
    proto, words = REFUSED[case]
    assert words in refused_keras(proto, tmp_path, case).message
