"""The layout pass walks the graph a few times, not once per rewrite: on a deep chain of
channels-first ops wrapped in Transposes (what every Conv lowering emits), a rescan from the
top after each rewrite made it quadratic in depth (1.2 s for 1,800 layers, now 0.16 s)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest

from modelport.converters import layout

TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def _chain(blocks: int) -> ir.Model:
    x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([1, 4, 4, 2]))
    nodes, inits, value = [], [], x
    rng = np.random.default_rng(0)
    for i in range(blocks):
        w = ir.Value(name=f"w{i}", const_value=ir.tensor(
            rng.standard_normal((2, 2, 1, 1)).astype(np.float32), name=f"w{i}"))
        inits.append(w)
        t1 = ir.node("Transpose", [value], {"perm": ir.AttrInt64s("perm", TO_NCHW)})
        conv = ir.node("Conv", [t1.outputs[0], w])
        t2 = ir.node("Transpose", [conv.outputs[0]], {"perm": ir.AttrInt64s("perm", TO_NHWC)})
        relu = ir.node("Relu", [t2.outputs[0]])
        nodes += [t1, conv, t2, relu]
        value = relu.outputs[0]
    value.name = "y"
    value.type, value.shape = ir.TensorType(ir.DataType.FLOAT), ir.Shape([1, 4, 4, 2])
    graph = ir.Graph([x], [value], nodes=nodes, initializers=inits, opset_imports={"": 17})
    return ir.Model(graph, ir_version=8)


def _run(model: ir.Model, x: np.ndarray) -> np.ndarray:
    data = ir.to_proto(model).SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("blocks", [50, 400])
def test_layout_pass_is_linear_in_depth(blocks, monkeypatch):
    model = _chain(blocks)
    x = np.random.default_rng(1).standard_normal((1, 4, 4, 2)).astype(np.float32)
    expected = _run(model, x)
    passes = 0
    one_pass = layout._one_pass

    def counted(graph):
        nonlocal passes
        passes += 1
        return one_pass(graph)

    monkeypatch.setattr(layout, "_one_pass", counted)
    assert layout.optimize(model) == 2
    # each walk is linear in the graph; their number must not grow with the depth
    assert passes <= 3, passes
    np.testing.assert_allclose(_run(model, x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("shape", "perm", "folds"), [
    ([2, 16, 16], [0, 2, 1], False),  # two equal-sized axes swapped: a real transpose
    ([2, 16, 16, 1], [0, 2, 1, 3], False),
    ([2, 1, 1, 8], [0, 3, 1, 2], True),  # squeeze-and-excite: only 1s move
    ([2, 8, 1, 1], [0, 2, 3, 1], True),
])
def test_reshape_then_transpose_folds_only_when_order_is_kept(shape, perm, folds):
    x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([2, 256]
                                                                                if shape[1] == 16
                                                                                else [2, 8]))
    target = ir.Value(name="s", const_value=ir.tensor(np.asarray(shape, np.int64), name="s"))
    reshape = ir.node("Reshape", [x, target])
    transpose = ir.node("Transpose", [reshape.outputs[0]], {"perm": ir.AttrInt64s("perm", perm)})
    y = transpose.outputs[0]
    y.name, y.type = "y", ir.TensorType(ir.DataType.FLOAT)
    y.shape = ir.Shape([shape[p] for p in perm])
    graph = ir.Graph([x], [y], nodes=[reshape, transpose], initializers=[target],
                     opset_imports={"": 17})
    model = ir.Model(graph, ir_version=8)
    data = np.arange(np.prod(x.shape.dims), dtype=np.float32).reshape(x.shape.dims)
    expected = _run(model, data)
    layout.optimize(model)
    assert (layout.count_transposes(model) == 0) == folds
    np.testing.assert_array_equal(_run(model, data), expected)


def test_a_transpose_read_inside_an_if_branch_stays():
    """A branch of an If reads a main-graph Transpose from the outer scope: the pass leaves
    the branch alone (it was an internal error, exit 70: issue 18 point 8)."""
    from onnx import TensorProto, helper, numpy_helper

    def branch(name: str, op: str) -> object:
        return helper.make_graph(
            [helper.make_node(op, ["t"], [f"{name}_r"]),
             helper.make_node("Transpose", [f"{name}_r"], [f"{name}_out"], perm=TO_NCHW)],
            name, [], [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT,
                                                     [1, 3, 4, 4])])

    graph = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["t"], perm=TO_NHWC),
         helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
         helper.make_node("Greater", ["s", "zero"], ["cond"]),
         helper.make_node("If", ["cond"], ["y"], then_branch=branch("then", "Relu"),
                          else_branch=branch("else", "Neg"))], "if",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])],
        [numpy_helper.from_array(np.asarray(0, np.float32), "zero")])
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)],
                                            ir_version=8))
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 4)).astype(np.float32)
    expected = _run(model, x)
    layout.optimize(model)
    np.testing.assert_array_equal(_run(model, x), expected)
    for v in (x, -x):  # both branches: Relu where the sum is positive, else Neg
        want = np.maximum(v, 0) if v.sum() > 0 else -v
        np.testing.assert_array_equal(_run(model, v), want)
