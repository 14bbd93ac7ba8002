"""Real-model corpus outputs where TF.js models live: a few small tests/wild models converted
to TF.js graph- and layers-models and checked with ``validate --engine browser`` on cpu, wasm
and webgl against the source's reference (tests/browser/wild.py; about a minute on two
cores). tfjs's own gaps are listed in tests/browser/wild.py's KNOWN and asserted to fail as
recorded. Without the corpus cache (``python tests/wild/fetch.py``) or Chromium the tests
skip, except under CI (``CI=true``), where either missing fails the run.
"""

from __future__ import annotations

import pytest

from modelport.runtime import tfjs_browser

from ..browser import wild
from ..conftest import require_tool

NAMES = [wild.name(mid, target) for mid, target in wild.CASES]


@pytest.fixture(scope="module")
def ran(tmp_path_factory, tfjs):
    absent = wild.missing()
    if absent:
        require_tool(f"wild corpus models not in the cache ({', '.join(absent)}): run "
                     "python tests/wild/fetch.py")
    reason = tfjs_browser.missing()
    if reason:
        require_tool(f"the browser engine needs {reason}")
    return wild.run(tmp_path_factory.mktemp("browser-wild"))


@pytest.mark.parametrize("backend", wild.BACKENDS)
@pytest.mark.parametrize("name", NAMES)
def test_corpus_output_in_the_browser(ran, name, backend):
    report = ran[name]
    result, = [r for r in report.results if r.backend == backend]
    known = wild.KNOWN.get((name, backend))
    if known == "diverges":
        assert result.error is None and not result.passed, result.error
        return
    if known is not None:
        assert result.error is not None and known in result.error, result.error
        return
    assert result.error is None, f"{name} on {backend}: {result.error}"
    assert result.passed, f"{name} on {backend}: max abs error {result.max_abs}"
