"""Routes of the wild corpus that the default command refuses and whose refusal names the
flags that make them convert: run with those flags, the written file in its real consumer.

Silero VAD (silero-vad 5.1.2) switches on a scalar sample rate and leaves its chunk length and
batch free; ``.keras`` refuses it naming ``--input-value sr=16000`` and ``--input-shape``. With
them (the 512-sample chunk Silero's own wrapper feeds at 16 kHz, 256 at 8 kHz) it converts, and
real Keras 3 streams it, its state carried from call to call, as onnxruntime does. Silero v4
(@ricky0123/vad-web's legacy file) carries h and c of two stacked LSTM layers instead.
"""

from __future__ import annotations

import numpy as np
import pytest

import modelport
from tests.conftest import REQUIRE_TOOLS
from tests.wild import fetch

pytestmark = pytest.mark.wild
CORPUS = {m["id"]: m for m in fetch.load_corpus()["models"]}

CASES = [
    ("silero-vad", 16000, ["sr=16000"], {"input": (1, 512), "state": (2, 1, 128)}),
    ("silero-vad", 8000, ["sr=8000"], {"input": (1, 256), "state": (2, 1, 128)}),
    ("silero-vad-half", 16000, [], {"input": (1, 512), "state": (2, 1, 128)}),
    # Silero v4 (vad-web's legacy file): h and c of its two stacked LSTM layers
    ("vad-web-silero-legacy", 16000, ["sr=16000"],
     {"input": (1, 512), "h": (2, 1, 64), "c": (2, 1, 64)}),
]


def _source(mid: str):
    model = CORPUS[mid]
    if not fetch.model_ready(model):
        reason = f"wild corpus model {mid} not cached: run python tests/wild/fetch.py"
        if REQUIRE_TOOLS:
            pytest.fail(reason)
        pytest.skip(reason)
    return fetch.model_entry(model)


@pytest.mark.parametrize("mid, rate, values, shapes", CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_silero_streams_in_keras3(mid, rate, values, shapes, tmp_path, keras3):
    import onnxruntime as ort

    src = _source(mid)
    dst = tmp_path / f"{mid}.keras"
    report = modelport.convert(src, dst, input_values=values or None, input_shapes=shapes)
    assert report.parity is not None and report.parity.passed, report.parity
    loaded = keras3.models.load_model(dst, compile=False)
    session = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    feeds = {i.name for i in session.get_inputs()}
    rng = np.random.default_rng(3)
    names = [n for n in shapes if n != "input"]  # the states, carried from call to call
    states = [np.zeros(shapes[n], np.float32) for n in names]
    kept = [x.copy() for x in states]
    for _ in range(6):
        chunk = (rng.standard_normal(shapes["input"]) * 0.2).astype(np.float32)
        feed = {"input": chunk, **dict(zip(names, states))}
        if "sr" in feeds:
            feed["sr"] = np.asarray(rate, np.int64)
        prob, *states = session.run(None, feed)
        got = loaded([chunk, *kept])
        kept = [np.asarray(g) for g in got[1:]]
        np.testing.assert_allclose(np.asarray(got[0]), prob, rtol=1e-4, atol=1e-6)
        for k, want in zip(kept, states):
            np.testing.assert_allclose(k, want, rtol=1e-4, atol=1e-5)
