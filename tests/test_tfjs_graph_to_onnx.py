"""TF.js graph-model -> ONNX (``converters.tfjs_to_onnx``) against real TensorFlow.

1. Fixtures (``fixtures/tfjs_graph``, graph-models written by the real ``tensorflowjs``
   converter from SavedModels, with TensorFlow's outputs in ``io.npz``): each converts through
   the public ``modelport.convert`` and onnxruntime reproduces TensorFlow's outputs within the
   manifest's tolerance. Quantized cases also match tfjs run on the dequantized weights (what the
   stored model means); their distance to TensorFlow's float model is the quantization's.
2. The CLI converts every fixture with its parity check, and the report names the engine that
   ran the TF.js side.
3. Per-op parity: every case of ``fixtures/tf_ops`` (one small TF graph per op variant, with
   TensorFlow's outputs) converts and matches; ops TF defines as textbook math with no TF-made
   case are checked against NumPy; every mapped op is exercised somewhere.
4. Every opset 13-21 passes ``onnx.checker`` (full check); constructed graphs check attribute
   variants the fixtures lack (NCHW, EXPLICIT padding, transposes of MatMul, fused Add).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from click.testing import CliRunner

import modelport
from modelport.cli import main
from modelport.converters.tfjs_to_onnx import driver as from_tfjs
from modelport.errors import FormatError, UnsupportedError
from modelport.formats import tfjs_graph
from modelport.models import TensorInfo, TfjsGraph, TfNode
from modelport.models import tfjs_graph as tg_model
from modelport.models.tfjs_graph import a_bool, a_float, a_list, a_str, a_type
from modelport.runtime.tfjs_reference import run as tfjs_reference_run

from .conftest import FIXTURES

GRAPHS = FIXTURES / "tfjs_graph"
ALL = json.loads((FIXTURES / "manifest.json").read_text())
GRAPH_CASES = ALL["tfjs_graph"]["cases"]
OP_CASES = ALL["tf_ops"]["cases"]



def _session(path_or_bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    src = str(path_or_bytes) if not isinstance(path_or_bytes, bytes) else path_or_bytes
    return ort.InferenceSession(src, options, providers=["CPUExecutionProvider"])


def _run(session, arrays: list[np.ndarray]) -> list[np.ndarray]:
    feeds = {}
    for spec, array in zip(session.get_inputs(), arrays):
        # TF.js has no int64 tensors: int64 signature inputs are int32 in the ONNX model too.
        feeds[spec.name] = array.astype(np.int32) if spec.type == "tensor(int32)" else array
    return session.run(None, feeds)


def _max_abs(got: np.ndarray, want: np.ndarray) -> float:
    if want.size == 0:
        return 0.0
    return float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))


def _compare(got: np.ndarray, want: np.ndarray, atol: float, rtol: float, what: str) -> float:
    got = np.asarray(got)
    assert got.shape == want.shape, f"{what}: shape {list(got.shape)} != {list(want.shape)}"
    if want.dtype.kind in "biu":
        assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
        np.testing.assert_array_equal(got, want, err_msg=what)
        return 0.0
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), atol=atol,
                               rtol=rtol, err_msg=what)
    return _max_abs(got, want)


# --- 1. fixtures through modelport.convert --------------------------------------------------

def test_fixtures_present():
    assert len(GRAPH_CASES) >= 11, "run fixtures/make_graph_fixtures.py"
    assert any(c["weight_groups"] > 1 for c in GRAPH_CASES.values())
    assert any(c["quantization"] for c in GRAPH_CASES.values())


@pytest.mark.parametrize("case", sorted(GRAPH_CASES))
def test_fixture_matches_tensorflow(case, tmp_path):
    entry = GRAPH_CASES[case]
    out = tmp_path / f"{case}.onnx"
    # The parity check against the TF reference executor is the CLI test's job; here the
    # judge is TensorFlow's own recording.
    report = modelport.convert(GRAPHS / case, out, validate=False)
    assert report.target_format == "onnx"
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    session = _session(out)
    assert [i.name for i in session.get_inputs()] == entry["inputs"]
    assert [o.name for o in session.get_outputs()] == entry["outputs"]
    with np.load(GRAPHS / case / "io.npz") as data:
        arrays = [data[f"input:{k}"] for k in entry["inputs"]]
        got = _run(session, arrays)
        for key, value in zip(entry["outputs"], got):
            want = data[f"output:{key}"]
            if entry["quantization"]:
                # The stored model is the dequantized one: tfjs ran it; ONNX must agree with
                # tfjs tightly, and is as far from TensorFlow's float model as tfjs is.
                ideal = data[f"tfjs:{key}"]
                _compare(value, ideal, 1e-4, 1e-3, f"{case} {key} vs tfjs (dequantized)")
                error = _max_abs(value, want)
                assert error <= entry["tfjs_max_abs"][key] * 1.01 + 1e-5, \
                    f"{case} {key}: {error} from TensorFlow, tfjs is {entry['tfjs_max_abs'][key]}"
            else:
                _compare(value, want, entry["atol"], entry["rtol"], f"{case} {key}")
    # A CNN keeps at most one Transpose at each boundary.
    transposes = sum(1 for n in model.graph.node if n.op_type == "Transpose")
    assert transposes <= 2 * len(entry["outputs"]), transposes


CLI_CASES = sorted(GRAPH_CASES)


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_converts_with_parity_and_names_the_engines(case, tmp_path):
    out = tmp_path / "model.onnx"
    result = CliRunner().invoke(main, ["convert", str(GRAPHS / case), str(out), "--json",
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["parity"]["passed"], doc["parity"]
    assert doc["parity"]["source_engine"] == "tfjs-reference (NumPy TF ops)"
    assert doc["parity"]["target_engine"] == "onnxruntime CPUExecutionProvider"
    assert doc["source_format"] == "tfjs-graph" and out.is_file()


def test_cli_text_report_names_the_tfjs_engine(tmp_path):
    out = tmp_path / "cnn.onnx"
    result = CliRunner().invoke(main, ["convert", str(GRAPHS / "cnn"), str(out), "--device",
                                       "cpu"])
    assert result.exit_code == 0, result.output
    assert "tfjs-reference (NumPy TF ops) on the source" in result.output
    assert "result: PASS" in result.output


@pytest.mark.parametrize("opset", range(13, 22))
def test_every_opset_passes_the_full_checker(opset):
    import onnx_ir as ir

    for case in ("cnn", "shapes", "embedding", "attention"):
        model = from_tfjs.convert(tfjs_graph.read(GRAPHS / case), opset=opset)
        proto = ir.to_proto(model)
        assert proto.opset_import[0].version == opset
        onnx.checker.check_model(proto, full_check=True)
        entry = GRAPH_CASES[case]
        with np.load(GRAPHS / case / "io.npz") as data:
            got = _run(_session(proto.SerializeToString()),
                       [data[f"input:{k}"] for k in entry["inputs"]])
            for key, value in zip(entry["outputs"], got):
                _compare(value, data[f"output:{key}"], entry["atol"], entry["rtol"],
                         f"{case} {key} at opset {opset}")


def test_opset_outside_range_is_refused():
    graph = tfjs_graph.read(GRAPHS / "dense")
    with pytest.raises(UnsupportedError, match="opset 12 is outside"):
        from_tfjs.convert(graph, opset=12)


# --- 3. per-op parity on TensorFlow's op cases ----------------------------------------------

def _op_case(case_id: str):
    entry = OP_CASES[case_id]
    graph = tfjs_graph.read(FIXTURES / "tf_ops" / case_id / "model.json")
    with np.load(FIXTURES / "tf_ops" / case_id / "io.npz") as data:
        inputs = [data[f"input:{k}"] for k in entry["inputs"]]
        wants = [data[f"output:{k}"] for k in entry["outputs"]]
    return entry, graph, inputs, wants


@pytest.mark.parametrize("case_id", sorted(OP_CASES))
def test_op_case_matches_tensorflow(case_id):
    import onnx_ir as ir

    entry, graph, inputs, wants = _op_case(case_id)
    proto = ir.to_proto(from_tfjs.convert(graph))
    onnx.checker.check_model(proto, full_check=True)
    got = _run(_session(proto.SerializeToString()), inputs)
    assert len(got) == len(wants)
    for k, (value, want) in enumerate(zip(got, wants)):
        _compare(value, want, entry["atol"], entry["rtol"], f"{case_id} output {k}")


def test_unsupported_attribute_fails_with_the_node_named():
    x = TfNode("bn", "FusedBatchNormV3", ["x", "s", "s", "s", "s"],
               {"is_training": a_bool(True), "T": a_type("float32"),
                "exponential_avg_factor": a_float(0.5)})
    s1 = np.ones(2, np.float32)
    graph = _graph([x], {"s": s1}, [("x", [1, 2, 2, 2], "float32")], ["bn"])
    with pytest.raises(UnsupportedError, match="FusedBatchNormV3 node 'bn': is_training"):
        from_tfjs.convert(graph)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_training_mode_batch_norm_uses_the_inputs_moments(data_format):
    """is_training=true (tf_keras LayerNormalization): normalized by the input's own moments
    over every axis but the channel; outputs 1, 2 the batch mean and unbiased variance."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((2, 3, 4, 5)) * 3 + 1).astype(np.float32)
    scale, offset = rng.standard_normal(5 if data_format == "NHWC" else 3).astype(np.float32), \
        rng.standard_normal(5 if data_format == "NHWC" else 3).astype(np.float32)
    empty = np.zeros(0, np.float32)
    node = TfNode("bn", "FusedBatchNormV3", ["x", "scale", "offset", "empty", "empty"],
                  {"is_training": a_bool(True), "T": a_type("float32"),
                   "epsilon": a_float(0.001), "data_format": a_str(data_format)})
    outs = [TfNode(f"out{k}", "Identity", [f"bn:{k}"], {}) for k in range(3)]
    graph = _graph([node, *outs], {"scale": scale, "offset": offset, "empty": empty},
                   [("x", list(x.shape), "float32")], ["out0", "out1", "out2"])
    got = _ort(graph, [x])
    axes = (0, 1, 2) if data_format == "NHWC" else (0, 2, 3)
    shape = [1, 1, 1, -1] if data_format == "NHWC" else [1, -1, 1, 1]
    mean = x.astype(np.float64).mean(axis=axes, keepdims=True)
    var = x.astype(np.float64).var(axis=axes, keepdims=True)
    want = (x - mean) / np.sqrt(var + 0.001) * scale.reshape(shape) + offset.reshape(shape)
    n = x.size // len(scale)
    np.testing.assert_allclose(got[0], want, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(got[1], mean.reshape(-1), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(got[2], var.reshape(-1) * n / (n - 1), atol=1e-4, rtol=1e-5)
    ref = tfjs_reference_run(graph, [x])
    for a, b in zip(ref, got):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


def test_every_mapped_op_is_exercised():
    """Each op with a mapping appears in a TensorFlow-made case (tf_ops or a fixture) or in
    the constructed cases below."""
    seen = {op for e in OP_CASES.values() for op in e["ops"]}
    seen |= {op for e in GRAPH_CASES.values() for op in e["ops"]}
    # graph-models tensorflowjs_converter wrote for Keras models (test_tfjs_converter_graphs)
    oracle = json.loads((FIXTURES / "tfjs_converter" / "graph" / "cases.json").read_text())
    seen |= {op for e in oracle["cases"].values() for op in e["ops"]}
    seen |= CONSTRUCTED_OPS
    # tensorflowjs_converter's control flow (tests/test_control_flow.py)
    control = json.loads((FIXTURES / "control_flow" / "manifest.json").read_text())
    seen |= {op for e in control["tf"]["cases"].values() for op in e["ops"]}
    # TF1 map_fn loops over TensorArrays, NMS inside (tests/test_tensor_arrays.py)
    arrays = json.loads((FIXTURES / "tensor_arrays" / "manifest.json").read_text())
    seen |= {op for e in arrays["cases"].values() for op in e["ops"]}
    missing = sorted(set(from_tfjs.supported_ops()) - seen)
    assert not missing, f"mapped but never tested: {missing}"


# --- 4. constructed graphs for attribute variants -------------------------------------------

def _graph(nodes: list[TfNode], weights: dict, inputs: list[tuple[str, list, str]],
           outputs: list[str]) -> TfjsGraph:
    infos = [TensorInfo(name, f"{name}:0", dtype, shape) for name, shape, dtype in inputs]
    placeholders = [TfNode(name, "Placeholder", [], {"dtype": a_type(dtype)})
                    for name, _, dtype in inputs]
    consts = [TfNode(name, "Const", [], {"dtype": a_type(str(v.dtype))})
              for name, v in weights.items()]
    graph = TfjsGraph(placeholders + consts + nodes, dict(weights), infos,
                      [TensorInfo(o, f"{o}:0", "float32", None) for o in outputs])
    tg_model.check(graph)
    return graph


def _conv_ref(x: np.ndarray, w: np.ndarray, pads: list[tuple[int, int]]) -> np.ndarray:
    """Direct NHWC convolution with stride 1 (the ground truth for the padding variants)."""
    x = np.pad(x, [(0, 0), *pads, (0, 0)])
    kh, kw, _, cout = w.shape
    h, wd = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    out = np.zeros((x.shape[0], h, wd, cout))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nhwc,co->nhwo", x[:, i:i + h, j:j + wd, :], w[i, j])
    return out


def _ort(graph: TfjsGraph, arrays: list[np.ndarray], opset: int | None = None
         ) -> list[np.ndarray]:
    import onnx_ir as ir

    proto = ir.to_proto(from_tfjs.convert(graph, opset=opset))
    onnx.checker.check_model(proto, full_check=True)
    return _run(_session(proto.SerializeToString()), arrays)


def test_explicit_padding_and_nchw_conv():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 6, 2)).astype(np.float32)
    w = rng.standard_normal((3, 2, 2, 4)).astype(np.float32)
    explicit = TfNode("conv", "Conv2D", ["x", "w"], {
        "padding": a_str("EXPLICIT"), "strides": a_list("i", [1, 1, 1, 1]),
        "explicit_paddings": a_list("i", [0, 0, 2, 1, 0, 3, 0, 0]),
        "data_format": a_str("NHWC"), "T": a_type("float32")})
    (got,) = _ort(_graph([explicit], {"w": w}, [("x", [1, 5, 6, 2], "float32")], ["conv"]),
                  [x])
    np.testing.assert_allclose(got, _conv_ref(x, w, [(2, 1), (0, 3)]), atol=1e-4)
    nchw = TfNode("conv", "Conv2D", ["x", "w"], {
        "padding": a_str("VALID"), "strides": a_list("i", [1, 1, 1, 1]),
        "data_format": a_str("NCHW"), "T": a_type("float32")})
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    (got,) = _ort(_graph([nchw], {"w": w}, [("x", [1, 2, 5, 6], "float32")], ["conv"]),
                  [x_nchw])
    np.testing.assert_allclose(got, _conv_ref(x, w, [(0, 0), (0, 0)]).transpose(0, 3, 1, 2),
                               atol=1e-4)


def test_matmul_transposes_and_fused_add():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((5, 4)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    residual = rng.standard_normal((3, 5)).astype(np.float32)
    mm = TfNode("mm", "_FusedMatMul", ["at", "b", "bias", "r"], {
        "transpose_a": a_bool(True), "transpose_b": a_bool(True),
        "fused_ops": a_list("s", ["BiasAdd", "Add", "LeakyRelu"]),
        "leakyrelu_alpha": a_float(0.1), "T": a_type("float32")})
    graph = _graph([mm], {"b": b, "bias": bias},
                   [("at", [4, 3], "float32"), ("r", [3, 5], "float32")], ["mm"])
    (got,) = _ort(graph, [np.ascontiguousarray(a.T), residual])
    z = a @ b.T + bias + residual
    np.testing.assert_allclose(got, np.where(z > 0, z, 0.1 * z), atol=1e-5)


def test_unknown_ops_are_listed_together():
    nodes = [TfNode("a", "Frobnicate", ["x"], {}), TfNode("b", "Relu", ["a"], {}),
             TfNode("c", "Wibble", ["b"], {})]
    graph = _graph(nodes, {}, [("x", [2], "float32")], ["c"])
    with pytest.raises(UnsupportedError, match=r"2 TF node\(s\): a \(Frobnicate\), "
                                               r"c \(Wibble\)"):
        from_tfjs.convert(graph)


def test_malformed_attribute_is_a_format_error():
    node = TfNode("p", "MaxPool", ["x"], {"ksize": a_list("i", [1, 2, 2]),
                                          "strides": a_list("i", [1, 1, 1, 1]),
                                          "padding": a_str("VALID")})
    graph = _graph([node], {}, [("x", [1, 4, 4, 1], "float32")], ["p"])
    with pytest.raises(FormatError, match="ksize.*3 values, not 4"):
        from_tfjs.convert(graph)


CONSTRUCTED_OPS = {"Conv2D", "_FusedMatMul"}


# Elementwise ops TF defines as the textbook functions (no TF-made case in fixtures/tf_ops,
# whose reference executor lacks them): op -> (NumPy function, input maker).
def _floats(lo: float, hi: float):
    return lambda rng, shape: rng.uniform(lo, hi, shape).astype(np.float32)


def _ints(rng, shape):
    return rng.integers(-20, 20, shape).astype(np.int32)


def _nonzero_ints(rng, shape):
    return (rng.integers(1, 7, shape) * rng.choice([-1, 1], shape)).astype(np.int32)


def _specials(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    x.reshape(-1)[:3] = [np.inf, -np.inf, np.nan]
    return x


UNARY = {
    "Acos": (np.arccos, _floats(-0.9, 0.9)), "Asin": (np.arcsin, _floats(-0.9, 0.9)),
    "Atan": (np.arctan, _floats(-3, 3)), "Acosh": (np.arccosh, _floats(1.1, 4)),
    "Asinh": (np.arcsinh, _floats(-3, 3)), "Atanh": (np.arctanh, _floats(-0.9, 0.9)),
    "Sinh": (np.sinh, _floats(-2, 2)), "Cosh": (np.cosh, _floats(-2, 2)),
    "Tan": (np.tan, _floats(-1.2, 1.2)), "IsNan": (np.isnan, _specials),
    "IsInf": (np.isinf, _specials), "Snapshot": (lambda x: x, _floats(-1, 1)),
    "Expm1": (np.expm1, _floats(-2, 2)), "IsFinite": (np.isfinite, _specials),
    "Rint": (np.rint, lambda rng, shape: (rng.integers(-8, 8, shape) / 2).astype(np.float32)),
}
BINARY = {
    "BitwiseAnd": (np.bitwise_and, _ints, _ints),  # ONNX opset 18+
    "BitwiseOr": (np.bitwise_or, _ints, _ints),
    "BitwiseXor": (np.bitwise_xor, _ints, _ints),
    "Mod": (np.fmod, _ints, _nonzero_ints),  # C remainder: the dividend's sign
    "TruncateMod": (np.fmod, _ints, _nonzero_ints),
    "TruncateDiv": (lambda a, b: np.trunc(a / b).astype(np.int32), _ints, _nonzero_ints),
}
CONSTRUCTED_OPS |= set(UNARY) | set(BINARY)


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_op(op):
    fn, make = UNARY[op]
    x = make(np.random.default_rng(2), (3, 4))
    graph = _graph([TfNode("y", op, ["x"], {"T": a_type("float32")})], {},
                   [("x", [3, 4], "float32")], ["y"])
    (got,) = _ort(graph, [x])
    np.testing.assert_allclose(got, fn(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_int_op(op):
    fn, make_a, make_b = BINARY[op]
    rng = np.random.default_rng(3)
    a, b = make_a(rng, (3, 4)), make_b(rng, (3, 4))
    graph = _graph([TfNode("y", op, ["a", "b"], {"T": a_type("int32")})], {},
                   [("a", [3, 4], "int32"), ("b", [3, 4], "int32")], ["y"])
    (got,) = _ort(graph, [a, b], opset=18)
    np.testing.assert_array_equal(got, fn(a, b))


def test_bitwise_needs_opset_18():
    graph = _graph([TfNode("y", "BitwiseAnd", ["a", "a"], {"T": a_type("int32")})], {},
                   [("a", [3], "int32")], ["y"])
    with pytest.raises(UnsupportedError, match="BitwiseAnd from opset 18"):
        from_tfjs.convert(graph, opset=17)


def test_fused_conv_with_batch_norm_and_relu6():
    """_FusedConv2D with fused_ops [FusedBatchNorm, Relu6] (what grappler emits when the
    converter does not fold the norm): args scale, offset, mean, variance, and epsilon."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    scale, offset, mean = (rng.standard_normal(4).astype(np.float32) for _ in range(3))
    var = rng.uniform(0.5, 2, 4).astype(np.float32)
    node = TfNode("conv", "_FusedConv2D", ["x", "w", "scale", "offset", "mean", "var"], {
        "padding": a_str("VALID"), "strides": a_list("i", [1, 1, 1, 1]),
        "data_format": a_str("NHWC"), "fused_ops": a_list("s", ["FusedBatchNorm", "Relu6"]),
        "epsilon": a_float(0.001), "num_args": {"i": "4"}, "T": a_type("float32")})
    graph = _graph([node], {"w": w, "scale": scale, "offset": offset, "mean": mean,
                            "var": var}, [("x", [2, 5, 5, 3], "float32")], ["conv"])
    (got,) = _ort(graph, [x])
    z = (_conv_ref(x, w, [(0, 0), (0, 0)]) - mean) / np.sqrt(var + 0.001) * scale + offset
    np.testing.assert_allclose(got, np.clip(z, 0, 6), atol=1e-4)



def _atan2_inputs(rng, shape):
    y = rng.standard_normal(shape).astype(np.float32)
    x = rng.standard_normal(shape).astype(np.float32)
    y.reshape(-1)[:4], x.reshape(-1)[:4] = [0, 1, -1, 0], [0, 0, 0, -1]
    return y, x


def test_atan2_every_quadrant_and_axis():
    y, x = _atan2_inputs(np.random.default_rng(5), (4, 5))
    graph = _graph([TfNode("a", "Atan2", ["y", "x"], {"T": a_type("float32")})], {},
                   [("y", [4, 5], "float32"), ("x", [4, 5], "float32")], ["a"])
    (got,) = _ort(graph, [y, x])
    np.testing.assert_allclose(got, np.arctan2(y, x), atol=1e-5)


def _i32(*values):
    return np.asarray(values, np.int32)


# op -> (nodes, constants, inputs, NumPy of the inputs, opset); checked against NumPy. Each
# graph reads a fed input, so the op is mapped, never folded away as a constant.
def _structural():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 6, 3)).astype(np.float32)
    s2b = ("SpaceToBatchND", ["x", "block", "pads"])
    b2s_in = rng.standard_normal((8, 3, 2, 3)).astype(np.float32)

    def space_to_batch(a):
        a = np.pad(a, [(0, 0), (1, 1), (0, 2), (0, 0)])
        b, h, w, c = a.shape
        a = a.reshape(b, h // 2, 2, w // 4, 4, c).transpose(2, 4, 0, 1, 3, 5)
        return a.reshape(b * 8, h // 2, w // 4, c)

    def batch_to_space(a):
        a = a.reshape(2, 4, 1, 3, 2, 3).transpose(2, 3, 0, 4, 1, 5).reshape(1, 6, 8, 3)
        return a[:, 1:5, 0:7]

    indices = _i32(0, 2, 0).reshape(3, 1)
    updates = rng.standard_normal((3, 4)).astype(np.float32)
    base = rng.standard_normal((3, 4)).astype(np.float32)

    def scatter(into, add):
        out = into.copy()
        for i, u in zip(indices[:, 0], updates):
            out[i] = out[i] + u if add else u
        return out

    return {
        "SpaceToBatchND": ([TfNode("y", *s2b, {})],
                           {"block": _i32(2, 4), "pads": _i32(1, 1, 0, 2).reshape(2, 2)},
                           [("x", x)], lambda: space_to_batch(x), None),
        "BatchToSpaceND": ([TfNode("y", "BatchToSpaceND", ["x", "block", "crops"], {})],
                           {"block": _i32(2, 4), "crops": _i32(1, 1, 0, 1).reshape(2, 2)},
                           [("x", b2s_in)], lambda: batch_to_space(b2s_in), None),
        "ReverseV2": ([TfNode("y", "ReverseV2", ["x", "axes"], {})], {"axes": _i32(1, -1)},
                      [("x", x)], lambda: x[:, ::-1, :, ::-1], None),
        "EuclideanNorm": ([TfNode("y", "EuclideanNorm", ["x", "axes"],
                                  {"keep_dims": a_bool(True)})], {"axes": _i32(1, 2)},
                          [("x", x)],
                          lambda: np.sqrt((x.astype(np.float64) ** 2).sum((1, 2), keepdims=True)),
                          None),
        "ShapeN": ([TfNode("y", "ShapeN", ["x", "x"], {"out_type": a_type("int32")})], {},
                   [("x", x)], lambda: np.asarray(x.shape, np.int32), None),
        "BroadcastArgs": ([TfNode("y", "BroadcastArgs", ["s0", "s1"], {})],
                          {"s1": _i32(4, 1)},
                          [("s0", _i32(3, 1, 5))], lambda: _i32(3, 4, 5), None),
        "ScatterNd": ([TfNode("y", "ScatterNd", ["i", "u", "shape"], {})],
                      {"i": indices, "shape": _i32(3, 4)}, [("u", updates)],
                      lambda: scatter(np.zeros((3, 4), np.float32), True), 16),
        "TensorScatterUpdate": ([TfNode("y", "TensorScatterUpdate", ["b", "i1", "u1"], {})],
                                {"i1": _i32(2, 0).reshape(2, 1),
                                 "u1": updates[:2]}, [("b", base)],
                                lambda: np.stack([updates[1], base[1], updates[0]]), None),
        "TensorScatterAdd": ([TfNode("y", "TensorScatterAdd", ["b", "i", "u"], {})],
                             {"i": indices, "u": updates}, [("b", base)],
                             lambda: scatter(base, True), 16),
    }


STRUCTURAL = _structural()
CONSTRUCTED_OPS |= set(STRUCTURAL) | {"Atan2"}


@pytest.mark.parametrize("op", sorted(STRUCTURAL))
def test_structural_op(op):
    nodes, consts, inputs, expected, opset = STRUCTURAL[op]
    graph = _graph(nodes, consts, [(name, list(a.shape), str(a.dtype)) for name, a in inputs],
                   ["y"])
    (got,) = _ort(graph, [a for _, a in inputs], opset=opset)
    want = expected()
    assert got.shape == want.shape
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), atol=1e-5)


def test_tf1_while_loop_is_lifted_not_corrupt():
    """A TF1 while loop's NextIteration -> Merge back edge is a legal cycle: the graph reads,
    and the conversion lifts the frame to a While (an ONNX Loop) that counts as TF does."""
    nodes = [
        TfNode("enter", "Enter", ["x"], {"frame_name": a_str("loop")}),
        TfNode("merge", "Merge", ["enter", "next"], {}),
        TfNode("less", "Less", ["merge", "limit"], {}),
        TfNode("cond", "LoopCond", ["less"], {}),
        TfNode("switch", "Switch", ["merge", "cond"], {}),
        TfNode("body", "AddV2", ["switch:1", "one"], {}),
        TfNode("next", "NextIteration", ["body"], {}),
        TfNode("exit", "Exit", ["switch"], {}),
    ]
    graph = _graph(nodes, {"limit": np.float32(10), "one": np.float32(1)},
                   [("x", [], "float32")], ["exit"])
    assert [n.name for n in tg_model.order(graph)].index("merge") < \
        [n.name for n in tg_model.order(graph)].index("next")
    model = from_tfjs.convert(graph)
    assert "Loop" in {n.op_type for n in model.graph}
    session = _session(ir.to_proto(model).SerializeToString())
    for x, want in ((0.5, 10.5), (12.0, 12.0)):  # x + 1 while below 10
        assert float(_run(session, [np.asarray(x, np.float32)])[0]) == want


def test_other_cycles_stay_format_errors():
    nodes = [TfNode("a", "Relu", ["b"], {}), TfNode("b", "Relu", ["a"], {})]
    with pytest.raises(FormatError, match="cycle"):
        _graph(nodes, {}, [("x", [2], "float32")], ["a"])


@pytest.mark.parametrize("bounds", [(-1, 0), (1, 2), (0, -1), (-1, -1), (2, 0)])
@pytest.mark.parametrize("dtype", ["float32", "bool"])
def test_matrix_band_part(bounds, dtype):
    """MatrixBandPart (Keras's causal attention mask is (-1, 0)) against NumPy's tril/triu, on
    floats and on a boolean mask, through the TF reference and onnxruntime."""
    lower, upper = bounds
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 5)).astype(np.float32)
    if dtype == "bool":
        x = x > -0.5
    weights = {"lower": np.asarray(lower, np.int64), "upper": np.asarray(upper, np.int64)}
    node = TfNode("band", "MatrixBandPart", ["x", "lower", "upper"], {"T": a_type(dtype)})
    graph = _graph([node], weights, [("x", [None, 4, 5], dtype)], ["band"])
    keep = np.ones((4, 5), bool)
    if lower >= 0:
        keep &= np.triu(np.ones((4, 5), bool), -lower)
    if upper >= 0:
        keep &= np.tril(np.ones((4, 5), bool), upper)
    want = np.where(keep, x, np.zeros((), x.dtype))
    np.testing.assert_array_equal(tfjs_reference_run(graph, [x])[0], want)
    np.testing.assert_array_equal(_ort(graph, [x])[0], want)


def test_space_batch_with_run_time_paddings_and_crops():
    """SpaceToBatchND / BatchToSpaceND whose paddings and crops are graph inputs, on dynamic
    spatial sizes: computed at run time in ONNX, equal to the TF reference at several sizes."""
    block = np.asarray([2, 2], np.int32)
    nodes = [TfNode("s2b", "SpaceToBatchND", ["x", "block", "pads"], {"T": a_type("float32")}),
             TfNode("b2s", "BatchToSpaceND", ["y", "block", "crops"], {"T": a_type("float32")})]
    graph = _graph(nodes, {"block": block}, [("x", [None, None, None, 2], "float32"),
                                             ("pads", [2, 2], "int32"),
                                             ("y", [None, None, None, 3], "float32"),
                                             ("crops", [2, 2], "int32")], ["s2b", "b2s"])
    import onnx_ir as ir

    session = _session(ir.to_proto(from_tfjs.convert(graph)).SerializeToString())
    rng = np.random.default_rng(2)
    for x_shape, pads, y_shape, crops in (((1, 5, 6, 2), [[1, 0], [0, 2]], (8, 3, 2, 3),
                                           [[1, 0], [0, 1]]),
                                          ((2, 4, 3, 2), [[0, 0], [2, 1]], (4, 2, 5, 3),
                                           [[0, 2], [3, 0]])):
        arrays = [rng.standard_normal(x_shape).astype(np.float32), np.asarray(pads, np.int32),
                  rng.standard_normal(y_shape).astype(np.float32), np.asarray(crops, np.int32)]
        want = tfjs_reference_run(graph, arrays)
        got = _run(session, arrays)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_cast_of_a_value_the_probe_cannot_run_keeps_its_cast():
    """The probe cannot run BitwiseAnd (no TF reference kernel): the Cast after it takes its
    source dtype from SrcT, not a float32 guess that would drop it (an int32 reaching Add
    failed onnx.checker: exit 70)."""
    nodes = [TfNode("bits", "BitwiseAnd", ["n", "mask"], {"T": a_type("int32")}),
             TfNode("f", "Cast", ["bits"], {"SrcT": a_type("int32"), "DstT": a_type("float32")}),
             TfNode("out", "AddV2", ["f", "half"], {"T": a_type("float32")})]
    graph = _graph(nodes, {"mask": np.asarray(6, np.int32), "half": np.asarray(0.5, np.float32)},
                   [("n", [4], "int32")], ["out"])
    n = np.asarray([1, 2, 7, 12], np.int32)
    got, = _ort(graph, [n], opset=18)
    np.testing.assert_array_equal(got, (n & 6).astype(np.float32) + 0.5)
