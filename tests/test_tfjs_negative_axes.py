"""tfjs-layers 4.22 concatenates along the last axis for any negative axis (its backend's
``concatenate`` maps axis < 0 to the rank): a Keras ``Concatenate(axis=-2)`` written as is
loads, builds the shapes Keras would, and computes other numbers. The writer counts the axis
from the front where the rank is known and refuses it (``--to tfjs-graph``) where not; the
NumPy reference of a layers-model (``tfjs_semantics``) and the read-back check judge a file as
tfjs computes it, so that a file written without the rewrite fails its check (exit 6).
tests/interop/test_tfjs_layers_axes.py runs the same files in real tfjs.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import modelport
from modelport.errors import ModelportError, ParityError, UnsupportedError
from modelport.formats import tfjs_layers
from modelport.models import keras_shapes, tfjs_semantics
from modelport.models.layer_facts import FACTS
from modelport.runtime import engines

A = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
B = -np.arange(1, 7, dtype=np.float32).reshape(1, 2, 3)
KERAS = [0, 1, 2, 3, 4, 5, -1, -2, -3, -4, -5, -6]  # Concatenate(axis=-2), then Flatten
TFJS = [0, 1, 2, -1, -2, -3, 3, 4, 5, -4, -5, -6]  # what tfjs-layers 4.22 computes from it


@pytest.fixture
def concat_model(keras3, tmp_path):
    """Two (2, 3) inputs, ``Concatenate(axis=-2)``, ``Flatten``: a real Keras 3 file."""
    k = keras3
    a, b = k.Input((2, 3), name="a"), k.Input((2, 3), name="b")
    model = k.Model([a, b], k.layers.Flatten(name="flatten")(
        k.layers.Concatenate(axis=-2, name="concatenate")([a, b])))
    assert model.predict([A, B], verbose=0).reshape(-1).tolist() == KERAS
    path = tmp_path / "cat.keras"
    model.save(path)
    return path


@pytest.fixture
def without_rewrite(monkeypatch):
    """The mutation: Concatenate's facts as before the fix (no rewrite, no refusal)."""
    bare = dataclasses.replace(FACTS["Concatenate"], tfjs_rewrite=None, tfjs_blockers=())
    monkeypatch.setattr(FACTS, "_table", {**FACTS._table, "Concatenate": bare})


def _axis(model_json) -> int:
    layers = json.loads(model_json.read_text())["modelTopology"]["model_config"]["config"]
    return next(x["config"]["axis"] for x in layers["layers"]
                if x["class_name"] == "Concatenate")


def test_the_axis_is_counted_from_the_front(concat_model, tmp_path):
    report = modelport.convert(concat_model, tmp_path / "web", to="tfjs-layers")
    assert any("Concatenate axis -2 -> 1" in note for note in report.rewrites)
    assert _axis(tmp_path / "web" / "model.json") == 1
    back = tfjs_layers.read(tmp_path / "web")
    assert not tfjs_semantics.divergences(back)
    engine = engines.TfjsLayersEngine(back, engine="reference")
    assert engine.run([A, B])[0].reshape(-1).tolist() == KERAS


def test_an_unknown_rank_is_refused_with_the_graph_route(concat_model, tmp_path, monkeypatch):
    def unknown(model):
        raise ModelportError("shapes unknown here")

    monkeypatch.setattr(keras_shapes, "infer", unknown)
    with pytest.raises(UnsupportedError) as e:
        modelport.convert(concat_model, tmp_path / "web", to="tfjs-layers")
    assert e.value.exit_code == 4 and e.value.layer == "concatenate"
    assert "last axis for any negative axis" in str(e.value)
    assert "--to tfjs-graph" in (e.value.hint or "")
    assert not (tmp_path / "web").exists()


def test_the_reference_computes_what_tfjs_computes(concat_model, tmp_path, without_rewrite):
    """A file holding ``axis=-2`` runs in the reference as tfjs runs it (the numbers real tfjs
    gave, tests/interop/test_tfjs_layers_axes.py), and not as Keras would."""
    tfjs_layers.write(modelport.load(concat_model), tmp_path / "bad")
    assert _axis(tmp_path / "bad" / "model.json") == -2
    back = tfjs_layers.read(tmp_path / "bad")
    assert [name for name, _ in tfjs_semantics.divergences(back)] == ["concatenate"]
    engine = engines.TfjsLayersEngine(back, path=tmp_path / "bad", engine="reference")
    assert engine.run([A, B])[0].reshape(-1).tolist() == TFJS
    assert engines.KerasReference(back).run([A, B])[0].reshape(-1).tolist() == KERAS
    report = modelport.validate(concat_model, tmp_path / "bad", engine="reference")
    assert not report.passed


def test_without_the_rewrite_the_conversion_fails_its_check(concat_model, tmp_path,
                                                            without_rewrite):
    with pytest.raises(ParityError) as e:
        modelport.convert(concat_model, tmp_path / "web", to="tfjs-layers")
    assert e.value.exit_code == 6 and e.value.layer == "concatenate"
    assert not (tmp_path / "web").exists()
