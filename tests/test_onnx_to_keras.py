"""ONNX -> Keras raising, one table of cases per rule: each small ONNX graph is raised, and the
Keras model (NumPy reference) must match onnxruntime on the ONNX graph (atol 1e-5, rtol 1e-4).

A coverage test fails when a registered op has no case. Refusals are asserted by message, and
the CLI route is checked end to end (exit codes, nothing written on refusal, --json report).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelport.converters.onnx_to_keras import RULES, raise_model
from modelport.errors import UnsupportedError
from modelport.runtime.keras_reference import run

RNG = np.random.default_rng(7)
OPSET = 17


def _w(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


@dataclass
class OpCase:
    id: str
    ops: list[str]
    nodes: list
    inputs: dict[str, list]  # name -> shape (batch 2)
    outputs: list[str]
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    input_dtype: int = TensorProto.FLOAT
    low: float = -3.0
    high: float = 3.0
    opset: int = OPSET
    output_dtype: int = TensorProto.FLOAT


def N(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, name=f"{op.lower()}_{outs[0]}", **attrs)


def _conv_cases():
    cases = []
    for cid, x, w, attrs in [
        ("Conv-valid", [2, 3, 9, 9], _w(4, 3, 3, 3), {}),
        ("Conv-same-pads", [2, 3, 9, 9], _w(4, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
        ("Conv-asym-pads-stride", [2, 3, 10, 9], _w(5, 3, 3, 2),
         {"pads": [2, 0, 1, 1], "strides": [2, 2]}),
        ("Conv-same-upper-stride", [2, 3, 10, 9], _w(4, 3, 3, 3),
         {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
        ("Conv-dilated", [2, 2, 11, 11], _w(3, 2, 3, 3), {"dilations": [2, 2]}),
        ("Conv-dilated-strided", [2, 2, 12, 11], _w(3, 2, 3, 3),
         {"dilations": [2, 2], "strides": [2, 3], "pads": [1, 2, 1, 0]}),
        ("Conv-depthwise", [2, 4, 8, 8], _w(4, 1, 3, 3), {"group": 4, "pads": [1, 1, 1, 1]}),
        ("Conv-depthwise-mult2", [2, 3, 8, 8], _w(6, 1, 3, 3), {"group": 3}),
        ("Conv-grouped", [2, 6, 7, 7], _w(4, 3, 3, 3), {"group": 2}),
        ("Conv1D", [2, 3, 12], _w(4, 3, 3), {"pads": [1, 1]}),
        ("Conv3D", [2, 2, 5, 6, 6], _w(3, 2, 2, 3, 3), {}),
    ]:
        cases.append(OpCase(cid, ["Conv"], [N("Conv", ["x", "w", "b"], ["y"], **attrs)],
                            {"x": x}, ["y"], {"w": w, "b": _w(w.shape[0])}))
    cases.append(OpCase("ConvTranspose-pads-outpad", ["ConvTranspose"],
                        [N("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 2],
                           pads=[1, 1, 1, 1], output_padding=[1, 1])],
                        {"x": [2, 3, 5, 5]}, ["y"], {"w": _w(3, 4, 3, 3), "b": _w(4)}))
    cases.append(OpCase("ConvTranspose-1d", ["ConvTranspose"],
                        [N("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2], pads=[1, 0])],
                        {"x": [2, 3, 6]}, ["y"], {"w": _w(3, 2, 3), "b": _w(2)}))
    cases.append(OpCase("ConvTranspose-valid", ["ConvTranspose"],
                        [N("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])],
                        {"x": [2, 3, 4, 5]}, ["y"], {"w": _w(3, 2, 2, 2)}))
    return cases


def _pool_cases():
    cases = []
    for cid, op, x, attrs, relu in [
        ("MaxPool-valid", "MaxPool", [2, 3, 8, 8], {"kernel_shape": [2, 2], "strides": [2, 2]},
         False),
        ("MaxPool-same", "MaxPool", [2, 3, 9, 9], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                   "pads": [1, 1, 1, 1]}, False),
        ("MaxPool-ceil-after-relu", "MaxPool", [2, 3, 10, 10],
         {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, True),
        ("AveragePool-include-pad", "AveragePool", [2, 3, 7, 7],
         {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}, False),
        ("AveragePool-exclude-pad", "AveragePool", [2, 3, 8, 8],
         {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, False),
        ("AveragePool-ceil", "AveragePool", [2, 3, 10, 10],
         {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, False),
        ("MaxPool1D", "MaxPool", [2, 3, 10], {"kernel_shape": [2], "strides": [2]}, False),
    ]:
        nodes = [N("Relu", ["x"], ["r"])] if relu else []
        nodes.append(N(op, ["r" if relu else "x"], ["y"], **attrs))
        cases.append(OpCase(cid, [op] + (["Relu"] if relu else []), nodes, {"x": x}, ["y"]))
    for op in ("GlobalAveragePool", "GlobalMaxPool"):
        cases.append(OpCase(op, [op, "Flatten"], [N(op, ["x"], ["p"]),
                                                  N("Flatten", ["p"], ["y"])],
                            {"x": [2, 5, 6, 7]}, ["y"]))
    cases.append(OpCase("ReduceMean-spatial", ["ReduceMean"],
                        [N("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=1)],
                        {"x": [2, 4, 5, 5]}, ["y"]))
    cases.append(OpCase("ReduceMax-spatial", ["ReduceMax"],
                        [N("ReduceMax", ["x"], ["y"], axes=[2, 3], keepdims=0)],
                        {"x": [2, 4, 5, 5]}, ["y"]))
    return cases


def _norm_cases():
    c = 4
    return [
        OpCase("BatchNormalization", ["BatchNormalization"],
               [N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)],
               {"x": [2, c, 5, 5]}, ["y"],
               {"s": _w(c), "b": _w(c), "m": _w(c), "v": np.abs(_w(c)) + 0.5}),
        OpCase("InstanceNormalization", ["InstanceNormalization"],
               [N("InstanceNormalization", ["x", "s", "b"], ["y"])],
               {"x": [2, c, 5, 5]}, ["y"], {"s": _w(c), "b": _w(c)}),
        # size 5 is the window AlexNet uses (onnxruntime runs odd sizes on 4-D tensors only)
        OpCase("LRN-5", ["LRN"], [N("LRN", ["x"], ["y"], size=5, alpha=0.05, beta=0.75,
                                    bias=2.0)], {"x": [2, 7, 4, 5]}, ["y"]),
        OpCase("LRN-3", ["LRN"], [N("LRN", ["x"], ["y"], size=3, alpha=0.2, beta=0.6)],
               {"x": [2, 6, 5, 3]}, ["y"]),
        OpCase("LayerNormalization", ["LayerNormalization"],
               [N("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1)],
               {"x": [2, 3, 6]}, ["y"], {"s": _w(6), "b": _w(6)}),
    ]


def _activation_cases():
    unary = {"Relu": {}, "Sigmoid": {}, "Tanh": {}, "Softplus": {}, "Softsign": {},
             "Selu": {}, "LeakyRelu": {"alpha": 0.2}, "Elu": {"alpha": 0.7},
             "ThresholdedRelu": {"alpha": 0.5}, "HardSigmoid": {"alpha": 0.3, "beta": 0.4},
             "HardSwish": {}, "Softmax": {"axis": 1}, "Neg": {}, "Abs": {}, "Identity": {}}
    cases = [OpCase(op, [op], [N(op, ["x"], ["y"], **attrs)], {"x": [2, 3, 4]}, ["y"])
             for op, attrs in unary.items()]
    cases.append(OpCase("Softsign-pattern", ["Abs"],
                        [N("Abs", ["x"], ["a"]), N("Add", ["a", "one"], ["d"]),
                         N("Div", ["x", "d"], ["y"])], {"x": [2, 5]}, ["y"],
                        {"one": np.asarray(1, np.float32)}))
    cases.append(OpCase("PRelu-channel", ["PRelu"], [N("PRelu", ["x", "s"], ["y"])],
                        {"x": [2, 3, 4, 4]}, ["y"], {"s": _w(3, 1, 1)}))
    for cid, lo, hi in [("Clip-relu6", 0.0, 6.0), ("Clip-range", -1.0, 2.0),
                        ("Clip-max", None, 1.5)]:
        ins = ["x", "lo" if lo is not None else "", "hi" if hi is not None else ""]
        consts = {k: np.asarray(v, np.float32) for k, v in (("lo", lo), ("hi", hi))
                  if v is not None}
        cases.append(OpCase(cid, ["Clip"], [N("Clip", ins, ["y"])], {"x": [2, 6]}, ["y"],
                            consts))
    cases.append(OpCase("Dropout", ["Dropout"], [N("Dropout", ["x"], ["y"])], {"x": [2, 5]},
                        ["y"]))
    return cases


def _elementwise_cases():
    cases = []
    for op in ("Add", "Sub", "Mul", "Max", "Min"):
        cases.append(OpCase(f"{op}-tensors", [op], [N(op, ["x", "z"], ["y"])],
                            {"x": [2, 3, 4], "z": [2, 3, 4]}, ["y"]))
    for op in ("Sum", "Mean", "Max"):
        cases.append(OpCase(f"{op}-three", [op], [N(op, ["x", "z", "u"], ["y"])],
                            {"x": [2, 5], "z": [2, 5], "u": [2, 5]}, ["y"]))
    for op in ("Add", "Sub", "Mul", "Div", "Max", "Min"):
        cases.append(OpCase(f"{op}-scalar", [op], [N(op, ["x", "c"], ["y"])], {"x": [2, 3, 4]},
                            ["y"], {"c": np.asarray(1.5, np.float32)}))
    cases.append(OpCase("Sub-scalar-first", ["Sub"], [N("Sub", ["c", "x"], ["y"])],
                        {"x": [2, 4]}, ["y"], {"c": np.asarray(0.5, np.float32)}))
    for op in ("Add", "Sub", "Mul", "Div"):
        cases.append(OpCase(f"{op}-per-channel-nchw", [op, "Conv"],
                            [N("Conv", ["x", "w"], ["t"]), N(op, ["t", "c"], ["y"])],
                            {"x": [2, 3, 5, 5]}, ["y"],
                            {"w": _w(4, 3, 1, 1), "c": np.abs(_w(4, 1, 1)) + 0.5}))
    cases.append(OpCase("Add-constant-tensor", ["Add"], [N("Add", ["x", "c"], ["y"])],
                        {"x": [2, 3, 4]}, ["y"], {"c": _w(3, 4)}))
    cases.append(OpCase("Mul-constant-tensor-nchw", ["Mul", "Conv"],
                        [N("Conv", ["x", "w"], ["t"]), N("Mul", ["t", "c"], ["y"])],
                        {"x": [2, 3, 4, 4]}, ["y"], {"w": _w(2, 3, 1, 1), "c": _w(2, 4, 4)}))
    return cases


def _edge_padded_pool_cases():
    """Max pools whose -inf pads are neither Keras 'same' nor safe to zero: edge padding, as
    PyTorch's MaxPool3d(stride=2, padding=1) exports. The inputs are all negative, so zero
    padding (or any fill above the window's cells) would show in every border window."""
    return [
        OpCase("MaxPool-asym-pads-negative-input", ["MaxPool"],
               [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 0, 0])],
               {"x": [2, 3, 6, 6]}, ["y"], low=-3.0, high=-0.5),
        OpCase("MaxPool3d-stride-pads-ceil", ["MaxPool"],
               [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 2, 3], strides=[2, 2, 2],
                  pads=[1, 1, 1, 1, 0, 1], ceil_mode=1)],
               {"x": [2, 2, 5, 6, 7]}, ["y"], low=-3.0, high=-0.5),
    ]


def _dilated_pool_cases():
    """Dilated max pools whose stride is a multiple of the dilation, as PyTorch's
    MaxPool1d/2d(stride=10, padding=..., dilation=10) tests export (smaller here)."""
    return [
        OpCase("MaxPool-dilated-1d", ["MaxPool"],
               [N("MaxPool", ["x"], ["y"], kernel_shape=[4], strides=[3], dilations=[3],
                  pads=[2, 2])], {"x": [2, 3, 29]}, ["y"], low=-3.0, high=-0.5),
        OpCase("MaxPool-dilated-2d-stride-twice", ["MaxPool"],
               [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 2], strides=[4, 2],
                  dilations=[2, 2], pads=[1, 1, 1, 0])], {"x": [2, 2, 13, 11]}, ["y"]),
        OpCase("MaxPool-dilated-ceil", ["MaxPool"],
               [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                  dilations=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)],
               {"x": [2, 2, 10, 9]}, ["y"], low=-3.0, high=-0.5),
    ]


def _mirror_pad_cases():
    """Reflect and edge padding as PyTorch's ReflectionPad2d / ReplicationPad2d export them
    (NCHW, so the spatial axes are the channels-last ones after raising), and on a rank-3
    tensor's last axis."""
    pads = np.asarray([0, 0, 2, 1, 0, 0, 1, 3], np.int64)
    return [
        OpCase("Pad-reflect-2d", ["Pad"], [N("Pad", ["x", "p"], ["y"], mode="reflect")],
               {"x": [2, 3, 5, 6]}, ["y"], {"p": pads}),
        OpCase("Pad-edge-2d", ["Pad"], [N("Pad", ["x", "p"], ["y"], mode="edge")],
               {"x": [2, 3, 5, 6]}, ["y"], {"p": pads}),
        OpCase("Pad-reflect-last-axis", ["Pad"], [N("Pad", ["x", "p"], ["y"], mode="reflect")],
               {"x": [2, 3, 5]}, ["y"], {"p": np.asarray([0, 0, 3, 0, 0, 2], np.int64)}),
    ]


def _dense_and_shape_cases():
    return [*_mirror_pad_cases(), *_edge_padded_pool_cases(), *_dilated_pool_cases(),
        OpCase("Gemm-transB", ["Gemm"], [N("Gemm", ["x", "w", "b"], ["y"], transB=1, alpha=0.5,
                                           beta=2.0)],
               {"x": [2, 6]}, ["y"], {"w": _w(4, 6), "b": _w(4)}),
        OpCase("MatMul-Add-rank3", ["MatMul", "Add"],
               [N("MatMul", ["x", "w"], ["t"]), N("Add", ["t", "b"], ["y"])],
               {"x": [2, 3, 6]}, ["y"], {"w": _w(6, 5), "b": _w(5)}),
        OpCase("ReduceSum-row-dot", ["ReduceSum", "Mul"],
               [N("Mul", ["x", "z"], ["m"]), N("ReduceSum", ["m", "a"], ["y"], keepdims=1)],
               {"x": [2, 5], "z": [2, 5]}, ["y"], {"a": np.asarray([1], np.int64)}),
        OpCase("MatMul-batched-tensors", ["MatMul"], [N("MatMul", ["x", "z"], ["y"])],
               {"x": [2, 3, 4], "z": [2, 4, 5]}, ["y"]),
        OpCase("Flatten-after-conv", ["Flatten", "Conv"],
               [N("Conv", ["x", "w"], ["t"]), N("Flatten", ["t"], ["y"])],
               {"x": [2, 3, 4, 5]}, ["y"], {"w": _w(2, 3, 1, 1)}),
        OpCase("Flatten-axis2", ["Flatten"], [N("Flatten", ["x"], ["y"], axis=2)],
               {"x": [2, 1, 4, 5]}, ["y"]),
        OpCase("Reshape", ["Reshape"], [N("Reshape", ["x", "s"], ["y"])], {"x": [2, 3, 4]},
               ["y"], {"s": np.asarray([0, 4, 3], np.int64)}),
        OpCase("Squeeze-Unsqueeze", ["Squeeze", "Unsqueeze"],
               [N("Unsqueeze", ["x", "a"], ["t"]), N("Squeeze", ["t", "a"], ["y"])],
               {"x": [2, 3, 4]}, ["y"], {"a": np.asarray([2], np.int64)}),
        OpCase("Transpose-conv-channel-shuffle", ["Transpose", "Reshape", "Conv"],
               [N("Conv", ["x", "w"], ["t"]), N("Reshape", ["t", "s1"], ["r"]),
                N("Transpose", ["r"], ["p"], perm=[0, 2, 1, 3, 4]),
                N("Reshape", ["p", "s2"], ["y"])],
               {"x": [2, 3, 4, 4]}, ["y"],
               {"w": _w(6, 3, 1, 1), "s1": np.asarray([2, 2, 3, 4, 4], np.int64),
                "s2": np.asarray([2, 6, 4, 4], np.int64)}),
        OpCase("Transpose-permute", ["Transpose"], [N("Transpose", ["x"], ["y"],
                                                      perm=[0, 2, 1])],
               {"x": [2, 3, 4]}, ["y"]),
        OpCase("Concat-channels", ["Concat", "Conv"],
               [N("Conv", ["x", "w"], ["a"]), N("Conv", ["x", "w2"], ["b"]),
                N("Concat", ["a", "b"], ["y"], axis=1)],
               {"x": [2, 3, 4, 4]}, ["y"], {"w": _w(2, 3, 1, 1), "w2": _w(3, 3, 1, 1)}),
        OpCase("Pad-spatial", ["Pad", "Conv"],
               [N("Conv", ["x", "w"], ["t"]), N("Pad", ["t", "p"], ["y"])],
               {"x": [2, 3, 4, 4]}, ["y"],
               {"w": _w(2, 3, 1, 1), "p": np.asarray([0, 0, 1, 2, 0, 0, 3, 0], np.int64)}),
        OpCase("Pad-constant-value", ["Pad"], [N("Pad", ["x", "p", "v"], ["y"])],
               {"x": [2, 3, 4, 4]}, ["y"],
               {"p": np.asarray([0, 0, 1, 0, 0, 0, 2, 1], np.int64),
                "v": np.asarray(1.5, np.float32)}),
        OpCase("Slice-channels", ["Slice"],
               [N("Slice", ["x", "st", "en", "ax"], ["y"])], {"x": [2, 6, 3]}, ["y"],
               {"st": np.asarray([1, 1], np.int64), "en": np.asarray([5, 3], np.int64),
                "ax": np.asarray([1, 2], np.int64)}),
        OpCase("Split-GLU", ["Split", "Sigmoid", "Mul"],
               [N("Split", ["x", "sp"], ["a", "b"], axis=-1), N("Sigmoid", ["b"], ["g"]),
                N("Mul", ["a", "g"], ["y"])],
               {"x": [2, 3, 8]}, ["y"], {"sp": np.asarray([4, 4], np.int64)}),
        OpCase("Slice-spatial", ["Slice", "Conv"],
               [N("Conv", ["x", "w"], ["t"]), N("Slice", ["t", "st", "en", "ax"], ["y"])],
               {"x": [2, 3, 6, 6]}, ["y"],
               {"w": _w(2, 3, 1, 1), "st": np.asarray([1, 0], np.int64),
                "en": np.asarray([-1, 4], np.int64), "ax": np.asarray([2, 3], np.int64)}),
        OpCase("Resize-nearest", ["Resize", "Conv"],
               [N("Conv", ["x", "w"], ["t"]),
                N("Resize", ["t", "", "sc"], ["y"], mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
               {"x": [2, 3, 3, 4]}, ["y"],
               {"w": _w(2, 3, 1, 1), "sc": np.asarray([1, 1, 2, 3], np.float32)}),
        OpCase("Resize-nearest-1d", ["Resize"],
               [N("Resize", ["x", "", "sc"], ["y"], mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
               {"x": [2, 3, 5]}, ["y"], {"sc": np.asarray([1, 1, 3], np.float32)}),
        OpCase("Resize-nearest-3d", ["Resize"],
               [N("Resize", ["x", "", "sc"], ["y"], mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
               {"x": [2, 2, 2, 3, 2]}, ["y"], {"sc": np.asarray([1, 1, 2, 1, 2], np.float32)}),
        OpCase("Resize-linear-sizes-from-shape", ["Resize", "Conv"],
               [N("Conv", ["x", "w"], ["t"]), N("Shape", ["t"], ["sh"]),
                N("Slice", ["sh", "s0", "s2"], ["nc"]), N("Concat", ["nc", "hw"], ["sz"], axis=0),
                N("Resize", ["t", "", "", "sz"], ["y"], mode="linear")],
               {"x": [2, 3, 5, 4]}, ["y"],
               {"w": _w(2, 3, 1, 1), "s0": np.asarray([0], np.int64),
                "s2": np.asarray([2], np.int64), "hw": np.asarray([7, 3], np.int64)}),
        OpCase("Resize-linear-half-pixel", ["Resize", "Conv"],
               [N("Conv", ["x", "w"], ["t"]),
                N("Resize", ["t", "", "sc"], ["y"], mode="linear")],
               {"x": [2, 3, 3, 4]}, ["y"],
               {"w": _w(2, 3, 1, 1), "sc": np.asarray([1, 1, 2, 2], np.float32)}),
        OpCase("Gather-embedding", ["Gather", "Cast"],
               [N("Cast", ["x"], ["i"], to=TensorProto.INT64), N("Gather", ["w", "i"], ["y"])],
               {"x": [2, 5]}, ["y"], {"w": _w(7, 3)}, input_dtype=TensorProto.INT32, low=0,
               high=7),
    ]


def _relu_nodes(cmp: str = "Greater", with_min: bool = True, shift: bool = True):
    nodes = [N(cmp, ["x", "t"], ["c"])]
    nodes += [N("Sub", ["x", "t"], ["d"]), N("Mul", ["d", "s"], ["b"])] if shift else \
        [N("Mul", ["s", "x"], ["b"])]
    nodes.append(N("Where", ["c", "x", "b"], ["w" if with_min else "y"]))
    if with_min:
        nodes.append(N("Min", ["w", "m"], ["y"]))
    return nodes


def _relu_consts(t: float, s: float = 0.2, m: float = 2.0):
    return {"t": np.asarray(t, np.float32), "s": np.asarray(s, np.float32),
            "m": np.asarray(m, np.float32)}


def _relu_pattern_cases():
    """Keras's ReLU(negative_slope, threshold, max_value) as modelport's lowering writes it,
    and a leaky ReLU with a non-strict comparison at 0."""
    return [
        OpCase("ReLU-threshold-slope-max", ["Where", "Greater"], _relu_nodes(),
               {"x": [2, 3, 7]}, ["y"], _relu_consts(0.5)),
        OpCase("ReLU-threshold-slope", ["Where", "Greater"], _relu_nodes(with_min=False),
               {"x": [2, 9]}, ["y"], {k: v for k, v in _relu_consts(-0.7, 0.4).items()
                                       if k != "m"}),
        # t < 0: Keras would clip (t, 0) to 0, so the Min stays a layer of its own
        OpCase("ReLU-negative-threshold-then-Min", ["Where", "Greater"], _relu_nodes(),
               {"x": [2, 9]}, ["y"], _relu_consts(-0.5, 0.2, 1.0)),
        OpCase("ReLU-leaky-at-0", ["Where", "GreaterOrEqual"],
               _relu_nodes("GreaterOrEqual", with_min=False, shift=False),
               {"x": [2, 9]}, ["y"], {k: v for k, v in _relu_consts(0.0, 0.3).items()
                                       if k != "m"}),
    ]


def test_relu_pattern_is_exact_at_the_threshold():
    """x == t: Keras's strict comparison gives 0, so must the ONNX graph that is raised."""
    case = _relu_pattern_cases()[0]
    x = np.linspace(-1, 3, 42, dtype=np.float32).reshape(2, 3, 7)
    x[0, 0, :3] = 0.5
    raised = raise_and_compare(build(case), [x])  # 0.5 there if the comparison were >=
    assert [layer.class_name for layer in raised.model.layers] == ["InputLayer", "ReLU"]


@pytest.mark.parametrize("cmp,t,s,m", [
    ("GreaterOrEqual", 0.5, 0.2, 2.0),  # x == t: ONNX gives t, Keras's ReLU 0
    ("Greater", 0.5, -0.2, None),       # Keras's ReLU refuses negative slopes
])
def test_relu_pattern_is_not_taken_where_keras_differs(cmp, t, s, m):
    """No ReLU layer where Keras's would differ: the comparison and the Where raise as the
    Keras operations they are (exact, the threshold itself among the inputs)."""
    consts = _relu_consts(t, s, m if m is not None else 1.0)
    if m is None:
        consts.pop("m")
    case = OpCase("relu-like", [], _relu_nodes(cmp, with_min=m is not None), {"x": [2, 5]},
                  ["y"], consts)
    x = np.linspace(-1, 3, 10, dtype=np.float32).reshape(2, 5)
    x[0, :2] = t
    raised = raise_and_compare(build(case), [x])
    classes = [layer.class_name for layer in raised.model.layers]
    assert {"Where", {"Greater": "Greater", "GreaterOrEqual": "GreaterEqual"}[cmp]} <= \
        set(classes)


def _layer_norm_nodes(form: str, axes: list[int]):
    """Moments over ``axes`` as modelport's lowering ("keras", "rms") or PyTorch's exports
    before opset 17 ("pytorch": Pow and Div) write them, then gamma and beta (not for rms)."""
    nodes = [N("ReduceMean", ["x"], ["mu"], axes=axes, keepdims=1), N("Sub", ["x", "mu"], ["c"])]
    nodes.append(N("Pow", ["c", "two"], ["sq"]) if form == "pytorch" else
                 N("Mul", ["c", "c"], ["sq"]))
    nodes += [N("ReduceMean", ["sq"], ["var"], axes=axes, keepdims=1),
              N("Add", ["var", "eps"], ["ve"]), N("Sqrt", ["ve"], ["sd"])]
    factor = "x" if form == "rms" else "c"
    if form == "pytorch":
        nodes.append(N("Div", [factor, "sd"], ["n"]))
    else:
        nodes += [N("Reciprocal", ["sd"], ["inv"]), N("Mul", [factor, "inv"], ["n"])]
    nodes.append(N("Mul", ["n", "gamma"], ["g" if form != "rms" else "y"]))
    if form != "rms":
        nodes.append(N("Add", ["g", "beta"], ["y"]))
    return nodes


def _layer_norm_cases():
    shape = [2, 4, 5, 3]
    consts = {"eps": np.asarray(1e-3, np.float32), "two": np.asarray(2.0, np.float32),
              "gamma": _w(1, 4, 5, 1), "beta": _w(4, 5, 1)}
    return [
        OpCase("LayerNorm-axes12-decomposed", ["Reciprocal", "Sqrt", "ReduceMean"],
               _layer_norm_nodes("keras", [1, 2]), {"x": shape}, ["y"],
               {k: v for k, v in consts.items() if k != "two"}),
        OpCase("LayerNorm-rms-decomposed", ["Reciprocal", "Sqrt"],
               _layer_norm_nodes("rms", [3]), {"x": shape}, ["y"],
               {"eps": consts["eps"], "gamma": _w(3)}),
        OpCase("LayerNorm-pytorch-pre17", ["Pow", "Sqrt", "Div"],
               _layer_norm_nodes("pytorch", [-1]), {"x": [2, 6, 8]}, ["y"],
               {**consts, "gamma": _w(8), "beta": _w(8)}, opset=13),
    ]


def test_layer_norm_pattern_keeps_a_value_read_elsewhere():
    """The variance is also a graph output: fusing would lose it, so nothing is fused; the
    nodes raise one by one (Sqrt and Reciprocal as Keras operations) and still compute the
    same."""
    nodes = _layer_norm_nodes("keras", [2])
    case = OpCase("layer-norm-kept", [], nodes, {"x": [2, 3, 6]}, ["y", "var"],
                  {"eps": np.asarray(1e-3, np.float32), "gamma": _w(6), "beta": _w(6)})
    raised = raise_and_compare(build(case), feeds(case))
    classes = {layer.class_name for layer in raised.model.layers}
    assert "LayerNormalization" not in classes and "Reciprocal" in classes, classes


def _pattern_cases():
    r2 = np.float32(1 / np.sqrt(2))
    return [
        OpCase("Exp", ["Exp"], [N("Exp", ["x"], ["y"])], {"x": [2, 5]}, ["y"]),
        OpCase("LogSoftmax", ["LogSoftmax"], [N("LogSoftmax", ["x"], ["y"], axis=-1)],
               {"x": [2, 3, 5]}, ["y"]),
        OpCase("Expand-same-shape", ["Expand"],
               [N("Expand", ["x", "s"], ["e"]), N("Relu", ["e"], ["y"])],
               {"x": [2, 3, 1]}, ["y"], {"s": np.asarray([2, 3, 1], np.int64)}),
        OpCase("Tile-RepeatVector", ["Tile", "Unsqueeze"],
               [N("Unsqueeze", ["x", "a"], ["u"]), N("Tile", ["u", "r"], ["y"])],
               {"x": [2, 4]}, ["y"],
               {"a": np.asarray([1], np.int64), "r": np.asarray([1, 3, 1], np.int64)}),
        OpCase("UnitNormalization", ["ReduceL2"],
               [N("ReduceL2", ["x"], ["n"], axes=[-1], keepdims=1),
                N("Max", ["n", "eps"], ["m"]), N("Div", ["x", "m"], ["y"])],
               {"x": [2, 3, 5]}, ["y"], {"eps": np.asarray(1e-12, np.float32)}),
        OpCase("DepthToSpace-DCR", ["DepthToSpace"],
               [N("DepthToSpace", ["x"], ["y"], blocksize=2)], {"x": [2, 8, 3, 5]}, ["y"]),
        OpCase("DepthToSpace-CRD", ["DepthToSpace"],
               [N("DepthToSpace", ["x"], ["y"], blocksize=2, mode="CRD")], {"x": [2, 12, 3, 4]},
               ["y"]),
        OpCase("SpaceToDepth", ["SpaceToDepth"],
               [N("SpaceToDepth", ["x"], ["y"], blocksize=2)], {"x": [2, 3, 4, 6]}, ["y"]),
        OpCase("L2Normalize-tf", ["Reciprocal"],
               [N("Mul", ["x", "x"], ["x2"]), N("ReduceSum", ["x2", "a"], ["s"], keepdims=1),
                N("Max", ["s", "eps"], ["m"]), N("Sqrt", ["m"], ["r"]),
                N("Reciprocal", ["r"], ["inv"]), N("Mul", ["x", "inv"], ["y"])],
               {"x": [2, 3, 5]}, ["y"], {"eps": np.asarray(1e-10, np.float32),
                                        "a": np.asarray([-1], np.int64)}),
        OpCase("Dot-normalize", ["Sqrt"],
               [*(n for v in "xz" for n in (
                   N("Mul", [v, v], [f"{v}2"]),
                   N("ReduceSum", [f"{v}2", "a"], [f"{v}s"], keepdims=1),
                   N("Max", [f"{v}s", "eps"], [f"{v}m"]), N("Sqrt", [f"{v}m"], [f"{v}r"]),
                   N("Div", [v, f"{v}r"], [f"{v}n"]))),
                N("Mul", ["xn", "zn"], ["p"]), N("ReduceSum", ["p", "a"], ["y"], keepdims=1)],
               {"x": [2, 5], "z": [2, 5]}, ["y"], {"a": np.asarray([1], np.int64),
                                                   "eps": np.asarray(1e-12, np.float32)}),
        *_relu_pattern_cases(),
        *_layer_norm_cases(),
        OpCase("Gelu-keras-order", ["Erf"],
               [N("Mul", ["x", "k"], ["s"]), N("Erf", ["s"], ["e"]),
                N("Add", ["e", "one"], ["a"]), N("Mul", ["x", "half"], ["h"]),
                N("Mul", ["h", "a"], ["y"])],
               {"x": [2, 6]}, ["y"], {"k": np.asarray(r2), "one": np.asarray(1, np.float32),
                                      "half": np.asarray(0.5, np.float32)}),
        OpCase("Gelu-pytorch-order", ["Erf"],
               [N("Div", ["x", "k"], ["s"]), N("Erf", ["s"], ["e"]),
                N("Add", ["e", "one"], ["a"]), N("Mul", ["x", "a"], ["m"]),
                N("Mul", ["m", "half"], ["y"])],
               {"x": [2, 6]}, ["y"], {"k": np.asarray(np.sqrt(2), np.float32),
                                      "one": np.asarray(1, np.float32),
                                      "half": np.asarray(0.5, np.float32)}),
        # indices in and out of [-5, 5): more in test_onnx_to_keras_tf_compositions.py
        OpCase("OneHot-of-cast", ["OneHot"],
               [N("Cast", ["x"], ["i"], to=TensorProto.INT32),
                N("OneHot", ["i", "depth", "values"], ["y"], axis=-1)],
               {"x": [2, 12]}, ["y"], {"depth": np.asarray([5], np.int32),
                                       "values": np.asarray([0, 1], np.float32)},
               low=-8.0, high=8.0),
    ]


def _operation_cases():
    """Ops raised to Keras 3 operations (operations.py)."""
    i32, i64 = TensorProto.INT32, TensorProto.INT64
    return [
        OpCase("Log", ["Log"], [N("Log", ["x"], ["y"])], {"x": [2, 5]}, ["y"], low=0.1),
        OpCase("ReduceMin-last", ["ReduceMin"], [N("ReduceMin", ["x"], ["y"], axes=[-1],
                                                   keepdims=0)], {"x": [2, 3, 5]}, ["y"]),
        OpCase("ReduceMin-keep", ["ReduceMin"], [N("ReduceMin", ["x"], ["y"], axes=[1, 2])],
               {"x": [2, 3, 5]}, ["y"]),
        OpCase("ArgMax", ["ArgMax"], [N("ArgMax", ["x"], ["y"], axis=1, keepdims=0)],
               {"x": [2, 7]}, ["y"], output_dtype=i64),
        OpCase("ArgMin-keep", ["ArgMin"], [N("ArgMin", ["x"], ["y"], axis=2)],
               {"x": [2, 3, 7]}, ["y"], output_dtype=i64),
        OpCase("Equal-scalar", ["Equal"], [N("Equal", ["x", "c"], ["y"])], {"x": [2, 6]}, ["y"],
               {"c": np.asarray(1, np.int32)}, input_dtype=i32, output_dtype=TensorProto.BOOL),
        OpCase("Equal-one-hot", ["Equal", "Cast"],
               [N("Equal", ["x", "c"], ["e"]), N("Cast", ["e"], ["y"], to=TensorProto.FLOAT)],
               {"x": [2, 6, 1]}, ["y"], {"c": np.arange(5, dtype=np.int32).reshape(1, 1, 5)},
               input_dtype=i32, low=-1, high=6),
        OpCase("Reciprocal-op", ["Reciprocal"], [N("Reciprocal", ["x"], ["y"])], {"x": [2, 6]},
               ["y"], low=0.5, high=3.0),
        OpCase("Max-minus-inf", ["Max"], [N("Max", ["x", "c"], ["y"])], {"x": [2, 6]}, ["y"],
               {"c": np.asarray(-np.inf, np.float32)}),
        OpCase("Less-scalar", ["Less"], [N("Less", ["x", "c"], ["y"])], {"x": [2, 6]}, ["y"],
               {"c": np.asarray(0.25, np.float32)}, output_dtype=TensorProto.BOOL),
        OpCase("LessOrEqual-tensors", ["LessOrEqual"], [N("LessOrEqual", ["x", "z"], ["y"])],
               {"x": [2, 6], "z": [2, 6]}, ["y"], input_dtype=i32, low=-2, high=2,
               output_dtype=TensorProto.BOOL),
        OpCase("Equal-tensors", ["Equal"], [N("Equal", ["x", "z"], ["y"])],
               {"x": [2, 6], "z": [2, 6]}, ["y"], input_dtype=i32,
               output_dtype=TensorProto.BOOL),
        OpCase("Mod-int", ["Mod"], [N("Mod", ["x", "c"], ["y"])], {"x": [2, 6]}, ["y"],
               {"c": np.asarray(4, np.int32)}, input_dtype=i32, output_dtype=i32, low=-9,
               high=9),
        # operations_numeric.py, operations_index.py (tables with halves and ties:
        # test_onnx_to_keras_operations_numeric.py)
        OpCase("Round", ["Round"], [N("Round", ["x"], ["y"])], {"x": [2, 6]}, ["y"]),
        OpCase("Floor", ["Floor"], [N("Floor", ["x"], ["y"])], {"x": [2, 6]}, ["y"]),
        OpCase("Ceil", ["Ceil"], [N("Ceil", ["x"], ["y"])], {"x": [2, 6]}, ["y"]),
        OpCase("TopK-values", ["TopK"], [N("TopK", ["x", "k"], ["y", "i"])], {"x": [2, 3, 7]},
               ["y"], {"k": np.asarray([4], np.int64)}),
        OpCase("TopK-indices-cast", ["TopK", "Cast"],
               [N("TopK", ["x", "k"], ["v", "i"]), N("Cast", ["i"], ["y"], to=TensorProto.FLOAT)],
               {"x": [2, 9]}, ["y"], {"k": np.asarray([3], np.int64)}),
        OpCase("GatherND-per-sample", ["GatherND", "TopK"],
               [N("ReduceMax", ["x"], ["s"], axes=[2], keepdims=0),
                N("TopK", ["s", "k"], ["v", "i"]), N("Unsqueeze", ["i", "a"], ["i3"]),
                N("GatherND", ["x", "i3"], ["y"], batch_dims=1)],
               {"x": [2, 4, 3]}, ["y"], {"k": np.asarray([2], np.int64),
                                         "a": np.asarray([2], np.int64)}),
    ]


CASES = (_pattern_cases() + _conv_cases() + _pool_cases() + _norm_cases() + _activation_cases() +
         _elementwise_cases() + _dense_and_shape_cases() + _operation_cases())


def build(case: OpCase) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info(n, case.input_dtype, s)
              for n, s in case.inputs.items()]
    outputs = [helper.make_tensor_value_info(n, case.output_dtype, None) for n in case.outputs]
    inits = [numpy_helper.from_array(v, k) for k, v in case.consts.items()]
    graph = helper.make_graph(case.nodes, case.id.replace("-", "_"), inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


def feeds(case: OpCase, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for shape in case.inputs.values():
        if case.input_dtype == TensorProto.INT32:
            out.append(rng.integers(case.low, case.high, shape).astype(np.int32))
        else:
            out.append(rng.uniform(case.low, case.high, shape).astype(np.float32))
    return out


def ort_run(proto: onnx.ModelProto, arrays: list[np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, arrays)))


def raise_and_compare(proto: onnx.ModelProto, arrays: list[np.ndarray], *,
                      atol: float = 1e-5, rtol: float = 1e-4, **kwargs):
    raised = raise_model(ir.from_proto(proto), **kwargs)
    expected = ort_run(proto, arrays)
    keras_in = [np.ascontiguousarray(a.transpose(p)) if p else a
                for a, p in zip(arrays, raised.input_perms)]
    got = run(raised.model, keras_in).outputs
    for g, e, p in zip(got, expected, raised.output_perms):
        e = e.transpose(p) if p else e
        np.testing.assert_allclose(np.asarray(g), e, atol=atol, rtol=rtol)
    return raised


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_matches_onnxruntime(case):
    raise_and_compare(build(case), feeds(case))


def test_every_rule_has_a_case():
    from modelport.converters.onnx_to_keras.core import PATTERN_OPS

    covered = {op for c in CASES for op in c.ops}
    assert covered >= PATTERN_OPS
    # recurrent rules have their own table (test_onnx_to_keras_recurrent.py)
    missing = sorted(set(RULES) - covered - {"LSTM", "GRU", "RNN", "Upsample"})
    assert not missing, f"rules without a case: {missing}"


def test_image_inputs_become_channels_last_and_back():
    case = next(c for c in CASES if c.id == "Conv-valid")
    raised = raise_and_compare(build(case), feeds(case))
    assert raised.input_perms == [[0, 2, 3, 1]]
    assert raised.output_perms == [[0, 2, 3, 1]]
    assert raised.model.layers[0].config["batch_shape"] == [None, 9, 9, 3]
    assert raised.permutes == 0


def test_channels_first_inputs_keep_onnx_layout_with_a_leading_permute():
    case = next(c for c in CASES if c.id == "Conv-valid")
    raised = raise_and_compare(build(case), feeds(case), channels_first_inputs=True)
    assert raised.input_perms == [None] and raised.output_perms == [None]
    assert raised.model.layers[0].config["batch_shape"] == [None, 3, 9, 9]
    assert [layer.class_name for layer in raised.model.layers].count("Permute") == 2


def test_flatten_of_a_feature_map_keeps_onnx_element_order():
    case = next(c for c in CASES if c.id == "Flatten-after-conv")
    raised = raise_and_compare(build(case), feeds(case))
    classes = [layer.class_name for layer in raised.model.layers]
    assert classes.index("Permute") < classes.index("Flatten")


def test_grouped_convolution_for_tfjs_is_block_diagonal():
    case = next(c for c in CASES if c.id == "Conv-grouped")
    raised = raise_and_compare(build(case), feeds(case), for_tfjs=True)
    conv = next(layer for layer in raised.model.layers if layer.class_name == "Conv2D")
    assert conv.config["groups"] == 1 and conv.weights[0].array.shape == (3, 3, 6, 4)


# --- refusals ---------------------------------------------------------------------------------

def _refusal(nodes, inputs, consts=None, out="y", outputs=None):
    case = OpCase("refusal", [], nodes, inputs, outputs or [out], consts or {})
    with pytest.raises(UnsupportedError) as info:
        raise_model(ir.from_proto(build(case)))
    return str(info.value)


def test_data_dependent_op_is_refused_up_front_with_the_graph_route_hint():
    message = _refusal([N("Relu", ["x"], ["r"]), N("NonZero", ["r"], ["nz"]),
                        N("Cast", ["nz"], ["y"], to=TensorProto.FLOAT)], {"x": [2, 3]})
    assert "NonZero node 'nonzero_nz'" in message
    assert "--to tfjs-graph" in message


def test_every_unraisable_node_is_listed_in_one_error():
    message = _refusal([N("Sin", ["x"], ["a"]), N("Erf", ["x"], ["b"]),
                        N("Add", ["a", "b"], ["y"])], {"x": [2, 3, 4, 4]})
    assert "2 node(s)" in message and "Sin node" in message and "Erf node" in message


@pytest.mark.parametrize("nodes,inputs,consts,why", [
    ([N("Transpose", ["x"], ["y"], perm=[1, 0, 2])], {"x": [2, 3, 4]}, {},
     "moves the batch axis"),
    ([N("Reshape", ["x", "s"], ["y"])], {"x": [2, 3, 4]},
     {"s": np.asarray([4, 3, 2], np.int64)}, "across the batch axis"),
    ([N("Concat", ["x", "x"], ["y"], axis=0)], {"x": [2, 3]}, {}, "batch axis"),
    # (a tensor by a tensor is the Keras operation Divide; a constant holding zeros is no
    # layer's reciprocal)
    ([N("Div", ["x", "c"], ["y"])], {"x": [2, 3, 4]},
     {"c": np.asarray([[1, 2, 0, 4]] * 3, np.float32)}, "division"),
    ([N("Pad", ["x", "p"], ["y"], mode="reflect")], {"x": [2, 3, 4, 4]},
     {"p": np.asarray([0, 0, 4, 1, 0, 0, 1, 1], np.int64)}, "wider than axis 2"),
    ([N("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[2, 0, 0, 0])],
     {"x": [2, 3, 6, 6]}, {}, "leave a window with no input cell"),
    # (cubic resizing of static size is raised: tests/test_onnx_to_keras_resize_matrix.py)
    ([N("Resize", ["x", "", "s"], ["y"], mode="cubic")], {"x": [2, 3, 4, 4]},
     {"s": np.asarray([1, 2, 2, 2], np.float32)}, "resizing the channel axis"),
], ids=["transpose-batch", "reshape-batch", "concat-batch", "div-zeros", "reflect-pad",
        "maxpool-window-outside", "channel-resize"])
def test_unprovable_cases_are_refused_naming_why(nodes, inputs, consts, why):
    assert why in _refusal(nodes, inputs, consts)


# --- the route ----------------------------------------------------------------------------------

def _write(case_id: str, path):
    onnx.save(build(next(c for c in CASES if c.id == case_id)), str(path))
    return path


def test_cli_converts_onnx_to_h5_with_parity_and_layouts_in_json(tmp_path):
    from click.testing import CliRunner

    from modelport.cli import main

    src = _write("MaxPool-ceil-after-relu", tmp_path / "m.onnx")
    result = CliRunner().invoke(main, ["convert", str(src), str(tmp_path / "m.h5"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and report["parity"]["passed"]
    assert report["parity"]["source_engine"].startswith("onnxruntime")
    assert report["keras"]["input_perms"] == [[0, 2, 3, 1]]
    assert report["check"]["structure_equal"]


@pytest.mark.parametrize("case_id,target,to", [
    ("Conv-grouped", "m.keras", None), ("Conv-grouped", "web", "tfjs-layers"),
    ("Conv-depthwise-mult2", "m.h5", None), ("BatchNormalization", "m.h5", None),
    ("ConvTranspose-pads-outpad", "m.keras", None), ("Gather-embedding", "m.h5", None)])
def test_route_writes_keras_and_tfjs_layers(tmp_path, case_id, target, to):
    import modelport

    src = _write(case_id, tmp_path / "m.onnx")
    case = next(c for c in CASES if c.id == case_id)
    npz = tmp_path / "inputs.npz"
    np.savez(npz, **dict(zip(case.inputs, feeds(case))))  # indices within the vocabulary
    report = modelport.convert(src, tmp_path / target, to=to, inputs=npz)
    assert report.parity.passed
    assert (tmp_path / target).exists()


def test_cli_refusal_exits_4_and_writes_nothing(tmp_path):
    from click.testing import CliRunner

    from modelport.cli import main

    case = OpCase("sin", [], [N("Sin", ["x"], ["y"])], {"x": [2, 3, 4, 4]}, ["y"])
    src = tmp_path / "m.onnx"
    onnx.save(build(case), str(src))
    result = CliRunner().invoke(main, ["convert", str(src), str(tmp_path / "m.h5")])
    assert result.exit_code == 4
    assert "Sin node 'sin_y'" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_mismatch_names_the_first_diverging_layer(tmp_path, monkeypatch):
    import modelport
    from modelport.converters.onnx_to_keras import core

    src = _write("MaxPool-ceil-after-relu", tmp_path / "m.onnx")
    original = core.RULES["Relu"].fn

    def wrong(ctx, node):  # a deliberately broken rule: sigmoid instead of relu
        ctx.output(ctx.layer("Activation", {"activation": "sigmoid"}, ctx.ref(node.inputs[0])))

    monkeypatch.setattr(core.RULES["Relu"], "fn", wrong)
    report = modelport.convert(src, tmp_path / "m.h5")
    monkeypatch.setattr(core.RULES["Relu"], "fn", original)
    assert not report.parity.passed
    divergence = report.parity.first_divergence
    assert divergence["onnx_node"] == "relu_r" and divergence["class"] == "Activation"


def test_the_first_diverging_layer_is_compared_with_the_value_it_computes(tmp_path,
                                                                          monkeypatch):
    """A Dense that absorbed the Add after its MatMul computes the Add's value: the search
    for the first diverging layer compares it there, not with the MatMul's output (which
    named a faithful first Dense, off by its bias, while the wrong one came later)."""
    import modelport
    from modelport.converters import onnx_to_keras

    rng = np.random.default_rng(2)
    arrays = {"w1": rng.standard_normal((6, 8)), "b1": rng.standard_normal(8) + 2,
              "w2": rng.standard_normal((8, 4)), "b2": rng.standard_normal(4)}
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["m1"], name="first"),
             helper.make_node("Add", ["m1", "b1"], ["a1"], name="first_bias"),
             helper.make_node("Relu", ["a1"], ["r1"], name="relu"),
             helper.make_node("MatMul", ["r1", "w2"], ["m2"], name="second"),
             helper.make_node("Add", ["m2", "b2"], ["y"], name="second_bias")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        [numpy_helper.from_array(a.astype(np.float32), n) for n, a in arrays.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "m.onnx")
    original = onnx_to_keras.raise_model

    def wrong(*args, **kwargs):  # the second Dense's kernel moved after raising
        raised = original(*args, **kwargs)
        kernel = raised.model.layer("second").weights[0]
        kernel.array = kernel.array * np.float32(1.01)
        return raised

    monkeypatch.setattr(onnx_to_keras, "raise_model", wrong)
    report = modelport.convert(tmp_path / "m.onnx", tmp_path / "m.keras")
    assert not report.parity.passed
    assert report.parity.first_divergence["layer"] == "second"


@pytest.mark.parametrize("name", ["cnn", "cnn_uint8", "prelu", "dense", "dense_float16"])
def test_tfjs_graph_models_raise_to_keras_through_onnx(tmp_path, name):
    """Graph-models written by the real tensorflowjs_converter, TF ops -> ONNX -> Keras."""
    import modelport
    from tests.conftest import FIXTURES

    report = modelport.convert(FIXTURES / "tfjs_graph" / name, tmp_path / "m.h5",
                               engine="reference")
    assert report.parity.passed, report.parity.outputs
    assert report.source_format == "tfjs-graph"


def test_tfjs_graph_with_unraisable_ops_names_them(tmp_path):
    import modelport
    from tests.conftest import FIXTURES

    with pytest.raises(UnsupportedError, match="Einsum node"):
        modelport.convert(FIXTURES / "tfjs_graph" / "attention", tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def test_old_opset_source_runs_upgraded_when_onnxruntime_has_no_kernel(tmp_path):
    """onnxruntime has no AveragePool-1 kernel: the parity check runs the source upgraded by
    onnx's version converter and says so."""
    import modelport

    case = OpCase("old", [], [N("AveragePool", ["x"], ["y"], kernel_shape=[2, 2])],
                  {"x": [2, 3, 4, 4]}, ["y"], opset=6)
    src = tmp_path / "m.onnx"
    proto = build(case)
    proto.ir_version = 3
    onnx.save(proto, str(src))
    report = modelport.convert(src, tmp_path / "m.h5")
    assert report.parity.passed
    assert "upgraded from opset 6 to 17" in report.parity.source_engine


def _tfjs_case(case: OpCase) -> list[str]:
    """Raised for tfjs-layers, the case matches onnxruntime; its layer classes."""
    raised = raise_and_compare(build(case), feeds(case), for_tfjs=True)
    from modelport.models import tfjs_support

    assert not tfjs_support.blockers(raised.model)
    return [layer.class_name for layer in raised.model.layers]


def test_tfjs_forms_of_what_tfjs_layers_lacks():
    """tfjs-layers 4.22 normalizes up to rank 4, runs ELU with alpha 1 only, has no
    ZeroPadding3D or log_softmax and ignores output_padding: raised for it, these take other
    exact forms."""
    c = 2
    bn = OpCase("bn3d", [], [N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])],
                {"x": [2, c, 3, 4, 3]}, ["y"],
                {"s": _w(c), "b": _w(c), "m": _w(c), "v": np.abs(_w(c)) + 0.5})
    assert _tfjs_case(bn).count("Reshape") == 2
    elu = OpCase("elu", [], [N("Elu", ["x"], ["y"], alpha=0.4)], {"x": [2, 7]}, ["y"])
    assert "ELU" not in _tfjs_case(elu)
    conv3d = OpCase("conv3d-pads", [], [N("Conv", ["x", "w"], ["y"], pads=[1, 0, 2, 0, 1, 1],
                                          strides=[2, 1, 2])],
                    {"x": [2, 2, 5, 4, 6]}, ["y"], {"w": _w(3, 2, 2, 2, 3)})
    assert "ZeroPadding3D" not in _tfjs_case(conv3d)
    logsm = OpCase("logsoftmax", [], [N("LogSoftmax", ["x"], ["y"], axis=-1)],
                   {"x": [2, 3, 7]}, ["y"], low=-30, high=30)
    assert "Activation" in _tfjs_case(logsm)  # softplus, not log_softmax
    deconv = next(c for c in CASES if c.id == "ConvTranspose-pads-outpad")
    raised = raise_and_compare(build(deconv), feeds(deconv), for_tfjs=True)
    (layer,) = [lay for lay in raised.model.layers if lay.class_name == "Conv2DTranspose"]
    assert layer.config["output_padding"] is None


def test_shape_ops_that_only_feed_inferred_sizes_are_not_raised():
    """Resize sizes computed from the run-time Shape of a dynamic batch: the rule reads the
    inferred output shape, so the Shape/Slice/Concat feeding it need no Keras layer."""
    case = next(c for c in CASES if c.id == "Resize-linear-sizes-from-shape")
    proto = build(case)
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    proto = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    raised = raise_and_compare(proto, feeds(case))
    assert "Resizing" in [layer.class_name for layer in raised.model.layers]


def test_validate_compares_an_onnx_model_with_its_channels_last_keras_model(tmp_path):
    """``modelport validate model.onnx model.h5`` without a conversion report: the NCHW/NHWC
    difference is recognised from the input and output shapes."""
    import modelport

    src = _write("Conv-same-pads", tmp_path / "m.onnx")
    modelport.convert(src, tmp_path / "m.h5")
    report = modelport.validate(src, tmp_path / "m.h5")
    assert report.passed, report.outputs


def test_tf_l2_normalize_keeps_its_epsilon_clamp():
    """TF's l2_normalize clamps the squared norm at eps (MobileFaceNet's embeddings: 1e-10),
    Keras's UnitNormalization the inverse norm at 1e12: the Rescaling before it moves Keras's
    clamp onto TF's, so rows whose norm is below sqrt(eps) match too."""
    case = next(c for c in CASES if c.id == "L2Normalize-tf")
    rows = feeds(case)[0]
    rows[0] *= 1e-7  # squared norm ~1e-14 < eps: TF's clamp decides the row
    raised = raise_and_compare(build(case), [rows], atol=0, rtol=2e-6)
    classes = [layer.class_name for layer in raised.model.layers]
    assert "UnitNormalization" in classes and "Rescaling" in classes, classes
