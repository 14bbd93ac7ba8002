"""--isolate (issue 19 point 5): an .h5 source is walked in a child process first, under a
time limit, so that a libhdf5 loop on a corrupt file ends in exit 3 instead of a hang."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from modelport.cli import main
from modelport.errors import FormatError
from modelport.formats import h5_isolate, keras_h5

ROOT = Path(__file__).resolve().parents[1]
H5 = ROOT / "fixtures" / "keras3" / "mlp_sequential.h5"


def test_an_isolated_read_reads_the_same_model():
    plain = keras_h5.read(H5)
    with h5_isolate.isolated(60):
        isolated = keras_h5.read(H5)
    assert [layer.name for layer in isolated.layers] == [layer.name for layer in plain.layers]


def test_a_walk_that_does_not_finish_is_refused(monkeypatch):
    monkeypatch.setattr(h5_isolate, "WALK", "import time; time.sleep(30)")
    with h5_isolate.isolated(1.0), pytest.raises(FormatError, match="did not finish within 1 s"):
        keras_h5.read(H5)


def test_a_crashing_walk_is_refused(monkeypatch):
    monkeypatch.setattr(h5_isolate, "WALK", "import os, signal; os.kill(os.getpid(), "
                                            "signal.SIGSEGV)")
    with pytest.raises(FormatError, match="crashed an isolated child"):
        h5_isolate.check(H5, 30)


def test_off_by_default_and_from_the_environment(monkeypatch):
    monkeypatch.delenv(h5_isolate.ENV, raising=False)
    assert h5_isolate.limit() is None
    monkeypatch.setenv(h5_isolate.ENV, "1")
    assert h5_isolate.limit() == h5_isolate.DEFAULT_SECONDS
    monkeypatch.setenv(h5_isolate.ENV, "5")
    assert h5_isolate.limit() == 5.0


def test_cli_isolate(tmp_path, monkeypatch):
    ok = CliRunner().invoke(main, ["convert", str(H5), str(tmp_path / "m.keras"), "-q",
                                   "--isolate"])
    assert ok.exit_code == 0, ok.output
    monkeypatch.setattr(h5_isolate, "WALK", "import time; time.sleep(120)")
    monkeypatch.setattr("modelport.cli.DEFAULT_ISOLATE_SECONDS", 1.0)
    hung = CliRunner().invoke(main, ["convert", str(H5), str(tmp_path / "n.keras"), "-q",
                                     "--isolate"])
    assert hung.exit_code == 3 and "did not finish within 1 s" in hung.output, hung.output
    assert not (tmp_path / "n.keras").exists()
