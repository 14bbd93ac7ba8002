"""Keras 2 <-> Keras 3 config dialects: what each generation writes, read from real files."""

from __future__ import annotations

import json

import h5py
import pytest

from modelport.errors import FormatError, UnsupportedError
from modelport.models import TensorRef
from modelport.models import keras_dialect as kd

from .conftest import FIXTURES


def _config(gen: str, name: str) -> dict:
    with h5py.File(FIXTURES / gen / f"{name}.h5") as f:
        return json.loads(f.attrs["model_config"])


@pytest.mark.parametrize("gen", ["keras2", "keras3"])
def test_dialect_is_detected_from_the_config_alone(gen):
    assert kd.detect_dialect(_config(gen, "nested_shared")) == gen
    assert kd.detect_dialect({}, "2.21.0") == kd.KERAS2
    assert kd.detect_dialect({}, "3.15.1") == kd.KERAS3


def test_keras2_counts_a_nested_models_own_node():
    # tf_keras writes ["tower", 1, 0] and ["tower", 2, 0] for the two calls of a nested model.
    raw = _config("keras2", "nested_shared")
    concat = next(l for l in raw["config"]["layers"] if l["class_name"] == "Concatenate")
    assert [e[1] for e in concat["inbound_nodes"][0]] == [1, 2]
    model = kd.model_from_config(raw, kd.KERAS2)
    node = model.layer(concat["name"]).inbound_nodes[0]
    assert node.args == [[TensorRef("tower", 0, 0), TensorRef("tower", 1, 0)]]
    # Same canonical graph as the Keras 3 file of the same model.
    k3 = kd.model_from_config(_config("keras3", "nested_shared"), kd.KERAS3)
    assert k3.layer(concat["name"]).inbound_nodes[0].args == node.args
    # Written back as Keras 2 (TF.js), the shift returns; as Keras 3 it does not.
    k2_out = kd.model_to_config(model, kd.KERAS2)
    out = next(l for l in k2_out["config"]["layers"] if l["class_name"] == "Concatenate")
    assert [e[1] for e in out["inbound_nodes"][0]] == [1, 2]
    k3_out = kd.model_to_config(model, kd.KERAS3)
    out = next(l for l in k3_out["config"]["layers"] if l["class_name"] == "Concatenate")
    args = out["inbound_nodes"][0]["args"][0]
    assert [a["config"]["keras_history"] for a in args] == [["tower", 0, 0], ["tower", 1, 0]]
    # Shapes were never recorded by Keras 2; they are inferred for Keras 3's tensor form.
    assert [a["config"]["shape"] for a in args] == [[None, 3], [None, 3]]


def test_keras3_single_input_is_unnested_and_written_back_so():
    raw = _config("keras3", "mlp_activations")
    assert isinstance(raw["config"]["input_layers"][0], str)
    model = kd.model_from_config(raw, kd.KERAS3)
    assert model.inputs == [TensorRef("features", 0, 0)]
    assert kd.model_to_config(model, kd.KERAS3)["config"]["input_layers"] == ["features", 0, 0]
    assert kd.model_to_config(model, kd.KERAS2)["config"]["input_layers"] == [["features", 0, 0]]


def test_keras3_tensor_shapes_are_kept_for_writing():
    model = kd.model_from_config(_config("keras3", "multi_io"), kd.KERAS3)
    assert model.tensor_specs[("a", 0, 0)] == {"shape": [None, 8], "dtype": "float32"}
    out = kd.model_to_config(model, kd.KERAS3)
    dense = next(l for l in out["config"]["layers"] if l["class_name"] == "Dense")
    arg = dense["inbound_nodes"][0]["args"][0]
    assert arg["class_name"] == "__keras_tensor__" and arg["config"]["shape"] == [None, 8]


@pytest.mark.parametrize("gen,key,value", [("keras2", "alpha", 0.2),
                                           ("keras3", "negative_slope", 0.2)])
def test_leaky_relu_slope_is_renamed(gen, key, value):
    raw = _config(gen, "advanced_activations")
    assert any(l["config"].get(key) == pytest.approx(value) for l in raw["config"]["layers"]
               if l["class_name"] == "LeakyReLU")
    model = kd.model_from_config(raw, gen)
    leaky = next(l for l in model.layers if l.class_name == "LeakyReLU")
    assert leaky.config["negative_slope"] == pytest.approx(0.2) and "alpha" not in leaky.config
    k2 = kd.model_to_config(model, kd.KERAS2)
    assert any(l["config"].get("alpha") == pytest.approx(0.2) for l in k2["config"]["layers"])


def test_activation_names_keep_their_semantics():
    k2 = kd.model_from_config(_config("keras2", "hard_sigmoid"), kd.KERAS2)
    k3 = kd.model_from_config(_config("keras3", "hard_sigmoid"), kd.KERAS3)
    act = lambda m: next(l.config["activation"] for l in m.layers if l.name == "dense_3")
    assert act(k2) == kd.LEGACY_HARD_SIGMOID and act(k3) == "hard_sigmoid"
    with pytest.raises(UnsupportedError, match="Keras 2's hard_sigmoid"):
        kd.check_keras3(k2)
    with pytest.raises(UnsupportedError, match=r"relu6\(x \+ 3\) / 6"):
        kd.model_to_config(k3, kd.KERAS2)
    mlp = kd.model_from_config(_config("keras2", "mlp_activations"), kd.KERAS2)
    assert mlp.layer("dense_swish").config["activation"] == "silu"
    k2_out = kd.model_to_config(mlp, kd.KERAS2)
    assert {l["config"].get("activation") for l in k2_out["config"]["layers"]} >= {"swish"}


def test_keras2_only_keys_are_dropped_at_neutral_values():
    model = kd.model_from_config(_config("keras2", "recurrent"), kd.KERAS2)
    lstm = model.layer("lstm_1") if any(l.name == "lstm_1" for l in model.layers) else \
        next(l for l in model.layers if l.class_name == "LSTM")
    assert "time_major" not in lstm.config and "implementation" not in lstm.config
    sep = kd.model_from_config(_config("keras2", "separable_depthwise"), kd.KERAS2)
    conf = next(l.config for l in sep.layers if l.class_name == "SeparableConv2D")
    assert not {"kernel_initializer", "groups"} & set(conf)
    bn = next(l.config for l in sep.layers if l.class_name == "BatchNormalization")
    assert bn["axis"] == 3


def test_time_major_is_kept_and_refused():
    cfg = kd.canonical_layer_config("LSTM", {"units": 2, "time_major": True, "name": "l"},
                                    kd.KERAS2)
    assert cfg["time_major"] is True
    assert "time_major" in " ".join(kd._keras3_layer_blockers("LSTM", cfg))


def test_dtype_policies_become_names_and_back():
    model = kd.model_from_config(_config("keras3", "mlp_sequential"), kd.KERAS3)
    assert all(l.config.get("dtype") in ("float32", None) for l in model.layers)
    out = kd.model_to_config(model, kd.KERAS3)
    dense = next(l for l in out["config"]["layers"] if l["class_name"] == "Dense")
    assert dense["config"]["dtype"]["class_name"] == "DTypePolicy"
    assert dense["config"]["kernel_initializer"]["module"] == "keras.initializers"


def test_sequential_without_input_layer_gets_one_named_like_tfjs():
    raw = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Dense", "config": {"name": "hidden", "units": 2,
                                           "batch_input_shape": [None, 3], "dtype": "float32"}}]}}
    model = kd.model_from_config(raw, kd.KERAS2)
    assert [l.class_name for l in model.layers] == ["InputLayer", "Dense"]
    assert model.layers[0].name == "hidden_input"
    assert model.layers[0].config["batch_shape"] == [None, 3]


@pytest.mark.parametrize("raw,pattern", [
    ({"class_name": "MyModel", "config": {}}, "no layer graph"),
    ({"class_name": "Functional", "config": {"layers": [{"class_name": "Dense", "config": {}}]}},
     "has no name"),
    ({"class_name": "Functional", "config": {"layers": [], "input_layers": [["ghost", 0, 0]]}},
     "does not exist"),
    ({"class_name": "Functional", "config": {"layers": [
        {"class_name": "InputLayer", "name": "a", "config": {"name": "a"}},
        {"class_name": "Dense", "name": "a", "config": {"name": "a"}}]}}, "duplicate layer names"),
    ({"class_name": "Functional", "config": {"layers": [
        {"class_name": "Dense", "name": "d", "config": {"name": "d"},
         "inbound_nodes": [[["d", -3, 0, {}]]]}]}}, "negative"),
    ({"class_name": "Functional", "config": {"layers": "nope"}}, "not a list"),
    ({"class_name": "Functional", "config": {"layers": [
        {"class_name": "Dense", "name": "a", "config": {"name": "a"},
         "inbound_nodes": [[["b", 0, 0, {}]]]},
        {"class_name": "Dense", "name": "b", "config": {"name": "b"},
         "inbound_nodes": [[["a", 0, 0, {}]]]}]}}, "cycle"),
    ({"class_name": "Functional", "config": {"layers": [
        {"class_name": "InputLayer", "name": "x", "config": {"name": "x"}},
        {"class_name": "Dense", "name": "a", "config": {"name": "a"},
         "inbound_nodes": [[["x", 3, 0, {}]]]}]}}, "called 1 time"),
])
def test_malformed_configs_are_format_errors(raw, pattern):
    with pytest.raises((FormatError, UnsupportedError), match=pattern):
        kd.model_from_config(raw, kd.KERAS2)
