"""ONNX's own model suites, converted to TF.js graph-models and run in real ``@tensorflow/tfjs``.

The cases are not written here: ``onnx/backend/test/data/{light,pytorch-converted,
pytorch-operator}`` ship models with inputs and expected outputs (see ``tests/onnx_suite``).
Every case is a test. It must pass, or be listed below with the reason, and then the listed
outcome is asserted exactly:

- ``REFUSED``: modelport refuses the model up front with ``UnsupportedError`` and a message that
  names the cause (a limit of TF.js, not a defect): the test checks outcome and message;
- ``XFAIL``: a diagnosed converter defect, ``xfail(strict=True)``: the day it is fixed the test
  XPASSes, fails, and the row must go.

Nothing is skipped. The module converts and runs the selected cases once (one Node process
for all of them), prints the pass table by collection, op and model at the end of the session,
and writes it as JSON to ``<pytest basetemp>/onnx_model_suites.json``. ``python -m
tests.onnx_suite.report`` runs the same outside pytest and regenerates
``tests/onnx_suite/RESULTS.md``.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import require_tool
from tests.onnx_suite import suite
from tests.onnx_suite.cases import all_cases

CASES = all_cases()
BY_ID = {c.id: c for c in CASES}

# Refused by design: case id -> (outcome, regex the detail must match, why).
_DOUBLE = ("unsupported", r"graph input of type DOUBLE \(tfjs has no double\)",
           ("the graph's inputs and outputs are float64; TF.js has no float64 tensors, and "
            "narrowing them silently would change the model"))
REFUSED: dict[str, tuple[str, str, str]] = {
    "pytorch-operator/test_operator_add_broadcast": _DOUBLE,
    "pytorch-operator/test_operator_add_size1_broadcast": _DOUBLE,
    "pytorch-operator/test_operator_add_size1_right_broadcast": _DOUBLE,
    "pytorch-operator/test_operator_add_size1_singleton_broadcast": _DOUBLE,
    "pytorch-operator/test_operator_addconstant": _DOUBLE,
}

# Diagnosed converter defects, case id -> reason: none left. (The last ones, fixed: per-channel
# PRelu-6 slopes, 3-D Conv with strides and dilations, grouped 3-D Conv, and IR-3 models whose
# layout-pass constants lost their shapes.)
XFAIL: dict[str, str] = {}

GOALS = {"light": 1.0, "pytorch-converted": 0.9}  # pass fraction the issue asks for


def _param(case_id: str):
    marks = [pytest.mark.xfail(strict=True, reason=XFAIL[case_id])] if case_id in XFAIL else []
    return pytest.param(case_id, id=case_id, marks=marks)


@pytest.fixture(scope="module")
def results(request, tmp_path_factory) -> dict[str, suite.CaseResult]:
    """Convert and run the cases this session selected, once; publish the table."""
    from modelport.runtime.tfjs_node import available

    reason = available()
    if reason:
        require_tool(reason)
    selected: set[str] = set()
    for item in request.session.items:
        params = getattr(item, "callspec", None) and item.callspec.params
        if item.module is not request.module or not params:
            continue
        if "case_id" in params:
            selected.add(params["case_id"])
        if "collection" in params:  # a goal is judged on its whole collection
            selected |= {c.id for c in CASES if c.collection == params["collection"]}
    selected = selected or set(BY_ID)
    out = tmp_path_factory.mktemp("onnx_suites")
    ran = suite.run_cases([c for c in CASES if c.id in selected], out)
    json_path = tmp_path_factory.getbasetemp() / "onnx_model_suites.json"
    json_path.write_text(json.dumps(suite.to_json(ran), indent=1))
    request.config.pluginmanager.register(_Summary(ran, json_path), "onnx-model-suites-summary")
    return {r.id: r for r in ran}


class _Summary:
    """A plugin registered by the fixture: prints the table when the session ends."""

    def __init__(self, ran: list[suite.CaseResult], json_path) -> None:
        self.ran, self.json_path = ran, json_path

    def pytest_terminal_summary(self, terminalreporter) -> None:
        terminalreporter.section("ONNX model suites in real tfjs")
        for line in suite.summary_lines(self.ran):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"  JSON: {self.json_path}")


@pytest.mark.parametrize("case_id", [_param(c.id) for c in CASES])
def test_case(case_id: str, results) -> None:
    result = results[case_id]
    if case_id in REFUSED:
        outcome, pattern, why = REFUSED[case_id]
        assert result.outcome == outcome, (
            f"listed as {outcome} ({why}), got {result.outcome}: {result.detail}")
        assert re.search(pattern, result.detail), (
            f"the refusal does not name its cause /{pattern}/: {result.detail}")
        return
    assert result.passed, f"{result.outcome}: {result.detail}"


def test_tables_name_real_cases() -> None:
    """A stale row (renamed or removed case) would otherwise go unnoticed."""
    unknown = sorted((set(REFUSED) | set(XFAIL)) - set(BY_ID))
    assert not unknown, f"listed cases that do not exist: {unknown}"
    assert not set(REFUSED) & set(XFAIL)


def test_collections_are_complete() -> None:
    """The suites ship 9 light models and 82 pytorch-converted cases; all of them run here."""
    counts = {name: sum(1 for c in CASES if c.collection == name) for name in GOALS}
    assert counts == {"light": 9, "pytorch-converted": 82}, counts
    assert sum(1 for c in CASES if c.collection == "pytorch-operator") >= 30


@pytest.mark.parametrize("collection", [
    pytest.param(name, id=name, marks=[pytest.mark.xfail(
        strict=True, reason=f"listed defects in {name}: "
        + ", ".join(sorted(i for i in XFAIL if i.startswith(name + "/"))))]
        if sum(1 for i in list(XFAIL) + list(REFUSED) if i.startswith(name + "/"))
        > (1 - goal) * sum(1 for c in CASES if c.collection == name) else [])
    for name, goal in GOALS.items()])
def test_goal_pass_rate(collection: str, results) -> None:
    """The issue's goal: all light models, and at least 90 % of pytorch-converted, pass."""
    mine = [r for r in results.values() if r.collection == collection]
    rate = sum(r.passed for r in mine) / len(mine)
    assert rate >= GOALS[collection], f"{collection}: {rate:.1%} pass, goal {GOALS[collection]:.0%}"
