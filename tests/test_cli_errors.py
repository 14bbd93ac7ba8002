"""Bad input: a one-line error naming the file and the problem, a distinct exit code, no
traceback, and nothing written. Each case corrupts a real file (made by Keras or by modelport)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelport.cli import main

from .conftest import FIXTURES

K3_H5 = FIXTURES / "keras3" / "mlp_sequential.h5"


def _tfjs_copy(tmp: Path, fixture: Path = K3_H5, shard_size: str = "512") -> Path:
    web = tmp / "web"
    result = CliRunner().invoke(main, ["convert", str(fixture), str(web), "--shard-size",
                                       shard_size, "-q"])
    assert result.exit_code == 0, result.output
    return web


def _manifest(web: Path) -> dict:
    return json.loads((web / "model.json").read_text())


def truncated_h5(tmp):
    bad = tmp / "truncated.h5"
    data = K3_H5.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    return bad


def garbage_h5(tmp):
    bad = tmp / "garbage.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    return bad


def weights_only_h5(tmp):
    import h5py

    bad = tmp / "weights_only.h5"
    shutil.copy(K3_H5, bad)
    with h5py.File(bad, "a") as f:
        del f.attrs["model_config"]
    return bad


def corrupt_zip(tmp):
    bad = tmp / "broken.keras"
    data = (FIXTURES / "keras3" / "mlp_sequential.keras").read_bytes()
    bad.write_bytes(data[:200])
    return bad


def shard_short(tmp):
    web = _tfjs_copy(tmp)
    shard = web / _manifest(web)["weightsManifest"][0]["paths"][-1]
    shard.write_bytes(shard.read_bytes()[:-8])
    return web


def shard_long(tmp):
    web = _tfjs_copy(tmp)
    shard = web / _manifest(web)["weightsManifest"][0]["paths"][-1]
    shard.write_bytes(shard.read_bytes() + b"\x00" * 8)
    return web


def shard_missing(tmp):
    web = _tfjs_copy(tmp)
    (web / _manifest(web)["weightsManifest"][0]["paths"][1]).unlink()
    return web


def manifest_weight_missing(tmp):
    web = _tfjs_copy(tmp, shard_size="4MiB")
    doc = _manifest(web)
    removed = doc["weightsManifest"][0]["weights"].pop()  # the last weight: its bytes remain
    (web / "model.json").write_text(json.dumps(doc))
    assert removed["name"]
    return web


def manifest_weight_renamed(tmp):
    web = _tfjs_copy(tmp, shard_size="4MiB")
    doc = _manifest(web)
    doc["weightsManifest"][0]["weights"][0]["name"] = "no_such_layer/kernel"
    (web / "model.json").write_text(json.dumps(doc))
    return web


def shard_path_escapes(tmp):
    web = _tfjs_copy(tmp, shard_size="4MiB")
    doc = _manifest(web)
    doc["weightsManifest"][0]["paths"] = ["../../etc/passwd"]
    (web / "model.json").write_text(json.dumps(doc))
    return web


def not_json(tmp):
    web = tmp / "web"
    web.mkdir()
    (web / "model.json").write_text("{not json")
    return web


def missing_file(tmp):
    return tmp / "does_not_exist.h5"


# (id, make source, extra args, exit code, message pattern)
CASES = [
    ("truncated-hdf5", truncated_h5, [], 3, r"truncated\.h5: .*HDF5"),
    ("garbage-hdf5", garbage_h5, [], 3, r"garbage\.h5: not a readable HDF5 file"),
    ("weights-only-hdf5", weights_only_h5, [], 3, r"no model_config"),
    ("corrupt-zip", corrupt_zip, [], 3, r"broken\.keras: .*(zip|unrecognised)"),
    ("shard-shorter", shard_short, [], 3, r"model\.json: the shards of group 0 end before weight"),
    ("shard-longer", shard_long, [], 3, (r"model\.json: the shards of group 0 hold \d+ bytes but "
                                         r"the manifest accounts for \d+: 8 bytes")),
    ("shard-missing", shard_missing, [], 3, (r"model\.json: shard group1-shard2of\d+\.bin of group "
                                             r"0 is missing")),
    ("manifest-weight-missing", manifest_weight_missing, [], 3,
     r"model\.json: .*(no 'dense_\d+/bias'|unaccounted)"),
    ("manifest-weight-renamed", manifest_weight_renamed, [], 3, r"model\.json: .*has no "),
    ("shard-path-escapes", shard_path_escapes, [], 3, r"climbs out of the model's folder"),
    ("not-json", not_json, [], 3, r"model\.json: not valid JSON"),
    ("missing-source", missing_file, [], 3, r"does_not_exist\.h5: no such file"),
]


@pytest.mark.parametrize("make,args,code,pattern",
                         [pytest.param(m, a, c, p, id=i) for i, m, a, c, p in CASES])
def test_bad_input_is_one_line_error(make, args, code, pattern, tmp_path):
    src = make(tmp_path)
    dst = tmp_path / "out.keras"
    result = CliRunner().invoke(main, ["convert", str(src), str(dst), "-q", *args])
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("modelport: error: "), result.output
    assert "Traceback" not in result.output
    import re

    assert re.search(pattern, lines[0]), lines[0]
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


REFUSALS = [
    ("lambda-to-tfjs", FIXTURES / "keras3" / "lambda_layer.h5", "web", 4,
     r"lambda_layer\.h5: layer 'lambda': Lambda: tfjs-layers 4\.22 has no Lambda layer"),
    ("gru-reset-after-to-tfjs", FIXTURES / "keras3" / "gru_reset_after.keras", "web", 4,
     r"GRU: tfjs-layers 4\.22 does not implement GRU\(reset_after=True\)"),
    ("keras2-lambda-to-keras3", FIXTURES / "keras2" / "lambda_layer.h5", "x.keras", 4,
     r"never runs or rewrites bytecode"),
    ("unknown-target", FIXTURES / "keras3" / "mlp_sequential.h5", "x.pb", 4,
     r"cannot tell the target format"),
]


@pytest.mark.parametrize("src,dst,code,pattern",
                         [pytest.param(s, d, c, p, id=i) for i, s, d, c, p in REFUSALS])
def test_refusals_name_layer_and_reason(src, dst, code, pattern, tmp_path):
    out = tmp_path / dst
    result = CliRunner().invoke(main, ["convert", str(src), str(out), "-q"])
    assert result.exit_code == code, result.output
    import re

    assert re.search(pattern, result.output), result.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_lambda_bytecode_is_never_executed(tmp_path, monkeypatch):
    import marshal

    def refuse(*_a, **_k):
        raise AssertionError("modelport unmarshalled Lambda bytecode")
    monkeypatch.setattr(marshal, "loads", refuse)
    result = CliRunner().invoke(main, ["convert", str(FIXTURES / "keras3" / "lambda_layer.h5"),
                                       str(tmp_path / "x.keras"), "-q"])
    assert result.exit_code == 0, result.output


def test_existing_destination_needs_force(tmp_path):
    dst = tmp_path / "model.keras"
    dst.write_bytes(b"precious")
    args = ["convert", str(K3_H5), str(dst), "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 5
    assert "destination exists" in result.output and "--force" in result.output
    assert dst.read_bytes() == b"precious"
    assert CliRunner().invoke(main, args + ["--force"]).exit_code == 0
    assert dst.read_bytes()[:2] == b"PK"


def test_existing_tfjs_folder_is_replaced_only_with_force(tmp_path):
    web = tmp_path / "web"
    web.mkdir()
    (web / "model.json").write_text("{}")
    (web / "group1-shard1of3.bin").write_text("old")
    assert CliRunner().invoke(main, ["convert", str(K3_H5), str(web), "-q"]).exit_code == 5
    assert (web / "group1-shard1of3.bin").exists()
    assert CliRunner().invoke(main, ["convert", str(K3_H5), str(web), "-q", "--force"]).exit_code == 0
    assert sorted(p.name for p in web.iterdir()) == ["group1-shard1of1.bin", "model.json"]


def test_force_does_not_replace_a_folder_that_is_not_a_model(tmp_path):
    """--force replaces a TF.js model folder, not any folder: a mistyped destination must not
    take a folder of the user's files with it."""
    web = tmp_path / "web"
    web.mkdir()
    (web / "keep.txt").write_text("x")
    result = CliRunner().invoke(main, ["convert", str(K3_H5), str(web), "-q", "--force"])
    assert result.exit_code == 5 and "not a TF.js model (it holds 'keep.txt')" in result.output
    assert (web / "keep.txt").read_text() == "x" and sorted(tmp_path.iterdir()) == [web]


def test_failure_leaves_existing_destination_untouched(tmp_path):
    dst = tmp_path / "web"
    dst.mkdir()
    (dst / "model.json").write_text("old")
    result = CliRunner().invoke(main, ["convert", str(FIXTURES / "keras3" / "gru_reset_after.h5"),
                                       str(dst), "--force", "-q"])
    assert result.exit_code == 4
    assert (dst / "model.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["web"]


def test_json_error_report_is_parseable(tmp_path):
    result = CliRunner().invoke(main, ["convert", str(FIXTURES / "keras3" / "gru_reset_after.h5"),
                                       str(tmp_path / "web"), "--json"])
    assert result.exit_code == 4
    doc = json.loads(result.output)
    assert doc["ok"] is False and doc["error"] == "UnsupportedError"
    assert doc["layer"] == "gru_2" and "GRU" in doc["message"]


def test_real_process_prints_no_traceback(tmp_path):
    bad = truncated_h5(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "modelport.cli", "convert", str(bad),
                           str(tmp_path / "o.keras")], capture_output=True, text=True, check=False)
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    # progress lines first, then exactly one error line
    lines = proc.stderr.splitlines()
    assert lines[-1].startswith("modelport: error: ") and "truncated" in lines[-1]
    assert sum(line.startswith("modelport: error") for line in lines) == 1
