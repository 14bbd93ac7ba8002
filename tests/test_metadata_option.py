"""``convert --metadata KEY=FILE.json``: userDefinedMetadata in a TF.js model.json, as
tensorflowjs_converter's ``--metadata key:file.json`` writes it (top level of model.json, one
entry per key holding the file's JSON), for layers- and graph-models; a bad spec or file is a
usage error (exit 2) that names it. (tests/interop/test_tfjs_web_signature.py reads it back
in real tfjs as ``model.metadata``.)"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import modelport
from modelport.api.metadata import metadata_entries
from modelport.cli import main

from .conftest import FIXTURES

KERAS = FIXTURES / "keras3" / "cnn_bn_pool.keras"


@pytest.fixture
def labels(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(["cat", "dog"]))
    return path


@pytest.mark.parametrize("to", ["tfjs-layers", "tfjs-graph"])
def test_written_at_the_top_level_of_model_json(tmp_path, labels, to):
    result = CliRunner().invoke(main, ["convert", str(KERAS), str(tmp_path / "web"), "--to", to,
                                       "--metadata", f"labels={labels}", "-q", "--no-validate"])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "web" / "model.json").read_text())
    assert doc["userDefinedMetadata"]["labels"] == ["cat", "dog"]


def test_merged_with_the_pinned_shapes_modelport_records(tmp_path, labels):
    web = tmp_path / "web"
    modelport.convert(FIXTURES / "tfjs_converter" / "graph" / "conv1d_h5" / "model.json", web,
                      batch=2, validate=False, metadata={"labels": labels})
    meta = json.loads((web / "model.json").read_text())["userDefinedMetadata"]
    assert meta["labels"] == ["cat", "dog"] and len(meta) == 2, meta


@pytest.mark.parametrize(("spec", "words"), [
    ("labels", "expected KEY=FILE.json"),
    ("=x.json", "the key is empty"),
    ("labels=/nonexistent/x.json", "cannot read the file"),
    ("signature={labels}", "tfjs reads userDefinedMetadata.signature itself"),
    ("labels={bad}", "is not valid JSON"),
])
def test_a_bad_spec_is_a_usage_error(tmp_path, labels, spec, words):
    bad = tmp_path / "bad.json"
    bad.write_text("{labels: [")
    spec = spec.format(labels=labels, bad=bad)
    result = CliRunner().invoke(main, ["convert", str(KERAS), str(tmp_path / "web"),
                                       "--metadata", spec, "-q"])
    assert result.exit_code == 2, result.output
    assert words in result.output, result.output
    assert not (tmp_path / "web").exists()


def test_a_key_given_twice_and_a_non_tfjs_target_are_refused(tmp_path, labels):
    with pytest.raises(modelport.UsageError, match="given twice"):
        metadata_entries([f"a={labels}", f"a={labels}"])
    with pytest.raises(modelport.UsageError, match="--metadata does not apply"):
        modelport.convert(KERAS, tmp_path / "m.onnx", metadata={"labels": labels})
