"""The tf2onnx oracle: ONNX written by the real tf2onnx for small Keras 3 models (and, as
``k2_*``, tf_keras builds of some through ``tf2onnx.convert.from_keras``;
``fixtures/make_tf2onnx_fixtures.py``) raises back to Keras.

Each fixture converts to ``.keras`` and ``.h5`` with the default check (onnxruntime on the
source against the NumPy Keras reference on the result, seeded inputs); the written model,
read back, computes on the recorded inputs what Keras computed (the NumPy Keras reference
here; real Keras 3 in ``tests/interop/test_tf2onnx_keras.py``); and it is made of the layers
the Keras model had where the table below names them (an LSTM comes back an LSTM, not a
graph of ops that computes the same).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import modelport
from modelport.runtime import keras_reference

from .conftest import assert_close

HERE = Path(__file__).resolve().parent.parent / "fixtures" / "tf2onnx"
NAMES = sorted(json.loads((HERE / "manifest.json").read_text())["models"])

# fixture -> (Keras class, config items it must have): the layers it came from
LAYERS: dict[str, list[tuple[str, dict]]] = {
    "conv1d_causal": [("Conv1D", {"padding": "causal"})],
    "conv1d_causal_dilated": [("Conv1D", {"padding": "causal", "dilation_rate": [2]}),
                              ("Conv1D", {"padding": "causal", "dilation_rate": [4]})],
    "conv1d_dilated": [("Conv1D", {"padding": "same"}), ("Conv1D", {"padding": "valid"})],
    "upsampling_nearest": [("UpSampling2D", {"interpolation": "nearest", "size": [2, 2]})],
    "upsampling_bilinear": [("UpSampling2D", {"interpolation": "bilinear", "size": [2, 3]})],
    "subtract": [("Subtract", {})],
    "merges": [("Add", {}), ("Multiply", {}), ("Subtract", {}), ("Concatenate", {})],
    "lstm_seq": [("LSTM", {"return_sequences": True})],
    "lstm_last": [("LSTM", {"return_sequences": False})],
    "lstm_backwards": [("LSTM", {"go_backwards": True, "return_sequences": True})],
    "lstm_stacked": [("LSTM", {"return_sequences": True}), ("LSTM", {"return_sequences": False})],
    "gru_seq": [("GRU", {"return_sequences": True, "reset_after": True})],
    "gru_last": [("GRU", {"return_sequences": False})],
    "gru_reset_before": [("GRU", {"reset_after": False})],
    "simplernn_seq": [("SimpleRNN", {"return_sequences": True, "activation": "tanh"})],
    "simplernn_last": [("SimpleRNN", {"return_sequences": False, "activation": "relu"})],
    "bidirectional_lstm": [("Bidirectional", {"merge_mode": "concat"})],
    "bidirectional_gru_last": [("Bidirectional", {"merge_mode": "concat"})],
    "embedding_lstm": [("Embedding", {}), ("LSTM", {})],
    "layernorm": [("LayerNormalization", {})],
    "cnn_bn_gap": [("Conv2D", {}), ("MaxPooling2D", {})],
    "dense_stack": [("Dense", {})],
    "position_embedding": [("Dense", {})],
}


# the tf_keras builds (tf2onnx.convert.from_keras) come back as the same layers
LAYERS.update({f"k2_{name}": LAYERS[name] for name in list(LAYERS) if f"k2_{name}" in NAMES})


def _case(name: str) -> tuple[Path, list[np.ndarray], list[np.ndarray]]:
    data = np.load(HERE / f"{name}.npz")
    xs = [data[k] for k in data.files if k.startswith("input:")]
    ys = [data[k] for k in data.files if k.startswith("output:")]
    return HERE / f"{name}.onnx", xs, ys


def test_every_fixture_is_listed():
    assert sorted(LAYERS) == sorted(set(LAYERS) & set(NAMES))
    assert len(NAMES) >= 30


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("name", NAMES)
def test_tf2onnx_onnx_raises_to_keras(name, suffix, tmp_path):
    src, xs, ys = _case(name)
    dst = tmp_path / f"model{suffix}"
    report = modelport.convert(src, dst)
    assert report.parity is not None and report.parity.passed
    model = modelport.load(dst)
    got = keras_reference.run(model, xs).outputs
    assert len(got) == len(ys)
    for actual, expected in zip(got, ys):
        assert_close(actual, expected, atol=2e-5, rtol=1e-4, what=f"{name}{suffix}")
    layers = [(layer.class_name, layer.config) for layer in model.layers]
    for cls, items in LAYERS.get(name, []):
        assert any(c == cls and all(_config_item(cfg, k) == v for k, v in items.items())
                   for c, cfg in layers), f"{name}: no {cls} with {items} in {layers}"


def _config_item(config: dict, key: str):
    value = config.get(key)
    if key in ("size", "dilation_rate") and isinstance(value, (list, tuple, int)):
        return list(value) if isinstance(value, (list, tuple)) else [value]
    return value
