"""Real tfjs (4.22 under Node) cannot run Keras's ``Resizing`` layer, which is why
``tfjs_support`` refuses it (tests/test_tfjs_layers_resizing.py): written anyway
(``check=False``), the layers-model fails in tfjs or computes something else than Keras."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from modelport.converters.onnx_to_keras import raise_model
from modelport.formats import tfjs_layers
from modelport.runtime.keras_reference import run

from ..test_tfjs_layers_resizing import downsample


def test_resizing_written_anyway_is_a_real_trap(tmp_path, tfjs):
    # the Keras form (a raising for tfjs-layers takes the interpolation matrices instead)
    raised = raise_model(ir.load(downsample(tmp_path / "m.onnx")))
    assert "Resizing" in [layer.class_name for layer in raised.model.layers]
    web = tmp_path / "web"
    tfjs_layers.write(raised.model, web, check=False)
    x = np.random.default_rng(1).standard_normal((1, 12, 12, 3)).astype(np.float32)
    (want,) = run(raised.model, [x]).outputs
    try:
        result = tfjs.run_layers_model(web / "model.json", [("x", x)])
    except tfjs.TfjsError as e:
        assert str(e)
        return
    got = result["arrays"][0]
    assert got.shape != np.asarray(want).shape or not np.allclose(got, want, atol=1e-4), \
        "tfjs ran Resizing as Keras does: the refusal is unnecessary"
