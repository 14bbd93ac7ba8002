"""Real ``@tensorflow/tfjs`` under Node.js: load and run TF.js models the way a browser does.

Needs ``node`` and the npm package ``@tensorflow/tfjs`` (4.x). modelport looks for its
``node_modules`` in ``$MODELPORT_TFJS_NODE_MODULES``, then in a source checkout's
``tests/interop/node/node_modules``, then wherever ``node`` resolves it (``$NODE_PATH``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ...errors import ModelportError

HERE = Path(__file__).resolve().parent
CHECKOUT_MODULES = HERE.parents[2] / "tests" / "interop" / "node" / "node_modules"


class TfjsError(ModelportError):
    """Real tfjs refused to load or run the model; the message is tfjs's own."""

    exit_code = 6
    kind = "tfjs"


def node_modules() -> Path | None:
    for candidate in (os.environ.get("MODELPORT_TFJS_NODE_MODULES"), CHECKOUT_MODULES,
                      *os.environ.get("NODE_PATH", "").split(os.pathsep)):
        if candidate and (Path(candidate) / "@tensorflow" / "tfjs").is_dir():
            return Path(candidate)
    return None


def available() -> str | None:
    """None when real tfjs can run here, else why not."""
    if shutil.which("node") is None:
        return "node is not installed"
    if node_modules() is None:
        return ("@tensorflow/tfjs is not installed (npm install @tensorflow/tfjs, and set "
                "MODELPORT_TFJS_NODE_MODULES to its node_modules folder)")
    return None


def _encode(name: str, array: np.ndarray) -> dict:
    array = np.asarray(array)
    if array.dtype.kind in "iu":
        dtype, data = "int32", array.astype(np.int64).reshape(-1).tolist()
    elif array.dtype == np.bool_:
        dtype, data = "bool", array.reshape(-1).tolist()
    elif array.dtype.kind in "OSU":
        dtype, data = "string", [str(v) for v in array.reshape(-1)]
    else:
        dtype, data = "float32", array.astype(np.float32).reshape(-1).tolist()
    return {"name": name, "dtype": dtype, "shape": list(array.shape), "data": data}


def _decode(item: dict) -> np.ndarray:
    dtype = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}.get(item["dtype"], object)
    return np.asarray(item["data"], dtype=dtype).reshape(item["shape"])


def _run(script: str, model_json: Path, spec: dict, timeout: float) -> dict:
    reason = available()
    if reason:
        raise ModelportError(f"real tfjs cannot run here: {reason}")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp, "in.json"), Path(tmp, "out.json")
        src.write_text(json.dumps(spec))
        env = dict(os.environ, NODE_PATH=str(node_modules()))
        proc = subprocess.run(["node", str(HERE / script), str(model_json), str(src), str(out)],
                              capture_output=True, text=True, timeout=timeout, env=env)
        if proc.returncode != 0:
            raise TfjsError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip()
                            else f"node exited {proc.returncode}", file=model_json)
        return json.loads(out.read_text())


def run_graph(model_json: Path, inputs: list[tuple[str, np.ndarray]], outputs: list[str],
              timeout: float = 300) -> list[np.ndarray]:
    """Run a graph-model: ``inputs`` by signature tensor name, ``outputs`` tensor names."""
    result = _run("run_graph_model.js", Path(model_json),
                  {"inputs": [_encode(n, a) for n, a in inputs], "outputs": outputs}, timeout)
    return [_decode(o) for o in result["outputs"]]


def run_layers(model_json: Path, inputs: list[tuple[str, np.ndarray]],
               timeout: float = 300) -> dict:
    """Run a layers-model; the result has ``arrays`` (outputs in model order), ``weights``
    (variable names) and ``weightValues`` (what tfjs decoded)."""
    result = _run("run_layers_model.js", Path(model_json),
                  {"inputs": [_encode(n, a) for n, a in inputs]}, timeout)
    result["arrays"] = [_decode(o) for o in result["outputs"]]
    return result
