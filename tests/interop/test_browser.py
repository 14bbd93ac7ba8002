"""Every TF.js fixture route run where TF.js models live: real tfjs in headless Chromium on the
cpu, wasm and webgl backends (WebGL on SwiftShader), each output compared with modelport's
NumPy reference on the same inputs; the mobile setting (WebGL in float16 textures) as
information, held to its own looser bound. One browser launch for the whole module, all
backends in one page load (tests/browser/cases.py). tfjs's own gaps are listed in
tests/browser/known.py and asserted to fail as recorded. With CI=true a missing Chromium or
npm package fails the run (tests/conftest.py's require_tool).
"""

from __future__ import annotations

import pytest

from modelport.runtime import tfjs_browser

from ..browser import cases
from ..browser.known import KNOWN
from ..conftest import FIXTURES, require_tool

NAMES = [f"fixture tfjs/{p.parent.name}" for p in sorted((FIXTURES / "tfjs").glob("*/model.json"))] \
    + [f"fixture tfjs_graph/{p.parent.name}"
       for p in sorted((FIXTURES / "tfjs_graph").glob("*/model.json"))] \
    + [f"fixture browser/{p.parent.name}"
       for p in sorted((FIXTURES / "browser").glob("*/model.json"))] \
    + [f"route {name}" for name in cases.ROUTES]
ATOL, RTOL = 1e-4, 1e-3  # float32 kernels against the NumPy reference
MOBILE_BOUND = 0.1  # float16 textures: information; only a gross error fails


@pytest.fixture(scope="module")
def ran(tmp_path_factory, tfjs):
    reason = tfjs_browser.missing()
    if reason:
        require_tool(f"the browser engine needs {reason}")
    found = cases.models(tmp_path_factory.mktemp("browser"))
    assert [m.name for m in found] == NAMES
    return {m.name: (m, per) for m, per in zip(found, cases.run(found))}


@pytest.mark.parametrize("backend", ["cpu", "wasm", "webgl"])
@pytest.mark.parametrize("name", NAMES)
def test_backend_matches_reference(ran, name, backend):
    model, per = ran[name]
    result = per[backend]
    known = KNOWN.get((name, backend))
    if known is not None:
        if known == "diverges":
            assert result.error is None and not cases.within(model, result, ATOL, RTOL)
        else:
            assert result.error is not None and known in result.error, result.error
        return
    assert result.error is None, f"{name} on {backend}: {result.error}"
    assert cases.within(model, result, ATOL, RTOL), \
        f"{name} on {backend}: max abs error {cases.max_error(model, result):.3g}"


@pytest.mark.parametrize("name", NAMES)
def test_mobile_float16_is_close(ran, name):
    model, per = ran[name]
    result = per["mobile"]
    known = KNOWN.get((name, "mobile"))
    if known == "diverges":
        assert result.error is None and cases.max_error(model, result) >= MOBILE_BOUND
        return
    if known is not None:
        assert result.error is not None and known in result.error, result.error
        return
    assert result.error is None, result.error
    assert cases.max_error(model, result) < MOBILE_BOUND


def test_a_backend_only_the_browser_check_catches(tfjs):
    """fixtures/browser/int_add: int32 FloorDiv past 2**24 is exact in tfjs under Node and on
    the browser's cpu backend, off on WebGL: the Node check passes, the browser check fails
    naming webgl, and --per-layer names the FloorDiv node."""
    from modelport.check.browser import validate_backends
    from modelport.check.options import CheckOptions
    from modelport.check.validate import validate_with

    reason = tfjs_browser.missing()
    if reason:
        require_tool(f"the browser engine needs {reason}")
    model = FIXTURES / "browser" / "int_add"
    node = validate_with(model, model, CheckOptions(engine="tfjs", inputs=model / "io.npz"))
    assert node.passed
    browser = validate_backends(model, model, CheckOptions(
        engine="browser:cpu,webgl", inputs=model / "io.npz", per_layer=True))
    assert not browser.passed and browser.failed == ["webgl"]
    webgl = browser.results[1].report
    assert webgl is not None and webgl.first_divergence is not None
    assert webgl.first_divergence["op"] == "FloorDiv"
    assert "webgl" in "\n".join(browser.lines())
