"""Slices with steps over the middle axes of a channels-last tensor raised to Keras
(``converters/onnx_to_keras/strided_slice.py``: a Cropping, then a MaxPooling of pool size 1
whose strides are the steps), each from a table of cases: odd and even static sizes, starts
and ends clamped, negative, past the end, steps longer than what is left, rank 3 to 5, the YOLO
"Focus" block, dynamic sizes cut "to the end". Each case is compared with onnxruntime in
modelport's NumPy Keras reference (Keras and tfjs-layers forms) and, written with the default
parity check, in real Keras 3; the refusals name why.
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

from .onnx_graphs import written_in_keras

F = TensorProto.FLOAT
END = np.iinfo(np.int64).max  # what torch writes for x[b::s]


def _slice(src: str, dst: str, starts, ends, axes, steps, tag: str) -> tuple[list, dict]:
    """One Slice node and its constant inputs (named after ``tag``)."""
    consts = {f"{tag}_{k}": np.asarray(v, np.int64) for k, v in
              (("st", starts), ("en", ends), ("ax", axes), ("sp", steps))}
    return [helper.make_node("Slice", [src, *consts], [dst], name=tag)], consts


def _model(nodes, consts, shape, out_shape=None) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "strided", [helper.make_tensor_value_info("x", F, shape)],
        [helper.make_tensor_value_info("y", F, out_shape)],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


def one_slice(shape, starts, ends, axes, steps) -> onnx.ModelProto:
    """x -> Slice -> y."""
    nodes, consts = _slice("x", "y", starts, ends, axes, steps, "s")
    return _model(nodes, consts, shape)


def focus(shape, conv: bool = True, end=END, first: str | None = None,
          also_output: bool = False) -> onnx.ModelProto:
    """YOLOv5/YOLOX's Focus: the four 2x2 phases of an NCHW image (Slice over H, then W),
    concatenated on the channels; a 1x1 Conv after it (so the layout pass makes the image
    channels-last and the steps fall on the middle axes)."""
    nodes, consts = [], {}
    image = "x"
    if first is not None:  # an elementwise op before the block
        nodes.append(helper.make_node(first, ["x"], ["x1"]))
        image = "x1"
    phases = []
    for i, (h0, w0) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        n1, c1 = _slice(image, f"r{i}", [h0], [end], [2], [2], f"rows{i}")
        n2, c2 = _slice(f"r{i}", f"p{i}", [w0], [end], [3], [2], f"cols{i}")
        nodes += n1 + n2
        consts.update(c1 | c2)
        phases.append(f"p{i}")
    last = "y" if not conv else "cat"
    nodes.append(helper.make_node("Concat", phases, [last], axis=1))
    if conv:
        c = shape[1]
        consts["w"] = np.random.default_rng(1).uniform(-1, 1, (5, 4 * c, 1, 1)).astype(
            np.float32)
        nodes.append(helper.make_node("Conv", ["cat", "w"], ["y"]))
    model = _model(nodes, consts, shape)
    if also_output:
        model.graph.node.append(helper.make_node("Identity", ["x"], ["x_copy"]))
        model.graph.output.append(helper.make_tensor_value_info("x_copy", F, shape))
    return model


# id -> (model, a concrete input shape)
CASES = {
    "focus-even": (focus([1, 3, 8, 8]), [1, 3, 8, 8]),
    "focus-nonsquare": (focus([2, 3, 6, 10]), [2, 3, 6, 10]),
    "focus-no-conv-int32-ends": (focus([2, 5, 6, 8], conv=False, end=2**31 - 1), [2, 5, 6, 8]),
    "focus-dynamic-hw": (focus(["N", 3, "H", "W"]), [2, 3, 10, 6]),
    "focus-after-sigmoid": (focus([1, 3, 6, 4], first="Sigmoid"), [1, 3, 6, 4]),
    "focus-input-read-twice": (focus([1, 3, 4, 6], also_output=True), [1, 3, 4, 6]),
    "rank4-two-axes": (one_slice([2, 7, 9, 3], [1, 0], [7, END], [1, 2], [3, 2]), [2, 7, 9, 3]),
    "rank4-negative-bounds": (one_slice([2, 10, 8, 3], [-9, -7], [-2, 100], [1, 2], [2, 1]),
                              [2, 10, 8, 3]),
    "rank4-end-past-size": (one_slice([1, 6, 5, 2], [1], [100], [-3], [2]), [1, 6, 5, 2]),
    "rank4-step-longer-than-rest": (one_slice([2, 5, 5, 2], [1, 3], [3, 5], [1, 2], [5, 7]),
                                    [2, 5, 5, 2]),
    "rank4-with-channel-crop": (one_slice([2, 6, 7, 5], [0, 1, 1], [6, 7, 4], [1, 2, 3],
                                          [2, 3, 1]), [2, 6, 7, 5]),
    "rank4-last-axis-step": (one_slice([2, 6, 5, 7], [1, 2], [END, 7], [2, 3], [2, 3]),
                             [2, 6, 5, 7]),
    "rank5-last-axis-step": (one_slice([1, 3, 4, 5, 8], [1, 1], [3, 100], [1, 4], [2, 4]),
                             [1, 3, 4, 5, 8]),
    "rank3": (one_slice([2, 11, 4], [2], [-1], [1], [4]), [2, 11, 4]),
    "rank3-even": (one_slice([3, 12, 2], [0], [END], [1], [2]), [3, 12, 2]),
    "rank5": (one_slice([1, 5, 6, 7, 2], [1, 0, 2], [5, 6, 7], [1, 2, 3], [2, 3, 1]),
              [1, 5, 6, 7, 2]),
    "dynamic-negative-end": (one_slice(["N", "T", 3], [1], [-2], [1], [3]), [2, 13, 3]),
    "dynamic-batch-whole": (one_slice(["N", 9, 4], [0, 1], [END, 9], [0, 1], [1, 2]),
                            [3, 9, 4]),
}


def _feed(shape) -> np.ndarray:
    return np.random.default_rng(0).uniform(-2, 2, shape).astype(np.float32)


def _ort(proto: onnx.ModelProto, x: np.ndarray, every: bool = False):
    """onnxruntime's first output (every output with ``every``)."""
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"x": x})
    return outputs if every else outputs[0]


def _to_keras(a: np.ndarray, perm) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(perm)) if perm else a


def _check(proto: onnx.ModelProto, shape, for_tfjs: bool):
    """Raised (for Keras or tfjs-layers), the NumPy Keras reference reproduces onnxruntime
    exactly; the raised model."""
    raised = raise_model(ir.from_proto(proto), for_tfjs=for_tfjs)
    x = _feed(shape)
    outputs = run(raised.model, [_to_keras(x, raised.input_perms[0])]).outputs
    ops = {n.op_type for n in proto.graph.node}
    for got, want, perm in zip(outputs, _ort(proto, x, every=True), raised.output_perms,
                               strict=True):
        if ops & {"Conv", "Sigmoid"}:
            np.testing.assert_allclose(np.asarray(got), _to_keras(want, perm), atol=1e-5,
                                       rtol=1e-5)
        else:  # only copies: the very numbers
            np.testing.assert_array_equal(np.asarray(got), _to_keras(want, perm))
    return raised


# raised for tfjs-layers, these are refused: it has no Cropping1D, and a sequence cut as a
# one-column image needs a Reshape of static sizes (tfjs-layers resolves no -1)
TFJS_REFUSED = {"dynamic-negative-end": "takes a Reshape of static sizes"}


@pytest.mark.parametrize("for_tfjs", [False, True], ids=["keras", "tfjs"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_strided_slice_matches_onnxruntime(case, for_tfjs):
    proto, shape = CASES[case]
    if for_tfjs and case in TFJS_REFUSED:
        with pytest.raises(modelport.UnsupportedError, match=TFJS_REFUSED[case]):
            _check(proto, shape, for_tfjs)
        return
    raised = _check(proto, shape, for_tfjs)
    classes = [layer.class_name for layer in raised.model.layers]
    assert any(c.startswith("MaxPooling") for c in classes), classes
    if for_tfjs and "dynamic" not in case:  # tfjs-layers has Cropping2D only
        from modelport.models import tfjs_support

        assert not tfjs_support.blockers(raised.model), classes


def test_focus_runs_on_the_channels_last_image():
    """The Focus block reads the NCHW input before any layout-sensitive op; its Transpose to
    NHWC is moved above the Slices and the Concat (``hoist_views``), so the Keras input is
    channels-last and each Slice is a MaxPooling2D over rows (2, 1) or columns (1, 2), with no
    Permute."""
    raised = raise_model(ir.from_proto(CASES["focus-nonsquare"][0]))
    assert raised.input_perms == [[0, 2, 3, 1]] and raised.permutes == 0
    pools = [lay for lay in raised.model.layers if lay.class_name == "MaxPooling2D"]
    assert len(pools) == 8  # one per Slice
    assert sorted(tuple(p.config["strides"]) for p in pools) == [(1, 2)] * 4 + [(2, 1)] * 4
    assert all(p.config["pool_size"] == [1, 1] and p.config["padding"] == "valid"
               for p in pools)
    for case in ("focus-after-sigmoid", "focus-dynamic-hw"):  # through a Sigmoid; any size
        raised = raise_model(ir.from_proto(CASES[case][0]))
        assert raised.input_perms == [[0, 2, 3, 1]] and raised.permutes == 0, case


def test_focus_without_a_layout_op_after_it_stays_channels_first():
    """With no Conv after it nothing asks for channels-last: the image stays NCHW, and each
    column Slice (its last axis) pools between two Permutes."""
    raised = raise_model(ir.from_proto(CASES["focus-no-conv-int32-ends"][0]))
    assert raised.input_perms == [None] and raised.permutes == 2 * 4


def test_input_read_outside_the_focus_keeps_its_layout():
    """The input also feeds a graph output directly: moving the Transpose to it would leave
    one between layers, so the Focus runs channels-first (Permutes) and still matches."""
    raised = _check(CASES["focus-input-read-twice"][0], CASES["focus-input-read-twice"][1],
                    False)
    assert raised.input_perms == [None] and raised.permutes == 2 * 4 + 1


@pytest.mark.parametrize("case,target", [("focus-nonsquare", "m.keras"), ("focus-even", "m.h5"),
                                         ("focus-dynamic-hw", "m.keras"),
                                         ("rank4-negative-bounds", "m.h5"),
                                         ("rank3", "m.keras"), ("rank5", "m.keras")])
def test_written_model_runs_in_real_keras(case, target, tmp_path, keras3):
    proto, shape = CASES[case]
    model, raised = written_in_keras(proto, tmp_path, target, keras3)
    x = _feed(shape)
    got = model.predict(_to_keras(x, raised.input_perms[0]), verbose=0)
    np.testing.assert_allclose(got, _to_keras(_ort(proto, x), raised.output_perms[0]),
                               atol=1e-5, rtol=1e-5)


# id -> (model, words the refusal must hold)
REFUSED = {
    "negative-step": (one_slice([2, 6, 5, 3], [-1], [-END], [1], [-1]), "negative step (-1)"),
    "rank2-step": (one_slice([2, 8], [1], [END], [1], [2]), "rank-2 tensor"),
    "batch-step": (one_slice([4, 6, 3], [0], [END], [0], [2]), "slicing the batch axis"),
    "dynamic-end-inside": (one_slice(["N", "T", 3], [0], [5], [1], [2]),
                           "whether the slice's end 5 falls inside it"),
    "dynamic-negative-start": (one_slice(["N", "T", 3], [-4], [END], [1], [2]),
                               "starts 4 cells before its end"),
    "empty": (one_slice([2, 6, 3], [4], [2], [1], [1]), "an empty slice of axis 1"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_slice_without_keras_form_is_refused_naming_why(case, tmp_path):
    proto, words = REFUSED[case]
    src = tmp_path / "m.onnx"
    onnx.save(proto, str(src))
    with pytest.raises(modelport.UnsupportedError) as e:
        modelport.convert(src, tmp_path / "m.keras")
    assert words in e.value.message and "Slice node 's'" in e.value.message
    assert not (tmp_path / "m.keras").exists()
