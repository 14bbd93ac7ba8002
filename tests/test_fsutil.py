"""atomic_output: all or nothing at the destination, and no truncating open of a file made in
advance (ext4 writes a file truncated and rewritten back to disk when it is closed, which
made closing a 1 GB output cost 0.3-0.6 s). ``--force`` replaces only a regular file or a TF.js
model folder, and a failed write is a clear error that leaves nothing behind."""

from __future__ import annotations

import os
import stat

import pytest

from modelport.fsutil import atomic_output


def test_a_file_output_is_a_name_not_yet_taken(tmp_path):
    dst = tmp_path / "m.onnx"
    with atomic_output(dst, directory=False, force=False) as tmp:
        assert not tmp.exists() and tmp.parent.is_dir() and tmp.parent != tmp_path
        tmp.write_bytes(b"model")
    assert dst.read_bytes() == b"model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_a_failed_write_leaves_nothing(tmp_path):
    dst = tmp_path / "m.onnx"
    with pytest.raises(RuntimeError), atomic_output(dst, directory=False, force=False) as tmp:
        tmp.write_bytes(b"half")
        tmp.with_name("m.onnx.weights.h5").write_bytes(b"scratch")
        raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []


def test_force_replaces_a_file_and_a_folder_without_leftovers(tmp_path):
    dst = tmp_path / "m.h5"
    dst.write_bytes(b"old")
    with atomic_output(dst, directory=False, force=True) as tmp:
        tmp.write_bytes(b"new")
    assert dst.read_bytes() == b"new"
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    with atomic_output(folder, directory=True, force=True) as tmp:
        assert tmp.is_dir() and not any(tmp.iterdir())
        (tmp / "model.json").write_text('{"new": 1}')
    assert (folder / "model.json").read_text() == '{"new": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5", "web"]


def _convert(*args):
    from click.testing import CliRunner

    from modelport.cli import main
    from tests.conftest import FIXTURES

    src = FIXTURES / "keras2" / "advanced_activations.h5"
    return CliRunner().invoke(main, ["convert", str(src), *map(str, args), "-q"])


def test_force_refuses_what_is_not_a_file_or_a_model_folder(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = _convert(fifo, "--force")
    assert result.exit_code == 5 and "destination is a FIFO" in result.output, result.output
    assert stat.S_ISFIFO(fifo.lstat().st_mode)

    home = tmp_path / "home"
    (home / "docs").mkdir(parents=True)
    (home / "model.json").write_text("{}")
    (home / "notes.txt").write_text("mine")
    for target in (home, home / "docs"):
        result = _convert(target, "--force")
        assert result.exit_code == 5, result.output
        assert "not a TF.js model" in result.output and "remove it yourself" in result.output
    assert (home / "notes.txt").read_text() == "mine" and (home / "docs").is_dir()
    result = _convert(home, "--force", "--json")
    assert "it holds 'docs'" in result.output  # the first stray entry, by name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "pipe"]  # nothing staged


def test_force_replaces_a_tfjs_model_folder_old_shard_names_included(tmp_path):
    web = tmp_path / "web"
    web.mkdir()
    for name in ("model.json", "group1-shard1of2", "group1-shard2of2", "weights.bin"):
        (web / name).write_text("old")
    result = _convert(web, "--force")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in web.iterdir()) == ["group1-shard1of1.bin", "model.json"]


@pytest.mark.parametrize("where", ["shards", "staging"])
def test_a_failed_write_is_an_output_error_and_leaves_nothing(tmp_path, monkeypatch, where):
    import errno
    import tempfile

    from modelport.formats import tfjs_manifest

    if where == "shards":
        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(tfjs_manifest, "_write_shards", full)
    else:
        def denied(prefix=None, dir=None, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, prefix))
        monkeypatch.setattr(tempfile, "mkdtemp", denied)
    targets = ["web"] if where == "shards" else ["web", "m.onnx", "m.h5"]  # shards: TF.js only
    reason = "No space left on device" if where == "shards" else "Permission denied"
    for dst in (tmp_path / name for name in targets):
        result = _convert(dst, "--no-validate")
        assert result.exit_code == 7, result.output
        assert f"{dst}: cannot write the result ({reason}); nothing was written" in \
            result.output, result.output
        assert "internal error" not in result.output
    if where == "staging":  # the checked ONNX result is staged by api, not by atomic_output
        result = _convert(tmp_path / "v.onnx")
        assert result.exit_code == 7 and "Permission denied" in result.output, result.output
    assert list(tmp_path.iterdir()) == []


def test_a_read_error_is_not_taken_for_a_write_error(tmp_path):
    import errno

    from modelport.errors import OutputError
    from modelport.fsutil import as_output_error

    dst = tmp_path / "m.onnx"
    source = OSError(errno.EIO, "Input/output error", str(tmp_path / "source.h5"))
    assert as_output_error(source, dst) is source
    for mine in (dst, tmp_path / "m.onnx.data", tmp_path / ".m.onnx.modelport-x1" / "m.onnx"):
        assert isinstance(as_output_error(OSError(errno.EIO, "x", str(mine)), dst), OutputError)
    assert isinstance(as_output_error(OSError(errno.ENOSPC, "full"), dst), OutputError)


def test_a_missing_destination_folder_is_told_before_any_work(tmp_path, monkeypatch):
    from modelport import api

    def no_reading(*args, **kwargs):
        raise AssertionError("the source was read")

    monkeypatch.setattr(api, "load", no_reading)
    for name in ("web", "m.onnx", "m.h5", "m.keras", "web/model.json"):
        result = _convert(tmp_path / "missing" / name)
        assert result.exit_code == 7, result.output
        # (web/model.json names a folder to be made: its own folder is the one missing)
        assert (f"{tmp_path / 'missing'}: the destination's folder does not exist (create it "
                "first)") in result.output, result.output
    assert list(tmp_path.iterdir()) == []


def test_a_tfjs_model_json_destination_makes_its_folder(tmp_path):
    result = _convert(tmp_path / "web" / "model.json")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "web").iterdir()) == ["group1-shard1of1.bin",
                                                                    "model.json"]
