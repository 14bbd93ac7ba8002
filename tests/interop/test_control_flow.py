"""Control flow and recurrence in real tfjs (Node, @tensorflow/tfjs 4.22, executeAsync).

* ONNX ``If``/``Loop`` (``StatelessIf``/``StatelessWhile`` with a function library) and
  ``LSTM``/``GRU``/``RNN`` (unrolled) converted to graph-models run in tfjs and match what
  onnxruntime computed on the source; tf2onnx's Keras RNNs (``Loop``s, ``LSTM``s,
  ``ReverseSequence``) match Keras.
* Graph-models written by ``tensorflowjs_converter`` (v1 frames and ``--control_flow_v2``) run
  in tfjs as in TensorFlow, the v1 frames lifted to v2 still do, and the ONNX converted from
  either matches tfjs in onnxruntime.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest

from modelport.converters.onnx_to_tfjs import driver as to_tfjs
from modelport.converters.tfjs_to_onnx import driver as to_onnx
from modelport.formats import tfjs_graph
from modelport.models.tfjs_control_v1 import lift

from ..conftest import FIXTURES
from ..test_control_flow import (
    HERE,
    MANIFEST,
    ONNX_CASES,
    TF2ONNX_DYNAMIC,
    TF2ONNX_RNN,
    TF_CASES,
    V1,
    io_sets,
    onnx_to_graph,
)

ATOL = RTOL = 1e-5


def _run(tfjs, model_json, graph, feeds):
    return tfjs.run_graph_model(model_json, [(i.tensor, feeds[i.key]) for i in graph.inputs],
                                [o.tensor for o in graph.outputs])


@pytest.mark.parametrize("name", ONNX_CASES)
def test_onnx_case_runs_in_tfjs_like_onnxruntime(tfjs, name, tmp_path):
    graph = onnx_to_graph(name)
    written = tfjs_graph.write(graph, tmp_path / "web")
    for feeds, want in io_sets(HERE / "onnx" / f"{name}.npz",
                               MANIFEST["onnx"]["cases"][name]["sets"]):
        for info, value in zip(graph.outputs, _run(tfjs, written, graph, feeds)):
            np.testing.assert_allclose(value, want[info.key], atol=ATOL, rtol=RTOL,
                                       err_msg=f"{name}: {info.key}")


@pytest.mark.parametrize("name", TF2ONNX_RNN)
def test_tf2onnx_keras_rnn_runs_in_tfjs_like_keras(tfjs, name, tmp_path):
    graph = to_tfjs.convert(ir.from_proto(onnx.load(FIXTURES / "tf2onnx" / f"{name}.onnx")))
    written = tfjs_graph.write(graph, tmp_path / "web")
    with np.load(FIXTURES / "tf2onnx" / f"{name}.npz") as data:
        feeds = {k.split(":", 1)[1]: data[k] for k in data.files if k.startswith("input:")}
        wants = [data[k] for k in data.files if k.startswith("output:")]
    got = _run(tfjs, written, graph, feeds)
    for value, want in zip(got, wants):
        np.testing.assert_allclose(value, want, atol=ATOL, rtol=RTOL, err_msg=name)


@pytest.mark.parametrize("name", TF2ONNX_DYNAMIC)
def test_tf2onnx_keras_rnn_over_a_dynamic_length_runs_in_tfjs_like_keras(tfjs, name, tmp_path):
    graph = to_tfjs.convert(ir.from_proto(onnx.load(HERE / "tf2onnx" / f"{name}.onnx")))
    written = tfjs_graph.write(graph, tmp_path / "web")
    for feeds, want in io_sets(HERE / "tf2onnx" / f"{name}.npz",
                               MANIFEST["tf2onnx"]["cases"][name]["sets"]):
        for value, expected in zip(_run(tfjs, written, graph, feeds), want.values()):
            np.testing.assert_allclose(value, expected, atol=ATOL, rtol=RTOL, err_msg=name)


@pytest.mark.parametrize("name", TF_CASES)
def test_converter_control_flow_runs_in_tfjs_like_tensorflow(tfjs, name):
    graph = tfjs_graph.read(HERE / "tf" / name)
    for feeds, want in io_sets(HERE / "tf" / name / "io.npz",
                               MANIFEST["tf"]["cases"][name]["sets"]):
        got = _run(tfjs, HERE / "tf" / name / "model.json", graph, feeds)
        for info, value in zip(graph.outputs, got):
            np.testing.assert_allclose(value, want[info.key], atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("name", V1)
def test_lifted_v1_frames_run_in_tfjs_like_tensorflow(tfjs, name, tmp_path):
    lifted = lift(tfjs_graph.read(HERE / "tf" / name))
    written = tfjs_graph.write(lifted, tmp_path / "web")
    for feeds, want in io_sets(HERE / "tf" / name / "io.npz",
                               MANIFEST["tf"]["cases"][name]["sets"]):
        for info, value in zip(lifted.outputs, _run(tfjs, written, lifted, feeds)):
            np.testing.assert_allclose(value, want[info.key], atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("name", TF_CASES)
def test_graph_model_to_onnx_matches_tfjs(tfjs, name):
    graph = tfjs_graph.read(HERE / "tf" / name)
    model = ir.to_proto(to_onnx.convert(graph))
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    for feeds, _ in io_sets(HERE / "tf" / name / "io.npz",
                            MANIFEST["tf"]["cases"][name]["sets"]):
        theirs = _run(tfjs, HERE / "tf" / name / "model.json", graph, feeds)
        ours = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, atol=ATOL, rtol=RTOL)
