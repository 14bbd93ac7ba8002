"""Real ``@tensorflow/tfjs`` under Node.js: load and run TF.js models the way a browser does.

Needs ``node`` and the npm package ``@tensorflow/tfjs`` (4.x). modelport looks for its
``node_modules`` in ``$MODELPORT_TFJS_NODE_MODULES``, then in a source checkout's
``tests/interop/node/node_modules``, then wherever ``node`` resolves it (``$NODE_PATH``).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelportError

HERE = Path(__file__).resolve().parent
CHECKOUT_MODULES = HERE.parents[2] / "tests" / "interop" / "node" / "node_modules"


class TfjsError(ModelportError):
    """Real tfjs refused to load or run the model; the message is tfjs's own."""

    exit_code = 6
    kind = "tfjs"


def node_modules() -> Path | None:
    """The node_modules folder that holds @tensorflow/tfjs (MODELPORT_TFJS_NODE_MODULES, the
    checkout's tests/interop/node, ``modelport setup web``'s cache, then NODE_PATH), or None."""
    for candidate in (os.environ.get("MODELPORT_TFJS_NODE_MODULES"), CHECKOUT_MODULES,
                      _setup_modules(), *os.environ.get("NODE_PATH", "").split(os.pathsep)):
        if candidate and (Path(candidate) / "@tensorflow" / "tfjs").is_dir():
            return Path(candidate)
    return None


def web_cache() -> Path:
    """Where ``modelport setup web`` installs the npm packages: $MODELPORT_WEB_CACHE, else
    $XDG_CACHE_HOME/modelport/web (``~/.cache/modelport/web``)."""
    named = os.environ.get("MODELPORT_WEB_CACHE")
    return Path(named) if named else Path(os.environ.get("XDG_CACHE_HOME") or
                                          Path.home() / ".cache") / "modelport" / "web"


def _setup_modules() -> str:
    return str(web_cache() / "node_modules")


def available() -> str | None:
    """None when real tfjs can run here, else why not."""
    if shutil.which("node") is None:
        return "node is not installed"
    if node_modules() is None:
        return ("@tensorflow/tfjs is not installed (`modelport setup web` installs it; or npm "
                "install @tensorflow/tfjs and set MODELPORT_TFJS_NODE_MODULES to its "
                "node_modules folder)")
    return None


_WIRE = {"float32": "<f4", "int32": "<i4", "bool": "u1"}


def _encode(name: str, array: np.ndarray) -> dict:
    """A tensor for the Node runners: base64 of its bytes (JSON numbers cannot carry NaN)."""
    array = np.asarray(array)
    if array.dtype.kind in "OSU":
        return {"name": name, "dtype": "string", "shape": list(array.shape),
                "data": [str(v) for v in array.reshape(-1)]}
    dtype = "int32" if array.dtype.kind in "iu" else "bool" if array.dtype == np.bool_ \
        else "float32"
    raw = np.ascontiguousarray(array, dtype=_WIRE[dtype]).tobytes()
    return {"name": name, "dtype": dtype, "shape": list(array.shape),
            "b64": base64.b64encode(raw).decode("ascii")}


def _decode(item: dict) -> np.ndarray:
    if any(not isinstance(d, int) for d in item["shape"]):
        raise TfjsError(f"tfjs returned {item['name']!r} with an invalid shape {item['shape']}")
    if item["dtype"] not in _WIRE:
        return np.asarray(item["data"], dtype=object).reshape(item["shape"])
    array = np.frombuffer(base64.b64decode(item["b64"]), dtype=_WIRE[item["dtype"]])
    array = array.astype(bool) if item["dtype"] == "bool" \
        else array.astype(array.dtype.newbyteorder("="))
    return array.reshape(item["shape"])


def _run(script: str, model_json: Path, spec: dict, timeout: float) -> dict:
    reason = available()
    if reason:
        raise ModelportError(f"real tfjs cannot run here: {reason}")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp, "in.json"), Path(tmp, "out.json")
        src.write_text(json.dumps(spec))
        env = dict(os.environ, NODE_PATH=str(node_modules()))
        proc = subprocess.run(["node", str(HERE / script), str(model_json), str(src), str(out)],
                              capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)
        if proc.returncode != 0:
            raise TfjsError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip()
                            else f"node exited {proc.returncode}", file=model_json)
        return json.loads(out.read_text())


def run_graph(model_json: Path, inputs: list[tuple[str, np.ndarray]], outputs: list[str],
              timeout: float = 300) -> list[np.ndarray]:
    """Run a graph-model: ``inputs`` by signature tensor name, ``outputs`` tensor names."""
    result, = run_graph_batch([GraphJob(Path(model_json), inputs, outputs, timeout)])
    if result.error is not None:
        raise result.error
    if result.outputs is None:  # a result holds its outputs or its error
        raise TfjsError("tfjs gave neither outputs nor an error", file=model_json)
    return result.outputs


@dataclass
class GraphJob:
    """One graph-model run for ``run_graph_batch``: the model.json, the inputs, the tensors to
    fetch, and the time its Node process may take."""

    model_json: Path
    inputs: list[tuple[str, np.ndarray]]  # by signature tensor name
    outputs: list[str]  # tensor names to fetch
    budget_s: float = 300.0  # time this job may take before its Node process is killed


@dataclass
class LayersJob:
    """One layers-model run for ``run_layers_batch``: the model.json, the inputs, and the time
    its Node process may take."""

    model_json: Path
    inputs: list[tuple[str, np.ndarray]]  # in the model's input order
    budget_s: float = 300.0  # time this job may take before its Node process is killed


@dataclass
class _BatchResult:
    outputs: list[np.ndarray] | None  # None when the job failed
    error: TfjsError | None
    seconds: float


class GraphResult(_BatchResult):
    """What one GraphJob gave: its outputs, or tfjs's error."""


class LayersResult(_BatchResult):
    """What one LayersJob gave: its outputs (the model's, in order), or tfjs's error."""


def run_graph_batch(jobs: list[GraphJob]) -> list[GraphResult]:
    """Run graph-models one after another in as few Node processes as possible (tfjs loads
    once per process); a result for every job, in order.

    A job that tfjs fails on gets tfjs's error and the rest go on in a fresh process (see
    run_graph_batch.js for why). When the process itself dies (out of memory, over its time
    budget), the job that was running is charged with it, so one bad model hides nothing.
    """
    return _run_batch("run_graph_batch.js", jobs, GraphResult,
                      lambda j: {"model": str(Path(j.model_json).resolve()), "outputs": j.outputs,
                                 "inputs": [_encode(n, a) for n, a in j.inputs]})


def run_layers_batch(jobs: list[LayersJob]) -> list[LayersResult]:
    """Run layers-models (``tf.loadLayersModel``, strict, then ``predict``) the way
    run_graph_batch runs graph-models: as few Node processes as possible, a result for every
    job in order, failures and crashes charged to their own job."""
    return _run_batch("run_layers_batch.js", jobs, LayersResult,
                      lambda j: {"model": str(Path(j.model_json).resolve()),
                                 "inputs": [_encode(n, a) for n, a in j.inputs]})


def _run_batch(script: str, jobs: list, result: type[_BatchResult],
               encode: Callable[[Any], dict]) -> list:
    """The loop both batch runners share: run the pending jobs in one ``script`` process,
    charge a crash to the job that was running, resume after it in a fresh process."""
    reason = available()
    if reason:
        raise ModelportError(f"real tfjs cannot run here: {reason}")
    results: list = []
    while len(results) < len(jobs):
        pending = jobs[len(results):]
        done, crash = _batch(script, pending, result, encode)
        results += done
        if len(done) < len(pending) and (not done or done[-1].error is None):
            results.append(result(None, TfjsError(
                crash or "the tfjs batch runner stopped without a result",
                file=pending[len(done)].model_json), 0.0))
    return results


def _batch(script: str, jobs: list, result: type[_BatchResult],
           encode: Callable[[Any], dict]) -> tuple[list, str | None]:
    budget = 10.0 + sum(j.budget_s for j in jobs)  # 10 s: Node start and tfjs import
    crash = None
    with tempfile.TemporaryDirectory(prefix="modelport-tfjs-") as tmp:
        src, out = Path(tmp, "jobs.json"), Path(tmp, "results.jsonl")
        src.write_text(json.dumps({"jobs": [encode(j) for j in jobs]}))
        env = dict(os.environ, NODE_PATH=str(node_modules()))
        try:
            proc = subprocess.run(["node", str(HERE / script), str(src), str(out)],
                                  capture_output=True, text=True, timeout=budget, env=env,
                                  check=False)
            if proc.returncode != 0:
                lines = proc.stderr.strip().splitlines()
                crash = lines[-1] if lines else f"node exited {proc.returncode}"
        except subprocess.TimeoutExpired:
            crash = f"the Node process ran over its {budget:.0f} s budget"
        lines = out.read_text().splitlines() if out.exists() else []
    done = []
    for line, job in zip(lines, jobs):
        item = json.loads(line)
        if "error" in item:
            done.append(result(None, TfjsError(item["error"], file=job.model_json),
                               item["ms"] / 1000))
        else:
            done.append(result([_decode(o) for o in item["outputs"]], None, item["ms"] / 1000))
    return done, crash


def run_layers(model_json: Path, inputs: list[tuple[str, np.ndarray]],
               timeout: float = 300) -> dict:
    """Run a layers-model; the result has ``arrays`` (outputs in model order), ``weights``
    (variable names) and ``weightValues`` (what tfjs decoded)."""
    result = _run("run_layers_model.js", Path(model_json),
                  {"inputs": [_encode(n, a) for n, a in inputs]}, timeout)
    result["arrays"] = [_decode(o) for o in result["outputs"]]
    return result
