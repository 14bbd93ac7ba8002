"""TF1 TensorArrays and NonMaxSuppressionV3/V5 in real tfjs (Node, @tensorflow/tfjs 4.22,
executeAsync).

* The graph-models ``tensorflowjs_converter`` wrote from ``tf.map_fn`` loops
  (``fixtures/tensor_arrays``: TF1 TensorArrays, and a TF2 case's tensor lists with NMS V5)
  run in tfjs as in TensorFlow; the TF1 ones, with their TensorArrays made dense values
  (``models.tfjs_tensor_arrays``) and their frames lifted to v2, still do; and the ONNX
  converted from each matches tfjs in onnxruntime.
* NonMaxSuppressionV3 on boxes with tied scores, swapped corners and no area: tfjs, the NumPy
  reference and ONNX's NonMaxSuppression keep the same indices in the same order.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest

from modelport.converters.tfjs_to_onnx import driver as to_onnx
from modelport.formats import tfjs_graph
from modelport.models import tfjs_tensor_arrays
from modelport.models.tfjs_control_v1 import lift
from modelport.models.tfjs_graph import TensorInfo, TfjsGraph, TfNode, a_type
from modelport.runtime.tfjs_reference import run

from ..test_control_flow import io_sets
from ..test_tensor_arrays import CASES, HERE, MANIFEST, TF1_CASES

ATOL = RTOL = 1e-5


def _run(tfjs, model_json, graph, feeds):
    return tfjs.run_graph_model(model_json, [(i.tensor, feeds[i.key]) for i in graph.inputs],
                                [o.tensor for o in graph.outputs])


def _sets(name):
    return io_sets(HERE / name / "io.npz", MANIFEST["cases"][name]["sets"])


@pytest.mark.parametrize("name", CASES)
def test_tensor_arrays_run_in_tfjs_like_tensorflow(tfjs, name):
    graph = tfjs_graph.read(HERE / name)
    for feeds, want in _sets(name):
        for info, value in zip(graph.outputs, _run(tfjs, HERE / name / "model.json", graph,
                                                   feeds)):
            np.testing.assert_allclose(value, want[info.key], atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("name", TF1_CASES)
def test_dense_arrays_lifted_run_in_tfjs_like_tensorflow(tfjs, name, tmp_path):
    rewritten = lift(tfjs_tensor_arrays.dense(tfjs_graph.read(HERE / name)))
    assert not any(n.op.startswith("TensorArray") for n in rewritten.all_nodes())
    written = tfjs_graph.write(rewritten, tmp_path / "web")
    for feeds, want in _sets(name):
        for info, value in zip(rewritten.outputs, _run(tfjs, written, rewritten, feeds)):
            np.testing.assert_allclose(value, want[info.key], atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("name", CASES)
def test_tensor_arrays_to_onnx_match_tfjs(tfjs, name):
    graph = tfjs_graph.read(HERE / name)
    model = ir.to_proto(to_onnx.convert(graph))
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    for feeds, _ in _sets(name):
        theirs = dict(zip([o.key for o in graph.outputs],
                          _run(tfjs, HERE / name / "model.json", graph, feeds)))
        ours = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})
        for key, value in zip(names, ours):
            assert value.shape == theirs[key].shape, key
            np.testing.assert_allclose(value, theirs[key], atol=ATOL, rtol=RTOL, err_msg=key)


def test_nms_keeps_what_tfjs_keeps(tfjs, tmp_path):
    boxes = np.asarray([[0, 0, 1, 1], [0, 0, 1, 0.9], [1, 1, 0, 0], [0, 2, 1, 3],
                        [0.5, 0.5, 0.5, 2], [0, 0.5, 1, 1.5], [0, 4, 1, 5], [0, 4.1, 1, 5.1],
                        [0, 6, 1, 7]], np.float32)
    # ties: boxes 6 and 7 (overlapping) and 8 score alike
    scores = np.asarray([0.9, 0.8, 0.7, 0.6, 0.95, 0.5, 0.75, 0.75, 0.75], np.float32)
    weights = {"max": np.asarray(7, np.int32), "iou": np.asarray(0.3, np.float32),
               "score": np.asarray(0.55, np.float32)}
    nodes = [TfNode("boxes", "Placeholder", [], {"dtype": a_type("float32")}),
             TfNode("scores", "Placeholder", [], {"dtype": a_type("float32")}),
             *(TfNode(k, "Const", [], {"dtype": a_type(str(v.dtype))})
               for k, v in weights.items()),
             TfNode("nms", "NonMaxSuppressionV3", ["boxes", "scores", "max", "iou", "score"],
                    {})]
    graph = TfjsGraph(nodes, weights,
                      [TensorInfo("boxes", "boxes:0", "float32", list(boxes.shape)),
                       TensorInfo("scores", "scores:0", "float32", list(scores.shape))],
                      [TensorInfo("nms", "nms:0", "int32", None)])
    written = tfjs_graph.write(graph, tmp_path / "web")
    theirs = _run(tfjs, written, graph, {"boxes": boxes, "scores": scores})[0]
    ref = run(graph, [boxes, scores])[0]
    model = ir.to_proto(to_onnx.convert(graph))
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    ours = session.run(None, {"boxes": boxes, "scores": scores})[0]
    assert np.asarray(theirs).tolist() == ref.tolist() == ours.tolist()
