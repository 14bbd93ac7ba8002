"""Convolutions, pools and resizes of free height/width raised to Keras without a pin
(``converters/onnx_to_keras/nn.py``, issue 18): the free dims stay None in the Keras model,
so each layer must be exact for every size. Each case, a small ONNX model built with onnx's
helper whose input is ``[N, C, "H", "W"]``, is compared with onnxruntime at two different
sizes in modelport's NumPy Keras reference (Keras and tfjs-layers forms); some are written
with the default parity check and run in real Keras 3 at two sizes. What is exact only for a
known size is refused, naming why (and the hint names ``--input-shape``).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.converters.onnx_to_keras import raise_model
from modelport.converters.padding import are_same_pads, same_for_any_size, same_pads
from modelport.runtime.keras_reference import run

F = TensorProto.FLOAT
SIZES = [(11, 14), (16, 9)]  # two sizes, odd and even, for every case


def _w(*shape, seed=1):
    return (np.random.default_rng(seed).standard_normal(shape) * 0.3).astype(np.float32)


def _model(nodes, consts, channels=3, opset=13, rank=4) -> onnx.ModelProto:
    dims = ["N", channels, "H", "W"][:rank] if rank == 4 else ["N", channels, "W"]
    graph = helper.make_graph(
        nodes, "free", [helper.make_tensor_value_info("x", F, dims)],
        [helper.make_tensor_value_info("y", F, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


def conv(**attrs) -> onnx.ModelProto:
    """x -> Conv(attrs) -> y (4 filters of 3x3 unless ``kernel`` says)."""
    kernel = attrs.pop("kernel", (3, 3))
    group = attrs.get("group", 1)
    w = _w(4 if group == 1 else group, 3 // group if group > 1 else 3, *kernel)
    return _model([helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)],
                  {"w": w, "b": _w(w.shape[0], seed=2)}, rank=2 + len(kernel))


def conv_transpose(kernel: int, stride: int, pads, output_padding=None,
                   dims=("N", 3, "H", "W")) -> onnx.ModelProto:
    """x -> ConvTranspose(k x k, stride, pads[, output_padding]) -> y (4 filters)."""
    attrs = {"strides": [stride, stride], "pads": pads}
    if output_padding is not None:
        attrs["output_padding"] = output_padding
    model = _model([helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **attrs)],
                   {"w": _w(3, 4, kernel, kernel), "b": _w(4, seed=2)})
    for dim, value in zip(model.graph.input[0].type.tensor_type.shape.dim, dims):
        if isinstance(value, int):
            dim.Clear()
            dim.dim_value = value
    return onnx.shape_inference.infer_shapes(model)


def pool(op: str, relu: bool = False, **attrs) -> onnx.ModelProto:
    """x -> [Relu] -> MaxPool / AveragePool(attrs) -> y."""
    nodes = [helper.make_node("Relu", ["x"], ["r"])] if relu else []
    nodes.append(helper.make_node(op, ["r" if relu else "x"], ["y"], **attrs))
    return _model(nodes, {})


def resize(scales, opset=13, **attrs) -> onnx.ModelProto:
    """x -> Conv 1x1 -> Resize(scales, attrs) -> y (the Conv makes the layout channels-last)."""
    consts = {"w": _w(4, 3, 1, 1), "sc": np.asarray(scales, np.float32)}
    if opset >= 11:
        consts["roi"] = np.zeros(0, np.float32)
        ins = ["t", "roi", "sc"]
    else:
        ins = ["t", "sc"]
    nodes = [helper.make_node("Conv", ["x", "w"], ["t"]),
             helper.make_node("Resize", ins, ["y"], **attrs)]
    return _model(nodes, consts, opset=opset)


def neck() -> onnx.ModelProto:
    """A detector neck as PP-OCR's DBNet writes it: a strided padded Conv, a Relu, a padded
    MaxPool, a nearest Resize x2 (asymmetric, floor) added back to the Conv's output."""
    consts = {"w": _w(8, 3, 3, 3), "w2": _w(8, 8, 3, 3, seed=3),
              "sc": np.asarray([1, 1, 2, 2], np.float32), "roi": np.zeros(0, np.float32)}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["p", "w2"], ["q"], pads=[1, 1, 1, 1]),
        helper.make_node("Resize", ["q", "roi", "sc"], ["u"], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Add", ["u", "c"], ["y"]),
    ]
    return _model(nodes, consts)


# the neck adds the strided Conv's output to twice the pooled: equal sizes where that output
# is even (n mod 4 is 0 or 3)
NECK_SIZES = [(16, 24), (8, 12)]


# id -> (model, the padding the first spatial layer must use: 'same', 'valid', or None)
CASES = {
    "conv-same-pads": (conv(pads=[1, 1, 1, 1]), "same"),
    "conv-5x3-same-pads": (conv(kernel=(5, 3), pads=[2, 1, 2, 1]), "same"),
    "conv-dilated-same-pads": (conv(pads=[2, 2, 2, 2], dilations=[2, 2]), "same"),
    "conv-stride2-pads": (conv(pads=[1, 1, 1, 1], strides=[2, 2]), "valid"),
    "conv-asym-pads-stride": (conv(kernel=(3, 2), pads=[2, 0, 1, 1], strides=[2, 3]),
                              "valid"),
    "conv-auto-same-upper-stride2": (conv(auto_pad="SAME_UPPER", strides=[2, 2]), "same"),
    "conv-auto-same-lower-stride1": (conv(auto_pad="SAME_LOWER"), "same"),
    "conv-strided-dilated-pads": (conv(pads=[1, 2, 1, 0], strides=[2, 3], dilations=[2, 2]),
                                  "valid"),
    "conv-depthwise-pads": (conv(group=3, pads=[1, 1, 1, 1], strides=[2, 2]), "valid"),
    "conv-even-kernel-pads": (conv(kernel=(2, 2), pads=[1, 1, 1, 1]), "valid"),
    "conv1d-pads": (conv(kernel=(3,), pads=[1, 1]), "same"),
    "convtranspose-kernel-shorter-than-stride": (conv_transpose(2, 3, [0, 0, 0, 0]), "valid"),
    "convtranspose-pads": (conv_transpose(4, 2, [1, 1, 1, 1]), "valid"),
    "convtranspose-output-padding": (conv_transpose(3, 2, [1, 1, 1, 1], [1, 1]), "valid"),
    "convtranspose-output-padding-past-the-crop": (conv_transpose(2, 3, [1, 0, 1, 0], [2, 2]),
                                                   "valid"),
    "maxpool-valid": (pool("MaxPool", kernel_shape=[2, 2], strides=[2, 2]), "valid"),
    "maxpool-same-stride1": (pool("MaxPool", kernel_shape=[3, 3], pads=[1, 1, 1, 1]), "same"),
    "maxpool-auto-same-stride2": (pool("MaxPool", kernel_shape=[3, 3], strides=[2, 2],
                                       auto_pad="SAME_UPPER"), "same"),
    "maxpool-pads-after-relu": (pool("MaxPool", relu=True, kernel_shape=[3, 3],
                                     strides=[2, 2], pads=[1, 1, 1, 1]), "valid"),
    "maxpool-ceil-stride1": (pool("MaxPool", kernel_shape=[2, 2], ceil_mode=1), "valid"),
    "avgpool-valid-3x2": (pool("AveragePool", kernel_shape=[3, 2], strides=[3, 2]), "valid"),
    "avgpool-include-pad": (pool("AveragePool", kernel_shape=[3, 3], strides=[2, 2],
                                 pads=[1, 1, 1, 1], count_include_pad=1), "valid"),
    "avgpool-exclude-pad-stride1": (pool("AveragePool", kernel_shape=[3, 3],
                                         pads=[1, 1, 1, 1]), "same"),
    "resize-nearest-asymmetric-floor": (resize([1, 1, 2, 2], mode="nearest",
                                               coordinate_transformation_mode="asymmetric",
                                               nearest_mode="floor"), None),
    "resize-nearest-half-pixel-3x2": (resize([1, 1, 3, 2], mode="nearest"), None),
    "resize-nearest-opset10": (resize([1, 1, 2, 4], opset=10, mode="nearest"), None),
    "resize-linear-half-pixel": (resize([1, 1, 2, 2], mode="linear"), None),
    "neck": (neck(), "valid"),
}


def _feed(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-2, 2, shape).astype(np.float32)


def _ort(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _perm(a: np.ndarray, perm) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(perm)) if perm else a


def _shape(proto: onnx.ModelProto, hw) -> list[int]:
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    return [2, dims[1].dim_value, *hw][:len(dims)] if len(dims) == 4 else [2, dims[1].dim_value,
                                                                              hw[0]]


@pytest.mark.parametrize("for_tfjs", [False, True], ids=["keras", "tfjs"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_free_spatial_layers_match_onnxruntime_at_two_sizes(case, for_tfjs):
    proto, padding = CASES[case]
    raised = raise_model(ir.from_proto(proto), for_tfjs=for_tfjs)
    inp = raised.model.layers[0].config["batch_shape"]
    assert inp[1:-1] == [None] * (len(inp) - 2), inp  # the free dims stay free
    spatial = [lay for lay in raised.model.layers
               if lay.class_name.startswith(("Conv", "Depthwise", "MaxPool", "AveragePool"))]
    if padding is not None:
        assert spatial[0].config["padding"] == padding, spatial[0].config
    for seed, hw in enumerate(NECK_SIZES if case == "neck" else SIZES):
        x = _feed(_shape(proto, hw), seed)
        expected = _perm(_ort(proto, x), raised.output_perms[0])
        (got,) = run(raised.model, [_perm(x, raised.input_perms[0])]).outputs
        np.testing.assert_allclose(np.asarray(got), expected, atol=2e-5, rtol=1e-5,
                                   err_msg=f"{case} at {hw}")


def test_conv_transpose_with_a_kernel_shorter_than_its_stride_at_a_static_size():
    """Keras's 'valid' transposed output is in * s long where k < s, ONNX's (in - 1) * s + k:
    the crop takes the difference off the end (it was left on)."""
    proto = conv_transpose(2, 3, [0, 0, 0, 0], dims=(2, 3, 5, 6))
    raised = raise_model(ir.from_proto(proto))
    x = _feed([2, 3, 5, 6])
    (got,) = run(raised.model, [_perm(x, raised.input_perms[0])]).outputs
    np.testing.assert_allclose(np.asarray(got), _perm(_ort(proto, x), raised.output_perms[0]),
                               atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("case,target", [("neck", "m.h5"), ("conv-stride2-pads", "m.keras"),
                                         ("resize-linear-half-pixel", "m.keras"),
                                         ("maxpool-pads-after-relu", "m.h5"),
                                         ("conv-auto-same-upper-stride2", "m.keras"),
                                         ("convtranspose-output-padding", "m.h5")])
def test_written_model_runs_in_real_keras_at_two_sizes(case, target, tmp_path, keras3):
    proto, _ = CASES[case]
    src = tmp_path / "m.onnx"
    onnx.save(proto, str(src))
    report = modelport.convert(src, tmp_path / target)  # the default parity check, no pin
    assert report.parity is not None and report.parity.passed
    raised = raise_model(ir.from_proto(proto))
    model = keras3.models.load_model(tmp_path / target, compile=False)
    assert list(model.input_shape[1:3]) == [None, None]
    for seed, hw in enumerate([(20, 28), (12, 8)] if case == "neck" else [(20, 34), (13, 8)]):
        x = _feed(_shape(proto, hw), seed)
        got = model.predict(_perm(x, raised.input_perms[0]), verbose=0)
        np.testing.assert_allclose(got, _perm(_ort(proto, x), raised.output_perms[0]),
                                   atol=2e-5, rtol=1e-5, err_msg=f"{case} at {hw}")


# id -> (model, words the refusal must hold)
REFUSED = {
    "maxpool-pads-signed-input": (pool("MaxPool", kernel_shape=[3, 3], strides=[2, 2],
                                       pads=[1, 1, 1, 1]), "edge padding, which needs the size"),
    "avgpool-exclude-pad-stride2": (pool("AveragePool", kernel_shape=[3, 3], strides=[2, 2],
                                         pads=[1, 1, 1, 1]), "window counts"),
    "avgpool-auto-same-include-pad": (pool("AveragePool", kernel_shape=[3, 3], strides=[2, 2],
                                           auto_pad="SAME_UPPER", count_include_pad=1),
                                      "depends on the input size"),
    "maxpool-ceil-stride2": (pool("MaxPool", relu=True, kernel_shape=[3, 3], strides=[2, 2],
                                  ceil_mode=1), "ceil_mode on an axis of unknown size"),
    "conv-auto-same-lower-stride2": (conv(auto_pad="SAME_LOWER", strides=[2, 2]),
                                     "SAME_LOWER on an axis of unknown size"),
    "conv-auto-same-strided-dilated": (conv(auto_pad="SAME_UPPER", strides=[2, 2],
                                            dilations=[2, 2]), "both strided and dilated"),
    "resize-align-corners": (resize([1, 1, 2, 2], mode="nearest",
                                    coordinate_transformation_mode="align_corners"),
                             "for every size"),
    "resize-fractional": (resize([1, 1, 1.5, 2], mode="nearest"), "not integers >= 1"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_needs_the_size_is_refused_naming_why(case, tmp_path):
    proto, words = REFUSED[case]
    src = tmp_path / "m.onnx"
    onnx.save(proto, str(src))
    with pytest.raises(modelport.UnsupportedError) as e:
        modelport.convert(src, tmp_path / "m.h5")
    assert words in e.value.message, e.value.message
    assert "--input-shape" in str(e.value), str(e.value)
    assert not (tmp_path / "m.h5").exists()


@pytest.mark.parametrize("kernel,stride,dilation", [(k, s, d) for k in (1, 2, 3, 4, 5)
                                                    for s in (1, 2, 3) for d in (1, 2)])
def test_same_for_any_size_agrees_with_same_pads_at_every_size(kernel, stride, dilation):
    """``same_for_any_size`` holds exactly where one split equals SAME's at sizes 1..40."""
    candidates = {same_pads(n, kernel, stride, dilation) for n in range(1, 41)}
    for pad in candidates | {(0, 0), (1, 1)}:
        every = all(same_pads(n, kernel, stride, dilation) == pad for n in range(1, 41))
        assert same_for_any_size(pad, kernel, stride, dilation) == every, pad
        assert are_same_pads([pad], [None], [kernel], [stride], [dilation]) == every
