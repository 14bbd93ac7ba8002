"""``--per-layer`` looks at the checked file's own intermediate values (issue 17, point 5).

A conversion tampered with after it was written (one conv weight + 0.5), or an ONNX file written
by another tool (other value names, BatchNormalization folded into its Conv), is localised from
the file's values, matched to the Keras layers by value; a Keras target, by layer name.
"""

from __future__ import annotations

import h5py
import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import helper, numpy_helper

import modelport
from modelport.check.intermediates import _blame, keras_vs_onnx
from modelport.check.layouts import match_input
from modelport.check.parity import Tolerances
from modelport.check.probes import seeded_probes
from modelport.cli import main
from modelport.formats.loading import load
from modelport.models import keras_graph
from modelport.runtime.engines import KerasReference, OnnxRuntime

from .conftest import FIXTURES

CNN = FIXTURES / "keras3" / "cnn_bn_pool.h5"
MLP = FIXTURES / "keras3" / "mlp_sequential.h5"
OLD_NOTE = "every layer matches before the layout pass"


def _converted(src, tmp_path, name="m.onnx"):
    out = tmp_path / name
    report = modelport.convert(src, out, device="cpu")
    assert report.passed
    return out


def _nudge(proto: onnx.ModelProto, initializer: str, by: float = 0.5) -> None:
    """One element of an initializer moved by ``by``, in place."""
    for i, t in enumerate(proto.graph.initializer):
        if t.name == initializer:
            a = numpy_helper.to_array(t).copy()
            a.flat[0] += by
            proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(a, t.name))
            return
    raise AssertionError(f"no initializer {initializer}")


def _tampered(path, initializer, out):
    proto = onnx.load(str(path))
    _nudge(proto, initializer)
    onnx.save(proto, str(out))
    return out


def _notes(report):
    return " ".join(report.notes)


def test_a_conv_weight_changed_in_the_file_is_named(tmp_path):
    onnx_path = _tampered(_converted(CNN, tmp_path), "conv2d_1/kernel", tmp_path / "t.onnx")
    report = modelport.validate(CNN, onnx_path, per_layer=True, device="cpu")
    assert not report.passed
    first = report.first_divergence
    assert first is not None and first["layer"] == "conv2d_1" and first["class"] == "Conv2D"
    assert first["compared_in"] == "the file's own values"
    assert first["inputs_held_by"]  # the layer before it is found in the file
    assert first["max_abs"] > 0.01 and first["mismatched"] > 0
    assert OLD_NOTE not in _notes(report)


def test_the_cli_names_the_tampered_layer(tmp_path):
    onnx_path = _tampered(_converted(CNN, tmp_path), "conv2d_1/kernel", tmp_path / "t.onnx")
    result = CliRunner().invoke(main, ["validate", str(CNN), str(onnx_path), "--per-layer",
                                       "--device", "cpu"])
    assert result.exit_code == 6, result.output
    assert "first diverging layer: conv2d_1 (Conv2D)" in result.output
    assert OLD_NOTE not in result.output


@pytest.mark.parametrize("fixture", ["cnn_bn_pool", "separable_depthwise", "multi_io",
                                     "recurrent", "conv1d_causal", "mlp_sequential"])
def test_a_faithful_file_holds_its_layers_and_blames_none(fixture, tmp_path):
    src = FIXTURES / "keras3" / f"{fixture}.h5"
    onnx_path = _converted(src, tmp_path)
    report = modelport.validate(src, onnx_path, per_layer=True, device="cpu")
    assert report.passed and report.first_divergence is None
    walk = _walk(src, onnx_path)
    assert walk.first is None and walk.held > 0
    if fixture in ("cnn_bn_pool", "mlp_sequential"):
        assert walk.held == walk.compared  # every Keras layer's output is a value of the file


def _walk(src, onnx_path):
    source = load(src)
    keras_inputs = seeded_probes(KerasReference(source).inputs(), batch=2, seed=0)[0].arrays
    onnx_inputs = [match_input(x, s) for x, s in zip(keras_inputs,
                                                     OnnxRuntime(onnx_path).inputs())]
    return keras_vs_onnx(source, keras_inputs, load(onnx_path), onnx_inputs, Tolerances())


# --- a file another tool could have written: other names, BatchNormalization folded ---------

def _foreign(path) -> tuple[onnx.ModelProto, dict[str, str]]:
    """modelport's conversion of CNN as another tool writes it: batch_normalization_1's
    Mul/Add folded into conv2d_1's weights, and every value, node and weight renamed (the new
    names by the old)."""
    proto = onnx.load(str(path))
    graph = proto.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = list(graph.node)
    conv = next(n for n in nodes if n.op_type == "Conv" and n.input[1] == "conv2d_1/kernel")
    mul = next(n for n in nodes if n.op_type == "Mul" and n.input[0] == conv.output[0])
    add = next(n for n in nodes if n.op_type == "Add" and n.input[0] == mul.output[0])
    scale = inits[mul.input[1]].reshape(-1)
    shift = inits[add.input[1]].reshape(-1)
    kernel = inits[conv.input[1]] * scale.reshape(-1, 1, 1, 1)
    bias = inits[conv.input[2]] * scale + shift
    fused = helper.make_node("Conv", [conv.input[0], "fused_kernel", "fused_bias"],
                             [add.output[0]], name="fused")
    fused.attribute.extend(conv.attribute)
    kept = [fused if n is conv else n for n in nodes if n is not mul and n is not add]
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend([numpy_helper.from_array(kernel.astype(np.float32), "fused_kernel"),
                              numpy_helper.from_array(bias.astype(np.float32), "fused_bias")])
    return proto, _rename(proto)


def _rename(proto: onnx.ModelProto) -> dict[str, str]:
    """Every name of the graph replaced as a TF-based tool would spell it."""
    graph = proto.graph
    names: dict[str, str] = {}

    def new(name):
        if name and name not in names:
            names[name] = f"StatefulPartitionedCall/model/op_{len(names)}:0"
        return names.get(name, name)

    for value in list(graph.input) + list(graph.output):
        value.name = new(value.name)
    for t in graph.initializer:
        t.name = new(t.name)
    for i, node in enumerate(graph.node):
        node.name = f"node_{i}"
        for j, name in enumerate(node.input):
            node.input[j] = new(name)
        for j, name in enumerate(node.output):
            node.output[j] = new(name)
    proto.graph.ClearField("value_info")
    return names


def test_a_foreign_file_with_other_names_and_a_fused_batchnorm(tmp_path):
    foreign = tmp_path / "foreign.onnx"
    onnx.save(_foreign(_converted(CNN, tmp_path))[0], str(foreign))
    faithful = modelport.validate(CNN, foreign, per_layer=True, device="cpu")
    assert faithful.passed, faithful.outputs
    walk = _walk(CNN, foreign)
    assert walk.first is None  # conv2d_1's output is not in the file (fused): not a fault
    assert walk.held == walk.compared - 1  # only conv2d_1: the fused Conv holds BN_1's output

    for layer, weight_of in (("conv2d_2", "conv2d_2/kernel"), ("conv2d_1", "fused_kernel")):
        proto, names = _foreign(_converted(CNN, tmp_path, f"{layer}.onnx"))
        _nudge(proto, names[weight_of])
        bad = tmp_path / f"bad_{layer}.onnx"
        onnx.save(proto, str(bad))
        report = modelport.validate(CNN, bad, per_layer=True, device="cpu")
        assert not report.passed
        assert report.first_divergence["layer"] == layer, report.first_divergence
        assert report.first_divergence["nearest_value"].startswith("StatefulPartitionedCall/")


def test_an_onnx_written_by_hand_is_localised(tmp_path):
    """The MLP written with onnx.helper, as no converter writes it (Gemm with a transposed
    kernel, the ReLU fused into nothing, names of its own); dense_1's kernel nudged."""
    source = load(MLP)
    weights = {f"{layer.name}/{w.name}": w.array for layer in source.layers for w in layer.weights}
    x = helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, ["n", 7])
    y = helper.make_tensor_value_info("scores", onnx.TensorProto.FLOAT, ["n", 3])
    kernel = weights["dense_1/kernel"].copy()
    kernel.flat[0] += 0.5
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in (
        ("W0t", weights["dense/kernel"].T), ("b0", weights["dense/bias"]),
        ("W1", kernel), ("W2", weights["dense_2/kernel"]), ("b2", weights["dense_2/bias"]))]
    nodes = [helper.make_node("Gemm", ["features", "W0t", "b0"], ["h0"], transB=1),
             helper.make_node("Relu", ["h0"], ["a0"]),
             helper.make_node("MatMul", ["a0", "W1"], ["h1"]),
             helper.make_node("Sigmoid", ["h1"], ["a1"]),
             helper.make_node("Gemm", ["a1", "W2", "b2"], ["scores"])]
    graph = helper.make_graph(nodes, "by_hand", [x], [y], inits)
    path = tmp_path / "hand.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                ir_version=8), str(path))
    assert source.layers[0].config["batch_shape"][-1] == 7
    report = modelport.validate(MLP, path, per_layer=True, device="cpu")
    assert not report.passed
    first = report.first_divergence
    assert first["layer"] == "dense_1" and first["nearest_value"] == "h1"
    assert first["inputs_held_by"] == {"dense": "a0"}


def test_a_keras_target_is_compared_by_layer_name(tmp_path):
    out = tmp_path / "copy.h5"
    assert modelport.convert(CNN, out).passed
    with h5py.File(out, "r+") as f:
        kernel = f["model_weights/conv2d_1/conv2d_1/kernel"]
        a = kernel[...]
        a.flat[0] += 0.5
        kernel[...] = a
    report = modelport.validate(CNN, out, per_layer=True, device="cpu")
    assert not report.passed
    assert report.first_divergence["layer"] == "conv2d_1"
    assert report.first_divergence["compared_in"] == "the target's layers of the same name"


# --- the blame rule on its own ---------------------------------------------------------------

def _chain_graph():
    return keras_graph.as_functional(load(CNN))


def test_blame_skips_a_fused_layer_whose_successor_is_held():
    graph = _chain_graph()
    order = keras_graph.call_order(graph)
    names = [layer.name for layer, _ in order]
    status = {(n, 0): True for n in names}
    status["conv2d_1", 0] = False  # fused into batch_normalization_1, which is held
    assert _blame(graph, order, status) is None
    status["dense_5", 0] = False  # ... and the output fails from the last layer
    assert _blame(graph, order, status) == ("dense_5", 0)
    for n in names[names.index("conv2d_1"):]:
        status[n, 0] = False  # the error reaches the output: the first unheld is blamed
    assert _blame(graph, order, status) == ("conv2d_1", 0)


def test_a_node_added_after_a_held_value_is_blamed_on_the_layer_it_is_named_after(tmp_path):
    """batch_normalization's output is in the file, but the file adds 0.25 to it (a node named
    batch_normalization/Add_9) before max_pooling2d reads it: batch_normalization is named."""
    proto = onnx.load(str(_converted(CNN, tmp_path)))
    nodes = list(proto.graph.node)
    add = next(n for n in nodes if n.name == "batch_normalization/Add")
    pool = next(n for n in nodes if n.op_type == "MaxPool")
    extra = helper.make_node("Add", [add.output[0], "quarter"], ["shifted"],
                             name="batch_normalization/Add_9")
    pool.input[0] = "shifted"
    proto.graph.node.insert(nodes.index(add) + 1, extra)
    proto.graph.initializer.append(numpy_helper.from_array(np.float32(0.25), "quarter"))
    bad = tmp_path / "shifted.onnx"
    onnx.save(proto, str(bad))
    first = modelport.validate(CNN, bad, per_layer=True, device="cpu").first_divergence
    assert first["layer"] == "batch_normalization" and first["first_unheld"] == "max_pooling2d"
    assert first["owner_node"] == "batch_normalization/Add_9"
    assert first["weights"] == ["quarter"]


# --- an ONNX source: against an ONNX file, against a TF.js graph-model --------------------------

def test_an_onnx_source_against_a_changed_onnx_file_names_the_node(tmp_path):
    source = _converted(CNN, tmp_path)
    assert modelport.validate(source, source, per_layer=True, device="cpu").passed
    proto, names = _foreign(source)  # other names everywhere: found by value
    _nudge(proto, names["conv2d_2/kernel"])
    bad = tmp_path / "bad.onnx"
    onnx.save(proto, str(bad))
    report = modelport.validate(source, bad, per_layer=True, device="cpu")
    assert not report.passed
    first = report.first_divergence
    assert first["layer"] == "conv2d_2/Conv" and first["class"] == "Conv"
    assert first["weights"] == ["conv2d_2/bias", "conv2d_2/kernel"]


def test_an_onnx_source_against_a_tfjs_graph_model(tmp_path):
    from modelport.check.onnx_intermediates import onnx_vs_target

    source = _converted(CNN, tmp_path)
    web = tmp_path / "web"
    assert modelport.convert(source, web, to="tfjs-graph", engine="reference").passed
    onnx_model, graph = load(source), load(web)
    arrays = seeded_probes(OnnxRuntime(source).inputs(), batch=2, seed=0)[0].arrays
    assert onnx_vs_target(onnx_model, graph, (arrays, arrays), Tolerances()).first is None
    kernel = next(name for name in graph.weights if name.startswith("conv2d_1/"))
    graph.weights[kernel] = graph.weights[kernel].copy()
    graph.weights[kernel].flat[0] += 0.5
    first = onnx_vs_target(onnx_model, graph, (arrays, arrays), Tolerances()).first
    assert first["layer"] == "conv2d_1/Conv"
    assert first["nearest_value"].startswith("conv2d_1/")


def test_a_keras_source_against_a_tfjs_graph_model(tmp_path):
    web = tmp_path / "web"
    assert modelport.convert(CNN, web, to="tfjs-graph", engine="reference").passed
    source, graph = load(CNN), load(web)
    arrays = seeded_probes(KerasReference(source).inputs(), batch=2, seed=0)[0].arrays
    assert keras_vs_onnx(source, arrays, graph, arrays, Tolerances()).first is None
    kernel = next(name for name in graph.weights if "conv2d_2" in name)
    graph.weights[kernel] = graph.weights[kernel].copy()
    graph.weights[kernel].flat[0] += 0.5
    first = keras_vs_onnx(source, arrays, graph, arrays, Tolerances()).first
    assert first["layer"] == "conv2d_2" and first["compared_in"] == "the file's own values"


@pytest.mark.parametrize(("shape", "target"), [
    ((2, 5, 4, 3), (2, 3, 5, 4)),  # channels first
    ((2, 4, 4, 4), (2, 4, 4, 4)),  # same shape: as it is, and moved both ways
    ((2, 7, 5), (7, 2, 5)),  # time-major
    ((2, 7, 5), (7, 1, 2, 5)),  # time-major with an RNN's direction axis
    ((3, 6), (3, 6, 1, 1)),  # squeezed
])
def test_a_layout_reads_the_elements_it_moves(shape, target):
    from modelport.check.intermediates import _layouts

    a = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    layouts = list(_layouts(shape, target))
    assert layouts
    flat = np.arange(a.size)
    for layout in layouts:
        moved = layout.move(a)
        assert moved.shape == target
        assert np.array_equal(moved.reshape(-1)[flat], a[layout.source(flat)])
    if shape == target:
        assert len(layouts) == 3  # a 2x4x4x4 tensor may be NHWC or NCHW: both are tried


def test_each_probe_is_judged_on_its_own_noise():
    """A probe with large values (pixels) has a large rounding noise; an error in another
    probe's rows must not hide under it, as in the check's own per-probe judgement."""
    from modelport.check.intermediates import Values

    expected = np.ones((4, 8), dtype=np.float32)
    expected[2:] *= 255.0
    noise = np.full(expected.shape, 1e-7)
    noise[2:] = 1e-5
    actual = expected.copy()
    actual[0, 0] += 1e-4  # 1000x its probe's noise, 10x less than 16x the other probe's
    values = {"v": actual}
    assert Values(values, Tolerances()).find(expected, noise) is not None
    assert Values(values, Tolerances(), [slice(0, 2), slice(2, 4)]).find(expected, noise) is None
    assert Values({"v": expected.copy()}, Tolerances(),
                  [slice(0, 2), slice(2, 4)]).find(expected, noise) is not None
