"""The browser engine's plumbing, without a browser: the --engine values it takes, what it says
when Chromium or the npm packages are missing (exit 4, what to install), the pinned packages
of `modelport setup web` (the versions CI tests), and the reports naming the failing backend.
The engine itself runs in tests/interop/test_browser.py."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from modelport.check.browser import BackendResult, BrowserReport
from modelport.check.options import CheckOptions
from modelport.cli import main
from modelport.errors import UnsupportedError, UsageError
from modelport.runtime import tfjs_browser
from modelport.runtime.tfjs_browser.setup import PINNED

from .conftest import FIXTURES, ROOT


@pytest.mark.parametrize(("engine", "backends"), [
    ("browser", ("cpu", "wasm", "webgl")),
    ("browser:webgl", ("webgl",)),
    ("browser:webgl,mobile", ("webgl", "mobile")),
    ("browser:cpu,browser:webgpu", ("cpu", "webgpu")),
])
def test_backends_of(engine, backends):
    assert tfjs_browser.backends_of(engine) == backends
    CheckOptions(engine=engine)  # accepted


def test_unknown_backend_is_a_usage_error():
    with pytest.raises(UnsupportedError, match="unknown browser backend 'metal'"):
        tfjs_browser.backends_of("browser:metal")
    with pytest.raises(UsageError, match="metal"):
        CheckOptions(engine="browser:metal")


def test_setup_pins_what_ci_tests():
    package = json.loads((ROOT / "tests" / "interop" / "node" / "package.json").read_text())
    assert package["dependencies"] == PINNED


def test_missing_chromium_says_what_to_install(monkeypatch):
    monkeypatch.setenv("MODELPORT_CHROMIUM", "/nonexistent/chrome")
    src = FIXTURES / "tfjs" / "tfjs_mlp"
    result = CliRunner().invoke(main, ["validate", str(src), str(src), "--engine", "browser"])
    assert result.exit_code == 4, result.output
    assert "MODELPORT_CHROMIUM" in result.output


def test_no_chromium_names_the_apt_package(monkeypatch):
    monkeypatch.delenv("MODELPORT_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert "apt-get install chromium-headless-shell" in (tfjs_browser.missing() or "")


def test_browser_refuses_a_target_that_is_not_tfjs():
    src = FIXTURES / "keras3" / "cnn_bn_pool.h5"
    result = CliRunner().invoke(main, ["validate", str(src), str(src), "--engine", "browser"])
    assert result.exit_code == 4, result.output
    assert "not one" in result.output


def test_report_names_the_failing_backend_and_mobile_is_information():
    report = BrowserReport("a", "b", [
        BackendResult("cpu", None, "boom"),
        BackendResult("mobile", None, "float16", informational=True)])
    assert report.failed == ["cpu"]
    assert "failed or diverged on: cpu" in "\n".join(report.lines())
    data = report.to_dict()
    assert data["failed_backends"] == ["cpu"] and data["backends"][1]["informational"]
    assert BrowserReport("a", "b", [report.results[1]]).passed


@pytest.mark.parametrize("extra", [["--no-validate"], ["--to", "onnx"], []])
def test_convert_with_browser_refuses_what_it_cannot_check(tmp_path, extra):
    dst = tmp_path / ("m.onnx" if not extra else "web")
    result = CliRunner().invoke(main, ["convert", str(FIXTURES / "keras3" / "cnn_bn_pool.h5"),
                                       str(dst), "--engine", "browser", "-q", *extra])
    assert result.exit_code == 2, result.output
    assert not dst.exists()
