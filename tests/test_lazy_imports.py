"""Imports a route does not need stay out: sympy (pulled in by onnx_ir, never used by modelport)
is deferred and still works when used; a Keras -> TF.js layers-model conversion imports neither
onnx, onnx_ir nor onnxruntime; no conversion without the check imports onnxruntime."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys
import modelport
from modelport.formats import onnx as _  # imports onnx_ir
assert "sympy.core" not in sys.modules, "sympy was executed on import"
import onnx_ir as ir
assert str(ir.SymbolicDim("N+1")._expr) == "N + 1"   # onnx_ir's own use loads it on demand
import sympy
assert sympy.Max(1, 2) == 2
print("ok")
"""


def test_sympy_is_deferred_and_still_usable():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# Each route imports only what it needs (issue 17): a conversion runs in a fresh interpreter
# through the CLI, then lists which heavy modules it imported. onnx_ir imports onnx, and both
# ml_dtypes, at module level (0.2-0.9 s together, more than a whole small conversion), and
# onnxruntime only runs the numeric check.
ROUTE_SCRIPT = """
import sys
from modelport.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    heavy = ("onnx", "onnx_ir", "onnxruntime", "ml_dtypes", "sympy.core")
    print("imported:", ",".join(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)
"""

H5, KERAS = "fixtures/keras2/cnn_bn_pool.h5", "fixtures/keras2/cnn_bn_pool.keras"
HEAVY = {"onnx", "onnx_ir", "onnxruntime", "ml_dtypes"}


def _imported(tmp_path: Path, src: str, out: str, *args: str) -> set[str]:
    cmd = [sys.executable, "-c", ROUTE_SCRIPT, "convert", str(ROOT / src), str(tmp_path / out),
           *args, "--force", "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    line = [x for x in proc.stderr.splitlines() if x.startswith("imported:")][-1]
    return set(filter(None, line.removeprefix("imported:").strip().split(",")))


@pytest.mark.parametrize("src", [H5, KERAS], ids=["h5", "keras"])
@pytest.mark.parametrize("check", [["--no-validate"], []], ids=["unchecked", "checked"])
def test_keras_to_tfjs_layers_imports_no_onnx(src, check, tmp_path):
    # the layers route's check reads the written model back: it needs no ONNX either
    assert _imported(tmp_path, src, "web", "--to", "tfjs-layers", *check) == set()


def test_keras_to_tfjs_graph_unchecked_imports_no_onnxruntime(tmp_path):
    # the graph route lowers through onnx_ir (which imports onnx and ml_dtypes at module level),
    # but without the check nothing runs a model: onnxruntime stays out
    imported = _imported(tmp_path, H5, "graph", "--to", "tfjs-graph", "--no-validate")
    assert "onnx_ir" in imported and "onnxruntime" not in imported


def test_keras_to_onnx_unchecked_imports_no_onnxruntime(tmp_path):
    imported = _imported(tmp_path, H5, "m.onnx", "--no-validate")
    assert "onnx_ir" in imported and "onnxruntime" not in imported


def test_the_package_imports_no_onnx_and_its_deferred_names_still_resolve():
    code = ("import sys, typing, modelport\n"
            f"loaded = {{m for m in {sorted(HEAVY)!r} if m in sys.modules}}\n"
            "assert not loaded, loaded\n"
            "import onnx_ir\n"
            "assert modelport.Model == modelport.LayersModel | onnx_ir.Model | modelport.TfjsGraph\n"
            "assert typing.get_type_hints(modelport.load)['return'] == modelport.Model\n"
            "from modelport import validate, validate_with\n"
            "from modelport.api import Model\n"
            "assert Model is modelport.Model and callable(validate) and callable(validate_with)\n"
            "assert {'Model', 'validate', 'validate_with'} <= set(dir(modelport))\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
