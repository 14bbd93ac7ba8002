"""sympy (pulled in by onnx_ir, never used by modelport) is deferred, and still works when used."""

import subprocess
import sys

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
