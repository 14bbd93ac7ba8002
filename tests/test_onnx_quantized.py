"""ONNX's quantized ops (what onnxruntime's ``quantize_dynamic`` writes) -> TF.js graph-model.

The models are float ONNX graphs made with ``onnx.helper`` and quantized by the real
``onnxruntime.quantization.quantize_dynamic`` at test time. Here (no Node needed):

* the float compositions of ``converters.onnx_to_tfjs.quantized``, run in onnxruntime, equal
  onnxruntime's own quantized kernels bit for bit (all-zero, one-signed and on-the-grid inputs
  included);
* the converted graph-models, run by the NumPy reference of TF ops that the parity check uses
  (``runtime.tfjs_reference``), match onnxruntime on the quantized source: bit for bit where
  only integer arithmetic and scaling are involved, to float32 rounding of the gate activations
  for ``DynamicQuantizeLSTM``;
* what cannot be matched is refused by name.

``tests/interop/test_onnx_quantized_tfjs.py`` runs the same cases in real tfjs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as nh

from modelport.converters.onnx_normalize import normalize
from modelport.converters.onnx_to_tfjs import driver as to_tfjs
from modelport.converters.onnx_to_tfjs.quantized import decompose
from modelport.errors import UnsupportedError
from modelport.models import TfjsGraph
from modelport.runtime import tfjs_reference

ort = pytest.importorskip("onnxruntime")
quantization = pytest.importorskip("onnxruntime.quantization")

F = TensorProto.FLOAT
LSTM_ATOL = 1e-5  # TF's sigmoid/tanh against onnxruntime's MLAS approximations


def _model(nodes: list, inputs: list, outputs: list, inits: list) -> onnx.ModelProto:
    graph = oh.make_graph(nodes, "g", inputs, outputs, inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _cnn(rng: np.random.Generator) -> onnx.ModelProto:
    """Conv -> Relu -> strided Conv -> Flatten -> MatMul + bias: ConvInteger and MatMulInteger."""
    def w(*shape: int, s: float = 0.3) -> np.ndarray:
        return (rng.normal(size=shape) * s).astype(np.float32)
    nodes = [oh.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             oh.make_node("Relu", ["c1"], ["r1"]),
             oh.make_node("Conv", ["r1", "w2", "b2"], ["c2"], strides=[2, 2]),
             oh.make_node("Flatten", ["c2"], ["f"]),
             oh.make_node("MatMul", ["f", "wm"], ["m"]),
             oh.make_node("Add", ["m", "bm"], ["y"])]
    inits = [nh.from_array(w(8, 3, 3, 3), "w1"), nh.from_array(w(8, s=1), "b1"),
             nh.from_array(w(6, 8, 3, 3, s=0.2), "w2"), nh.from_array(w(6, s=1), "b2"),
             nh.from_array(w(54, 10, s=0.2), "wm"), nh.from_array(w(10, s=1), "bm")]
    return _model(nodes, [oh.make_tensor_value_info("x", F, ["N", 3, 8, 8])],
                  [oh.make_tensor_value_info("y", F, ["N", 10])], inits)


def _lstm(rng: np.random.Generator, steps: int | str, batch: int, size: int, hidden: int,
          direction: str, *, states: bool = False, peepholes: bool = False) -> onnx.ModelProto:
    """One ONNX LSTM (quantize_dynamic makes it a DynamicQuantizeLSTM)."""
    d = 2 if direction == "bidirectional" else 1
    names = ["x", "W", "R", "B", "", "h0" if states else "", "c0" if states else "",
             "P" if peepholes else ""]
    while not names[-1]:
        names.pop()
    inits = [nh.from_array((rng.normal(size=(d, 4 * hidden, size)) * 0.4).astype(np.float32),
                           "W"),
             nh.from_array((rng.normal(size=(d, 4 * hidden, hidden)) * 0.4).astype(np.float32),
                           "R"),
             nh.from_array((rng.normal(size=(d, 8 * hidden)) * 0.2).astype(np.float32), "B")]
    if peepholes:
        inits.append(nh.from_array((rng.normal(size=(d, 3 * hidden)) * 0.3)
                                   .astype(np.float32), "P"))
    inputs = [oh.make_tensor_value_info("x", F, [steps, batch, size])]
    if states:
        inputs += [oh.make_tensor_value_info(n, F, [d, batch, hidden]) for n in ("h0", "c0")]
    node = oh.make_node("LSTM", names, ["Y", "Y_h", "Y_c"], hidden_size=hidden,
                        direction=direction)
    return _model([node], inputs, [oh.make_tensor_value_info(n, F, None)
                                   for n in ("Y", "Y_h", "Y_c")], inits)


# name -> (float model builder, weight type [/per_channel], exact: bit for bit against
# onnxruntime)
CASES = {
    "cnn_uint8": (_cnn, "QUInt8", True),
    "cnn_int8": (_cnn, "QInt8", True),
    "lstm_forward": (lambda r: _lstm(r, 4, 1, 6, 5, "forward"), "QInt8", False),
    "lstm_bidirectional_states": (lambda r: _lstm(r, 4, 1, 6, 5, "bidirectional",
                                                  states=True), "QInt8", False),
    "lstm_reverse_peepholes": (lambda r: _lstm(r, 3, 1, 4, 8, "reverse", peepholes=True),
                               "QInt8", False),
    "lstm_run_time_length": (lambda r: _lstm(r, "T", 1, 6, 5, "bidirectional"), "QInt8",
                             False),
    "lstm_uint8": (lambda r: _lstm(r, 4, 1, 6, 5, "forward"), "QUInt8", False),
    "lstm_batch3_hidden260": (lambda r: _lstm(r, 3, 3, 4, 260, "forward"), "QInt8", False),
    # per_channel=True: a scale per output channel / gate column
    "cnn_per_channel": (_cnn, "QInt8/per_channel", True),
    "lstm_per_channel": (lambda r: _lstm(r, 4, 1, 6, 5, "bidirectional"), "QInt8/per_channel",
                         False),
}


def quantized_case(name: str, tmp: Path) -> tuple[onnx.ModelProto, list[dict[str, np.ndarray]]]:
    """Case ``name`` quantized by ``quantize_dynamic``, and two seeded feeds."""
    build, weight_type, _ = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    src, dst = tmp / f"{name}.onnx", tmp / f"{name}.quant.onnx"
    onnx.save(build(rng), src)
    kind, _, per_channel = weight_type.partition("/")
    quantization.quantize_dynamic(str(src), str(dst), per_channel=bool(per_channel),
                                  weight_type=getattr(quantization.QuantType, kind))
    model = onnx.load(dst)
    feeds = []
    for scale in (1.0, 7.0):
        feed = {}
        for v in model.graph.input:
            dims = [d.dim_value if d.HasField("dim_value") else (2 if d.dim_param == "N" else 5)
                    for d in v.type.tensor_type.shape.dim]
            feed[v.name] = (rng.normal(size=dims) * (scale if v.name == "x" else 0.5)) \
                .astype(np.float32)
        feeds.append(feed)
    return model, feeds


def run_onnxruntime(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The model's outputs in onnxruntime (CPU)."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def check_outputs(name: str, got: list[np.ndarray], want: list[np.ndarray]) -> None:
    """``got`` against onnxruntime's ``want``: equal for exact cases, else to LSTM_ATOL."""
    exact = CASES[name][2]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if exact:
            np.testing.assert_array_equal(g, w, err_msg=name)
        else:
            np.testing.assert_allclose(g, w, atol=LSTM_ATOL, rtol=0, err_msg=name)


def run_reference(graph: TfjsGraph, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The graph-model run by the NumPy reference of TF ops."""
    return tfjs_reference.run(graph, {i.tensor: feed[i.key] for i in graph.inputs},
                              [o.tensor for o in graph.outputs])


@pytest.mark.parametrize("name", sorted(CASES))
def test_quantized_model_runs_in_the_reference_like_onnxruntime(name, tmp_path):
    model, feeds = quantized_case(name, tmp_path)
    ops = {n.op_type for n in model.graph.node}
    assert ops & {"DynamicQuantizeLSTM", "ConvInteger", "MatMulInteger"}, ops
    graph = to_tfjs.convert(ir.from_proto(model))
    for feed in feeds:
        check_outputs(name, run_reference(graph, feed), run_onnxruntime(model, feed))


def _dql_graph(rng: np.random.Generator) -> onnx.ModelProto:
    """Every decomposed op on one input, with per-tensor and per-axis (de)quantization."""
    u8 = rng.integers(0, 256, (4, 3, 3, 3)).astype(np.uint8)
    i8 = rng.integers(-128, 128, (3 * 8 * 8, 5)).astype(np.int8)
    nodes = [
        oh.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"]),
        oh.make_node("ConvInteger", ["q", "w", "z", "wz"], ["c"], pads=[1, 1, 1, 1]),
        oh.make_node("ConvInteger", ["q", "w", "z", "wz4"], ["c4"], strides=[2, 2]),
        oh.make_node("Reshape", ["x", "shp"], ["x2"]),
        oh.make_node("DynamicQuantizeLinear", ["x2"], ["q2", "s2", "z2"]),
        oh.make_node("MatMulInteger", ["q2", "wm", "z2"], ["m"]),
        oh.make_node("QuantizeLinear", ["x", "qs", "qz"], ["ql"]),
        oh.make_node("DequantizeLinear", ["ql", "qs", "qz"], ["dq"]),
        oh.make_node("QuantizeLinear", ["x", "qs3", "qz3"], ["qa"], axis=1),
        oh.make_node("DequantizeLinear", ["qa", "qs3", "qz3"], ["dqa"], axis=1),
        oh.make_node("QuantizeLinear", ["x", "qs"], ["qn"]),
    ]
    outs = [("q", TensorProto.UINT8), ("s", F), ("z", TensorProto.UINT8),
            ("c", TensorProto.INT32), ("c4", TensorProto.INT32), ("m", TensorProto.INT32),
            ("ql", TensorProto.INT8), ("dq", F), ("qa", TensorProto.UINT8), ("dqa", F),
            ("qn", TensorProto.UINT8)]
    inits = [nh.from_array(u8, "w"), nh.from_array(np.uint8(7), "wz"),
             nh.from_array(np.asarray([250], np.uint8), "wz4"),  # (ORT: per tensor only)
             nh.from_array(i8, "wm"), nh.from_array(np.asarray([2, -1], np.int64), "shp"),
             nh.from_array(np.float32(0.013), "qs"), nh.from_array(np.int8(3), "qz"),
             nh.from_array(np.asarray([0.01, 0.02, 0.05], np.float32), "qs3"),
             nh.from_array(np.asarray([128, 3, 200], np.uint8), "qz3")]
    return _model(nodes, [oh.make_tensor_value_info("x", F, [2, 3, 8, 8])],
                  [oh.make_tensor_value_info(n, t, None) for n, t in outs], inits)


def _probe_inputs(rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for kind in range(6):
        x = (rng.normal(size=(2, 3, 8, 8)) * rng.uniform(0.01, 10)).astype(np.float32)
        x = [x, np.abs(x), -np.abs(x), np.zeros_like(x), np.round(x * 4) / 4,
             np.full_like(x, 0.5)][kind]
        out.append(x.astype(np.float32))
    return out


def test_decomposition_equals_onnxruntime_kernels_bit_for_bit():
    rng = np.random.default_rng(18)
    model = _dql_graph(rng)
    lowered = normalize(ir.from_proto(model))
    assert decompose(lowered) == 10
    assert not {n.op_type for n in lowered.graph} & {
        "DynamicQuantizeLinear", "ConvInteger", "MatMulInteger", "QuantizeLinear",
        "DequantizeLinear"}
    proto = ir.to_proto(lowered)
    for x in _probe_inputs(rng):
        for a, b, info in zip(run_onnxruntime(model, {"x": x}), run_onnxruntime(proto, {"x": x}),
                              model.graph.output):
            np.testing.assert_array_equal(b, a, err_msg=info.name)


def test_decomposed_ops_run_in_the_reference_like_onnxruntime():
    rng = np.random.default_rng(19)
    model = _dql_graph(rng)
    graph = to_tfjs.convert(ir.from_proto(model))
    for x in _probe_inputs(rng):
        got = run_reference(graph, {"x": x})
        for g, w, info in zip(got, run_onnxruntime(model, {"x": x}), model.graph.output):
            np.testing.assert_array_equal(g, w.astype(g.dtype), err_msg=info.name)


def test_a_batch_onnxruntime_splits_per_thread_is_refused_naming_batch(tmp_path):
    rng = np.random.default_rng(0)
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(_lstm(rng, 3, 2, 4, 8, "forward"), src)
    quantization.quantize_dynamic(str(src), str(dst))
    with pytest.raises(UnsupportedError, match=r"DynamicQuantizeLSTM.*thread count.*--batch 1"):
        to_tfjs.convert(ir.from_proto(onnx.load(dst)))


def test_blocked_quantize_linear_is_refused_by_name():
    x = oh.make_tensor_value_info("x", F, [4, 8])
    y = oh.make_tensor_value_info("y", TensorProto.UINT8, [4, 8])
    node = oh.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1, block_size=4)
    graph = oh.make_graph([node], "g", [x], [y], [
        nh.from_array(np.full((4, 2), 0.1, np.float32), "s"),
        nh.from_array(np.zeros((4, 2), np.uint8), "z")])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 21)])
    with pytest.raises(UnsupportedError, match="QuantizeLinear"):
        to_tfjs.convert(ir.from_proto(model))


def test_integer_weights_are_stored_as_uint8_and_read_back_exactly(tmp_path):
    from modelport.formats import tfjs_graph

    model, _ = quantized_case("cnn_int8", tmp_path)
    graph = to_tfjs.convert(ir.from_proto(model))
    assert graph.quantization, "the centered 8-bit weights keep 8 bits in the file"
    for name, entry in graph.quantization.items():
        assert entry["dtype"] == "uint8" and entry["scale"] == 1.0, name
    written = tfjs_graph.write(graph, tmp_path / "web")
    back = tfjs_graph.read(written)
    for name in graph.quantization:
        np.testing.assert_array_equal(back.weights[name], graph.weights[name], err_msg=name)
