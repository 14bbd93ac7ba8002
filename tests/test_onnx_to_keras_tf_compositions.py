"""Forms tf2onnx writes for Keras models, raised as stock Keras layers (issue 18: Magika):
``OneHot(Cast(x))`` of a float ``x`` (``onnx_to_keras/onehot.py``, two Embedding lookups),
TF's layer normalization over any axes in ``tf.nn.batch_normalization``'s forms
(``layer_norm_tf.py``), a Reshape to ``[batch of x, n, -1]`` (``reshape_batch.py``) and the
``Reshape([1, -1, K]) -> Squeeze`` row merge of a Tensordot (``tensordot_rows.py``), and
``Pow(x, 2 or 3)`` (``powers.py``: TF's tanh GELU has a cube) as a Multiply.

Each small ONNX graph (onnx.helper) is raised and the Keras model (NumPy reference) must match
onnxruntime; the one-hot cases feed every kind of index (in range, negative, fractional, past
the depth), since the composition is exact on all of them. The fixture made by the real
tf2onnx from a tf_keras model built like Magika (``fixtures/make_tf2onnx_forms_fixture.py``)
converts with the default check; real Keras 3 and real tfjs run it in
``tests/interop/test_onnx_to_keras_tf_compositions.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.converters.onnx_to_keras import raise_model
from modelport.converters.onnx_to_keras.onehot import tables
from modelport.errors import UnsupportedError
from modelport.models import tfjs_support
from modelport.runtime.keras_reference import run

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "tf2onnx_forms"
RNG = np.random.default_rng(3)


def _w(*shape):
    return (RNG.standard_normal(shape) * 0.5).astype(np.float32)


def N(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, name=f"{op.lower()}_{outs[0]}", **attrs)


def _model(nodes, x_shape, consts, opset=13):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


def _ort(proto, x):
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _raise(proto, x, for_tfjs=False):
    """The raised model, its output on ``x`` and onnxruntime's."""
    raised = raise_model(ir.from_proto(proto), for_tfjs=for_tfjs)
    assert raised.input_perms == [None] and raised.output_perms == [None]
    return raised, np.asarray(run(raised.model, [x]).outputs[0]), _ort(proto, x)


def _classes(raised) -> list[str]:
    return [layer.class_name for layer in raised.model.layers]


# --- OneHot(Cast(x)) --------------------------------------------------------------------------

DEPTH = 5
EVERY_INDEX = np.array([-9.0, -6.0, -5.5, -5.0, -4.5, -1.0, -0.99999994, -0.5, -0.0, 0.3, 1.0,
                        3.9, 4.0, 4.99, 5.0, 5.5, 7.0, 1e6, -1e6, 2.0], np.float32)


def _one_hot(cast_to: int, depth_type: int, on: float, rank: int = 2):
    nodes = [N("Cast", ["x"], ["i"], to=cast_to), N("OneHot", ["i", "depth", "values"], ["y"],
                                                    axis=-1)]
    depth = np.array([DEPTH], np.int32 if depth_type == TensorProto.INT32 else np.int64)
    shape = [None, 20] if rank == 2 else [None, 4, 5]
    return _model(nodes, shape, {"depth": depth, "values": np.array([0.0, on], np.float32)})


ONE_HOT_CASES = {
    "int32-indices-int32-depth": (TensorProto.INT32, TensorProto.INT32, 1.0, 2),
    "int64-indices-int64-depth": (TensorProto.INT64, TensorProto.INT64, 1.0, 2),
    "on-value-2.5": (TensorProto.INT32, TensorProto.INT32, 2.5, 2),
    "rank3-indices": (TensorProto.INT32, TensorProto.INT32, 1.0, 3),
}


@pytest.mark.parametrize("for_tfjs", [False, True], ids=["keras", "tfjs"])
@pytest.mark.parametrize("case", ONE_HOT_CASES)
def test_one_hot_of_a_cast_is_two_embeddings_exact_on_every_index(case, for_tfjs):
    cast_to, depth_type, on, rank = ONE_HOT_CASES[case]
    proto = _one_hot(cast_to, depth_type, on, rank)
    x = np.stack([EVERY_INDEX, RNG.permutation(EVERY_INDEX)])
    x = x if rank == 2 else x.reshape(2, 4, 5)
    raised, got, want = _raise(proto, x, for_tfjs)
    classes = _classes(raised)
    assert classes.count("Embedding") == 2
    assert ("ThresholdedReLU" in classes) == for_tfjs  # tfjs-layers' ReLU has no threshold
    np.testing.assert_array_equal(got, want)  # sums of on, -on and zeros: exact


def _one_hot_dense(tensordot: bool, bias: bool, on: float = 1.0):
    """OneHot of a cast, then a Dense: tf2onnx's Tensordot (``Reshape([-1, D]) -> MatMul ->
    Reshape``) or a MatMul; the bias an Add."""
    nodes = [N("Cast", ["x"], ["i"], to=TensorProto.INT32),
             N("OneHot", ["i", "depth", "values"], ["h"], axis=-1)]
    consts = {"depth": np.array([DEPTH], np.int32), "values": np.array([0.0, on], np.float32),
              "w": _w(DEPTH, 3) * 7, "b": _w(3) * 3}
    last = "y" if not bias else "d"
    if tensordot:
        nodes += [N("Reshape", ["h", "rows"], ["m"]), N("MatMul", ["m", "w"], ["mm"]),
                  N("Shape", ["h"], ["s"]), N("Gather", ["s", "first2"], ["lead"], axis=0),
                  N("Concat", ["lead", "units"], ["back"], axis=0),
                  N("Reshape", ["mm", "back"], [last])]
        consts.update({"rows": np.array([-1, DEPTH], np.int64),
                       "first2": np.array([0, 1], np.int64), "units": np.array([3], np.int64)})
    else:
        nodes.append(N("MatMul", ["h", "w"], [last]))
    if bias:
        nodes.append(N("Add", ["d", "b"], ["y"]))
    return _model(nodes, [None, 20], consts)


@pytest.mark.parametrize("tensordot,bias,on", [(True, True, 1.0), (True, False, 1.0),
                                               (False, True, 2.5), (False, False, 1.0)],
                         ids=["tensordot-bias", "tensordot", "matmul-bias-on2.5", "matmul"])
def test_a_dense_after_the_one_hot_folds_into_the_tables_exactly(tensordot, bias, on):
    proto = _one_hot_dense(tensordot, bias, on)
    x = np.stack([EVERY_INDEX, RNG.permutation(EVERY_INDEX)])
    raised, got, want = _raise(proto, x)
    classes = _classes(raised)
    assert classes.count("Embedding") == 2 and "Dense" not in classes
    assert all(layer.config["output_dim"] == 3 for layer in raised.model.layers
               if layer.class_name == "Embedding")
    np.testing.assert_array_equal(got, want)


def test_one_hot_tables_read_back_onnx_one_hot():
    """``P[clip(x, 0, D) + (D + 1) [x <= -1]] + N[clip(-x, 0, D + 1)]`` is ONNX's OneHot of
    trunc(x), by NumPy."""
    pos, neg = tables(DEPTH, 1.0)
    for x in EVERY_INDEX[np.abs(EVERY_INDEX) < 100]:
        n = int(np.trunc(x))
        want = np.zeros(DEPTH, np.float32)
        if -DEPTH <= n < DEPTH:
            want[n % DEPTH] = 1.0
        index = np.clip(x, 0, DEPTH) + (DEPTH + 1) * (x <= -1)
        got = pos[int(index)] + neg[int(np.clip(-x, 0, DEPTH + 1))]
        np.testing.assert_array_equal(got, want, err_msg=f"x = {x}")


@pytest.mark.parametrize("values,why", [
    ([0.5, 1.0], "an off value other than 0"),
])
def test_one_hot_without_an_exact_composition_stays_refused(values, why):
    nodes = [N("Cast", ["x"], ["i"], to=TensorProto.INT32),
             N("OneHot", ["i", "depth", "values"], ["y"], axis=-1)]
    proto = _model(nodes, [None, 6], {"depth": np.array([DEPTH], np.int32),
                                      "values": np.array(values, np.float32)})
    with pytest.raises(UnsupportedError, match="OneHot node"):
        raise_model(ir.from_proto(proto))


# --- TF's layer normalization -----------------------------------------------------------------

def _tf_layer_norm(axes, form):
    """``tf.nn.batch_normalization`` over ``axes`` as tf2onnx writes it: ``x * inv + shift``
    with ``inv = gamma / sqrt(var + eps)`` and ``shift`` ``beta - mean * inv`` ("sub"),
    ``-(mean * inv)`` ("neg", no beta) or ``-mean * inv + beta`` ("neg-mean")."""
    nodes = [N("ReduceMean", ["x"], ["mean"], axes=axes, keepdims=1),
             N("Sub", ["x", "mean"], ["d"]), N("Mul", ["d", "d"], ["sq"]),
             N("ReduceMean", ["sq"], ["var"], axes=axes, keepdims=1),
             N("Add", ["var", "eps"], ["ve"]), N("Sqrt", ["ve"], ["sd"]),
             N("Reciprocal", ["sd"], ["r"]), N("Mul", ["r", "gamma"], ["inv"]),
             N("Mul", ["x", "inv"], ["xs"])]
    if form == "sub":
        nodes += [N("Mul", ["mean", "inv"], ["ms"]), N("Sub", ["beta", "ms"], ["shift"])]
    elif form == "neg":
        nodes += [N("Mul", ["mean", "inv"], ["ms"]), N("Neg", ["ms"], ["shift"])]
    else:
        nodes += [N("Neg", ["mean"], ["nm"]), N("Mul", ["nm", "inv"], ["ms"]),
                  N("Add", ["ms", "beta"], ["shift"])]
    return nodes + [N("Add", ["xs", "shift"], ["y"])]


LAYER_NORM_CASES = {  # id -> (axes, form, x shape, gamma/beta shape)
    "axis1-sub-form": ([1], "sub", [None, 6, 5], (1, 6, 1)),
    "axis1-neg-form-no-beta": ([1], "neg", [None, 6, 5], (1, 6, 1)),
    "last-axis-sub-form": ([2], "sub", [None, 6, 5], (5,)),
    "axes12-neg-mean-form": ([1, 2], "neg-mean", [None, 3, 4, 2], (1, 3, 4, 1)),
}


@pytest.mark.parametrize("case", LAYER_NORM_CASES)
def test_tf_layer_norm_forms_raise_as_one_layer_normalization(case):
    axes, form, shape, weights = LAYER_NORM_CASES[case]
    consts = {"eps": np.float32(1e-3), "gamma": _w(*weights), "beta": _w(*weights)}
    if form == "neg":
        del consts["beta"]
    proto = _model(_tf_layer_norm(axes, form), shape, consts)
    x = RNG.standard_normal([3, *shape[1:]]).astype(np.float32) * 2 + 1
    raised, got, want = _raise(proto, x)
    norms = [layer for layer in raised.model.layers if layer.class_name == "LayerNormalization"]
    assert len(norms) == 1 and norms[0].config["axis"] == axes
    assert norms[0].config["center"] == (form != "neg")
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


# --- Reshapes ---------------------------------------------------------------------------------

def _batch_reshape_then_dense():
    """``Reshape(x, [batch of x, 6, -1])`` (Keras's Reshape((6, -1)) as tf2onnx writes it),
    then a Dense on the sized last axis (tf2onnx's Tensordot)."""
    nodes = [N("Shape", ["x"], ["s"]),
             N("Slice", ["s", "zero", "one", "zero"], ["b"]),
             N("Concat", ["b", "six", "minus1"], ["t"], axis=0),
             N("Reshape", ["x", "t"], ["r"]),
             N("Reshape", ["r", "rows"], ["m"]), N("MatMul", ["m", "w"], ["mm"]),
             N("Shape", ["r"], ["rs"]), N("Gather", ["rs", "first2"], ["lead"], axis=0),
             N("Concat", ["lead", "units"], ["back"], axis=0),
             N("Reshape", ["mm", "back"], ["y"])]
    consts = {"zero": np.array([0], np.int64), "one": np.array([1], np.int64),
              "six": np.array([6], np.int64), "minus1": np.array([-1], np.int64),
              "rows": np.array([-1, 8], np.int64), "w": _w(8, 3),
              "first2": np.array([0, 1], np.int64), "units": np.array([3], np.int64)}
    return _model(nodes, [None, 12, 4], consts)


def _tensordot_rows():
    """tf2onnx's Tensordot with the row merge as ``Reshape([1, -1, 0]) -> Squeeze(0)``."""
    nodes = [N("Reshape", ["x", "flat"], ["f"]), N("Squeeze", ["f", "zero"], ["m"]),
             N("MatMul", ["m", "w"], ["mm"]),
             N("Shape", ["x"], ["s"]), N("Gather", ["s", "first2"], ["lead"], axis=0),
             N("Concat", ["lead", "units"], ["back"], axis=0),
             N("Reshape", ["mm", "back"], ["r"]), N("Add", ["r", "bias"], ["y"])]
    consts = {"flat": np.array([1, -1, 0], np.int64), "zero": np.array([0], np.int64),
              "w": _w(8, 3), "first2": np.array([0, 1], np.int64),
              "units": np.array([3], np.int64), "bias": _w(3)}
    return _model(nodes, [None, 5, 8], consts)


@pytest.mark.parametrize("make", [_batch_reshape_then_dense, _tensordot_rows],
                         ids=["batch-reshape", "tensordot-rows"])
def test_reshapes_tf2onnx_writes_raise_to_a_dense(make):
    proto = make()
    x = RNG.standard_normal([3, *[d.dim_value for d in
                                  proto.graph.input[0].type.tensor_type.shape.dim[1:]]])
    raised, got, want = _raise(proto, x.astype(np.float32))
    assert "Dense" in _classes(raised)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


# --- powers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2.0, 3.0])
def test_square_and_cube_are_multiplies_bit_identical_to_onnxruntime(n):
    proto = _model([N("Pow", ["x", "n"], ["y"])], [None, 7], {"n": np.float32(n)})
    x = (RNG.standard_normal((64, 7)) * 3).astype(np.float32)
    raised, got, want = _raise(proto, x)
    assert _classes(raised) == ["InputLayer", "Multiply"]
    np.testing.assert_array_equal(got, want)


def test_powers_for_tfjs_read_copies_made_by_reshape():
    """The copies tfjs-layers needs (it disposes a tensor one layer reads twice while another
    still needs it) are made as the layers-model is written (``tfjs_rewrites``)."""
    proto = _model([N("Relu", ["x"], ["r"]), N("Pow", ["r", "n"], ["p"]),
                    N("Add", ["p", "r"], ["y"])], [None, 7], {"n": np.float32(3)})
    raised = raise_model(ir.from_proto(proto), for_tfjs=True)
    prepared = tfjs_support.prepare(raised.model)
    assert [layer.class_name for layer in prepared.layers].count("Reshape") == 2
    x = (RNG.standard_normal((8, 7)) * 3).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(run(prepared, [x]).outputs[0]), _ort(proto, x))


@pytest.mark.parametrize("n", [4.0, 0.5, -1.0])
def test_other_powers_stay_refused(n):
    proto = _model([N("Pow", ["x", "n"], ["y"])], [None, 7], {"n": np.float32(n)})
    with pytest.raises(UnsupportedError, match="Pow node.*power of 2 or 3"):
        raise_model(ir.from_proto(proto))


# --- the real tf2onnx ---------------------------------------------------------------------------

@pytest.mark.parametrize("to,suffix", [("keras", ".keras"), ("h5", ".h5")])
def test_tf2onnx_byte_classifier_converts_with_the_default_check(to, suffix, tmp_path):
    src = FIXTURE / "byte_classifier.onnx"
    report = modelport.convert(src, tmp_path / f"m{suffix}", to=to)
    assert report.parity is not None and report.parity.passed
    proto = onnx.load(str(src))
    data = np.load(FIXTURE / "byte_classifier.npz")
    raised, got, want = _raise(proto, data["x"])
    classes = _classes(raised)
    assert classes.count("Embedding") == 2 and classes.count("LayerNormalization") == 2
    assert classes.count("Dense") == 2  # the first folded into the lookups
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-5)
    # tf_keras agrees where its tf.one_hot and ONNX's OneHot agree (row 0 holds indices they
    # read differently: TF gives negatives a zero row, ONNX counts them back from the end)
    np.testing.assert_allclose(got[1:], data["keras"][1:], atol=1e-6, rtol=1e-5)


def test_tf2onnx_tanh_gelu_converts_with_the_default_check(tmp_path):
    src = FIXTURE / "gelu_tanh.onnx"
    report = modelport.convert(src, tmp_path / "m.keras")
    assert report.parity is not None and report.parity.passed
    data = np.load(FIXTURE / "gelu_tanh.npz")
    raised, got, want = _raise(onnx.load(str(src)), data["x"])
    assert "Multiply" in _classes(raised)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(got, data["keras"], atol=1e-5, rtol=1e-5)


def test_the_check_draws_one_hot_indices_inside_the_depth():
    """A float input read as OneHot indices (through a Cast) is bounded by the depth, so the
    seeded probes are whole numbers in [0, depth): the vocabulary, not values around 0."""
    from modelport.check.probes import seeded_probes
    from modelport.runtime.engines import OnnxRuntime

    specs = OnnxRuntime(str(FIXTURE / "byte_classifier.onnx")).inputs()
    assert [s.high for s in specs] == [17]
    for probe in seeded_probes(specs, batch=4, seed=0):
        x = probe.arrays[0]
        assert x.dtype == np.float32 and x.min() >= 0 and x.max() < 17
        assert np.array_equal(x, np.trunc(x)) and np.unique(x).size > 10
