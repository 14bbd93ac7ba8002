"""Self-attention with one fused q/k/v projection raised to one MultiHeadAttention, and a
softmax written Flatten -> Softmax -> Reshape raised to one Softmax
(``converters/onnx_to_keras/attention.py``). Each model is built with onnx's helper with a free
sequence length (as PP-OCRv4's SVTR recognizer has, its width free), compared with onnxruntime
at two lengths in modelport's NumPy Keras reference, and written with the default parity check
and run in real Keras 3. A block that is not Keras's formula (another scale) is not fused and
is refused naming the node that has no layer.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.converters.onnx_to_keras import raise_model
from modelport.runtime.keras_reference import run

F = TensorProto.FLOAT
C, HEADS, DIM = 12, 2, 3


def _w(*shape, seed=1):
    return (np.random.default_rng(seed).standard_normal(shape) * 0.4).astype(np.float32)


def _model(nodes, consts, x_dims, opset=13) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "attention", [helper.make_tensor_value_info("x", F, x_dims)],
        [helper.make_tensor_value_info("y", F, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


def _softmax(src: str, dst: str, flatten: bool) -> list:
    if not flatten:
        return [helper.make_node("Softmax", [src], [dst], axis=-1)]
    return [helper.make_node("Shape", [src], [f"{dst}_shape"]),
            helper.make_node("Flatten", [src], [f"{dst}_flat"], axis=3),
            helper.make_node("Softmax", [f"{dst}_flat"], [f"{dst}_soft"], axis=-1),
            helper.make_node("Reshape", [f"{dst}_soft", f"{dst}_shape"], [dst])]


def attention(flatten: bool = False, scale: float | None = None,
              residual: bool = True) -> onnx.ModelProto:
    """x[N, L, C] -> qkv projection -> Reshape [N, L, 3, H, D] -> q, k, v by Slice, Transpose
    (2, 0, 3, 1, 4), Squeeze -> softmax(q * scale @ k^T) @ v -> Transpose, Reshape -> output
    projection [-> + x], PaddlePaddle's SVTR form."""
    width = HEADS * DIM
    consts = {"wqkv": _w(C, 3 * width), "bqkv": _w(3 * width, seed=2),
              "wo": _w(width, C, seed=3), "bo": _w(C, seed=4),
              "split": np.asarray([0, -1, 3, HEADS, DIM], np.int64),
              "merge": np.asarray([0, -1, width], np.int64),
              "scale": np.asarray([1 / np.sqrt(DIM) if scale is None else scale], np.float32),
              "ax2": np.asarray([2], np.int64), "ax0": np.asarray([0], np.int64),
              "one": np.asarray([1], np.int64)}
    nodes = [helper.make_node("MatMul", ["x", "wqkv"], ["lin"]),
             helper.make_node("Add", ["lin", "bqkv"], ["qkv_flat"]),
             helper.make_node("Reshape", ["qkv_flat", "split"], ["qkv"])]
    for i, name in enumerate("qkv"):
        consts[f"s{i}"], consts[f"e{i}"] = np.asarray([i], np.int64), np.asarray([i + 1], np.int64)
        nodes += [helper.make_node("Slice", ["qkv", f"s{i}", f"e{i}", "ax2", "one"],
                                   [f"{name}_cut"]),
                  helper.make_node("Transpose", [f"{name}_cut"], [f"{name}_t"],
                                   perm=[2, 0, 3, 1, 4]),
                  helper.make_node("Squeeze", [f"{name}_t", "ax0"], [name])]
    nodes += [helper.make_node("Mul", ["q", "scale"], ["qs"]),
              helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
              helper.make_node("MatMul", ["qs", "kt"], ["scores"]),
              *_softmax("scores", "probs", flatten),
              helper.make_node("MatMul", ["probs", "v"], ["heads"]),
              helper.make_node("Transpose", ["heads"], ["heads_t"], perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["heads_t", "merge"], ["merged"]),
              helper.make_node("MatMul", ["merged", "wo"], ["proj"]),
              helper.make_node("Add", ["proj", "bo"], ["out" if residual else "y"])]
    if residual:
        nodes.append(helper.make_node("Add", ["x", "out"], ["y"]))
    return _model(nodes, consts, ["N", "L", C])


def flatten_softmax(opset: int) -> onnx.ModelProto:
    """x[N, T, C] -> softmax over the last axis, as a CTC head writes it: at opset 11 a
    Softmax(axis=2) (which the one-opset pass writes Flatten -> Softmax -> Reshape), at 13 the
    Flatten form itself; a Dense first so the softmax reads a layer's output."""
    consts = {"w": _w(C, 7)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["logits"])]
    if opset < 13:
        nodes.append(helper.make_node("Softmax", ["logits"], ["y"], axis=2))
    else:
        nodes += [helper.make_node("Shape", ["logits"], ["shape"]),
                  helper.make_node("Flatten", ["logits"], ["flat"], axis=2),
                  helper.make_node("Softmax", ["flat"], ["soft"], axis=1),
                  helper.make_node("Reshape", ["soft", "shape"], ["y"])]
    return _model(nodes, consts, ["N", "T", C], opset=opset)


# id -> (model, the layer the block becomes)
CASES = {
    "attention-softmax": (attention(), "MultiHeadAttention"),
    "attention-flatten-softmax": (attention(flatten=True), "MultiHeadAttention"),
    "attention-no-residual": (attention(residual=False), "MultiHeadAttention"),
    "softmax-opset11-rank3": (flatten_softmax(11), "Softmax"),
    "softmax-flatten-opset13": (flatten_softmax(13), "Softmax"),
}
LENGTHS = (5, 9)


def _feed(n: int, length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-2, 2, (n, length, C)).astype(np.float32)


def _ort(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_block_is_one_layer_and_matches_onnxruntime_at_two_lengths(case):
    proto, layer = CASES[case]
    raised = raise_model(ir.from_proto(proto))
    classes = [lay.class_name for lay in raised.model.layers]
    assert classes.count(layer) == 1, classes
    assert not {"Permute", "Reshape", "Flatten"} & set(classes), classes
    assert raised.model.layers[0].config["batch_shape"][1] is None  # the length stays free
    for seed, length in enumerate(LENGTHS):
        x = _feed(2, length, seed)
        (got,) = run(raised.model, [x]).outputs
        np.testing.assert_allclose(np.asarray(got), _ort(proto, x), atol=1e-5, rtol=1e-5,
                                   err_msg=f"{case} at length {length}")


@pytest.mark.parametrize("case,target", [("attention-flatten-softmax", "m.h5"),
                                         ("attention-softmax", "m.keras"),
                                         ("softmax-opset11-rank3", "m.h5")])
def test_written_model_runs_in_real_keras_at_two_lengths(case, target, tmp_path, keras3):
    proto, _ = CASES[case]
    src = tmp_path / "m.onnx"
    onnx.save(proto, str(src))
    report = modelport.convert(src, tmp_path / target)  # the default parity check, no pin
    assert report.parity is not None and report.parity.passed
    model = keras3.models.load_model(tmp_path / target, compile=False)
    for seed, length in enumerate(LENGTHS):
        x = _feed(2, length, seed)
        np.testing.assert_allclose(model.predict(x, verbose=0), _ort(proto, x), atol=1e-5,
                                   rtol=1e-5, err_msg=f"{case} at length {length}")


def test_another_scale_is_not_keras_formula_and_is_refused(tmp_path):
    """Keras scales the query by float32(1 / sqrt(key_dim)); a block scaled otherwise is left
    to its ops, and the refusal names the first that has no layer."""
    src = tmp_path / "m.onnx"
    onnx.save(attention(scale=0.5), str(src))
    with pytest.raises(modelport.UnsupportedError) as e:
        modelport.convert(src, tmp_path / "m.h5")
    assert "moves the batch axis" in e.value.message, e.value.message
    assert not (tmp_path / "m.h5").exists()
