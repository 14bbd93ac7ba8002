"""Keras layers that tfjs-layers lacks reach TF.js as graph-models: each per-layer fixture of
these classes (made by real Keras 3, fixtures/layers) is converted by modelport (lowered to ONNX,
mapped to TF ops), run in real @tensorflow/tfjs under Node, and compared with the outputs Keras
recorded. A TF.js layers-model target is refused, naming the layer.
"""

from __future__ import annotations

import pytest

import modelport
from modelport.formats import tfjs_graph

from ..conftest import LAYER_CASES, assert_close, case_params

CLASSES = ("Attention", "AdditiveAttention", "GroupQueryAttention", "RMSNormalization")
CASES = [c for c in LAYER_CASES if c.layer_class in CLASSES]
# case -> what stops the graph route (not the class under test); none since ONNX Scan maps to
# a StatelessWhile (GroupQueryAttention-mask_zero-LSTM's masked LSTM was refused at its Scan)
REFUSED: dict[str, str] = {}


@pytest.mark.parametrize("case", case_params(CASES))
def test_graph_model_runs_in_tfjs(case, tmp_path, tfjs):
    web = tmp_path / "web"
    if case.name in REFUSED:
        with pytest.raises(modelport.UnsupportedError, match=REFUSED[case.name]):
            modelport.convert(case.path, web, to="tfjs-graph", validate=False)
        return
    modelport.convert(case.path, web, to="tfjs-graph", validate=False)
    graph = tfjs_graph.read(web / "model.json")
    feeds = dict(case.inputs)
    got = tfjs.run_graph_model(web / "model.json",
                               [(i.tensor, feeds[i.key]) for i in graph.inputs],
                               [o.tensor for o in graph.outputs])
    assert len(got) == len(case.outputs)
    for (name, want), actual in zip(case.outputs, got):
        assert_close(actual, want, what=f"{case.id} in tfjs, output {name}")


@pytest.mark.parametrize("case", case_params([c for c in CASES if c.name.endswith(
    ("dot", "AdditiveAttention", "self", "RMSNormalization"))]))
def test_layers_model_target_names_the_layer(case, tmp_path):
    with pytest.raises(modelport.UnsupportedError,
                       match=f"tfjs-layers 4.22 has no {case.layer_class} layer"):
        modelport.convert(case.path, tmp_path / "web", to="tfjs-layers")
