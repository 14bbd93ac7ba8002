"""Real @tensorflow/tfjs 4.22 under Node on ``Concatenate(axis=-2)`` (the model is
tests/test_tfjs_negative_axes.py's): written as is, tfjs concatenates along the last axis, the
numbers the NumPy reference's tfjs form (``tfjs_semantics``) computes; rewritten by modelport
(axis 1), tfjs gives Keras's numbers."""

from __future__ import annotations

import numpy as np

import modelport
from modelport.formats import tfjs_layers
from modelport.models import tfjs_semantics
from modelport.runtime import engines

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
