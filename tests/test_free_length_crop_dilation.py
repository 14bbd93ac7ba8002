"""A free sequence length under a fixed crop and a dilated "same" convolution (SpliceAI's
models, shipped as Keras .h5 files in the ``spliceai`` wheel: dilated Conv1D on [batch, ?, 4]
and a Cropping1D of 5000 at each end).

Two things went wrong there: the check's sizes ignored the crop (every size it tried was cut to
nothing, so the valid file was refused), and the ONNX written said the conv's padding as
``auto_pad=SAME_UPPER``, which onnxruntime refuses with a dilation past 1. At stride 1 SAME pads
``(k - 1) * d`` whatever the size, so the pads are written out."""

from __future__ import annotations

import onnx
from click.testing import CliRunner

from modelport.check import sizes
from modelport.cli import main
from modelport.converters import padding
from modelport.formats.loading import load

CROP = 200  # past the check's ladder (its largest try is 128 for this model)


def _model(keras3, path):
    keras = keras3
    x = keras.Input((None, 4))
    y = keras.layers.Conv1D(6, 5, dilation_rate=3, padding="same", activation="relu")(x)
    y = keras.layers.Conv1D(3, 3, dilation_rate=2, padding="same")(y)
    y = keras.layers.Cropping1D((CROP, CROP - 7))(y)
    keras.Model(x, y).save(path)
    return path


def test_sizes_run_past_a_fixed_crop(keras3, tmp_path):
    model = load(_model(keras3, tmp_path / "crop.keras"))
    assert sizes.candidates(model) == [2 * CROP - 7 + 1]


def test_explicit_same_pads_on_unknown_sizes():
    # stride 1: (k - 1) * d in total whatever the size, the odd one at the end
    assert padding.explicit_same_pads([None], [5], [1], [3]) == [6, 6]
    assert padding.explicit_same_pads([None, 9], [4, 3], [1, 2], [1, 1]) == [1, 1, 2, 1]
    # a stride past 1 on an unknown axis: the pads depend on the size
    assert padding.explicit_same_pads([None], [3], [2], [1]) is None


def test_dilated_same_conv_on_a_free_length_converts_and_checks(keras3, tmp_path):
    src = _model(keras3, tmp_path / "crop.keras")
    out = tmp_path / "out.onnx"
    result = CliRunner().invoke(main, ["convert", str(src), str(out), "--force"])
    assert result.exit_code == 0, result.output
    convs = [n for n in onnx.load(str(out)).graph.node if n.op_type == "Conv"]
    assert convs
    for node in convs:
        attrs = {a.name: a for a in node.attribute}
        assert "auto_pad" not in attrs or attrs["auto_pad"].s in (b"", b"NOTSET")
        assert "pads" in attrs
