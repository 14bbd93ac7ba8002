"""onnxruntime's CUDA provider: parity with TF32 off. Runs where CUDA is usable (the lent GPU
machine; see ../shared/gpu/README.md), skipped elsewhere — CI has no GPU."""

from __future__ import annotations

import sys

import pytest

import modelport
from modelport.runtime.onnxruntime import CUDA_OPTIONS, cuda_usable

from .conftest import ALL_CASES, FIXTURES, LAYER_CASES, case_params

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not cuda_usable(), reason="gpu: onnxruntime CUDA provider "
                                                            "is not usable here")]

sys.path.insert(0, str(FIXTURES))


def test_cuda_sessions_run_without_tf32():
    from modelport.runtime.engines import OnnxRuntime

    assert CUDA_OPTIONS == {"use_tf32": "0", "cudnn_conv_algo_search": "DEFAULT"}
    engine = OnnxRuntime(_onnx(FIXTURES / "keras3" / "cnn_bn_pool.keras"), device="cuda")
    assert engine.session.provider == "CUDAExecutionProvider"
    assert "use_tf32=0" in engine.label


GPU_CASES = [c for c in ALL_CASES + LAYER_CASES
             if (c.name != "lambda_layer" and c.kind != "tfjs") or c.generation == "tfjs"]


@pytest.mark.parametrize("case", case_params(GPU_CASES))
def test_parity_on_cuda(case, tmp_path):
    report = modelport.convert(case.path, tmp_path / "m.onnx", device="cuda")
    assert report.parity.target_engine.startswith("onnxruntime CUDAExecutionProvider")
    assert report.parity.passed, report.parity.outputs


@pytest.mark.parametrize("name", ["MobileNetV2", "MobileNetV3Small", "ResNet50",
                                  "EfficientNetB0", "DenseNet121"])
def test_applications_on_cuda(name, tmp_path):
    import make_applications

    src = make_applications.ensure(name)
    report = modelport.convert(src, tmp_path / "m.onnx", device="cuda",
                               inputs=src.with_suffix(".npz"))
    assert report.parity.passed, report.parity.outputs


def _onnx(src):
    import onnx_ir as ir

    from modelport.converters.keras_to_onnx import lower

    return ir.to_proto(lower(modelport.load(src)).model).SerializeToString()


@pytest.mark.parametrize("name", ["resnet50", "densenet121", "inception_v2", "squeezenet",
                                  "vgg19", "shufflenet"])
def test_onnx_to_keras_on_cuda(name, tmp_path):
    """ONNX -> Keras raising with the source run by the CUDA provider (TF32 off), on the light
    models with seeded random weights: their shipped uniform 0.02 weights give logits near
    1e31 whose softmax changes with any summation order (seen on the H100)."""
    import onnx

    from .onnx_suite.cases import discover
    from .test_onnx_light_random_weights import randomized

    case = next(c for c in discover("light") if c.name == name)
    src = tmp_path / "m.onnx"
    onnx.save(randomized(case), str(src))
    report = modelport.convert(src, tmp_path / "m.h5", device="cuda")
    assert report.parity.source_engine.startswith("onnxruntime CUDAExecutionProvider")
    assert report.parity.passed, report.parity.outputs
