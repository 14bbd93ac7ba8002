"""Real ``@tensorflow/tfjs`` in headless Chromium: run TF.js models on the backends browsers use.

The TF.js web format exists to run in browsers: on the GPU through WebGL (or WebGPU), on the CPU
through WebAssembly, and on phones whose WebGL renders only in float16. This package runs a
model there, through ``driver.js`` (Node + puppeteer-core, which downloads nothing) and
``page.html`` (tfjs and its WASM backend, served with the model from 127.0.0.1).

Needs ``node``, a Chromium (``chromium-headless-shell``, ``chromium`` or Chrome; or
``$MODELPORT_CHROMIUM``) and the npm packages ``@tensorflow/tfjs``,
``@tensorflow/tfjs-backend-wasm`` and ``puppeteer-core`` in the node_modules tfjs_node finds
(``modelport setup web`` installs them). Backends: ``cpu``, ``wasm``, ``webgl`` (SwiftShader
where there is no GPU), ``webgpu`` (where the browser gives an adapter) and ``mobile``
(WebGL with float32 render targets off: float16 textures, as on many phones).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import UnsupportedError
from .. import tfjs_node

HERE = Path(__file__).resolve().parent
BACKENDS = ("cpu", "wasm", "webgl", "webgpu", "mobile")
DEFAULT_BACKENDS = ("cpu", "wasm", "webgl")
PACKAGES = ("@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm", "puppeteer-core")
# optional: without it the webgpu backend reports that it is not installed
WEBGPU_PACKAGE = "@tensorflow/tfjs-backend-webgpu"
CHROMIUMS = ("chromium-headless-shell", "chrome-headless-shell", "chromium", "chromium-browser",
             "google-chrome", "google-chrome-stable")
INSTALL_CHROMIUM = ("install a Chromium: `apt-get install chromium-headless-shell` (Debian/"
                    "Ubuntu, after apt-get update), `dnf install chromium-headless` (Fedora), "
                    "`brew install --cask chromium` (macOS), or point MODELPORT_CHROMIUM at a "
                    "Chrome/Chromium executable")


def backends_of(engine: str) -> tuple[str, ...]:
    """The backends an ``--engine`` value names: ``browser`` alone is cpu, wasm and webgl;
    ``browser:webgl,mobile`` (or ``browser:webgl,browser:mobile``) those; a backend that is
    not one of BACKENDS is an UnsupportedError."""
    names: list[str] = []
    for part in engine.split(","):
        part = part.strip()
        part = part.split(":", 1)[1] if part.startswith("browser:") else part
        chosen = DEFAULT_BACKENDS if part in ("browser", "") else (part,)
        for name in chosen:
            if name not in BACKENDS:
                raise UnsupportedError(f"--engine {engine!r}: unknown browser backend {name!r}; "
                                       f"choose from {', '.join(BACKENDS)}")
            if name not in names:
                names.append(name)
    return tuple(names)


def is_browser(engine: str | None) -> bool:
    """Whether an ``--engine`` value asks for the browser."""
    return bool(engine) and str(engine).split(",")[0].strip().startswith("browser")


def chromium() -> Path | None:
    """The Chromium to drive: ``$MODELPORT_CHROMIUM``, else the first of CHROMIUMS on PATH."""
    named = os.environ.get("MODELPORT_CHROMIUM")
    if named:
        return Path(named) if Path(named).is_file() else None
    for name in CHROMIUMS:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def missing() -> str | None:
    """None when the browser engine can run here, else exactly what to install."""
    needs = []
    if shutil.which("node") is None:
        needs.append("Node.js (https://nodejs.org, or `apt-get install nodejs npm`)")
    modules = tfjs_node.node_modules()
    absent = [p for p in PACKAGES if modules is None or not (modules / p).is_dir()]
    if absent:
        needs.append(f"the npm packages {', '.join(absent)} (`modelport setup web` installs "
                     "the pinned versions into a user cache)")
    if chromium() is None:
        needs.append(INSTALL_CHROMIUM if os.environ.get("MODELPORT_CHROMIUM") is None else
                     f"MODELPORT_CHROMIUM={os.environ['MODELPORT_CHROMIUM']} is not a file")
    return "; ".join(needs) or None


@dataclass
class Job:
    """One model to run on every backend: its model.json, its kind, its inputs (by signature
    tensor name for a graph-model, in order for a layers-model) and the tensors to fetch."""

    model_json: Path
    kind: str  # graph | layers
    inputs: list[tuple[str, np.ndarray]]
    outputs: list[str]


@dataclass
class Result:
    """What one job gave on one backend: its outputs, or the error, and the time it took."""

    backend: str
    outputs: list[np.ndarray] | None
    error: str | None
    seconds: float


def run(jobs: list[Job], backends: tuple[str, ...], *, budget_s: float | None = None,
        job_s: float = 120.0) -> list[dict[str, Result]]:
    """Every job on every backend in one browser: for each job, its Result by backend. A
    backend that does not start gives every job its error; a dead browser, its last words.
    ``job_s``: one job on one backend (past it, that job fails and the browser restarts);
    ``budget_s``: the whole run (default: 30 s to start, plus ``job_s`` per job and backend)."""
    if budget_s is None:
        budget_s = 30.0 + job_s * len(jobs) * len(backends)
    reason = missing()
    if reason:
        raise UnsupportedError(f"the browser engine cannot run here; it needs {reason}")
    with tempfile.TemporaryDirectory(prefix="modelport-browser-") as tmp:
        src, out = Path(tmp, "jobs.json"), Path(tmp, "results.jsonl")
        src.write_text(json.dumps({
            "chromium": str(chromium()), "modules": str(tfjs_node.node_modules()),
            "backends": list(backends), "job_seconds": job_s,
            "jobs": [{"model": str(Path(j.model_json).resolve()), "kind": j.kind,
                      "outputs": j.outputs,
                      "inputs": [tfjs_node._encode(n, a) for n, a in j.inputs]}
                     for j in jobs]}))
        crash = None
        try:
            proc = subprocess.run(["node", str(HERE / "driver.js"), str(src), str(out)],
                                  capture_output=True, text=True, timeout=budget_s,
                                  check=False)
            if proc.returncode != 0:
                lines = proc.stderr.strip().splitlines()
                crash = lines[-1] if lines else f"node exited {proc.returncode}"
        except subprocess.TimeoutExpired:
            crash = f"the browser ran over its {budget_s:.0f} s budget"
        lines = out.read_text().splitlines() if out.exists() else []
    results: list[dict[str, Result]] = [{} for _ in jobs]
    for line in lines:
        item = json.loads(line)
        outputs = None if "error" in item else [tfjs_node._decode(o) for o in item["outputs"]]
        results[item["job"]][item["backend"]] = Result(item["backend"], outputs,
                                                        item.get("error"), item["ms"] / 1000)
    for per in results:
        for backend in backends:
            per.setdefault(backend, Result(backend, None, crash or "the browser stopped "
                                           "before this job ran", 0.0))
    return results


_CACHE: dict[str, list[dict[str, Result]]] = {}


def run_cached(jobs: list[Job], backends: tuple[str, ...]) -> list[dict[str, Result]]:
    """``run``, remembered for the same jobs: a check asks for one backend at a time, the
    browser runs all of them in one launch and page load."""
    digest = hashlib.sha256()
    for job in jobs:
        digest.update(f"{Path(job.model_json).resolve()}|{job.kind}|{job.outputs}".encode())
        for name, array in job.inputs:
            digest.update(name.encode() + str(array.dtype).encode() + str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    key = f"{digest.hexdigest()}|{','.join(backends)}"
    if key not in _CACHE:
        _CACHE.clear()  # one model's results at a time
        _CACHE[key] = run(jobs, backends)
    LAST_JOBS[:] = jobs
    return _CACHE[key]


LAST_JOBS: list[Job] = []  # the jobs run_cached ran last: what a per-node walk re-runs
