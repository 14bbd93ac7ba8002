"""The tf2onnx oracle in real Keras 3: the ``.keras`` and ``.h5`` files modelport raises from
ONNX that tf2onnx wrote for Keras 3 models (``fixtures/tf2onnx``) load in Keras 3 and compute
what the original Keras model computed on the recorded inputs."""

from __future__ import annotations

import numpy as np
import pytest

import modelport

from ..conftest import assert_close
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
