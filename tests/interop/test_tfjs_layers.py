"""Real @tensorflow/tfjs (Node, pure-JS CPU backend) loads what modelport writes and agrees.

Each layers-model written by modelport is loaded through tfjs's own HTTP loader (manifest, shards,
dequantization, strict name matching) and run on the seeded inputs; its predictions must match
the outputs recorded from the framework that made the source file.
"""

from __future__ import annotations

import numpy as np
import pytest

import modelport
from modelport.formats import tfjs_layers
from modelport.models import tfjs_support
from modelport.models.keras_dialect import LEGACY_HARD_SIGMOID

from ..conftest import ALL_CASES, assert_close, case_params
from ..expectations import TFJS_REFUSED, refusal

QUANT_RESULTS: list[dict] = []
# Loose, but tight enough to catch a wrong scale/min/dtype: relative to the output's range.
QUANT_BOUNDS = {"float16": 1e-2, "uint16": 1e-2, "uint8": 0.1}


@pytest.mark.parametrize("case", case_params())
def test_tfjs_runs_modelport_output(case, tmp_path, tfjs):
    reason = refusal(TFJS_REFUSED, case)
    if reason:
        with pytest.raises(modelport.UnsupportedError):
            modelport.convert(case.path, tmp_path / "web")
        assert not (tmp_path / "web").exists()
        return
    report = modelport.convert(case.path, tmp_path / "web", shard_size=1024)
    result = tfjs.run_layers_model(tmp_path / "web" / "model.json", case.inputs)
    assert len(result["arrays"]) == len(case.outputs)
    for (name, expected), actual in zip(case.outputs, result["arrays"]):
        assert_close(actual, expected, what=f"{case.id} output {name}")
    # tfjs looked every variable up by name, strictly; it saw exactly what modelport wrote
    # (the source's variables, as tfjs-layers' rewrites hold them: tfjs_support.prepare).
    assert sorted(result["weights"]) == sorted(
        name for name, _ in tfjs_layers.ordered_weights(
            tfjs_support.prepare(modelport.load(case.path))))
    assert report.check.weights_differing == 0


QUANT_CASES = [c for c in ALL_CASES if c.generation == "keras3" and c.path.suffix == ".keras"
               and not refusal(TFJS_REFUSED, c)]


@pytest.mark.parametrize("dtype", ["float16", "uint16", "uint8"])
@pytest.mark.parametrize("case", case_params(QUANT_CASES))
def test_tfjs_runs_quantized_output(case, dtype, tmp_path, tfjs):
    report = modelport.convert(case.path, tmp_path / "web", quantize=[dtype])
    float_weights = [w for _, w in modelport.load(case.path).all_weights()
                     if w.array.dtype == np.float32]
    assert report.quantization.by_dtype == ({dtype: len(float_weights)} if float_weights else {})
    result = tfjs.run_layers_model(tmp_path / "web" / "model.json", case.inputs)
    # modelport dequantizes exactly as tfjs does: same float32 bits for every variable.
    mine = dict(tfjs_layers.ordered_weights(modelport.load(tmp_path / "web")))
    for name, values in result["weightValues"].items():
        ours = mine[name].array.reshape(-1)
        assert np.array_equal(ours, np.asarray(values, ours.dtype)), name
    for (name, expected), actual in zip(case.outputs, result["arrays"]):
        scale = float(np.max(np.abs(expected))) + 1e-6
        err = float(np.max(np.abs(actual - expected)))
        QUANT_RESULTS.append({"case": case.id, "output": name, "dtype": dtype,
                              "max_abs_error": err, "relative_to_range": err / scale,
                              "max_abs_weight_error": report.check.max_abs_weight_error})
        assert err / scale < QUANT_BOUNDS[dtype], f"{case.id} {name}: {err:.3g}"


def test_quantized_is_smaller(tmp_path):
    src = next(c.path for c in QUANT_CASES if c.name == "cnn_bn_pool")
    plain = modelport.convert(src, tmp_path / "f32")
    small = modelport.convert(src, tmp_path / "u8", quantize=["uint8"])
    shard_bytes = lambda r: sum(f["bytes"] for f in r.files if f["path"].endswith(".bin"))
    assert shard_bytes(small) * 3.5 < shard_bytes(plain)


def test_quantize_by_pattern(tmp_path, tfjs):
    case = next(c for c in QUANT_CASES if c.name == "mlp_sequential")
    modelport.convert(case.path, tmp_path / "web", quantize=["uint8:*/kernel", "float16:*/bias"])
    doc = tfjs_layers.load_model_json(tmp_path / "web" / "model.json")
    kinds = {w["name"]: (w.get("quantization") or {}).get("dtype")
             for g in doc["weightsManifest"] for w in g["weights"]}
    assert kinds and all(v == ("uint8" if n.endswith("/kernel") else "float16")
                         for n, v in kinds.items())
    result = tfjs.run_layers_model(tmp_path / "web" / "model.json", case.inputs)
    assert np.all(np.isfinite(result["arrays"][0]))


def pytest_terminal_summary_lines() -> list[str]:
    lines = ["TF.js quantized outputs vs the float model (real tfjs):",
             f"  {'case':40} {'dtype':8} {'max abs err':>12} {'rel. to range':>14}"]
    for r in QUANT_RESULTS:
        lines.append(f"  {r['case'] + ' ' + r['output']:40} {r['dtype']:8} "
                     f"{r['max_abs_error']:12.3g} {r['relative_to_range']:14.3g}")
    return lines


def _as_tfjs_hard_sigmoid(model):
    # What a converter that copies the name would write: tfjs's own hard_sigmoid.
    for layer in model.iter_layers():
        if layer.config.get("activation") == "hard_sigmoid":
            layer.config["activation"] = LEGACY_HARD_SIGMOID


def _int32_count(model):
    # TF.js has no int64 weights; a naive converter narrows the adapt() counter.
    for _, w in model.all_weights():
        if w.array.dtype == np.int64:
            w.array = w.array.astype(np.int32)


# Models modelport cannot even write unchecked: made writable the way a naive converter would.
_NAIVE = {"hard_sigmoid": _as_tfjs_hard_sigmoid, "normalization": _int32_count}

TRAP_CASES = [c for c in ALL_CASES if refusal(TFJS_REFUSED, c) and c.path.suffix == ".h5"
              and c.generation == "keras3"]


@pytest.mark.parametrize("case", case_params(TRAP_CASES))
def test_every_tfjs_refusal_is_a_real_trap(case, tmp_path, tfjs):
    """Written anyway (check=False), each refused model fails in real tfjs or computes
    something else: the refusal protects users from a real defect, not a guess."""
    web = tmp_path / "web"
    model = modelport.load(case.path)
    _NAIVE.get(case.name, lambda m: None)(model)
    tfjs_layers.write(model, web, check=False)
    try:
        result = tfjs.run_layers_model(web / "model.json", case.inputs)
    except tfjs.TfjsError as e:
        assert str(e), "tfjs failed without a message"
        return
    mismatched = []
    for (name, expected), actual in zip(case.outputs, result["arrays"]):
        if actual.shape != expected.shape or not np.allclose(actual, expected, atol=1e-4,
                                                              rtol=1e-3):
            mismatched.append(name)
    assert mismatched, f"tfjs ran {case.id} correctly: the refusal is unnecessary"


def test_reshape_minus_one_rewrite_is_needed_and_exact(tmp_path, tfjs):
    """tfjs cannot build layers after a Reshape with -1; the resolved form runs exactly."""
    import json as _json

    from modelport.formats import tfjs_manifest

    case = next(c for c in ALL_CASES if c.id == "keras3/reshape_permute_repeat.h5")
    model = modelport.load(case.path)
    raw = tmp_path / "raw"
    raw.mkdir()
    group = tfjs_manifest.write_group(raw, 0, [(n, w.array) for n, w in
                                               tfjs_layers.ordered_weights(model)])
    (raw / "model.json").write_text(_json.dumps(tfjs_layers.to_model_json(model, [group])))
    with pytest.raises(tfjs.TfjsError, match="positive integers"):
        tfjs.run_layers_model(raw / "model.json", case.inputs)
    report = modelport.convert(case.path, tmp_path / "web")
    assert report.rewrites == ["reshape_2: Reshape target_shape [-1] -> [36]"]
    result = tfjs.run_layers_model(tmp_path / "web" / "model.json", case.inputs)
    assert_close(result["arrays"][0], case.outputs[0][1])
