"""Raising by re-lowering (``onnx_to_keras/relower.py``): the record modelport's Keras -> ONNX
route leaves in the metadata is only a hypothesis, proven by lowering it again.

A faithful record raises the layer, and the Keras model matches onnxruntime on the ONNX file
(also after a weight in the file was changed: the weights are read from the graph, not trusted
from anywhere). A record or a graph that does not match (a changed config, a changed op, a value
read from outside, garbage) proves nothing: the subgraph is refused op by op, as without it.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import numpy_helper

import modelport
from modelport.converters.keras_to_onnx import HINT_KEY
from modelport.converters.onnx_to_keras import raise_model
from modelport.errors import UnsupportedError
from modelport.runtime.keras_reference import run

from .conftest import LAYER_CASES


def _onnx(tmp_path, name: str = "GRU-activations") -> tuple[onnx.ModelProto, list]:
    case = next(c for c in LAYER_CASES if c.name == name)
    path = tmp_path / "m.onnx"
    modelport.convert(case.path, path, validate=False)
    return onnx.load(str(path)), [a for _, a in case.inputs]


def _ort(proto: onnx.ModelProto, xs: list) -> list:
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), xs)})


def _raised_matches(proto: onnx.ModelProto, xs: list) -> list[str]:
    raised = raise_model(ir.from_proto(proto))
    for got, want in zip(run(raised.model, xs).outputs, _ort(proto, xs)):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)
    return [layer.class_name for layer in raised.model.layers]


def _hints(proto: onnx.ModelProto) -> list:
    return json.loads(next(p.value for p in proto.metadata_props if p.key == HINT_KEY))


def _set_hints(proto: onnx.ModelProto, hints) -> None:
    for p in proto.metadata_props:
        if p.key == HINT_KEY:
            p.value = hints if isinstance(hints, str) else json.dumps(hints)


def _refused_naming_the_scan(proto: onnx.ModelProto) -> None:
    with pytest.raises(UnsupportedError, match=r"Scan node 'gru_activations/Scan'"):
        raise_model(ir.from_proto(proto))


@pytest.mark.parametrize("name,cls", [("GRU-activations", "GRU"),
                                      ("GRU-reset_after-false-return_state", "GRU"),
                                      ("ConvLSTM2D-valid", "ConvLSTM2D"),
                                      ("TimeDistributed-Conv2D", "TimeDistributed"),
                                      ("MultiHeadAttention-self", "MultiHeadAttention"),
                                      ("Resizing-nearest", "Resizing"),
                                      ("Attention-concat-use_scale-scores", "Attention"),
                                      ("Attention-causal-scores", "Attention"),
                                      ("AdditiveAttention-no_scale-key-scores",
                                       "AdditiveAttention"),
                                      ("GroupQueryAttention-gate-sliding_window",
                                       "GroupQueryAttention"),
                                      ("GroupQueryAttention-attention_mask-causal",
                                       "GroupQueryAttention"),
                                      ("RMSNormalization-axes-epsilon", "RMSNormalization")])
def test_a_faithful_record_raises_the_layer(tmp_path, name, cls):
    proto, xs = _onnx(tmp_path, name)
    assert cls in _raised_matches(proto, xs)


def test_weights_come_from_the_graph_not_the_record(tmp_path):
    proto, xs = _onnx(tmp_path)
    kernel = next(t for t in proto.graph.initializer if t.name.endswith("/kernel"))
    changed = numpy_helper.to_array(kernel).copy()
    changed[0, 0] += 0.75
    kernel.CopyFrom(numpy_helper.from_array(changed, kernel.name))
    assert "GRU" in _raised_matches(proto, xs)


def test_a_changed_config_proves_nothing(tmp_path):
    proto, _ = _onnx(tmp_path)
    hints = _hints(proto)
    hints[0]["config"]["recurrent_activation"] = "sigmoid"  # the file computes hard_sigmoid
    _set_hints(proto, hints)
    _refused_naming_the_scan(proto)


def test_a_changed_graph_proves_nothing(tmp_path):
    proto, _ = _onnx(tmp_path)
    scan = next(n for n in proto.graph.node if n.op_type == "Scan")
    body = next(a.g for a in scan.attribute if a.name == "body")
    relu = next(n for n in body.node if n.op_type == "Relu")
    relu.op_type = "Sigmoid"  # the record still says activation="relu"
    _refused_naming_the_scan(proto)


def test_a_value_read_outside_the_layer_proves_nothing(tmp_path):
    proto, _ = _onnx(tmp_path)
    inner = next(n for n in proto.graph.node if n.op_type == "Expand").output[0]
    proto.graph.output.append(onnx.helper.make_tensor_value_info(inner, onnx.TensorProto.FLOAT,
                                                                 None))
    with pytest.raises(UnsupportedError):
        raise_model(ir.from_proto(proto))


@pytest.mark.parametrize("hints", ["not json", "{}", json.dumps([{"name": "x"}]),
                                   json.dumps([{"name": "gru_activations", "class_name": "GRU",
                                                "config": {}, "args": [], "kwargs": {},
                                                "inputs": ["nope"], "outputs": [],
                                                "weights": []}])])
def test_garbage_records_are_ignored(tmp_path, hints):
    proto, _ = _onnx(tmp_path)
    _set_hints(proto, hints)
    _refused_naming_the_scan(proto)


def test_huge_declared_weights_are_not_probed(tmp_path):
    proto, _ = _onnx(tmp_path)
    hints = _hints(proto)
    hints[0]["weights"][0][1] = [100000, 100000]
    _set_hints(proto, hints)
    _refused_naming_the_scan(proto)


def test_a_record_giving_other_shapes_is_not_lowered(tmp_path):
    """A config whose output shape differs from the graph's is rejected before lowering, so a
    record cannot make the lowering build tensors bigger than the file has."""
    proto, _ = _onnx(tmp_path)
    hints = _hints(proto)
    hints[0]["config"]["units"] = 10**6
    _set_hints(proto, hints)
    _refused_naming_the_scan(proto)


def test_a_record_that_breaks_the_lowering_proves_nothing(tmp_path):
    proto, _ = _onnx(tmp_path)
    hints = _hints(proto)
    hints[0]["config"] = {"units": "many", "activation": ["not", "a", "name"]}
    _set_hints(proto, hints)
    _refused_naming_the_scan(proto)
