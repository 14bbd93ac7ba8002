"""The package's layers hold: no import cycle, the import-linter contracts in pyproject.toml are
kept, and a deliberately added upward import is caught (so the contracts can fail)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists() and os.environ.get("CI") != "true",
                                reason="import-linter is not installed (pip install -e '.[test]')")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"),
                           "--no-cache"], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "modelport", tmp_path / "modelport",
                    ignore=shutil.ignore_patterns("__pycache__", "*.js"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_no_import_cycle_between_modules() -> None:
    grimp = pytest.importorskip("grimp")
    from bench.structure import module_cycles

    del grimp
    assert module_cycles(ROOT / "modelport") == []


def test_contracts_are_kept() -> None:
    out = _lint_imports(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(("module", "upward"), [
    ("models/layers.py", "from modelport.converters import layout"),
    ("formats/sniff.py", "from modelport.check import parity"),
    ("converters/layout.py", "from modelport.formats import sniff"),
])
def test_an_upward_import_breaks_the_contracts(tmp_path: Path, module: str, upward: str) -> None:
    tree = _copy(tmp_path)
    path = tree / "modelport" / module
    path.write_text(path.read_text() + f"\n{upward}  # deliberately upward\n")
    out = _lint_imports(tree)
    assert out.returncode != 0, out.stdout
    assert "BROKEN" in out.stdout
