"""TF1 TensorArrays and NonMaxSuppressionV3/V5 (issue 18): graph-models whose TF1 ``tf.map_fn``
loops carry ``TensorArrayV3`` values (``fixtures/tensor_arrays``, written by
``tensorflowjs_converter`` from ``tf.compat.v1`` graphs; a per-image NMS as TF1-era detectors
hold it) -> ONNX ``Loop``s over dense tensors that onnxruntime runs matching TensorFlow; the
NumPy TF reference matches TensorFlow on them too. A TF2 ``map_fn`` (``tf2_map_nms_v5``)
reserves its result tensor lists with an element shape of unknown rank, which its
``TensorListStack`` states. Shapes the dense form cannot hold are refused by name.

Real tfjs runs the same files in tests/interop/test_tensor_arrays.py.
"""

from __future__ import annotations

import json

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest

from modelport.converters.tfjs_to_onnx import driver as to_onnx
from modelport.errors import UnsupportedError
from modelport.formats import tfjs_graph
from modelport.models import tfjs_tensor_arrays
from modelport.models.tfjs_graph import TensorInfo, TfjsGraph, TfNode, a_bool, a_shape, a_type
from modelport.runtime.tfjs_reference import run
from modelport.runtime.tfjs_reference.nms import select

from .conftest import FIXTURES
from .test_control_flow import io_sets

HERE = FIXTURES / "tensor_arrays"
MANIFEST = json.loads((HERE / "manifest.json").read_text())
CASES = sorted(MANIFEST["cases"])
TF1_CASES = [c for c in CASES if "TensorArrayV3" in MANIFEST["cases"][c]["ops"]]
ATOL = RTOL = 1e-5


def _check(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape}, TF's {want.shape}"
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=RTOL, err_msg=what)


@pytest.mark.parametrize("name", TF1_CASES)
def test_fixture_holds_tf1_tensor_arrays(name):
    ops = set(MANIFEST["cases"][name]["ops"])
    assert {"TensorArrayV3", "TensorArrayScatterV3", "TensorArrayReadV3",
            "TensorArrayWriteV3", "TensorArrayGatherV3", "Enter", "LoopCond"} <= ops
    assert "StatelessWhile" not in ops and not any(op.startswith("TensorList") for op in ops)


@pytest.mark.parametrize("name", CASES)
def test_reference_runs_tensor_arrays_like_tensorflow(name):
    graph = tfjs_graph.read(HERE / name)
    for j, (feeds, want) in enumerate(io_sets(HERE / name / "io.npz",
                                              MANIFEST["cases"][name]["sets"])):
        got = run(graph, [feeds[i.key] for i in graph.inputs])
        for info, value in zip(graph.outputs, got):
            _check(np.asarray(value), want[info.key], f"{name} set {j}: {info.key}")


@pytest.mark.parametrize("name", CASES)
def test_tensor_arrays_to_onnx_match_tensorflow(name):
    graph = tfjs_graph.read(HERE / name)
    model = ir.to_proto(to_onnx.convert(graph))
    ops = {n.op_type for n in model.graph.node}
    assert "Loop" in ops
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    for j, (feeds, want) in enumerate(io_sets(HERE / name / "io.npz",
                                              MANIFEST["cases"][name]["sets"])):
        got = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})
        for key, value in zip(names, got):
            _check(value, want[key], f"{name} set {j}: {key}")


def test_tf2_map_fn_reserves_lists_of_unknown_element_rank():
    graph = tfjs_graph.read(HERE / "tf2_map_nms_v5")
    reserves = [n for n in graph.nodes if n.op == "TensorListReserve"]
    assert reserves and all(np.asarray(graph.weights[n.inputs[0]]).ndim == 0 and
                            int(graph.weights[n.inputs[0]]) == -1 for n in reserves)
    assert "NonMaxSuppressionV5" in MANIFEST["cases"]["tf2_map_nms_v5"]["ops"]


def test_arrays_become_dense_values_before_the_lift():
    graph = tfjs_tensor_arrays.dense(tfjs_graph.read(HERE / "map_nms"))
    assert not any(n.op.startswith("TensorArray") for n in graph.nodes)
    # the flows the loop carries are typed with their arrays' dtypes (TF types them float32)
    enters = {n.name: n for n in graph.nodes if n.op == "Enter"}
    assert enters["map/while/Enter_4"].attrs["T"] == a_type("int32")
    assert enters["map/while/TensorArrayReadV3/Enter"].attrs["T"] == a_type("int32")


def _array_graph(dynamic: bool) -> TfjsGraph:
    """x [3, 2] -> a TensorArray of unknown element rank written row by row, then stacked."""
    n = np.asarray(3, np.int32)
    nodes = [
        TfNode("x", "Placeholder", [], {"dtype": a_type("float32")}),
        TfNode("n", "Const", [], {"dtype": a_type("int32")}),
        TfNode("i", "Const", [], {"dtype": a_type("int32")}),
        TfNode("ta", "TensorArrayV3", ["n"], {"dtype": a_type("float32"),
                                              "dynamic_size": a_bool(dynamic),
                                              "element_shape": a_shape(None)}),
        TfNode("row", "GatherV2", ["x", "i", "i"], {}),
        TfNode("w", "TensorArrayWriteV3", ["ta", "i", "row", "ta:1"], {"T": a_type("float32")}),
        TfNode("size", "TensorArraySizeV3", ["ta", "w"], {}),
    ]
    return TfjsGraph(nodes, {"n": n, "i": np.asarray(0, np.int32)},
                     [TensorInfo("x", "x:0", "float32", [3, 2])],
                     [TensorInfo("size", "size:0", "int32", [])])


@pytest.mark.parametrize("dynamic,why", [(True, "dynamic_size"), (False, "unknown rank")])
def test_arrays_the_dense_form_cannot_hold_are_refused_by_name(dynamic, why):
    with pytest.raises(UnsupportedError, match=why) as info:
        to_onnx.convert(_array_graph(dynamic))
    assert "'ta'" in str(info.value)


# --- NonMaxSuppressionV3: the reference's rules, and ONNX's agreeing with them ----------------

def _nms_graph(boxes, scores, max_out, iou, score, sigma: float | None = None) -> TfjsGraph:
    """NonMaxSuppressionV3 (``sigma`` None) or V5 over two inputs and constant arguments."""
    weights = {"max": np.asarray(max_out, np.int32), "iou": np.asarray(iou, np.float32),
               "score": np.asarray(score, np.float32)}
    if sigma is not None:
        weights["sigma"] = np.asarray(sigma, np.float32)
    op = "NonMaxSuppressionV3" if sigma is None else "NonMaxSuppressionV5"
    nodes = [TfNode("boxes", "Placeholder", [], {"dtype": a_type("float32")}),
             TfNode("scores", "Placeholder", [], {"dtype": a_type("float32")}),
             *(TfNode(k, "Const", [], {"dtype": a_type(str(v.dtype))})
               for k, v in weights.items()),
             TfNode("nms", op, ["boxes", "scores", *weights], {})]
    outs = [TensorInfo("nms", "nms:0", "int32", None)]
    if sigma is not None:
        outs += [TensorInfo("kept_scores", "nms:1", "float32", None),
                 TensorInfo("count", "nms:2", "int32", None)]
    return TfjsGraph(nodes, weights,
                     [TensorInfo("boxes", "boxes:0", "float32", list(boxes.shape)),
                      TensorInfo("scores", "scores:0", "float32", list(scores.shape))], outs)


def _both(graph: TfjsGraph, boxes, scores) -> list[np.ndarray]:
    """The graph's outputs in onnxruntime, checked equal to the reference's."""
    model = ir.to_proto(to_onnx.convert(graph))
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    ref = run(graph, [boxes, scores])
    ours = session.run(None, {"boxes": boxes, "scores": scores})
    for a, b in zip(ours, ref):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.asarray(b).dtype
    return ours


def _nms_onnx(boxes, scores, max_out, iou, score) -> np.ndarray:
    return _both(_nms_graph(boxes, scores, max_out, iou, score), boxes, scores)[0]


BOXES = np.asarray([[0, 0, 1, 1], [0, 0, 1, 0.9], [1, 1, 0, 0], [0, 2, 1, 3],
                    [0.5, 0.5, 0.5, 2], [0, 0.5, 1, 1.5]], np.float32)


def test_nms_keeps_best_first_and_suppresses_above_the_iou():
    scores = np.asarray([0.9, 0.8, 0.7, 0.6, 0.95, 0.5], np.float32)
    # box 1 overlaps box 0 by 0.9 and box 2 is box 0 with its corners swapped; box 4 has no
    # area (IoU 0 with all); box 5 overlaps box 0 by 1/3
    assert _nms_onnx(BOXES, scores, 10, 0.5, 0.0).tolist() == [4, 0, 3, 5]
    assert _nms_onnx(BOXES, scores, 10, 0.3, 0.0).tolist() == [4, 0, 3]
    assert _nms_onnx(BOXES, scores, 2, 0.5, 0.0).tolist() == [4, 0]


def test_nms_score_threshold_is_strict():
    scores = np.asarray([0.9, 0.8, 0.7, 0.6, 0.95, 0.5], np.float32)
    assert _nms_onnx(BOXES, scores, 10, 1.0, 0.6).tolist() == [4, 0, 1, 2]
    assert _nms_onnx(BOXES, scores, 10, 1.0, 0.99).tolist() == []


def test_nms_iou_at_the_threshold_keeps_the_box():
    boxes = np.asarray([[0, 0, 1, 2], [0, 1, 1, 3]], np.float32)  # IoU exactly 1/3
    scores = np.asarray([0.9, 0.8], np.float32)
    assert select(boxes, scores, 5, 1 / 3, -np.inf).tolist() == [0, 1]
    assert select(boxes, scores, 5, 0.3, -np.inf).tolist() == [0]


def test_nms_v5_returns_the_kept_scores_and_count():
    scores = np.asarray([0.9, 0.8, 0.7, 0.6, 0.95, 0.5], np.float32)
    kept, kept_scores, count = _both(_nms_graph(BOXES, scores, 10, 0.5, 0.0, sigma=0.0),
                                     BOXES, scores)
    assert kept.tolist() == [4, 0, 3, 5] and int(count) == 4 and count.shape == ()
    np.testing.assert_array_equal(kept_scores, scores[[4, 0, 3, 5]])


def test_soft_nms_is_refused_by_name():
    scores = np.asarray([0.9, 0.8, 0.7, 0.6, 0.95, 0.5], np.float32)
    graph = _nms_graph(BOXES, scores, 10, 0.5, 0.0, sigma=0.5)
    with pytest.raises(UnsupportedError, match="soft"):
        to_onnx.convert(graph)
    with pytest.raises(UnsupportedError, match="'nms'.*soft"):
        run(graph, [BOXES, scores])
