"""Seeded probes a model with a switch and a recurrent state can run (silero-vad: input
``[?, ?]``, state ``[2, ?, 128]``, an int64 scalar ``sr`` tested ``== 16000``): the state's free
dim is the batch the input has first, and the switch takes the constant the graph compares it
with on one probe, the default range on the others (both sides of the ``If`` checked)."""

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from modelport.check.probes import default_batch, seeded_probes
from modelport.runtime.engines import InputSpec, OnnxRuntime

SPECS = [InputSpec("input", [None, None], "float32"),
         InputSpec("state", [2, None, 128], "float32"),
         InputSpec("sr", [], "int64", values=(16000,))]


def test_a_state_shaped_input_takes_the_free_size_as_its_batch():
    assert default_batch(SPECS, free=64) == 64
    probes = seeded_probes(SPECS, batch=None, seed=0, free=64)
    x, state, _ = probes[0].arrays
    assert x.shape == (64, 64) and state.shape == (2, 64, 128)


def test_without_a_state_the_batch_is_as_before():
    specs = [InputSpec("input", [None, None], "float32")]
    assert default_batch(specs, free=64) == 16  # MAX_BATCH: 64 elements a row


def test_a_switch_takes_its_constant_on_one_probe_and_others_elsewhere():
    by_probe = {p.name: int(p.arrays[2]) for p in seeded_probes(SPECS, batch=2, seed=0,
                                                                   free=8)}
    assert by_probe["normal"] == 16000 and by_probe["unit"] != 16000


def test_onnxruntime_lists_the_constants_a_scalar_is_compared_with(tmp_path):
    then_g = h.make_graph([h.make_node("Neg", ["x"], ["t"])], "t", [],
                          [h.make_tensor_value_info("t", T.FLOAT, None)])
    else_g = h.make_graph([h.make_node("Identity", ["x"], ["e"])], "e", [],
                          [h.make_tensor_value_info("e", T.FLOAT, None)])
    graph = h.make_graph(
        [h.make_node("Constant", [], ["rate"], value=nh.from_array(np.array(16000, np.int64))),
         h.make_node("Equal", ["sr", "rate"], ["c"]),
         h.make_node("Equal", ["ids", "pad"], ["mask"]),
         h.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)], "g",
        [h.make_tensor_value_info("x", T.FLOAT, [2]),
         h.make_tensor_value_info("sr", T.INT64, []),
         h.make_tensor_value_info("ids", T.INT64, [None, 4])],
        [h.make_tensor_value_info("y", T.FLOAT, [2]),
         h.make_tensor_value_info("mask", T.BOOL, [None, 4])],
        initializer=[nh.from_array(np.array(0, np.int64), "pad")])
    path = tmp_path / "m.onnx"
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8), path)
    specs = {s.name: s for s in OnnxRuntime(path).inputs()}
    assert specs["sr"].values == (16000,)
    assert specs["ids"].values == ()  # (not a scalar: token ids compared with a pad id)
