"""A product of two tensors of one rank above 3 (attention's [batch, heads, n, d] scores and
weighted values) raises to Keras's ``Matmul`` operation (NumPy's matmul, as ONNX's): the
Whisper encoder PyTorch exported (fixtures/transformers, real torch.onnx.export) becomes a
``.keras`` file real Keras 3 loads and that matches onnxruntime; its check compares the
sampled layers too, though the export fixed the batch at 2 (the source runs whole, not on a
first row). ``.h5`` holds no Keras operations and refuses by name."""

from __future__ import annotations

import numpy as np
import onnx
from click.testing import CliRunner

import modelport
from modelport.cli import main
from tests.conftest import FIXTURES

WHISPER = FIXTURES / "transformers" / "whisper_encoder.torchscript.static.onnx"


def _ort(path, feeds: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def test_whisper_encoder_raises_with_matmul_operations_in_real_keras(tmp_path, keras3):
    report = modelport.convert(WHISPER, tmp_path / "m.keras")
    assert report.parity.passed, report.parity.notes
    found = report.parity.intermediates
    assert found is not None and found.skipped is None and found.compared >= 4
    from modelport.formats.loading import load

    classes = [layer.class_name for layer in load(tmp_path / "m.keras").iter_layers()]
    assert "Matmul" in classes
    proto = onnx.load(str(WHISPER))
    x = proto.graph.input[0]
    shape = [d.dim_value for d in x.type.tensor_type.shape.dim]
    feed = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    expected = _ort(WHISPER, {x.name: feed})[0]
    perm = report.keras.input_perms[0] if report.keras else None
    model = keras3.saving.load_model(tmp_path / "m.keras")
    got = np.asarray(model.predict(feed.transpose(perm) if perm else feed, verbose=0))
    out_perm = report.keras.output_perms[0] if report.keras else None
    np.testing.assert_allclose(got, expected.transpose(out_perm) if out_perm else expected,
                               atol=2e-5, rtol=1e-4)


def test_h5_refuses_the_matmul_operation_by_name(tmp_path):
    result = CliRunner().invoke(main, ["convert", str(WHISPER), str(tmp_path / "m.h5")])
    assert result.exit_code == 4, result.output
    assert "Matmul" in result.output and "--to keras" in result.output
    assert not (tmp_path / "m.h5").exists()
