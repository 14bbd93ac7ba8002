"""Ranks ONNX shape inference leaves unknown, found from what ops require (issue 18, point 8:
silero-vad's ``If`` on its sample rate holds convolutions fed by rank-changing ``If``s).

``rate_switch_model`` is that pattern, built with ``onnx.helper``: an ``If`` on an int64
scalar ``sr`` (``== 16000``) whose branches each convolve the outer ``input [?, ?]``, squeeze
the time axis only when its run-time size is 1 (an ``If`` whose branches return ranks 3 and
2, as PyTorch's scripted exports write ``x.squeeze(2)``), then convolve again: ONNX inference
gives the inner ``If`` no shape, so nothing downstream has a rank, and the second ``Conv``
was refused ("the rank of its input is unknown"). Its weight's rank fixes it. Here the
converted graph-model runs in the NumPy TF reference against onnxruntime; real tfjs runs it
in tests/interop/test_control_flow_ranks.py.
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

RATES = {16000: 8, 8000: 4}  # sample rate -> samples per chunk (one frame of its Conv)


def _maybe_squeeze(tag: str, x: str, axis: int, out: str) -> list[onnx.NodeProto]:
    """``out = Squeeze(x, axis) if x.shape[axis] == 1 else x``: an If whose branches differ in
    rank (neither output declares a shape)."""
    then_g = h.make_graph([h.make_node("Squeeze", [x, f"{tag}_axes"], [f"{tag}_sq"])],
                          f"{tag}_then", [], [h.make_tensor_value_info(f"{tag}_sq", T.FLOAT,
                                                                       None)],
                          initializer=[nh.from_array(np.array([axis], np.int64),
                                                     f"{tag}_axes")])
    else_g = h.make_graph([h.make_node("Identity", [x], [f"{tag}_id"])], f"{tag}_else", [],
                          [h.make_tensor_value_info(f"{tag}_id", T.FLOAT, None)])
    return [
        h.make_node("Shape", [x], [f"{tag}_shape"]),
        h.make_node("Constant", [], [f"{tag}_at"], value=nh.from_array(np.array([axis],
                                                                              np.int64))),
        h.make_node("Gather", [f"{tag}_shape", f"{tag}_at"], [f"{tag}_size"]),
        h.make_node("Constant", [], [f"{tag}_one"], value=nh.from_array(np.array([1],
                                                                               np.int64))),
        h.make_node("Equal", [f"{tag}_size", f"{tag}_one"], [f"{tag}_cond"]),
        h.make_node("If", [f"{tag}_cond"], [out], then_branch=then_g, else_branch=else_g),
    ]


def _rate_branch(tag: str, window: int, seed: int) -> onnx.GraphProto:
    rng = np.random.default_rng(seed)
    inits = [nh.from_array(rng.standard_normal((4, 1, window)).astype(np.float32), f"{tag}_w1"),
             nh.from_array(rng.standard_normal((1, 4, 1)).astype(np.float32), f"{tag}_w2"),
             nh.from_array(rng.standard_normal(1).astype(np.float32), f"{tag}_b2"),
             nh.from_array(np.array([1], np.int64), f"{tag}_ax1"),
             nh.from_array(np.array([2], np.int64), f"{tag}_ax2")]
    nodes = [
        h.make_node("Unsqueeze", ["input", f"{tag}_ax1"], [f"{tag}_u"]),  # input: outer scope
        h.make_node("Conv", [f"{tag}_u", f"{tag}_w1"], [f"{tag}_c"], strides=[window]),
        *_maybe_squeeze(f"{tag}_t", f"{tag}_c", 2, f"{tag}_m"),
        h.make_node("Unsqueeze", [f"{tag}_m", f"{tag}_ax2"], [f"{tag}_e"]),
        h.make_node("Relu", [f"{tag}_e"], [f"{tag}_r"]),
        h.make_node("Conv", [f"{tag}_r", f"{tag}_w2", f"{tag}_b2"], [f"{tag}_z"]),
        h.make_node("Sigmoid", [f"{tag}_z"], [f"{tag}_y"]),
    ]
    return h.make_graph(nodes, tag, [], [h.make_tensor_value_info(f"{tag}_y", T.FLOAT, None)],
                        initializer=inits)


def rate_switch_model() -> onnx.ModelProto:
    """``output = branch_16k(input) if sr == 16000 else branch_8k(input)`` (see the module)."""
    nodes = [h.make_node("Constant", [], ["rate"], value=nh.from_array(np.array(16000,
                                                                              np.int64))),
             h.make_node("Equal", ["sr", "rate"], ["is_16k"]),
             h.make_node("If", ["is_16k"], ["output"], then_branch=_rate_branch("r16", 8, 1),
                         else_branch=_rate_branch("r8", 4, 2))]
    graph = h.make_graph(nodes, "rate_switch",
                         [h.make_tensor_value_info("input", T.FLOAT, [None, None]),
                          h.make_tensor_value_info("sr", T.INT64, [])],
                         [h.make_tensor_value_info("output", T.FLOAT, [None, 1, 1])])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


def rate_feeds() -> list[dict[str, np.ndarray]]:
    """Inputs for each rate, at batch 1 and 3."""
    rng = np.random.default_rng(0)
    return [{"input": rng.standard_normal((batch, n)).astype(np.float32),
             "sr": np.asarray(sr, np.int64)}
            for sr, n in RATES.items() for batch in (1, 3)]


def test_the_pattern_leaves_ranks_unknown_to_onnx_inference():
    # (what makes the test worth having: without onnx_ranks the second Conv has no rank)
    model = normalize(ir.from_proto(rate_switch_model()))
    branch = next(n for n in model.graph if n.op_type == "If").attributes["then_branch"].value
    conv = [n for n in branch if n.op_type == "Conv"][1]
    assert conv.inputs[0].shape is None


def test_ranks_come_from_the_ops_that_fix_them():
    model = normalize(ir.from_proto(rate_switch_model()))
    assert infer_ranks(model) > 0
    branch = next(n for n in model.graph if n.op_type == "If").attributes["then_branch"].value
    by_op = {n.op_type: n for n in branch}  # (the last of each)
    assert len(by_op["Conv"].inputs[0].shape) == 3  # = its weight's rank
    assert len(by_op["Unsqueeze"].inputs[0].shape) == 2  # the inner If's output
    assert by_op["If"].outputs[0].shape is not None
    # the inner If's branches keep their own: Squeeze's output gets rank 2 (3 - 1), Identity's
    inner = by_op["If"]
    for name in ("then_branch", "else_branch"):
        out = inner.attributes[name].value.outputs[0]
        assert out.shape is not None


def test_a_requirement_inside_one_branch_is_no_fact_about_an_outer_value():
    # only the 16k branch convolves `p` (rank 3 required there); the other returns it: `p`
    # (outer) stays rank-unknown. Were both branches to require it, `p` would get it.
    p_nodes = _maybe_squeeze("p", "x", 1, "p")
    w = nh.from_array(np.ones((1, 1, 1), np.float32), "w")
    conv_g = h.make_graph([h.make_node("Conv", ["p", "w"], ["c"])], "conv", [],
                          [h.make_tensor_value_info("c", T.FLOAT, None)], initializer=[w])
    same_g = h.make_graph([h.make_node("Identity", ["p"], ["i"])], "same", [],
                          [h.make_tensor_value_info("i", T.FLOAT, None)])

    def model(else_g):
        nodes = [*p_nodes, h.make_node("If", ["flag"], ["y"], then_branch=conv_g,
                                       else_branch=else_g)]
        graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, [None, None, 4]),
                                          h.make_tensor_value_info("flag", T.BOOL, [])],
                             [h.make_tensor_value_info("y", T.FLOAT, None)])
        m = ir.from_proto(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)],
                                       ir_version=8))
        infer_ranks(m)
        return next(v for n in m.graph for v in n.outputs if v.name == "p")

    assert model(same_g).shape is None
    conv2_g = h.make_graph([h.make_node("Conv", ["p", "w"], ["c2"])], "conv2", [],
                           [h.make_tensor_value_info("c2", T.FLOAT, None)], initializer=[w])
    assert len(model(conv2_g).shape) == 3


def test_gather_of_a_partly_static_shape_folds():
    # state [2, ?, 128]: Shape(state)[0] is 2, a constant (an If on it then folds away)
    then_g = h.make_graph([h.make_node("Neg", ["state"], ["t"])], "t", [],
                          [h.make_tensor_value_info("t", T.FLOAT, None)])
    else_g = h.make_graph([h.make_node("Identity", ["state"], ["e"])], "e", [],
                          [h.make_tensor_value_info("e", T.FLOAT, None)])
    inner = h.make_graph([
        h.make_node("Shape", ["state"], ["s"]),
        h.make_node("Constant", [], ["zero"], value=nh.from_array(np.array(0, np.int64))),
        h.make_node("Gather", ["s", "zero"], ["n"]),
        h.make_node("Cast", ["n"], ["has"], to=T.BOOL),
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


@pytest.mark.parametrize("k", range(4))
def test_rate_switch_converts_and_matches_onnxruntime(k):
    model = rate_switch_model()
    graph = to_tfjs.convert(ir.from_proto(model))
    feeds = rate_feeds()[k]
    want = ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    got = run(graph, [feeds[i.key] for i in graph.inputs], [o.tensor for o in graph.outputs])
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)
