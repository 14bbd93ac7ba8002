"""The parity check's default batch shrinks to one row a probe before the memory budget
refuses it (issue 18: @upscalerjs/esrgan-medium 1.0.0's x8 model).

The default batch fills a small input with many rows (16 for an 8x8 image); a model that grows
its input (an x8 super-resolution network: [16 x 3 probes, 64, 64, 192] values) then passed
the budget and ``--to onnx``/``--to tfjs-graph`` were refused (exit 4, "past the memory budget
of 651 MiB") for a batch the user never chose; with one row a probe both convert with parity
PASS. ``grow_model`` is that shape of problem in small: a Tile makes each row 1 MiB. The user's
own ``--batch`` (and ``--inputs``) is never changed: past the budget it is refused as before,
and ``inspect`` sizes the check the same way as ``convert``.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

import modelport
from modelport.errors import UnsupportedError

BUDGET = "32M"  # one row a probe fits; sixteen do not


@pytest.fixture
def grow(tmp_path):
    """x [N, 4] -> Tile to [N, 262144] -> Relu -> ReduceMax: small input, 1 MiB a row."""
    nodes = [h.make_node("Tile", ["x", "reps"], ["t"]), h.make_node("Relu", ["t"], ["r"]),
             h.make_node("ReduceMax", ["r"], ["y"], axes=[1], keepdims=1)]
    graph = h.make_graph(nodes, "grow", [h.make_tensor_value_info("x", T.FLOAT, ["N", 4])],
                         [h.make_tensor_value_info("y", T.FLOAT, ["N", 1])],
                         initializer=[nh.from_array(np.array([1, 65536], np.int64), "reps")])
    path = tmp_path / "grow.onnx"
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 12)], ir_version=7), path)
    return path


def test_the_default_batch_shrinks_to_fit_the_budget(grow, tmp_path):
    report = modelport.convert(grow, tmp_path / "web", to="tfjs-graph", max_memory=BUDGET)
    assert report.parity is not None and report.parity.passed
    assert report.parity.inputs["batch"] == 1
    assert modelport.inspect(grow, max_memory=BUDGET).targets["tfjs-graph"].ok


def test_with_room_the_default_batch_stays(grow, tmp_path):
    report = modelport.convert(grow, tmp_path / "web", to="tfjs-graph", max_memory="512M")
    assert report.parity is not None and report.parity.inputs["batch"] == 16


def test_the_users_batch_is_never_changed(grow, tmp_path):
    with pytest.raises(UnsupportedError, match="memory budget"):
        modelport.convert(grow, tmp_path / "web", to="tfjs-graph", max_memory=BUDGET,
                          batch=16)
    assert not modelport.inspect(grow, max_memory=BUDGET, batch=16).targets["tfjs-graph"].ok
