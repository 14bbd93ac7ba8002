"""Issue 18 point 12: layers tfjs-layers 4.22 lacks become exact compositions of layers it has,
proven in real @tensorflow/tfjs under Node against real Keras's outputs; where none exists the
refusal offers ``--to tfjs-graph``, which real tfjs then runs.

- ``Subtract`` -> ``Add`` + ``Rescaling(-1)`` (tfjs-layers registers no Subtract);
- causal ``Conv1D`` -> ``Reshape`` + ``ZeroPadding2D`` + ``Conv2D`` (valid) + ``Reshape``
  (tfjs-layers' Conv1D throws on causal padding, and it has no ZeroPadding1D);
- ``ZeroPadding1D`` -> ``Reshape`` + ``ZeroPadding2D`` + ``Reshape`` (what the ONNX raiser
  makes of tf2onnx's ``Pad`` before a ``Conv``);
- bilinear ``UpSampling2D`` (tfjs-layers 4.22 resizes without half-pixel centres) -> the edge
  pixels repeated (``Cropping2D`` + ``Concatenate``), ``UpSampling2D(nearest)``, one or two
  ``AveragePooling2D`` (the interpolation weights) and ``Cropping2D``: the same interpolation,
  summed in another order (one float32 ulp measured);
- global pooling with ``keepdims=True`` (ignored by tfjs-layers 4.22) -> the pooling, then
  ``Reshape``;
- ``Normalization`` -> ``BatchNormalization`` with its mean and variance (epsilon 0, the
  variance floored at Keras's epsilon squared);
- ``ELU(alpha != 1)`` -> ``relu(x) + alpha * min(ELU(x), 0)`` (tfjs-layers' ELU takes alpha 1
  only);
- Keras 3's ``hard_sigmoid`` activation (``relu6(x + 3) / 6``; tfjs's is Keras 2's) ->
  ``Rescaling(offset=3)``, ``Activation("relu6")``, ``Rescaling(1/6)`` after the layer;
- a layer with no composition (``GRU(reset_after=True)``) is refused with ``--to tfjs-graph``,
  which real tfjs then runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import modelport
from modelport.formats import tfjs_layers
from modelport.models import tfjs_support

from ..conftest import ALL_CASES, LAYER_CASES, assert_close, case_params

REWRITTEN = [c for c in ALL_CASES if c.name in ("subtract", "conv1d_causal")] + [
    c for c in LAYER_CASES if c.name in ("Subtract", "Conv1D-causal", "Conv1D-causal-dilated",
                                         "ZeroPadding1D", "UpSampling2D-bilinear")]
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
REWRITTEN += [c for c in ALL_CASES if c.name in ("upsampling_bilinear", "gap_keepdims",
                                                  "normalization", "elu_alpha")] + [
    c for c in LAYER_CASES if c.name.startswith("Normalization-") or c.name in (
        "ELU-alpha0.7", "Dense-activation-hard_sigmoid")
] + [c for c in ALL_CASES if c.name == "hard_sigmoid" and c.generation == "keras3"] + [
    c for c in LAYER_CASES if c.name.startswith("Global") and c.name.endswith("keepdims")
    and "3D" not in c.name]
# GRU(reset_after=True): tfjs-layers 4.22 does not implement it, and no layer composes it
NO_COMPOSITION = [c for c in ALL_CASES if c.name == "gru_reset_after"
                  and c.generation == "keras3" and c.kind == "h5"]


@pytest.mark.parametrize("case", case_params(REWRITTEN))
def test_a_rewritten_layer_runs_in_tfjs_as_in_keras(case, tmp_path, tfjs):
    report = modelport.convert(case.path, tmp_path / "web")
    assert report.rewrites and report.check.weights_differing == 0
    result = tfjs.run_layers_model(tmp_path / "web" / "model.json", case.inputs)
    for (name, expected), actual in zip(case.outputs, result["arrays"]):
        # bit for bit but for the bilinear filter's sum (one float32 ulp measured)
        assert_close(actual, expected, atol=1e-6, rtol=1e-6, what=f"{case.id} output {name}")
    # the weights keep their names (<layer>/kernel): the composition holds them under the layer
    # (Normalization's mean and variance become its BatchNormalization's moving statistics)
    written = sorted(name for name, _ in tfjs_layers.ordered_weights(
        tfjs_support.prepare(modelport.load(case.path))))
    assert sorted(result["weights"]) == written
    if "ormalization" not in case.name:
        assert written == sorted(
            name for name, _ in tfjs_layers.ordered_weights(modelport.load(case.path)))


@pytest.mark.parametrize("case", case_params(NO_COMPOSITION))
def test_a_layer_without_a_composition_is_refused_with_the_graph_route(case, tmp_path, tfjs):
    with pytest.raises(modelport.UnsupportedError) as e:
        modelport.convert(case.path, tmp_path / "web", to="tfjs-layers")
    assert "--to tfjs-graph" in (e.value.hint or "")
    modelport.convert(case.path, tmp_path / "graph", to="tfjs-graph")
    outputs = [name for name, _ in case.outputs]
    got = tfjs.run_graph_model(tmp_path / "graph" / "model.json", case.inputs, outputs)
    for (name, expected), actual in zip(case.outputs, got):
        assert_close(actual, expected, what=f"{case.id} output {name} (graph-model)")


def test_keras_built_compositions_run_in_tfjs(tmp_path, keras3, tfjs):
    """Strided and dilated causal convolutions in a Sequential model and in a graph where the
    Subtract is called twice and feeds further layers, and bilinear upsampling by several
    factors, built by real Keras 3 and run in real tfjs."""
    k = keras3
    rng = np.random.default_rng(5)
    seq = k.Sequential([k.Input((11, 3)),
                        k.layers.Conv1D(4, 3, padding="causal", strides=2, activation="relu"),
                        k.layers.Conv1D(2, 2, padding="causal", dilation_rate=3),
                        k.layers.Activation("hard_sigmoid"),
                        k.layers.Flatten(), k.layers.Dense(2, activation="hard_sigmoid")])
    a, b = k.Input((7, 3)), k.Input((7, 3))
    sub = k.layers.Subtract()
    conv = k.layers.Conv1D(5, 4, padding="causal", dilation_rate=2)
    d1 = conv(sub([a, b]))
    d1 = k.layers.Conv1D(5, 2, padding="causal", dilation_rate=4)(d1)  # stacked: TCN-like
    d2 = sub([b, a])
    h = k.layers.Dense(3, activation="hard_sigmoid")(d2)
    y = k.layers.Concatenate()([d1, k.layers.Dense(5)(d2), conv(h)])  # conv: called twice
    graph = k.Model([a, b], [y, d2])
    # bilinear upsampling: even, odd and unit factors, a shared layer called on two sizes'
    # worth of inputs, and a Sequential model (rewritten as the same Functional graph)
    img, img2 = k.Input((5, 4, 3)), k.Input((5, 4, 3))
    up = k.layers.UpSampling2D((2, 2), interpolation="bilinear")
    z = k.layers.Concatenate()([up(img), up(img2)])
    z = k.layers.UpSampling2D((3, 1), interpolation="bilinear")(z)
    z = k.layers.UpSampling2D((1, 4), interpolation="bilinear")(z)
    images = k.Model([img, img2], z)
    ups = k.Sequential([k.Input((3, 6, 2)), k.layers.UpSampling2D((4, 3),
                                                                  interpolation="bilinear"),
                        k.layers.Conv2D(2, 3),
                        k.layers.GlobalMaxPooling2D(keepdims=True)])
    for model, ins in ((seq, [rng.normal(size=(3, 11, 3))]),
                       (graph, [rng.normal(size=(3, 7, 3)), rng.normal(size=(3, 7, 3))]),
                       (images, [rng.normal(size=(2, 5, 4, 3)), rng.normal(size=(2, 5, 4, 3))]),
                       (ups, [rng.normal(size=(2, 3, 6, 2))])):
        ins = [x.astype(np.float32) for x in ins]
        expected = model.predict(ins if len(ins) > 1 else ins[0], verbose=0)
        expected = expected if isinstance(expected, list) else [expected]
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        report = modelport.convert(path, tmp_path / model.name)
        assert report.rewrites
        names = [t.name for t in model.inputs]
        result = tfjs.run_layers_model(tmp_path / model.name / "model.json",
                                       list(zip(names, ins)))
        for want, got in zip(expected, result["arrays"]):
            assert_close(got, np.asarray(want), atol=2e-6, rtol=1e-6, what=model.name)


@pytest.mark.parametrize("name", ["conv1d_causal", "conv1d_causal_dilated", "subtract",
                                  "merges", "upsampling_bilinear"])
def test_tf2onnx_models_reach_tfjs_layers(name, tmp_path, tfjs):
    """ONNX that tf2onnx wrote for Keras models, raised to Keras (a causal Conv1D as
    ZeroPadding1D + Conv1D, Sub as Subtract, Resize as bilinear UpSampling2D) and written as a
    tfjs-layers model through the compositions: real tfjs agrees with TensorFlow."""
    src = FIXTURES / "tf2onnx" / f"{name}.onnx"
    with np.load(src.with_suffix(".npz")) as data:
        inputs = [(k.split(":", 1)[1], data[k]) for k in data.files if k.startswith("input:")]
        expected = [data[k] for k in data.files if k.startswith("output:")]
    report = modelport.convert(src, tmp_path / "web", to="tfjs-layers")
    assert report.rewrites
    result = tfjs.run_layers_model(tmp_path / "web" / "model.json", inputs)
    for want, got in zip(expected, result["arrays"]):
        assert_close(got, want, atol=1e-5, rtol=1e-5, what=f"{name} in tfjs")
