"""A Keras 2 model that Keras 3 cannot hold (hard_sigmoid's old formula, ThresholdedReLU) is
refused for ``.keras``/``.h5`` naming routes that convert it (issue 18: a refusal names a
route that works). ethnicolr's nc_voter_name_race_lstm.h5 (an LSTM with Keras 2's
hard_sigmoid) was refused with no route; ONNX and TF.js keep the old semantics, and both
routes named convert these fixtures with the default check.
"""

from __future__ import annotations

import pytest

import modelport
from tests.conftest import FIXTURES


@pytest.mark.parametrize("name", ["hard_sigmoid", "thresholded_relu"])
def test_keras3_refusal_names_routes_that_convert(name, tmp_path):
    src = FIXTURES / "keras2" / f"{name}.h5"
    with pytest.raises(modelport.UnsupportedError) as e:
        modelport.convert(src, tmp_path / "m.keras")
    assert "--to onnx" in str(e.value) and "--to tfjs-graph" in str(e.value), str(e.value)
    modelport.convert(src, tmp_path / "m.onnx")
    modelport.convert(src, tmp_path / "web", to="tfjs-graph")
