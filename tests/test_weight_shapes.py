"""weight_shapes: each rule gives the variable shapes real Keras 3 creates, a model saved by
Keras passes the check, and a stored variable of any other shape is refused by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from modelport import api
from modelport.errors import FormatError
from modelport.models import keras_shapes, weight_shapes

CASES: list[tuple[str, Callable[[Any], Any], tuple]] = [
    ("dense", lambda L: L.Dense(5), (7,)),
    ("dense_rank3_no_bias", lambda L: L.Dense(4, use_bias=False), (3, 6)),
    ("embedding", lambda L: L.Embedding(11, 4), (5,)),
    ("conv1d", lambda L: L.Conv1D(4, 3), (9, 2)),
    ("conv2d_groups", lambda L: L.Conv2D(6, (3, 2), groups=2), (8, 8, 4)),
    ("conv2d_channels_first", lambda L: L.Conv2D(5, 3, data_format="channels_first"),
     (3, 8, 8)),
    ("conv3d", lambda L: L.Conv3D(2, 2), (4, 4, 4, 3)),
    ("conv1d_transpose", lambda L: L.Conv1DTranspose(3, 2), (6, 4)),
    ("conv2d_transpose", lambda L: L.Conv2DTranspose(5, (2, 3)), (6, 6, 3)),
    ("conv3d_transpose", lambda L: L.Conv3DTranspose(2, 2), (3, 3, 3, 4)),
    ("depthwise1d", lambda L: L.DepthwiseConv1D(3, depth_multiplier=2), (8, 3)),
    ("depthwise2d", lambda L: L.DepthwiseConv2D(3, depth_multiplier=3), (8, 8, 2)),
    ("separable1d", lambda L: L.SeparableConv1D(4, 3, depth_multiplier=2), (8, 3)),
    ("separable2d", lambda L: L.SeparableConv2D(5, 3), (8, 8, 3)),
    ("batch_norm", lambda L: L.BatchNormalization(), (6, 6, 5)),
    ("batch_norm_axis1", lambda L: L.BatchNormalization(axis=1), (4, 6)),
    ("layer_norm", lambda L: L.LayerNormalization(), (3, 6)),
    ("layer_norm_two_axes", lambda L: L.LayerNormalization(axis=[1, 2]), (3, 6)),
    ("group_norm", lambda L: L.GroupNormalization(groups=2), (5, 4)),
    ("prelu", lambda L: L.PReLU(), (4, 3)),
    ("prelu_shared", lambda L: L.PReLU(shared_axes=[1, 2]), (4, 4, 3)),
    ("lstm", lambda L: L.LSTM(3), (5, 4)),
    ("gru", lambda L: L.GRU(3), (5, 4)),
    ("gru_reset_before", lambda L: L.GRU(3, reset_after=False), (5, 4)),
    ("simple_rnn", lambda L: L.SimpleRNN(3), (5, 4)),
    ("bidirectional_lstm", lambda L: L.Bidirectional(L.LSTM(3)), (5, 4)),
    ("bidirectional_gru", lambda L: L.Bidirectional(L.GRU(2, return_sequences=True)), (5, 4)),
    ("time_distributed_dense", lambda L: L.TimeDistributed(L.Dense(3)), (5, 4)),
    ("time_distributed_conv", lambda L: L.TimeDistributed(L.Conv2D(2, 3)), (3, 6, 6, 2)),
    ("rms_norm", lambda L: L.RMSNormalization(), (3, 6)),
    ("rms_norm_two_axes", lambda L: L.RMSNormalization(axis=[-1, -2]), (5, 3, 6)),
    # called on [x, x] (see _model_file); Attention's variables are scalars
    ("attention_scale_concat", lambda L: L.Attention(use_scale=True, score_mode="concat"),
     (4, 3)),
    ("additive_attention", lambda L: L.AdditiveAttention(), (4, 3)),
]
# Layers called on a list [query, value] rather than on one tensor.
LIST_CALLED = {"Attention", "AdditiveAttention"}


def _model_file(keras, tmp_path, make, shape):
    x = keras.Input(shape)
    layer = make(keras.layers)
    model = keras.Model(x, layer([x, x]) if type(layer).__name__ in LIST_CALLED else layer(x))
    path = tmp_path / "m.keras"
    model.save(path)
    return path, layer


@pytest.mark.parametrize("make,shape", [pytest.param(m, s, id=i) for i, m, s in CASES])
def test_rule_gives_keras_shapes_and_catches_every_other(keras3, tmp_path, make, shape):
    path, layer = _model_file(keras3, tmp_path, make, shape)
    truth = {v.path.rsplit("/", 1)[-1]: tuple(v.shape) for v in layer.weights}
    model = api.load(path)  # the check runs in every reader: a Keras-made file passes it
    ours = next(la for la in model.layers if la.name == layer.name)
    spec = weight_shapes._first_inputs(model, keras_shapes.infer(model))
    rule = weight_shapes.RULES[ours.class_name]
    expected = rule(ours.config, spec[ours.name])
    for name, shape_ in truth.items():
        assert weight_shapes._fits(shape_, expected[name]), (name, shape_, expected[name])
    # one variable at a time, one size off: refused, naming the layer and the variable
    for k, weight in enumerate(ours.weights):
        good = weight.array
        wrong = good.shape[:-1] + (good.shape[-1] + 1,) if good.shape else (1,)
        ours.weights[k] = dataclasses.replace(weight, array=np.zeros(wrong, good.dtype))
        with pytest.raises(FormatError, match=rf"layer '{ours.name}': variable "
                                              rf"'{weight.path}' is stored with shape"):
            weight_shapes.check(model)
        ours.weights[k] = weight
    weight_shapes.check(model)


def test_every_rule_has_a_case(keras3):
    classes = {make(keras3.layers).__class__.__name__ for _, make, _ in CASES}
    assert sorted(set(weight_shapes.RULES) - classes) == []


def test_nested_model_is_checked_on_its_own_input(keras3, tmp_path):
    inner_x = keras3.Input((4,))
    inner = keras3.Model(inner_x, keras3.layers.Dense(3, name="d")(inner_x), name="inner")
    x = keras3.Input((4,))
    path = tmp_path / "m.keras"
    keras3.Model(x, inner(x)).save(path)
    model = api.load(path)
    nested = next(la for la in model.layers if la.model is not None).model
    dense = next(la for la in nested.layers if la.name == "d")
    dense.config = {**dense.config, "units": 2}
    with pytest.raises(FormatError, match=r"layer 'd': variable 'kernel' is stored with shape "
                                          r"\[4, 3\], but .* imply \[4, 2\]"):
        weight_shapes.check(model)


def test_integer_variable_of_a_float_layer_is_refused(keras3, tmp_path):
    path, layer = _model_file(keras3, tmp_path, lambda L: L.Dense(3), (4,))
    model = api.load(path)
    dense = next(la for la in model.layers if la.name == layer.name)
    kernel = dense.weights[0]
    dense.weights[0] = dataclasses.replace(kernel, array=kernel.array.astype(np.int16))
    with pytest.raises(FormatError, match=rf"layer '{layer.name}': variable 'kernel' is stored "
                                          r"as int16, not as floating point"):
        weight_shapes.check(model)
