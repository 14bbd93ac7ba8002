"""ONNX's ``light`` and ``pytorch-converted`` suites raised to Keras layers: ONNX -> ``.h5`` in real
Keras 3 and ONNX -> TF.js layers-model in real ``@tensorflow/tfjs``, against the outputs ONNX ships.

The cases are not written here (see ``tests/onnx_suite``); ``tests/onnx_suite/keras_results.py``
converts, runs and compares them (its docstring has the rules). Every case and target is a
test. It must pass, or be listed below, and then the listed outcome is asserted exactly, so a
regression in either direction fails:

- ``REFUSED``: both conversions refuse with ``UnsupportedError``, naming nodes of exactly these
  ONNX op types (no Keras layer computes them with these settings);
- ``TFJS_REFUSED``: the ``.h5`` must pass in real Keras; the layers-model conversion refuses,
  naming a layer of this Keras class that tfjs-layers 4.x cannot run;
- ``KNOWN_FAILURES``: a diagnosed defect, ``xfail(strict=True)`` on that target.

Plus the light models with seeded random weights (``tests/test_onnx_light_random_weights``)
through ONNX -> .h5 -> real Keras against onnxruntime on the randomized ONNX: uniform 0.02
weights cannot see a permuted channel, these can.

Nothing is skipped. The module converts and runs the selected cases once (real tfjs in one
background Node process while real Keras runs), prints the pass table at the end of the session
and writes it as JSON to ``<pytest basetemp>/onnx_to_keras_suites.json``. ``python -m
tests.onnx_suite.keras_results`` runs the same outside pytest and regenerates
``tests/onnx_suite/RESULTS_KERAS.md``.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import require_tool
from tests.onnx_suite import keras_results as kr
from tests.onnx_suite.cases import discover

CASES = discover("light") + discover("pytorch-converted")
BY_ID = {c.id: c for c in CASES}
LIGHT = [c for c in CASES if c.collection == "light"]

REFUSED: dict[str, tuple[tuple[str, ...], str]] = {
    "pytorch-converted/test_PoissonNLLLLoss_no_reduce": (
        ("Mul",), ("a [10, 10] constant operand spans the batch axis; a Keras layer's "
                   "weights cannot depend on the batch")),
}

TFJS_REFUSED: dict[str, tuple[tuple[str, ...], str]] = {}

# Diagnosed defects, (case id, target) -> reason, xfail(strict=True).
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def _param(case_id: str, target: str):
    key = (case_id, target)
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[key])] \
        if key in KNOWN_FAILURES else []
    return pytest.param(case_id, target, id=f"{case_id}-{target}", marks=marks)


def _selected(request, module) -> tuple[set[str], set[str]]:
    """Case ids and light names (random weights) that this session's selected tests need."""
    cases: set[str] = set()
    random: set[str] = set()
    for item in request.session.items:
        params = getattr(item, "callspec", None) and item.callspec.params
        if item.module is not module or not params:
            continue
        if "case_id" in params:
            cases.add(params["case_id"])
        if "light" in params:
            random.add(params["light"])
    if not cases and not random:
        return set(BY_ID), {c.name for c in LIGHT}
    return cases, random


@pytest.fixture(scope="module")
def results(request, tmp_path_factory, keras3):
    """Convert and run what this session selected, once; publish the table."""
    from modelport.runtime.tfjs_node import available

    reason = available()
    if reason:
        require_tool(reason)
    cases, random = _selected(request, request.module)
    out = tmp_path_factory.mktemp("onnx_to_keras")
    ran, ran_random = kr.run_all([c for c in CASES if c.id in cases],
                                 [c for c in LIGHT if c.name in random], out)
    json_path = tmp_path_factory.getbasetemp() / "onnx_to_keras_suites.json"
    json_path.write_text(json.dumps(kr.to_json(ran, ran_random), indent=1))
    request.config.pluginmanager.register(_Summary(ran, ran_random, json_path),
                                          "onnx-to-keras-suites-summary")
    return {r.id: r for r in ran}, {r.id: r for r in ran_random}


class _Summary:
    """A plugin registered by the fixture: prints the table when the session ends."""

    def __init__(self, ran, ran_random, json_path) -> None:
        self.ran, self.ran_random, self.json_path = ran, ran_random, json_path

    def pytest_terminal_summary(self, terminalreporter) -> None:
        terminalreporter.section("ONNX model suites -> Keras layers in real Keras 3 and tfjs")
        for line in kr.summary_lines(self.ran, self.ran_random):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"  JSON: {self.json_path}")


@pytest.mark.parametrize(("case_id", "target"),
                         [_param(c.id, t) for c in CASES for t in kr.TARGETS])
def test_case(case_id: str, target: str, results) -> None:
    result = results[0][case_id].targets[target]
    refused = REFUSED.get(case_id) or (TFJS_REFUSED.get(case_id) if target == "tfjs-layers"
                                       else None)
    if refused is not None:
        names, why = refused
        assert result.outcome == "unsupported", (
            f"listed as refused for {', '.join(names)} ({why}), got {result.outcome}: "
            f"{result.detail}")
        assert tuple(result.refused_ops) == names, (
            f"the refusal should name {list(names)} ({why}), names {result.refused_ops}: "
            f"{result.detail}")
        return
    assert result.passed, f"{result.outcome}: {result.detail}"
    assert result.parity != "fail", "modelport's own parity check failed on the .h5"


@pytest.mark.parametrize("light", [c.name for c in LIGHT])
def test_light_random_weights(light: str, results) -> None:
    """Seeded He-scaled weights: ONNX -> .h5 -> real Keras 3 vs onnxruntime (outputs and
    pre-softmax logits)."""
    case_id = f"light/{light}"
    result = results[1][case_id]
    if case_id in REFUSED:
        names, why = REFUSED[case_id]
        assert result.outcome == "unsupported" and tuple(result.refused_ops) == names, (
            f"listed as refused for {', '.join(names)} ({why}), got {result.outcome} "
            f"{result.refused_ops}: {result.detail}")
        return
    assert result.outcome == "pass", f"{result.outcome}: {result.detail}"
    assert result.logit_err is not None or not result.softmax, "the logits were not compared"


def test_tables_name_real_cases() -> None:
    """A stale row (renamed or removed case) would otherwise go unnoticed."""
    listed = set(REFUSED) | set(TFJS_REFUSED) | {k for k, _ in KNOWN_FAILURES}
    assert not listed - set(BY_ID), f"listed cases that do not exist: {listed - set(BY_ID)}"
    assert not set(REFUSED) & set(TFJS_REFUSED)
    assert all(t in kr.TARGETS for _, t in KNOWN_FAILURES)


def test_collections_are_complete() -> None:
    """The suites ship 9 light models and 82 pytorch-converted cases; all of them run here."""
    counts = {name: sum(1 for c in CASES if c.collection == name)
              for name in ("light", "pytorch-converted")}
    assert counts == {"light": 9, "pytorch-converted": 82}, counts


def test_refusal_names_are_parsed() -> None:
    """The two refusal forms the table relies on (the raising listing, a tfjs-layers blocker)."""
    assert kr.refused_ops("m.onnx: 2 node(s) cannot be raised to Keras layers: LRN node 'n2': "
                          "no Keras layer computes this op; Pad node 'p': 'edge' padding") \
        == ["LRN", "Pad"]
    assert kr.refused_ops("web: layer 'Elu_0': ELU: tfjs-layers 4.22 supports ELU only with "
                          "alpha=1") == ["ELU"]


def test_table_renders() -> None:
    """The published table (RESULTS_KERAS.md) renders every kind of row."""
    ok = kr.TargetResult("pass", max_abs_err=1e-7, parity="pass", keras_call="eager")
    no = kr.TargetResult("unsupported", "LRN node 'n2': no Keras layer", ["LRN"])
    bad = kr.TargetResult("load-error", "rank 5 | not implemented")
    rows = [kr.KerasCaseResult("light/a", "light", ["LRN"], {"h5": no, "tfjs-layers": no}),
            kr.KerasCaseResult("light/b", "light", ["Conv"], {"h5": ok, "tfjs-layers": bad})]
    random = [kr.RandomResult("light/b", "pass", max_abs_err=0.0, softmax=True, logit_err=1e-7)]
    text = kr.markdown(rows, random, 1.0)
    assert "| light | 2 | 1 | 1 | 1/1 | 0 | 1 | 0/1 |" in text, text
    assert "| light/a | no | LRN | refused (LRN) | refused (LRN) |" in text, text
    assert "✓ (eager)" in text and "rank 5 / not implemented" in text, text
    assert any("light/b [tfjs-layers]: load-error" in line
               for line in kr.summary_lines(rows, random))
