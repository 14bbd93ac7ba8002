"""Issue 18 point 9: re-writing a quantized TF.js model keeps each quantized weight's dtype,
``min``/``scale`` (or float16 form) and its very bytes, unless ``--quantize`` says otherwise;
the report lists what is quantized and how.

Sources: layers- and graph-models written by ``tensorflowjs_converter`` (fixtures/
tfjs_converter, fixtures/tfjs_graph: uint8, uint16, float16) and a layers-model modelport
itself quantized with ``--quantize uint8``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import modelport
from modelport.formats.tfjs_manifest import DTYPES, requantize

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LAYERS_SOURCES = ["tfjs_converter/recurrent_uint8", "tfjs_converter/cnn_mixed_quant"]
GRAPH_SOURCES = ["tfjs_graph/cnn_uint8", "tfjs_graph/dense_float16"]
H5 = FIXTURES / "keras2" / "cnn_bn_pool.h5"


def stored(folder: Path) -> list[tuple[str, dict, bytes]]:
    """(name, manifest entry, the entry's raw bytes) of every weight, in manifest order."""
    doc = json.loads((folder / "model.json").read_text())
    out = []
    for group in doc["weightsManifest"]:
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for entry in group["weights"]:
            dtype = (entry.get("quantization") or {}).get("dtype", entry["dtype"])
            n = math.prod(entry["shape"]) * DTYPES[dtype].itemsize
            out.append((entry["name"], entry, data[offset:offset + n]))
            offset += n
    return out


def _plain(name: str) -> str:
    """A weight name without the cell level the TF.js converter writes for recurrent layers
    (``lstm/lstm_cell/kernel``): modelport writes ``lstm/kernel``, as tfjs-layers reads it."""
    tokens = name.split("/")
    if len(tokens) >= 3 and tokens[-2].endswith("_cell"):
        tokens = tokens[:-2] + tokens[-1:]
    return "/".join(tokens)


def _same_storage(source: Path, written: Path) -> int:
    """Assert every quantized weight of ``source`` is written with the same quantization and
    bytes (paired by name); returns how many were compared."""
    a = {_plain(n): (e, data) for n, e, data in stored(source)}
    b = {n: (e, data) for n, e, data in stored(written)}
    assert set(a) == set(b)
    count = 0
    for name, (entry_a, bytes_a) in a.items():
        qa = entry_a.get("quantization")
        if qa is None:
            continue
        count += 1
        entry_b, bytes_b = b[name]
        assert entry_b.get("quantization") == qa, name
        assert entry_b["dtype"] == entry_a["dtype"]
        assert bytes_b == bytes_a, f"{name}: quantized bytes differ"
    return count


@pytest.mark.parametrize("fixture", LAYERS_SOURCES)
def test_a_converter_quantized_layers_model_keeps_its_quantization(tmp_path, fixture):
    src = FIXTURES / fixture
    report = modelport.convert(src, tmp_path / "web", to="tfjs-layers")
    assert _same_storage(src, tmp_path / "web") == report.quantization.total > 0
    assert report.quantization.kept == report.quantization.total
    assert report.check.weights_differing == 0  # same bytes: the same dequantized values
    doc = report.to_dict()
    assert len(doc["quantized_weights"]) == report.quantization.total
    assert {w["from"] for w in doc["quantized_weights"]} == {"source"}
    assert all(w["scale"] is not None for w in doc["quantized_weights"]
               if w["dtype"] in ("uint8", "uint16"))


@pytest.mark.parametrize("fixture", GRAPH_SOURCES)
def test_a_quantized_graph_model_keeps_its_quantization(tmp_path, fixture):
    src = FIXTURES / fixture
    report = modelport.convert(src, tmp_path / "web", to="tfjs-graph", validate=False)
    assert _same_storage(src, tmp_path / "web") == report.quantization.total > 0
    assert report.quantization.kept == report.quantization.total


def test_modelports_own_uint8_model_is_rewritten_byte_for_byte(tmp_path):
    modelport.convert(H5, tmp_path / "q", quantize=["uint8"])
    size = sum(p.stat().st_size for p in (tmp_path / "q").glob("*.bin"))
    modelport.convert(tmp_path / "q", tmp_path / "again", to="tfjs-layers")
    assert _same_storage(tmp_path / "q", tmp_path / "again") > 0
    assert sum(p.stat().st_size for p in (tmp_path / "again").glob("*.bin")) == size


def test_quantize_none_stores_float32_and_a_rule_overrides_the_source(tmp_path):
    modelport.convert(H5, tmp_path / "q", quantize=["uint8"])
    report = modelport.convert(tmp_path / "q", tmp_path / "plain", quantize=["none"])
    assert not report.quantization
    assert all("quantization" not in e for _, e, _ in stored(tmp_path / "plain"))
    report = modelport.convert(tmp_path / "q", tmp_path / "half",
                               quantize=["float16:*/kernel"], validate=False)
    entries = {n: e for n, e, _ in stored(tmp_path / "half")}
    assert all(e["quantization"]["dtype"] == ("float16" if n.endswith("/kernel") else "uint8")
               for n, e in entries.items() if e["dtype"] == "float32")
    origins = {w.name.rsplit("/", 1)[-1]: w.kept for w in report.quantization.weights}
    assert origins["kernel"] is False and origins["bias"] is True


def test_cli_text_says_what_is_kept_and_how(tmp_path):
    from click.testing import CliRunner

    from modelport.cli import main

    src = FIXTURES / LAYERS_SOURCES[0]
    result = CliRunner().invoke(main, ["convert", str(src), str(tmp_path / "web"), "--to",
                                       "tfjs-layers", "-q", "--no-validate"])
    assert result.exit_code == 0, result.output
    assert "quantization kept from the source (same dtype and bytes): 23 weights" in result.output
    assert "uint8, min " in result.output


def test_requantize_refuses_values_its_bytes_cannot_hold():
    meta = {"dtype": "uint8", "min": -1.0, "scale": 2.0 / 255, "original_dtype": "float32"}
    q = np.arange(0, 256, dtype=np.uint8)
    values = (q.astype(np.float64) * meta["scale"] + meta["min"]).astype(np.float32)
    again = requantize(values, meta)
    assert again is not None and np.array_equal(again[0], q)
    moved = values.copy()
    moved[3] += np.float32(1e-3)  # between two steps: no byte holds it
    assert requantize(moved, meta) is None
    half = np.array([0.1, 0.2], np.float32)
    assert requantize(half, {"dtype": "float16"}) is None
    exact = np.array([0.5, 0.25], np.float32)
    assert requantize(exact, {"dtype": "float16"})[0].dtype == np.float16


def test_a_target_that_holds_them_dequantized_says_so(tmp_path):
    src = FIXTURES / LAYERS_SOURCES[1]  # uint16 and float16
    report = modelport.convert(src, tmp_path / "m.h5")
    assert report.notes == [("the source stores 16 weights quantized (uint16: 4, float16: "
                             "12); this target holds them dequantized, as float32")]
    report = modelport.convert(src, tmp_path / "g", to="tfjs-graph", validate=False)
    assert "--quantize DTYPE quantizes them again" in report.notes[0]
    assert report.to_dict()["notes"] == report.notes
    kept = modelport.convert(src, tmp_path / "web", to="tfjs-layers", validate=False)
    assert kept.notes == []
    again = modelport.convert(src, tmp_path / "g2", to="tfjs-graph", validate=False,
                              quantize=["uint8"])
    assert again.notes == []
