"""Resizes of static spatial size raised as Permute + Dense(interpolation matrix) per axis
(``converters/onnx_to_keras/resize_matrix.py``, issue 18): what no UpSampling / Resizing layer
computes exactly (asymmetric and align_corners bilinear, TF 1's ResizeBilinear as tf2onnx
writes it, non-integer and shrinking scales, nearest modes that do not repeat pixels, cubic,
antialias, tf_crop_and_resize). Each case, a Conv 1x1 then one Resize built with onnx's helper,
is compared with onnxruntime in modelport's NumPy Keras reference (Keras and tfjs-layers
forms); a subset is written as ``.keras`` and ``.h5`` with the default parity check and run in
real Keras 3, as are TF 1's ResizeBilinear / ResizeNearestNeighbor written to ONNX by the real
tf2onnx (``fixtures/make_tf_resize_fixtures.py``), against TensorFlow's own outputs. The
real-tfjs cases are in tests/interop/test_resize_matrix_tfjs.py. Last, TF 1's bilinear by
integer factors on free height/width (``resize_free.py``), at three sizes (one of 1x1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.converters.onnx_to_keras import raise_model
from modelport.runtime.keras_reference import run
from tests import test_onnx_to_keras_free_spatial as free_spatial

from .onnx_graphs import written_in_keras

F = TensorProto.FLOAT
TF_RESIZE = Path(__file__).resolve().parent.parent / "fixtures" / "tf_resize"
TF_CASES = ["bilinear_2x", "bilinear_align_corners", "bilinear_fractional",
            "nearest_fractional"]
COORDS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
          "asymmetric"]
NEAREST_COORDS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                  "tf_half_pixel_for_nn"]
NEAREST_MODES = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
# (scales, sizes) on a [2, 3, 5, 6] input: non-integer up, down, mixed, integer, to one cell
SIZES = {"up-1.5x2": ([1, 1, 1.5, 2.0], None), "down-0.6x0.75": ([1, 1, 0.6, 0.75], None),
         "sizes-7x3": (None, [2, 3, 7, 3]), "int-2x3": ([1, 1, 2, 3], None),
         "sizes-1x9": (None, [2, 3, 1, 9])}


def resize_model(shape, scales=None, sizes=None, roi=(), opset=19, **attrs) -> onnx.ModelProto:
    """x -> Conv 1x1 (so the layout is channels-last) -> Resize(attrs) -> y."""
    rank = len(shape)
    w = np.random.default_rng(1).standard_normal((3, shape[1]) + (1,) * (rank - 2)) * 0.5
    consts = {"w": w.astype(np.float32), "roi": np.asarray(roi, np.float32)}
    ins = ["t", "roi", ""]
    if scales is not None:
        consts["sc"] = np.asarray(scales, np.float32)
        ins[2] = "sc"
    if sizes is not None:
        consts["sz"] = np.asarray(sizes, np.int64)
        ins.append("sz")
    nodes = [helper.make_node("Conv", ["x", "w"], ["t"]),
             helper.make_node("Resize", ins, ["y"], **attrs)]
    graph = helper.make_graph(nodes, "resize", [helper.make_tensor_value_info("x", F, shape)],
                              [helper.make_tensor_value_info("y", F, None)],
                              [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    return onnx.shape_inference.infer_shapes(model)


def _cases() -> dict[str, onnx.ModelProto]:
    cases = {}
    shape = [2, 3, 5, 6]
    for size_id, (scales, sizes) in SIZES.items():
        for coord in COORDS:
            cases[f"linear-{coord}-{size_id}"] = resize_model(
                shape, scales, sizes, mode="linear", coordinate_transformation_mode=coord)
            cases[f"cubic-{coord}-{size_id}"] = resize_model(
                shape, scales, sizes, mode="cubic", coordinate_transformation_mode=coord)
        for coord in NEAREST_COORDS:
            for nearest in NEAREST_MODES:
                cases[f"nearest-{coord}-{nearest}-{size_id}"] = resize_model(
                    shape, scales, sizes, mode="nearest", coordinate_transformation_mode=coord,
                    nearest_mode=nearest)
    down = [1, 1, 0.6, 0.45]
    cases.update({
        "linear-antialias-down": resize_model(shape, down, mode="linear", antialias=1),
        "linear-antialias-exclude-down": resize_model(shape, down, mode="linear", antialias=1,
                                                      exclude_outside=1),
        "cubic-antialias-down": resize_model(shape, down, mode="cubic", antialias=1),
        "cubic-exclude-a-0.5": resize_model(shape, [1, 1, 1.5, 2.5], mode="cubic",
                                            exclude_outside=1, cubic_coeff_a=-0.5),
        "nearest-half-pixel-symmetric-int": resize_model(
            shape, [1, 1, 2, 3], mode="nearest",
            coordinate_transformation_mode="half_pixel_symmetric"),
        "crop-and-resize-linear": resize_model(
            shape, sizes=[2, 3, 4, 7], roi=[0, 0, 0.2, -0.1, 1, 1, 0.9, 1.2], mode="linear",
            coordinate_transformation_mode="tf_crop_and_resize"),
        "crop-and-resize-nearest": resize_model(
            shape, sizes=[2, 3, 4, 7], roi=[0, 0, 0.2, 0.1, 1, 1, 0.9, 0.8], mode="nearest",
            coordinate_transformation_mode="tf_crop_and_resize"),
        "axes-scales": resize_model(shape, [1.5, 2.5], mode="linear", axes=[2, 3],
                                    coordinate_transformation_mode="asymmetric"),
        "axes-sizes-not-larger": resize_model(shape, sizes=[8, 8], axes=[2, 3], mode="linear",
                                              coordinate_transformation_mode="align_corners",
                                              keep_aspect_ratio_policy="not_larger"),
        "sizes-not-smaller": resize_model(shape, sizes=[8, 8], axes=[2, 3], mode="cubic",
                                          keep_aspect_ratio_policy="not_smaller"),
        # an axis of scale 1 is copied (the formula would read cell o + 1 here)
        "scale-1-axis-tf-nn-ceil": resize_model(
            shape, [1, 1, 1, 2.5], mode="nearest", nearest_mode="ceil",
            coordinate_transformation_mode="tf_half_pixel_for_nn"),
        "width-only": resize_model(shape, [1, 1, 1, 2], mode="linear",
                                   coordinate_transformation_mode="asymmetric"),
        "1d-asymmetric": resize_model([2, 3, 7], [1, 1, 1.7], mode="linear",
                                      coordinate_transformation_mode="asymmetric"),
        "3d-align-corners": resize_model([2, 3, 3, 4, 5], [1, 1, 2, 1.5, 0.6], mode="linear",
                                         coordinate_transformation_mode="align_corners"),
        # asymmetric bilinear 2x by sizes (TF 1's ResizeBilinear; the real tf2onnx form is in
        # fixtures/tf_resize)
        "tf1-resize-bilinear-2x": resize_model(shape, sizes=[2, 3, 10, 12], opset=13,
                                               mode="linear",
                                               coordinate_transformation_mode="asymmetric"),
        "align-corners-opset11": resize_model(shape, [1, 1, 2, 2], opset=11, mode="linear",
                                              coordinate_transformation_mode="align_corners"),
    })
    return cases


CASES = _cases()
# each written as .keras and .h5 and run in real Keras 3
REAL_KERAS = ["tf1-resize-bilinear-2x", "linear-align_corners-down-0.6x0.75",
              "cubic-half_pixel-up-1.5x2", "nearest-half_pixel-round_prefer_floor-sizes-7x3",
              "linear-antialias-down", "3d-align-corners"]


def _feed(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-2, 2, shape).astype(np.float32)


def _input_shape(proto: onnx.ModelProto) -> list[int]:
    return [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]


def _ort(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _perm(a: np.ndarray, perm) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(perm)) if perm else a


@pytest.mark.parametrize("for_tfjs", [False, True], ids=["keras", "tfjs"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_resize_matches_onnxruntime(case, for_tfjs):
    proto = CASES[case]
    raised = raise_model(ir.from_proto(proto), for_tfjs=for_tfjs)
    x = _feed(_input_shape(proto))
    got = run(raised.model, [_perm(x, raised.input_perms[0])]).outputs[0]
    expected = _perm(_ort(proto, x), raised.output_perms[0])
    # a row holds 1-2 (linear), 4 (cubic) or a window of weights: float32 rounding only
    np.testing.assert_allclose(np.asarray(got), expected, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("case,layers", [
    # 2 Dense, and 3 Permutes (each axis swapped last in turn, then back)
    ("tf1-resize-bilinear-2x", ["Conv2D", "Permute", "Dense", "Permute", "Dense", "Permute"]),
    # one axis: Permute it last, Dense, Permute back; H untouched
    ("width-only", ["Conv2D", "Permute", "Dense", "Permute"]),
    ("linear-half_pixel-int-2x3", ["Conv2D", "UpSampling2D"]),  # still the cheap layer
    ("linear-half_pixel-sizes-7x3", ["Conv2D", "Resizing"]),
    # scale 1.5 on 5 cells: 7 of them, but ONNX maps them by 1.5 where Resizing uses 7 / 5
    ("linear-half_pixel-up-1.5x2", ["Conv2D", "Permute", "Dense", "Permute", "Dense",
                                    "Permute"]),
    ("nearest-asymmetric-floor-int-2x3", ["Conv2D", "UpSampling2D"]),
])
def test_cheap_layers_stay_where_exact_and_the_matrix_form_is_short(case, layers):
    raised = raise_model(ir.from_proto(CASES[case]))
    classes = [layer.class_name for layer in raised.model.layers][1:]
    assert classes == layers


def test_a_resizing_bound_for_tfjs_layers_keeps_the_matrices():
    """tfjs-layers 4.22's Resizing drops the batch axis: a raising for it writes the
    interpolation matrices where Keras's form is Resizing (a bilinear UpSampling2D stays: the
    layers-model writer rewrites it for tfjs-layers)."""
    raised = raise_model(ir.from_proto(CASES["linear-half_pixel-sizes-7x3"]), for_tfjs=True)
    classes = [layer.class_name for layer in raised.model.layers][1:]
    assert "Dense" in classes and "Resizing" not in classes
    kept = raise_model(ir.from_proto(CASES["linear-half_pixel-int-2x3"]), for_tfjs=True)
    assert "UpSampling2D" in [layer.class_name for layer in kept.model.layers]


def test_dense_kernels_are_the_interpolation_matrices():
    """TF 1's ResizeBilinear 5 -> 10 (asymmetric): output o reads o / 2, so even outputs copy
    a cell and odd ones average two (the last one clamps to the edge)."""
    raised = raise_model(ir.from_proto(CASES["tf1-resize-bilinear-2x"]))
    kernels = [layer.weights[0].array for layer in raised.model.layers
               if layer.class_name == "Dense"]
    rows = next(k for k in kernels if k.shape == (5, 10))
    expected = np.zeros((5, 10), np.float32)
    for o in range(10):
        lo = o // 2
        if o % 2 == 0 or lo == 4:
            expected[lo, o] = 1
        else:
            expected[lo, o] = expected[lo + 1, o] = 0.5
    np.testing.assert_array_equal(rows, expected)


@pytest.mark.parametrize("target", ["m.keras", "m.h5"])
@pytest.mark.parametrize("case", REAL_KERAS)
def test_written_model_runs_in_real_keras(case, target, tmp_path, keras3):
    proto = CASES[case]
    model, raised = written_in_keras(proto, tmp_path, target, keras3)
    x = _feed(_input_shape(proto), seed=3)
    got = model.predict(_perm(x, raised.input_perms[0]), verbose=0)
    np.testing.assert_allclose(got, _perm(_ort(proto, x), raised.output_perms[0]),
                               atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("proto,words", [
    (resize_model([1, 3, 2, 1500], [1, 1, 1, 2], mode="linear",
                  coordinate_transformation_mode="asymmetric"), "--to tfjs-graph"),
    (resize_model([2, 3, 5, 6], sizes=[2, 3, 4, 7], roi=[0, 0, 0.2, 0.1, 1, 1, 0.9, 0.8],
                  mode="linear", coordinate_transformation_mode="tf_crop_and_resize",
                  extrapolation_value=1.0), "nonzero extrapolation_value"),
    (resize_model([2, 3, 5, 6], [1, 1, 1.5, 2], mode="nearest",
                  coordinate_transformation_mode="half_pixel_symmetric"), "rounded"),
], ids=["kernel-too-large", "crop-extrapolation", "nearest-symmetric-rounded"])
def test_what_has_no_exact_matrix_form_is_refused_naming_why(proto, words, tmp_path):
    src = tmp_path / "m.onnx"
    onnx.save(proto, str(src))
    with pytest.raises(modelport.UnsupportedError) as e:
        modelport.convert(src, tmp_path / "m.h5")
    assert words in e.value.message, e.value.message
    assert not (tmp_path / "m.h5").exists()


@pytest.mark.parametrize("target", ["m.keras", "m.h5"])
@pytest.mark.parametrize("case", TF_CASES)
def test_tf2onnx_resizes_match_tensorflow_in_real_keras(case, target, tmp_path, keras3):
    """tf2onnx's Transpose -> Resize -> Transpose around TF 1's resize (NHWC in and out),
    written with the default parity check, loaded by Keras 3: TensorFlow's own output."""
    data = np.load(TF_RESIZE / f"{case}.npz")
    report = modelport.convert(TF_RESIZE / f"{case}.onnx", tmp_path / target)
    assert report.parity is not None and report.parity.passed
    model = keras3.models.load_model(tmp_path / target, compile=False)
    assert "Dense" in {type(layer).__name__ for layer in model.layers}
    got = model.predict(data["x"], verbose=0)
    np.testing.assert_allclose(got, data["tf"], atol=2e-5, rtol=1e-5)


def test_scales_that_onnxruntime_floors_otherwise_than_shape_inference_are_refused(tmp_path):
    """tf2onnx's align_corners 6 -> 10 by the float32 scale 10 / 6: onnxruntime (and TF) make
    10 cells, ONNX's shape inference 9, so the model's own shapes are not what it computes."""
    with pytest.raises(modelport.UnsupportedError) as e:
        modelport.convert(TF_RESIZE / "scales_floor_mismatch.onnx", tmp_path / "m.h5")
    assert "floored in float32" in e.value.message and "[9, 4]" in e.value.message
    assert not (tmp_path / "m.h5").exists()


# --- free height/width: TF 1's ResizeBilinear by integer factors (resize_free.py) -----------

FREE = {f"asymmetric-bilinear-{h}x{w}": free_spatial.resize(
            [1, 1, h, w], mode="linear", coordinate_transformation_mode="asymmetric")
        for h, w in [(2, 2), (3, 2), (1, 4)]}


@pytest.mark.parametrize("for_tfjs", [False, True], ids=["keras", "tfjs"])
@pytest.mark.parametrize("case", sorted(FREE))
def test_free_size_asymmetric_bilinear_matches_onnxruntime_at_two_sizes(case, for_tfjs):
    proto = FREE[case]
    raised = raise_model(ir.from_proto(proto), for_tfjs=for_tfjs)
    assert raised.model.layers[0].config["batch_shape"][1:3] == [None, None]
    for seed, hw in enumerate([(11, 14), (16, 9), (1, 1)]):
        x = _feed(free_spatial._shape(proto, hw), seed)
        (got,) = run(raised.model, [_perm(x, raised.input_perms[0])]).outputs
        np.testing.assert_allclose(np.asarray(got), _perm(_ort(proto, x),
                                                          raised.output_perms[0]),
                                   atol=2e-5, rtol=1e-5, err_msg=f"{case} at {hw}")


@pytest.mark.parametrize("target", ["m.keras", "m.h5"])
def test_free_size_asymmetric_bilinear_runs_in_real_keras_at_two_sizes(target, tmp_path,
                                                                       keras3):
    proto = FREE["asymmetric-bilinear-3x2"]
    src = tmp_path / "m.onnx"
    onnx.save(proto, str(src))
    report = modelport.convert(src, tmp_path / target)  # the default parity check, no pin
    assert report.parity is not None and report.parity.passed
    raised = raise_model(ir.from_proto(proto))
    model = keras3.models.load_model(tmp_path / target, compile=False)
    assert list(model.input_shape[1:3]) == [None, None]
    for seed, hw in enumerate([(20, 34), (13, 8)]):
        x = _feed(free_spatial._shape(proto, hw), seed)
        got = model.predict(_perm(x, raised.input_perms[0]), verbose=0)
        np.testing.assert_allclose(got, _perm(_ort(proto, x), raised.output_perms[0]),
                                   atol=2e-5, rtol=1e-5, err_msg=f"at {hw}")
