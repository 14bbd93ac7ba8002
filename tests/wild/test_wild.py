"""The wild corpus: real models from PyPI and npm packages, every route, real consumers.

Acceptance invariants of issue 18 on the cached corpus (``tests/wild/fetch.py`` fills the
cache; ``.ci/run`` fetches it first): no route ends in exit 70, none in exit 3 (the files are
valid), every file written loads in its real consumer (onnxruntime, real tfjs under Node,
Keras 3) and matches the source run in its own framework, every refusal is exit 4 with a
message that names what the target cannot express and a route that can, and ``modelport
inspect --json`` (a dry run) calls possible exactly the routes that ``convert`` writes.

Routes that do not meet them yet are listed, with the outcome they have today, in
``known_failures.json`` (RESULTS.md has their messages). A listed route must still fail in
that way or meet the invariants: a listed route that fails differently fails the test (a
new kind of failure never hides behind an old entry); one that a fix made pass is fine here,
and ``run.py --known`` drops its entry when the list is regenerated.

To stay within a few minutes on two cores, the models the corpus marks ``heavy`` (their
check runs minutes in tfjs's pure-JS backend) convert with ``--no-validate`` here and are
judged by the consumer comparison alone, on seeded inputs of their static shapes or of the
shapes the corpus gives (``run.py`` without options runs the default check on all).

Without the cache the tests skip (``python tests/wild/fetch.py`` fetches it), except under
CI (``CI=true``), where a corpus that could not be fetched fails the run.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_TOOLS
from tests.wild import run as wild

fetch = wild.fetch
HERE = Path(__file__).resolve().parent
_KNOWN_DOC = json.loads((HERE / "known_failures.json").read_text())
KNOWN = _KNOWN_DOC["routes"]
KNOWN_INSPECT = _KNOWN_DOC.get("inspect", {})
CORPUS = fetch.load_corpus()
CASES = [(m["id"], t) for m in CORPUS["models"] for t in wild.ROUTES[m["format"]]]
# Per conversion; the slowest route measured takes about a minute on 2 cores.
TIMEOUT = float(os.environ.get("MODELPORT_WILD_TIMEOUT", "240"))

pytestmark = pytest.mark.wild


@pytest.fixture(scope="session")
def wild_rows(request, tmp_path_factory):
    """The harness's rows for the models this session selected, run two at a time."""
    missing = [m["id"] for m in CORPUS["models"] if not fetch.model_ready(m)]
    if missing:
        reason = (f"wild corpus not in {fetch.cache_dir()} ({len(missing)} models missing, "
                  f"e.g. {missing[0]}): run python tests/wild/fetch.py")
        if REQUIRE_TOOLS:
            pytest.fail(reason)
        pytest.skip(reason)
    wanted = sorted({item.callspec.params["case"][0] for item in request.session.items
                     if "wild_rows" in getattr(item, "fixturenames", ())
                     and hasattr(item, "callspec")})
    models = {m["id"]: m for m in CORPUS["models"]}
    work = tmp_path_factory.mktemp("wild")

    def one(mid: str) -> list[dict]:
        (work / mid).mkdir()
        return wild.run_model(models[mid], work / mid, TIMEOUT, quick=True)

    with ThreadPoolExecutor(max_workers=2) as pool:
        rows = [r for batch in pool.map(one, wanted) for r in batch]
    return {(r["id"], r["target"]): r for r in rows}


@pytest.mark.parametrize("case", CASES, ids=[f"{m}->{t}" for m, t in CASES])
def test_route(case, wild_rows):
    mid, target = case
    row = wild_rows[(mid, target)]
    found = wild.problem(row, {t: r for (m, t), r in wild_rows.items() if m == mid})
    known = KNOWN.get(f"{mid} -> {target}")
    if known is None:
        assert found is None, f"{mid} -> {target}: {found}"
    elif found is None:
        # It meets the invariants now: a fix landed (the entry is stale; run.py --known
        # regenerates the list), or a heavy model's route ran here without modelport's check,
        # so a failure of the check itself that run.py's full run records cannot show. Either
        # way the consumer comparison held.
        pass
    else:
        assert wild.outcome(row) == known, (
            f"{mid} -> {target} is listed in tests/wild/known_failures.json as '{known}' but "
            f"is now '{wild.outcome(row)}' ({found or 'meets the invariants'}): update or "
            "remove its entry")


@pytest.mark.parametrize("case", CASES, ids=[f"{m}->{t}" for m, t in CASES])
def test_inspect_agrees_with_convert(case, wild_rows):
    """Issue 18: `inspect --json`'s verdict per target is what `convert` does on that route."""
    mid, target = case
    row = wild_rows[(mid, target)]
    found = wild.inspect_disagrees(row)
    known = KNOWN_INSPECT.get(f"{mid} -> {target}")
    if known is None:
        assert found is None, f"{mid} -> {target}: {found}"
    # a listed disagreement that a fix resolved is fine (run.py --known drops the entry)


def test_corpus_covers_the_issue():
    """At least 15 files, all four source formats, from both registries."""
    models = CORPUS["models"]
    assert len(models) >= 15
    assert {m["format"] for m in models} == {"onnx", "tfjs-graph", "tfjs-layers", "h5"}
    assert {m["registry"] for m in models} == {"pypi", "npm"}
    for m in models:
        pkg = CORPUS["packages"][f"{m['registry']}:{m['package']}"]
        assert pkg["sha256"] and pkg["licence"] and all(f["sha256"] for f in m["files"].values())


def test_known_failures_are_corpus_routes():
    """Every entry names a route of the corpus (a renamed model cannot hide a failure)."""
    routes = {f"{m} -> {t}" for m, t in CASES}
    assert set(KNOWN) <= routes, sorted(set(KNOWN) - routes)
    assert set(KNOWN_INSPECT) <= routes, sorted(set(KNOWN_INSPECT) - routes)
