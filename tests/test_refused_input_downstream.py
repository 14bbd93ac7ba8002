"""A node reading a graph input that cannot be a Keras input (a scalar, as silero-vad's sample
rate ``sr``) is not blamed for the refused input: raising to Keras lists the input and every
independent blocking node, never "both operands are constants" for an ``Equal`` that reads the
input (issue 18: every refusal lists every blocking node, by its own cause)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.errors import UnsupportedError

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _branch(name: str, op: str) -> onnx.GraphProto:
    return helper.make_graph([helper.make_node(op, ["x"], ["y_" + name])], name, [],
                             [helper.make_tensor_value_info("y_" + name, F, None)])


def _model() -> onnx.ModelProto:
    """``Equal(sr, 16000)`` chooses between two branches (an ``If``), as silero-vad does; a
    ``Hardmax`` on ``x`` blocks the Keras route on its own."""
    graph = helper.make_graph(
        [helper.make_node("Equal", ["sr", "rate"], ["is16k"]),
         helper.make_node("If", ["is16k"], ["h"], then_branch=_branch("then", "Relu"),
                          else_branch=_branch("else", "Sigmoid")),
         helper.make_node("Hardmax", ["x"], ["g"], axis=-1),
         helper.make_node("Add", ["h", "g"], ["y"])],
        "refused_input",
        [helper.make_tensor_value_info("x", F, ["N", 4]),
         helper.make_tensor_value_info("sr", I64, [])],
        [helper.make_tensor_value_info("y", F, ["N", 4])],
        [numpy_helper.from_array(np.array(16000, np.int64), "rate")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("target", ["m.keras", "m.h5"])
def test_node_reading_a_refused_input_is_not_blamed_for_it(target, tmp_path):
    src = tmp_path / "m.onnx"
    model = _model()
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, src)
    with pytest.raises(UnsupportedError) as e:
        modelport.convert(src, tmp_path / target)
    message = str(e.value)
    assert "graph input 'sr' is a scalar" in message  # the root cause
    assert "If node" in message and "Hardmax node" in message  # each independent blocker
    assert "Equal" not in message and "constant" not in message  # no derived complaint
    assert not (tmp_path / target).exists()
