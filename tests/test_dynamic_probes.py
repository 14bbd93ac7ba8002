"""Parity inputs for free dims (issue 18 point 5, finding 6): the check sizes them as the
model's strides and pools allow, tries more than one size, and when none runs refuses with exit
4 naming the input and ``--input-shape`` / ``--inputs`` — never exit 3 on a valid file."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from click.testing import CliRunner

from modelport import api
from modelport.check import probes, sizes
from modelport.cli import main
from modelport.errors import UnsupportedError
from modelport.runtime.engines import InputSpec

from .dynamic_models import big_pool, fixed_flatten, shape_cnn


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dyn")
    paths = {}
    for name, make in (("pool", big_pool), ("flat", fixed_flatten), ("cnn", shape_cnn)):
        paths[name] = folder / f"{name}.onnx"
        onnx.save(make(), str(paths[name]))
    return paths


def _cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_sizes_follow_strides_and_windows(models):
    # stride 2 then a pool of 8 at stride 8: the total stride is 16, the window 8
    assert sizes.candidates(ir.load(str(models["pool"])))[0] == 16
    assert sizes.candidates(ir.load(str(models["cnn"])))[0] == 8
    assert len(sizes.candidates(ir.load(str(models["cnn"])))) > 1


def test_metadata_size_comes_first(models):
    model = ir.load(str(models["cnn"]))
    model.metadata_props["imgsz"] = "[96, 96]"
    assert sizes.candidates(model)[0] == 96


def test_probes_take_pinned_dims_then_the_free_size():
    spec = InputSpec("x", [None, 3, None, None], "float32")
    made = probes.seeded_probes([spec], batch=None, seed=0, pinned={"x": (2, 3, 5, None)},
                                free=16)
    assert made[0].arrays[0].shape == (2, 3, 5, 16)
    assert probes.free_dims([spec], {"x": (2, 3, 5, None)}) == {"x": [3]}
    assert probes.free_dims([spec], {"x": (2, 3, 5, 7)}) == {}


def test_a_pool_larger_than_the_default_size_is_checked_at_one_it_fits(models, tmp_path):
    """Finding 6: 8x8 is too small for this pool (the TF reference used to raise exit 3)."""
    graph = tmp_path / "pool_graph"
    code, out = _cli("convert", models["pool"], graph, "-q", "--engine", "reference",
                     "--json")
    assert code == 0, out
    assert json.loads(out)["parity"]["inputs"]["shapes"]["x"][2:] == [16, 16]
    # the graph-model as the source: it runs in the NumPy TF reference
    code, out = _cli("convert", graph, tmp_path / "back.onnx", "-q", "--json")
    assert code == 0, out
    shapes = json.loads(out)["parity"]["inputs"]["shapes"]
    assert list(shapes.values())[0][2:] == [16, 16], shapes


def test_no_runnable_size_is_exit_4_naming_the_input_and_the_flags(models, tmp_path):
    code, out = _cli("convert", models["flat"], tmp_path / "flat_graph", "-q",
                     "--engine", "reference")
    assert code == UnsupportedError.exit_code, out
    assert "'x'" in out and "tried 8, 16, 32" in out, out
    assert "--input-shape x=" in out and "--inputs" in out, out
    code, out = _cli("validate", models["flat"], models["flat"])
    assert code == UnsupportedError.exit_code and "--input-shape" in out, out


def test_pinned_sizes_run_where_guesses_do_not(models, tmp_path):
    code, out = _cli("validate", models["flat"], models["flat"], "--input-shape",
                     "x=2,1,37,37", "--json")
    assert code == 0, out
    assert json.loads(out)["inputs"]["shapes"] == {"x": [2, 1, 37, 37]}
    code, out = _cli("convert", models["flat"], tmp_path / "pinned", "-q", "--engine",
                     "reference", "--input-shape", "x=1,1,37,74", "--json")
    assert code == 0, out
    assert json.loads(out)["parity"]["inputs"]["shapes"] == {"x": [1, 1, 37, 74]}
    # a graph-model that keeps the free dims, checked at sizes given to validate
    code, out = _cli("convert", models["flat"], tmp_path / "free", "-q", "--no-validate")
    assert code == 0, out
    report = api.validate(models["flat"], tmp_path / "free", engine="reference",
                          input_shapes={"x": (3, 1, 74, 37)})
    assert report.passed and report.inputs["shapes"]["x"] == [3, 1, 74, 37]


def test_batch_keeps_its_meaning_in_validate(models):
    report = api.validate(models["cnn"], models["cnn"], batch=3)
    assert report.inputs["batch"] == 3
    x = report.inputs["shapes"]["x"]
    assert x[0] == 3 and x[1] == 3 and np.all(np.asarray(x[2:]) >= 8)


def test_a_size_onnxruntime_runs_but_tf_cannot_is_skipped(models, tmp_path, monkeypatch):
    """onnxruntime gives a pool larger than its input an output, TF none: the check skips
    such a size for an ONNX source (shape inference finds it) instead of failing the result."""
    import modelport.check.validate as validate_module

    monkeypatch.setattr(validate_module, "candidates", lambda model: [8, 16])
    report = api.convert(models["pool"], tmp_path / "g", engine="reference")
    assert report.passed and report.parity.inputs["shapes"]["x"][2:] == [16, 16]
