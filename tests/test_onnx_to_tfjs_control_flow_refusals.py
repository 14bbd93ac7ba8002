"""ONNX -> TF.js graph: what ONNX's node suite found in the control-flow mapping.

A Constant node that makes an If branch's output (folding leaves it a node) becomes a Const;
an opset 8 Scan (batch axis) becomes a Loop over the batch around an opset 9 Scan before
onnx's version converter would drop that axis from the graph's input shapes; sequence and
optional values are refused by name; LSTM/GRU/RNN weights fed as graph inputs are read at run
time (over a static length). Real tfjs runs ONNX's own cases in
tests/interop/test_onnx_node_suite.py.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelport.converters.onnx_to_tfjs import driver
from modelport.errors import UnsupportedError


def _if_of_constants() -> onnx.ModelProto:
    def branch(name: str, value: list[float]) -> onnx.GraphProto:
        const = helper.make_node("Constant", [], [f"{name}_out"],
                                 value=numpy_helper.from_array(np.asarray(value, np.float32)))
        return helper.make_graph([const], name, [], [
            helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [2])])
    node = helper.make_node("If", ["cond"], ["res"], then_branch=branch("then", [1, 2]),
                            else_branch=branch("else", [3, 4]))
    graph = helper.make_graph([node], "g", [
        helper.make_tensor_value_info("cond", TensorProto.BOOL, [])], [
        helper.make_tensor_value_info("res", TensorProto.FLOAT, [2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_constant_branch_outputs_become_consts() -> None:
    graph = driver.convert(ir.from_proto(_if_of_constants()))
    consts = [n for f in graph.functions.values() for n in f.nodes if n.op == "Const"]
    assert len(consts) >= 2  # one per branch
    values = sorted(tuple(np.asarray(graph.weights[n.name]).tolist()) for n in consts
                    if n.name in graph.weights and np.asarray(graph.weights[n.name]).size == 2)
    assert values == [(1.0, 2.0), (3.0, 4.0)]


def _scan8(batch: int, steps: int, *, lens: bool = False,
           directions: list[int] | None = None) -> onnx.ModelProto:
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x_t"], ["s_out"]),
         helper.make_node("Mul", ["s_out", "x_t"], ["y_t"])], "body",
        [helper.make_tensor_value_info("s_in", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("x_t", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("y_t", TensorProto.FLOAT, [2])])
    extra = {} if directions is None else {"directions": directions}
    scan = helper.make_node("Scan", ["lens" if lens else "", "s0", "x"], ["s", "y"],
                            name="scan8", body=body, num_scan_inputs=1, **extra)
    inputs = [helper.make_tensor_value_info("s0", TensorProto.FLOAT, [batch, 2]),
              helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, steps, 2])]
    if lens:
        inputs.insert(0, helper.make_tensor_value_info("lens", TensorProto.INT32, [batch]))
    graph = helper.make_graph([scan], "g", inputs, [
        helper.make_tensor_value_info("s", TensorProto.FLOAT, [batch, 2]),
        helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, steps, 2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)], ir_version=3)


@pytest.mark.parametrize("directions", [None, [1]])
def test_opset8_scan_keeps_its_batch_axis(directions) -> None:
    """Opset 8's Scan (batch axis first) runs per batch entry inside a Loop; the graph's inputs
    keep their shapes, and the results match onnxruntime's."""
    import onnxruntime as ort

    from modelport.runtime.tfjs_reference import run

    model = _scan8(3, 4, directions=directions)
    graph = driver.convert(ir.from_proto(model))
    assert [i.shape for i in graph.inputs] == [[3, 2], [3, 4, 2]]
    rng = np.random.default_rng(1)
    feeds = {"s0": rng.standard_normal((3, 2)).astype(np.float32),
             "x": rng.standard_normal((3, 4, 2)).astype(np.float32)}
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, feeds)
    got = run(graph, {i.key: feeds[i.key] for i in graph.inputs})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-6, rtol=1e-6)


def test_opset8_scan_sequence_lens_is_refused_by_name() -> None:
    with pytest.raises(UnsupportedError, match=r"Scan node 'scan8': opset 8 Scan with "
                                               r"sequence_lens"):
        driver.convert(ir.from_proto(_scan8(2, 3, lens=True)))


def test_sequence_values_are_refused_by_name() -> None:
    seq = helper.make_value_info("seq", helper.make_sequence_type_proto(
        helper.make_tensor_type_proto(TensorProto.FLOAT, [2])))
    node = helper.make_node("SequenceConstruct", ["a"], ["seq"])
    graph = helper.make_graph([node], "g", [
        helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])], [seq])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(UnsupportedError, match=r"graph output 'seq': graph output is a "
                                               r"sequence value, not a tensor"):
        driver.convert(ir.from_proto(model))


def _recurrent(op: str, steps: int | None, bidirectional: bool) -> onnx.ModelProto:
    """``op`` whose W, R and B are graph inputs (as in ONNX's own node tests)."""
    gates, dirs, hidden, size = {"LSTM": 4, "GRU": 3, "RNN": 1}[op], 1 + bidirectional, 3, 2
    node = helper.make_node(op, ["X", "W", "R", "B"], ["Y", "Y_h"], hidden_size=hidden,
                            direction="bidirectional" if bidirectional else "forward")
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [steps or "T", 2, size]),
              helper.make_tensor_value_info("W", TensorProto.FLOAT, [dirs, gates * hidden, size]),
              helper.make_tensor_value_info("R", TensorProto.FLOAT,
                                            [dirs, gates * hidden, hidden]),
              helper.make_tensor_value_info("B", TensorProto.FLOAT, [dirs, 2 * gates * hidden])]
    graph = helper.make_graph([node], "g", inputs, [
        helper.make_tensor_value_info("Y", TensorProto.FLOAT, None),
        helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, None)])
    # (IR 8: what the onnxruntime CI installs reads)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_run_time_weights_over_a_static_length(op: str) -> None:
    import onnxruntime as ort

    from modelport.runtime.tfjs_reference import run

    model = _recurrent(op, 4, bidirectional=True)
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim])
             .astype(np.float32) for i in model.graph.input}
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, feeds)
    graph = driver.convert(ir.from_proto(model))
    got = run(graph, {i.key: feeds[i.key] for i in graph.inputs})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-5)


def test_run_time_weights_over_a_run_time_length_are_refused_by_name() -> None:
    with pytest.raises(UnsupportedError, match=r"W \('W'\) is computed at run time and the "
                                               r"sequence length is too"):
        driver.convert(ir.from_proto(_recurrent("LSTM", None, bidirectional=False)))
