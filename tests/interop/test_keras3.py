"""Real Keras 3 loads the .h5 and .keras files modelport writes and reproduces the outputs.

Sources are files made by Keras 2 (tf_keras), Keras 3 and tfjs; whatever the source generation,
the written files are in the Keras 3 dialect, so this is also the Keras 2 -> 3 upgrade path.
"""

from __future__ import annotations

import numpy as np
import pytest

import modelport

from ..conftest import assert_close, case_params
from ..expectations import KERAS3_REFUSED, refusal


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("case", case_params())
def test_keras3_loads_modelport_output(case, suffix, tmp_path, keras3):
    dst = tmp_path / f"model{suffix}"
    reason = refusal(KERAS3_REFUSED, case)
    if reason:
        with pytest.raises(modelport.UnsupportedError, match=reason):
            modelport.convert(case.path, dst)
        assert not dst.exists()
        return
    modelport.convert(case.path, dst)
    if case.name == "lambda_layer":
        # Keras itself refuses Python lambdas in safe mode; the file is otherwise loadable.
        with pytest.raises(ValueError, match="safe_mode"):
            keras3.saving.load_model(dst, compile=False)
        return
    ys = _predict(keras3, dst, case)
    assert len(ys) == len(case.outputs)
    for (name, expected), actual in zip(case.outputs, ys):
        assert_close(actual, expected, what=f"{case.id} -> {suffix} output {name}")


def _predict(keras3, path, case) -> list:
    model = keras3.saving.load_model(path, compile=False)
    xs = [x for _, x in case.inputs]
    ys = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    return [np.asarray(y) for y in (ys if isinstance(ys, (list, tuple)) else [ys])]
