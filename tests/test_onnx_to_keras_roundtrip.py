"""Round trip Keras -> ONNX -> Keras: every Keras fixture (made by real Keras / real TF.js)
converted to ONNX by modelport and raised back to Keras layers must reproduce the outputs the
real framework recorded (atol 1e-4, rtol 1e-3), in modelport's NumPy Keras executor; the Keras 3
models, and every layer case raised by re-lowering, also as files loaded by real Keras 3.

Layers whose lowering has no op-by-op inverse (recurrent cells as Scan loops, ConvLSTM2D,
MultiHeadAttention, TimeDistributed, nearest Resizing, Masking and the keras.ops that compute
Keras 3's explicit masks) are raised by re-lowering them (``onnx_to_keras/relower.py``).

Cases the raising refuses would be listed in ``REFUSED`` with the op that stops them, so a
regression either way fails; none is left. ``python -m tests.test_onnx_to_keras_roundtrip``
prints the table.
"""

from __future__ import annotations

import re

import numpy as np
import onnx_ir as ir
import pytest

import modelport
from modelport.converters.onnx_to_keras import raise_model
from modelport.errors import UnsupportedError
from modelport.models import keras_dialect
from modelport.runtime.keras_reference import run

from .conftest import ALL_CASES, LAYER_CASES

ATOL, RTOL = 1e-4, 1e-3
CASES = [c for c in ALL_CASES + LAYER_CASES if c.name != "lambda_layer"]

# case id -> the node (as the error names it) with no Keras layer.
REFUSED: dict[str, str] = {
    # An attention layer fed Keras masks by Embedding(mask_zero=True), with no explicit
    # ``mask=`` in its node, is not recorded for re-lowering, and the Embedding's mask
    # computation has no Keras layer of its own (Equal raises to the Keras operation; the Not
    # after it, the attention's And / Where do not).
    **{f"layers/{name}": "Not node 'embedding_tokens_q/Not'" for name in (
        "Attention-mask_zero-GlobalAveragePooling1D", "Attention-mask_zero-causal-scores",
        "AdditiveAttention-mask_zero-causal", "GroupQueryAttention-mask_zero-LSTM")},
}


def _raise(case, tmp_path):
    onnx_path = tmp_path / "m.onnx"
    modelport.convert(case.path, onnx_path, validate=False, force=True)
    return raise_model(ir.load(str(onnx_path)), name="roundtrip"), onnx_path


def _compare(got, case, output_perms):
    for g, (name, expected), p in zip(got, case.outputs, output_perms):
        g = np.asarray(g)
        if p:
            g = g.transpose(np.argsort(p))
        np.testing.assert_allclose(g, expected, atol=ATOL, rtol=RTOL, err_msg=name)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_keras_onnx_keras(case, tmp_path):
    if case.id in REFUSED:
        with pytest.raises(UnsupportedError, match=REFUSED[case.id]):
            _raise(case, tmp_path)
        return
    raised, _ = _raise(case, tmp_path)
    arrays = [np.ascontiguousarray(a.transpose(p)) if p else a
              for (_, a), p in zip(case.inputs, raised.input_perms)]
    _compare(run(raised.model, arrays).outputs, case, raised.output_perms)


# Plus every layer case raised by re-lowering (onnx_to_keras/relower.py): their configs are
# Keras's own, and real Keras must take them as the NumPy reference does.
RELOWERED_CASES = [c for c in LAYER_CASES if (c.layer_class in (
    "GRU", "LSTM", "ConvLSTM2D", "TimeDistributed", "MultiHeadAttention", "Resizing",
    "Attention", "AdditiveAttention", "GroupQueryAttention", "RMSNormalization") or
    "mask" in c.name) and c.generation == "keras3" and c.id not in REFUSED]
KERAS3_FILES = [c for c in CASES if c.generation == "keras3" and c.id.startswith("keras3/")
                and c.id.endswith(".keras") and c.id not in REFUSED] + RELOWERED_CASES


@pytest.mark.parametrize("case", KERAS3_FILES, ids=[c.id for c in KERAS3_FILES])
def test_raised_h5_loads_in_real_keras(case, tmp_path, keras3):
    raised, onnx_path = _raise(case, tmp_path)
    # Keras 3's .h5 loader cannot rebuild keras.ops nodes (a mask's NotEqual) nor an axis list
    # (RMSNormalization(axis=[-2, -1])): those as .keras
    as_keras = any(layer.is_operation for layer in raised.model.layers) or \
        keras_dialect.legacy_h5_blockers(raised.model)
    back = tmp_path / ("back.keras" if as_keras else "back.h5")
    report = modelport.convert(onnx_path, back)
    assert report.parity.passed, report.parity.outputs
    model = keras3.models.load_model(back, compile=False)
    arrays = [np.ascontiguousarray(a.transpose(p)) if p else a
              for (_, a), p in zip(case.inputs, raised.input_perms)]
    got = model.predict(arrays if len(arrays) > 1 else arrays[0], verbose=0)
    _compare(got if isinstance(got, list) else [got], case, raised.output_perms)


def table() -> list[str]:
    """The pass table: passed / refused by op, per fixture family."""
    import tempfile
    from collections import Counter
    from pathlib import Path

    families: dict[str, Counter] = {}
    refused_ops: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            family = case.id.split("/")[0]
            counts = families.setdefault(family, Counter())
            try:
                _raise(case, Path(tmp))
                counts["raised"] += 1
            except UnsupportedError as e:
                counts["refused"] += 1
                for op in sorted(set(re.findall(r"(\w+) node '", str(e)))):
                    refused_ops[op] += 1
    lines = ["| fixtures | raised | refused |", "|---|---|---|"]
    lines += [f"| {f} | {c['raised']} | {c['refused']} |" for f, c in families.items()]
    lines += ["", "refusing ops: " + ", ".join(f"{op} {n}" for op, n in
                                                refused_ops.most_common())]
    return lines


if __name__ == "__main__":
    print("\n".join(table()))
