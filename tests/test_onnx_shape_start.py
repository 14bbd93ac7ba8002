"""``Shape`` with ``start``/``end`` (opset 15) in the folding of ``Gather(Shape(x), k)`` and in
rank inference (issue 18).

PyTorch >= 1.12 writes ``start=0`` on every ``Shape`` it exports. silero-vad v4 (the
``silero_vad_legacy.onnx`` that ``@ricky0123/vad-web`` ships) squeezes its padded audio only
when ``x.shape[1] == 1``, inside the ``If`` on its sample rate: with the attribute present the
partly static ``Gather(Shape(x), 1)`` did not fold, the rank-changing ``If`` stayed, and the
``Conv`` after it had no rank, so ``--to tfjs-graph`` was refused ("the input's rank is
unknown") and no route but ONNX itself remained. These tests hold the ``test_onnx_ranks``
patterns with that attribute.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from modelport.converters.onnx_normalize import fold_constants, normalize
from modelport.converters.onnx_ranks import infer_ranks
from modelport.converters.onnx_to_tfjs import driver as to_tfjs
from modelport.runtime.tfjs_reference import run
from tests.test_onnx_ranks import rate_feeds, rate_switch_model


def _with_start(model: onnx.ModelProto, start: int = 0) -> onnx.ModelProto:
    """Every Shape node (subgraphs too) with an explicit ``start``, as PyTorch writes it."""
    def walk(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            if node.op_type == "Shape":
                node.attribute.append(h.make_attribute("start", start))
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
    walk(model.graph)
    return model


@pytest.mark.parametrize("start,end,index,dim", [(0, None, 0, 2), (0, None, 2, 128),
                                                 (2, None, 0, 128), (-1, None, 0, 128),
                                                 (0, 1, 0, 2)])
def test_gather_of_a_sliced_partly_static_shape_folds(start, end, index, dim):
    # state [2, ?, 128]: Shape(state, start, end)[index] is `dim`; an If on it folds away
    then_g = h.make_graph([h.make_node("Neg", ["state"], ["t"])], "t", [],
                          [h.make_tensor_value_info("t", T.FLOAT, None)])
    else_g = h.make_graph([h.make_node("Identity", ["state"], ["e"])], "e", [],
                          [h.make_tensor_value_info("e", T.FLOAT, None)])
    sliced = {"start": start, **({"end": end} if end is not None else {})}
    inner = h.make_graph([
        h.make_node("Shape", ["state"], ["s"], **sliced),
        h.make_node("Constant", [], ["k"], value=nh.from_array(np.array(index, np.int64))),
        h.make_node("Gather", ["s", "k"], ["n"]),
        h.make_node("Constant", [], ["want"], value=nh.from_array(np.array(dim, np.int64))),
        h.make_node("Equal", ["n", "want"], ["has"]),
        h.make_node("If", ["has"], ["r"], then_branch=then_g, else_branch=else_g)],
        "inner", [], [h.make_tensor_value_info("r", T.FLOAT, None)])
    outer = h.make_graph([h.make_node("If", ["flag"], ["y"], then_branch=inner,
                                      else_branch=else_g)], "g",
                         [h.make_tensor_value_info("state", T.FLOAT, [2, None, 128]),
                          h.make_tensor_value_info("flag", T.BOOL, [])],
                         [h.make_tensor_value_info("y", T.FLOAT, None)])
    model = normalize(ir.from_proto(h.make_model(outer, opset_imports=[h.make_opsetid("", 17)],
                                                 ir_version=8)))
    fold_constants(model)
    branch = next(n for n in model.graph if n.op_type == "If").attributes["then_branch"].value
    assert [n.op_type for n in branch if n.op_type != "Identity"] == ["Neg"]


@pytest.mark.parametrize("start,end,count", [(0, None, 3), (1, None, 2), (-1, None, 1),
                                             (0, -1, 2), (5, None, 0)])
def test_a_sliced_shape_of_a_known_rank_has_the_sliced_length(start, end, count):
    sliced = {"start": start, **({"end": end} if end is not None else {})}
    graph = h.make_graph([h.make_node("Relu", ["x"], ["r"]),
                          h.make_node("Shape", ["r"], ["s"], **sliced)], "g",
                         [h.make_tensor_value_info("x", T.FLOAT, None)],
                         [h.make_tensor_value_info("s", T.INT64, None)])
    model = ir.from_proto(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)],
                                       ir_version=8))
    relu = next(n for n in model.graph if n.op_type == "Relu")
    relu.outputs[0].shape = ir.Shape([None, None, None])
    infer_ranks(model)
    shape = next(n for n in model.graph if n.op_type == "Shape")
    assert list(shape.outputs[0].shape) == [count]


@pytest.mark.parametrize("k", range(4))
def test_rate_switch_with_start_converts_and_matches_onnxruntime(k):
    model = _with_start(rate_switch_model())
    graph = to_tfjs.convert(ir.from_proto(model))
    feeds = rate_feeds()[k]
    want = ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    got = run(graph, [feeds[i.key] for i in graph.inputs], [o.tensor for o in graph.outputs])
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)


def _legacy_vad_model() -> onnx.ModelProto:
    """silero-vad v4's front: in the branch of ``If(sr == 16000)``, ``u = input[:, None, None]``
    and ``x = u.squeeze(1) if u.shape[1] == 1 else u`` (the inner If's branches declare ranks 3
    and 4, as the file does), then a Conv and a Slice of its channels."""
    w = nh.from_array(np.random.default_rng(3).standard_normal((4, 1, 4)).astype(np.float32),
                      "w")
    then_g = h.make_graph([h.make_node("Squeeze", ["u", "ax1"], ["sq"])], "then", [],
                          [h.make_tensor_value_info("sq", T.FLOAT, ["a", "b", "c"])],
                          initializer=[nh.from_array(np.array([1], np.int64), "ax1")])
    else_g = h.make_graph([h.make_node("Identity", ["u"], ["id"])], "else", [],
                          [h.make_tensor_value_info("id", T.FLOAT, ["a", "d", "b", "c"])])
    consts = {"ax12": np.array([1, 2], np.int64), "one": np.array(1, np.int64),
              "at1": np.array(1, np.int64), "s0": np.array([0], np.int64),
              "s2": np.array([2], np.int64), "s1": np.array([1], np.int64)}
    branch = h.make_graph([
        h.make_node("Unsqueeze", ["input", "ax12"], ["u"]),
        h.make_node("Shape", ["u"], ["shape"], start=0),
        h.make_node("Gather", ["shape", "at1"], ["size"], axis=0),
        h.make_node("Equal", ["size", "one"], ["cond"]),
        h.make_node("If", ["cond"], ["x"], then_branch=then_g, else_branch=else_g),
        h.make_node("Conv", ["x", "w"], ["c"], strides=[4]),
        h.make_node("Slice", ["c", "s0", "s2", "s1"], ["y16"])],
        "r16", [], [h.make_tensor_value_info("y16", T.FLOAT, None)],
        initializer=[w, *(nh.from_array(v, k) for k, v in consts.items())])
    other = h.make_graph([h.make_node("Unsqueeze", ["input", "ax1o"], ["y8u"]),
                          h.make_node("Slice", ["y8u", "z", "two", "one8"], ["y8"])],
                         "r8", [], [h.make_tensor_value_info("y8", T.FLOAT, None)],
                         initializer=[nh.from_array(np.array([1], np.int64), "ax1o"),
                                      nh.from_array(np.array([0], np.int64), "z"),
                                      nh.from_array(np.array([2], np.int64), "two"),
                                      nh.from_array(np.array([2], np.int64), "one8")])
    graph = h.make_graph([
        h.make_node("Constant", [], ["rate"], value=nh.from_array(np.array(16000, np.int64))),
        h.make_node("Equal", ["sr", "rate"], ["is_16k"]),
        h.make_node("If", ["is_16k"], ["output"], then_branch=branch, else_branch=other)],
        "legacy_vad", [h.make_tensor_value_info("input", T.FLOAT, ["batch", "samples"]),
                       h.make_tensor_value_info("sr", T.INT64, [])],
        [h.make_tensor_value_info("output", T.FLOAT, None)])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


def test_a_squeeze_on_a_static_size_one_axis_folds_and_converts():
    model = _legacy_vad_model()
    graph = to_tfjs.convert(ir.from_proto(model))
    feeds = {"input": np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32),
             "sr": np.asarray(16000, np.int64)}
    want = ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    got = run(graph, [feeds[i.key] for i in graph.inputs], [o.tensor for o in graph.outputs])
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)
