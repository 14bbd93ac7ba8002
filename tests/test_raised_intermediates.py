"""A Keras file raised from an ONNX source is checked in its intermediate values too (issue 18):
the written file's layers are looked for among the source's values, so one wrong weight that a
saturated softmax hides from the outputs fails the check, in ``convert`` and in ``validate``;
a faithful raising holds every sampled layer, its compositions' inner layers aside. And the
noise run leaves exact integers alone, so an Embedding reading computed indices does not
take another row (Magika's one-hot, where the noise had swallowed every error).
"""

from __future__ import annotations

import h5py
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.check import sampled_layers
from modelport.runtime.precision import exact, integral, rounded_unless_integral

HIDDEN = "hidden"  # the ONNX node (and so the Keras layer) whose weight is moved


def _saturated_mlp(path) -> None:
    """x -> Gemm -> Relu -> Gemm (HIDDEN) -> Relu -> Gemm x 40 -> Softmax: logits far apart,
    so the softmax output barely moves when a hidden weight does."""
    rng = np.random.default_rng(3)
    w1, w2, w3 = (rng.standard_normal(s).astype(np.float32) for s in ((16, 32), (32, 32),
                                                                          (32, 4)))
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (w2, "w2"), (w3 * 40, "w3"))]
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["h1"], name="first"),
             helper.make_node("Relu", ["h1"], ["r1"], name="relu1"),
             helper.make_node("Gemm", ["r1", "w2"], ["h2"], name=HIDDEN),
             helper.make_node("Relu", ["h2"], ["r2"], name="relu2"),
             helper.make_node("Gemm", ["r2", "w3"], ["logits"], name="head"),
             helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=-1)]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def _moved(src, dst, layer: str) -> None:
    """``src`` with one column of ``layer``'s kernel negated, written to ``dst``."""
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        names: list[str] = []
        f.visititems(lambda n, o: names.append(n)
                     if isinstance(o, h5py.Dataset) and layer in n and "kernel" in n else None)
        kernel = f[names[0]]
        values = kernel[()]
        values[:, 3] = -values[:, 3]
        kernel[...] = values


@pytest.fixture(scope="module")
def raised(tmp_path_factory):
    root = tmp_path_factory.mktemp("raised")
    _saturated_mlp(root / "m.onnx")
    report = modelport.convert(root / "m.onnx", root / "m.h5")
    return root, report


def test_a_faithful_raising_holds_every_sampled_layer(raised):
    root, report = raised
    assert report.parity.passed
    found = report.parity.intermediates
    assert found is not None and found.raised and found.skipped is None
    assert found.compared >= 3 and found.held == found.compared
    assert "head" in found.layers  # the logits: the last layer before the softmax output
    again = modelport.validate(root / "m.onnx", root / "m.h5", device="cpu")
    assert again.passed and again.intermediates.held == again.intermediates.compared


def test_a_weight_the_softmax_hides_fails_the_check_and_is_named(raised, tmp_path):
    root, _ = raised
    _moved(root / "m.h5", tmp_path / "bad.h5", HIDDEN)
    report = modelport.validate(root / "m.onnx", tmp_path / "bad.h5", device="cpu")
    assert not report.passed
    first = report.intermediates.first_not_held
    assert first is not None and first["layer"] == HIDDEN
    assert first["compared_in"].startswith("the source's own values")
    assert any(note.startswith("sampled intermediates: the source's own values")
               for note in report.notes)


def test_a_composition_s_inner_layers_are_not_sampled(tmp_path):
    """Asymmetric pads raise to a padding layer then the pool: only the pool's output is an
    ONNX value, so the padding layer is never judged (it would be 'not held')."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 9, 9])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[3, 3],
                              pads=[0, 0, 1, 1]),
             helper.make_node("Relu", ["p"], ["y"], name="out")]
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                                opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    report = modelport.convert(tmp_path / "m.onnx", tmp_path / "m.h5")
    assert report.parity.passed, report.parity.notes
    found = report.parity.intermediates
    assert found is not None and found.first_not_held is None


def test_the_noise_run_leaves_exact_integers_alone():
    indices = np.array([[3.0, 0.0, 255.0]])
    with exact(jitter=True):
        assert rounded_unless_integral(indices) is indices
        moved = rounded_unless_integral(indices + 0.5)
    assert not np.array_equal(moved, indices + 0.5)  # other values are moved as before
    assert integral(np.arange(100000, dtype=np.float64))
    assert not integral(np.array([1.0, 2.5]))
    assert not integral(np.array([float(1 << 25)]))


def test_the_plan_samples_only_eligible_layers(raised):
    root, report = raised
    from modelport.formats.loading import load

    model = load(root / "m.h5")
    plan = sampled_layers.plan(model, eligible={"head", HIDDEN})
    assert {layer for layer, _ in plan.sampled} <= {"head", HIDDEN}


def test_a_graph_model_s_raising_is_sampled_too(tmp_path):
    """A TF.js graph-model raised to Keras (through ONNX): the written layers are looked for
    among the graph's own values (the NumPy TF reference's), in convert and in validate, and
    a moved kernel fails there."""
    from .conftest import FIXTURES

    source = FIXTURES / "tfjs_graph" / "dense" / "model.json"
    report = modelport.convert(source, tmp_path / "m.h5")
    found = report.parity.intermediates
    assert report.parity.passed and found is not None and found.raised
    assert found.compared >= 3 and found.first_not_held is None
    from modelport.formats.loading import load

    dense = next(layer.name for layer in load(tmp_path / "m.h5").iter_layers()
                 if layer.class_name == "Dense")
    _moved(tmp_path / "m.h5", tmp_path / "bad.h5", dense)
    bad = modelport.validate(source, tmp_path / "bad.h5", device="cpu")
    assert not bad.passed
    assert bad.intermediates is not None and bad.intermediates.raised
    assert bad.intermediates.compared >= 3


def test_a_layer_read_by_an_arg_max_is_sampled_as_an_output_s(tmp_path):
    """An arg-max hides what feeds it as a saturated output does (MoveNet's centre heatmap: a
    sign flipped in its head left every output equal): the layer it reads is sampled, and
    the arg-max's being held does not excuse it."""
    rng = np.random.default_rng(5)
    w1 = rng.standard_normal((8, 16)).astype(np.float32)
    w2 = rng.standard_normal((16, 6)).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["h"], name="trunk"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2"], ["scores"], name="scores"),
             helper.make_node("ArgMax", ["scores"], ["pick"], name="pick", axis=1, keepdims=0),
             helper.make_node("Cast", ["pick"], ["y"], name="as_float", to=TensorProto.FLOAT)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "m.onnx")
    report = modelport.convert(tmp_path / "m.onnx", tmp_path / "m.keras")
    assert report.parity.passed
    assert "scores" in report.parity.intermediates.layers
    from modelport.formats.loading import load

    model = load(tmp_path / "m.keras")
    plan = sampled_layers.plan(model)
    assert ("scores", 0) in plan.sampled and not plan.after(("scores", 0))
    # every score scaled by 1.01: the same arg-max, other scores
    moved = tmp_path / "moved.keras"
    _scaled_in_keras(tmp_path / "m.keras", moved, w2.shape, tmp_path / "w.h5")
    bad = modelport.validate(tmp_path / "m.onnx", moved, device="cpu")
    assert all(o.passed for o in bad.outputs)  # the arg-max alone would pass it
    assert not bad.passed and bad.intermediates.first_not_held["layer"] == "scores"


def _scaled_in_keras(src, dst, shape, scratch) -> None:
    """``src`` (a .keras file) with its one weight of ``shape`` scaled by 1.01, as ``dst``."""
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "model.weights.h5":
                scratch.write_bytes(data)
                _scale_one(scratch, tuple(shape))
                data = scratch.read_bytes()
            zout.writestr(item, data)


def _scale_one(path, shape: tuple) -> None:
    """The one dataset of ``shape`` in the HDF5 file at ``path``, scaled by 1.01."""
    with h5py.File(path, "r+") as f:
        found: list[str] = []
        f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset)
                     and o.shape == shape else None)
        assert len(found) == 1, found
        f[found[0]][...] = f[found[0]][()] * np.float32(1.01)


def test_a_softmax_spelled_out_hides_nothing(tmp_path):
    """jax2tf writes a softmax as exp(x - max(x)) / sum(...) (Magika): walking back from the
    output stops at none of those layers, so the logits (or the difference from their maximum)
    are sampled, and neither the exponential's nor the maximum's being held excuses them. One
    logit column negated passed the check before (its class's probability is tiny either way),
    the head being too deep for the even spread to reach."""
    rng = np.random.default_rng(11)
    depth = 12
    trunk = [(rng.standard_normal((8 if i == 0 else 16, 16)) * 0.45).astype(np.float32)
             for i in range(depth)]
    w2 = (rng.standard_normal((16, 6)) * 20).astype(np.float32)
    w2[:, 3] /= 100  # a logit near 0 among logits of several units: its probability is tiny
    one = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes, x = [], "x"
    for i in range(depth):
        nodes += [helper.make_node("Gemm", [x, f"w{i}"], [f"h{i}"], name=f"trunk{i}"),
                  helper.make_node("Relu", [f"h{i}"], [f"r{i}"], name=f"relu{i}")]
        x = f"r{i}"
    nodes += [helper.make_node("Gemm", [x, "w_head"], ["logits"], name="head"),
              helper.make_node("ReduceMax", ["logits"], ["top"], name="top", axes=[1]),
              helper.make_node("Sub", ["logits", "top"], ["shifted"], name="shifted"),
              helper.make_node("Exp", ["shifted"], ["e"], name="exp"),
              helper.make_node("ReduceSum", ["e", "axes"], ["total"], name="total"),
              helper.make_node("Div", ["e", "total"], ["y"], name="probs")]
    weights = [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(trunk)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])],
        [*weights, numpy_helper.from_array(w2, "w_head"), one])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "m.onnx")
    report = modelport.convert(tmp_path / "m.onnx", tmp_path / "m.keras")
    assert report.parity.passed, report.parity.notes
    from modelport.formats.loading import load

    plan = sampled_layers.plan(load(tmp_path / "m.keras"), count=2)
    assert ("shifted", 0) in plan.sampled
    assert ("exp", 0) in plan.tail and ("top", 0) in plan.selecting
    moved = tmp_path / "moved.keras"
    _negated_column_in_keras(tmp_path / "m.keras", moved, w2.shape, tmp_path / "w.h5")
    bad = modelport.validate(tmp_path / "m.onnx", moved, device="cpu")
    assert all(o.passed for o in bad.outputs)  # the probabilities alone would pass it
    assert not bad.passed
    assert bad.intermediates.first_not_held["layer"] in {"head", "shifted"}


def _negated_column_in_keras(src, dst, shape, scratch) -> None:
    """``src`` (a .keras file) with column 3 of its one weight of ``shape`` negated, as
    ``dst``: a logit far below the largest, so its probability stays tiny."""
    import zipfile

    w = None
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "model.weights.h5":
                scratch.write_bytes(data)
                with h5py.File(scratch, "r+") as f:
                    name = _one_of_shape(f, tuple(shape))
                    w = f[name][()]
                    w[:, 3] = -w[:, 3]
                    f[name][...] = w
                data = scratch.read_bytes()
            zout.writestr(item, data)
    assert w is not None


def _one_of_shape(f: h5py.File, shape: tuple) -> str:
    """The name of the one dataset of ``shape`` in ``f``."""
    found: list[str] = []
    f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset)
                 and o.shape == shape else None)
    assert len(found) == 1, found
    return found[0]
