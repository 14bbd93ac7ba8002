"""``inspect``'s verdict sizes the parity check's memory budget as ``convert``'s check does
(issue 18: ``inspect`` agrees with ``convert`` on every route): the same inputs, the same
liveness sizing (``check.validate.check_budget``), so a route the check refuses with exit 4 is
"no" with the check's own message, naming --max-memory and --no-validate, and only such a
route: with room, or with --no-validate, it is "yes" again."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

import modelport
from modelport.cli import main
from modelport.errors import UnsupportedError

from .dynamic_models import big_pool

ROOT = Path(__file__).resolve().parents[1]
KERAS = ROOT / "fixtures" / "keras3" / "mlp_sequential.keras"
GRAPH = ROOT / "fixtures" / "tfjs_graph" / "cnn"
TIGHT = "1K"  # smaller than any check's values


@pytest.fixture
def free_hw(tmp_path):
    """An ONNX model with free batch, height and width: the check chooses their sizes."""
    path = tmp_path / "big_pool.onnx"
    onnx.save(big_pool(), path)
    return path


def _refusal(src: Path, dst: Path, to: str, **kw) -> str:
    with pytest.raises(UnsupportedError) as e:
        modelport.convert(src, dst, to=to, **kw)
    return e.value.message


@pytest.mark.parametrize("source,to", [("free_hw", "tfjs-graph"), ("keras", "onnx"),
                                       ("graph", "onnx")])
def test_inspect_says_what_the_budget_of_the_check_says(source, to, free_hw, tmp_path):
    src = {"free_hw": free_hw, "keras": KERAS, "graph": GRAPH}[source]
    dst = tmp_path / ("out.onnx" if to == "onnx" else "web")
    said = _refusal(src, dst, to, max_memory=TIGHT)
    assert "memory budget" in said
    verdict = modelport.inspect(src, max_memory=TIGHT).targets[to]
    assert not verdict.ok
    # the same sizes on the same inputs: convert's words, and the way out
    assert verdict.note is not None and said in verdict.note
    assert "--max-memory" in verdict.note and "--no-validate" in verdict.note
    # no refusal where the check has room, or where it does not run
    assert modelport.inspect(src).targets[to].ok
    assert modelport.inspect(src, max_memory=TIGHT, validate=False).targets[to].ok
    modelport.convert(src, dst, to=to, max_memory=TIGHT, validate=False)


def test_a_route_without_a_numeric_check_is_not_sized():
    # Keras -> Keras is read back, not run: no budget to pass
    assert modelport.inspect(KERAS, max_memory=TIGHT).targets["h5"].ok


def test_cli_inspect_takes_max_memory_and_no_validate(free_hw):
    runner = CliRunner()
    tight = runner.invoke(main, ["inspect", str(free_hw), "--json", "--max-memory", TIGHT])
    assert tight.exit_code == 0, tight.output
    target = json.loads(tight.output)["targets"]["tfjs-graph"]
    assert not target["ok"] and "past the memory budget of 1 KiB" in target["note"]
    skipped = runner.invoke(main, ["inspect", str(free_hw), "--json", "--max-memory", TIGHT,
                                   "--no-validate"])
    assert json.loads(skipped.output)["targets"]["tfjs-graph"]["ok"]
    bad = runner.invoke(main, ["inspect", str(free_hw), "--max-memory", "lots"])
    assert bad.exit_code == 2


def test_the_keras_reference_is_sized_as_it_holds_every_tensor(tmp_path):
    # the NumPy Keras reference keeps every tensor of a run: the check sizes them all
    said = _refusal(KERAS, tmp_path / "out.onnx", "onnx", max_memory=TIGHT)
    assert "NumPy Keras reference" in said
    assert said in (modelport.inspect(KERAS, max_memory=TIGHT).targets["onnx"].note or "")


def test_a_profile_past_the_budget_is_skipped_and_the_check_stands(tmp_path, monkeypatch):
    from modelport import budget
    from modelport.check import validate

    needs: list[int] = []
    profiles: list[int | None] = []
    require, sized = budget.require, validate.profile_bytes

    def spy_require(needed, what, **kw):
        needs.append(needed)
        return require(needed, what, **kw)

    def spy_profile(*args):
        profiles.append(sized(*args))
        return profiles[-1]

    monkeypatch.setattr(budget, "require", spy_require)
    monkeypatch.setattr(validate, "profile_bytes", spy_profile)
    report = modelport.convert(KERAS, tmp_path / "a.onnx", max_memory="1G")
    assert report.parity.per_layer  # the Keras -> ONNX route profiles a passing check
    check, profile = max(needs), profiles[-1]
    assert profile is not None and profile > check
    between = (check + profile) // 2
    report = modelport.convert(KERAS, tmp_path / "b.onnx", max_memory=between)
    assert report.parity.passed and not report.parity.per_layer
    assert any("per-layer profile was skipped" in n for n in report.parity.notes)


def test_sampled_layers_past_the_budget_are_skipped_by_name(tmp_path):
    # comparing sampled layers marks every value of the file as an output: all held at once
    import numpy as np
    import onnx_ir as ir

    from modelport import budget
    from modelport.check.validate import _sample_past_budget

    modelport.convert(KERAS, tmp_path / "m.onnx")
    target = ir.load(tmp_path / "m.onnx")
    name = target.graph.inputs[0].name
    shape = [d if isinstance(d, int) else 4 for d in target.graph.inputs[0].shape]
    feed = [np.zeros(shape, np.float32)]
    with budget.max_memory(TIGHT):
        why = _sample_past_budget(target, [name], feed)
    assert why is not None and "every value of the file at once" in why
    with budget.max_memory("1G"):
        assert _sample_past_budget(target, [name], feed) is None
