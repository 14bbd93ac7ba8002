"""Weights inside control flow count (issue 18): an ONNX model keeping its weights in ``If``
branches and ``Loop`` bodies (initializers or Constant nodes, at any depth), as silero-vad does,
is reported with all of them by ``inspect`` and by ``convert`` alike, each array once; a TF.js
graph-model's function library constants count once too."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.models.weight_counts import onnx_weights, weight_totals

F = TensorProto.FLOAT
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _w(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _branch(name, nodes, inits=()):
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info("y_" + name, F, None)],
                             [numpy_helper.from_array(a, n) for n, a in inits])


def _control_flow_model() -> tuple[onnx.ModelProto, int]:
    """``If(c)``: the then-branch holds a 4x3 initializer and a nested ``If`` whose branches
    hold a 4x3 Constant each; the else-branch a 4x3 Constant; a ``Loop`` body a 3-element
    initializer; the main graph a 3-element initializer. Returns the model and its
    parameter count."""
    inner_then = _branch("inner_then", [
        helper.make_node("Constant", [], ["k1"], value=numpy_helper.from_array(_w((4, 3), 1))),
        helper.make_node("MatMul", ["x", "k1"], ["y_inner_then"])])
    inner_else = _branch("inner_else", [
        helper.make_node("Constant", [], ["k2"], value=numpy_helper.from_array(_w((4, 3), 2))),
        helper.make_node("MatMul", ["x", "k2"], ["y_inner_else"])])
    then = _branch("then", [
        helper.make_node("MatMul", ["x", "w_then"], ["a"]),
        helper.make_node("If", ["c"], ["b"], then_branch=inner_then, else_branch=inner_else),
        helper.make_node("Add", ["a", "b"], ["y_then"])], [("w_then", _w((4, 3), 3))])
    other = _branch("else", [
        helper.make_node("Constant", [], ["k3"], value=numpy_helper.from_array(_w((4, 3), 4))),
        helper.make_node("MatMul", ["x", "k3"], ["y_else"])])
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["acc_in", "step"], ["acc_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("acc_in", F, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", F, None)],
        [numpy_helper.from_array(_w((3,), 5), "step")])
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["h"], then_branch=then, else_branch=other),
         helper.make_node("Add", ["h", "bias"], ["hb"]),
         helper.make_node("Loop", ["trips", "", "hb"], ["y"], body=body)],
        "control_flow",
        [helper.make_tensor_value_info("x", F, ["N", 4]),
         helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", F, ["N", 3])],
        [numpy_helper.from_array(_w((3,), 6), "bias"),
         numpy_helper.from_array(np.array(2, np.int64), "trips")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    return model, 4 * 12 + 3 + 3 + 1


def test_inspect_counts_weights_in_if_branches_and_loop_bodies(tmp_path):
    model, parameters = _control_flow_model()
    src = tmp_path / "m.onnx"
    onnx.save(model, src)
    info = modelport.inspect(src, validate=False)
    assert info.parameters == parameters
    # the int64 trip count is 8 bytes; the rest float32
    assert info.weight_bytes == 4 * (parameters - 1) + 8
    assert info.weight_dtypes == {"float": 6, "int64": 1}


def test_convert_reports_the_same_counts_as_inspect(tmp_path):
    model, parameters = _control_flow_model()
    src = tmp_path / "m.onnx"
    onnx.save(model, src)
    report = modelport.convert(src, tmp_path / "out.onnx", to="onnx", validate=False)
    info = modelport.inspect(src, validate=False)
    assert (report.parameters, report.weight_bytes) == (parameters, info.weight_bytes)
    assert report.layers == info.layers  # the nodes of every subgraph, as inspect counts them


def test_one_array_reached_twice_counts_once():
    model = ir.serde.deserialize_model(_control_flow_model()[0])
    before = weight_totals(model)
    # the main graph's bias array also held by a Constant node: one array, counted once
    bias = model.graph.initializers["bias"].const_value
    model.graph.append(ir.node("Constant", [], {"value": bias}))
    assert weight_totals(model) == before
    assert len(onnx_weights(model)) == 7


@pytest.mark.parametrize("fixture", ["keras_rnn_v2", "cond_while_v2"])
def test_graph_model_function_library_constants_count_once(fixture, tmp_path):
    """tensorflowjs_converter's control-flow graph-models: the constants of the function
    library's ``while`` / ``cond`` bodies are weights in the manifest, counted once each."""
    path = FIXTURES / "control_flow" / "tf" / fixture / "model.json"
    manifest = json.loads(path.read_text())["weightsManifest"]
    expected = sum(math.prod(w["shape"]) for group in manifest for w in group["weights"]
                   if w["dtype"] != "string")
    assert modelport.inspect(path, validate=False).parameters == expected
    report = modelport.convert(path, tmp_path / "m.onnx", validate=False)
    assert report.parameters == expected
