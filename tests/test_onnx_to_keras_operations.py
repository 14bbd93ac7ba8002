"""ONNX ops raised to Keras 3 operations (``converters/onnx_to_keras/operations.py``), the
refusals of ops without one, and the symbolic shape arithmetic (``shape_values``), each from a
table of cases. Every conversion runs the default check: onnxruntime on the ONNX against the
NumPy Keras reference on the written model."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.converters.onnx_to_keras.shape_values import Dim, fold_static_shapes, symbolic

from .onnx_graphs import model as _model
from .onnx_graphs import refused_keras
from .onnx_graphs import value as _in

F, I64 = TensorProto.FLOAT, TensorProto.INT64


# case -> (model, the Keras operation class it raises to)
CASES = {
    "log": (_model([helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Log", ["s"], ["y"])],
                   [_in("x", F, ["N", 4])], [_in("y", F, ["N", 4])]), "Log"),
    "reduce_min": (_model([helper.make_node("ReduceMin", ["x"], ["y"], axes=[2], keepdims=0)],
                          [_in("x", F, ["N", 3, 4])], [_in("y", F, ["N", 3])]), "Min"),
    "reduce_min_keep": (_model([helper.make_node("ReduceMin", ["x"], ["y"], axes=[1, 2])],
                               [_in("x", F, ["N", 3, 4])], [_in("y", F, ["N", 1, 1])]), "Min"),
    "argmax": (_model([helper.make_node("ArgMax", ["x"], ["y"], axis=1, keepdims=0)],
                      [_in("x", F, ["N", 5])], [_in("y", I64, ["N"])]), "Argmax"),
    "argmin_keep": (_model([helper.make_node("ArgMin", ["x"], ["y"], axis=-1)],
                           [_in("x", F, ["N", 2, 5])], [_in("y", I64, ["N", 2, 1])]), "Argmin"),
    "equal": (_model([helper.make_node("Equal", ["x", "c"], ["y"])],
                     [_in("x", I64, ["N", 6])], [_in("y", TensorProto.BOOL, ["N", 6])],
                     [("c", np.array(3, np.int64))]), "Equal"),
    "mod": (_model([helper.make_node("Mod", ["x", "c"], ["y"])],
                   [_in("x", I64, ["N", 6])], [_in("y", I64, ["N", 6])],
                   [("c", np.array(4, np.int64))]), "Mod"),
    "sqrt": (_model([helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Sqrt", ["s"], ["y"])],
                    [_in("x", F, ["N", 4])], [_in("y", F, ["N", 4])]), "Sqrt"),
    "div_tensors": (_model([helper.make_node("Sigmoid", ["x"], ["s"]),
                            helper.make_node("ReduceMax", ["s"], ["m"], axes=[2]),
                            helper.make_node("Div", ["x", "m"], ["y"])],
                           [_in("x", F, ["N", 3, 4])], [_in("y", F, ["N", 3, 4])]), "Divide"),
    "div_number_by_tensor": (_model([helper.make_node("Sigmoid", ["x"], ["s"]),
                                     helper.make_node("Div", ["c", "s"], ["y"])],
                                    [_in("x", F, ["N", 4])], [_in("y", F, ["N", 4])],
                                    [("c", np.array(2.0, np.float32))]), "Divide"),
    # div_no_nan as tf2onnx writes it (basic-pitch): Where(Equal(d, 0), 0, x / d)
    "where": (_model([helper.make_node("Relu", ["x"], ["d"]),
                      helper.make_node("Equal", ["d", "zero"], ["z"]),
                      helper.make_node("Where", ["z", "zero", "x"], ["y"])],
                     [_in("x", F, ["N", 5])], [_in("y", F, ["N", 5])],
                     [("zero", np.array(0.0, np.float32))]), "Where"),
    "reduce_max_two_axes": (_model([helper.make_node("ReduceMax", ["x"], ["y"], axes=[1, 2],
                                                     keepdims=0)],
                                   [_in("x", F, ["N", 3, 4])], [_in("y", F, ["N"])]), "Max"),
    # (axes=[2] of a rank-3 tensor is GlobalMaxPooling1D, channels first: a layer, kept)
    "reduce_max_keep": (_model([helper.make_node("ReduceMax", ["x"], ["y"], axes=[-3])],
                               [_in("x", F, ["N", 3, 4, 2])], [_in("y", F, ["N", 1, 4, 2])]),
                        "Max"),
    "reduce_sum": (_model([helper.make_node("ReduceSum", ["x", "a"], ["y"], keepdims=0)],
                          [_in("x", F, ["N", 3, 4])], [_in("y", F, ["N", 3])],
                          [("a", np.array([-1], np.int64))]), "Sum"),
    "reduce_sum_keep": (_model([helper.make_node("ReduceSum", ["x", "a"], ["y"])],
                               [_in("x", F, ["N", 3, 4, 2])], [_in("y", F, ["N", 1, 4, 1])],
                               [("a", np.array([1, 3], np.int64))]), "Sum"),
    "pad_last_axis": (_model([helper.make_node("Pad", ["x", "p"], ["y"])],
                             [_in("x", F, ["N", 3, 4])], [_in("y", F, ["N", 3, 9])],
                             [("p", np.array([0, 0, 2, 0, 0, 3], np.int64))]), "Pad"),
    "pad_last_axis_value": (_model([helper.make_node("Pad", ["x", "p", "v"], ["y"])],
                                   [_in("x", F, ["N", 3, 4])], [_in("y", F, ["N", 4, 5])],
                                   [("p", np.array([0, 1, 0, 0, 0, 1], np.int64)),
                                    ("v", np.array(-1.5, np.float32))]), "Pad"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_raises_to_keras_operation(case, tmp_path):
    proto, cls = CASES[case]
    src = tmp_path / "m.onnx"
    onnx.save(proto, src)
    report = modelport.convert(src, tmp_path / "m.keras")
    assert report.parity is not None and report.parity.passed
    model = modelport.load(tmp_path / "m.keras")
    ops = [layer for layer in model.layers if layer.class_name == cls]
    assert len(ops) == 1 and ops[0].module == "keras.src.ops.numpy"
    # Keras 3's legacy .h5 loader rebuilds no keras.ops node: refused, pointing to .keras
    with pytest.raises(modelport.UnsupportedError, match="keras.ops nodes") as e:
        modelport.convert(src, tmp_path / "m.h5")
    assert ".keras" in (e.value.hint or "")


# case -> (model, words the refusal must hold)
REFUSED = {
    "gather_nd": (_model([helper.make_node("GatherND", ["x", "i"], ["y"])],
                         [_in("x", F, ["N", 4, 3])], [_in("y", F, ["N", 3])],
                         [("i", np.array([[0], [2]], np.int64))]), "GatherND"),
    "mod_fmod": (_model([helper.make_node("Mod", ["x", "c"], ["y"], fmod=1)],
                        [_in("x", F, ["N", 6])], [_in("y", F, ["N", 6])],
                        [("c", np.array(1.5, np.float32))]), "fmod=1"),
    "argmax_last": (_model([helper.make_node("ArgMax", ["x"], ["y"], axis=1,
                                             select_last_index=1)],
                           [_in("x", F, ["N", 5])], [_in("y", I64, ["N", 1])]),
                    "select_last_index"),
    "reduce_min_batch": (_model([helper.make_node("ReduceMin", ["x"], ["y"], axes=[0])],
                                [_in("x", F, ["N", 5])], [_in("y", F, [1, 5])]), "batch"),
    "reduce_max_batch": (_model([helper.make_node("ReduceMax", ["x"], ["y"], axes=[0, 1])],
                                [_in("x", F, ["N", 5])], [_in("y", F, [1, 1])]), "batch"),
    "pad_batch": (_model([helper.make_node("Pad", ["x", "p"], ["y"])],
                         [_in("x", F, ["N", 4])], [_in("y", F, ["M", 4])],
                         [("p", np.array([1, 0, 0, 0], np.int64))]), "batch"),
    "div_integers": (_model([helper.make_node("Div", ["x", "x"], ["y"])],
                            [_in("x", I64, ["N", 4])], [_in("y", I64, ["N", 4])]), "truncates"),
    "scalar_input": (_model([helper.make_node("Mul", ["x", "x"], ["y"])],
                            [_in("x", F, [])], [_in("y", F, [])]), "is a scalar"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_op_without_keras_form_is_refused_naming_it_and_the_source(case, tmp_path):
    proto, words = REFUSED[case]
    error = refused_keras(proto, tmp_path, case)
    assert words in error.message
    src = tmp_path / f"{case}.onnx"
    assert f"modelport convert {src} out_dir --to tfjs-graph" in (error.hint or "")


def _values(proto) -> dict[str, ir.Value]:
    model = ir.serde.deserialize_model(onnx.shape_inference.infer_shapes(proto))
    out = {v.name: v for n in model.graph for v in n.outputs}
    out.update({v.name: v for v in model.graph.inputs})
    return out, model


def test_symbolic_shape_arithmetic_table():
    x = _in("x", F, ["N", 6, 4])
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i12"], ["tail"], axis=0),
             helper.make_node("Gather", ["s", "i0"], ["batch"], axis=0),
             helper.make_node("Unsqueeze", ["batch", "a0"], ["batch1"]),
             helper.make_node("Concat", ["batch1", "tail"], ["again"], axis=0),
             helper.make_node("Slice", ["s", "st", "en"], ["mid"]),
             helper.make_node("Mul", ["mid", "two"], ["twice"]),
             helper.make_node("Reshape", ["x", "again"], ["y"])]
    inits = [("i12", np.array([1, 2])), ("i0", np.array(0)), ("a0", np.array([0])),
             ("st", np.array([1])), ("en", np.array([-1])), ("two", np.array([2]))]
    values, model = _values(_model(nodes, [x], [_in("y", F, ["N", 6, 4])], inits))
    xv = values["x"]
    table = {"s": ((Dim(xv, 0), 6, 4), False), "tail": ((6, 4), False),
             "batch": ((Dim(xv, 0),), True), "again": ((Dim(xv, 0), 6, 4), False),
             "mid": ((6,), False), "twice": ((12,), False)}
    for name, (items, scalar) in table.items():
        got = symbolic(values[name])
        assert got is not None and got.items == items and got.scalar == scalar, name
    # tail and mid become initializers; twice, read by nothing, goes with the Slice and Gather
    assert fold_static_shapes(model.graph) == 2
    assert {n.op_type for n in model.graph} == {"Shape", "Gather", "Unsqueeze", "Concat",
                                                "Reshape"}


def test_integer_div_truncates_toward_zero_as_onnx(tmp_path, keras3):
    """ONNX's integer Div truncates (7 / 2 = 3, -7 / 2 = -3): Keras operations Divide and
    Cast, not Rescaling(1/k), which gave 3.5; layer-only targets refuse it."""
    graph = helper.make_graph(
        [helper.make_node("Div", ["x", "k"], ["q"], name="halve"),
         helper.make_node("Cast", ["q"], ["y"], to=TensorProto.FLOAT)],
        "g", [helper.make_tensor_value_info("x", TensorProto.INT32, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
        [numpy_helper.from_array(np.array(3, np.int32), "k")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    src = tmp_path / "m.onnx"
    onnx.save(proto, src)
    report = modelport.convert(src, tmp_path / "m.keras")
    assert report.parity is not None and report.parity.passed
    x = np.array([[7, -7, 6, -6], [0, 1, -1, 2**20 + 1]], np.int32)
    got = np.asarray(keras3.models.load_model(tmp_path / "m.keras", compile=False)(x))
    np.testing.assert_array_equal(got, [[2, -2, 2, -2], [0, 0, 0, (2**20 + 1) // 3]])
    with pytest.raises(modelport.UnsupportedError, match="keras.ops nodes"):
        modelport.convert(src, tmp_path / "m.h5")
