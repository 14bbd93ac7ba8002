"""ONNX models quantized by onnxruntime's ``quantize_dynamic`` run in real tfjs (Node) as in
onnxruntime: ``ConvInteger``/``MatMulInteger`` behind ``DynamicQuantizeLinear`` bit for bit,
``DynamicQuantizeLSTM`` to float32 rounding of its gate activations; and every decomposed op
(``DynamicQuantizeLinear``, ``ConvInteger``, ``MatMulInteger``, ``QuantizeLinear``,
``DequantizeLinear``, per tensor and per axis) bit for bit. The cases are those of
``tests/test_onnx_quantized.py``, which checks the NumPy reference of TF ops on them.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest

from modelport.converters.onnx_to_tfjs import driver as to_tfjs
from modelport.formats import tfjs_graph

from ..test_onnx_quantized import (
    CASES,
    _dql_graph,
    _probe_inputs,
    check_outputs,
    quantized_case,
    run_onnxruntime,
)


def _run(tfjs, written, graph, feed):
    return tfjs.run_graph_model(written, [(i.tensor, feed[i.key]) for i in graph.inputs],
                                [o.tensor for o in graph.outputs])


@pytest.mark.parametrize("name", sorted(CASES))
def test_quantized_model_runs_in_tfjs_like_onnxruntime(tfjs, name, tmp_path):
    model, feeds = quantized_case(name, tmp_path)
    graph = to_tfjs.convert(ir.from_proto(model))
    written = tfjs_graph.write(graph, tmp_path / "web")
    for feed in feeds:
        check_outputs(name, _run(tfjs, written, graph, feed), run_onnxruntime(model, feed))


def test_decomposed_ops_run_in_tfjs_like_onnxruntime(tfjs, tmp_path):
    rng = np.random.default_rng(19)
    model = _dql_graph(rng)
    graph = to_tfjs.convert(ir.from_proto(model))
    written = tfjs_graph.write(graph, tmp_path / "web")
    for x in _probe_inputs(rng):
        got = _run(tfjs, written, graph, {"x": x})
        for g, w, info in zip(got, run_onnxruntime(model, {"x": x}), model.graph.output):
            np.testing.assert_array_equal(np.asarray(g), w.astype(np.asarray(g).dtype),
                                          err_msg=info.name)
