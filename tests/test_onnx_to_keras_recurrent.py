"""ONNX LSTM / GRU / RNN raised to Keras recurrent layers (``onnx_to_keras/recurrent.py``).

1. Round trips of every recurrent model the real frameworks made (fixtures/layers, the keras2 /
   keras3 ``recurrent`` and ``gru_reset_after`` models, the tfjs ones with recurrent layers):
   Keras -> ONNX (modelport's own route) -> raised Keras layers, run in the NumPy Keras reference
   and compared with the outputs the framework recorded. Where that route writes a ``Scan`` loop
   instead of a fused op (hard_sigmoid, GRU reset_after=False, ConvLSTM, a Keras mask) the
   layer, and the keras.ops computing its mask, are raised by re-lowering them
   (``onnx_to_keras/relower.py``) and must match too.
2. Real Keras 3 loads the raised models (.h5 and .keras) and predicts the same numbers; a stack of
   recurrent layers and an encoder-decoder built here with Keras raise to the same layers.
3. Hand-made ONNX graphs in the shapes PyTorch and other exporters write (two directions in one
   op, Gather of a direction, layout=1, reverse direction, GRU linear_before_reset=0,
   stacked ops, states handed on) against onnxruntime (the ONNX reference evaluator for
   layout=1, which onnxruntime does not run), and the refusals.

The ONNX package's pytorch-operator / pytorch-converted suites hold no LSTM/GRU/RNN case (checked
by ``test_onnx_suites_hold_no_recurrent_case``, which fails once one appears).
"""

from __future__ import annotations

import re

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport
from modelport.converters.onnx_to_keras import raise_model
from modelport.errors import UnsupportedError
from modelport.runtime.keras_reference import run
from tests.conftest import ALL_CASES, LAYER_CASES, assert_close
from tests.test_onnx_to_keras_roundtrip import REFUSED

RECURRENT_CLASSES = {"LSTM", "GRU", "SimpleRNN", "Bidirectional", "ConvLSTM2D"}
RECURRENT_OPS = {"LSTM", "GRU", "RNN"}
# Models the Keras -> ONNX route writes with Scan loops (raised by re-lowering): a mask
# (Masking, Embedding mask_zero), activations outside cuDNN's (hard_sigmoid), GRU
# reset_after=False, ConvLSTM2D. The ``recurrent`` models hold a GRU(reset_after=False).
SCAN_CASES = {
    "Masking-LSTM-return_sequences", "Embedding-mask_zero-LSTM", "Embedding-mask_zero-GRU",
    "GRU-activations", "LSTM-activations", "GRU-reset_after-false",
    "GRU-reset_after-false-return_sequences", "GRU-reset_after-false-return_state",
    "GRU-reset_after-false-go_backwards-return_sequences", "GRU-reset_after-false-activations",
    "ConvLSTM2D-same-return_sequences", "ConvLSTM2D-valid", "recurrent", "tfjs_gru_hard_sigmoid",
}
KERAS_LOAD_CASES = ["LSTM", "GRU", "SimpleRNN", "LSTM-return_state", "LSTM-initial_state",
                    "Bidirectional-LSTM-concat", "Bidirectional-GRU-None",
                    "Bidirectional-GRU-concat-last", "GRU-go_backwards-return_sequences"]
ATOL, RTOL = 1e-4, 1e-3


def _is_recurrent_case(case) -> bool:
    layer_class = getattr(case, "layer_class", None)
    if case.id in REFUSED:  # an attention case with an LSTM after it: its raising is refused
        return False
    if layer_class is not None:
        return layer_class in RECURRENT_CLASSES or any(k in case.name for k in ("LSTM", "GRU",
                                                                                "RNN"))
    return case.name in ("recurrent", "gru_reset_after") or case.id in (
        "tfjs/tfjs_functional", "tfjs/tfjs_gru_hard_sigmoid")


ROUND_TRIP_CASES = [c for c in LAYER_CASES + ALL_CASES if _is_recurrent_case(c)]


def _to_onnx(case, tmp_path) -> ir.Model:
    path = tmp_path / "m.onnx"
    modelport.convert(case.path, path)
    return ir.load(str(path))


def _recurrent_ops(model: ir.Model) -> set[str]:
    return {n.op_type for n in model.graph.all_nodes()} & (RECURRENT_OPS | {"Scan"})


# --- 1. round trips of the framework-made models --------------------------------------------------

def test_round_trip_cases_cover_every_recurrent_class():
    assert len(ROUND_TRIP_CASES) >= 30
    classes = {getattr(c, "layer_class", None) for c in ROUND_TRIP_CASES}
    assert {"LSTM", "GRU", "SimpleRNN", "Bidirectional", "ConvLSTM2D"} <= classes
    assert {c.name for c in ROUND_TRIP_CASES} >= SCAN_CASES


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in ROUND_TRIP_CASES])
def test_round_trip(case, tmp_path):
    model = _to_onnx(case, tmp_path)
    if case.name in SCAN_CASES:
        assert "Scan" in _recurrent_ops(model), "the route now fuses it: move it out of SCAN_CASES"
    else:
        assert _recurrent_ops(model) and "Scan" not in _recurrent_ops(model)
    raised = raise_model(model)
    assert all(p is None for p in raised.input_perms + raised.output_perms)
    outputs = run(raised.model, [a for _, a in case.inputs]).outputs
    assert len(outputs) == len(case.outputs)
    for got, (name, want) in zip(outputs, case.outputs):
        assert_close(got, want, atol=ATOL, rtol=RTOL, what=f"{case.id} {name}")
    classes = {layer.class_name for layer in raised.model.layers}
    assert classes & {"LSTM", "GRU", "SimpleRNN", "Bidirectional", "ConvLSTM2D"}
    assert not classes & {"Permute", "Reshape"}, "the time-major Transposes leaked out as layers"


@pytest.mark.parametrize("name", ["Bidirectional-LSTM-concat", "Bidirectional-GRU-None",
                                  "Bidirectional-LSTM-ave"])
def test_two_keras_route_directions_become_one_bidirectional(name, tmp_path):
    case = next(c for c in LAYER_CASES if c.name == name)
    raised = raise_model(_to_onnx(case, tmp_path))
    (layer,) = [lay for lay in raised.model.layers if lay.class_name != "InputLayer"]
    assert layer.class_name == "Bidirectional"
    assert layer.config["merge_mode"] == case.entry["config"]["merge_mode"]
    assert [w.path for w in layer.weights][:3] == [
        "forward_layer/cell/kernel", "forward_layer/cell/recurrent_kernel",
        "forward_layer/cell/bias"]
    assert layer.config["backward_layer"]["config"]["go_backwards"] is True


# --- 2. real Keras reads what was raised ----------------------------------------------------------

def _keras_predict(keras, path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    model = keras.saving.load_model(path, compile=False)
    out = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


@pytest.mark.parametrize("name", KERAS_LOAD_CASES)
@pytest.mark.parametrize("fmt", ["h5", "keras"])
def test_real_keras_loads_raised(keras3, name, fmt, tmp_path):
    case = next(c for c in LAYER_CASES if c.name == name)
    raised = raise_model(_to_onnx(case, tmp_path))
    path = tmp_path / f"raised.{fmt}"
    modelport.save(raised.model, path)
    got = _keras_predict(keras3, path, [a for _, a in case.inputs])
    assert len(got) == len(case.outputs)
    for g, (out, want) in zip(got, case.outputs):
        assert_close(g, want, atol=ATOL, rtol=RTOL, what=f"{name} {fmt} {out}")


def _raise_keras_built(keras, model, inputs: list[np.ndarray], tmp_path):
    """Keras model -> .keras -> ONNX -> raised; outputs compared with Keras's own."""
    src = tmp_path / "built.keras"
    model.save(src)
    want = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    want = want if isinstance(want, (list, tuple)) else [want]
    modelport.convert(src, tmp_path / "built.onnx")
    raised = raise_model(ir.load(str(tmp_path / "built.onnx")))
    got = run(raised.model, inputs).outputs
    for g, w in zip(got, want):
        assert_close(g, np.asarray(w), atol=ATOL, rtol=RTOL, what="raised vs Keras")
    out = tmp_path / "raised.h5"
    modelport.save(raised.model, out)
    for g, w in zip(_keras_predict(keras, out, inputs), want):
        assert_close(g, np.asarray(w), atol=ATOL, rtol=RTOL, what="reloaded vs Keras")
    return raised


def test_stacked_layers_raise_to_the_same_stack(keras3, tmp_path):
    """Stacked fused ops meet time-major (layout.optimize cancels the Transposes between
    them), a go_backwards layer's reversed input and two Bidirectionals."""
    k = keras3
    keras_seed = np.random.default_rng(7)
    x = k.Input((6, 3))
    y = k.layers.LSTM(5, return_sequences=True)(x)
    y = k.layers.SimpleRNN(4, return_sequences=True, go_backwards=True)(y)
    y = k.layers.Bidirectional(k.layers.LSTM(3, return_sequences=True))(y)
    y = k.layers.Bidirectional(k.layers.GRU(3), merge_mode="sum")(y)
    model = k.Model(x, k.layers.Dense(2)(y))
    _randomize(model, keras_seed)
    raised = _raise_keras_built(k, model, [keras_seed.normal(size=(2, 6, 3)).astype("float32")],
                                tmp_path)
    classes = [lay.class_name for lay in raised.model.layers]
    assert classes == ["InputLayer", "LSTM", "SimpleRNN", "Bidirectional", "Bidirectional",
                       "Dense"]


def test_layers_around_recurrent_ones_compute_on_time_major_views(keras3, tmp_path):
    """layout.optimize sinks the Transpose after a recurrent op below elementwise ops and the
    input side hoists it above Relu: those ops then read time-major values, and are raised as
    the same layers on the batch-first Keras tensors."""
    k = keras3
    rng = np.random.default_rng(9)
    x = k.Input((6, 3))
    y = k.layers.Dense(5, activation="relu")(x)
    y = k.layers.GRU(4, return_sequences=True)(y)
    y = k.layers.Activation("tanh")(y)
    y = k.layers.LayerNormalization()(k.layers.Add()([y, y]))
    model = k.Model(x, y)
    _randomize(model, rng)
    raised = _raise_keras_built(k, model, [rng.normal(size=(2, 6, 3)).astype("float32")],
                                tmp_path)
    assert [lay.class_name for lay in raised.model.layers] == [
        "InputLayer", "Dense", "Activation", "GRU", "Activation", "Add", "LayerNormalization"]


def test_independent_directions_stay_two_layers(keras3, tmp_path):
    """A go_backwards LSTM beside a forward one, concatenated in processing order: two
    layers, not a Bidirectional (which would return the backward one in time order)."""
    k = keras3
    rng = np.random.default_rng(10)
    x = k.Input((6, 3))
    y = k.layers.Concatenate()([k.layers.LSTM(4, return_sequences=True, go_backwards=True)(x),
                                k.layers.LSTM(4, return_sequences=True)(x)])
    model = k.Model(x, y)
    _randomize(model, rng)
    raised = _raise_keras_built(k, model, [rng.normal(size=(2, 6, 3)).astype("float32")],
                                tmp_path)
    assert [lay.class_name for lay in raised.model.layers] == [
        "InputLayer", "LSTM", "LSTM", "Concatenate"]


def test_stacked_bidirectionals_with_two_outputs(keras3, tmp_path):
    k = keras3
    rng = np.random.default_rng(11)
    x = k.Input((6, 3))
    y = k.layers.Bidirectional(k.layers.GRU(4, return_sequences=True), merge_mode="mul")(x)
    y = k.layers.Bidirectional(k.layers.LSTM(3, return_sequences=True), merge_mode=None)(y)
    model = k.Model(x, y)
    _randomize(model, rng)
    raised = _raise_keras_built(k, model, [rng.normal(size=(2, 6, 3)).astype("float32")],
                                tmp_path)
    assert [lay.config.get("merge_mode") for lay in raised.model.layers[1:]] == ["mul", None]
    assert len(raised.model.outputs) == 2


def test_encoder_states_become_initial_state(keras3, tmp_path):
    k = keras3
    rng = np.random.default_rng(8)
    x, y = k.Input((5, 3)), k.Input((4, 2))
    _, h, c = k.layers.LSTM(4, return_state=True)(x)
    out = k.layers.LSTM(4, return_sequences=True)(y, initial_state=[h, c])
    model = k.Model([x, y], out)
    _randomize(model, rng)
    inputs = [rng.normal(size=(2, 5, 3)).astype("float32"),
              rng.normal(size=(2, 4, 2)).astype("float32")]
    raised = _raise_keras_built(k, model, inputs, tmp_path)
    decoder = [lay for lay in raised.model.layers if lay.class_name == "LSTM"][-1]
    assert len(decoder.inbound_nodes[0].kwargs["initial_state"]) == 2


def _randomize(model, rng) -> None:
    """Non-zero biases too, so that a bias placed in the wrong gate shows."""
    for w in model.weights:
        w.assign(rng.normal(scale=0.5, size=w.shape).astype("float32"))


# --- 3. hand-made ONNX graphs ---------------------------------------------------------------------

T, B, I, H = 5, 2, 3, 4
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
AXES = {f"axis{a}": np.asarray([a], np.int64) for a in range(3)}  # Squeeze/Slice axes


def _weights(op: str, dirs: int = 1, seed: int = 0, prefix: str = "") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    g = GATES[op]
    return {f"{prefix}W": rng.normal(scale=0.5, size=(dirs, g * H, I)).astype(np.float32),
            f"{prefix}R": rng.normal(scale=0.5, size=(dirs, g * H, H)).astype(np.float32),
            f"{prefix}B": rng.normal(scale=0.5, size=(dirs, 2 * g * H)).astype(np.float32)}


def _ints(name: str, values) -> dict[str, np.ndarray]:
    return {name: np.asarray(values, np.int64)}


def _model(nodes, outputs: list[str], inits: dict[str, np.ndarray],
           inputs: dict[str, list] | None = None) -> onnx.ModelProto:
    inputs = inputs or {"x": ["batch", T, I]}
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                     for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(a, n) for n, a in {**AXES, **inits}.items()])
    # IR 8: the onnxruntime installed reads no newer IR
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _feeds(model: onnx.ModelProto, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {v.name: [d.dim_value or B for d in v.type.tensor_type.shape.dim]
              for v in model.graph.input}
    return {n: rng.normal(size=s).astype(np.float32) for n, s in shapes.items()}


def _expected(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    if any(a.name == "layout" and a.i == 1 for n in model.graph.node for a in n.attribute):
        from onnx.reference import ReferenceEvaluator  # onnxruntime refuses layout=1

        return ReferenceEvaluator(model).run(None, feeds)
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _check(model: onnx.ModelProto, classes: list[str]):
    """Raise, run in the Keras reference, compare with the ONNX runtime; the layer classes."""
    feeds = _feeds(model)
    want = _expected(model, feeds)
    raised = raise_model(ir.from_proto(model))
    assert all(p is None for p in raised.input_perms + raised.output_perms)
    order = [v.name for v in model.graph.input]
    got = run(raised.model, [feeds[n] for n in order]).outputs
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, atol=ATOL, rtol=RTOL, what=f"output {i}")
    assert [lay.class_name for lay in raised.model.layers
            if lay.class_name != "InputLayer"] == classes
    return raised


def _refused(model: onnx.ModelProto, op: str, why: str) -> None:
    with pytest.raises(UnsupportedError) as err:
        raise_model(ir.from_proto(model))
    message = str(err.value)
    assert re.search(rf"{op} node '[^']+': [^;]*{why}", message), message


def _batch_first(x: str, out: str) -> onnx.NodeProto:
    return helper.make_node("Transpose", [x], [out], perm=[1, 0, 2])


def _squeeze(x: str, out: str, axis: int) -> list[onnx.NodeProto]:
    return [helper.make_node("Squeeze", [x, f"axis{axis}"], [out])]


def _pytorch_lstm(**attrs) -> onnx.ModelProto:
    """torch.nn.LSTM(batch_first=True) as PyTorch exports it: Transpose, LSTM with zero
    initial states, Squeeze + Transpose of Y; here the final h and c squeezed too."""
    inits = {**_weights("LSTM"), "h0": np.zeros((1, B, H), np.float32),
             "c0": np.zeros((1, B, H), np.float32)}
    nodes = [_batch_first("x", "xt"),
             helper.make_node("LSTM", ["xt", "W", "R", "B", "", "h0", "c0"], ["Y", "Yh", "Yc"],
                              hidden_size=H, **attrs),
             *_squeeze("Y", "ys", 1), _batch_first("ys", "y"),
             *_squeeze("Yh", "h", 0), *_squeeze("Yc", "c", 0)]
    return _model(nodes, ["y", "h", "c"], inits)


def test_pytorch_lstm_batch_first_with_states():
    raised = _check(_pytorch_lstm(), ["LSTM"])
    layer = raised.model.layers[-1]
    assert layer.config["return_sequences"] and layer.config["return_state"]


@pytest.mark.parametrize("how", ["ConstantOfShape", "Expand"])
def test_pytorch_zero_states_made_at_run_time(how):
    """h0 = torch.zeros(1, x.size(0), H) exports as ConstantOfShape (or Expand of a zero) of
    [1, batch, H] from Shape(x): zeros, which Keras starts from; the shape ops are not raised."""
    shape = [helper.make_node("Shape", ["x"], ["xs"]),
             helper.make_node("Gather", ["xs", "zero_i"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "axis0"], ["n1"]),
             helper.make_node("Concat", ["one_i", "n1", "hid"], ["hshape"], axis=0)]
    if how == "ConstantOfShape":
        make = [helper.make_node("ConstantOfShape", ["hshape"], ["h0"],
                                 value=numpy_helper.from_array(np.zeros(1, np.float32)))]
    else:
        make = [helper.make_node("Expand", ["zero_f", "hshape"], ["h0"])]
    inits = {**_weights("LSTM"), "zero_i": np.asarray(0, np.int64),
             "one_i": np.asarray([1], np.int64), "hid": np.asarray([H], np.int64),
             "zero_f": np.zeros(1, np.float32)}
    nodes = [*shape, *make, _batch_first("x", "xt"),
             helper.make_node("LSTM", ["xt", "W", "R", "B", "", "h0", "h0"], ["Y", "Yh", "Yc"],
                              hidden_size=H),
             *_squeeze("Y", "ys", 1), _batch_first("ys", "y")]
    _check(_model(nodes, ["y"], inits), ["LSTM"])


def _bidirectional(op: str, tail: list[onnx.NodeProto], outputs: list[str],
                   extra: dict | None = None, **attrs) -> onnx.ModelProto:
    inits = {**_weights(op, dirs=2), **(extra or {})}
    outs = ["Y", "Yh"] + (["Yc"] if op == "LSTM" else [])
    nodes = [_batch_first("x", "xt"),
             helper.make_node(op, ["xt", "W", "R", "B"], outs, hidden_size=H,
                              direction="bidirectional", **attrs), *tail]
    return _model(nodes, outputs, inits)


def test_pytorch_bidirectional_concat_and_backward_state():
    """PyTorch: Y -> Transpose(0, 2, 1, 3) -> Reshape [0, 0, -1] -> batch-first; h_n[1]."""
    tail = [helper.make_node("Transpose", ["Y"], ["Yt"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", ["Yt", "shape"], ["ycat"]), _batch_first("ycat", "y"),
            helper.make_node("Gather", ["Yh", "one"], ["h_back"], axis=0)]
    extra = {**_ints("shape", [0, 0, -1]), "one": np.asarray(1, np.int64)}
    raised = _check(_bidirectional("GRU", tail, ["y", "h_back"], extra, linear_before_reset=1),
                    ["Bidirectional"])
    config = raised.model.layers[-1].config
    assert config["merge_mode"] == "concat" and config["layer"]["config"]["return_state"]


def test_bidirectional_last_outputs_concatenated():
    """Y_h [2, B, H] -> Transpose(1, 0, 2) -> Reshape [B, 2H]: concat of the last outputs."""
    tail = [_batch_first("Yh", "Yht"), helper.make_node("Reshape", ["Yht", "shape"], ["h"])]
    raised = _check(_bidirectional("LSTM", tail, ["h"], _ints("shape", [0, -1])),
                    ["Bidirectional"])
    assert raised.model.layers[-1].config["layer"]["config"]["return_sequences"] is False


def test_bidirectional_directions_taken_and_summed():
    """Gather each direction, add them: merge_mode 'sum'."""
    tail = [helper.make_node("Gather", ["Y", "zero"], ["yf"], axis=1),
            helper.make_node("Gather", ["Y", "one"], ["yb"], axis=1),
            helper.make_node("Add", ["yf", "yb"], ["ysum"]), _batch_first("ysum", "y")]
    extra = {"zero": np.asarray(0, np.int64), "one": np.asarray(1, np.int64)}
    raised = _check(_bidirectional("RNN", tail, ["y"], extra), ["Bidirectional"])
    assert raised.model.layers[-1].config["merge_mode"] == "sum"


def test_refuses_split_of_the_directions():
    """A Split of Y's direction axis is neither a concatenation of the directions nor one of
    them: refused, naming the Split."""
    tail = [helper.make_node("Split", ["Y", "halves"], ["Yf", "Yb"], axis=1),
            *_squeeze("Yf", "yf", 1), *_squeeze("Yb", "yb", 1),
            helper.make_node("Add", ["yf", "yb"], ["ysum"]), _batch_first("ysum", "y")]
    _refused(_bidirectional("RNN", tail, ["y"], _ints("halves", [1, 1])), "RNN",
             "used by Split node '[^']+', which neither concatenates")


def test_bidirectional_directions_as_two_outputs():
    """Gather of each direction, both batch-first: merge_mode None."""
    tail = [helper.make_node("Gather", ["Y", "zero"], ["yf_t"], axis=1),
            helper.make_node("Gather", ["Y", "one"], ["yb_t"], axis=1),
            _batch_first("yf_t", "yf"), _batch_first("yb_t", "yb")]
    extra = {"zero": np.asarray(0, np.int64), "one": np.asarray(1, np.int64)}
    raised = _check(_bidirectional("LSTM", tail, ["yf", "yb"], extra), ["Bidirectional"])
    assert raised.model.layers[-1].config["merge_mode"] is None


def _single(op: str, tail: list[onnx.NodeProto], outputs: list[str], extra: dict | None = None,
            head: list[onnx.NodeProto] | None = None, x: str = "xt", weights=None,
            inputs: dict | None = None, **attrs) -> onnx.ModelProto:
    inits = {**(weights or _weights(op)), **(extra or {})}
    outs = ["Y", "Yh"] + (["Yc"] if op == "LSTM" else [])
    nodes = [*(head if head is not None else [_batch_first("x", "xt")]),
             helper.make_node(op, [x, "W", "R", "B"], outs, hidden_size=H, **attrs), *tail]
    return _model(nodes, outputs, inits, inputs)


def test_gru_linear_before_reset_0_with_recurrent_bias_and_hard_sigmoid():
    """reset_after=False; ONNX adds Rbh outside the reset product, so it folds into the input
    bias. HardSigmoid(1/6, 0.5) is Keras 3's hard_sigmoid."""
    tail = [*_squeeze("Y", "ys", 1), _batch_first("ys", "y")]
    raised = _check(_single("GRU", tail, ["y"], {},
                            linear_before_reset=0, activations=["HardSigmoid", "Relu"],
                            activation_alpha=[1 / 6], activation_beta=[0.5]), ["GRU"])
    config = raised.model.layers[-1].config
    assert config["reset_after"] is False and config["recurrent_activation"] == "hard_sigmoid"
    assert raised.model.layers[-1].weights[2].array.shape == (3 * H,)


def test_reverse_direction_last_state_is_go_backwards():
    tail = _squeeze("Yh", "h", 0)
    raised = _check(_single("RNN", tail, ["h"], {}, direction="reverse"),
                    ["SimpleRNN"])
    assert raised.model.layers[-1].config["go_backwards"] is True


def test_reverse_direction_sequence_put_in_processing_order():
    """ONNX's reverse direction returns Y in time order; Keras's go_backwards in processing
    order: a time reversal after it makes them one."""
    tail = [*_squeeze("Y", "ys", 1),
            helper.make_node("Slice", ["ys", "start", "end", "axis0", "step"], ["yr"]),
            _batch_first("yr", "y")]
    extra = {**_ints("start", [-1]),
             **_ints("end", [-(2 ** 63)]), **_ints("axis0", [0]), **_ints("step", [-1])}
    _check(_single("GRU", tail, ["y"], extra, direction="reverse", linear_before_reset=1),
           ["GRU"])


def test_reversed_input_is_go_backwards():
    head = [helper.make_node("Slice", ["x", "start", "end", "axis1", "step"], ["xr"]),
            _batch_first("xr", "xt")]
    extra = {**_ints("start", [-1]), **_ints("end", [-T - 1]),
             **_ints("axis1", [1]), **_ints("step", [-1])}
    tail = [*_squeeze("Y", "ys", 1), _batch_first("ys", "y")]
    raised = _check(_single("LSTM", tail, ["y"], extra, head=head), ["LSTM"])
    assert raised.model.layers[-1].config["go_backwards"] is True


def test_layout_1_batch_first():
    tail = [*_squeeze("Y", "y", 2), *_squeeze("Yh", "h", 1)]
    _check(_single("LSTM", tail, ["y", "h"], {}, head=[],
                   x="x", layout=1), ["LSTM"])


def test_stacked_ops_meet_time_major():
    """LSTM -> Squeeze -> LSTM: the second op reads the first's time-major sequence."""
    w2 = _weights("LSTM", seed=5, prefix="2")
    w2["2W"] = np.random.default_rng(6).normal(size=(1, 4 * H, H)).astype(np.float32)
    tail = [*_squeeze("Y", "ys", 1),
            helper.make_node("LSTM", ["ys", "2W", "2R", "2B"], ["Y2", "Yh2"], hidden_size=H),
            *_squeeze("Yh2", "h", 0)]
    _check(_single("LSTM", tail, ["h"], w2),
           ["LSTM", "LSTM"])


def test_states_handed_to_the_next_op():
    """Encoder Y_h / Y_c straight into the decoder's initial_h / initial_c."""
    w2 = _weights("LSTM", seed=5, prefix="2")
    tail = [helper.make_node("Transpose", ["x2"], ["x2t"], perm=[1, 0, 2]),
            helper.make_node("LSTM", ["x2t", "2W", "2R", "2B", "", "Yh", "Yc"], ["Y2"],
                             hidden_size=H),
            *_squeeze("Y2", "ys", 1), _batch_first("ys", "y")]
    raised = _check(_single("LSTM", tail, ["y"], w2,
                            inputs={"x": ["batch", T, I], "x2": ["batch", T, I]}),
                    ["LSTM", "LSTM"])
    lstms = [lay for lay in raised.model.layers if lay.class_name == "LSTM"]
    assert [lay.config["return_state"] for lay in lstms] == [True, False]
    assert len(lstms[1].inbound_nodes[0].kwargs["initial_state"]) == 2


# --- refusals -------------------------------------------------------------------------------------

def _last_state(op: str = "LSTM", **attrs) -> onnx.ModelProto:
    return _single(op, _squeeze("Yh", "h", 0), ["h"], {}, **attrs)


@pytest.mark.parametrize("attrs, why", [
    ({"clip": 3.0}, "clip"),
    ({"input_forget": 1}, "input_forget"),
    ({"activations": ["Sigmoid", "Tanh", "Relu"]}, "differ"),
    ({"activations": ["LeakyRelu", "Tanh", "Tanh"]}, "LeakyRelu"),
    ({"activations": ["HardSigmoid", "Tanh", "Tanh"]}, "not Keras's hard_sigmoid"),
], ids=["clip", "input_forget", "g-and-h-differ", "leaky-relu", "hard-sigmoid-0.2"])
def test_refuses_attributes_keras_lacks(attrs, why):
    _refused(_last_state(**attrs), "LSTM", why)


def test_refuses_sequence_lens_from_an_input():
    inits = _weights("GRU")
    nodes = [_batch_first("x", "xt"),
             helper.make_node("GRU", ["xt", "W", "R", "B", "lens"], ["Y", "Yh"], hidden_size=H),
             *_squeeze("Yh", "h", 0)]
    model = _model(nodes, ["h"], inits)
    model.graph.input.append(helper.make_tensor_value_info("lens", TensorProto.INT32, ["batch"]))
    _refused(model, "GRU", "sequence_lens")


def test_refuses_constant_non_zero_initial_state():
    inits = {**_weights("RNN"), "h0": np.ones((1, B, H), np.float32)}
    nodes = [_batch_first("x", "xt"),
             helper.make_node("RNN", ["xt", "W", "R", "B", "", "h0"], ["Y", "Yh"], hidden_size=H),
             *_squeeze("Yh", "h", 0)]
    _refused(_model(nodes, ["h"], inits), "RNN", "initial state that is a constant")


def test_refuses_reverse_sequence_in_time_order():
    """Keras's go_backwards returns the reversed order; nothing reverses it back here."""
    tail = [*_squeeze("Y", "ys", 1), _batch_first("ys", "y")]
    _refused(_single("RNN", tail, ["y"], {}, direction="reverse"),
             "RNN", "reversed time order")


def test_refuses_time_major_output():
    _refused(_single("GRU", _squeeze("Y", "ys", 1), ["ys"], {}),
             "GRU", "time-major")


def test_refuses_direction_axis_output():
    _refused(_single("LSTM", [], ["Yh"]), "LSTM", "direction axis")


def test_refuses_time_major_arithmetic():
    """An op computing along time or batch on the time-major sequence (here a Softmax over
    time) is refused by name; the recurrent op itself is fine."""
    tail = [*_squeeze("Y", "ys", 1), helper.make_node("Softmax", ["ys"], ["p"], axis=0),
            _batch_first("p", "y")]
    _refused(_single("GRU", tail, ["y"], {}), "Softmax", "time-major.*axis 0")


def test_onnx_suites_hold_no_recurrent_case():
    from tests.onnx_suite.cases import discover

    found = [c.id for coll in ("pytorch-operator", "pytorch-converted") for c in discover(coll)
             if RECURRENT_OPS & set(c.ops)]
    assert found == [], f"add these suite cases to the recurrent tests: {found}"
