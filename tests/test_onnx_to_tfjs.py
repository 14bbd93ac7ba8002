"""ONNX -> TF.js graph-model: the driver's contracts, checked against onnxruntime.

- Unsupported nodes are listed up front, all of them in one error; the CLI writes nothing and
  exits with UnsupportedError's code.
- Opsets 9 to 21 on input (onnx's version converter takes them to one opset first).
- Ops ONNX's node tests do not cover (GlobalLpPool), and Resize's choice between tfjs's
  kernels and exact per-axis plans.

Results run in the NumPy TF-op executor (``runtime.tfjs_reference``, independent of the
mapping) and, where Node.js and @tensorflow/tfjs are installed, in real tfjs.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from modelport.cli import main
from modelport.converters.onnx_to_tfjs import driver as to_tfjs
from modelport.errors import UnsupportedError
from modelport.formats import tfjs_graph
from modelport.runtime import tfjs_reference

ATOL, RTOL = 1e-4, 1e-3


def _model(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = {9: 4, 13: 7, 17: 8, 21: 10}.get(opset, 8)
    return m


def _ort(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _check(model: onnx.ModelProto, feeds: dict, tmp_path, real_tfjs: bool = True):
    """Convert, write, run in the reference executor (and real tfjs), compare with ORT."""
    want = _ort(model, feeds)
    graph = to_tfjs.convert(ir.from_proto(model))
    got = tfjs_reference.run(graph, [feeds[i.key] for i in graph.inputs])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=ATOL, rtol=RTOL)
    from modelport.runtime import tfjs_node

    if real_tfjs and tfjs_node.available() is None:
        path = tfjs_graph.write(graph, tmp_path / "tfjs")
        got = tfjs_node.run_graph(path, [(i.tensor, feeds[i.key]) for i in graph.inputs],
                                  [o.tensor for o in graph.outputs])
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, atol=ATOL, rtol=RTOL)
    return graph


# --- unsupported nodes, up front ------------------------------------------------------------------

def _unsupported_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="fine_relu"),
        helper.make_node("Frobnicate", ["r"], ["f"], name="custom_node", domain="com.example"),
        helper.make_node("Einsum", ["f"], ["e"], name="ellipsis_einsum", equation="...ij->...ji"),
        helper.make_node("Det", ["e"], ["y"], name="det_node"),
    ]
    m = _model(nodes, [x], [y])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    return m


def test_unsupported_nodes_are_listed_in_one_error() -> None:
    with pytest.raises(UnsupportedError, match=r"3 node\(s\) cannot be mapped") as info:
        to_tfjs.convert(ir.from_proto(_unsupported_model()))
    message = str(info.value)
    for op, name in (("Frobnicate", "custom_node"), ("Einsum", "ellipsis_einsum"),
                     ("Det", "det_node")):
        assert f"{op} node '{name}'" in message, message
    assert "fine_relu" not in message
    assert "no ellipsis" in message  # the rule's check says why


def test_cli_writes_nothing_for_unsupported_nodes(tmp_path) -> None:
    src = tmp_path / "bad.onnx"
    onnx.save(_unsupported_model(), src)
    dst = tmp_path / "web"
    result = CliRunner().invoke(main, ["convert", str(src), str(dst), "--to", "tfjs-graph"])
    assert result.exit_code == UnsupportedError.exit_code, result.output
    assert "custom_node" in result.output and "det_node" in result.output
    assert "ellipsis_einsum" in result.output
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]  # no staging left


def test_graph_input_types_tfjs_lacks_are_refused() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2])
    y = helper.make_tensor_value_info("y", TensorProto.DOUBLE, [2])
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [x], [y])
    with pytest.raises(UnsupportedError, match="tfjs has no double"):
        to_tfjs.convert(ir.from_proto(m))


# --- opsets 9..21 ---------------------------------------------------------------------------------

def _cnn(opset: int) -> tuple[onnx.ModelProto, dict]:
    rng = np.random.default_rng(opset)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    g = numpy_helper.from_array(rng.standard_normal((64, 5)).astype(np.float32), "g")
    c = numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "c")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["conv"], pads=[1, 1, 1, 1], strides=[2, 2],
                         name="conv"),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("MaxPool", ["relu"], ["pool"], kernel_shape=[2, 2], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "g", "c"], ["gemm"], alpha=0.5, name="gemm"),
        helper.make_node("Softmax", ["gemm"], ["y"], axis=1, name="softmax"),
    ]
    m = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 10, 10])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])], [w, b, g, c],
               opset=opset)
    onnx.checker.check_model(m)
    return m, {"x": rng.standard_normal((2, 3, 10, 10)).astype(np.float32)}


@pytest.mark.parametrize("opset", [9, 11, 13, 17, 21])
def test_opsets_convert_and_match_onnxruntime(opset: int, tmp_path) -> None:
    model, feeds = _cnn(opset)
    graph = _check(model, feeds, tmp_path)
    ops = {n.op for n in graph.nodes}
    assert {"Conv2D", "MaxPool", "MatMul", "Softmax"} <= ops
    # channels-last inside: one Transpose in (NCHW input), one before the flatten
    assert sum(n.op == "Transpose" for n in graph.nodes) <= 2


# --- ops without a node test of their own, and Resize's plans --------------------------------------

def test_global_lp_pool(tmp_path) -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 4)).astype(np.float32)
    for p in (1, 2, 3):
        m = _model([helper.make_node("GlobalLpPool", ["x"], ["y"], p=p)],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        (tmp_path / str(p)).mkdir()
        _check(m, {"x": x}, tmp_path / str(p))


RESIZE_CASES = [
    # (attributes, scales, expected TF op)
    ({"mode": "linear"}, [1, 1, 2, 2], "ResizeBilinear"),  # half_pixel
    ({"mode": "linear", "coordinate_transformation_mode": "align_corners"}, [1, 1, 2, 3],
     "ResizeBilinear"),
    ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
      "nearest_mode": "floor"}, [1, 1, 2, 2], "ResizeNearestNeighbor"),
    ({"mode": "nearest"}, [1, 1, 0.5, 0.5], "ResizeNearestNeighbor"),  # same taps as tfjs's
    ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "ceil"},
     [1, 1, 2, 2], "GatherV2"),  # no tfjs kernel reads these taps
    ({"mode": "cubic"}, [1, 1, 2, 2], "BatchMatMulV2"),
    ({"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
     [1, 1, 1.5, 0.5], None),
]


@pytest.mark.parametrize("attrs,scales,op", RESIZE_CASES)
def test_resize_plans_match_onnxruntime(attrs, scales, op, tmp_path) -> None:
    x = np.random.default_rng(2).standard_normal((1, 2, 4, 6)).astype(np.float32)
    sc = numpy_helper.from_array(np.asarray(scales, np.float32), "scales")
    m = _model([helper.make_node("Resize", ["x", "", "scales"], ["y"], **attrs)],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [sc])
    graph = _check(m, {"x": x}, tmp_path)
    if op is not None:
        assert op in {n.op for n in graph.nodes}


def test_constants_rewritten_by_the_layout_pass_keep_shapes(tmp_path) -> None:
    """DenseNet's pattern: BatchNorm, then Mul/Add by [C, 1, 1] constants, then a pool.

    The layout pass rewrites those constants to channels-last; the pool after them must still
    see its input's rank (it did not, once: every later Conv and pool was refused).
    """
    rng = np.random.default_rng(3)
    c = 4
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n) for n, s in
             (("w", (c, 3, 3, 3)), ("scale", (c,)), ("bias", (c,)), ("mean", (c,)),
              ("var", (c,)), ("k", (c, 1, 1)), ("b2", (c, 1, 1)))]
    inits[4] = numpy_helper.from_array(np.abs(numpy_helper.to_array(inits[4])) + 0.5, "var")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["bn"]),
        helper.make_node("Mul", ["bn", "k"], ["m"]),
        helper.make_node("Add", ["m", "b2"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w2"], ["y"]),
    ]
    inits.append(numpy_helper.from_array(rng.standard_normal((2, c, 1, 1)).astype(np.float32),
                                         "w2"))
    m = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 9, 9])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])], inits,
               opset=9)
    graph = _check(m, {"x": rng.standard_normal((1, 3, 9, 9)).astype(np.float32)}, tmp_path)
    assert sum(n.op == "Transpose" for n in graph.nodes) == 2  # in and out only


@pytest.mark.parametrize("mode", ["linear", "cubic", "nearest"])
def test_resize_with_a_run_time_batch(mode: str, tmp_path) -> None:
    """Only the resized axes need sizes when converting; the batch may be dynamic."""
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 5)).astype(np.float32)
    sc = numpy_helper.from_array(np.asarray([1, 1, 2, 1.5], np.float32), "scales")
    m = _model([helper.make_node("Resize", ["x", "", "scales"], ["y"], mode=mode)],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 5])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [sc])
    graph = _check(m, {"x": x}, tmp_path)
    assert graph.inputs[0].shape == [None, 3, 4, 5]


def test_uniform_constants_are_told_by_their_bits() -> None:
    from modelport.converters.onnx_to_tfjs.core import _uniform

    assert _uniform(np.zeros((300, 7), np.float32))
    assert _uniform(np.broadcast_to(np.float32(3), (1000,)))
    assert _uniform(np.full((2000,), np.nan, np.float32))  # one NaN payload: a Fill is exact
    late = np.zeros(1 << 20, np.float32)
    late[-1] = 1e-30  # a difference in the very last slice
    assert not _uniform(late)
    signed = np.zeros(600, np.float32)
    signed[500] = -0.0  # equal in value, not in bits: a Fill of 0.0 would lose it
    assert not _uniform(signed)
    assert not _uniform(np.arange(512, dtype=np.int32))
    assert _uniform(np.ones((40, 40), np.float32).T)  # not C-ordered
