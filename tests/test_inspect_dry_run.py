"""Issue 18 point 7: ``inspect`` is a dry run of ``convert``.

For every model file under fixtures/ (a bounded, deterministic set by default; every file with
MODELPORT_DRY_RUN_ALL=1) and every target, ``inspect``'s verdict ("yes" or a refusal) equals the
outcome of ``convert --no-validate`` into a temporary folder: the same planning code decides
both (``api.planning``, ``api.core.plan``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import modelport
from modelport.errors import ModelportError
from modelport.formats import sniff

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ALL = os.environ.get("MODELPORT_DRY_RUN_ALL") == "1"


def _model_files() -> list[Path]:
    """Every model file or folder under fixtures/ (weights-only files are not models)."""
    found: list[Path] = []
    for path in sorted(FIXTURES.rglob("*")):
        rel = path.relative_to(FIXTURES)
        if rel.parts[0] == "weights_only" or path.name.endswith(".weights.h5"):
            continue  # weights without a model (test_weights_only.py)
        model_file = path.is_file() and path.suffix in (".h5", ".keras", ".onnx")
        # a TF.js model, or an unzipped .keras
        model_folder = path.is_dir() and any((path / n).is_file()
                                             for n in ("model.json", "config.json"))
        if model_file or model_folder:
            found.append(path)
    return found


def _bounded(files: list[Path]) -> list[Path]:
    """One in a few per folder (every file of the small folders), so the default run stays
    short; the files where inspect used to disagree with convert are always in."""
    always = {"subtract.h5", "conv1d_causal.h5", "upsampling_bilinear.h5", "lambda_layer.h5",
              "gap_keepdims.h5", "hard_sigmoid.keras", "conv1d_causal.onnx",
              "upsampling_bilinear.onnx", "subtract.onnx", "cnn_uint8", "recurrent_uint8",
              "bert.torchscript.static.onnx"}
    by_folder: dict[Path, list[Path]] = {}
    for f in files:
        by_folder.setdefault(f.parent, []).append(f)
    picked = []
    for folder, items in by_folder.items():
        if folder.name == "applications":
            continue  # ImageNet models: minutes per route; MODELPORT_DRY_RUN_ALL=1 has them
        step = 1 if len(items) <= 12 else max(1, len(items) // 6)
        picked += [f for i, f in enumerate(items) if i % step == 0 or f.name in always]
    return picked


FILES = _model_files() if ALL else _bounded(_model_files())


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(FIXTURES)) for p in FILES])
def test_inspect_says_what_convert_does(path, tmp_path):
    info = modelport.inspect(path, validate=False)  # as convert --no-validate: no check to size
    for name in sniff.TARGETS:
        dst = tmp_path / f"out-{name}" / ("m.h5" if name == "h5" else "m.keras"
                                          if name == "keras" else "m.onnx" if name == "onnx"
                                          else "web")
        dst.parent.mkdir()
        try:
            modelport.convert(path, dst, to=name, validate=False)
            outcome: str | None = None
        except ModelportError as e:
            outcome = str(e)
        except Exception as e:  # noqa: BLE001 - an internal error (exit 70): inspect says no too
            outcome = f"internal error: {type(e).__name__}: {e}"
        verdict = info.targets[name]
        assert verdict.ok == (outcome is None), (
            f"{name}: inspect says {'yes' if verdict.ok else 'no'} "
            f"({verdict.note or [b.reason for b in verdict.blockers]}); convert: "
            f"{outcome or 'converted'}")


def test_inspect_of_an_onnx_model_counts_constant_weights_and_names_no_dialect():
    path = FIXTURES / "tf2onnx" / "conv1d_causal.onnx"
    info = modelport.inspect(path)
    assert info.dialect is None and info.format == "onnx"
    assert info.parameters > 0
    doc = info.to_dict()
    assert doc["onnx"]["ir_version"] and doc["onnx"]["opsets"]


def test_inspect_counts_weights_held_in_constant_nodes(tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "w")
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["w"], value=w),
         helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "c.onnx")
    info = modelport.inspect(tmp_path / "c.onnx")
    assert info.parameters == 12 and info.weight_bytes == 48


def test_inspect_text_has_no_none_dialect():
    from click.testing import CliRunner

    from modelport.cli import main

    for path in (FIXTURES / "tf2onnx" / "conv1d_causal.onnx", FIXTURES / "tfjs_graph" / "cnn"):
        result = CliRunner().invoke(main, ["inspect", str(path)])
        assert result.exit_code == 0, result.output
        assert "None dialect" not in result.output
        assert "not supported yet" not in result.output
