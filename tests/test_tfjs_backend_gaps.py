"""``inspect`` warns of TF.js backend gaps it can see statically: an int64 input (tfjs has
no int64), and an op that some backend registers no kernel for, from the tfjs packages' own
kernel registries (modelport/api/tfjs_kernels.json, made by
tests/interop/node/list_tfjs_kernels.js; tests/interop/test_tfjs_kernel_table.py checks it
against the installed tfjs)."""

from __future__ import annotations

import json

import numpy as np
import onnx
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.api import web_gaps
from modelport.cli import main

from .conftest import FIXTURES

ATTENTION = FIXTURES / "tfjs_converter" / "graph" / "attention_k3" / "model.json"


def test_the_table_lists_each_backend_of_the_pinned_tfjs():
    table = web_gaps.kernels()
    assert set(table["backends"]) >= {"cpu", "webgl", "wasm"}
    assert table["versions"]["tfjs-core"] == "4.22.0"
    assert "Conv2D" in table["backends"]["wasm"] and "Einsum" not in table["backends"]["wasm"]


def test_an_op_the_wasm_backend_lacks_is_named():
    """A converter-made graph-model with Einsum (MultiHeadAttention): wasm has no kernel."""
    info = modelport.inspect(ATTENTION)
    (warning,) = [w for w in info.tfjs_warnings if "Einsum" in w]
    assert "wasm" in warning and "cpu" in warning and "(2 node(s))" in warning
    result = CliRunner().invoke(main, ["inspect", str(ATTENTION), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["tfjs_warnings"] == info.tfjs_warnings
    plain = CliRunner().invoke(main, ["inspect", str(ATTENTION)])
    assert "warning (TF.js): op Einsum" in plain.output


def test_an_int64_input_bound_for_tfjs_is_named(tmp_path):
    table = numpy_helper.from_array(np.arange(40, dtype=np.float32).reshape(10, 4), "table")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["y"])], "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4])], [table])
    path = tmp_path / "ids.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    info = modelport.inspect(path)
    assert info.targets["tfjs-graph"].ok
    assert any(w.startswith("input ids is int64") for w in info.tfjs_warnings), \
        info.tfjs_warnings


def test_a_model_every_backend_runs_has_no_warning():
    assert modelport.inspect(FIXTURES / "keras3" / "cnn_bn_pool.keras").tfjs_warnings == []
