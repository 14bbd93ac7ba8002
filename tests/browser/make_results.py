"""Writes tests/browser/RESULTS.md: every TF.js fixture route in headless Chromium (model x
backend -> max abs error against modelport's NumPy reference, or tfjs's failure), the mobile
float16 column, and one mutation that only the browser check catches.

    .venv/bin/python -m tests.browser.make_results

Needs what tests/interop/test_browser.py needs (Chromium, and the npm packages of
tests/interop/node or `modelport setup web`).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from modelport.check.browser import validate_backends
from modelport.check.options import CheckOptions
from modelport.check.validate import validate_with

from . import cases
from .known import KNOWN, REASONS

HERE = Path(__file__).resolve().parent
ATOL, RTOL = 1e-4, 1e-3


def _cell(model: cases.Model, result, backend: str) -> str:
    if result.error is not None:
        return f"FAILS: {result.error[:90]}"
    err = cases.max_error(model, result)
    ok = cases.within(model, result, ATOL, RTOL) if backend != "mobile" else err < 0.1
    return f"{err:.2g}" + ("" if ok else " (diverges)")


def _mutant(tmp: Path) -> Path:
    """fixtures/tfjs_graph/dense with every float32 weight scaled by 300: its activations pass
    float16's largest value (65504), so phones that render in float16 get Inf, while every
    float32 backend (and Node) still computes it."""
    src = cases.FIXTURES / "tfjs_graph" / "dense"
    dst = tmp / "dense_x300"
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "model.json").read_text())
    group = manifest["weightsManifest"][0]
    blob = bytearray((dst / group["paths"][0]).read_bytes())
    offset = 0
    for w in group["weights"]:
        count = int(np.prod(w["shape"])) if w["shape"] else 1
        size = count * 4
        if w["dtype"] == "float32" and "quantization" not in w:
            values = np.frombuffer(bytes(blob[offset:offset + size]), "<f4") * np.float32(300)
            blob[offset:offset + size] = values.astype("<f4").tobytes()
        offset += size
    (dst / group["paths"][0]).write_bytes(bytes(blob))
    return dst


def main() -> int:
    """Run everything and write RESULTS.md."""
    tmp = Path(tempfile.mkdtemp(prefix="modelport-browser-results-"))
    found = cases.models(tmp)
    backends = ("cpu", "wasm", "webgl", "webgpu", "mobile")  # webgpu: here, not in the tests
    ran = cases.run(found, backends)
    lines = ["# TF.js outputs in headless Chromium: model x backend", "",
             ("Made by `tests/browser/make_results.py` (real @tensorflow/tfjs 4.22 in "
             "chromium-headless-shell through puppeteer-core; WebGL on SwiftShader). Each cell: "
             "the largest |browser - modelport's NumPy reference| over every output on the "
             "fixture's own inputs, or tfjs's failure. WebGL and WebGPU run on SwiftShader (headless "
              "Chromium gives a WebGPU adapter with --enable-unsafe-webgpu; the tests run cpu, "
              "wasm, webgl and mobile). cpu/wasm/webgl/webgpu are held to "
             f"atol {ATOL:g} + rtol {RTOL:g}; mobile (WebGL with float16 textures, "
             "`WEBGL_FORCE_F16_TEXTURES=true`, `WEBGL_RENDER_FLOAT32_ENABLED=false`) is "
             "information (the check's own mobile tolerance is atol 1e-2 + rtol 1e-2)."), "",
             "| model | cpu | wasm | webgl | webgpu | mobile (float16) |",
             "|---|---|---|---|---|---|"]
    for model, per in zip(found, ran):
        cells = [_cell(model, per[b], b) for b in backends]
        lines.append(f"| {model.name} | " + " | ".join(cells) + " |")
    lines += ["", "## Where a backend fails, and why", ""]
    for (name, backend), why in KNOWN.items():
        reason = next(text for key, text in REASONS.items()
                      if key in why or key in name)
        lines.append(f"- {name} on {backend}: `{why}`: {reason}")
    mutant = _mutant(tmp)
    node = validate_with(mutant, mutant, CheckOptions(engine="tfjs"))
    browser = validate_backends(mutant, mutant, CheckOptions(engine="browser:cpu,wasm,webgl,mobile"))
    wasm_case = cases.FIXTURES / "tfjs_graph" / "attention"
    node_a = validate_with(wasm_case, wasm_case, CheckOptions(engine="tfjs"))
    browser_a = validate_backends(wasm_case, wasm_case, CheckOptions(engine="browser"))
    lines += ["", "## Caught by the browser check, not by the Node check", "",
              ("Constructed: fixtures/tfjs_graph/dense with its float32 weights scaled by 300 "
              "(activations past float16's 65504)."), "",
              (f"- Node (`--engine tfjs`): {'PASS' if node.passed else 'FAIL'}, max abs error "
              f"{max(o.max_abs for o in node.outputs):.3g}")]
    lines += [f"- browser {r.backend}: " + ("PASS" if r.passed else "DIVERGED" if r.report
                                            else f"FAILED ({r.error})") +
              (f", max abs error {r.max_abs:.3g} over finite values, "
               f"{sum(o.inf_mismatches + o.nan_mismatches for o in r.report.outputs)} "
               "elements Inf/NaN where the reference is finite" if r.report else "")
              for r in browser.results]
    lines += ["", "Real: fixtures/tfjs_graph/attention (an Einsum), unchanged.", "",
              f"- Node (`--engine tfjs`): {'PASS' if node_a.passed else 'FAIL'}"]
    lines += [f"- browser {r.backend}: " + ("PASS" if r.passed else "DIVERGED" if r.report
                                            else f"FAILED ({r.error})") for r in browser_a.results]
    ints = cases.FIXTURES / "browser" / "int_add"
    opts = CheckOptions(engine="tfjs", inputs=ints / "io.npz")
    node_i = validate_with(ints, ints, opts)
    browser_i = validate_backends(ints, ints, dataclasses.replace(
        opts, engine="browser:cpu,wasm,webgl,webgpu"))
    lines += ["", ("Constructed: fixtures/browser/int_add (made by tensorflowjs 4.22, "
              "fixtures/make_browser_fixtures.py), int32 `x + 1` and `x - x // 7 * 7` on "
              "values past 2**24, checked on its io.npz (`--inputs`)."), "",
              f"- Node (`--engine tfjs`): {'PASS' if node_i.passed else 'FAIL'}"]
    lines += [f"- browser {r.backend}: " + ("PASS" if r.passed else "DIVERGED" if r.report
                                            else f"FAILED ({r.error})") +
              (f", max abs error {r.max_abs:.3g}" if r.report else "")
              for r in browser_i.results]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
