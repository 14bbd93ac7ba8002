"""A layer class modelport does not know, most often a custom class that the program that
wrote the file registered itself (@upscalerjs's ESRGAN models: ``MultiplyBeta``,
``PixelShuffle``), is refused with exit 4, naming the layer and the class, saying that the
file does not hold its code, and what to do instead; inspect says the same, and nothing is
written."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from modelport.cli import main
from tests.conftest import FIXTURES


def _with_custom_class(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(FIXTURES / "tfjs" / "tfjs_mlp", src)
    doc = json.loads((src / "model.json").read_text())
    layers = doc["modelTopology"]["config"]["layers"]
    last = layers[-1]
    last["class_name"] = "MultiplyBeta"
    (src / "model.json").write_text(json.dumps(doc))
    return src / "model.json", last["config"]["name"]


def test_a_custom_layer_class_is_refused_with_what_to_do(tmp_path):
    model, name = _with_custom_class(tmp_path)
    for target in ("m.onnx", "m.keras"):
        result = CliRunner().invoke(main, ["convert", str(model), str(tmp_path / target)])
        assert result.exit_code == 4, result.output
        assert "'MultiplyBeta'" in result.output and name in result.output
        assert "custom class" in result.output and "tfjs_graph_model" in result.output
        assert "Traceback" not in result.output
        assert not (tmp_path / target).exists()
    shown = CliRunner().invoke(main, ["inspect", str(model)])
    assert "'MultiplyBeta'" in shown.output and "custom class" in shown.output


def test_inspect_and_convert_agree_on_a_custom_class_with_variables(keras3, tmp_path):
    """A Keras .h5 with a custom layer that holds variables (MMSplice's ``ConvDNA``): the
    .keras writer cannot place them, and inspect's dry run says so instead of a 'yes' that
    convert then refuses."""
    keras = keras3

    class ScaleBy(keras.layers.Layer):
        def build(self, shape):
            self.scale = self.add_weight(shape=(shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.scale

    x = keras.Input((3,))
    src = tmp_path / "custom.h5"
    keras.Model(x, ScaleBy(name="scale_by")(keras.layers.Dense(3)(x))).save(src)
    shown = CliRunner().invoke(main, ["inspect", str(src), "--json"])
    verdicts = json.loads(shown.output)["targets"]
    out = tmp_path / "m.keras"
    result = CliRunner().invoke(main, ["convert", str(src), str(out)])
    assert result.exit_code == 4, result.output
    assert "scale_by" in result.output and not out.exists()
    assert verdicts["keras"]["ok"] is False, verdicts["keras"]


def test_a_custom_class_without_variables_is_refused_before_writing(keras3, tmp_path):
    """MMSplice's ``GlobalAveragePooling1D_Mask0`` holds no variables: the .keras file could be
    written, but modelport's reader refuses the class, so the check failed on the written file
    (naming a temporary path) while inspect said 'yes'. Both now refuse it up front."""
    keras = keras3

    class Halve(keras.layers.Layer):
        def call(self, x):
            return x * 0.5

    x = keras.Input((3,))
    src = tmp_path / "custom.h5"
    keras.Model(x, Halve(name="halve")(keras.layers.Dense(3)(x))).save(src)
    verdicts = json.loads(CliRunner().invoke(main, ["inspect", str(src), "--json"]).output)
    out = tmp_path / "m.keras"
    result = CliRunner().invoke(main, ["convert", str(src), str(out)])
    assert result.exit_code == 4, result.output
    assert "'halve'" in result.output and "custom class" in result.output
    assert ".modelport-" not in result.output and not out.exists()
    assert verdicts["targets"]["keras"]["ok"] is False
