"""Inputs fixed to a value (``--input-value``) and the one-step recurrent state Silero VAD
carries (issue 18: the voice-activity model that branches on its sample rate).

The graphs are Silero VAD v5's shapes in small, built with onnx's helper and run in
onnxruntime: a scalar ``sr`` that an ``If`` tests against 16000, and a decoder that runs an
``LSTM`` for one step on a ``[B, F]`` matrix from a state ``[2, B, H]`` (batch on axis 1),
returning the new state stacked the same way. The ``.keras`` files written are loaded by real
Keras 3 and compared with onnxruntime given the fixed value."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

import modelport
from modelport.cli import main
from modelport.converters.pinned_values import parse_input_values
from modelport.errors import UsageError
from modelport.runtime.engines import compared_values

from .onnx_graphs import model, value

F, H = 8, 4


def _decoder(prefix: str, rng: np.random.Generator) -> tuple[list, list]:
    """Silero's decoder in small, as PyTorch exports an LSTMCell: h, c picked from the state,
    one LSTM step, its states squeezed and stacked again on axis 0, and a mean over the hidden
    units as the probability."""
    p = prefix
    inits = [(f"{p}W", (rng.standard_normal((1, 4 * H, F)) * 0.4).astype(np.float32)),
             (f"{p}R", (rng.standard_normal((1, 4 * H, H)) * 0.4).astype(np.float32)),
             (f"{p}B", (rng.standard_normal((1, 8 * H)) * 0.1).astype(np.float32)),
             (f"{p}zero", np.asarray(0, np.int64)), (f"{p}one", np.asarray(1, np.int64)),
             (f"{p}ax0", np.asarray([0], np.int64)), (f"{p}ax1", np.asarray([1], np.int64))]
    n = helper.make_node
    nodes = [
        n("Gather", ["state", f"{p}zero"], [f"{p}h"], axis=0),
        n("Gather", ["state", f"{p}one"], [f"{p}c"], axis=0),
        n("Unsqueeze", ["x", f"{p}ax0"], [f"{p}X"]),
        n("Unsqueeze", [f"{p}h", f"{p}ax0"], [f"{p}h0"]),
        n("Unsqueeze", [f"{p}c", f"{p}ax0"], [f"{p}c0"]),
        n("LSTM", [f"{p}X", f"{p}W", f"{p}R", f"{p}B", "", f"{p}h0", f"{p}c0"],
          [f"{p}Y", f"{p}Yh", f"{p}Yc"], hidden_size=H),
        n("Squeeze", [f"{p}Yh", f"{p}ax0"], [f"{p}hn"]),
        n("Squeeze", [f"{p}Yc", f"{p}ax0"], [f"{p}cn"]),
        n("Unsqueeze", [f"{p}hn", f"{p}ax0"], [f"{p}h1"]),
        n("Unsqueeze", [f"{p}cn", f"{p}ax0"], [f"{p}c1"]),
        n("Concat", [f"{p}h1", f"{p}c1"], [f"{p}stateN"], axis=0),
        n("Relu", [f"{p}hn"], [f"{p}r"]),
        n("ReduceMean", [f"{p}r", f"{p}ax1"], [f"{p}prob"], keepdims=1),
    ]
    return nodes, inits


def one_step(batch: int | str = 1) -> onnx.ModelProto:
    """The decoder alone: inputs x [B, F] and state [2, B, H]."""
    nodes, inits = _decoder("", np.random.default_rng(0))
    return model(nodes, [value("x", TensorProto.FLOAT, [batch, F]),
                         value("state", TensorProto.FLOAT, [2, batch, H])],
                 [value("prob", TensorProto.FLOAT, [batch, 1]),
                  value("stateN", TensorProto.FLOAT, [2, batch, H])], inits, opset=18)


def switched() -> onnx.ModelProto:
    """``If(sr == 16000)``: one decoder per sample rate, with weights of their own."""
    rng = np.random.default_rng(1)
    branches, inits = [], []
    for name in ("k16", "k8"):
        nodes, own = _decoder(f"{name}_", rng)
        inits += own
        branches.append(helper.make_graph(
            nodes + [helper.make_node("Identity", [f"{name}_prob"], [f"{name}_p"]),
                     helper.make_node("Identity", [f"{name}_stateN"], [f"{name}_s"])],
            name, [], [value(f"{name}_p", TensorProto.FLOAT, ["B", 1]),
                       value(f"{name}_s", TensorProto.FLOAT, [2, "B", H])]))
    inits.append(("rate", np.asarray(16000, np.int64)))
    nodes = [helper.make_node("Equal", ["sr", "rate"], ["is16"]),
             helper.make_node("If", ["is16"], ["prob", "stateN"], then_branch=branches[0],
                              else_branch=branches[1])]
    return model(nodes, [value("x", TensorProto.FLOAT, ["B", F]),
                         value("state", TensorProto.FLOAT, [2, "B", H]),
                         value("sr", TensorProto.INT64, [])],
                 [value("prob", TensorProto.FLOAT, ["B", 1]),
                  value("stateN", TensorProto.FLOAT, [2, "B", H])], inits, opset=18)


def _ort(proto: onnx.ModelProto, feed: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def _cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def _streamed(loaded, proto: onnx.ModelProto, extra: dict) -> None:
    """Five steps with the state carried, real Keras 3 against onnxruntime."""
    rng = np.random.default_rng(7)
    state = np.zeros((2, 1, H), np.float32)
    kept = state.copy()
    for _ in range(5):
        x = rng.standard_normal((1, F)).astype(np.float32)
        prob, state = _ort(proto, {"x": x, "state": state, **extra})
        got = loaded([x, kept])
        kept = np.asarray(got[1])
        np.testing.assert_allclose(np.asarray(got[0]), prob, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(kept, state, rtol=1e-5, atol=1e-6)


def test_one_step_lstm_on_a_state_with_the_batch_second(tmp_path, keras3):
    """Pinned to one sample, the decoder raises: the LSTM over Unsqueeze(x, 0) is one Keras
    step, the state's halves and the stacked new state are operations on the literal shapes,
    and the mean a Mean operation; the state input keeps its [2, 1, H]."""
    src = tmp_path / "step.onnx"
    onnx.save(one_step("B"), src)
    dst = tmp_path / "step.keras"
    report = modelport.convert(src, dst, input_shapes={"x": (1, F), "state": (2, 1, H)})
    assert report.parity is not None and report.parity.passed, report.parity
    assert report.parity.intermediates.first_not_held is None
    written = modelport.load(dst)
    classes = {layer.class_name for layer in written.layers}
    assert {"LSTM", "Take", "Concatenate", "Mean"} <= classes, classes
    shapes = [layer.config["batch_shape"] for layer in written.layers
              if layer.class_name == "InputLayer"]
    assert shapes == [[1, F], [2, 1, H]], shapes
    _streamed(keras3.models.load_model(dst, compile=False), one_step("B"), {})


@pytest.mark.parametrize("rate", [16000, 8000])
def test_a_fixed_switch_folds_its_if(tmp_path, keras3, rate):
    """--input-value sr=R: the If folds to R's branch; the result has no sr input, says so,
    and computes what the source computes for R (each branch its own weights)."""
    proto = switched()
    src = tmp_path / "vad.onnx"
    onnx.save(proto, src)
    dst = tmp_path / f"vad{rate}.keras"
    code, out = _cli("convert", src, dst, "--json", "-q", f"--input-value=sr={rate}",
                     f"--input-shape=x=1,{F}", f"--input-shape=state=2,1,{H}")
    assert code == 0, out
    report = json.loads(out)
    assert report["parity"]["passed"], report["parity"]
    assert any(f"sr={rate}" in note for note in report["notes"]), report["notes"]
    assert report["parity"]["intermediates"]["held"] == \
        report["parity"]["intermediates"]["compared"] > 0, report["parity"]["intermediates"]
    loaded = keras3.models.load_model(dst, compile=False)
    assert [i.name for i in loaded.inputs] == ["x", "state"]
    _streamed(loaded, proto, {"sr": np.asarray(rate, np.int64)})

    code, out = _cli("inspect", src, "--json", f"--input-value=sr={rate}",
                     f"--input-shape=x=1,{F}", f"--input-shape=state=2,1,{H}")
    assert code == 0 and json.loads(out)["targets"]["keras"]["ok"], out


def test_the_refusal_names_the_value_the_graph_tests(tmp_path):
    src = tmp_path / "vad.onnx"
    onnx.save(switched(), src)
    assert compared_values(onnx.load(str(src))) == {"sr": (16000,)}
    code, out = _cli("convert", src, tmp_path / "v.keras")
    assert code == 4, out
    assert "--input-value sr=16000" in out and "--input-shape" in out, out
    assert not (tmp_path / "v.keras").exists()


@pytest.mark.parametrize("spec, words", [
    ("rate=16000", "no input 'rate'"), ("sr=16000.5", "must be whole"),
    ("sr=1,2", "is a scalar"), ("sr", "is not NAME=VALUE"), ("sr=abc", "must be numbers")])
def test_bad_values_exit_2(tmp_path, spec, words):
    src = tmp_path / "vad.onnx"
    onnx.save(switched(), src)
    code, out = _cli("convert", src, tmp_path / "v.keras", "--input-value", spec)
    assert code == UsageError.exit_code, out
    assert words in out, out


def test_library_forms():
    assert [str(v) for v in parse_input_values({"sr": 16000, "w": [1, 2.5]}.items())] == \
        ["sr=16000", "w=1,2.5"]
    assert parse_input_values(["sr=8000"])[0].scalar
    with pytest.raises(UsageError, match="twice"):
        parse_input_values(["sr=1", "sr=2"])


def test_a_keras_source_refuses_input_value(tmp_path):
    import keras

    inp = keras.Input((3,))
    keras.Model(inp, keras.layers.Dense(2)(inp)).save(tmp_path / "k.keras")
    code, out = _cli("convert", tmp_path / "k.keras", tmp_path / "k.onnx", "--input-value",
                     "x=1")
    assert code == UsageError.exit_code and "--input-value" in out, out


def stacked(t: int = 3) -> onnx.ModelProto:
    """Silero v4's decoder in small, as PyTorch exports a two-layer nn.LSTM over conv
    features: features [1, C, T] permuted (2, 0, 1) into the first layer, each layer's initial
    states a Slice of h / c [2, 1, H], the final states stacked again by Concat on axis 0; and a
    reflection of the features' first cells (a Slice with step -1) added to them."""
    rng = np.random.default_rng(5)
    c = F
    inits = [("ax0", np.asarray([0], np.int64)), ("ax1", np.asarray([1], np.int64)),
             ("one", np.asarray([1], np.int64)), ("two", np.asarray([2], np.int64)),
             ("zero", np.asarray([0], np.int64)), ("rev_s", np.asarray([t - 1], np.int64)),
             ("rev_e", np.asarray([-(2 ** 63)], np.int64)), ("ax2", np.asarray([2], np.int64)),
             ("minus1", np.asarray([-1], np.int64))]
    for k, width in ((1, c), (2, H)):
        inits += [(f"W{k}", (rng.standard_normal((1, 4 * H, width)) * 0.4).astype(np.float32)),
                  (f"R{k}", (rng.standard_normal((1, 4 * H, H)) * 0.4).astype(np.float32)),
                  (f"B{k}", (rng.standard_normal((1, 8 * H)) * 0.1).astype(np.float32))]
    n = helper.make_node
    nodes = [
        n("Slice", ["f", "rev_s", "rev_e", "ax2", "minus1"], ["flipped"]),
        n("Add", ["f", "flipped"], ["g"]),
        n("Transpose", ["g"], ["X1"], perm=[2, 0, 1]),
        *(n("Slice", [s, lo, hi, "ax0"], [f"{s}{k}"])
          for s in ("h", "c") for k, (lo, hi) in enumerate((("zero", "one"), ("one", "two")))),
        n("LSTM", ["X1", "W1", "R1", "B1", "", "h0", "c0"], ["Y1", "h1n", "c1n"], hidden_size=H),
        n("Squeeze", ["Y1", "ax1"], ["X2"]),
        n("LSTM", ["X2", "W2", "R2", "B2", "", "h1", "c1"], ["Y2", "h2n", "c2n"], hidden_size=H),
        n("Concat", ["h1n", "h2n"], ["hn"], axis=0),
        n("Concat", ["c1n", "c2n"], ["cn"], axis=0),
        n("Squeeze", ["Y2", "ax1"], ["last"]),
        n("Transpose", ["last"], ["rows"], perm=[1, 0, 2]),
        n("Relu", ["rows"], ["prob"]),
    ]
    return model(nodes, [value("f", TensorProto.FLOAT, [1, c, t]),
                         value("h", TensorProto.FLOAT, [2, 1, H]),
                         value("c", TensorProto.FLOAT, [2, 1, H])],
                 [value("prob", TensorProto.FLOAT, [1, t, H]),
                  value("hn", TensorProto.FLOAT, [2, 1, H]),
                  value("cn", TensorProto.FLOAT, [2, 1, H])], inits, opset=18)


def test_stacked_lstm_states_as_pytorch_exports_them(tmp_path, keras3):
    """The permuted input, the sliced and restacked states and the reversed slice raise (a
    model of one sample: the slices on axis 0 and the reversal are operations on its literal
    shapes), and real Keras 3 gives onnxruntime's numbers."""
    proto = stacked()
    src = tmp_path / "stacked.onnx"
    onnx.save(proto, src)
    dst = tmp_path / "stacked.keras"
    report = modelport.convert(src, dst)
    assert report.parity is not None and report.parity.passed, report.parity
    classes = [layer.class_name for layer in modelport.load(dst).layers]
    assert classes.count("LSTM") == 2 and "Take" in classes, classes
    loaded = keras3.models.load_model(dst, compile=False)
    rng = np.random.default_rng(9)
    feed = {"f": rng.standard_normal((1, F, 3)).astype(np.float32),
            "h": rng.standard_normal((2, 1, H)).astype(np.float32),
            "c": rng.standard_normal((2, 1, H)).astype(np.float32)}
    want = _ort(proto, feed)
    perm = report.keras.input_perms[0] if report.keras else None
    f = feed["f"].transpose(perm) if perm else feed["f"]
    got = loaded([f, feed["h"], feed["c"]])
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-5, atol=1e-6)
