"""ONNX external data: the code paths of models over protobuf's 2 GB limit, exercised every run
on a small model (written with ``external=True``), and the real thing, a model over 2 GB built
and converted, only when asked: ``pytest -m large`` or ``MODELPORT_LARGE=1`` (deselected
otherwise, see conftest.py, so it never shows up as a skip)."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from modelport.cli import main
from modelport.errors import OutputError, OutputExistsError
from modelport.formats import onnx as onnx_format


def _small_model():
    """x[1,64] @ W[64,32] + b -> y: W (8 kB) is over the external-data threshold, b is not."""
    import onnx_ir as ir

    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 32)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
        "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return ir.from_proto(proto), {"W": w, "b": b}


def _initializers(model) -> dict[str, np.ndarray]:
    return {v.name: v.const_value.numpy() for v in model.graph.initializers.values()}


def test_external_data_is_written_and_read_back(tmp_path):
    model, arrays = _small_model()
    out = onnx_format.write(model, tmp_path / "m.onnx", external=True)
    # exactly the model and its data file: no staging leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]
    proto = onnx.load(str(out), load_external_data=False)
    external = {t.name: {e.key: e.value for e in t.external_data}
                for t in proto.graph.initializer if t.data_location == TensorProto.EXTERNAL}
    assert set(external) == {"W"} and external["W"]["location"] == "m.onnx.data"
    assert (tmp_path / "m.onnx.data").stat().st_size >= arrays["W"].nbytes

    back = _initializers(onnx_format.read(out))  # through the location/range/link checks
    assert all(np.array_equal(back[k], v) for k, v in arrays.items())

    # the location is relative: the folder can move
    moved = shutil.copytree(tmp_path, tmp_path.parent / (tmp_path.name + "-moved"))
    assert np.array_equal(_initializers(onnx_format.read(moved / "m.onnx"))["W"], arrays["W"])


def test_external_data_through_the_cli(tmp_path):
    model, _ = _small_model()
    src = onnx_format.write(model, tmp_path / "m.onnx", external=True)
    result = CliRunner().invoke(main, ["inspect", str(src), "--json"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["convert", str(src), str(tmp_path / "copy.onnx"), "-q",
                                       "--no-validate"])
    assert result.exit_code == 0, result.output
    assert np.array_equal(_initializers(onnx_format.read(tmp_path / "copy.onnx"))["W"],
                          _initializers(onnx_format.read(src))["W"])


def test_existing_external_data_file_is_not_replaced_without_force(tmp_path):
    model, _ = _small_model()
    (tmp_path / "m.onnx.data").write_bytes(b"someone else's data")
    with pytest.raises(OutputExistsError, match=r"m\.onnx\.data: the external data file exists"):
        onnx_format.write(model, tmp_path / "m.onnx", external=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx.data"]
    assert (tmp_path / "m.onnx.data").read_bytes() == b"someone else's data"
    onnx_format.write(model, tmp_path / "m.onnx", external=True, force=True)
    assert onnx_format.read(tmp_path / "m.onnx") is not None


def test_failed_external_write_leaves_nothing(tmp_path, monkeypatch):
    model, _ = _small_model()
    real_save = onnx_format.ir.save

    def save_then_fail(*args, **kwargs):
        real_save(*args, **kwargs)  # both files complete in staging...
        raise OSError(28, "No space left on device")  # ...and then the disk fills up

    monkeypatch.setattr(onnx_format.ir, "save", save_then_fail)
    with pytest.raises(OutputError, match=r"m\.onnx: cannot write the result \(No space left"):
        onnx_format.write(model, tmp_path / "m.onnx", external=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.large
def test_model_over_2gb_converts_to_onnx_with_external_data(tmp_path):
    """A Keras model with 2 GiB + 2 MB of weights (Dense 16384 -> 32768 -> 16 -> 3) goes to
    ONNX and is validated: the weights land in the external data file, the .onnx stays small."""
    import modelport

    from .conftest import FIXTURES

    model = modelport.load(FIXTURES / "keras3" / "mlp_sequential.h5")
    rng = np.random.default_rng(0)
    inputs, hidden = 16384, 32768
    model.layers[0].config["batch_shape"] = [None, inputs]
    dense, dense_1 = model.layers[1], model.layers[2]
    dense.config["units"] = hidden
    dense.weights[0].array = (rng.standard_normal((inputs, hidden), dtype=np.float32)
                              * np.float32(inputs ** -0.5))
    dense.weights[1].array = np.zeros(hidden, np.float32)
    dense_1.weights[0].array = rng.standard_normal((hidden, 16), dtype=np.float32) * np.float32(
        hidden ** -0.5)
    assert model.weight_bytes() > 2 * 1024**3
    src = modelport.save(model, tmp_path / "big.h5")
    del model, dense, dense_1  # one copy of the weights at a time

    dst = tmp_path / "big.onnx"
    result = CliRunner().invoke(main, ["convert", str(src), str(dst), "-q", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    data = tmp_path / "big.onnx.data"
    assert data.stat().st_size > 2 * 1024**3 > dst.stat().st_size
    shapes = {v.name: tuple(v.const_value.shape) for v in
              onnx_format.read(dst).graph.initializers.values()}
    assert (inputs, hidden) in shapes.values()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.h5", "big.onnx", "big.onnx.data"]


def test_convert_does_not_replace_a_data_file_next_to_dst_without_force(tmp_path, monkeypatch):
    model, _ = _small_model()
    (tmp_path / "src").mkdir()
    src = onnx_format.write(model, tmp_path / "src" / "m.onnx", external=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "copy.onnx.data").write_bytes(b"someone else's data")
    # Every model goes external from here on, as one over 2 GB would.
    monkeypatch.setattr(onnx_format, "PROTOBUF_LIMIT", (64 << 20) + 1)
    args = ["convert", str(src), str(out / "copy.onnx"), "-q", "--no-validate"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 5, result.output
    assert "copy.onnx.data" in result.output and "exists" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["copy.onnx.data"]
    assert (out / "copy.onnx.data").read_bytes() == b"someone else's data"
    result = CliRunner().invoke(main, [*args, "--force"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["copy.onnx", "copy.onnx.data"]
    assert np.array_equal(_initializers(onnx_format.read(out / "copy.onnx"))["W"],
                          _initializers(onnx_format.read(src))["W"])


def test_validation_after_a_conversion_reads_no_second_copy_of_the_weights(tmp_path,
                                                                             monkeypatch):
    """The check of an .onnx just written hands the file to onnxruntime and does not read its
    weights itself (the NaN/Inf scan would map a second copy of them: 8.5 GB instead of 4.3 GB
    peak for a 2.1 GB model). The user-facing `validate` still scans the file it is given."""
    import modelport
    from modelport.formats import checks

    from .conftest import FIXTURES

    scanned: list[str] = []
    original = checks.warn_non_finite

    def record(items, *, file=None):
        scanned.append(str(file))
        return original(items, file=file)

    monkeypatch.setattr(checks, "warn_non_finite", record)
    dst = tmp_path / "m.onnx"
    report = modelport.convert(FIXTURES / "keras3" / "mlp_sequential.h5", dst)
    assert report.parity.passed
    assert str(dst) not in scanned
    modelport.validate(FIXTURES / "keras3" / "mlp_sequential.h5", dst)
    assert str(dst) in scanned
