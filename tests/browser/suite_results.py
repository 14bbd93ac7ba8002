"""ONNX's own model suites (tests/onnx_suite), converted to TF.js graph-models and run in headless
Chromium on cpu, wasm and webgl: writes tests/browser/SUITE.md (case x backend -> outcome, max
abs error), compared with the suite's expected outputs by the suite's own rule
(``suite.compare``, its tolerances).

    .venv/bin/python -m tests.browser.suite_results [--collections pytorch-converted ...]

One browser launch for every case; cases modelport refuses (the suite's REFUSED) are left out.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from modelport.runtime import tfjs_browser

from ..onnx_suite import suite
from ..onnx_suite.cases import all_cases

HERE = Path(__file__).resolve().parent
BACKENDS = ("cpu", "wasm", "webgl")
# What the failing cells are, as measured (tfjs 4.22, chromium-headless-shell 156, SwiftShader):
# tfjs's kernels, not the converted files, which every other backend computes right.
NOTES = ("Where a backend fails: tfjs's WebGL Conv3D with dilations or padded strides and its "
         "WebGL MaxPool3D with padded strides give fragment shaders that do not compile; its "
         "WebGL MaxPool (2-D) with dilations ran past the 60 s limit per job; its WASM "
         "MaxPool3D with padded strides computes 16 of 162 values wrong. The same files pass "
         "on the other backends; the browser check reports the failing backend (exit 6).")


def main(argv: list[str] | None = None) -> int:
    """Convert, run, compare, write SUITE.md."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--collections", nargs="+",
                        default=["pytorch-converted", "pytorch-operator"])
    args = parser.parse_args(argv)
    cases = [c for c in all_cases() if c.collection in args.collections]
    out = Path(tempfile.mkdtemp(prefix="modelport-suite-browser-"))
    converted = [c for c in (suite.convert_case(case, out) for case in cases)
                 if isinstance(c, suite.Converted)]
    started = time.perf_counter()
    ran = tfjs_browser.run([tfjs_browser.Job(c.model_json, "graph", c.feeds, c.fetch)
                            for c in converted], BACKENDS, job_s=60)
    seconds = time.perf_counter() - started
    rows, counts = [], dict.fromkeys(BACKENDS, 0)
    for c, per in zip(converted, ran):
        cells = []
        for b in BACKENDS:
            r = per[b]
            if r.error is not None:
                cells.append(f"FAILS: {r.error[:80]}")
                continue
            outcome, detail, abs_err, _ = suite.compare(c.case.id, r.outputs, c.case.io()[1])
            counts[b] += outcome == "pass"
            err = "-" if abs_err is None else f"{abs_err:.2g}"
            cells.append(err if outcome == "pass" else f"{outcome} ({err}): {detail[:80]}")
        rows.append(f"| {c.case.id} | " + " | ".join(cells) + " |")
    lines = ["# ONNX model suites in headless Chromium", "",
             ("Made by `tests/browser/suite_results.py`: each case of "
             f"{', '.join(args.collections)} that modelport converts to a TF.js graph-model, run "
             "by real @tensorflow/tfjs 4.22 in chromium-headless-shell (WebGL on SwiftShader) and "
             "compared with the suite's expected outputs by the suite's own rule "
             "(tests/onnx_suite/suite.py). Cell: max abs error, or the failure."), "",
             f"{len(converted)} converted of {len(cases)} cases; browser time {seconds:.0f} s; "
             "pass: " + ", ".join(f"{b} {counts[b]}/{len(converted)}" for b in BACKENDS), "",
             NOTES, "",
             "| case | " + " | ".join(BACKENDS) + " |", "|---" * (len(BACKENDS) + 1) + "|"]
    (HERE / "SUITE.md").write_text("\n".join(lines + rows) + "\n")
    print("\n".join(lines[:6]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
