"""The NumPy TF-op reference (``modelport.runtime.tfjs_reference``) against real TensorFlow.

1. ``CASES``: one tiny TF.js graph-model per op variant (fixtures/tf_ops, made by
   ``fixtures/make_tf_op_cases.py`` from real GraphDefs, with TensorFlow's outputs), read with
   modelport's graph-model reader and run by the reference. Tolerances are data in the
   manifest (``atol``/``rtol``, 1e-5 unless a case says why).
2. Coverage: every registered op appears in some case's stored graph.
3. Graph-level behaviour: several inputs and outputs, multi-output ops, inputs by signature key,
   tensor name, node name or list, outputs by key/tensor/node, pruning, dtype conversion.
4. Errors: unknown ops, bad feeds, unknown outputs, malformed nodes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelport.errors import EngineRunError, FormatError, UnsupportedError
from modelport.formats import tfjs_graph
from modelport.models import TensorInfo, TfjsGraph, TfNode
from modelport.models.tfjs_graph import a_float, a_int, a_list, a_str, a_type
from modelport.runtime.tfjs_reference import REGISTRY, run, supported_ops
from tests.conftest import FIXTURES

TF_OPS = FIXTURES / "tf_ops"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text()).get("tf_ops", {"cases": {}})
CASES = MANIFEST["cases"]


def _io(case_id: str) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    entry = CASES[case_id]
    with np.load(TF_OPS / case_id / "io.npz") as data:
        feeds = {k: data[f"input:{k}"] for k in entry["inputs"]}
        wants = [data[f"output:{k}"] for k in entry["outputs"]]
    return feeds, wants


def _load(case_id: str) -> TfjsGraph:
    return tfjs_graph.read(TF_OPS / case_id / "model.json")


def _error(got: np.ndarray, want: np.ndarray) -> float:
    if want.size == 0:
        return 0.0
    with np.errstate(invalid="ignore"):  # inf - inf where both are the same infinity
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    return float(np.max(np.where(np.isnan(diff), 0.0, diff)))


def _check(got: np.ndarray, want: np.ndarray, atol: float, rtol: float, what: str) -> float:
    got = np.asarray(got)
    assert got.shape == want.shape, f"{what}: shape {list(got.shape)} != {list(want.shape)}"
    if want.dtype.kind in "biu":
        assert got.dtype.kind == want.dtype.kind, f"{what}: dtype {got.dtype} vs {want.dtype}"
        np.testing.assert_array_equal(got, want, err_msg=what)
        return 0.0
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), atol=atol,
                               rtol=rtol, err_msg=what)
    return _error(got, want)


# --- 1. every case against TensorFlow -----------------------------------------------------------

def test_fixtures_present():
    assert len(CASES) > 150, "fixtures/tf_ops is missing: run fixtures/make_tf_op_cases.py"
    assert MANIFEST["versions"]["tensorflow"].startswith("2.")


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_case_matches_tensorflow(case_id):
    entry = CASES[case_id]
    graph = _load(case_id)
    assert sorted({n.op for n in graph.nodes}) == entry["ops"]
    feeds, wants = _io(case_id)
    outs = run(graph, feeds)
    assert len(outs) == len(wants)
    for k, (got, want) in enumerate(zip(outs, wants)):
        _check(got, want, entry["atol"], entry["rtol"], f"{case_id} output {k}")


def test_tolerances_are_explained():
    for case_id, entry in CASES.items():
        if entry["atol"] > 1e-5 or entry["rtol"] > 1e-5:
            assert entry.get("why"), f"{case_id}: a tolerance looser than 1e-5 needs a reason"


# --- 2. coverage --------------------------------------------------------------------------------

def test_every_registered_op_has_a_case():
    covered = {op for entry in CASES.values() for op in entry["ops"]}
    # control flow's TF cases: fixtures/control_flow (tests/test_control_flow.py)
    control = json.loads((FIXTURES / "control_flow" / "manifest.json").read_text())
    covered |= {op for entry in control["tf"]["cases"].values() for op in entry["ops"]}
    # graph-models tensorflowjs_converter wrote for Keras models, run against Keras's outputs
    # in tests/test_tfjs_converter_graphs.py (SpaceToBatchND, DivNoNan...)
    oracle = json.loads((FIXTURES / "tfjs_converter" / "graph" / "cases.json").read_text())
    covered |= {op for entry in oracle["cases"].values() for op in entry["ops"]}
    # TF1 map_fn loops over TensorArrays, NMS inside (tests/test_tensor_arrays.py)
    arrays = json.loads((FIXTURES / "tensor_arrays" / "manifest.json").read_text())
    covered |= {op for entry in arrays["cases"].values() for op in entry["ops"]}
    missing = sorted(set(REGISTRY) - covered)
    assert not missing, f"registered ops without a TF ground-truth case: {missing}"


def test_every_case_op_is_supported():
    ops = {op for entry in CASES.values() for op in entry["ops"]}
    assert ops <= supported_ops()


# --- 3. graph-level behaviour -------------------------------------------------------------------

MULTI = "graph-multi-io"


def test_multi_io_inputs_by_key_tensor_node_and_list():
    graph = _load(MULTI)
    feeds, wants = _io(MULTI)
    assert [i.key for i in graph.inputs] == ["x", "k"]
    by_key = run(graph, feeds)
    by_tensor = run(graph, {f"{k}:0": v for k, v in feeds.items()})
    by_list = run(graph, [feeds["x"], feeds["k"]])
    assert len(by_key) == 4
    for outs in (by_tensor, by_list):
        for a, b in zip(outs, by_key):
            np.testing.assert_array_equal(a, b)
    for got, want in zip(by_key, wants):
        _check(got, want, 1e-5, 1e-5, MULTI)


def test_inputs_by_signature_key_distinct_from_the_node_name():
    graph = _load(MULTI)
    feeds, wants = _io(MULTI)
    graph.inputs[0].key, graph.inputs[1].key = "first", "second"
    outs = run(graph, {"second": feeds["k"], "first": feeds["x"]})
    for got, want in zip(outs, wants):
        _check(got, want, 1e-5, 1e-5, MULTI)
    same = run(graph, {"k": feeds["k"], "x:0": feeds["x"]})  # node name, tensor name
    for a, b in zip(same, outs):
        np.testing.assert_array_equal(a, b)


def test_the_parity_engine_runs_the_reference():
    from modelport.runtime.engines import TfjsGraphEngine

    graph = _load("converter-cnn")
    feeds, wants = _io("converter-cnn")
    engine = TfjsGraphEngine(graph, engine="reference")
    assert "reference" in engine.label
    outs = engine.run([feeds[i.key] for i in graph.inputs])
    for got, want in zip(outs, wants):
        _check(got, want, 1e-5, 1e-5, "converter-cnn via TfjsGraphEngine")


def test_outputs_by_key_tensor_and_node_name_in_the_asked_order():
    graph = _load(MULTI)
    feeds, wants = _io(MULTI)
    topk = next(n for n in graph.nodes if n.op == "TopKV2")
    unpack = next(n for n in graph.nodes if n.op == "Unpack")
    outs = run(graph, feeds, ["output_2", f"{topk.name}:1", "output_0", f"{unpack.name}:1",
                              unpack.name])
    np.testing.assert_allclose(outs[0], wants[2], atol=1e-6)
    np.testing.assert_array_equal(outs[1], wants[1] - feeds["k"])  # raw TopKV2 indices
    np.testing.assert_allclose(outs[2], wants[0], atol=1e-6)
    np.testing.assert_array_equal(outs[3], feeds["x"][1])
    np.testing.assert_array_equal(outs[4], feeds["x"][0])
    assert outs[1].dtype == np.int32


def test_only_needed_nodes_run():
    """A graph with an unsupported op on a branch the outputs do not need still runs."""
    graph = _load(MULTI)
    graph.nodes.append(TfNode("exotic", "NotARealOp", [graph.inputs[0].tensor]))
    feeds, wants = _io(MULTI)
    outs = run(graph, feeds)
    _check(outs[0], wants[0], 1e-5, 1e-5, MULTI)
    with pytest.raises(UnsupportedError, match="NotARealOp"):
        run(graph, feeds, ["exotic"])


def test_multi_output_op_outputs_by_index():
    graph = _load("Unpack")
    feeds, wants = _io("Unpack")
    unpack = next(n for n in graph.nodes if n.op == "Unpack")
    outs = run(graph, feeds, [f"{unpack.name}:{k}" for k in (2, 0, 1)])
    for got, want in zip(outs, [wants[2], wants[0], wants[1]]):
        np.testing.assert_array_equal(got, want)


def test_plumbing_control_inputs_and_identity_n():
    graph = _load("graph-plumbing")
    assert any(ref.startswith("^") for n in graph.nodes for ref in n.inputs)
    feeds, wants = _io("graph-plumbing")
    outs = run(graph, feeds["x"])  # a bare array for a one-input graph
    for got, want in zip(outs, wants):
        np.testing.assert_array_equal(got, want)


def test_feeds_are_converted_to_the_placeholder_dtype():
    graph = _load("Conv2D-valid")
    feeds, wants = _io("Conv2D-valid")
    out = run(graph, {"x": feeds["x"].astype(np.float64)})[0]
    assert out.dtype == np.float32
    _check(out, wants[0], 1e-5, 1e-5, "float64 feed")


def test_placeholder_with_default_can_be_fed():
    graph = _load("graph-placeholder-default")
    feeds, _ = _io("graph-placeholder-default")
    node = next(n for n in graph.nodes if n.op == "PlaceholderWithDefault")
    bias = np.full((2, 3), 10.0, np.float32)
    out = run(graph, {"x": feeds["x"], node.name: bias})[0]
    np.testing.assert_allclose(out, feeds["x"] + bias)


def _graph(nodes: list[TfNode], weights: dict, inputs: list[str], outputs: list[str]
           ) -> TfjsGraph:
    infos = [TensorInfo(n, f"{n}:0", "float32", None) for n in inputs]
    outs = [TensorInfo(f"out{i}", t, "float32", None) for i, t in enumerate(outputs)]
    return TfjsGraph(nodes, weights, infos, outs)


def _placeholder(name: str, dtype: str = "float32") -> TfNode:
    return TfNode(name, "Placeholder", [], {"dtype": a_type(dtype)})


def _const(name: str, value) -> tuple[TfNode, np.ndarray]:
    array = np.asarray(value)
    return TfNode(name, "Const", [], {"dtype": a_type(str(array.dtype))}), array


def test_three_argument_where_is_select_v2():
    """TF.js graphs may carry ``Where(cond, x, y)``; it broadcasts like SelectV2."""
    nodes = [_placeholder("c", "bool"), _placeholder("a"), _placeholder("b"),
             TfNode("w", "Where", ["c", "a", "b"], {"T": a_type("float32")})]
    graph = _graph(nodes, {}, ["c", "a", "b"], ["w:0"])
    c = np.array([[True], [False]])
    a, b = np.arange(3, dtype=np.float32), -np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(run(graph, [c, a, b])[0], np.where(c, a, b))


def test_hand_written_graph_runs_end_to_end():
    """A graph built in memory (as the converters build them): conv -> fused bias+relu6 ->
    pool -> reshape -> matmul -> softmax, written and read back as a graph-model."""
    rng = np.random.default_rng(0)
    w, w_arr = _const("w", rng.standard_normal((3, 3, 2, 4)).astype(np.float32))
    b, b_arr = _const("b", rng.standard_normal(4).astype(np.float32))
    shape, shape_arr = _const("shape", np.array([-1, 16], np.int32))
    m, m_arr = _const("m", rng.standard_normal((16, 3)).astype(np.float32))
    conv = TfNode("conv", "_FusedConv2D", ["x", "w", "b"],
                  {"T": a_type("float32"), "strides": a_list("i", [1, 1, 1, 1]),
                   "padding": a_str("SAME"), "fused_ops": a_list("s", ["BiasAdd", "Relu6"]),
                   "num_args": a_int(1), "epsilon": a_float(0.0)})
    pool = TfNode("pool", "MaxPool", ["conv"], {"ksize": a_list("i", [1, 2, 2, 1]),
                                                "strides": a_list("i", [1, 2, 2, 1]),
                                                "padding": a_str("VALID")})
    flat = TfNode("flat", "Reshape", ["pool", "shape"])
    mm = TfNode("mm", "MatMul", ["flat", "m"])
    sm = TfNode("sm", "Softmax", ["mm"])
    graph = _graph([_placeholder("x"), w, b, shape, m, conv, pool, flat, mm, sm],
                   {"w": w_arr, "b": b_arr, "shape": shape_arr, "m": m_arr}, ["x"], ["sm:0"])
    x = rng.standard_normal((2, 4, 4, 2)).astype(np.float32)
    y = run(graph, [x])[0]
    # the same by hand: im2col in a loop
    xp = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    c = np.zeros((2, 4, 4, 4), np.float64)
    for i in range(4):
        for j in range(4):
            c[:, i, j] = np.tensordot(xp[:, i:i + 3, j:j + 3], w_arr, axes=3)
    c = np.clip(c + b_arr, 0, 6)
    p = c.reshape(2, 2, 2, 2, 2, 4).max(axis=(2, 4)).reshape(2, 16)
    z = p @ m_arr
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), atol=1e-5)
    assert y.sum(axis=1) == pytest.approx([1, 1], abs=1e-6)


# --- 4. errors ----------------------------------------------------------------------------------

def _tiny(op: str = "Relu", attrs: dict | None = None, extra_inputs: list[str] = ()) -> TfjsGraph:
    return _graph([_placeholder("x"), TfNode("act", op, ["x", *extra_inputs], attrs or {})],
                  {}, ["x"], ["act:0"])


def test_unknown_op_names_the_op_and_the_node():
    with pytest.raises(UnsupportedError, match=r"'act'.*'Frobnicate'") as info:
        run(_tiny("Frobnicate"), [np.zeros(3, np.float32)])
    assert "supported:" in str(info.value) and "Conv2D" in str(info.value)


def test_unsupported_attribute_value_names_the_node():
    graph = _tiny("MaxPool", {"ksize": a_list("i", [1, 2, 2, 1]),
                              "strides": a_list("i", [1, 1, 1, 1]), "padding": a_str("CAUSAL")})
    with pytest.raises(UnsupportedError, match=r"MaxPool node 'act'.*CAUSAL"):
        run(graph, [np.zeros((1, 3, 3, 1), np.float32)])


def test_training_mode_batch_norm_with_running_averages_is_refused():
    nodes = [_placeholder("x")]
    weights = {}
    for name in ("s", "o", "m", "v"):
        node, array = _const(name, np.ones(2, np.float32))
        nodes.append(node)
        weights[name] = array
    nodes.append(TfNode("bn", "FusedBatchNormV3", ["x", "s", "o", "m", "v"],
                        {"is_training": {"b": True}, "exponential_avg_factor": {"f": 0.5}}))
    with pytest.raises(UnsupportedError, match="is_training"):
        run(_graph(nodes, weights, ["x"], ["bn:0"]), [np.ones((1, 2, 2, 2), np.float32)])


def test_unknown_fused_op_is_refused():
    w, w_arr = _const("w", np.ones((1, 1, 1, 1), np.float32))
    conv = TfNode("conv", "_FusedConv2D", ["x", "w"],
                  {"strides": a_list("i", [1, 1, 1, 1]), "padding": a_str("VALID"),
                   "fused_ops": a_list("s", ["Swish"]), "num_args": a_int(0)})
    graph = _graph([_placeholder("x"), w, conv], {"w": w_arr}, ["x"], ["conv:0"])
    with pytest.raises(UnsupportedError, match="Swish"):
        run(graph, [np.ones((1, 2, 2, 1), np.float32)])


def test_shape_errors_name_the_node():
    graph = _graph([_placeholder("a"), _placeholder("b"), TfNode("mm", "MatMul", ["a", "b"])],
                   {}, ["a", "b"], ["mm:0"])
    with pytest.raises(FormatError, match=r"MatMul node 'mm'.*\[2, 3\]"):
        run(graph, [np.ones((2, 3), np.float32), np.ones((2, 3), np.float32)])


def test_bad_feeds():
    graph = _tiny()
    with pytest.raises(ValueError, match="got 2 inputs"):
        run(graph, [np.zeros(1), np.zeros(1)])
    with pytest.raises(ValueError, match="unknown input 'y'"):
        run(graph, {"y": np.zeros(1)})
    with pytest.raises(ValueError, match="fed twice"):
        run(graph, {"x": np.zeros(1), "x:0": np.zeros(1)})
    with pytest.raises(FormatError, match="not fed"):
        run(graph, {})


def test_unknown_output():
    with pytest.raises(ValueError, match="unknown output 'nope'"):
        run(_tiny(), [np.zeros(1, np.float32)], ["nope"])


def test_reading_a_missing_output_index():
    graph = _tiny()
    with pytest.raises(FormatError, match="has 1 outputs"):
        run(graph, [np.zeros(1, np.float32)], ["act:3"])


def test_out_of_range_gather_is_an_error_like_tf():
    p, p_arr = _const("p", np.ones((3, 2), np.float32))
    axis, axis_arr = _const("axis", np.array(0, np.int32))
    nodes = [_placeholder("i", "int32"), p, axis, TfNode("g", "GatherV2", ["p", "i", "axis"])]
    graph = _graph(nodes, {"p": p_arr, "axis": axis_arr}, ["i"], ["g:0"])
    with pytest.raises(EngineRunError, match=r"GatherV2 node 'g'.*outside \[0, 3\)"):
        run(graph, [np.array([0, 3], np.int32)])


def _indexed(op: str, x_dtype: str = "float32") -> TfjsGraph:
    nodes = [_placeholder("x", x_dtype), _placeholder("i", "int32"), _placeholder("u", x_dtype),
             TfNode("s", op, ["x", "i", "u"])]
    return _graph(nodes, {}, ["x", "i", "u"], ["s:0"])


def test_out_of_range_tensor_scatter_update_is_an_error_like_tf():
    graph = _indexed("TensorScatterUpdate")
    x, u = np.zeros((4, 3), np.float32), np.ones((2, 3), np.float32)
    with pytest.raises(EngineRunError, match=r"TensorScatterUpdate node 's'.*out of range"):
        run(graph, [x, np.array([[1], [4]], np.int32), u])
    with pytest.raises(EngineRunError, match=r"TensorScatterUpdate node 's'.*out of range"):
        run(graph, [x, np.array([[1], [-1]], np.int32), u])
    with pytest.raises(FormatError, match=r"updates of shape \[2, 2\], expected \[2, 3\]"):
        run(graph, [x, np.array([[1], [2]], np.int32), np.ones((2, 2), np.float32)])


def test_tensor_scatter_update_repeated_index_keeps_the_last_update():
    graph = _indexed("TensorScatterUpdate")
    y = run(graph, [np.zeros((2, 2), np.float32), np.array([[1, 1], [1, 1]], np.int32),
                    np.array([1.0, 2.0], np.float32)])[0]
    np.testing.assert_array_equal(y, [[0, 0], [0, 2]])


def test_reverse_v2_refuses_a_repeated_axis():
    axis, axis_arr = _const("axis", np.array([1, -1], np.int32))
    nodes = [_placeholder("x"), axis, TfNode("r", "ReverseV2", ["x", "axis"])]
    graph = _graph(nodes, {"axis": axis_arr}, ["x"], ["r:0"])
    with pytest.raises(FormatError, match=r"ReverseV2 node 'r'.*twice"):
        run(graph, [np.zeros((2, 3), np.float32)])


def test_broadcast_args_refuses_incompatible_shapes():
    nodes = [_placeholder("a", "int32"), _placeholder("b", "int32"),
             TfNode("ba", "BroadcastArgs", ["a", "b"])]
    graph = _graph(nodes, {}, ["a", "b"], ["ba:0"])
    with pytest.raises(FormatError, match=r"BroadcastArgs node 'ba'.*do not broadcast"):
        run(graph, [np.array([2, 3], np.int32), np.array([4], np.int32)])


@pytest.mark.parametrize("op,small,huge", [
    ("Pad", [[0, 0], [0, 1]], [[0, 0], [0, 1 << 31]]),  # paddings
    ("MirrorPad", [[0, 0], [0, 1]], [[0, 0], [0, 1 << 31]]),
    ("Tile", [1, 2], [1, 1 << 30]),  # multiples
])
def test_output_past_the_check_cap_is_refused_before_it_is_made(op, small, huge):
    """A constant asking for a 2**31-column output (8 GiB) is refused by name before NumPy
    allocates it; the same node with a small constant runs."""
    def graph(value):
        const, array = _const("k", np.asarray(value, np.int64))
        attrs = {"mode": a_str("REFLECT")} if op == "MirrorPad" else {}
        return _graph([_placeholder("x"), const, TfNode("y", op, ["x", "k"], attrs)],
                      {"k": array}, ["x"], ["y:0"])

    x = np.ones((2, 3), np.float32)
    assert run(graph(small), [x])[0].shape == (2, 4 if "Pad" in op else 6)
    with pytest.raises(UnsupportedError, match=rf"{op} node 'y': an output of shape \[2, \d+\] "
                                               r"\(\d+ elements\) is past what a check allocates"):
        run(graph(huge), [x])
