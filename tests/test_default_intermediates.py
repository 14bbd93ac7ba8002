"""Every Keras -> ONNX check compares a sample of layer outputs in the file's own values
(issue 17, point 3): an error a softmax head hides from the outputs fails the check and is
named; a layer another tool fused into the next one is not a fault; the cost stays bounded.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import modelport
from modelport.check import sampled_layers
from modelport.check.parity import Intermediates, format_table
from modelport.cli import main
from modelport.formats.loading import load

from .conftest import FIXTURES
from .test_intermediates import CNN, _converted, _foreign, _nudge, _tampered

MOBILENET = FIXTURES / "applications" / "MobileNetV2.keras"
# one weight of this conv moved by 0.5: most layers after it change, the softmax output does not
HIDDEN = "block_8_expand/kernel"


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    out = tmp_path_factory.mktemp("mobilenet") / "m.onnx"
    modelport.convert(MOBILENET, out, validate=False)
    return out


def test_a_faithful_conversion_holds_every_sampled_layer(mobilenet):
    report = modelport.validate(MOBILENET, mobilenet, device="cpu")
    assert report.passed, report.outputs
    found = report.intermediates
    assert found is not None and found.skipped is None
    assert found.compared == len(found.layers) == sampled_layers.SAMPLE
    assert found.held == found.compared and found.first_not_held is None
    assert "global_average_pooling2d" in found.layers  # the last layer before the output
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert json.loads(text)["intermediates"]["held"] == found.held
    assert any(line.startswith("  intermediates: 8 of 8") for line in format_table(report))


def test_an_error_the_softmax_hides_fails_the_check_and_is_named(mobilenet, tmp_path):
    bad = _tampered(mobilenet, HIDDEN, tmp_path / "bad.onnx")
    report = modelport.validate(MOBILENET, bad, device="cpu")
    assert all(o.passed for o in report.outputs)  # the outputs alone would pass it
    assert not report.passed
    first = report.intermediates.first_not_held
    assert first["layer"] == "block_8_expand" and first["class"] == "Conv2D"
    assert HIDDEN in first["weights"]
    assert report.first_divergence is first
    assert any(note.startswith("sampled intermediates: ") for note in report.notes)
    assert report.intermediates.held < report.intermediates.compared
    json.dumps(report.to_dict(), allow_nan=False)


def test_the_cli_exits_6_and_names_the_layer(mobilenet, tmp_path):
    bad = _tampered(mobilenet, HIDDEN, tmp_path / "bad.onnx")
    result = CliRunner().invoke(main, ["validate", str(MOBILENET), str(bad), "--device", "cpu"])
    assert result.exit_code == 6, result.output
    assert "FAIL at block_8_expand" in result.output
    assert "first diverging layer: block_8_expand (Conv2D)" in result.output


def test_convert_checks_the_sampled_layers(tmp_path):
    report = modelport.convert(CNN, tmp_path / "m.onnx", device="cpu")
    assert report.passed
    found = report.parity.intermediates
    assert found.compared > 0 and found.held == found.compared


def test_a_layer_another_tool_fused_is_not_a_fault(tmp_path, monkeypatch):
    """The CNN as a TF-based tool writes it (conv2d_1 fused with its BatchNormalization, other
    names everywhere), every layer sampled: conv2d_1 is not held, its successor is."""
    monkeypatch.setattr(sampled_layers, "SAMPLE", 1000)
    foreign = tmp_path / "foreign.onnx"
    onnx.save(_foreign(_converted(CNN, tmp_path))[0], str(foreign))
    report = modelport.validate(CNN, foreign, device="cpu")
    assert report.passed, report.notes
    assert report.intermediates.absent == ["conv2d_1"]
    assert report.intermediates.held == report.intermediates.compared - 1

    proto, names = _foreign(_converted(CNN, tmp_path, "again.onnx"))
    _nudge(proto, names["fused_kernel"])  # the fused conv itself is wrong: its successor too
    bad = tmp_path / "bad.onnx"
    onnx.save(proto, str(bad))
    report = modelport.validate(CNN, bad, device="cpu")
    assert not report.passed
    assert report.intermediates.first_not_held["layer"] == "conv2d_1"


def test_a_large_model_is_not_compared_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(sampled_layers, "MAX_WEIGHT_BYTES", 0)
    out = tmp_path / "m.onnx"
    report = modelport.convert(CNN, out, device="cpu")
    assert report.passed
    found = report.parity.intermediates
    assert found.compared == 0 and "MB" in found.skipped
    assert any("intermediates: not compared" in line for line in format_table(report.parity))


# --- the sample and the rule, on their own ------------------------------------------------------

def test_the_sample_spreads_along_the_calls_and_ends_before_each_output():
    plan = sampled_layers.plan(load(MOBILENET))
    names = [layer for layer, _ in plan.sampled]
    assert len(names) == sampled_layers.SAMPLE and names[-1] == "global_average_pooling2d"
    positions = [plan.order.index(c) for c in plan.sampled]
    assert positions == sorted(positions) and positions[0] < len(plan.order) // 4
    assert sampled_layers.plan(load(MOBILENET)).sampled == plan.sampled  # deterministic
    assert not set(plan.sampled) & plan.outputs


def test_the_sample_skips_layers_that_compute_nothing():
    multi = sampled_layers.plan(load(FIXTURES / "keras3" / "multi_io.h5"), count=100)
    assert not set(multi.sampled) & multi.outputs
    for layer, _k in multi.sampled:
        assert multi.graph.layer(layer).class_name not in sampled_layers.PASS_THROUGH
    plan = sampled_layers.plan(load(CNN), count=100)  # every computing layer
    assert len(plan.sampled) == len([c for c in plan.order if c not in plan.outputs and
                                     plan.graph.layer(c[0]).class_name
                                     not in sampled_layers.PASS_THROUGH])


class _Status:
    """A run whose verdict per call is given."""

    def __init__(self, unheld):
        self.unheld = set(unheld)

    def held(self, call):
        return call[0] not in self.unheld


def _judged(unheld, sampled):
    plan = sampled_layers.plan(load(CNN), count=100)
    plan.sampled = [c for c in plan.sampled if c[0] in sampled]
    report = Intermediates()
    failed = sampled_layers._judge(plan, _Status(unheld), report)
    return failed, report, plan


def test_the_rule_fused_persisting_and_before_the_output():
    plan = sampled_layers.plan(load(CNN), count=100)
    chain = [layer for layer, _ in plan.order]
    conv, after = "conv2d_1", chain[chain.index("conv2d_1") + 1]
    # fused: the next layer is held again
    failed, report, _ = _judged({conv}, {conv})
    assert failed is None and report.absent == [conv] and report.compared == 1
    # an error that persists past REACH layers
    failed, report, _ = _judged(set(chain[chain.index(conv):]), {conv})
    assert failed == (conv, 0) and report.held == 0
    # persisting, but only REACH layers: not enough to tell it from a fusion chain
    failed, _, _ = _judged({conv, after}, {conv})
    assert failed is None
    # the last layer before the output: nothing after it but the output, which may hide it
    last = plan.sampled[-1][0]
    failed, _, _ = _judged({last}, {last})
    assert failed == (last, 0)


def test_the_file_values_come_without_copying_the_weights(tmp_path):
    from modelport.check.layouts import match_input
    from modelport.runtime.engines import OnnxRuntime

    path = _converted(CNN, tmp_path)
    target = load(path)
    engine = OnnxRuntime(path)
    x = np.random.default_rng(0).random((2, *load(CNN).layers[0].config["batch_shape"][1:]),
                                        dtype=np.float32)
    arrays = [match_input(x, engine.inputs()[0])]
    values = sampled_layers.file_values(target, arrays)
    assert set(values) == {v.name for n in target.graph for v in n.outputs}  # every value
    (out,) = engine.run(arrays)
    np.testing.assert_allclose(values[target.graph.outputs[0].name], out, rtol=1e-5, atol=1e-6)
    assert len(target.graph.initializers) == len(load(path).graph.initializers)  # put back
