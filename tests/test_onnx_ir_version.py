"""ONNX of any IR version the ``onnx`` package reads converts, and its check runs (issue 18,
point 3): onnx >= 1.23 stamps IR 14 on what it writes by default, which onnxruntime 1.31
refuses ("Unsupported model IR version: 14, max 13"); that ended in exit 1 with the reason cut
off. onnxruntime now runs such a model re-stamped with the newest IR version it reads (the
same model: its opset belongs to an older IR version), outputs are written with the IR version
their contents need, and a model onnxruntime cannot load is an error with its whole reason.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.cli import main
from modelport.errors import UnsupportedError
from modelport.runtime.onnxruntime import reason, session


def _conv_model(ir_version: int | None = None) -> onnx.ModelProto:
    w = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["y"])], "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [w])
    kwargs = {} if ir_version is None else {"ir_version": ir_version}
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], **kwargs)


def test_onnx_writes_a_newer_ir_version_than_onnxruntime_reads():
    """The premise: what this onnx writes by default is refused as it is."""
    import onnxruntime as ort

    model = _conv_model()
    if model.ir_version <= 13:
        pytest.skip(f"onnx {onnx.__version__} stamps IR {model.ir_version}")
    try:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime's own types
        assert "IR version" in str(e)
    else:
        pytest.skip(f"onnxruntime {ort.__version__} reads IR {model.ir_version}")


@pytest.mark.parametrize("to", ["onnx", "tfjs-graph", "keras"])
def test_newest_ir_version_converts_with_its_check(tmp_path, to):
    src = tmp_path / "newest_ir.onnx"
    onnx.save(_conv_model(), src)  # onnx's default stamp
    dst = tmp_path / ("out.onnx" if to == "onnx" else "out.keras" if to == "keras" else "out")
    result = CliRunner().invoke(main, ["convert", str(src), str(dst), "--to", to])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    if to == "onnx":
        assert onnx.load(str(dst)).ir_version == 8  # opset 17's IR version


def test_newest_ir_version_with_external_data_runs(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    onnx.save(_conv_model(), folder / "m.onnx", save_as_external_data=True,
              all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    report = modelport.convert(folder / "m.onnx", tmp_path / "out.onnx")
    assert report.parity is not None and report.parity.passed
    x = np.ones((1, 3, 8, 8), np.float32)
    np.testing.assert_array_equal(session(folder / "m.onnx", device="cpu").run({"x": x})[0],
                                  session(tmp_path / "out.onnx", device="cpu").run({"x": x})[0])


def test_a_model_onnxruntime_cannot_load_is_refused_with_the_whole_reason():
    # a well-formed model of an op domain onnxruntime has no kernels for
    graph = helper.make_graph(
        [helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")], "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example", 1)],
                              ir_version=8)
    with pytest.raises(UnsupportedError) as info:
        session(model.SerializeToString(), device="cpu")
    message = info.value.message
    assert "Frobnicate" in message and "onnxruntime_src" not in message, message
    assert info.value.exit_code == 4


def test_reason_keeps_the_message_and_drops_the_source_location():
    e = RuntimeError(
        "[ONNXRuntimeError] : 1 : FAIL : Load model from m.onnx failed:/onnxruntime_src/"
        "onnxruntime/core/graph/model.cc:256 onnxruntime::Model::Model(onnx::ModelProto&&, "
        "const onnxruntime::PathString&, const onnxruntime::ModelOptions&) Unsupported model "
        "IR version: 14, max supported IR version: 13\n")
    assert reason(e) == ("FAIL: Load model from m.onnx failed: Unsupported model IR version: "
                         "14, max supported IR version: 13")
