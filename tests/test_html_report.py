"""``--report FILE.html``: one self-contained page (no script, no network) with the summary,
the outputs' statistics and verdicts, the per-layer error plot and the error histograms, one
series per engine/backend the report holds. (tests/interop/test_html_report.py opens it in
headless Chromium.)"""

from __future__ import annotations

import copy
import json
import re

import pytest
from click.testing import CliRunner

import modelport
from modelport.api import html_report
from modelport.cli import main

from .conftest import FIXTURES

KERAS = FIXTURES / "keras3" / "cnn_bn_pool.keras"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A Keras -> ONNX conversion (its check measures each layer) and its page."""
    out = tmp_path_factory.mktemp("report")
    page = out / "report.html"
    report = modelport.convert(KERAS, out / "m.onnx", report_html=page)
    return report, page


def _paths(page: str, cls: str) -> list[str]:
    return re.findall(rf"<path class='{cls}' d='([^']*)'", page)


def test_the_page_holds_the_summary_the_table_and_the_plots(converted):
    report, page = converted
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    # self-contained: no script, no stylesheet or image fetched, nothing but the SVG namespace
    assert "<script" not in text and "<link" not in text and " src=" not in text
    assert re.findall(r"https?://[^'\"]+", text) == ["http://www.w3.org/2000/svg"] * 2
    assert "keras-v3 -&gt; onnx" in text and report.parity.target_engine in text
    assert "dense_5" in text and "class='pass'" in text
    layers = report.parity.per_layer
    assert len(layers) == 10 and all(e["held"] for e in layers)
    (series,) = _paths(text, "series")
    assert series.count("L") == len(layers) - 1  # one point per layer
    assert text.count("<circle") == len(layers)
    assert _paths(text, "bar"), "no histogram bar"


def test_histogram_counts_every_element(converted):
    report, _ = converted
    (out,) = report.parity.outputs
    hist = out.error_histogram
    assert sum(hist["counts"]) + hist["zeros"] + hist["below"] + hist["above"] \
        + hist["not_finite"] == out.total


def test_each_backend_is_a_series(converted, tmp_path):
    """A report with a ``backends`` list (the browser check's) plots one series per backend,
    a layer a backend does not hold as a cross, and names a failing backend."""
    report, _ = converted
    parity = report.parity.to_dict()
    webgl = copy.deepcopy(parity)
    webgl.update(backend="browser:webgl", passed=False, first_divergence={
        "layer": "conv2d_1", "class": "Conv2D", "max_abs": 0.5})
    webgl["per_layer"][3].update(held=False, max_abs=None)
    webgl["outputs"][0]["passed"] = False
    text = html_report.write(tmp_path / "r.html", {**parity, "backends": [webgl]}).read_text()
    assert len(_paths(text, "series")) == 2
    assert len(_paths(text, "unheld")) == 1
    assert "browser:webgl" in text and "conv2d_1 (Conv2D)" in text and "FAIL" in text
    assert len(re.findall(r"<svg", text)) == 2  # the layer plot and one output's histogram


def test_cli_writes_it_for_validate_and_a_report_without_a_check(converted, tmp_path):
    _, page = converted
    onnx = page.parent / "m.onnx"
    out = tmp_path / "v.html"
    result = CliRunner().invoke(main, ["validate", str(KERAS), str(onnx), "--per-layer",
                                       "--report", str(out)])
    assert result.exit_code == 0, result.output
    assert "<circle" in out.read_text()
    web = tmp_path / "web"
    result = CliRunner().invoke(main, ["convert", str(KERAS), str(web), "-q", "--report",
                                       str(tmp_path / "c.html")])
    assert result.exit_code == 0, result.output
    assert "No numeric check ran" in (tmp_path / "c.html").read_text()


def test_json_report_keeps_the_plot_data(converted):
    report, _ = converted
    data = json.loads(json.dumps(report.to_dict()))
    assert data["parity"]["per_layer"][0]["values"]
    assert data["parity"]["outputs"][0]["error_histogram"]["counts"]


def test_model_explorer_node_data_keys_each_layer_by_the_values_holding_it(converted, tmp_path):
    """GraphNodeData JSON (Model Explorer's node_data_builder format): results keyed by the
    ONNX values holding each layer's output, valued by its error, and a gradient from 0 to 1."""
    import onnx

    report, page = converted
    out = tmp_path / "me.json"
    result = CliRunner().invoke(main, ["validate", str(KERAS), str(page.parent / "m.onnx"),
                                       "--per-layer", "--model-explorer", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [g["stop"] for g in data["gradient"]][::2] == [0, 1]
    model = onnx.load(page.parent / "m.onnx")
    produced = {o for n in model.graph.node for o in n.output}
    assert len(data["results"]) == 10 and set(data["results"]) <= produced
    assert all(r["value"] >= 0 for r in data["results"].values())
    refused = CliRunner().invoke(main, ["validate", str(KERAS), str(page.parent / "m.onnx"),
                                        "--model-explorer", str(tmp_path / "x.json")])
    assert refused.exit_code == 2 and "measured no layer" in refused.output


def test_a_browser_report_plots_each_backend(converted, tmp_path):
    """``check.browser.BrowserReport`` (validate --engine browser): one series per backend
    that ran, a backend that did not run named with its error, the mobile one as
    information."""
    from modelport.check.browser import BackendResult, BrowserReport

    report, _ = converted
    parity = report.parity
    browser = BrowserReport("src", "web", [
        BackendResult("cpu", parity), BackendResult("webgl", None, error="no WebGL context"),
        BackendResult("mobile", parity, informational=True)])
    text = html_report.save(browser, tmp_path / "b.html").read_text()
    assert len(_paths(text, "series")) == 2
    assert "failed to run: no WebGL context" in text and "mobile (information)" in text
    assert text.count("<td class='l'>cpu</td>") == 1
