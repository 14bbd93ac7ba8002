"""Keras -> ONNX from the command line: the report, opsets and IR versions, the validate
command, exit codes, and naming the first diverging layer."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from modelport.cli import main
from modelport.converters.keras_to_onnx import LOWERINGS
from modelport.models.onnx_model import ir_version_for

from .conftest import FIXTURES

CNN = FIXTURES / "keras3" / "cnn_bn_pool.keras"
MLP = FIXTURES / "keras2" / "mlp_sequential.h5"


@pytest.mark.parametrize("opset", range(13, 22))
def test_every_opset_gets_its_ir_version_and_passes_the_checker(opset, tmp_path):
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(main, ["convert", str(CNN), str(out), "--opset", str(opset),
                                       "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    model = onnx.load(str(out))
    assert model.opset_import[0].version == opset
    assert model.ir_version == ir_version_for(opset) <= 10
    onnx.checker.check_model(model, full_check=True)
    assert doc["parity"]["passed"] and doc["onnx"]["transposes"] <= 2


def test_ir_versions_follow_onnx_releases():
    assert [ir_version_for(o) for o in (13, 15, 17, 19, 21)] == [7, 8, 8, 9, 10]


def test_convert_json_report_has_parity_statistics(tmp_path):
    result = CliRunner().invoke(main, ["convert", str(MLP), str(tmp_path / "m.onnx"), "--json",
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    out = doc["parity"]["outputs"][0]
    for key in ("max_abs", "max_rel", "mean_abs", "p99_abs", "cosine", "mismatched",
                "worst_index", "atol", "rtol"):
        assert key in out
    assert doc["parity"]["target_engine"] == "onnxruntime CPUExecutionProvider"
    assert doc["parity"]["source_engine"].startswith("keras-reference")
    assert out["cosine"] > 0.999999 and out["mismatched"] == 0


def test_channels_first_inputs(tmp_path):
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(main, ["convert", str(CNN), str(out), "--inputs-layout",
                                       "channels_first", "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    dims = [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [3, 16, 16]


def test_validate_command_passes_and_fails(tmp_path):
    out = tmp_path / "m.onnx"
    assert CliRunner().invoke(main, ["convert", str(MLP), str(out), "--no-validate", "-q"]
                              ).exit_code == 0
    ok = CliRunner().invoke(main, ["validate", str(MLP), str(out), "--device", "cpu"])
    assert ok.exit_code == 0 and "PASS" in ok.output, ok.output
    # Another model with the same interface: a real mismatch, exit code 6, and the statistics.
    other = tmp_path / "other.onnx"
    proto = onnx.load(str(out))
    for init in proto.graph.initializer:
        if init.name.endswith("bias"):
            arr = onnx.numpy_helper.to_array(init) + 0.5
            init.CopyFrom(onnx.numpy_helper.from_array(arr.astype(np.float32), init.name))
    onnx.save(proto, str(other))
    bad = CliRunner().invoke(main, ["validate", str(MLP), str(other), "--json", "--device",
                                    "cpu"])
    assert bad.exit_code == 6
    doc = json.loads(bad.output)
    assert doc["ok"] is False and doc["outputs"][0]["mismatched"] > 0
    assert doc["outputs"][0]["atol_needed"] > 0.1
    loose = CliRunner().invoke(main, ["validate", str(MLP), str(other), "--atol", "10"])
    assert loose.exit_code == 0


def test_inputs_file_and_seeded_embedding_indices(tmp_path):
    src = FIXTURES / "keras3" / "embedding_conv1d.keras"
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(main, ["convert", str(src), str(out), "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    npz = FIXTURES / "keras3" / "embedding_conv1d.npz"
    result = CliRunner().invoke(main, ["validate", str(src), str(out), "--inputs", str(npz),
                                       "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["inputs"]["file"] == str(npz)


def test_mismatch_names_the_first_diverging_layer(tmp_path, monkeypatch):
    from modelport.converters.keras_to_onnx import activations

    original = LOWERINGS.get("BatchNormalization")

    def wrong(ctx, call):  # a lowering bug: the shift is dropped
        out = original(ctx, call)[0]
        return [ctx.op("Add", out, ctx.scalar(0.25))]
    monkeypatch.setitem(LOWERINGS._table, "BatchNormalization", wrong)
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(main, ["convert", str(CNN), str(out), "--json", "--device",
                                       "cpu"])
    assert result.exit_code == 6, result.output
    doc = json.loads(result.output)
    first = doc["parity"]["first_divergence"]
    assert first["class"] == "BatchNormalization" and first["layer"] == "batch_normalization"
    assert out.exists()  # kept for inspection, and said so
    human = CliRunner().invoke(main, ["convert", str(CNN), str(out), "--force", "--device",
                                      "cpu"])
    assert "first diverging layer: batch_normalization (BatchNormalization)" in human.output
    assert "kept for inspection" in human.output
    del activations


def test_unsupported_layer_fails_up_front_naming_it(tmp_path):
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(main, ["convert", str(FIXTURES / "keras3" / "lambda_layer.h5"),
                                       str(out), "-q"])
    assert result.exit_code == 4
    assert "no ONNX lowering for: lambda (Lambda)" in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cuda_requested_but_unavailable_is_a_clear_error(tmp_path):
    from modelport.runtime.onnxruntime import cuda_usable

    if cuda_usable():
        pytest.skip("CUDA is usable here")  # the GPU test covers this machine
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(main, ["convert", str(MLP), str(out), "--device", "cuda"])
    assert result.exit_code == 4 and "CUDA provider cannot run here" in result.output
    assert not out.exists()


def test_inspect_onnx(tmp_path):
    out = tmp_path / "m.onnx"
    CliRunner().invoke(main, ["convert", str(CNN), str(out), "-q", "--no-validate"])
    result = CliRunner().invoke(main, ["inspect", str(out), "--json"])
    doc = json.loads(result.output)
    assert doc["format"] == "onnx" and doc["onnx"]["transposes"] == 1
    assert doc["inputs"][0]["shape"][1:] == [16, 16, 3] and doc["layers_by_class"]["Conv"] == 3


def test_external_data_is_standard_and_loads(tmp_path):
    """Models over 2 GB go to external data; the same code path, forced on a small model."""
    import modelport
    from modelport.converters.keras_to_onnx import lower
    from modelport.formats import onnx as onnx_format
    from modelport.runtime.engines import OnnxRuntime

    lowered = lower(modelport.load(CNN))
    out = onnx_format.write(lowered.model, tmp_path / "m.onnx", external=True)
    data = tmp_path / "m.onnx.data"
    proto = onnx.load(str(out), load_external_data=False)
    external = [t for t in proto.graph.initializer if t.external_data]
    locations = {e.value for t in external for e in t.external_data if e.key == "location"}
    assert locations == {"m.onnx.data"}
    assert data.stat().st_size >= sum(  # every tensor of 1 kB and more lives in the data file
        np.prod(t.dims) * 4 for t in external) > 0
    assert all(np.prod(t.dims) * 4 < 1024 for t in proto.graph.initializer if not t.external_data)
    onnx.checker.check_model(str(out), full_check=True)
    x = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype(np.float32)
    inline = tmp_path / "inline.onnx"
    onnx_format.write(lowered.model, inline)
    assert inline.stat().st_size > data.stat().st_size
    a = OnnxRuntime(out, device="cpu").run([x])[0]
    b = OnnxRuntime(inline, device="cpu").run([x])[0]
    assert np.array_equal(a, b)


def test_a_failing_kernel_is_reported_once_without_onnxruntime_log_lines(capfd):
    """onnxruntime logs a kernel's failure (a coloured '[E:onnxruntime:...]' line on stderr)
    before raising it; modelport reports the error itself, so the log line is silenced."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from modelport.errors import ModelportError
    from modelport.runtime.onnxruntime import session

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "k"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ones((3, 3), np.float32), "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    s = session(model.SerializeToString(), device="cpu")
    with pytest.raises(ModelportError, match="onnxruntime failed to run the model: .*MatMul"):
        s.run({"x": np.ones((1, 4), np.float32)})
    assert "onnxruntime:" not in capfd.readouterr().err


def test_parity_check_refuses_an_onnx_value_past_its_memory_cap():
    """A constant Pad of 2**31 columns: ONNX shape inference sizes the value before
    onnxruntime would allocate 8 GiB for it; the same graph with a small pad is let through."""
    import numpy as np
    import onnx_ir as ir
    from onnx import TensorProto, helper, numpy_helper

    from modelport.check.validate import _check_sizes
    from modelport.errors import UnsupportedError

    def model(columns: int):
        graph = helper.make_graph(
            [helper.make_node("Pad", ["x", "pads"], ["y"], name="pad")], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [numpy_helper.from_array(np.array([0, 0, 0, columns], np.int64), "pads")])
        return ir.from_proto(helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8))

    feed = [np.zeros((2, 4), np.float32)]
    _check_sizes(model(3), ["x"], feed)
    with pytest.raises(UnsupportedError, match=r"would hold 4294967304 elements in 'y' "
                                               r"\(shape \[2, 2147483652\]\)"):
        _check_sizes(model(2**31), ["x"], feed)
