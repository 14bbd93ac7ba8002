"""Graph-models exactly as ``tensorflowjs_converter`` 4.22 writes them for Keras models
(``fixtures/tfjs_converter/graph``, made by ``fixtures/make_converter_graph_fixtures.py``) convert
to ONNX with the default parity check passing, and onnxruntime reproduces what Keras computed.

What the converter writes there that hand-made graphs lack: dilated convolutions as
``SpaceToBatchND -> conv -> BatchToSpaceND`` (with the conv's rank unknown to TF), ``Conv1D`` as
``ExpandDims -> Conv2D -> Squeeze`` inside that chain, signatures from ``--output_node_names``
that name an op without ``:0`` (``model/global_pooling/Mean``) or output N of a multi-output op
(``.../split:1``), several outputs, Keras 3 ``export()`` graphs.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import modelport
from modelport.converters.tfjs_to_onnx import dilation
from modelport.errors import FormatError
from modelport.formats import tfjs_graph

from .conftest import FIXTURES

GRAPHS = FIXTURES / "tfjs_converter" / "graph"
ORACLE = json.loads((GRAPHS / "cases.json").read_text())["cases"]
# Cases modelport does not convert yet, and why (strict: one that starts passing must leave).
GAPS: dict[str, str] = {}  # (image_preprocessing_h5's tf.cond converts since the TF1 lift)


def _session(path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_outputs(name: str, path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """onnxruntime's outputs for the case's recorded inputs, and Keras's, in the model's order."""
    entry = ORACLE[name]
    session = _session(path)
    with np.load(GRAPHS / name / "io.npz") as data:
        feeds = {key: data[f"input:{i}"] for i, key in enumerate(entry["input_order"])}
        wants = [data[f"output:{i}"] for i in range(len(entry["output_order"]))]
    return session.run(entry["output_order"], feeds), wants


def assert_matches(name: str, got: list[np.ndarray], wants: list[np.ndarray]) -> None:
    """``got`` is what Keras computed; for a quantized case (the converter's quantization
    flags), what real tfjs computed with the stored (dequantized) weights, and as far from
    Keras as tfjs is."""
    entry = ORACLE[name]
    tfjs = []
    if entry.get("quantization"):
        with np.load(GRAPHS / name / "io.npz") as data:
            tfjs = [data[f"tfjs:{i}"] for i in range(len(wants))]
    for k, (g, w) in enumerate(zip(got, wants)):
        assert g.shape == w.shape, (name, k, g.shape, w.shape)
        if not tfjs:
            np.testing.assert_allclose(g, w, atol=2e-5, rtol=1e-4, err_msg=f"{name} output {k}")
            continue
        np.testing.assert_allclose(g, tfjs[k], atol=1e-4, rtol=1e-3,
                                   err_msg=f"{name} output {k} vs tfjs (dequantized)")
        error = float(np.max(np.abs(g.astype(np.float64) - w)))
        assert error <= entry["tfjs_max_abs"][k] * 1.01 + 1e-5, (name, k, error)


def test_oracle_present():
    assert len(ORACLE) >= 20, "run fixtures/make_converter_graph_fixtures.py"
    ops = set().union(*(set(e["ops"]) for e in ORACLE.values()))
    assert {"SpaceToBatchND", "BatchToSpaceND", "DepthwiseConv2dNative", "Squeeze"} <= ops
    assert any(":" not in name for e in ORACLE.values() for name in e["signature_outputs"])
    assert {"uint8", "float16"} <= {q.split("quantize_")[1].split("=")[0]
                                   for e in ORACLE.values() for q in e.get("quantization") or []}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(reason=GAPS[n], strict=True)) if n in GAPS else n
    for n in sorted(ORACLE)])
def test_converter_graph_model_matches_keras(name, tmp_path):
    out = tmp_path / "model.onnx"
    report = modelport.convert(GRAPHS / name, out, device="cpu")
    assert report.parity is not None and report.parity.passed
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    got, wants = onnx_outputs(name, out)
    assert_matches(name, got, wants)


@pytest.mark.parametrize("name", sorted(n for n in ORACLE if n != "image_preprocessing_h5"))
def test_tf_reference_matches_keras(name):
    """The NumPy TF reference (the parity check's source engine) computes what Keras did on
    every oracle graph (tf.cond's Switch/Merge aside: control flow has its own tests)."""
    from modelport.runtime.tfjs_reference import run

    entry = ORACLE[name]
    graph = tfjs_graph.read(GRAPHS / name)
    with np.load(GRAPHS / name / "io.npz") as data:
        feeds = {entry["signature_inputs"][key]: data[f"input:{i}"]
                 for i, key in enumerate(entry["input_order"])}
        wants = [data[f"output:{i}"] for i in range(len(entry["output_order"]))]
    outputs = [entry["signature_outputs"].get(k, k) for k in entry["output_order"]]
    assert_matches(name, run(graph, feeds, outputs), wants)


def test_dilated_conv_on_dynamic_height_and_width_runs_at_several_sizes(tmp_path):
    """TF computes the paddings and crops of SpaceToBatchND/BatchToSpaceND from the input's
    Shape when height and width are dynamic: the ONNX model computes them at run time too, and
    matches the TF reference at sizes of every residue modulo the dilation (the chain is one
    dilated Conv: paddings minus crops is proved constant, see dilation._difference)."""
    from modelport.runtime.tfjs_reference import run

    name = "dilated_dynamic_h5"
    out = tmp_path / "model.onnx"
    modelport.convert(GRAPHS / name, out, validate=False)
    session = _session(out)
    assert session.get_inputs()[0].shape[1:3] == ["image_d1", "image_d2"]
    graph = tfjs_graph.read(GRAPHS / name)
    rng = np.random.default_rng(0)
    for shape in ((1, 12, 10, 3), (2, 7, 9, 3), (1, 5, 6, 3)):
        x = rng.standard_normal(shape).astype(np.float32)
        got, = session.run(None, {"image": x})
        want, = run(graph, [x])
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5, err_msg=str(shape))


@pytest.mark.parametrize("name", sorted(n for n in ORACLE if "SpaceToBatchND" in ORACLE[n]["ops"]
                                        and n not in GAPS))
def test_dilated_chains_become_dilated_convs(name):
    """Every TF conv inside a SpaceToBatchND chain (directly or through Conv1D's ExpandDims)
    is one dilated ONNX Conv; with no other chain (a dilated pool) and no Reshape of the
    model's own, no space/batch rearrangement is left at all."""
    import onnx_ir as ir

    from modelport.converters.tfjs_to_onnx import driver

    graph = tfjs_graph.read(GRAPHS / name)
    by_name = {n.name: n for n in graph.nodes}

    def producer(node):
        return by_name[node.inputs[0].split(":")[0]]

    chained = [n for n in graph.nodes if n.op in dilation.CONVS and (
        producer(n).op == "SpaceToBatchND" or (producer(n).op == "ExpandDims" and
                                               producer(producer(n)).op == "SpaceToBatchND"))]
    chains = sum(1 for n in graph.nodes if n.op == "SpaceToBatchND")
    model = ir.to_proto(driver.convert(graph))
    ops = [n.op_type for n in model.graph.node]
    dilated = [n for n in model.graph.node if n.op_type == "Conv" and any(
        a.name == "dilations" and any(d > 1 for d in a.ints) for a in n.attribute)]
    assert chained and len(dilated) == len(chained), ops
    if chains == len(chained) and "Reshape" not in ORACLE[name]["ops"]:
        # the only Pads left are the model's own (Conv1D's causal one, ZeroPadding2D)
        own = sum(1 for n in graph.nodes if n.op in ("Pad", "PadV2", "MirrorPad"))
        assert "Reshape" not in ops and ops.count("Pad") <= own, ops
    if "conv1d" in name:  # ONNX 1-D convs: one Transpose at each boundary (conv1d.py)
        assert ops.count("Transpose") == 2 and "Unsqueeze" not in ops, ops


def test_signature_names_resolve_as_tfjs_resolves_them(tmp_path):
    doc = json.loads((GRAPHS / "split_heads_frozen" / "model.json").read_text())
    graph = tfjs_graph.read(GRAPHS / "split_heads_frozen")
    assert sorted(o.tensor for o in graph.outputs) == ["model_2/heads/split:1",
                                                         "model_2/heads/split:2"]
    frozen = tfjs_graph.read(GRAPHS / "global_pool_frozen")
    assert [o.tensor for o in frozen.outputs] == ["model/global_pooling/Mean:0"]
    # --output_node_names entries carry no tensorShape: unknown, not a scalar's empty one
    assert [o.shape for o in frozen.outputs] == [None]
    # a function's named output ('node:output:k') is output k of node; anything else is refused
    key = next(iter(doc["signature"]["outputs"]))
    for name, want in (("model_2/heads/split:output:2", "model_2/heads/split:2"),
                       ("model_2/heads/split:x", None), ("a:b:c:1", None)):
        doc["signature"]["outputs"] = {key: {"name": name}}
        folder = tmp_path / name.replace("/", "_").replace(":", "_")
        folder.mkdir()
        for f in (GRAPHS / "split_heads_frozen").iterdir():
            (folder / f.name).write_bytes(f.read_bytes())
        (folder / "model.json").write_text(json.dumps(doc))
        if want is None:
            with pytest.raises(FormatError, match="not 'node', 'node:k'"):
                tfjs_graph.read(folder)
        else:
            assert [o.tensor for o in tfjs_graph.read(folder).outputs] == [want]


def _chain(fused_ops: list[str], residual: bool):
    """x -> SpaceToBatchND -> _FusedConv2D(fused_ops) -> BatchToSpaceND, as TF writes a
    3x3 conv dilated by 2 with SAME padding on an 8x8 input."""
    from modelport.models import TensorInfo, TfjsGraph, TfNode
    from modelport.models import tfjs_graph as tg_model
    from modelport.models.tfjs_graph import a_list, a_str, a_type

    rng = np.random.default_rng(4)
    weights = {"block": np.asarray([2, 2], np.int32),
               "pads": np.asarray([[2, 2], [2, 2]], np.int32),
               "crops": np.zeros((2, 2), np.int32),
               "w": rng.standard_normal((3, 3, 2, 3)).astype(np.float32),
               "b": rng.standard_normal(3).astype(np.float32)}
    args = ["b"] + (["r"] if residual else [])
    inputs = [("x", [1, 8, 8, 2])] + ([("r", [4, 4, 4, 3])] if residual else [])
    nodes = [TfNode(n, "Placeholder", [], {"dtype": a_type("float32")}) for n, _ in inputs]
    nodes += [TfNode(n, "Const", [], {"dtype": a_type(str(v.dtype))}) for n, v in weights.items()]
    nodes += [
        TfNode("s2b", "SpaceToBatchND", ["x", "block", "pads"], {}),
        TfNode("conv", "_FusedConv2D", ["s2b", "w", *args],
               {"T": a_type("float32"), "padding": a_str("VALID"),
                "strides": a_list("i", [1, 1, 1, 1]), "num_args": {"i": str(len(args))},
                "fused_ops": a_list("s", fused_ops)}),
        TfNode("b2s", "BatchToSpaceND", ["conv", "block", "crops"], {}),
    ]
    graph = TfjsGraph(nodes, weights, [TensorInfo(n, f"{n}:0", "float32", s) for n, s in inputs],
                      [TensorInfo("y", "b2s:0", "float32", None)])
    tg_model.check(graph)
    feeds = [rng.standard_normal(s).astype(np.float32) for _, s in inputs]
    return graph, feeds


@pytest.mark.parametrize(("fused_ops", "residual", "folds"), [
    (["BiasAdd", "Relu"], False, True),
    (["BiasAdd", "Add"], True, False),  # the residual is in the batch layout: not folded
])
def test_fused_conv_chains_fold_only_when_the_fused_steps_commute(fused_ops, residual, folds):
    import onnx_ir as ir

    from modelport.converters.tfjs_to_onnx import driver
    from modelport.runtime.tfjs_reference import run

    graph, feeds = _chain(fused_ops, residual)
    model = ir.to_proto(driver.convert(graph))
    ops = [n.op_type for n in model.graph.node]
    assert ("Reshape" not in ops) == folds, ops
    got = _session_bytes(model.SerializeToString()).run(
        None, dict(zip(["x", "r"], feeds)))
    np.testing.assert_allclose(got[0], run(graph, feeds)[0], atol=1e-5, rtol=1e-5)


def _session_bytes(data: bytes):
    import onnxruntime as ort

    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("opset", [13, 21])
def test_oracle_passes_the_full_checker_at_the_opset_bounds(opset):
    """The rewrites (dilated convs, Conv1D, run-time space/batch, band masks, training-mode
    batch norm) are valid ONNX at the lowest and highest opset modelport writes."""
    import onnx_ir as ir

    from modelport.converters.tfjs_to_onnx import driver

    for name in ("conv1d_h5", "dilated_dynamic_h5", "causal_transformer_k3", "attention_h5",
                 "dilated_depthwise_k3"):
        model = ir.to_proto(driver.convert(tfjs_graph.read(GRAPHS / name), opset=opset))
        onnx.checker.check_model(model, full_check=True)


@pytest.mark.parametrize("name", ["conv1d_k3", "dilated_cnn_h5", "dilated_depthwise_k3",
                                  "global_pool_frozen", "mobile_blocks_h5",
                                  "multi_output_frozen", "upsample_crop_h5"])
@pytest.mark.parametrize("target", ["model.keras", "model.h5"])
def test_converter_graph_models_raise_to_keras(name, target, tmp_path):
    """On through ONNX to Keras files: dilated convs (one Conv each), Conv1D, frozen
    signatures, the run-time Conv2DTranspose size all raise to Keras layers, parity checked."""
    report = modelport.convert(GRAPHS / name, tmp_path / target, device="cpu")
    assert report.parity is not None and report.parity.passed
