"""tfjs-layers 4.22's CPU ``batchNorm`` kernel walks the mean, variance, gamma and beta
cyclically over the flat input, so a ``BatchNormalization`` over an axis other than the last
computes wrong numbers there (no error; 2.7 off on a (3, 4) input with axis 1, measured). The
layers-model writer moves the axis last (``Permute``, ``BatchNormalization(axis=-1)``,
``Permute`` back) where the rank is known and refuses it (``--to tfjs-graph``) where not; a file
written without that fails its read-back check (exit 6). ``Softmax`` over such an axis (which
tfjs-core's softmax refuses to run) gets the same composition. tests/interop/test_tfjs_layers_axes.py
runs the files in real tfjs.
"""

from __future__ import annotations

import numpy as np
import pytest

import modelport
from modelport.errors import ModelportError, ParityError, UnsupportedError
from modelport.models import keras_shapes, tfjs_rewrites, tfjs_support
from modelport.runtime.keras_reference import run

RNG = np.random.default_rng(0)


def bn_model(k, shape, axis, path, *, sequential=False):
    """``BatchNormalization(axis)`` with random statistics, then a Dense: a real Keras 3 file."""
    if sequential:
        model = k.Sequential([k.Input(shape), k.layers.BatchNormalization(axis=axis, name="bn"),
                              k.layers.Dense(2, name="dense")])
    else:
        x = k.Input(shape, name="x")
        y = k.layers.Dense(2, name="dense")(k.layers.BatchNormalization(axis=axis, name="bn")(x))
        model = k.Model(x, y)
    bn = model.get_layer("bn")
    gamma, beta, mean, variance = (w.shape for w in bn.get_weights())
    bn.set_weights([RNG.standard_normal(gamma), RNG.standard_normal(beta),
                    RNG.standard_normal(mean), RNG.uniform(0.5, 2.0, variance)])
    model.save(path)
    return path


@pytest.fixture
def unrewritten(monkeypatch):
    """The mutation: the writer without the BatchNormalization rewrite."""
    rules = {k: v for k, v in tfjs_rewrites._RULES.items() if k != "BatchNormalization"}
    monkeypatch.setattr(tfjs_rewrites, "_RULES", rules)


@pytest.mark.parametrize("shape,axis,sequential", [((3, 4), 1, False), ((3, 4, 5), -3, False),
                                                   ((3, 4, 5), 2, True)])
def test_the_axis_is_moved_last(shape, axis, sequential, keras3, tmp_path):
    model = modelport.load(bn_model(keras3, shape, axis, tmp_path / "m.keras",
                                    sequential=sequential))
    prepared, notes = tfjs_support.prepare_with_notes(model)
    classes = [layer.class_name for layer in prepared.layers]
    assert classes[-4:] == ["Permute", "BatchNormalization", "Permute", "Dense"]
    bn = next(layer for layer in prepared.layers if layer.name == "bn")
    original = next(layer for layer in model.layers if layer.name == "bn")
    assert bn.config["axis"] == -1 and bn.weights == original.weights
    assert any(note.startswith("bn: BatchNormalization(axis=") for note in notes)
    x = RNG.standard_normal((4, *shape)).astype(np.float32)
    np.testing.assert_allclose(run(prepared, [x]).outputs[0], run(model, [x]).outputs[0],
                               rtol=1e-6, atol=1e-6)


def test_the_last_axis_is_left_alone(keras3, tmp_path):
    model = modelport.load(bn_model(keras3, (3, 4), 2, tmp_path / "m.keras"))
    prepared, notes = tfjs_support.prepare_with_notes(model)
    assert "Permute" not in [layer.class_name for layer in prepared.layers] and not notes


def test_an_unknown_rank_is_refused_with_the_graph_route(keras3, tmp_path, monkeypatch):
    src = bn_model(keras3, (3, 4), 1, tmp_path / "m.keras")

    def unknown(model):
        raise ModelportError("shapes unknown here")

    monkeypatch.setattr(keras_shapes, "infer", unknown)
    with pytest.raises(UnsupportedError) as e:
        modelport.convert(src, tmp_path / "web", to="tfjs-layers")
    assert e.value.exit_code == 4 and e.value.layer == "bn"
    assert "--to tfjs-graph" in (e.value.hint or "")


def test_without_the_rewrite_the_conversion_fails_its_check(keras3, tmp_path, unrewritten):
    src = bn_model(keras3, (3, 4), 1, tmp_path / "m.keras")
    with pytest.raises(ParityError) as e:
        modelport.convert(src, tmp_path / "web", to="tfjs-layers")
    assert e.value.exit_code == 6 and e.value.layer == "bn"
    assert not (tmp_path / "web").exists()


def softmax_model(k, path):
    """``Softmax(axis=1)`` on a (3, 4, 5) input: a real Keras 3 file."""
    x = k.Input((3, 4, 5), name="x")
    k.Model(x, k.layers.Softmax(axis=1, name="softmax")(x)).save(path)
    return path


def test_softmax_over_a_middle_axis_is_moved_last(keras3, tmp_path):
    model = modelport.load(softmax_model(keras3, tmp_path / "m.keras"))
    prepared = tfjs_support.prepare(model)
    classes = [layer.class_name for layer in prepared.layers]
    assert classes == ["InputLayer", "Permute", "Softmax", "Permute"]
    assert [layer.config.get("dims") for layer in prepared.layers if layer.class_name ==
            "Permute"] == [[2, 3, 1], [3, 1, 2]]
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(run(prepared, [x]).outputs[0], run(model, [x]).outputs[0],
                               rtol=1e-6, atol=1e-7)


def test_without_the_rewrite_a_softmax_fails_its_check(keras3, tmp_path, monkeypatch):
    rules = {k: v for k, v in tfjs_rewrites._RULES.items() if k != "Softmax"}
    monkeypatch.setattr(tfjs_rewrites, "_RULES", rules)
    with pytest.raises(ParityError) as e:
        modelport.convert(softmax_model(keras3, tmp_path / "m.keras"), tmp_path / "web",
                          to="tfjs-layers")
    assert e.value.exit_code == 6 and e.value.layer == "softmax"
