"""The parity check's rule: each output judged against the float32 rounding noise measured on
the same inputs (issue 17). A faithful conversion passes; a weight scaled by 1.01 or one sign
flipped fails; an ill-conditioned output is named instead of blamed; a user's atol/rtol replaces
the rule; quantized targets are held to their quantization's expected error; the inputs and
outputs can be saved and the check repeated."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import helper, numpy_helper

import modelport
from modelport.check import parity
from modelport.check.probes import file_probes, seeded_probes
from modelport.cli import main
from modelport.errors import UnsupportedError
from modelport.runtime.engines import InputSpec

from .conftest import FIXTURES

CNN = FIXTURES / "keras3" / "cnn_bn_pool.h5"


@pytest.fixture(scope="module")
def faithful(tmp_path_factory):
    out = tmp_path_factory.mktemp("noise") / "cnn.onnx"
    report = modelport.convert(CNN, out, device="cpu")
    assert report.parity is not None and report.parity.passed
    return out


def _mutant(path, tmp_path, name_part, change):
    model = onnx.load(path)
    tensor = next(t for t in model.graph.initializer if name_part in t.name
                  and len(t.dims) > 1)
    array = change(numpy_helper.to_array(tensor).copy())
    tensor.CopyFrom(numpy_helper.from_array(array.astype(np.float32), tensor.name))
    out = tmp_path / f"mutant_{name_part.replace('/', '_')}.onnx"
    onnx.save(model, out)
    return out


def _flip_largest(a):
    k = int(np.argmax(np.abs(a)))
    a.flat[k] = -a.flat[k]
    return a


@pytest.mark.parametrize("name_part, change", [
    ("dense", lambda a: a * np.float32(1.01)),
    ("conv2d_1", _flip_largest),
    ("conv2d_2", lambda a: a * np.float32(1.01)),
], ids=["dense-x1.01", "conv-sign-flip", "conv-x1.01"])
def test_small_mutants_fail(faithful, tmp_path, name_part, change):
    report = modelport.validate(CNN, _mutant(faithful, tmp_path, name_part, change),
                                device="cpu")
    assert not report.passed
    out = report.outputs[0]
    assert out.rule == parity.NOISE_RULE and out.margin is not None and out.margin < 1
    # the old fixed tolerance (atol 1e-4, rtol 1e-3) passes some of these: the rule is tighter
    assert out.noise > 0 and out.tolerance < 1e-4


def test_faithful_report_shows_noise_and_margin(faithful):
    report = modelport.validate(CNN, faithful, device="cpu")
    assert report.passed
    (out,) = report.outputs
    assert 0 < out.noise < 1e-5 and out.margin is not None and out.margin > 1
    assert out.tolerance >= parity.NOISE_FACTOR * 0 and out.scale > 0
    assert out.error_to_scale == pytest.approx(out.max_abs / out.scale)
    assert report.inputs["probes"] == ["normal", "unit", "pixel"]
    assert "float64" in report.noise
    doc = json.loads(report.to_json())  # strict JSON: no Infinity or NaN
    assert {"noise", "margin", "tolerance", "scale", "error_to_scale",
            "ill_conditioned"} <= set(doc["outputs"][0])


def test_explicit_tolerance_replaces_the_rule(faithful, tmp_path):
    mutant = _mutant(faithful, tmp_path, "dense", lambda a: a * np.float32(1.01))
    report = modelport.validate(CNN, mutant, device="cpu",
                                tolerances=parity.Tolerances(parity.Tolerance(1.0, 0.0)))
    assert report.passed and report.outputs[0].rule == parity.FIXED_RULE
    assert report.outputs[0].noise > 0  # still measured and reported


def test_cli_atol_and_json(faithful, tmp_path):
    mutant = _mutant(faithful, tmp_path, "dense", lambda a: a * np.float32(1.01))
    failed = CliRunner().invoke(main, ["validate", str(CNN), str(mutant), "--json"])
    assert failed.exit_code == 6
    doc = json.loads(failed.stdout)
    assert not doc["ok"] and doc["outputs"][0]["margin"] < 1
    passed = CliRunner().invoke(main, ["validate", str(CNN), str(mutant), "--atol", "1"])
    assert passed.exit_code == 0, passed.output
    assert "atol 1 rtol 0.001" in passed.output


def _huge_equal_logits(path):
    """An ONNX model whose logits are huge and all equal (every weight the same) before a
    softmax: float32 rounding alone decides its output (as ONNX's light_squeezenet)."""
    w = np.full((16, 64), 0.02, np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Mul", ["h", "big"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["y"], axis=-1)]
    graph = helper.make_graph(
        nodes, "ill", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, 16])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None, 64])],
        [numpy_helper.from_array(w, "w"),
         numpy_helper.from_array(np.array(3e9, np.float32), "big")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_ill_conditioned_output_is_named_not_blamed(tmp_path):
    src = _huge_equal_logits(tmp_path / "ill.onnx")
    report = modelport.convert(src, tmp_path / "ill.h5", device="cpu")
    assert report.parity is not None and report.parity.passed
    assert report.parity.outputs[0].ill_conditioned
    assert any("ill-conditioned" in line for line in parity.format_table(report.parity))


def test_noise_rule_unit():
    e = np.ones((4, 3))
    noise = np.full((4, 3), 1e-6)
    ok = parity.compare_output("y", e, e + 1e-5, None, noise=noise)
    assert ok.passed and ok.margin == pytest.approx(1.2)
    bad = parity.compare_output("y", e, e + 1.5e-5, None, noise=noise)
    assert not bad.passed and bad.mismatched == 12
    # per probe: the second probe's scale is 1000x, its noise too; each judged on its own
    e2 = np.concatenate([e, 1000 * e])
    n2 = np.concatenate([noise, 1000 * noise])
    a2 = e2.copy()
    a2[0, 0] += 3e-5  # out of tolerance in the first probe only
    split = parity.compare_output("y", e2, a2, None, noise=n2,
                                  groups=[slice(0, 4), slice(4, 8)])
    assert not split.passed and split.mismatched == 1
    whole = parity.compare_output("y", e2, a2, None, noise=n2)
    assert whole.passed  # one group would hide it: probes are judged apart
    # exact computations: no noise, the floors (1e-6 of the RMS, 16 float32 ulps of each
    # element) still let a float32 kernel's last bits through
    assert parity.compare_output("y", e, e + 1e-6, None, noise=np.zeros_like(e)).passed
    assert not parity.compare_output("y", e, e + 1e-5, None, noise=np.zeros_like(e)).passed
    # a peaked softmax: the top element may miss by a few of its own ulps (onnxruntime's
    # softmax does, ~10), the small ones by a few of theirs, not of the top's
    p = np.full((1, 100), 0.2 / 99)
    p[0, 7] = 0.8
    close = p * (1 + 8 * 2.0 ** -23)
    assert parity.compare_output("p", p, close, None, noise=np.zeros_like(p)).passed
    moved = p.copy()
    moved[0, 3] *= 1 + 1e-4
    assert not parity.compare_output("p", p, moved, None, noise=np.zeros_like(p)).passed


def test_probes_cover_ranges():
    specs = [InputSpec("img", [None, 8, 8, 3], "float32"), InputSpec("ids", [None, 5], "int32",
                                                                      high=1000)]
    probes = seeded_probes(specs, batch=3, seed=0)
    assert [p.name for p in probes] == ["normal", "unit", "pixel"]
    normal, unit, pixel = (p.arrays for p in probes)
    assert normal[0].min() < 0 and unit[0].min() >= 0 and unit[0].max() < 1
    assert pixel[0].max() > 200 and pixel[0].min() >= 0
    assert all(p[1].min() >= 0 and p[1].max() < 1000 for p in (normal, unit, pixel))
    assert not np.array_equal(normal[1], unit[1])  # a fresh draw per probe
    flat = seeded_probes([InputSpec("x", [None, 10], "float32")], batch=2, seed=0)
    assert [p.name for p in flat] == ["normal", "unit"]


def test_saved_inputs_repeat_the_check(faithful, tmp_path):
    first = modelport.validate_with(CNN, faithful, modelport.CheckOptions(
        device="cpu", save_inputs=tmp_path / "in.npz", save_outputs=tmp_path / "out.npz"))
    specs = [InputSpec("input_layer_2", [None, 16, 16, 3], "float32")]
    probes = file_probes(tmp_path / "in.npz", specs)
    assert [p.name for p in probes] == ["normal", "unit", "pixel"]
    again = modelport.validate_with(CNN, faithful, modelport.CheckOptions(
        device="cpu", inputs=tmp_path / "in.npz"))
    assert again.outputs[0].max_abs == first.outputs[0].max_abs
    saved = np.load(tmp_path / "out.npz")
    name = first.outputs[0].name
    assert saved[f"expected::{name}"].shape == saved[f"actual::{name}"].shape == \
        tuple(first.outputs[0].shape)
    assert list(saved["probes"]) == ["normal", "unit", "pixel"]


def test_quantized_graph_judged_on_its_outputs(tmp_path):
    report = modelport.convert(CNN, tmp_path / "q", to="tfjs-graph", quantize=["uint8"],
                               engine="reference", device="cpu")
    assert report.parity is not None and report.parity.passed
    out = report.parity.outputs[0]
    assert out.quantization > 0 and out.max_abs > 1e-4  # quantization moves it, as expected


def test_check_out_of_memory_keeps_nothing(tmp_path, monkeypatch):
    from modelport.check import validate

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(validate, "validate_models", no_memory)
    dst = tmp_path / "m.onnx"
    with pytest.raises(UnsupportedError) as e:
        modelport.convert(CNN, dst, device="cpu")
    assert "conversion itself succeeded" in str(e.value) and "--no-validate" in e.value.hint
    assert not dst.exists() and list(tmp_path.iterdir()) == []


def test_graph_model_named_by_its_folder(faithful, tmp_path):
    graph = tmp_path / "graph"
    modelport.convert(faithful, graph, validate=False)
    report = modelport.validate(faithful, graph, device="cpu")  # real tfjs where present
    assert report.passed
