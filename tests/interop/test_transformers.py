"""PyTorch-exported transformers -> TF.js graph-models that real tfjs runs (issue 18, point 3).

The fixtures (fixtures/transformers, made by fixtures/make_transformer_fixtures.py in a side
environment with PyTorch and transformers: random-init BERT, DistilBERT, RoBERTa, CLIP text,
T5 encoder, GPT-2, Llama, ViT and Whisper encoder from small configs, exported at opset 17 by
the TorchScript and the dynamo exporter, static and with dynamic batch/sequence; and a
detector neck and a YOLOv8-style detector with dynamic height and width, whose
F.interpolate(size=...) is a Resize to a size computed at run time and whose anchors are made
at run time; a text-line recognizer with dynamic width) are each
converted once with the check off (``validate=False``: what a user gets with --no-validate),
then run in real tfjs under Node (one process per model) at the manifest's shapes (two
different ones for dynamic exports) and compared with onnxruntime on the same inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import modelport
from modelport.formats import tfjs_graph
from modelport.runtime import tfjs_node

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "transformers"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text()) if \
    (FIXTURES / "manifest.json").exists() else {"models": []}
ENTRIES = [e for e in MANIFEST["models"] if e.get("file")]
ATOL, RTOL = 1e-4, 1e-3


def feeds(entry: dict, run: dict, seed: int) -> dict[str, np.ndarray]:
    """The inputs for one run (its shapes), as the manifest describes them."""
    rng = np.random.default_rng(seed)
    out = {}
    for spec in entry["feeds"]:
        dims = run["shapes"][spec["name"]]
        if spec["feed"] == "ids":
            out[spec["name"]] = rng.integers(3, spec["high"], dims).astype(np.int64)
        elif spec["feed"] == "mask":
            mask = np.ones(dims, np.int64)
            if dims[0] > 1:
                mask[-1, dims[1] // 2:] = 0  # one padded row
            out[spec["name"]] = mask
        else:
            out[spec["name"]] = rng.standard_normal(dims).astype(np.float32)
    return out


def _ort(path: Path, feed: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)


def test_the_manifest_covers_every_model_and_exporter():
    names = {e["model"] for e in MANIFEST["models"]}
    assert names >= {"bert", "distilbert", "roberta", "clip_text", "t5_encoder", "gpt2", "llama",
                     "vit", "whisper_encoder", "fpn_neck", "yolo_head", "ocr_recognizer"}
    kept = {(e["model"], e["exporter"], e["dynamic"]) for e in ENTRIES}
    assert {(m, "torchscript", d) for m in names for d in (False, True)} <= kept
    refused = [e for e in MANIFEST["models"] if not e.get("file")]
    assert all(e.get("refused") for e in refused)  # the exporter's reason is recorded


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_transformer_runs_in_tfjs_at_its_shapes(entry, tmp_path, tfjs):
    src = FIXTURES / entry["file"]
    web = tmp_path / "web"
    modelport.convert(src, web, to="tfjs-graph", validate=False)
    graph = tfjs_graph.read(web / "model.json")
    shapes = [(r["batch"], r["sequence"]) for r in entry["runs"]]
    if entry["dynamic"]:
        assert len(set(shapes)) == 2
    feed_sets = [feeds(entry, r, seed=11 + i) for i, r in enumerate(entry["runs"])]
    jobs = [tfjs_node.GraphJob(web / "model.json",
                               [(i.tensor, f[i.key]) for i in graph.inputs],
                               [o.tensor for o in graph.outputs]) for f in feed_sets]
    for (b, s), f, result in zip(shapes, feed_sets, tfjs_node.run_graph_batch(jobs)):
        where = f"{entry['file']} at batch {b}, sequence {s}"
        assert result.error is None, f"{where}: {result.error}"
        assert result.outputs is not None
        want = _ort(src, f)
        assert len(result.outputs) == len(want)
        for got, w in zip(result.outputs, want):
            assert got.shape == w.shape, (entry["file"], b, s)
            np.testing.assert_allclose(got, w, atol=ATOL, rtol=RTOL,
                                       err_msg=where)


@pytest.mark.parametrize("name", ["yolo_head.torchscript.dynamic.onnx",
                                  "llama.dynamo.dynamic.onnx"])
def test_the_default_check_passes_on_dynamic_exports(name, tmp_path, tfjs):
    """With the check on (the default), a dynamic export converts: the check picks sizes the
    graph runs and its noise estimate does not move the shape arithmetic (a YOLO head's anchors
    come from Range over each level's size cast to float)."""
    report = modelport.convert(FIXTURES / name, tmp_path / "web", to="tfjs-graph")
    assert (tmp_path / "web" / "model.json").exists()
    assert report.parity is not None and report.passed
