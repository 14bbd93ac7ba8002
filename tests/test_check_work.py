"""The check's probes are sized by the work a row takes too, not only by its input elements
(check.work): a model whose rows are cheap to feed but costly to run gets fewer rows a probe,
down to one, where the user chose no batch; inspect sizes alike."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.check import work


def _model(path, features: int = 64) -> None:
    """x [n, features] -> MatMul [features, features] -> Conv1D-as-Conv -> Gemm."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((features, features)).astype(np.float32) / 8
    k = rng.standard_normal((4, 1, 3)).astype(np.float32)
    g = rng.standard_normal((4 * (features - 2), 5)).astype(np.float32) / 8
    shape = numpy_helper.from_array(np.array([0, 1, features], np.int64), "shape")
    flat = numpy_helper.from_array(np.array([0, -1], np.int64), "flat")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Reshape", ["h", "shape"], ["h3"]),
             helper.make_node("Conv", ["h3", "k"], ["c"]),
             helper.make_node("Reshape", ["c", "flat"], ["cf"]),
             helper.make_node("Gemm", ["cf", "g"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])],
        [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (k, "k"), (g, "g"))]
        + [shape, flat])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_the_multiply_adds_of_a_graph_are_counted_from_its_shapes(tmp_path):
    from modelport import budget

    _model(tmp_path / "m.onnx")
    proto = onnx.load(tmp_path / "m.onnx")
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 3
    inferred = budget.infer_shapes(proto, weight_bytes=0)
    per_row = 64 * 64 + 4 * 62 * 3 + 4 * 62 * 5  # MatMul, Conv (C=1, k=3), Gemm
    assert work.onnx_macs(inferred.graph) == 3 * per_row


def test_a_probe_gets_the_rows_its_work_allows(tmp_path, monkeypatch):
    _model(tmp_path / "m.onnx")
    per_row = 64 * 64 + 4 * 62 * 3 + 4 * 62 * 5
    free = modelport.convert(tmp_path / "m.onnx", tmp_path / "free", to="tfjs-graph",
                             engine="reference")
    assert free.parity.passed and free.parity.inputs["batch"] == 16  # elements allow 16 rows
    monkeypatch.setattr(work, "WORK_MACS", 3 * per_row)
    capped = modelport.convert(tmp_path / "m.onnx", tmp_path / "capped", to="tfjs-graph",
                               engine="reference")
    assert capped.parity.passed and capped.parity.inputs["batch"] == 3
    chosen = modelport.convert(tmp_path / "m.onnx", tmp_path / "chosen", to="tfjs-graph",
                               engine="reference", batch=8)
    assert chosen.parity.inputs["batch"] == 8  # the user's batch stands
