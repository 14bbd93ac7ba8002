"""Atomic means atomic (issue 19, point 3): a failure at any step of writing any target --
the writer, the read-back check, the parity check, the move into place -- leaves DST as it
was: absent, or the previous file byte for byte under --force."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelport.cli import main
from modelport.errors import ModelportError, OutputError, UnsupportedError

ROOT = Path(__file__).resolve().parents[1]
KERAS = ROOT / "fixtures" / "keras3" / "mlp_sequential.keras"

# target name -> (extra arguments, the steps its conversion runs)
TARGETS = {
    "out.h5": ((), ("write", "read-back", "move")),
    "out.keras": ((), ("write", "read-back", "move")),
    "web": ((), ("write", "read-back", "move")),
    "out.onnx": ((), ("write", "parity", "move")),
    "graph": (("--to", "tfjs-graph"), ("write", "parity", "move")),
}


def _fail_after(real, error: Exception):
    def fn(*args, **kwargs):
        real(*args, **kwargs)  # the step does its work, then fails
        raise error
    return fn


def _inject(monkeypatch, step: str) -> None:
    import modelport.api.core as core
    import modelport.check.validate as validate

    if step == "write":
        monkeypatch.setattr(core, "_write", _fail_after(
            core._write, OutputError("injected: the disk filled while writing")))
    elif step == "read-back":
        monkeypatch.setattr(core, "check_written", _fail_after(
            core.check_written, ModelportError("injected: the read-back differs")))
    elif step == "parity":
        def refuse(*args, **kwargs):
            raise UnsupportedError("injected: the check cannot run")
        monkeypatch.setattr(validate, "validate_models", refuse)
    else:
        def refuse_move(new, dst):
            raise OSError(28, "No space left on device (injected)")
        monkeypatch.setattr(core, "move_into_place", refuse_move)


def _digest(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


CASES = [(name, step) for name, (_, steps) in TARGETS.items() for step in steps]


@pytest.mark.parametrize("force", [False, True], ids=["absent", "force"])
@pytest.mark.parametrize(("name", "step"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_a_failure_at_any_step_leaves_dst_as_it_was(name, step, force, tmp_path, monkeypatch):
    extra, _ = TARGETS[name]
    dst = tmp_path / name
    if force:  # a previous conversion is what --force would replace
        result = CliRunner().invoke(main, ["convert", str(KERAS), str(dst), "-q", *extra])
        assert result.exit_code == 0, result.output
    before = _digest(dst)
    _inject(monkeypatch, step)
    args = ["convert", str(KERAS), str(dst), "-q", *extra] + (["--force"] if force else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "injected" in result.output, result.output
    assert "Traceback" not in result.output
    assert _digest(dst) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ([name] if force else [])
