"""Static shape inference (``modelport.models.keras_shapes``) against what real Keras recorded
or computed.

Two sources of truth, never hand-computed shapes:

* the fixtures made by real Keras 3, tf_keras and TF.js: the shape and dtype of every tensor
  passed between layers (Keras 3 records them in the file) and the outputs of ``predict``;
* Keras 3 itself (JAX backend), for the layer classes the fixtures do not exercise: a tiny model
  per row of ``KERAS_CASES``, compared with ``model.outputs`` (or with what ``predict`` returns
  where Keras's symbolic shape is known to be wrong; the row says why).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import modelport
from modelport.errors import FormatError, UnsupportedError
from modelport.models import Layer, LayersModel, TensorRef
from modelport.models import keras_shapes as ks
from modelport.models.keras_dialect import KERAS3, model_from_config
from tests.conftest import ALL_CASES, case_params

TensorSpec = ks.TensorSpec


def _spec(shape, dtype) -> TensorSpec:
    return TensorSpec(tuple(None if d is None else int(d) for d in shape), str(dtype))


def _unbatched(array: np.ndarray) -> TensorSpec:
    return _spec((None, *array.shape[1:]), array.dtype)


def _load(case):
    return modelport.load(case.path)


def _has_lambda(model: LayersModel) -> bool:
    return any(layer.class_name == "Lambda" for layer in model.iter_layers())


# --- fixtures made by the real frameworks -------------------------------------------------------

@pytest.mark.parametrize("case", case_params())
def test_fixture_specs_match_recordings(case):
    model = _load(case)
    if _has_lambda(model):
        with pytest.raises(UnsupportedError, match="Lambda"):
            ks.infer(model)
        return
    specs = ks.infer(model)
    checked = 0
    # Every tensor some layer consumed, as Keras 3 recorded it (Keras 2 and TF.js record none).
    for key, recorded in model.tensor_specs.items():
        assert specs[key] == _spec(recorded["shape"], recorded["dtype"]), key
        checked += 1
    # Nested models record their own tensors; their inference runs on its own too.
    for layer in model.iter_layers():
        if layer.model is not None:
            inner = ks.infer(layer.model)
            for key, recorded in layer.model.tensor_specs.items():
                assert inner[key] == _spec(recorded["shape"], recorded["dtype"]), (layer.name, key)
                checked += 1
    outputs = ks.output_specs(model)
    assert [o.shape[0] for o in outputs] == [None] * len(outputs)
    assert outputs == [_unbatched(array) for _, array in case.outputs]
    assert ks.input_specs(model) == [_unbatched(array) for _, array in case.inputs]
    checked += len(outputs)
    assert checked >= 1


@pytest.mark.parametrize("case", case_params([c for c in ALL_CASES if c.name != "lambda_layer"]))
def test_fixture_specs_with_batch_given(case):
    model = _load(case)
    given = {name: array.shape for name, array in case.inputs}
    specs = ks.infer(model, given)
    assert ks.output_specs(model, given) == [_spec(a.shape, a.dtype) for _, a in case.outputs]
    for key, recorded in model.tensor_specs.items():
        assert specs[key].shape[1:] == tuple(recorded["shape"][1:]), key
        assert specs[key].shape[0] == 2, key


SEQUENTIAL_CASES = [c for c in ALL_CASES if c.name in ("mlp_sequential", "cnn_bn_pool")]


@pytest.mark.parametrize("case", case_params(SEQUENTIAL_CASES))
def test_sequential_keys_follow_the_stack(case):
    model = _load(case)
    assert model.kind == "Sequential"
    specs = ks.infer(model)
    assert list(specs) == [(layer.name, 0, 0) for layer in model.layers]
    assert specs[(model.layers[-1].name, 0, 0)] == _unbatched(case.outputs[0][1])

    # Without its InputLayer, the stack needs the input shape, given under its first layer.
    headless = LayersModel(model.name, "Sequential", model.layers[1:])
    with pytest.raises(UnsupportedError, match="no InputLayer"):
        ks.infer(headless)
    first = model.layers[1].name
    shape = (None, *case.inputs[0][1].shape[1:])
    assert ks.output_specs(headless, {first: shape}) == ks.output_specs(model)
    assert ks.input_specs(headless, {first: shape}) == ks.input_specs(model)


def test_nested_model_outputs_are_keyed_under_the_outer_layer():
    case = next(c for c in ALL_CASES if c.id == "keras3/nested_shared.keras")
    model = _load(case)
    specs = ks.infer(model)
    for node in (0, 1):
        recorded = model.tensor_specs[("tower", node, 0)]
        assert specs[("tower", node, 0)] == _spec(recorded["shape"], recorded["dtype"])
    assert not any(key[0] == "tower_dense" for key in specs)  # inner tensors stay inside


def test_unknown_class_and_lambda_are_refused_by_name():
    model = LayersModel("m", "Sequential", [
        Layer("InputLayer", "x", {"batch_shape": [None, 3], "dtype": "float32"}),
        Layer("Wobble", "wobble", {})])
    with pytest.raises(UnsupportedError, match="'Wobble'") as info:
        ks.infer(model)
    assert info.value.layer == "wobble"
    model.layers[1] = Layer("Lambda", "fn", {"function": {}})
    with pytest.raises(UnsupportedError, match="Lambda") as info:
        ks.infer(model)
    assert info.value.layer == "fn"


def _set(obj: dict, key: str, value) -> None:
    obj[key] = value


def _unknown_source(model: LayersModel) -> None:
    model.layer("add").inbound_nodes[0].args = [[TensorRef("dense_8"), TensorRef("ghost")]]


def _rename_inner(model: LayersModel) -> None:
    model.layer("feat").model.layer("feat_dense").class_name = "Wobble"


BROKEN = [  # (fixture, how it is broken, error, message, layer named)
    ("keras3/cnn_bn_pool.keras",
     lambda m: _set(m.layer("conv2d_1").config, "kernel_size", [40, 40]),
     FormatError, "would leave a dimension of size", "conv2d_1"),
    ("keras3/cnn_bn_pool.keras", lambda m: m.layers[-1].config.pop("units"),
     FormatError, "KeyError", "dense_5"),
    ("keras3/multi_io.keras", _unknown_source, FormatError, "never produced", "add"),
    ("keras3/nested.keras", _rename_inner, UnsupportedError, "'Wobble'", "feat/feat_dense"),
    ("keras3/subtract.keras", lambda m: m.layer("subtract").inbound_nodes[0].args[0].pop(),
     FormatError, "at least 2 inputs", "subtract"),
]


@pytest.mark.parametrize("fixture,breaks,error,match,layer", BROKEN, ids=[
    "kernel_too_large", "missing_key", "unknown_source", "nested_unknown_class", "one_input_merge"])
def test_broken_models_are_refused_by_layer(fixture, breaks, error, match, layer):
    model = _load(next(c for c in ALL_CASES if c.id == fixture))
    breaks(model)
    with pytest.raises(error, match=match) as info:
        ks.infer(model)
    assert info.value.layer == layer


def test_bad_input_shapes_are_refused():
    model = _load(next(c for c in ALL_CASES if c.id == "keras3/multi_io.keras"))
    with pytest.raises(ValueError, match="not inputs of the model"):
        ks.infer(model, {"nope": (None, 8)})
    with pytest.raises(ValueError, match="does not fit"):
        ks.infer(model, {"a": (None, 9)})


# --- real Keras 3 for the classes the fixtures do not exercise ----------------------------------

def _modelport_layers():
    from modelport import keras_layers  # imports Keras: only when the case is built

    return keras_layers


@dataclass
class K:
    """One Keras ground-truth case: ``make(layers)`` built and called on Inputs of ``shapes``."""

    id: str
    cls: str  # the class under test (for the coverage check)
    make: Callable[[Any], Any]
    shapes: list[tuple] = field(default_factory=lambda: [(6, 5)])
    call: str = "single"  # single: layer(x); list: layer([x, y]); args: layer(x, y); kw: see _build
    kwargs: dict = field(default_factory=dict)
    dtypes: tuple | None = None
    runtime: str | None = None  # why the truth is what predict returns, not the symbolic shape


IMG = [(9, 8, 3)]
IMG_CF = [(3, 9, 8)]
VOL = [(5, 6, 7, 2)]
SEQ = [(7, 5)]

KERAS_CASES = [
    K("dense", "Dense", lambda L: L.Dense(7), [(5,)]),
    K("dense_rank3", "Dense", lambda L: L.Dense(7), [(3, 4, 5)]),
    K("dense_mixed_float16", "Dense", lambda L: L.Dense(7, dtype="mixed_float16"), [(5,)]),
    K("dense_int_input", "Dense", lambda L: L.Dense(2), [(5,)], dtypes=("int32",)),
    K("activation", "Activation", lambda L: L.Activation("relu")),
    K("dropout", "Dropout", lambda L: L.Dropout(0.5)),
    K("dropout_int_input", "Dropout", lambda L: L.Dropout(0.5), dtypes=("int32",)),
    K("spatial_dropout1d", "SpatialDropout1D", lambda L: L.SpatialDropout1D(0.2)),
    K("spatial_dropout2d", "SpatialDropout2D", lambda L: L.SpatialDropout2D(0.2), IMG),
    K("spatial_dropout3d", "SpatialDropout3D", lambda L: L.SpatialDropout3D(0.2), VOL),
    K("gaussian_noise", "GaussianNoise", lambda L: L.GaussianNoise(0.1)),
    K("gaussian_dropout", "GaussianDropout", lambda L: L.GaussianDropout(0.1)),
    K("alpha_dropout", "AlphaDropout", lambda L: L.AlphaDropout(0.1)),
    K("activity_regularization", "ActivityRegularization", lambda L: L.ActivityRegularization()),
    K("identity", "Identity", lambda L: L.Identity()),
    K("identity_int_input", "Identity", lambda L: L.Identity(), dtypes=("int32",)),
    K("identity_float16_input", "Identity", lambda L: L.Identity(), dtypes=("float16",)),
    K("masking", "Masking", lambda L: L.Masking(0.0)),
    K("flatten", "Flatten", lambda L: L.Flatten(), [(3, 4, 5)]),
    K("flatten_unknown_dim", "Flatten", lambda L: L.Flatten(), [(None, 4)]),
    K("flatten_int_input", "Flatten", lambda L: L.Flatten(), [(3, 4)], dtypes=("int32",)),
    K("flatten_channels_first", "Flatten", lambda L: L.Flatten("channels_first"), IMG),
    K("reshape_resolve", "Reshape", lambda L: L.Reshape((3, -1)), [(12,)]),
    K("reshape_resolve_middle", "Reshape", lambda L: L.Reshape((2, -1, 3)), [(4, 6)]),
    K("reshape_unknown_dim", "Reshape", lambda L: L.Reshape((-1, 2)), [(None, 4)]),
    K("reshape_bool_input", "Reshape", lambda L: L.Reshape((2, 2)), [(4,)], dtypes=("bool",)),
    K("permute", "Permute", lambda L: L.Permute((3, 1, 2)), [(2, 3, 4)]),
    K("permute_int_input", "Permute", lambda L: L.Permute((2, 1)), [(2, 3)], dtypes=("int32",)),
    K("repeat_vector", "RepeatVector", lambda L: L.RepeatVector(3), [(5,)]),
    K("embedding", "Embedding", lambda L: L.Embedding(10, 4), [(6,)], dtypes=("int32",)),
    K("embedding_rank2_ids", "Embedding", lambda L: L.Embedding(10, 4), [(2, 3)],
      dtypes=("int32",)),
    K("embedding_float16", "Embedding", lambda L: L.Embedding(10, 4, dtype="float16"), [(6,)],
      dtypes=("int32",)),
    # convolutions
    K("conv1d_valid_strided", "Conv1D", lambda L: L.Conv1D(4, 3, strides=2), [(10, 3)]),
    K("conv1d_same_strided", "Conv1D", lambda L: L.Conv1D(4, 4, strides=3, padding="same"),
      [(10, 3)]),
    K("conv1d_causal_dilated", "Conv1D",
      lambda L: L.Conv1D(4, 3, padding="causal", dilation_rate=3), [(10, 3)]),
    K("conv1d_groups", "Conv1D", lambda L: L.Conv1D(6, 3, groups=2), [(10, 4)]),
    K("conv1d_channels_first", "Conv1D",
      lambda L: L.Conv1D(4, 3, strides=2, data_format="channels_first"), [(3, 10)]),
    K("conv2d_valid", "Conv2D", lambda L: L.Conv2D(5, (3, 2), strides=(2, 1)), IMG),
    K("conv2d_same_odd", "Conv2D", lambda L: L.Conv2D(5, 3, strides=2, padding="same"), IMG),
    K("conv2d_dilated", "Conv2D", lambda L: L.Conv2D(5, 3, dilation_rate=(2, 3)), [(12, 12, 3)]),
    K("conv2d_groups", "Conv2D", lambda L: L.Conv2D(6, 3, groups=3), [(9, 8, 6)]),
    K("conv2d_channels_first", "Conv2D",
      lambda L: L.Conv2D(5, 3, strides=2, data_format="channels_first"), IMG_CF),
    K("conv2d_unknown_size", "Conv2D", lambda L: L.Conv2D(5, 3), [(None, None, 3)]),
    K("conv3d_valid", "Conv3D", lambda L: L.Conv3D(4, (2, 3, 1)), VOL),
    K("conv3d_same_strided", "Conv3D", lambda L: L.Conv3D(4, 3, strides=2, padding="same"), VOL),
    K("conv3d_channels_first", "Conv3D",
      lambda L: L.Conv3D(4, 2, data_format="channels_first"), [(2, 5, 6, 7)]),
    K("conv1d_transpose_same", "Conv1DTranspose",
      lambda L: L.Conv1DTranspose(4, 3, strides=2, padding="same"), [(7, 3)]),
    K("conv1d_transpose_valid_k_lt_s", "Conv1DTranspose",
      lambda L: L.Conv1DTranspose(4, 2, strides=3), [(7, 3)]),
    K("conv1d_transpose_output_padding", "Conv1DTranspose",
      lambda L: L.Conv1DTranspose(4, 3, strides=2, output_padding=1), [(7, 3)]),
    K("conv1d_transpose_dilated", "Conv1DTranspose",
      lambda L: L.Conv1DTranspose(4, 3, dilation_rate=2), [(7, 3)]),
    K("conv2d_transpose_same", "Conv2DTranspose",
      lambda L: L.Conv2DTranspose(4, 3, strides=2, padding="same"), IMG),
    K("conv2d_transpose_valid", "Conv2DTranspose",
      lambda L: L.Conv2DTranspose(4, (3, 4), strides=(2, 3)), IMG),
    K("conv2d_transpose_same_output_padding", "Conv2DTranspose",
      lambda L: L.Conv2DTranspose(4, (3, 4), strides=(2, 3), padding="same",
                                  output_padding=(1, 0)), IMG),
    K("conv2d_transpose_channels_first", "Conv2DTranspose",
      lambda L: L.Conv2DTranspose(4, 3, strides=2, data_format="channels_first"), IMG_CF),
    K("conv3d_transpose_valid", "Conv3DTranspose",
      lambda L: L.Conv3DTranspose(3, 2, strides=2), VOL),
    K("conv3d_transpose_same_output_padding", "Conv3DTranspose",
      lambda L: L.Conv3DTranspose(3, 3, strides=2, padding="same", output_padding=1), VOL),
    K("depthwise_conv1d", "DepthwiseConv1D",
      lambda L: L.DepthwiseConv1D(3, strides=2, depth_multiplier=2), [(10, 3)]),
    K("depthwise_conv2d_same", "DepthwiseConv2D",
      lambda L: L.DepthwiseConv2D(3, padding="same", depth_multiplier=3), IMG),
    K("depthwise_conv2d_channels_first", "DepthwiseConv2D",
      lambda L: L.DepthwiseConv2D(3, depth_multiplier=2, data_format="channels_first"), IMG_CF),
    K("separable_conv1d", "SeparableConv1D",
      lambda L: L.SeparableConv1D(5, 3, strides=2, depth_multiplier=2), [(10, 3)]),
    K("separable_conv2d_dilated", "SeparableConv2D",
      lambda L: L.SeparableConv2D(5, 3, dilation_rate=2), [(12, 11, 3)]),
    # reshaping
    K("cropping1d", "Cropping1D", lambda L: L.Cropping1D((1, 2)), [(9, 3)]),
    K("cropping2d", "Cropping2D", lambda L: L.Cropping2D(((1, 0), (2, 1))), IMG),
    K("cropping2d_int", "Cropping2D", lambda L: L.Cropping2D(2), IMG),
    K("cropping2d_channels_first", "Cropping2D",
      lambda L: L.Cropping2D(((1, 2), (0, 3)), data_format="channels_first"), IMG_CF),
    K("cropping3d", "Cropping3D", lambda L: L.Cropping3D(((1, 0), (2, 1), (0, 3))), VOL),
    K("zero_padding1d", "ZeroPadding1D", lambda L: L.ZeroPadding1D((1, 2)), [(9, 3)]),
    K("zero_padding2d", "ZeroPadding2D", lambda L: L.ZeroPadding2D(((1, 0), (2, 3))), IMG),
    K("zero_padding2d_channels_first", "ZeroPadding2D",
      lambda L: L.ZeroPadding2D((1, 2), data_format="channels_first"), IMG_CF),
    K("zero_padding3d", "ZeroPadding3D", lambda L: L.ZeroPadding3D((1, 2, 0)), VOL),
    K("upsampling1d", "UpSampling1D", lambda L: L.UpSampling1D(3), [(4, 3)]),
    K("upsampling2d", "UpSampling2D", lambda L: L.UpSampling2D((2, 3)), IMG),
    K("upsampling2d_bilinear_cf", "UpSampling2D",
      lambda L: L.UpSampling2D(2, data_format="channels_first", interpolation="bilinear"),
      IMG_CF),
    K("upsampling3d", "UpSampling3D", lambda L: L.UpSampling3D((1, 2, 3)), VOL),
    # pooling
    K("max_pooling1d_same", "MaxPooling1D",
      lambda L: L.MaxPooling1D(3, strides=2, padding="same"), [(9, 3)]),
    K("max_pooling2d_valid", "MaxPooling2D", lambda L: L.MaxPooling2D(3, strides=2), IMG),
    K("max_pooling2d_same", "MaxPooling2D",
      lambda L: L.MaxPooling2D((2, 3), padding="same"), IMG),
    K("max_pooling2d_channels_first", "MaxPooling2D",
      lambda L: L.MaxPooling2D(2, data_format="channels_first"), IMG_CF),
    K("max_pooling3d", "MaxPooling3D", lambda L: L.MaxPooling3D((2, 2, 3)), VOL),
    K("average_pooling1d", "AveragePooling1D", lambda L: L.AveragePooling1D(4, 1), [(9, 3)]),
    K("average_pooling2d", "AveragePooling2D",
      lambda L: L.AveragePooling2D(2, strides=3, padding="same"), IMG),
    K("average_pooling3d_same", "AveragePooling3D",
      lambda L: L.AveragePooling3D(2, padding="same"), VOL),
    K("global_max_pooling1d", "GlobalMaxPooling1D", lambda L: L.GlobalMaxPooling1D(), SEQ),
    K("global_max_pooling2d_keepdims_cf", "GlobalMaxPooling2D",
      lambda L: L.GlobalMaxPooling2D("channels_first", keepdims=True), IMG_CF),
    K("global_max_pooling3d", "GlobalMaxPooling3D", lambda L: L.GlobalMaxPooling3D(), VOL),
    K("global_average_pooling1d_keepdims", "GlobalAveragePooling1D",
      lambda L: L.GlobalAveragePooling1D(keepdims=True), SEQ),
    K("global_average_pooling2d_cf", "GlobalAveragePooling2D",
      lambda L: L.GlobalAveragePooling2D("channels_first"), IMG_CF),
    K("global_average_pooling3d_keepdims", "GlobalAveragePooling3D",
      lambda L: L.GlobalAveragePooling3D(keepdims=True), VOL),
    K("global_average_pooling2d_keepdims_unknown", "GlobalAveragePooling2D",
      lambda L: L.GlobalAveragePooling2D(keepdims=True), [(None, None, 3)]),
    # normalization
    K("batch_normalization_axis1", "BatchNormalization",
      lambda L: L.BatchNormalization(axis=1), IMG_CF),
    K("layer_normalization_axes", "LayerNormalization",
      lambda L: L.LayerNormalization(axis=[1, 2]), [(3, 4, 5)]),
    K("layer_normalization_bfloat16", "LayerNormalization",
      lambda L: L.LayerNormalization(dtype="mixed_bfloat16")),
    K("group_normalization", "GroupNormalization", lambda L: L.GroupNormalization(2), [(4, 4, 6)]),
    K("unit_normalization", "UnitNormalization", lambda L: L.UnitNormalization()),
    K("modelport_local_response_normalization", "modelport>LocalResponseNormalization",
      lambda L: _modelport_layers().LocalResponseNormalization(size=3), [(4, 5, 6)]),
    K("normalization_int_input", "Normalization",
      lambda L: L.Normalization(mean=1.0, variance=2.0), dtypes=("int32",)),
    # merging
    K("add_broadcast", "Add", lambda L: L.Add(), [(4, 1), (1, 5)], "list"),
    K("subtract", "Subtract", lambda L: L.Subtract(), [(4, 5), (4, 5)], "list"),
    K("multiply_three", "Multiply", lambda L: L.Multiply(), [(3, 4), (3, 1), (1, 4)], "list"),
    K("average", "Average", lambda L: L.Average(), [(4, 5), (1, 5)], "list"),
    K("maximum", "Maximum", lambda L: L.Maximum(), [(4, 5), (4, 1)], "list"),
    K("minimum_unknown", "Minimum", lambda L: L.Minimum(), [(None, 5), (4, 5)], "list"),
    K("concatenate_axis1", "Concatenate", lambda L: L.Concatenate(axis=1),
      [(2, 5), (3, 5), (4, 5)], "list"),
    K("concatenate_unknown", "Concatenate", lambda L: L.Concatenate(),
      [(4, None), (4, 3)], "list"),
    K("dot_axes1_normalize", "Dot", lambda L: L.Dot(axes=1, normalize=True),
      [(4,), (4,)], "list"),
    K("dot_matrix", "Dot", lambda L: L.Dot(axes=(2, 2)), [(3, 4), (5, 4)], "list"),
    K("dot_mixed_axes", "Dot", lambda L: L.Dot(axes=(1, 2)), [(3, 4), (5, 3)], "list"),
    K("dot_negative", "Dot", lambda L: L.Dot(axes=-1), [(3, 4), (5, 4)], "list"),
    # activations and preprocessing
    K("relu", "ReLU", lambda L: L.ReLU(max_value=6.0)),
    K("leaky_relu", "LeakyReLU", lambda L: L.LeakyReLU(0.2)),
    K("prelu_shared_axes", "PReLU", lambda L: L.PReLU(shared_axes=[1, 2]), IMG),
    K("elu", "ELU", lambda L: L.ELU(0.5)),
    K("softmax_axis1", "Softmax", lambda L: L.Softmax(axis=1)),
    K("rescaling_int_input", "Rescaling", lambda L: L.Rescaling(1 / 255), IMG, dtypes=("uint8",)),
    K("center_crop", "CenterCrop", lambda L: L.CenterCrop(4, 5), IMG),
    K("center_crop_channels_first", "CenterCrop",
      lambda L: L.CenterCrop(4, 5, data_format="channels_first"), IMG_CF),
    K("resizing", "Resizing", lambda L: L.Resizing(5, 12), IMG),
    K("resizing_channels_first", "Resizing",
      lambda L: L.Resizing(5, 12, data_format="channels_first"), IMG_CF),
    K("resizing_rank3_is_one_image", "Resizing", lambda L: L.Resizing(5, 12), [(9, 8)]),
    # recurrent
    K("simple_rnn", "SimpleRNN", lambda L: L.SimpleRNN(4), SEQ),
    K("simple_rnn_state", "SimpleRNN",
      lambda L: L.SimpleRNN(4, return_sequences=True, return_state=True), SEQ),
    K("gru_state", "GRU", lambda L: L.GRU(3, return_state=True), SEQ),
    K("gru_sequences_unknown_steps", "GRU", lambda L: L.GRU(3, return_sequences=True),
      [(None, 5)]),
    K("lstm_state", "LSTM", lambda L: L.LSTM(4, return_state=True), SEQ),
    K("lstm_sequences_state", "LSTM",
      lambda L: L.LSTM(4, return_sequences=True, return_state=True), SEQ),
    K("bidirectional_concat", "Bidirectional",
      lambda L: L.Bidirectional(L.LSTM(3, return_sequences=True)), SEQ),
    K("bidirectional_sum", "Bidirectional",
      lambda L: L.Bidirectional(L.GRU(3), merge_mode="sum"), SEQ),
    K("bidirectional_mul", "Bidirectional",
      lambda L: L.Bidirectional(L.SimpleRNN(3), merge_mode="mul"), SEQ),
    K("bidirectional_ave", "Bidirectional",
      lambda L: L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="ave"), SEQ),
    K("bidirectional_none", "Bidirectional",
      lambda L: L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode=None), SEQ),
    K("bidirectional_concat_state", "Bidirectional",
      lambda L: L.Bidirectional(L.LSTM(3, return_state=True)), SEQ),
    K("bidirectional_none_state", "Bidirectional",
      lambda L: L.Bidirectional(L.GRU(3, return_state=True), merge_mode=None), SEQ),
    K("bidirectional_backward_layer", "Bidirectional",
      lambda L: L.Bidirectional(L.LSTM(3, return_sequences=True),
                                backward_layer=L.LSTM(3, return_sequences=True,
                                                      go_backwards=True)), SEQ),
    K("time_distributed_dense", "TimeDistributed",
      lambda L: L.TimeDistributed(L.Dense(4)), SEQ),
    K("time_distributed_conv2d", "TimeDistributed",
      lambda L: L.TimeDistributed(L.Conv2D(4, 3, strides=2)), [(4, 9, 8, 3)]),
    K("time_distributed_flatten", "TimeDistributed",
      lambda L: L.TimeDistributed(L.Flatten()), [(4, 3, 2)]),
    K("conv_lstm1d", "ConvLSTM1D", lambda L: L.ConvLSTM1D(3, 3), [(4, 9, 2)]),
    K("conv_lstm2d", "ConvLSTM2D", lambda L: L.ConvLSTM2D(3, 3, padding="same"), [(4, 9, 8, 2)]),
    K("conv_lstm2d_sequences_strided", "ConvLSTM2D",
      lambda L: L.ConvLSTM2D(3, (3, 2), strides=2, return_sequences=True), [(4, 9, 8, 2)]),
    K("conv_lstm2d_state", "ConvLSTM2D",
      lambda L: L.ConvLSTM2D(3, 3, return_state=True), [(4, 9, 8, 2)]),
    K("conv_lstm2d_channels_first", "ConvLSTM2D",
      lambda L: L.ConvLSTM2D(3, 3, data_format="channels_first", return_sequences=True),
      [(4, 2, 9, 8)]),
    K("conv_lstm3d", "ConvLSTM3D", lambda L: L.ConvLSTM3D(2, 2), [(3, 4, 5, 6, 2)]),
    # attention
    K("mha_self", "MultiHeadAttention", lambda L: L.MultiHeadAttention(2, 4), [(5, 8), (5, 8)],
      "args"),
    K("mha_cross_key", "MultiHeadAttention", lambda L: L.MultiHeadAttention(2, 4),
      [(5, 8), (7, 6), (7, 3)], "args"),
    K("mha_output_shape_int", "MultiHeadAttention",
      lambda L: L.MultiHeadAttention(2, 4, output_shape=11), [(5, 8), (7, 6)], "args"),
    K("mha_output_shape_tuple", "MultiHeadAttention",
      lambda L: L.MultiHeadAttention(2, 4, output_shape=(2, 3)), [(5, 8), (7, 6)], "args"),
    K("mha_scores_self", "MultiHeadAttention", lambda L: L.MultiHeadAttention(3, 4),
      [(5, 8), (5, 8)], "args", {"return_attention_scores": True}),
    K("mha_scores_cross", "MultiHeadAttention", lambda L: L.MultiHeadAttention(2, 4),
      [(5, 8), (7, 6)], "args", {"return_attention_scores": True},
      runtime="Keras's symbolic scores are (batch, heads, Tq, Tq), not (.., Tq, Tk)"),
    K("mha_scores_attention_axes", "MultiHeadAttention",
      lambda L: L.MultiHeadAttention(2, 4, attention_axes=(2,)),
      [(3, 5, 8), (3, 7, 6)], "args", {"return_attention_scores": True},
      runtime="Keras's symbolic scores ignore attention_axes (wrong rank)"),
    K("mha_keyword_value_key", "MultiHeadAttention", lambda L: L.MultiHeadAttention(2, 4),
      [(5, 8), (7, 6), (7, 3)], "kw", {"return_attention_scores": True},
      runtime="Keras's symbolic scores are (batch, heads, Tq, Tq), not (.., Tq, Tk)"),
    K("attention_key_scores", "Attention", lambda L: L.Attention(),
      [(5, 8), (7, 3), (7, 8)], "list", {"return_attention_scores": True}),
    K("additive_attention", "AdditiveAttention", lambda L: L.AdditiveAttention(),
      [(5, 8), (None, 4)], "list"),
    K("gqa_self", "GroupQueryAttention", lambda L: L.GroupQueryAttention(3, 4, 2),
      [(5, 8), (5, 8)], "args"),
    K("gqa_key_scores", "GroupQueryAttention", lambda L: L.GroupQueryAttention(3, 4, 1),
      [(5, 8), (7, 8), (7, 3)], "kw", {"return_attention_scores": True}),
    K("rms_normalization_axes", "RMSNormalization", lambda L: L.RMSNormalization(axis=[-2, -1]),
      [(3, 4, 5)]),
]


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def _build(keras, case: K):
    dtypes = case.dtypes or ("float32",) * len(case.shapes)
    xs = [keras.Input(shape, dtype=dt) for shape, dt in zip(case.shapes, dtypes)]
    layer = case.make(keras.layers)
    if case.call == "single":
        y = layer(xs[0], **case.kwargs)
    elif case.call == "kw":  # attention: query positional, value and key by keyword
        y = layer(xs[0], **dict(zip(("value", "key"), xs[1:])), **case.kwargs)
    elif case.call == "list":
        y = layer(xs, **case.kwargs)
    else:
        y = layer(*xs, **case.kwargs)
    return keras.Model(xs, y), xs


def _runtime_specs(model, xs) -> list[TensorSpec]:
    rng = np.random.default_rng(0)
    data = [rng.normal(size=(2, *x.shape[1:])).astype(x.dtype) for x in xs]
    ys = model.predict(data, verbose=0)
    ys = ys if isinstance(ys, (list, tuple)) else [ys]
    return [_unbatched(np.asarray(y)) for y in ys]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in KERAS_CASES])
def test_matches_real_keras(keras, case):
    model, xs = _build(keras, case)
    ours = model_from_config(json.loads(model.to_json()), KERAS3)
    specs = ks.infer(ours)
    for key, recorded in ours.tensor_specs.items():
        assert specs[key] == _spec(recorded["shape"], recorded["dtype"]), key
    if case.runtime:
        expected = _runtime_specs(model, xs)
    else:
        expected = [_spec(t.shape, t.dtype) for t in model.outputs]
    assert ks.output_specs(ours) == expected


def _fixture_classes() -> set[str]:
    found = set()
    for case in ALL_CASES:
        for layer in modelport.load(case.path).iter_layers():
            found.add(layer.class_name)
            for key in ("layer", "backward_layer"):
                inner = layer.config.get(key)
                if isinstance(inner, dict) and "class_name" in inner:
                    found.add(inner["class_name"])
    return found


def test_every_rule_has_a_case():
    covered = {c.cls for c in KERAS_CASES} | _fixture_classes()
    assert sorted(set(ks.RULES) - covered) == []
