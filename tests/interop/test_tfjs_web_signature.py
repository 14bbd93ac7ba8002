"""TF.js graph-models as web code loads them: every route that writes a graph-model gives, in
real @tensorflow/tfjs, ``model.inputs`` with their shapes (dynamic dims as -1, as a
tensorflowjs_converter-made model gives them), ``model.outputs`` named as the signature names
them, and ``model.modelSignature`` with a tensorShape per entry. tfjs reads an input's shape
from its Placeholder's ``shape`` attribute; written one level too flat, it sees none, and web
code that warms up or sizes from ``model.inputs[0].shape`` breaks (each model here is
warmed up so, on zeros of those shapes). ``--metadata`` lands in
``model.metadata`` as the converter's ``--metadata`` does.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import modelport
from modelport.formats import tfjs_graph
from modelport.runtime import tfjs_node

from ..conftest import FIXTURES

SCRIPT = Path(__file__).parent / "node" / "graph_signature.js"
CONVERTER = FIXTURES / "tfjs_converter" / "graph"
# one source per route that writes a graph-model (keras 2/3 .h5 and .keras, a TF.js
# layers-model: lowered through ONNX; ONNX; a converter-made graph-model rewritten, pinned)
SOURCES = {
    "keras3_h5": (FIXTURES / "keras3" / "cnn_bn_pool.h5", {}),
    "keras3_keras": (FIXTURES / "keras3" / "cnn_bn_pool.keras", {}),
    "keras2_h5": (FIXTURES / "keras2" / "cnn_bn_pool.h5", {}),
    "tfjs_layers": (FIXTURES / "tfjs" / "tfjs_functional" / "model.json", {}),
    "onnx": (FIXTURES / "tf2onnx" / "cnn_bn_gap.onnx", {}),
    "graph": (CONVERTER / "multi_output_h5" / "model.json", {}),
    "graph_frozen": (CONVERTER / "multi_output_frozen" / "model.json", {}),
    "graph_pinned": (CONVERTER / "conv1d_h5" / "model.json", {"batch": 2}),
}


def _load_in_tfjs(paths: list[Path]) -> list[dict]:
    env = {"NODE_PATH": str(tfjs_node.node_modules())}
    done = subprocess.run(["node", str(SCRIPT), *map(str, paths)], check=False,
                          capture_output=True, text=True, timeout=300, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def written(tmp_path_factory, tfjs):
    out = tmp_path_factory.mktemp("web")
    paths = {}
    for name, (src, extra) in SOURCES.items():
        modelport.convert(src, out / name, to="tfjs-graph", validate=False, **extra)
        paths[name] = out / name / "model.json"
    seen = _load_in_tfjs(list(paths.values()))
    return {name: (paths[name], info) for name, info in zip(paths, seen)}


def _dims(shape: dict) -> list[int]:
    return [int(d.get("size", -1)) for d in shape.get("dim", [])]


@pytest.mark.parametrize("route", list(SOURCES))
def test_inputs_and_outputs_are_complete_in_tfjs(route, written):
    path, seen = written[route]
    graph = tfjs_graph.read(path)
    assert [i["name"] for i in seen["inputs"]] == [i.tensor.split(":")[0] for i in graph.inputs]
    for got, info in zip(seen["inputs"], graph.inputs):
        assert info.shape is not None, f"{route}: input {info.key} has no shape"
        assert got["shape"] == [-1 if d is None else d for d in info.shape], route
        assert got["dtype"] == info.dtype
    assert [o["name"] for o in seen["outputs"]] == [o.tensor.split(":")[0]
                                                     for o in graph.outputs]
    # web code's warm-up: zeros sized from model.inputs (free dims 1) run through the model
    assert isinstance(seen["warmup"], list), f"{route}: {seen['warmup']}"
    assert len(seen["warmup"]) == len(graph.outputs)
    signature = seen["signature"]
    for side in ("inputs", "outputs"):
        entries = signature[side]
        assert len(entries) == len(getattr(graph, side))
        for key, entry in entries.items():
            assert entry["dtype"].startswith("DT_")
            if route == "graph_frozen" and side == "outputs":
                # a frozen graph's converter-made signature (--output_node_names) has no
                # output shapes; the rewrite keeps it as it was
                assert entry["tensorShape"] == {"unknownRank": True}
                continue
            assert "dim" in entry["tensorShape"], f"{route}: {side} {key} has no tensorShape"


def test_input_shape_as_the_converter_gives_it(written):
    """The pinned conv1d (batch 2) and the dynamic one read as tensorflowjs_converter's do."""
    assert written["graph_pinned"][1]["inputs"][0]["shape"] == [2, 32, 3]
    converter = _load_in_tfjs([CONVERTER / "conv1d_h5" / "model.json"])[0]
    assert converter["inputs"][0]["shape"] == [-1, 32, 3]
    assert written["keras3_h5"][1]["inputs"][0]["shape"][0] == -1


def test_metadata_reaches_model_metadata(tmp_path, tfjs):
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"classes": ["cat", "dog"]}))
    pre = tmp_path / "pre.json"
    pre.write_text(json.dumps({"scale": 0.5}))
    web = tmp_path / "web"
    modelport.convert(SOURCES["onnx"][0], web, to="tfjs-graph", validate=False,
                      metadata={"labels": labels, "preprocessing": pre})
    seen = _load_in_tfjs([web / "model.json"])[0]
    assert seen["metadata"]["labels"] == {"classes": ["cat", "dog"]}
    assert seen["metadata"]["preprocessing"] == {"scale": 0.5}
