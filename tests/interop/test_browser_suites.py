"""ONNX's own model suites (pytorch-converted, pytorch-operator), converted to TF.js graph-models
and run in headless Chromium on cpu, wasm and webgl, each compared with the suite's expected
outputs by the suite's own rule (tests/onnx_suite/suite.py). One browser launch for all of them.
Where tfjs 4.22's own kernel fails on a backend the outcome is listed in KNOWN and asserted as
recorded (tests/browser/SUITE.md says why); everything else must pass on every backend.
"""

from __future__ import annotations

import pytest

from modelport.runtime import tfjs_browser

from ..conftest import require_tool
from ..onnx_suite import suite
from ..onnx_suite.cases import all_cases
from .test_onnx_model_suites import REFUSED

COLLECTIONS = ("pytorch-converted", "pytorch-operator")
# the cases modelport converts (those it refuses by design are asserted in that module)
CASES = [c for c in all_cases() if c.collection in COLLECTIONS and c.id not in REFUSED]
BACKENDS = ("cpu", "wasm", "webgl")
# (case, backend) -> a piece of the failure: tfjs's kernels (tests/browser/SUITE.md)
KNOWN = {
    ("pytorch-converted/test_Conv3d_dilated_strided", "webgl"): "Failed to compile fragment",
    ("pytorch-converted/test_Conv3d_stride_padding", "webgl"): "Failed to compile fragment",
    ("pytorch-converted/test_MaxPool3d_stride_padding", "webgl"): "Failed to compile fragment",
    ("pytorch-converted/test_MaxPool3d_stride_padding", "wasm"): "mismatch",
    ("pytorch-converted/test_MaxPool2d_stride_padding_dilation", "webgl"): "limit",
}


@pytest.fixture(scope="module")
def ran(tmp_path_factory, tfjs):
    reason = tfjs_browser.missing()
    if reason:
        require_tool(f"the browser engine needs {reason}")
    out = tmp_path_factory.mktemp("suites")
    converted = [c for c in (suite.convert_case(case, out) for case in CASES)
                 if isinstance(c, suite.Converted)]
    # 30 s per job: the dilated MaxPool hangs in WebGL and is charged with it
    results = tfjs_browser.run([tfjs_browser.Job(c.model_json, "graph", c.feeds, c.fetch)
                                for c in converted], BACKENDS, job_s=30)
    return {c.case.id: (c, per) for c, per in zip(converted, results)}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_suite_case_in_the_browser(ran, case_id, backend):
    assert case_id in ran, f"{case_id} did not convert to a TF.js graph-model"
    converted, per = ran[case_id]
    result = per[backend]
    if result.error is not None:
        outcome, detail = "error", result.error
    else:
        outcome, detail, _, _ = suite.compare(case_id, result.outputs, converted.case.io()[1])
    known = KNOWN.get((case_id, backend))
    if known is not None:
        assert outcome != "pass" and (known in detail or known == outcome), (outcome, detail)
        return
    assert outcome == "pass", f"{case_id} on {backend}: {detail}"
