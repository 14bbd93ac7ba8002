"""The tf2onnx oracle in real Keras 3: the ``.keras`` and ``.h5`` files modelport raises from
ONNX that tf2onnx wrote for Keras 3 models (``fixtures/tf2onnx``) load in Keras 3 and compute
what the original Keras model computed on the recorded inputs; and the Keras 3 operations
the raising writes for ONNX ops without a layer run there as onnxruntime runs the ONNX."""

from __future__ import annotations

import numpy as np
import pytest

import modelport

from ..conftest import assert_close
from ..test_onnx_to_keras_operations import CASES as OPERATION_CASES
from ..test_tf2onnx_oracle import NAMES, _case


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("name", NAMES)
def test_keras3_runs_raised_tf2onnx_model(name, suffix, tmp_path, keras3):
    src, xs, ys = _case(name)
    dst = tmp_path / f"model{suffix}"
    modelport.convert(src, dst)
    model = keras3.saving.load_model(dst, compile=False)
    got = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    got = got if isinstance(got, (list, tuple)) else [got]
    assert len(got) == len(ys)
    for actual, expected in zip(got, ys):
        assert_close(np.asarray(actual), expected, atol=2e-5, rtol=1e-4,
                     what=f"{name}{suffix} in Keras {keras3.__version__}")


@pytest.mark.parametrize("case", sorted(OPERATION_CASES))
def test_keras3_runs_raised_keras_operations(case, tmp_path, keras3):
    """The Keras 3 operations raised from Log / ReduceMin / ArgMax / Equal / Mod load in real
    Keras 3 from the .keras file and agree with onnxruntime on the ONNX."""
    import onnx
    import onnxruntime as ort

    proto, _ = OPERATION_CASES[case]
    src = tmp_path / "m.onnx"
    onnx.save(proto, src)
    modelport.convert(src, tmp_path / "m.keras")
    x_info = proto.graph.input[0].type.tensor_type
    dims = [4 if d.dim_param else d.dim_value for d in x_info.shape.dim]
    rng = np.random.default_rng(0)
    x = rng.integers(-9, 9, dims).astype(np.int64) if x_info.elem_type == onnx.TensorProto.INT64 \
        else rng.standard_normal(dims).astype(np.float32)
    (want,) = ort.InferenceSession(str(src)).run(None, {proto.graph.input[0].name: x})
    model = keras3.saving.load_model(tmp_path / "m.keras", compile=False)
    got = np.asarray(model.predict(x.astype(np.int32) if x.dtype == np.int64 else x, verbose=0))
    assert got.shape == want.shape
    if want.dtype.kind == "f":
        assert_close(got, want, atol=1e-6, rtol=1e-5, what=case)
    else:
        np.testing.assert_array_equal(got.astype(want.dtype), want, err_msg=case)
