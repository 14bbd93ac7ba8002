"""atomic_output: all or nothing at the destination, and no truncating open of a file made in
advance (ext4 writes a file truncated and rewritten back to disk when it is closed, which
made closing a 1 GB output cost 0.3-0.6 s)."""

from __future__ import annotations

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
