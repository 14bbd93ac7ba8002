"""Files written by the real TF.js converter (tensorflowjs 4.22): modelport reads them, and
fixes the ones tfjs itself cannot load (the converter's output for Keras 3 .keras sources)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import modelport
from modelport.check.readback import compare

from ..conftest import FIXTURES, _npz_io, assert_close

MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())["tfjs_converter"]["models"]
CASES = sorted(MANIFEST)


def _source(name: str):
    entry = MANIFEST[name]
    src = FIXTURES / entry["source"]
    ins, outs = _npz_io(src.with_name(src.name.rsplit(".", 1)[0] + ".npz"))
    return src, entry, ins, outs


@pytest.mark.parametrize("name", CASES)
def test_converter_files_read_with_tfjs_dequantization(name):
    src, entry, _, _ = _source(name)
    theirs = modelport.load(FIXTURES / "tfjs_converter" / name)
    keras = modelport.load(src)
    check = compare(keras, theirs)
    assert check.first_difference is None
    for (_, a), (_, b) in zip(keras.all_weights(), theirs.all_weights()):
        q = b.quantization
        if q is None:
            assert a.array.tobytes() == b.array.tobytes()
        elif q["dtype"] == "float16":
            assert np.array_equal(a.array.astype(np.float16).astype(np.float32), b.array)
        else:
            assert np.max(np.abs(a.array - b.array)) <= q["scale"] / 2 + 1e-7
    assert bool(entry["quantization"]) == bool(check.quantized)


@pytest.mark.parametrize("name", [n for n in CASES if MANIFEST[n]["source"].endswith(".h5")])
def test_reconverted_files_compute_what_the_converters_files_compute(name, tmp_path, tfjs):
    src, _, ins, _ = _source(name)
    original = tfjs.run_layers_model(FIXTURES / "tfjs_converter" / name / "model.json", ins)
    modelport.convert(FIXTURES / "tfjs_converter" / name, tmp_path / "web", shard_size=4096)
    mine = tfjs.run_layers_model(tmp_path / "web" / "model.json", ins)
    for a, b in zip(mine["arrays"], original["arrays"]):
        assert_close(a, b, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", [n for n in CASES if MANIFEST[n]["source"].endswith(".keras")])
def test_modelport_fixes_converter_output_for_keras3_sources(name, tmp_path, tfjs):
    src, entry, ins, outs = _source(name)
    broken = FIXTURES / "tfjs_converter" / name / "model.json"
    with pytest.raises(tfjs.TfjsError):
        tfjs.run_layers_model(broken, ins)  # what TF.js users hit today
    report = modelport.convert(broken.parent, tmp_path / "web")
    assert report.dialect == "keras3"
    fixed = tfjs.run_layers_model(tmp_path / "web" / "model.json", ins)
    tol = 2e-2 if entry["quantization"] else 1e-4  # float16 weights in the converter's file
    for (label, expected), actual in zip(outs, fixed["arrays"]):
        assert_close(actual, expected, atol=tol, rtol=tol, what=f"{name} {label}")


# --- graph-models written by tensorflowjs_converter (fixtures/tfjs_converter/graph) ----------

GRAPH_ORACLE = FIXTURES / "tfjs_converter" / "graph"
GRAPH_CASES = json.loads((GRAPH_ORACLE / "cases.json").read_text())["cases"]
# what real tfjs ran when the oracle was made (others: tfjs's own error or NaN, in cases.json);
# quantized cases are as far from Keras as their quantization, and run all the same
TFJS_RUNS = sorted(n for n, e in GRAPH_CASES.items()
                   if all(isinstance(d, float) and (d <= 1e-5 or e.get("quantization"))
                          for d in e["tfjs_max_abs"]))


def test_graph_oracle_runs_in_tfjs_and_converts_to_what_tfjs_computes(tmp_path, tfjs):
    """Real tfjs runs each converter-written graph-model; modelport's ONNX of it computes the
    same under onnxruntime (the cases modelport cannot convert yet are listed in
    tests/test_tfjs_converter_graphs.py GAPS)."""
    from modelport.runtime import tfjs_node

    from ..test_tfjs_converter_graphs import GAPS, onnx_outputs

    names = [n for n in TFJS_RUNS if n not in GAPS]
    assert len(names) >= 15
    jobs = []
    for name in names:
        entry = GRAPH_CASES[name]
        with np.load(GRAPH_ORACLE / name / "io.npz") as data:
            feeds = [(entry["signature_inputs"][key], data[f"input:{i}"])
                     for i, key in enumerate(entry["input_order"])]
        jobs.append(tfjs_node.GraphJob(GRAPH_ORACLE / name / "model.json", feeds,
                                       [entry["signature_outputs"][k]
                                        for k in entry["output_order"]]))
    for name, result in zip(names, tfjs_node.run_graph_batch(jobs)):
        assert result.error is None, (name, result.error)
        out = tmp_path / f"{name}.onnx"
        modelport.convert(GRAPH_ORACLE / name, out, validate=False)
        mine, _ = onnx_outputs(name, out)
        for k, (a, b) in enumerate(zip(mine, result.outputs)):
            assert_close(a, b, atol=2e-5, rtol=1e-4, what=f"{name} output {k}")


@pytest.mark.parametrize("name", ["conv1d_k3", "dilated_cnn_h5", "dilated_depthwise_k3",
                                  "multi_output_frozen"])
def test_graph_oracle_raised_to_keras_runs_in_keras3(name, tmp_path, keras3):
    """A converter-written graph-model raised to .keras (through ONNX: dilated convs, Conv1D,
    a frozen signature) loads in real Keras 3 and computes what the source Keras model did."""
    from modelport.formats import tfjs_graph

    entry = GRAPH_CASES[name]
    dst = tmp_path / "model.keras"
    modelport.convert(GRAPH_ORACLE / name, dst)
    model = keras3.saving.load_model(dst, compile=False)
    with np.load(GRAPH_ORACLE / name / "io.npz") as data:
        xs = [data[f"input:{i}"] for i in range(len(entry["input_order"]))]
        wants = [data[f"output:{i}"] for i in range(len(entry["output_order"]))]
    ys = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    ys = ys if isinstance(ys, (list, tuple)) else [ys]
    keys = [o.key for o in tfjs_graph.read(GRAPH_ORACLE / name).outputs]  # the model's order
    assert len(ys) == len(wants)
    for key, y in zip(keys, ys):
        k = entry["output_order"].index(key)
        assert_close(np.asarray(y), wants[k], atol=2e-5, rtol=1e-4, what=f"{name} {key}")
