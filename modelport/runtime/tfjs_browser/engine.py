"""The browser engine as the check's executor: one backend of headless Chromium per engine.

A check asks its target engine for one backend's outputs at a time; ``session`` names every
backend the check will ask for, so that the first request runs all of them in one browser
launch and page load and the others read the remembered results (``run_cached``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

import numpy as np

from ...errors import UnsupportedError
from ..engines import KerasReference, TfjsGraphEngine
from . import Job, backends_of, run_cached

_SESSION: ContextVar[tuple[str, ...] | None] = ContextVar("modelport_browser_session",
                                                          default=None)


@contextlib.contextmanager
def session(backends: tuple[str, ...]) -> Iterator[None]:
    """Within it, a browser engine runs all of ``backends`` at once (see the module)."""
    token = _SESSION.set(tuple(backends))
    try:
        yield
    finally:
        _SESSION.reset(token)


def _backends(backend: str) -> tuple[str, ...]:
    chosen = _SESSION.get()
    return chosen if chosen and backend in chosen else (backend,)


def _label(backend: str) -> str:
    what = {"cpu": "CPU (pure JS)", "wasm": "WebAssembly", "webgl": "WebGL",
            "webgpu": "WebGPU", "mobile": "WebGL with float16 textures, as on phones without "
            "float32 render targets"}[backend]
    return f"tfjs in headless Chromium, {backend} backend ({what}; real @tensorflow/tfjs)"


def _outputs(jobs: list[Job], backend: str) -> list[list[np.ndarray]]:
    from ..tfjs_node import TfjsError

    outs = []
    for per in run_cached(jobs, _backends(backend)):
        result = per[backend]
        if result.error is not None or result.outputs is None:
            raise TfjsError(f"tfjs failed on the {backend} backend in Chromium: "
                            f"{result.error}", file=jobs[0].model_json)
        outs.append(result.outputs)
    return outs


def _model_json(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p / "model.json" if p.is_dir() else p


class BrowserGraphEngine(TfjsGraphEngine):
    """A TF.js graph-model run by real tfjs in headless Chromium on one backend."""

    def __init__(self, graph, *, path: str | os.PathLike[str], backend: str) -> None:
        super().__init__(graph, path=path, engine="reference")
        self.backend = backend
        self.real = True  # rounding is measured on the NumPy TF reference, not on tfjs
        self.label = _label(backend)

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """The graph's outputs on ``arrays`` on this engine's backend."""
        return self.run_many([arrays])[0]

    def run_many(self, feeds: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
        """``run`` on each feed, every feed in one page load."""
        assert self.path is not None
        tensors = [o.tensor for o in self.graph.outputs]
        return _outputs([Job(self.path, "graph", [(i.tensor, a) for i, a in
                                                  zip(self.graph.inputs, arrays)], tensors)
                         for arrays in feeds], self.backend)


class BrowserLayersEngine(KerasReference):
    """A TF.js layers-model run by real tfjs in headless Chromium on one backend
    (``tf.loadLayersModel``, strict, then ``predict``); its inputs and rounding are the NumPy
    Keras reference's."""

    def __init__(self, model, *, path: str | os.PathLike[str], backend: str) -> None:
        super().__init__(model)
        self.path = _model_json(path)
        self.backend = backend
        self.label = _label(backend)

    def run(self, arrays: list[np.ndarray], *, capture: bool = False):
        """The model's outputs on ``arrays`` on this engine's backend (``capture``, every
        tensor of the graph, comes from the NumPy reference: tfjs exposes no intermediates)."""
        if capture:
            return super().run(arrays, capture=True)
        return self.run_many([arrays])[0]

    def run_many(self, feeds: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
        """``run`` on each feed, every feed in one page load."""
        names = [s.name for s in self.inputs()]
        return _outputs([Job(self.path, "layers", list(zip(names, arrays)), [])
                         for arrays in feeds], self.backend)

    def rounding(self, arrays: list[np.ndarray], outputs: list[np.ndarray]
                 ) -> list[np.ndarray]:
        """``|float32 - float64|`` of the NumPy Keras reference (never tfjs's own result, so
        that a backend's disagreement is never taken for rounding)."""
        return KerasReference.rounding(self, arrays, list(super().run(arrays)))


def browser_engine(model, path: str | os.PathLike[str] | None, engine: str):
    """The browser executor for a TF.js ``model`` at ``path`` and an ``--engine`` value naming
    one backend (``browser:webgl``)."""
    from ...models import LayersModel

    backends = backends_of(engine)
    if len(backends) != 1:
        raise UnsupportedError(f"--engine {engine!r}: one engine runs one backend; the check "
                               "runs each backend of a list on its own (check.validate_backends)")
    if path is None:
        raise UnsupportedError("the browser engine runs a TF.js model from its files; this "
                               "model has none (write it first)")
    if not _model_json(path).is_file() or _model_json(path).suffix != ".json":
        raise UnsupportedError(f"the browser engine runs TF.js models; {path} is not one (a "
                               "model.json or its folder)")
    if isinstance(model, LayersModel):
        return BrowserLayersEngine(model, path=path, backend=backends[0])
    return BrowserGraphEngine(model, path=path, backend=backends[0])


