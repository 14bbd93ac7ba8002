"""Pinned input shapes and cut outputs (issue 18, "What to build" 1): ``--input-shape``,
``--batch``, ``--outputs`` on ``convert``/``inspect`` and in the library.

The models are built with onnx's helper (``tests/dynamic_models.py``) and run in onnxruntime;
the Keras files written are loaded by real Keras 3 and compared with onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import helper

from modelport import api
from modelport.cli import main
from modelport.converters import pinning
from modelport.errors import UnsupportedError, UsageError

from .dynamic_models import shape_cnn


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    path = tmp_path_factory.mktemp("pin") / "cnn.onnx"
    onnx.save(shape_cnn(), str(path))
    return path


def _cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def _ort(path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


# --- the specs ----------------------------------------------------------------------------------

def test_spec_forms():
    parsed = pinning.parse_input_shapes(["x=1,3,32,32", "y[2,5]", "4,8", ("z", [1, 2])])
    assert [(s.name, s.dims) for s in parsed] == [("x", (1, 3, 32, 32)), ("y", (2, 5)),
                                                 (None, (4, 8)), ("z", (1, 2))]
    for bad in ("x=1,a", "x=", "x=0,3", "x=1,-2", "x[1,2"):
        with pytest.raises(UsageError):
            pinning.parse_input_shapes([bad])


def test_resolve_names_the_input_and_its_shape():
    inputs = [("x", ["N", 3, "H", "W"])]
    assert pinning.resolve(pinning.parse_input_shapes(["1,3,8,8"]), None, inputs) == \
        {"x": (1, 3, 8, 8)}
    assert pinning.resolve((), 4, inputs) == {"x": (4, 3, None, None)}
    cases = {"y=1,3,8,8": "no input 'y'", "x=1,3,8": "rank 4", "x=1,4,8,8": "dim 1 of input 'x' is 3"}
    for spec, words in cases.items():
        with pytest.raises(UsageError) as e:
            pinning.resolve(pinning.parse_input_shapes([spec]), None, inputs)
        assert words in str(e.value) and "[N, 3, H, W]" in str(e.value), str(e.value)
    two = [("a", [None, 2]), ("b", [None, 3])]
    with pytest.raises(UsageError, match="names no input"):
        pinning.resolve(pinning.parse_input_shapes(["1,2"]), None, two)
    with pytest.raises(UsageError, match="disagree"):
        pinning.resolve(pinning.parse_input_shapes(["x=2,3,8,8"]), 1, inputs)


# --- pinning folds what Shape computed ----------------------------------------------------------

def test_pinning_folds_the_shape_subgraph(cnn):
    import onnx_ir as ir

    model = ir.load(str(cnn))
    pinned = pinning.pin_onnx(model, {"x": (1, 3, 16, 16)})
    ops = [n.op_type for n in pinned.graph]
    assert not {"Shape", "Gather", "Concat", "Unsqueeze"} & set(ops), ops
    assert list(pinned.graph.inputs[0].shape) == [1, 3, 16, 16]
    assert json.loads(pinned.metadata_props[pinning.PINNED_KEY]) == {"x": [1, 3, 16, 16]}
    # the model read is left as it was (the check runs it)
    assert "Shape" in [n.op_type for n in model.graph]
    assert [getattr(d, "value", d) for d in model.graph.inputs[0].shape] == ["N", 3, "H", "W"]


@pytest.fixture(scope="module")
def counted_pool_cnn(tmp_path_factory):
    """``shape_cnn`` with its pool an average over pads that leaves them out of the count: the
    border windows' divisor is a map built for one size, so raising needs the pin (the rest
    of ``shape_cnn`` raises with free height and width)."""
    model = shape_cnn()
    pool = next(n for n in model.graph.node if n.name == "pool1")
    pool.op_type = "AveragePool"
    del pool.attribute[:]
    pool.attribute.extend([helper.make_attribute("kernel_shape", [3, 3]),
                           helper.make_attribute("strides", [2, 2]),
                           helper.make_attribute("pads", [1, 1, 1, 1])])
    path = tmp_path_factory.mktemp("pin") / "counted.onnx"
    onnx.save(model, str(path))
    return path


def test_raising_needs_the_pin_and_says_so(counted_pool_cnn, tmp_path):
    cnn = counted_pool_cnn
    code, out = _cli("convert", cnn, tmp_path / "free.h5", "-q")
    assert code == UnsupportedError.exit_code, out
    assert "input 'x' [N, 3, H, W] has free dims" in out and "--input-shape x=" in out, out
    assert "AveragePool node 'pool1'" in out, out
    assert not (tmp_path / "free.h5").exists()

    dst = tmp_path / "pinned.h5"
    code, out = _cli("convert", cnn, dst, "-q", "--input-shape", "x=1,3,24,32", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["ok"] and report["input_shapes"] == {"x": [1, 3, 24, 32]}
    assert report["parity"]["inputs"]["shapes"]["x"][1:] == [3, 24, 32]

    import keras

    model = keras.saving.load_model(str(dst), compile=False)
    x = np.random.default_rng(1).standard_normal((1, 3, 24, 32)).astype(np.float32)
    perm = report["keras"]["input_perms"][0]
    got = model.predict(x.transpose(perm) if perm else x, verbose=0)
    np.testing.assert_allclose(got, _ort(cnn, x)[0], rtol=1e-4, atol=1e-5)


def test_batch_pins_the_free_batch_and_the_result_records_it(cnn, tmp_path):
    dst = tmp_path / "b.onnx"
    code, out = _cli("convert", cnn, tmp_path / "g", "-q", "--batch", "3", "--input-shape",
                     "x=3,3,16,16", "--json", "--engine", "reference")
    assert code == 0, out
    assert json.loads(out)["input_shapes"] == {"x": [3, 3, 16, 16]}
    meta = json.loads((tmp_path / "g" / "model.json").read_text())["userDefinedMetadata"]
    assert meta[pinning.PINNED_KEY] == {"x": [3, 3, 16, 16]}
    del dst


def test_library_keywords(cnn, tmp_path):
    report = api.convert(cnn, tmp_path / "lib.h5", input_shapes={"x": (2, 3, 16, 16)})
    assert report.passed and report.input_shapes == {"x": [2, 3, 16, 16]}
    info = api.inspect(cnn, input_shapes=["x=1,3,16,16"])
    assert info.inputs[0].shape == [1, 3, 16, 16]


@pytest.mark.parametrize("spec, words", [
    ("y=1,3,16,16", "no input 'y'"), ("x=1,3,16", "rank 4"), ("x=1,4,16,16", "dim 1"),
    ("x=1,3,0,16", "at least 1")])
def test_bad_specs_exit_2(cnn, tmp_path, spec, words):
    for command in (["convert", cnn, tmp_path / "bad.h5"], ["inspect", cnn],
                    ["validate", cnn, cnn]):
        code, out = _cli(*command, "--input-shape", spec)
        assert code == UsageError.exit_code and words in out, (command, out)
    assert not (tmp_path / "bad.h5").exists()


def test_keras_sources_refuse_input_shape(tmp_path):
    from .conftest import keras_cases

    case = keras_cases()[0]
    code, out = _cli("convert", case.path, tmp_path / "k.onnx", "--input-shape", "1,2")
    assert code == UsageError.exit_code and "--input-shape" in out, out


# --- cutting ------------------------------------------------------------------------------------

def test_outputs_cut_the_graph(cnn, tmp_path):
    dst = tmp_path / "cut.onnx"
    code, out = _cli("convert", cnn, dst, "-q", "--outputs", "logits", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["outputs"] == ["logits"]
    assert [o["name"] for o in report["parity"]["outputs"]] == ["logits"]
    model = onnx.load(str(dst))
    assert [o.name for o in model.graph.output] == ["logits"]
    assert "Softmax" not in {n.op_type for n in model.graph.node}
    x = np.random.default_rng(2).standard_normal((2, 3, 16, 16)).astype(np.float32)
    import onnxruntime as ort

    exposed = shape_cnn()
    exposed.graph.output.append(onnx.ValueInfoProto(name="logits"))
    full = ort.InferenceSession(exposed.SerializeToString(), providers=["CPUExecutionProvider"])
    session = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0],
                               full.run(["logits"], {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_unknown_output_lists_values_and_inspect(cnn, tmp_path):
    code, out = _cli("convert", cnn, tmp_path / "c.onnx", "--outputs", "nope")
    assert code == UsageError.exit_code, out
    assert "'nope'" in out and "logits" in out and "inspect" in out and "--values" in out, out
    code, out = _cli("inspect", cnn, "--values")
    assert code == 0 and "    logits" in out and "    target" in out, out


def test_graph_model_source_pins_through_its_signature(cnn, tmp_path):
    """A TF.js graph-model with free height and width (written from the ONNX, run by the
    check) raises to Keras once pinned by its signature key."""
    graph = tmp_path / "graph"
    code, out = _cli("convert", cnn, graph, "-q", "--engine", "reference")
    assert code == 0, out
    code, out = _cli("convert", graph, tmp_path / "free.keras", "-q")
    assert code == UnsupportedError.exit_code and "--input-shape" in out, out
    code, out = _cli("convert", graph, tmp_path / "g.keras", "-q", "--input-shape",
                     "x=2,3,16,16", "--json")
    assert code == 0, out
    assert json.loads(out)["input_shapes"] == {"x": [2, 3, 16, 16]}
    code, out = _cli("convert", graph, tmp_path / "g.onnx", "-q", "--input-shape",
                     "x:0=1,3,16,16", "--outputs", "head/AddV2")
    assert code == 0, out
    model = onnx.load(str(tmp_path / "g.onnx"))
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == \
        [1, 3, 16, 16]
    assert len(model.graph.output) == 1
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert meta[pinning.PINNED_KEY] == {"x": [1, 3, 16, 16]}
    assert meta[pinning.CUT_KEY] == ["head/AddV2"]


def test_batch_on_a_keras_source_sets_the_check_rows(tmp_path):
    from .conftest import keras_cases

    case = keras_cases()[0]
    code, out = _cli("convert", case.path, tmp_path / "k.onnx", "-q", "--batch", "3", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["parity"]["inputs"]["batch"] == 3 and report["input_shapes"] == {}


def test_range_constant_of_shape_and_expand_fold(tmp_path):
    import onnx_ir as ir
    import onnxruntime as ort

    from .dynamic_models import shape_arithmetic

    model = ir.from_proto(shape_arithmetic())
    pinned = pinning.pin_onnx(model, {"x": (2, 5)})
    ops = {n.op_type for n in pinned.graph}
    assert not ops & {"Shape", "Gather", "Range", "ConstantOfShape", "Expand", "Cast"}, ops
    x = np.random.default_rng(3).standard_normal((2, 5)).astype(np.float32)
    want = ort.InferenceSession(shape_arithmetic().SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = ort.InferenceSession(ir.to_proto(pinned).SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, want)


def test_shape_arithmetic_raises_to_keras_once_pinned(tmp_path):
    from .dynamic_models import shape_arithmetic

    src = tmp_path / "sa.onnx"
    onnx.save(shape_arithmetic(), str(src))
    code, out = _cli("convert", src, tmp_path / "free.h5", "-q")
    assert code == UnsupportedError.exit_code and "--input-shape x=1,16" in out, out
    code, out = _cli("convert", src, tmp_path / "sa.h5", "-q", "--input-shape", "x=2,5")
    assert code == 0, out


def test_a_dim_value_of_minus_one_is_free(tmp_path):
    """Exporters (PaddlePaddle's paddle2onnx) write a free batch as dim_value -1."""
    model = shape_cnn()
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    dim.Clear()
    dim.dim_value = -1
    src = tmp_path / "minus.onnx"
    onnx.save(model, str(src))
    code, out = _cli("convert", src, tmp_path / "free.h5", "-q")
    assert code == UnsupportedError.exit_code and "--input-shape x=1,3,224,224" in out, out
    code, out = _cli("convert", src, tmp_path / "m.h5", "-q", "--input-shape", "x=1,3,16,16")
    assert code == 0, out


def test_a_pin_smaller_than_a_window_is_refused(cnn, tmp_path):
    """onnxruntime and ONNX's inference give a 2x2 pool on a 1x1 input an output, TF and Keras
    none: such a pin cannot be the model's size."""
    for command in (["convert", cnn, tmp_path / "bad.h5"], ["convert", cnn, tmp_path / "g"],
                    ["inspect", cnn]):
        code, out = _cli(*command, "--input-shape", "x=1,3,1,1")
        assert code == UsageError.exit_code, (command, out)
        assert "MaxPool node 'pool1' has a window of 2 on an axis of 1" in out, out


def test_a_size_the_metadata_records_is_pinned_for_keras_targets(tmp_path):
    """An Ultralytics export leaves height and width free and records ``imgsz`` and ``batch``
    (NudeNet's 320n.onnx: ``'[320, 320]'``, ``'1'``): a Keras target pins the recorded size
    and says so; ``--input-shape`` still chooses; ``inspect`` says what ``convert`` does; the
    ONNX route keeps the free dims."""
    model = shape_cnn()
    pool = next(n for n in model.graph.node if n.name == "pool1")
    pool.op_type = "AveragePool"  # counted_pool_cnn's pool: raising needs static sizes
    del pool.attribute[:]
    pool.attribute.extend([helper.make_attribute("kernel_shape", [3, 3]),
                           helper.make_attribute("strides", [2, 2]),
                           helper.make_attribute("pads", [1, 1, 1, 1])])
    helper.set_model_props(model, {"author": "Ultralytics", "imgsz": "[24, 32]", "batch": "1"})
    src = tmp_path / "yolo.onnx"
    onnx.save(model, str(src))

    dst = tmp_path / "y.h5"
    code, out = _cli("convert", src, dst, "--json")
    assert code == 0, out
    report = json.loads(out[out.index("{"):])
    assert report["input_shapes"] == {"x": [1, 3, 24, 32]}, report
    assert any("metadata records" in n and "--input-shape" in n for n in report["notes"])
    assert report["parity"]["passed"] and report["parity"]["inputs"]["shapes"]["x"] == \
        [1, 3, 24, 32]

    import keras

    loaded = keras.saving.load_model(str(dst), compile=False)
    x = np.random.default_rng(2).standard_normal((1, 3, 24, 32)).astype(np.float32)
    perm = report["keras"]["input_perms"][0]
    np.testing.assert_allclose(loaded.predict(x.transpose(perm) if perm else x, verbose=0),
                               _ort(src, x)[0], rtol=1e-4, atol=1e-5)

    code, out = _cli("convert", src, tmp_path / "z.keras", "-q", "--json",
                     "--input-shape", "x=1,3,16,16")
    assert code == 0, out
    assert json.loads(out)["input_shapes"] == {"x": [1, 3, 16, 16]}
    code, out = _cli("convert", src, tmp_path / "o.onnx", "-q", "--json")
    assert code == 0, out
    assert json.loads(out)["input_shapes"] == {}

    code, out = _cli("inspect", src, "--json")
    assert code == 0, out
    targets = json.loads(out)["targets"]
    assert all(targets[t]["ok"] for t in ("h5", "keras", "tfjs-layers")), targets


def test_recorded_shapes_pin_only_image_inputs():
    from modelport.converters.recorded_shapes import _pinned, image_size

    assert image_size({"imgsz": [640, 480]}) == (640, 480)
    assert image_size({"imgsz": 320}) == (320, 320)
    assert image_size({"imgsz": [0, 3]}) is None and image_size({}) is None
    assert _pinned(["b", 3, "h", "w"], (64, 32), 1) == (1, 3, 64, 32)
    assert _pinned(["b", "h", "w", 3], (64, 32), 2) == (2, 64, 32, 3)
    assert _pinned(["b", 3, 48, "w"], (48, 320), 1) == (1, 3, 48, 320)
    assert _pinned(["b", 3, 40, "w"], (48, 320), 1) is None  # the metadata is of another size
    assert _pinned(["b", 3, 64, 64], (64, 64), 1) is None  # nothing free but the batch
    assert _pinned(["b", "t"], (64, 64), 1) is None
    assert _pinned(["b", "c", "h", "w"], (64, 64), 1) is None


def test_a_model_computing_its_shapes_from_the_batch_raises_at_batch_one(tmp_path):
    """A model whose shape arithmetic on its free batch leaves a Keras target nothing to raise
    (here rows regrouped across the batch, [B, 6] -> [2B, 3] -> [B, 6], as jax2tf's exports
    compute every shape from the batch: magika 1.0.3's standard_v3_3) was refused; raised again
    at a batch of 1 it converts, as operations on the literal shapes, the Keras model declared
    for one sample, and the report says so. --batch 2 is the user's choice and gets no retry."""
    n = helper.make_node
    inits = [onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in {
        "zero": np.asarray(0, np.int64), "ax": np.asarray([0], np.int64),
        "two": np.asarray(2, np.int64), "three": np.asarray([3], np.int64),
        "six": np.asarray([6], np.int64)}.items()]
    nodes = [n("Shape", ["x"], ["s"]), n("Gather", ["s", "zero"], ["b"], axis=0),
             n("Mul", ["b", "two"], ["b2"]), n("Unsqueeze", ["b2", "ax"], ["b2v"]),
             n("Concat", ["b2v", "three"], ["t1"], axis=0), n("Reshape", ["x", "t1"], ["r"]),
             n("Relu", ["r"], ["z"]), n("Unsqueeze", ["b", "ax"], ["bv"]),
             n("Concat", ["bv", "six"], ["t2"], axis=0), n("Reshape", ["z", "t2"], ["y"])]
    graph = helper.make_graph(nodes, "regroup", [helper.make_tensor_value_info(
        "x", onnx.TensorProto.FLOAT, ["B", 6])], [helper.make_tensor_value_info(
            "y", onnx.TensorProto.FLOAT, ["B", 6])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              ir_version=8)
    src = tmp_path / "regroup.onnx"
    onnx.save(proto, str(src))

    code, out = _cli("convert", src, tmp_path / "j.keras", "--json", "-q")
    assert code == 0, out
    report = json.loads(out)
    assert report["parity"]["passed"] and any("pinned to 1" in s for s in report["notes"])
    import keras

    loaded = keras.saving.load_model(str(tmp_path / "j.keras"), compile=False)
    assert tuple(loaded.inputs[0].shape) == (1, 6)
    x = np.random.default_rng(4).standard_normal((1, 6)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), _ort(src, x)[0], rtol=1e-6)

    code, out = _cli("inspect", src, "--json")
    assert code == 0 and json.loads(out)["targets"]["keras"]["ok"], out
    code, out = _cli("convert", src, tmp_path / "j2.keras", "-q", "--batch", "2")
    assert code == UnsupportedError.exit_code, out
