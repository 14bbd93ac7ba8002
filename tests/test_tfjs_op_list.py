"""The ONNX -> TF.js mapping writes only what the installed @tensorflow/tfjs-converter runs.

``onnx_to_tfjs.core.EMITS`` declares every TF op and attribute a rule may write (``Ctx.op`` refuses
anything else); here each is looked up in the op list that ships in the npm package
(``tests/interop/node/list_tfjs_ops.js`` prints it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from modelport.converters.onnx_to_tfjs.driver import EMITS, mapped_ops
from tests.conftest import require_tool

LIST_OPS = Path(__file__).parent / "interop" / "node" / "list_tfjs_ops.js"

# Attributes TF's GraphDef needs that tfjs's op list does not name, with why they are fine.
NOT_IN_OP_LIST = {
    ("Const", "dtype"): "tfjs's loader reads Const nodes itself (dtype and shape from the "
                        "weights manifest)",
    ("Const", "value"): "as above: the value comes from the weights manifest",
    ("Pack", "N"): "TF's count of inputs; tfjs counts the inputs itself",
}

# The ONNX ops the mapping covers (standard domain). A change here is deliberate: add the
# op's rule, and ONNX's node tests for it run in tests/interop/test_onnx_node_suite.py.
MAPPED = [
    "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh",
    "AveragePool", "BatchNormalization", "Cast", "CastLike", "Ceil", "Celu", "Clip", "Concat",
    "ConstantOfShape", "Conv", "ConvInteger", "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace", "DequantizeLinear", "Div",
    "Dropout", "DynamicQuantizeLSTM", "DynamicQuantizeLinear", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "EyeLike", "Flatten", "Floor",
    "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool", "GlobalLpPool",
    "GRU", "GlobalMaxPool", "Greater", "GreaterOrEqual", "GroupNormalization", "HardSigmoid",
    "HardSwish", "Hardmax", "Identity", "If", "InstanceNormalization", "IsInf", "IsNaN", "LRN",
    "LSTM", "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax", "Loop",
    "LpNormalization", "LpPool", "MatMul", "MatMulInteger", "Max", "MaxPool", "Mean", "MeanVarianceNormalization",
    "Min", "Mish", "Mod", "Mul", "Neg", "NonZero", "Not", "OneHot", "Or", "PRelu", "Pad", "Pow",
    "QuantizeLinear", "RMSNormalization", "RNN", "Range", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum",
    "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum",
    "ReduceSumSquare", "Relu", "Reshape", "Resize", "ReverseSequence", "Round", "ScatterElements",
    "ScatterND", "Scan", "Selu", "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Slice",
    "Softmax", "Softplus", "Softsign", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Sum",
    "Swish", "Tan", "Tanh", "ThresholdedRelu", "Tile", "TopK", "Transpose", "Trilu", "Unsqueeze",
    "Upsample", "Where", "Xor",
]


@pytest.fixture(scope="module")
def op_list() -> dict:
    from modelport.runtime import tfjs_node

    if shutil.which("node") is None or tfjs_node.node_modules() is None:
        require_tool("node and @tensorflow/tfjs-converter are needed to read tfjs's op list")
    proc = subprocess.run(["node", str(LIST_OPS), str(tfjs_node.node_modules())],
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(proc.stdout)


def test_every_emitted_op_is_in_tfjs(op_list: dict) -> None:
    missing = sorted(op for op in EMITS if op not in op_list["ops"])
    assert not missing, f"tfjs-converter {op_list['version']} has no {missing}"


def test_every_emitted_attr_is_read_by_tfjs(op_list: dict) -> None:
    problems = []
    for op, attrs in sorted(EMITS.items()):
        known = op_list["ops"].get(op, {}).get("attrs", {})
        for name in sorted(attrs):
            if (op, name) in NOT_IN_OP_LIST:
                continue
            if name not in known:
                problems.append(f"{op}.{name}: not in tfjs's op list")
            elif known[name]["notSupported"]:
                problems.append(f"{op}.{name}: tfjs parses it but ignores it")
    assert not problems, f"tfjs-converter {op_list['version']}: " + "; ".join(problems)


def test_allowlist_is_needed(op_list: dict) -> None:
    """An allowlisted attribute tfjs has started to read leaves the list."""
    stale = [k for k in NOT_IN_OP_LIST if k[1] in op_list["ops"].get(k[0], {}).get("attrs", {})]
    assert not stale, stale


def test_mapped_onnx_ops() -> None:
    assert mapped_ops() == sorted(MAPPED), (
        f"added: {sorted(set(mapped_ops()) - set(MAPPED))}, "
        f"removed: {sorted(set(MAPPED) - set(mapped_ops()))}")
