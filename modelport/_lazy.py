"""Deferred imports of heavy modules that modelport's own code paths never use.

onnx_ir imports sympy at module level (and reads attributes of it in ``_symbolic_shapes``) for
symbolic dimension arithmetic, which modelport never performs; importing sympy costs about
0.35 s, close to half of converting a small model. A finder wraps exactly these modules' loaders
in ``importlib.util.LazyLoader`` (the stdlib recipe): each is a real module whose first attribute
access executes it, so a caller that does use sympy or onnx_ir's symbolic shapes gets them whole.

``DeferredModule`` serves the modules that some routes need and others do not: onnx_ir (with
onnx and ml_dtypes under it), which a Keras -> TF.js layers-model conversion never uses.
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


class DeferredModule:
    """A stand-in for a module that imports it on its first attribute access.

    For names that must exist when a module is imported but are only read later: ``load``'s
    return annotation names ``onnx_ir.Model``, which ``typing.get_type_hints`` resolves in
    ``formats.loading``'s globals, yet importing onnx_ir (and onnx, and ml_dtypes under it) costs
    more than a whole small Keras -> TF.js layers-model conversion, which never meets ONNX.
    Unlike a ``LazyLoader`` module it is not put in ``sys.modules``: every other import of the
    module stays an ordinary one, and ``import_module`` holds the import lock, so threads are safe.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> object:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<deferred module {self._name!r}>"
