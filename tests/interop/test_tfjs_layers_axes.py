"""Real @tensorflow/tfjs 4.22 under Node on ``Concatenate(axis=-2)`` (the model is
tests/test_tfjs_negative_axes.py's): written as is, tfjs concatenates along the last axis, the
numbers the NumPy reference's tfjs form (``tfjs_semantics``) computes; rewritten by modelport
(axis 1), tfjs gives Keras's numbers. ``BatchNormalization`` over an axis other than the last
(tests/test_tfjs_batch_norm_axis.py): written as is, tfjs's CPU kernel gives other numbers;
with the axis moved last (``Permute``), Keras's."""

from __future__ import annotations

import numpy as np
import pytest

import modelport
from modelport.formats import tfjs_layers
from modelport.models import tfjs_semantics
from modelport.runtime import engines

from ..test_tfjs_batch_norm_axis import bn_model, softmax_model
from ..test_tfjs_batch_norm_axis import unrewritten as bn_unrewritten  # noqa: F401
from ..test_tfjs_negative_axes import KERAS, TFJS, A, B, concat_model, without_rewrite  # noqa: F401


def _tfjs(tfjs, model_json) -> list[float]:
    result = tfjs.run_layers_model(model_json, [("a", A), ("b", B)])
    return np.asarray(result["arrays"][0]).reshape(-1).tolist()


def test_real_tfjs_runs_the_rewritten_axis_as_keras(concat_model, tmp_path, tfjs):  # noqa: F811
    modelport.convert(concat_model, tmp_path / "web", to="tfjs-layers")
    assert _tfjs(tfjs, tmp_path / "web" / "model.json") == KERAS


def test_real_tfjs_runs_a_negative_axis_as_the_reference_says(concat_model, tmp_path, tfjs,  # noqa: F811
                                                              without_rewrite):  # noqa: F811
    tfjs_layers.write(modelport.load(concat_model), tmp_path / "bad")
    back = tfjs_layers.read(tmp_path / "bad")
    assert tfjs_semantics.divergences(back)
    reference = engines.TfjsLayersEngine(back, engine="reference").run([A, B])[0]
    assert _tfjs(tfjs, tmp_path / "bad" / "model.json") == TFJS == reference.reshape(-1).tolist()


BN_FORMS = [((3, 4), 1, False), ((3, 4, 5), -3, False), ((3, 4, 5), 2, True)]


def _bn_outputs(keras3, tfjs, src, web, shape):
    x = np.random.default_rng(2).standard_normal((4, *shape)).astype(np.float32)
    want = keras3.saving.load_model(src, compile=False).predict(x, verbose=0)
    name = modelport.load(src).layers[0].name
    got = tfjs.run_layers_model(web / "model.json", [(name, x)])["arrays"][0]
    return np.asarray(got), want


@pytest.mark.parametrize("shape,axis,sequential", BN_FORMS)
def test_real_tfjs_runs_batch_norm_moved_last_as_keras(shape, axis, sequential, keras3,
                                                        tmp_path, tfjs):
    src = bn_model(keras3, shape, axis, tmp_path / "m.keras", sequential=sequential)
    modelport.convert(src, tmp_path / "web", to="tfjs-layers")
    got, want = _bn_outputs(keras3, tfjs, src, tmp_path / "web", shape)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_real_tfjs_computes_batch_norm_over_axis_1_otherwise(keras3, tmp_path, tfjs,
                                                             bn_unrewritten):  # noqa: F811
    src = bn_model(keras3, (3, 4), 1, tmp_path / "m.keras")
    tfjs_layers.write(modelport.load(src), tmp_path / "bad")
    got, want = _bn_outputs(keras3, tfjs, src, tmp_path / "bad", (3, 4))
    assert np.max(np.abs(got - want)) > 0.1


def test_real_tfjs_runs_softmax_moved_last_as_keras(keras3, tmp_path, tfjs):
    """tfjs-core throws on a softmax over any axis but the last; moved last, it runs."""
    src = softmax_model(keras3, tmp_path / "m.keras")
    modelport.convert(src, tmp_path / "web", to="tfjs-layers")
    got, want = _bn_outputs(keras3, tfjs, src, tmp_path / "web", (3, 4, 5))
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-5)
