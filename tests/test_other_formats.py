"""Valid model files of formats modelport does not read (a TensorFlow protobuf, a TensorFlow
Lite flatbuffer) are refused with exit 4, naming the format and how to reach one it reads,
not exit 3 "unrecognised file" (that is for unreadable files)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from modelport.cli import main


@pytest.mark.parametrize("name,data,says", [
    ("frozen.pb", b"\x0a\x0c\x0a\x01x\x12\x0bPlaceholder", "TensorFlow protobuf"),
    ("saved_model.pb", b"\x08\x01\x12\x00", "TensorFlow protobuf"),
    ("model.tflite", b"\x1c\x00\x00\x00TFL3" + b"\x00" * 24, "TensorFlow Lite"),
])
@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_other_formats_are_named(tmp_path, name, data, says, command):
    path = tmp_path / name
    path.write_bytes(data)
    args = [command, str(path)] + ([str(tmp_path / "out.onnx")] if command == "convert" else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 4, result.output
    assert says in result.output and "not a format modelport reads" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.onnx").exists()
