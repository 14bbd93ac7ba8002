"""ONNX reading without copying the weights: big initializers' bytes are memory-mapped from the
file (the protobuf is parsed without them), and ``normalize`` round-trips a skeleton without
them through the version converter and shape inference, attaching the same tensors again."""

from __future__ import annotations

import mmap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelport.converters import onnx_normalize
from modelport.errors import FormatError
from modelport.formats import onnx as onnx_format


def _proto(opset: int = 17, ir_version: int = 8, *, inputs_too: bool = False):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 32)).astype(np.float32)  # 8 kB: mapped
    b = rng.standard_normal(32).astype(np.float32)  # 128 B: parsed
    shape = np.array([1, 32], np.int64)
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b"),
             numpy_helper.from_array(shape, "shape")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])]
    if inputs_too:  # IR < 4: initializers are graph inputs too
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                   for t in inits]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["a"]),
         helper.make_node("Reshape", ["a", "shape"], ["y"])],
        "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = ir_version
    return proto, {"W": w, "b": b, "shape": shape}


def _mapped(array: np.ndarray) -> bool:
    while array is not None:
        if isinstance(array, (np.memmap, mmap.mmap)):
            return True
        array = getattr(array, "base", None)
    return False


@pytest.mark.parametrize("opset,ir_version,inputs_too", [(17, 8, False), (9, 3, True),
                                                        (13, 7, False)])
def test_big_initializers_are_mapped_and_survive_normalize(tmp_path, opset, ir_version,
                                                           inputs_too):
    proto, arrays = _proto(opset, ir_version, inputs_too=inputs_too)
    onnx.save(proto, tmp_path / "m.onnx")
    model = onnx_format.read(tmp_path / "m.onnx")
    values = {n: v.const_value.numpy() for n, v in model.graph.initializers.items()}
    assert set(values) == set(arrays)
    assert all(np.array_equal(values[k], v) for k, v in arrays.items())
    assert _mapped(values["W"]) and not _mapped(values["b"])

    weight = model.graph.initializers["W"].const_value
    out = onnx_normalize.normalize(model)
    assert onnx_normalize.opset_of(out) == max(opset, onnx_normalize.NORMALIZED_OPSET)
    assert out.graph.initializers["W"].const_value is weight  # attached again, not copied
    assert [v.name for v in out.graph.inputs] == ["x"]
    assert set(out.graph.initializers) == set(arrays)
    assert list(out.graph.outputs[0].shape) == [1, 32]
    # the source model keeps its initializers
    assert set(model.graph.initializers) == set(arrays)


def test_mapped_initializer_with_the_wrong_byte_count_is_refused(tmp_path):
    proto, _ = _proto()
    proto.graph.initializer[0].raw_data = proto.graph.initializer[0].raw_data[:-4096]
    onnx.save(proto, tmp_path / "m.onnx")
    with pytest.raises(FormatError, match=r"initializer 'W' declares 2048 elements \(8192 "
                                          r"bytes\) but stores 4096 bytes"):
        onnx_format.read(tmp_path / "m.onnx")


def test_checker_still_sees_mapped_initializers(tmp_path):
    # a node output named like a (mapped) initializer: two definitions of one value
    proto, _ = _proto()
    proto.graph.node[0].output[0] = "W"
    proto.graph.node[1].input[0] = "W"
    onnx.save(proto, tmp_path / "m.onnx")
    with pytest.raises(FormatError, match="invalid ONNX model"):
        onnx_format.read(tmp_path / "m.onnx")


def test_truncated_file_is_a_format_error(tmp_path):
    proto, _ = _proto()
    data = proto.SerializeToString()
    (tmp_path / "m.onnx").write_bytes(data[:len(data) - 3000])
    with pytest.raises(FormatError, match="not a readable ONNX model"):
        onnx_format.read(tmp_path / "m.onnx")


def test_normalize_takes_the_whole_model_when_the_converter_renames_a_weight(tmp_path,
                                                                            monkeypatch):
    proto, arrays = _proto(13, 7)
    onnx.save(proto, tmp_path / "m.onnx")
    model = onnx_format.read(tmp_path / "m.onnx")
    original = onnx_normalize._normalize_proto
    calls = []

    def renaming(proto, opset):
        out = original(proto, opset)
        if not calls:  # the skeleton's round trip: as if the converter renamed W
            for v in out.graph.inputs:
                if v.name == "W":
                    v.name = "W_renamed"
        calls.append(len(proto.graph.initializer))
        return out

    monkeypatch.setattr(onnx_normalize, "_normalize_proto", renaming)
    out = onnx_normalize.normalize(model)
    assert calls == [2, 3]  # the skeleton (b, shape), then the whole model
    assert np.array_equal(out.graph.initializers["W"].const_value.numpy(), arrays["W"])
    assert [v.name for v in out.graph.inputs] == ["x"]
