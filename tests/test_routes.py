"""Routes through the ONNX hub, from ``modelport convert``, each ending with its parity check.

* Keras ``.h5`` / ``.keras`` and TF.js layers-models -> TF.js graph-model: lowered to ONNX,
  mapped to TF ops (``to_tfjs``), written, and run against the Keras reference executor.
* TF.js graph-model (made by the real TF.js converter) -> ``.onnx``: mapped to ONNX
  (``from_tfjs``) and run in onnxruntime against the TF reference executor.
* TF.js graph-model -> ONNX -> TF.js graph-model: both mappings in a row still reproduce the
  outputs TensorFlow recorded for the original model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from modelport.cli import main
from modelport.formats import tfjs_graph
from modelport.runtime.tfjs_reference import run

from .conftest import FIXTURES

TO_GRAPH = [
    FIXTURES / "keras3" / "cnn_bn_pool.keras",
    FIXTURES / "keras2" / "cnn_bn_pool.h5",
    FIXTURES / "keras2" / "mlp_sequential.h5",
    FIXTURES / "keras2" / "multi_io.keras",
    FIXTURES / "tfjs" / "tfjs_cnn" / "model.json",
    FIXTURES / "tfjs_converter" / "mlp_from_keras3" / "model.json",
]
GRAPH_CASES = json.loads((FIXTURES / "manifest.json").read_text())["tfjs_graph"]["cases"]


def _convert(*args: str) -> dict:
    result = CliRunner().invoke(main, ["convert", *args, "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("src", TO_GRAPH, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_keras_and_layers_models_to_tfjs_graph(src, tmp_path):
    out = tmp_path / "web"
    doc = _convert(str(src), str(out), "--to", "tfjs-graph", "--engine", "reference")
    assert doc["target_format"] == "tfjs-graph"
    assert doc["parity"]["passed"], doc["parity"]
    assert doc["parity"]["source_engine"].startswith("keras-reference")
    assert doc["parity"]["target_engine"] == "tfjs-reference (NumPy TF ops)"
    graph = tfjs_graph.read(out / "model.json")
    assert graph.nodes and not any(n.op.startswith("Onnx") for n in graph.nodes)


@pytest.mark.parametrize("case", ["cnn", "dense", "shapes"])
def test_tfjs_graph_to_onnx(case, tmp_path):
    out = tmp_path / "m.onnx"
    doc = _convert(str(FIXTURES / "tfjs_graph" / case), str(out))
    assert doc["target_format"] == "onnx" and out.is_file()
    assert doc["parity"]["passed"], doc["parity"]
    assert doc["parity"]["source_engine"] == "tfjs-reference (NumPy TF ops)"


@pytest.mark.parametrize("case", ["attention", "cnn", "dense", "embedding", "lstm_cell",
                                  "lstm_groups", "math", "prelu", "shapes"])
def test_tfjs_graph_through_onnx_and_back(case, tmp_path):
    onnx_path = tmp_path / "m.onnx"
    _convert(str(FIXTURES / "tfjs_graph" / case), str(onnx_path))
    back = tmp_path / "web"
    doc = _convert(str(onnx_path), str(back), "--to", "tfjs-graph", "--engine", "reference")
    assert doc["parity"]["passed"], doc["parity"]
    entry = GRAPH_CASES[case]
    graph = tfjs_graph.read(back / "model.json")
    with np.load(FIXTURES / "tfjs_graph" / case / "io.npz") as data:
        feeds = [data[f"input:{k}"] for k in entry["inputs"]]
        got = run(graph, feeds)
        for key, value in zip(entry["outputs"], got):
            np.testing.assert_allclose(value, data[f"output:{key}"], atol=entry["atol"],
                                       rtol=entry["rtol"], err_msg=f"{case} {key}")


def test_keras_application_to_tfjs_graph_and_on_to_onnx(tmp_path):
    """A keras.applications network (MobileNetV2): Keras -> TF.js graph -> ONNX, each step
    with its parity check; the ONNX end keeps at most one Transpose per boundary."""
    web = tmp_path / "web"
    first = _convert(str(FIXTURES / "applications" / "MobileNetV2.keras"), str(web), "--to",
                     "tfjs-graph", "--engine", "reference")
    assert first["parity"]["passed"], first["parity"]
    onnx_path = tmp_path / "m.onnx"
    second = _convert(str(web), str(onnx_path))
    assert second["parity"]["passed"], second["parity"]
    assert second["onnx"]["transposes"] <= 2
