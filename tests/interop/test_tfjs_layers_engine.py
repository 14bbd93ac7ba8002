"""``--engine auto`` runs a TF.js layers-model target in real tfjs under Node when it is
installed (as graph-models already do), compared with the source's NumPy reference; the
report names the engine that ran, and where the NumPy reference ran instead it says how to
get the real one (``modelport setup web``)."""

from __future__ import annotations

import modelport
from modelport.check.options import CheckOptions
from modelport.check.validate import validate_with
from modelport.runtime import tfjs_node

from ..conftest import FIXTURES

SRC = FIXTURES / "keras3" / "cnn_bn_pool.keras"
REAL = "tfjs (real @tensorflow/tfjs, Node.js, CPU backend)"


def _written(tmp_path):
    out = tmp_path / "web"
    modelport.convert(SRC, out, to="tfjs-layers")
    return out


def test_auto_runs_layers_targets_in_real_tfjs(tfjs, tmp_path):
    out = _written(tmp_path)
    report = validate_with(SRC, out, CheckOptions())
    assert report.passed
    assert report.target_engine == REAL
    assert report.source_engine == "keras-reference (NumPy)"


def test_reference_on_request(tmp_path):
    out = _written(tmp_path)
    report = validate_with(SRC, out, CheckOptions(engine="reference"))
    assert report.passed and report.target_engine == "keras-reference (NumPy)"


def test_without_tfjs_the_report_says_how_to_get_it(tmp_path, monkeypatch):
    out = _written(tmp_path)
    monkeypatch.setattr(tfjs_node, "available", lambda: "node is not installed")
    report = validate_with(SRC, out, CheckOptions())
    assert report.passed
    assert report.target_engine.startswith("keras-reference (NumPy); real tfjs did not run")
    assert "modelport setup web" in report.target_engine
