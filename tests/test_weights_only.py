"""Issue 18 point 11: weights-only files say what they are, what is missing and how to supply it
(exit 4: a valid file, but not one that holds a model to convert; exit 3 is for unreadable,
corrupt or unsafe files), instead of "unrecognised file".

The files are what the real tools write (fixtures/make_weights_only_fixtures.py): tf.keras
``save_weights`` (.h5), Keras 3 ``save_weights`` (.weights.h5), the TF.js converter's
``write_weights`` (weights_manifest.json + shard).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import modelport
from modelport.cli import main

HERE = Path(__file__).resolve().parent.parent / "fixtures" / "weights_only"
MANIFEST = HERE / "tfjs_manifest" / "weights_manifest.json"


def _cli(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, [*args, "--json"])
    return result.exit_code, json.loads(result.output)


@pytest.mark.parametrize("path,says", [
    (HERE / "keras2_save_weights.h5", ["Keras weights-only", "save_weights", "d1, d2",
                                       "no model_config"]),
    (HERE / "keras3.weights.h5", ["Keras 3 weights-only", ".weights.h5", "no model_config"]),
    (MANIFEST, ["TF.js weights manifest", "2 weights", "d1/kernel", "without a model topology"]),
    (HERE / "tfjs_manifest", ["TF.js weights manifest", "without a model topology"]),
], ids=["keras2-h5", "keras3-weights-h5", "tfjs-manifest", "tfjs-manifest-folder"])
@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_weights_only_files_are_named_with_what_is_missing(tmp_path, path, says, command):
    args = [command, str(path)] + ([str(tmp_path / "out.onnx")] if command == "convert" else [])
    code, doc = _cli(*args)
    # a valid file that lacks what conversion needs: unsupported (4), not unreadable (3)
    assert code == 4 and doc["exit_code"] == 4
    assert "unrecognised" not in doc["message"]
    for text in says:
        assert text in doc["message"]
    hint = doc["hint"]
    assert "model.save" in hint if path.suffix == ".h5" else "model.json" in hint
    assert not (tmp_path / "out.onnx").exists()


def test_a_model_json_with_weights_but_no_topology(tmp_path):
    folder = tmp_path / "web"
    shutil.copytree(HERE / "tfjs_manifest", folder)
    manifest = json.loads((folder / "weights_manifest.json").read_text())
    (folder / "model.json").write_text(json.dumps({"weightsManifest": manifest}))
    with pytest.raises(modelport.UnsupportedError, match="TF.js weights manifest .* without a model "
                                                    "topology"):
        modelport.load(folder)


def test_shards_without_any_json(tmp_path):
    folder = tmp_path / "web"
    folder.mkdir()
    shutil.copy(HERE / "tfjs_manifest" / "group1-shard1of1.bin", folder)
    with pytest.raises(modelport.UnsupportedError, match="TF.js weight shards without the "
                                                    "model.json"):
        modelport.load(folder)


def test_the_pre_1_0_tfjs_format_without_its_manifest_is_named(tmp_path):
    """(with weights_manifest.json beside it the pair is read: tests/test_tfjs_graph_v0.py)"""
    folder = tmp_path / "old"
    shutil.copytree(HERE / "tfjs_manifest", folder)
    (folder / "weights_manifest.json").unlink()
    (folder / "tensorflowjs_model.pb").write_bytes(b"\x0a\x00")
    with pytest.raises(modelport.UnsupportedError, match="pre-1.0 format without its weights_") as e:
        modelport.load(folder)
    assert "tensorflowjs_converter" in (e.value.hint or "")


def test_the_weights_of_an_unzipped_keras_point_to_the_folder():
    path = HERE.parent / "keras3" / "nested_unzipped" / "model.weights.h5"
    with pytest.raises(modelport.UnsupportedError, match="unzipped .keras") as e:
        modelport.load(path)
    assert str(path.parent) in (e.value.hint or "")
