"""An Unsqueeze that undoes a Squeeze (``converters/onnx_to_keras/squeeze_pairs.py``): TF's
``unstack``/``stack`` of a batch of one raises to no layer, where each alone moves the batch
axis; a Squeeze read by anything else keeps its refusal (but for a ``.keras`` file at a
static batch of one, which takes it as a Keras operation). Cases from a table, each converted
with the default check and the ``.keras`` run in real Keras 3 against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport

F = TensorProto.FLOAT


def _model(nodes, x_dims, y_dims, inits=(), opset=13):
    graph = helper.make_graph(nodes, "case", [helper.make_tensor_value_info("x", F, x_dims)],
                              [helper.make_tensor_value_info("y", F, y_dims)],
                              [numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _pairs(n: int, axes: list[int], opset: int = 13):
    """Relu, then ``n`` Squeeze -> Unsqueeze pairs over ``axes``, then Sigmoid."""
    nodes, v = [helper.make_node("Relu", ["x"], ["r"])], "r"
    inits = [("ax", np.array(axes, np.int64))] if opset >= 13 else []
    for k in range(n):
        kw = {} if opset >= 13 else {"axes": axes}
        extra = ["ax"] if opset >= 13 else []
        nodes += [helper.make_node("Squeeze", [v, *extra], [f"s{k}"], **kw),
                  helper.make_node("Unsqueeze", [f"s{k}", *extra], [f"u{k}"], **kw)]
        v = f"u{k}"
    nodes.append(helper.make_node("Sigmoid", [v], ["y"]))
    return nodes, inits


CASES = {
    # MoveNet's pre-processing: unstack, ExpandDims, Squeeze, stack of a batch of one
    "batch_axis_twice": (lambda: _model(*_pairs(2, [0])[:1], [1, 6, 5, 3], [1, 6, 5, 3],
                                        _pairs(2, [0])[1])),
    "batch_axis_opset11": (lambda: _model(_pairs(1, [0], 11)[0], [1, 4, 3], [1, 4, 3],
                                          opset=11)),
    "inner_axes_negative": (lambda: _model(*_pairs(1, [-1])[:1], ["N", 4, 1], ["N", 4, 1],
                                           _pairs(1, [-1])[1])),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_pair_raises_to_no_layer_and_real_keras_agrees(case, tmp_path, keras3):
    proto = CASES[case]()
    src = tmp_path / "m.onnx"
    onnx.save(proto, src)
    report = modelport.convert(src, tmp_path / "m.keras")
    assert report.parity is not None and report.parity.passed
    classes = {layer.class_name for layer in modelport.load(tmp_path / "m.keras").layers}
    assert not classes & {"Reshape", "Squeeze", "ExpandDims"}, classes
    model = keras3.models.load_model(tmp_path / "m.keras", compile=False)
    dims = [d.dim_value or 2 for d in proto.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
    (want,) = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"]).run(None, {"x": x})
    # the pairs compute nothing; Sigmoid may differ by an ulp between JAX and onnxruntime
    np.testing.assert_allclose(np.asarray(model(x)), want, rtol=1e-6, atol=0)


def test_squeeze_read_by_other_ops_keeps_its_refusal(tmp_path):
    nodes, inits = _pairs(1, [0])
    nodes.insert(2, helper.make_node("Relu", ["s0"], ["other"]))
    graph_out = [helper.make_tensor_value_info("y", F, [1, 4, 3]),
                 helper.make_tensor_value_info("other", F, [4, 3])]
    graph = helper.make_graph(nodes, "case", [helper.make_tensor_value_info("x", F, [1, 4, 3])],
                              graph_out, [numpy_helper.from_array(a, n) for n, a in inits])
    src = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                                ir_version=8), src)
    # the layers cannot drop the batch axis (tfjs-layers, .h5 alike); a .keras file at a
    # static batch of one takes the Squeeze as a Keras operation (operations_static), and the
    # check proves the pair was not taken for a no-op
    with pytest.raises(modelport.UnsupportedError, match="Squeeze node"):
        modelport.convert(src, tmp_path / "m_web", to="tfjs-layers")
    report = modelport.convert(src, tmp_path / "m.keras")
    assert report.parity is not None and report.parity.passed
