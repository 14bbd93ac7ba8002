"""Deferred imports of heavy modules that modelport's own code paths never use.

onnx_ir imports sympy at module level (and reads attributes of it in ``_symbolic_shapes``) for
symbolic dimension arithmetic, which modelport never performs; importing sympy costs about
0.35 s, close to half of converting a small model. A finder wraps exactly these modules' loaders
in ``importlib.util.LazyLoader`` (the stdlib recipe): each is a real module whose first attribute
access executes it, so a caller that does use sympy or onnx_ir's symbolic shapes gets them whole.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys

DEFERRED = frozenset({"sympy", "onnx_ir._symbolic_shapes"})


class _LazyFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in DEFERRED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = importlib.util.LazyLoader(spec.loader)
                return spec
        return None


def defer_heavy_imports() -> None:
    """Install the finder once, ahead of the standard ones; modules already imported stay as are."""
    if not any(isinstance(f, _LazyFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _LazyFinder())
