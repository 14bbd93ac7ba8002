"""Real Keras 3 loads the .h5 and .keras files modelport writes and reproduces the outputs.

Sources are files made by Keras 2 (tf_keras), Keras 3 and tfjs; whatever the source generation,
the written files are in the Keras 3 dialect, so this is also the Keras 2 -> 3 upgrade path.
"""

from __future__ import annotations

import numpy as np
import pytest

import modelport

from ..conftest import LAYER_CASES, assert_close, case_params
from ..expectations import KERAS3_REFUSED, refusal


def _converted_unless_refused(case, dst, reason: str | None) -> bool:
    """Convert ``case`` to ``dst``; where ``reason`` says the target is refused, assert the
    refusal (and that nothing was written) instead. True when a file was written."""
    if reason:
        with pytest.raises(modelport.UnsupportedError, match=reason):
            modelport.convert(case.path, dst)
        assert not dst.exists()
        return False
    modelport.convert(case.path, dst)
    return True


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("case", case_params())
def test_keras3_loads_modelport_output(case, suffix, tmp_path, keras3):
    dst = tmp_path / f"model{suffix}"
    if not _converted_unless_refused(case, dst, refusal(KERAS3_REFUSED, case)):
        return
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


# Per-layer fixtures (fixtures/layers, made by real Keras 3) of these classes, every variant:
# modelport reads the .keras file and writes .h5 and .keras that real Keras 3 loads, with the
# outputs Keras recorded; and it reads the .h5 Keras 3 itself writes of them.
LAYER_CLASSES = ("Attention", "AdditiveAttention", "GroupQueryAttention", "RMSNormalization")
LAYER_CASES_CHECKED = [c for c in LAYER_CASES if c.layer_class in LAYER_CLASSES]
# case -> why modelport refuses to write it as .h5 (Keras 3's legacy loader would misread it)
LAYER_H5_REFUSED = {
    "RMSNormalization-axes-epsilon": "drops axis=",
    "Attention-mask_zero-GlobalAveragePooling1D": "keras.ops nodes",
    "GroupQueryAttention-mask_zero-LSTM": "keras.ops nodes",
}


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("case", case_params(LAYER_CASES_CHECKED))
def test_keras3_loads_modelport_output_of_layer_cases(case, suffix, tmp_path, keras3):
    dst = tmp_path / f"model{suffix}"
    reason = LAYER_H5_REFUSED.get(case.name) if suffix == ".h5" else None
    if not _converted_unless_refused(case, dst, reason):
        return
    ys = _predict(keras3, dst, case)
    assert len(ys) == len(case.outputs)
    for (name, expected), actual in zip(case.outputs, ys):
        assert_close(actual, expected, what=f"{case.id} -> {suffix} output {name}")


@pytest.mark.parametrize("case", case_params([c for c in LAYER_CASES_CHECKED
                                              if c.name not in LAYER_H5_REFUSED]))
def test_modelport_reads_the_h5_keras3_writes_of_layer_cases(case, tmp_path, keras3):
    """Keras 3 names GroupQueryAttention by its Python class in .h5 (GroupedQueryAttention)."""
    from modelport.runtime.keras_reference import run

    path = tmp_path / "keras.h5"
    keras3.saving.load_model(case.path, compile=False).save(path)
    model = modelport.load(path)
    assert case.layer_class in {layer.class_name for layer in model.layers}
    got = run(model, [x for _, x in case.inputs]).outputs
    for (name, expected), actual in zip(case.outputs, got):
        assert_close(actual, expected, atol=1e-5, rtol=1e-5, what=f"{case.id} .h5 {name}")
