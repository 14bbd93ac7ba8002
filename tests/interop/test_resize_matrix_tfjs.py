"""Resizes raised as Permute + Dense(interpolation matrix) per axis
(``onnx_to_keras/resize_matrix.py``) written as TF.js layers-models with the default parity
check, and run by real ``@tensorflow/tfjs-layers`` under Node against onnxruntime on the ONNX
source: TF 1's ResizeBilinear (asymmetric) as tf2onnx writes it, a shrinking align_corners
bilinear, and a rank-5 (3-D) resize whose Dense layers run on rank-5 tensors; and TF 1's
bilinear by integer factors on free height/width (``resize_free.py``) at three sizes."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest

import modelport
from modelport.converters.onnx_to_keras import raise_model
from tests.test_onnx_to_keras_resize_matrix import (
    CASES,
    FREE,
    _feed,
    _input_shape,
    _ort,
    _perm,
    free_spatial,
)

TFJS_CASES = ["tf1-resize-bilinear-2x", "linear-align_corners-down-0.6x0.75",
              "cubic-half_pixel-up-1.5x2", "3d-align-corners",
              # half-pixel bilinear: UpSampling2D (the writer's tfjs-layers rewrite) and, at a
              # non-integer scale, the matrices (Resizing does not run a batch in tfjs-layers;
              # nanodet's ResizeBilinear was refused)
              "linear-half_pixel-int-2x3", "linear-half_pixel-sizes-7x3"]


@pytest.mark.parametrize("case", TFJS_CASES)
def test_layers_model_runs_in_real_tfjs(case, tmp_path, tfjs):
    proto = CASES[case]
    src = tmp_path / "m.onnx"
    onnx.save(proto, str(src))
    report = modelport.convert(src, tmp_path / "web", to="tfjs-layers")  # default check
    assert report.parity is not None and report.parity.passed
    raised = raise_model(ir.from_proto(proto), for_tfjs=True)
    x = _feed(_input_shape(proto), seed=5)
    result = tfjs.run_layers_model(tmp_path / "web" / "model.json",
                                   [("x", _perm(x, raised.input_perms[0]))])
    np.testing.assert_allclose(result["arrays"][0], _perm(_ort(proto, x), raised.output_perms[0]),
                               atol=2e-5, rtol=1e-5)


def test_free_size_asymmetric_bilinear_runs_in_real_tfjs_at_two_sizes(tmp_path, tfjs):
    """The free-size form (resize_free.py: AveragePooling2D 'same', whose mean tfjs also takes
    over the real cells only, Concatenate, Conv2DTranspose) at two sizes and at one cell."""
    proto = FREE["asymmetric-bilinear-3x2"]
    src = tmp_path / "m.onnx"
    onnx.save(proto, str(src))
    report = modelport.convert(src, tmp_path / "web", to="tfjs-layers")  # default check
    assert report.parity is not None and report.parity.passed
    raised = raise_model(ir.from_proto(proto), for_tfjs=True)
    for seed, hw in enumerate([(20, 34), (13, 8), (1, 1)]):
        x = _feed(free_spatial._shape(proto, hw), seed)
        result = tfjs.run_layers_model(tmp_path / "web" / "model.json",
                                       [("x", _perm(x, raised.input_perms[0]))])
        np.testing.assert_allclose(result["arrays"][0],
                                   _perm(_ort(proto, x), raised.output_perms[0]),
                                   atol=2e-5, rtol=1e-5, err_msg=f"at {hw}")
