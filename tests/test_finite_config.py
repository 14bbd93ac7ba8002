"""A layer config that would hold a non-finite number (JSON has no ``Infinity`` or ``NaN``) is
refused before anything is written, by ``convert`` (exit 4, naming the layer and the routes
that hold such constants as tensors) and ``inspect`` alike (``models/finite_config.py``, issue
18): Python's ``json`` wrote ``Infinity`` and every reader refused the file after it was
written (exit 3 on a valid model), while ``inspect``, which writes nothing, called the route
possible.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.cli import main

F = TensorProto.FLOAT


def _scaled_by_infinity(tmp_path) -> str:
    """x [N, 4] -> MatMul -> Mul(inf): raised as a Rescaling whose scale is inf."""
    w = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]),
         helper.make_node("Mul", ["m", "big"], ["y"])], "inf",
        [helper.make_tensor_value_info("x", F, [None, 4])],
        [helper.make_tensor_value_info("y", F, [None, 3])],
        [numpy_helper.from_array(w, "w"),
         numpy_helper.from_array(np.asarray(np.inf, np.float32), "big")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return str(path)


@pytest.mark.parametrize("target", ["m.h5", "m.keras", "m_tfjs"])
def test_convert_refuses_a_non_finite_config_before_writing(target, tmp_path):
    src = _scaled_by_infinity(tmp_path)
    to = "tfjs-layers" if target == "m_tfjs" else None
    with pytest.raises(modelport.UnsupportedError) as e:
        modelport.convert(src, tmp_path / target, to=to)
    assert "inf" in e.value.message and "JSON" in e.value.message, e.value.message
    assert "--to onnx" in str(e.value) or "--to tfjs-graph" in str(e.value), str(e.value)
    assert not (tmp_path / target).exists()


def test_inspect_agrees(tmp_path):
    src = _scaled_by_infinity(tmp_path)
    targets = modelport.inspect(src).targets
    for name in ("h5", "keras", "tfjs-layers"):
        assert not targets[name].ok, name
    assert targets["tfjs-graph"].ok


def test_exit_code_is_4(tmp_path):
    src = _scaled_by_infinity(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["convert", src, str(tmp_path / "m.h5"), "-q"])
    assert e.value.code == 4
