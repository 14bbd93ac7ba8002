"""An ``If`` on a sample rate whose branches convolve through rank-changing ``If``s
(silero-vad's pattern; ``tests/test_onnx_ranks.py`` builds it) runs in real tfjs (Node,
executeAsync) as in onnxruntime, for each rate and batch."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import onnxruntime as ort

from modelport.converters.onnx_to_tfjs import driver as to_tfjs
from modelport.formats import tfjs_graph

from ..test_onnx_ranks import rate_feeds, rate_switch_model


def test_rate_switch_runs_in_tfjs_like_onnxruntime(tfjs, tmp_path):
    model = rate_switch_model()
    graph = to_tfjs.convert(ir.from_proto(model))
    written = tfjs_graph.write(graph, tmp_path / "web")
    session = ort.InferenceSession(model.SerializeToString())
    for feeds in rate_feeds():
        want = session.run(None, feeds)[0]
        got = tfjs.run_graph_model(written, [(i.tensor, feeds[i.key]) for i in graph.inputs],
                                   [o.tensor for o in graph.outputs])
        np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6,
                                   err_msg=f"sr {int(feeds['sr'])}, batch {len(feeds['input'])}")
