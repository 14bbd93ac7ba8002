"""A typed library: ``load`` returns the declared union, ``validate`` has its real signature,
``inspect`` and ``convert`` return typed objects whose ``to_dict()`` is exactly the CLI's
``--json`` and whose ``to_json()`` is a JSON string (as the README prints it); the option
objects check their values as they are built; the package ships ``py.typed``."""

from __future__ import annotations

import inspect as pyinspect
import json
import typing
from pathlib import Path

import pytest
from click.testing import CliRunner

import modelport
from modelport.api import ConversionReport, ConvertOptions, Inspection
from modelport.api.report import KerasDetails, OnnxDetails, TfjsGraphDetails
from modelport.check.parity import ParityReport
from modelport.check.readback import Quantization, ReadbackCheck
from modelport.cli import main

from .conftest import FIXTURES, ROOT

H5 = FIXTURES / "keras3" / "mlp_sequential.h5"
CNN = FIXTURES / "keras3" / "cnn_bn_pool.keras"
GRAPH = FIXTURES / "tfjs_graph" / "dense"


def _cli_json(*args: object) -> dict:
    result = CliRunner().invoke(main, [*map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _without_seconds(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("seconds", "ok")}


def test_exports():
    for name in ("ParityReport", "Tolerances", "TfjsGraph", "UsageError", "ConvertOptions",
                 "CheckOptions", "Inspection", "ConversionReport", "Model", "ReadbackCheck",
                 "Quantization"):
        assert name in modelport.__all__ and hasattr(modelport, name), name
    assert issubclass(modelport.UsageError, modelport.ModelportError)
    assert modelport.UsageError.exit_code == 2


def test_py_typed_is_shipped():
    assert (Path(modelport.__file__).parent / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"modelport" = ["py.typed"]' in pyproject


def test_load_returns_the_declared_union_and_validate_has_its_real_signature():
    assert typing.get_type_hints(modelport.load)["return"] == modelport.Model
    assert isinstance(modelport.load(H5), modelport.LayersModel)
    kinds = {p.kind for p in pyinspect.signature(modelport.validate).parameters.values()}
    assert pyinspect.Parameter.VAR_POSITIONAL not in kinds
    assert pyinspect.Parameter.VAR_KEYWORD not in kinds
    hints = typing.get_type_hints(modelport.validate)
    assert hints["return"] is ParityReport
    assert {"tolerances", "device", "inputs", "batch", "seed", "per_layer", "engine"} <= \
        set(hints)


def test_onnx_report_is_typed_and_its_json_is_the_clis(tmp_path):
    report = modelport.convert(CNN, tmp_path / "lib.onnx", device="cpu")
    assert isinstance(report, ConversionReport)
    assert isinstance(report.parity, ParityReport) and report.parity.passed and report.passed
    assert report.parity.outputs[0].mismatched == 0
    assert isinstance(report.onnx, OnnxDetails) and report.onnx.opset == 17
    assert report.check is None and report.keras is None and report.tfjs_graph is None
    text = report.to_json()
    assert isinstance(text, str) and json.loads(text) == report.to_dict()
    cli = _cli_json("convert", CNN, tmp_path / "cli.onnx", "--device", "cpu")
    mine = report.to_dict()
    for doc in (mine, cli):  # the paths differ by name only
        doc["destination"] = Path(doc["destination"]).suffix
        doc["files"] = [Path(f["path"]).suffix for f in doc["files"]]
        doc["parity"]["target"] = Path(doc["parity"]["target"]).suffix
    assert _without_seconds(mine) == _without_seconds(cli)
    assert list(mine) == [k for k in cli if k != "ok"]  # the same keys, in the same order


def test_read_back_report_is_typed(tmp_path):
    report = modelport.convert(H5, tmp_path / "web", quantize=["uint8"])
    assert isinstance(report.check, ReadbackCheck)
    assert report.check.structure_equal and report.check.weights_compared > 0
    assert report.check.quantized == report.quantization.total > 0
    assert isinstance(report.quantization, Quantization)
    assert report.quantization.by_dtype == {"uint8": report.check.quantized}
    # quantized weights cannot read back exactly: their effect on the outputs is checked
    assert report.parity is not None and report.parity.passed and report.passed
    assert all(o.quantization > 0 for o in report.parity.outputs)
    doc = report.to_dict()
    assert doc["check"]["weights_compared"] == report.check.weights_compared
    assert doc["quantization"] == {"uint8": report.check.quantized}
    assert doc["parity"]["passed"] and doc["onnx"] is None
    assert all(set(f) == {"path", "bytes"} for f in report.files)


def test_raised_and_graph_reports_are_typed(tmp_path):
    onnx_path = tmp_path / "m.onnx"
    modelport.convert(CNN, onnx_path, validate=False)
    raised = modelport.convert(onnx_path, tmp_path / "m.h5", device="cpu")
    assert isinstance(raised.keras, KerasDetails) and raised.keras.inputs_layout == \
        "channels_last"
    assert raised.check is not None and raised.parity is not None and raised.parity.passed
    graph = modelport.convert(onnx_path, tmp_path / "web", engine="reference", device="cpu")
    assert isinstance(graph.tfjs_graph, TfjsGraphDetails) and graph.tfjs_graph.nodes > 0
    assert graph.to_dict()["tfjs_graph"] == {"nodes": graph.tfjs_graph.nodes,
                                             "transposes": graph.tfjs_graph.transposes,
                                             "execute_async": []}  # a plain CNN needs none


@pytest.mark.parametrize("src", [H5, GRAPH, "onnx"])
def test_inspect_is_typed_and_its_json_is_the_clis(src, tmp_path):
    if src == "onnx":
        src = tmp_path / "m.onnx"
        modelport.convert(CNN, src, validate=False)
    info = modelport.inspect(src)
    assert isinstance(info, Inspection)
    assert info.layers > 0 and info.inputs and info.targets
    assert _without_seconds(_cli_json("inspect", src)) == info.to_dict()
    assert isinstance(info.inputs[0].name, str)


def test_validate_returns_a_typed_report(tmp_path):
    out = tmp_path / "m.onnx"
    modelport.convert(H5, out, validate=False)
    report = modelport.validate(H5, out, device="cpu", batch=3, seed=1)
    assert isinstance(report, ParityReport) and report.passed
    assert report.inputs["batch"] == 3 and report.inputs["seed"] == 1
    assert json.loads(report.to_json()) == report.to_dict()


def test_convert_with_option_objects(tmp_path):
    options = ConvertOptions(opset=15, inputs_layout="channels_first")
    check = modelport.CheckOptions(device="cpu")
    report = modelport.convert_with(CNN, tmp_path / "m.onnx", options, check)
    assert report.onnx is not None and report.onnx.opset == 15
    assert report.onnx.inputs_layout == "channels_first"


@pytest.mark.parametrize("build,says", [
    (lambda: ConvertOptions(opset=99), "--opset: opset 99 is outside"),
    (lambda: ConvertOptions(to="pb"), "--to 'pb'"),
    (lambda: ConvertOptions(shard_size=0), "--shard-size 0"),
    (lambda: ConvertOptions(inputs_layout="nchw"), "--inputs-layout 'nchw'"),
    (lambda: modelport.CheckOptions(device="tpu"), "--device 'tpu'"),
    (lambda: modelport.CheckOptions(engine="webgl"), "--engine 'webgl'"),
    (lambda: modelport.CheckOptions(batch=0), "--batch 0"),
])
def test_option_objects_check_their_values(build, says):
    with pytest.raises(modelport.UsageError, match=says.replace("(", r"\(")):
        build()


def test_options_are_frozen_and_resolve_once():
    options = ConvertOptions()
    assert options.onnx_opset == 17 and options.given() == {}
    with pytest.raises(AttributeError):
        options.opset = 13  # type: ignore[misc]  # frozen: the assignment is the test


def test_library_usage_errors(tmp_path):
    with pytest.raises(modelport.UsageError, match="--quantize does not apply"):
        modelport.convert(H5, tmp_path / "m.keras", quantize=["uint8"])
    with pytest.raises(modelport.UsageError, match="--inputs-layout channels_first"):
        modelport.convert(H5, tmp_path / "m.keras", channels_first_inputs=True)
    with pytest.raises(modelport.UsageError, match="--quantize: unknown quantization"):
        modelport.save(modelport.load(H5), tmp_path / "web", quantize=["int4"])
    with pytest.raises(modelport.UsageError, match="--quantize does not apply"):
        modelport.save(modelport.load(H5), tmp_path / "m.h5", quantize=["uint8"])
    assert list(tmp_path.iterdir()) == []
    # and what applies still works
    assert modelport.save(modelport.load(H5), tmp_path / "web", quantize=["uint8"],
                          shard_size=1000).name == "model.json"
