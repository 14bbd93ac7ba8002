"""Small ONNX graphs for the raising tests, and the run of a raised ``.keras`` in real Keras 3
against onnxruntime that the Keras-operation tests share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

import modelport


def model(nodes, inputs, outputs, inits=(), opset=13) -> onnx.ModelProto:
    """A one-graph model of ``nodes`` with ``inits`` ((name, array) pairs) as initializers."""
    graph = helper.make_graph(nodes, "case", inputs, outputs,
                              [numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def value(name: str, elem: int, dims) -> onnx.ValueInfoProto:
    """A graph input or output: ``elem`` a TensorProto type, ``dims`` ints or names."""
    return helper.make_tensor_value_info(name, elem, dims)


def raised_keras_matches(proto: onnx.ModelProto, classes: set[str], tmp_path: Path, keras3,
                         feed: Callable[[onnx.ModelProto, int], dict[str, np.ndarray]],
                         compare: Callable[[np.ndarray, np.ndarray, str], None]) -> Path:
    """Convert ``proto`` to ``.keras`` with the default check, assert it holds the Keras
    operations ``classes``, load it in real Keras 3 and ``compare`` (got, want, what) its
    outputs with onnxruntime's on ``feed(proto, seed)`` for three seeds; the source's path."""
    import onnxruntime as ort

    src = tmp_path / "m.onnx"
    onnx.save(proto, src)
    report = modelport.convert(src, tmp_path / "m.keras")
    assert report.parity is not None and report.parity.passed
    ops = {layer.class_name for layer in modelport.load(tmp_path / "m.keras").layers
           if layer.is_operation}
    assert classes <= ops, ops
    loaded = keras3.models.load_model(tmp_path / "m.keras", compile=False)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for seed in range(3):
        arrays = feed(proto, seed)
        want = session.run(None, arrays)
        got = loaded(list(arrays.values()) if len(arrays) > 1 else next(iter(arrays.values())))
        got = got if isinstance(got, (list, tuple)) else [got]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            g = np.asarray(g)
            assert g.shape == w.shape, f"{g.shape} != {w.shape}"
            compare(g.astype(w.dtype), w, f"seed {seed}")
    return src


def refused_keras(proto: onnx.ModelProto, tmp_path: Path, name: str):
    """Convert ``proto`` (saved as ``name``.onnx) to ``.keras`` expecting a refusal: the error,
    after checking that nothing was written."""
    import pytest

    src = tmp_path / f"{name}.onnx"
    onnx.save(proto, src)
    with pytest.raises(modelport.UnsupportedError) as e:
        modelport.convert(src, tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
    return e.value


def written_in_keras(proto: onnx.ModelProto, tmp_path: Path, target: str, keras3):
    """Convert ``proto`` to ``target`` (a file name) with the default check, which must pass;
    the written file loaded in real Keras 3, and the raising (its input permutations)."""
    import onnx_ir as ir

    from modelport.converters.onnx_to_keras import raise_model

    src = tmp_path / "m.onnx"
    onnx.save(proto, str(src))
    report = modelport.convert(src, tmp_path / target)  # the default parity check
    assert report.parity is not None and report.parity.passed
    raised = raise_model(ir.from_proto(proto))
    return keras3.models.load_model(tmp_path / target, compile=False), raised
