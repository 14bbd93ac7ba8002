"""A layer that reads one computed tensor more than once (``Multiply([r, r])``) while other
layers read it too: tfjs-layers 4.22's executor counts the tensor's readers once per layer but
counts down once per read, so it disposes the tensor before the last reader runs ("Tensor is
disposed", "Cannot read properties of undefined (reading 'backend')"). The layers-model writer
(``tfjs_rewrites``) gives every read after the first a copy of its own: a ``Reshape`` to the
tensor's shape, or an identity ``Permute`` where a size is unknown. The model's numbers stay
bit for bit; tests/interop/test_tfjs_layers_repeated_inputs.py runs the files in real tfjs.
"""

from __future__ import annotations

import numpy as np
import pytest

import modelport
from modelport.errors import ModelportError, UnsupportedError
from modelport.formats import tfjs_layers
from modelport.models import keras_shapes, tfjs_rewrites, tfjs_support
from modelport.runtime.keras_reference import run

RNG = np.random.default_rng(0)


def square_plus(k, shape, *, merge="multiply", path):
    """``x -> Dense -> r = ReLU; y = merge([r, r(, r)]) + r``: a real Keras 3 file."""
    x = k.Input(shape, name="x")
    r = k.layers.ReLU(name="r")(k.layers.Dense(4, name="dense")(x))
    if merge == "multiply":
        p = k.layers.Multiply(name="square")([r, r])
    else:
        p = k.layers.Concatenate(axis=-1, name="square")([r, r, r])
        p = k.layers.Dense(4, name="mix")(p)
    y = k.layers.Add(name="y")([p, r])
    model = k.Model(x, y)
    model.save(path)
    return path


@pytest.fixture
def unrewritten(monkeypatch):
    """The mutation: the writer without the rewrite of repeated reads."""
    monkeypatch.setattr(tfjs_rewrites, "_repeated_inputs", lambda model, specs, taken: [])


def _reads(model, name):
    layer = next(x for x in model.layers if x.name == name)
    return [ref.layer for ref in layer.inbound_nodes[0].inputs()]


def _same_numbers(original, prepared, x):
    want = run(original, [x]).outputs[0]
    np.testing.assert_array_equal(run(prepared, [x]).outputs[0], want)


def test_a_square_reads_a_copy_made_by_reshape(keras3, tmp_path):
    model = modelport.load(square_plus(keras3, (3, 5), path=tmp_path / "m.keras"))
    prepared, notes = tfjs_support.prepare_with_notes(model)
    assert _reads(prepared, "square") == ["r", "square_copy"]
    copy = next(x for x in prepared.layers if x.name == "square_copy")
    assert copy.class_name == "Reshape" and copy.config["target_shape"] == [3, 4]
    assert _reads(prepared, "y") == ["square", "r"]
    assert any(note.startswith("square: 1 repeated input") for note in notes)
    assert _reads(model, "square") == ["r", "r"]  # the caller's model is left alone
    _same_numbers(model, prepared, RNG.standard_normal((6, 3, 5)).astype(np.float32))


def test_an_unknown_size_is_copied_by_an_identity_permute(keras3, tmp_path):
    model = modelport.load(square_plus(keras3, (None, 5), path=tmp_path / "m.keras"))
    prepared = tfjs_support.prepare(model)
    copy = next(x for x in prepared.layers if x.name == "square_copy")
    assert copy.class_name == "Permute" and copy.config["dims"] == [1, 2]
    _same_numbers(model, prepared, RNG.standard_normal((2, 6, 5)).astype(np.float32))


def test_every_read_after_the_first_gets_its_own_copy(keras3, tmp_path):
    model = modelport.load(square_plus(keras3, (5,), merge="concatenate",
                                       path=tmp_path / "m.keras"))
    prepared = tfjs_support.prepare(model)
    assert _reads(prepared, "square") == ["r", "square_copy", "square_copy_2"]
    _same_numbers(model, prepared, RNG.standard_normal((4, 5)).astype(np.float32))


def test_a_model_input_read_twice_is_left_alone(keras3, tmp_path):
    """tfjs never disposes a fed tensor: no copy is needed."""
    k = keras3
    x = k.Input((3,), name="x")
    square = k.layers.Multiply(name="square")([x, x])
    k.Model(x, k.layers.Add(name="y")([square, x])).save(tmp_path / "m.keras")
    prepared, notes = tfjs_support.prepare_with_notes(modelport.load(tmp_path / "m.keras"))
    assert _reads(prepared, "square") == ["x", "x"] and not notes


def test_an_unknown_shape_is_refused_with_the_graph_route(keras3, tmp_path, monkeypatch):
    src = square_plus(keras3, (3, 5), path=tmp_path / "m.keras")

    def unknown(model):
        raise ModelportError("shapes unknown here")

    monkeypatch.setattr(keras_shapes, "infer", unknown)
    with pytest.raises(UnsupportedError) as e:
        modelport.convert(src, tmp_path / "web", to="tfjs-layers")
    assert e.value.exit_code == 4 and e.value.layer == "square"
    assert "--to tfjs-graph" in (e.value.hint or "")


def test_the_written_file_holds_the_copies(keras3, tmp_path):
    src = square_plus(keras3, (3, 5), path=tmp_path / "m.keras")
    report = modelport.convert(src, tmp_path / "web", to="tfjs-layers")
    assert any("repeated input" in note for note in report.rewrites)
    back = tfjs_layers.read(tmp_path / "web")
    assert _reads(back, "square") == ["r", "square_copy"]
