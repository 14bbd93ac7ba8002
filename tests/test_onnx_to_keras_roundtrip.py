"""Round trip Keras -> ONNX -> Keras: every Keras fixture (made by real Keras / real TF.js)
converted to ONNX by modelport and raised back to Keras layers must reproduce the outputs the
real framework recorded (atol 1e-4, rtol 1e-3), in modelport's NumPy Keras executor; the Keras 3
models also as .h5 files loaded by real Keras 3.

Cases the raising refuses are listed in ``REFUSED`` with the op that stops them, so a
regression either way fails; ``python -m tests.test_onnx_to_keras_roundtrip`` prints the table.
"""

from __future__ import annotations

import re

import numpy as np
import onnx_ir as ir
import pytest

import modelport
from modelport.converters.onnx_to_keras import raise_model
from modelport.errors import UnsupportedError
from modelport.runtime.keras_reference import run

from .conftest import ALL_CASES, LAYER_CASES

ATOL, RTOL = 1e-4, 1e-3
CASES = [c for c in ALL_CASES + LAYER_CASES if c.name != "lambda_layer"]

# case id -> the node (as the error names it) with no Keras layer. What the Keras -> ONNX
# lowering writes for these has no Keras inverse once decomposed: Keras masks (Equal/Not/Where),
# recurrent cells it writes as Scan loops (masks, non-default activations, GRU
# reset_after=False, ConvLSTM2D), MultiHeadAttention's batched products of activations
# (MatMul), nearest Resizing written as Gathers, TimeDistributed's fold of time into the batch
# axis (Reshape across the batch).
REFUSED: dict[str, str] = {
    'keras2/recurrent.h5': "Scan node 'gru/Scan'",
    'keras2/recurrent.keras': "Scan node 'gru/Scan'",
    'keras3/recurrent.h5': "Scan node 'gru/Scan'",
    'keras3/recurrent.keras': "Scan node 'gru/Scan'",
    'tfjs/tfjs_gru_hard_sigmoid': "Scan node 'gru_GRU1/Scan'",
    'layers/ConvLSTM2D-same-return_sequences': "Scan node 'convlstm2d_same_return_sequences/Scan'",
    'layers/ConvLSTM2D-valid': "Scan node 'convlstm2d_valid/Scan'",
    'layers/Embedding-mask_zero-Add-masks': "Scan node 'lstm/Scan'",
    'layers/Embedding-mask_zero-Concatenate-masks': "Scan node 'lstm/Scan'",
    'layers/Embedding-mask_zero-GRU': "Scan node 'gru/Scan'",
    'layers/Embedding-mask_zero-GlobalAveragePooling1D': "Equal node 'not_equal/Equal'",
    'layers/Embedding-mask_zero-LSTM': "Scan node 'lstm/Scan'",
    'layers/GRU-activations': "Scan node 'gru_activations/Scan'",
    'layers/GRU-reset_after-false': "Scan node 'gru_reset_after_false/Scan'",
    'layers/GRU-reset_after-false-activations': "Scan node 'gru_reset_after_false_activations/Scan'",
    'layers/GRU-reset_after-false-go_backwards-return_sequences': "Scan node 'gru_reset_after_false_go_backwards_return_sequences/Scan'",
    'layers/GRU-reset_after-false-return_sequences': "Scan node 'gru_reset_after_false_return_sequences/Scan'",
    'layers/GRU-reset_after-false-return_state': "Scan node 'gru_reset_after_false_return_state/Scan'",
    'layers/LSTM-activations': "Scan node 'lstm_activations/Scan'",
    'layers/Masking-LSTM-return_sequences': "Scan node 'lstm/Scan'",
    'layers/MultiHeadAttention-attention_mask': "MatMul node 'multiheadattention_attention_mask/MatMul_4'",
    'layers/MultiHeadAttention-causal': "Shape node 'multiheadattention_causal/Shape'",
    'layers/MultiHeadAttention-cross-key': "MatMul node 'multiheadattention_cross_key/MatMul_4'",
    'layers/MultiHeadAttention-return_scores-value_dim': "MatMul node 'multiheadattention_return_scores_value_dim/MatMul_4'",
    'layers/MultiHeadAttention-self': "MatMul node 'multiheadattention_self/MatMul_4'",
    'layers/Resizing-nearest': "Gather node 'resizing_nearest/Gather'",
    'layers/TimeDistributed-Conv2D': "Reshape node 'timedistributed_conv2d/Reshape'",
    'layers/TimeDistributed-Dense': "Reshape node 'timedistributed_dense/Reshape'",
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


KERAS3_FILES = [c for c in CASES if c.generation == "keras3" and c.id.startswith("keras3/")
                and c.id.endswith(".keras") and c.id not in REFUSED]


@pytest.mark.parametrize("case", KERAS3_FILES, ids=[c.id for c in KERAS3_FILES])
def test_raised_h5_loads_in_real_keras(case, tmp_path, keras3):
    raised, onnx_path = _raise(case, tmp_path)
    report = modelport.convert(onnx_path, tmp_path / "back.h5")
    assert report.parity["passed"], report.parity["outputs"]
    model = keras3.models.load_model(tmp_path / "back.h5", compile=False)
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
