"""Every ONNX file modelport writes loads in onnxruntime without a word (issue 18, point 13).

ONNX written from Keras and TF.js sources carried 28-188 unused initializers (BatchNorm
scales and shifts the layout pass had replaced by transposed copies), and onnxruntime prints a
warning for each on every load. Each output here is loaded with onnxruntime's log level at
warning (``log_severity_level = 2``: 1 is "info", which prints a line per step of any load)
and stderr, captured at the file-descriptor level where onnxruntime writes, must be empty.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelport

from .conftest import FIXTURES

SOURCES = [
    "keras3/cnn_bn_pool.keras",  # BatchNormalization
    "keras2/cnn_bn_pool.h5",
    "keras3/normalization.keras",
    "keras3/separable_depthwise.keras",
    "keras3/layernorm.keras",
    "keras3/recurrent.keras",  # recurrences as Scan: initializers read inside a body
    "keras3/multi_io.keras",
    "applications/MobileNetV2.keras",  # 52 BatchNormalizations
    "tfjs_graph/cnn",  # TF.js graph-models
    "tfjs_converter/graph/dilated_cnn_k3",
    "tfjs/tfjs_cnn",  # a TF.js layers-model
]


def _load_quietly(path, capfd) -> ort.InferenceSession:
    """A session on ``path`` with warnings shown; asserts that nothing was printed."""
    capfd.readouterr()
    options = ort.SessionOptions()
    options.log_severity_level = 2  # warnings and worse
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    printed = capfd.readouterr()
    assert printed.err == "" and printed.out == "", printed.err[:2000]
    return session


def _unused(path) -> list[str]:
    model = onnx.load(str(path), load_external_data=False)
    graphs, read = [model.graph], set()
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            read.update(node.input)
            graphs.extend(a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH)
            graphs.extend(g for a in node.attribute for g in a.graphs)
    return [t.name for t in model.graph.initializer if t.name not in read]


@pytest.mark.parametrize("source", SOURCES)
def test_onnx_output_loads_without_warnings(tmp_path, capfd, source):
    src = FIXTURES / source
    if not src.exists():
        pytest.skip(f"fixture {source} is not in this checkout")
    dst = tmp_path / "out.onnx"
    modelport.convert(src, dst, to="onnx", validate=False)
    assert _unused(dst) == []
    _load_quietly(dst, capfd)


def _source_with_leftovers(tmp_path, ir_version: int) -> str:
    """An ONNX model with two initializers nothing reads, stamped ``ir_version``."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(7).astype(np.float32), "left_over"),
             numpy_helper.from_array(np.arange(3, dtype=np.int64), "left_over_too")]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["y"])], "leftovers",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=ir_version)
    path = tmp_path / f"leftovers_ir{ir_version}.onnx"
    onnx.save(model, path)
    return str(path)


@pytest.mark.parametrize("ir_version", [8, onnx.IR_VERSION])
def test_onnx_to_onnx_drops_a_sources_unused_initializers(tmp_path, capfd, ir_version):
    src = _source_with_leftovers(tmp_path, ir_version)
    dst = tmp_path / "out.onnx"
    report = modelport.convert(src, dst, to="onnx")
    assert report.parity is not None and report.parity.passed
    assert _unused(dst) == []
    # written at the IR version its opset belongs to, which onnxruntime reads
    assert onnx.load(str(dst)).ir_version == 8
    _load_quietly(dst, capfd)
