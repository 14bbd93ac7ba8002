"""Run a TF.js layers-model in real @tensorflow/tfjs under Node (tests only)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

NODE_DIR = Path(__file__).resolve().parent / "node"
RUNNER = NODE_DIR / "run_layers_model.js"


class TfjsError(RuntimeError):
    """tfjs refused to load or run the model; the message is tfjs's own."""


def available() -> str | None:
    """None when real tfjs can run here, else the reason it cannot."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "@tensorflow" / "tfjs").is_dir():
        return "@tensorflow/tfjs is not installed (run `npm ci` in tests/interop/node)"
    return None


def run_layers_model(model_json: Path, inputs: list[tuple[str, np.ndarray]],
                     timeout: float = 120) -> dict:
    """Load ``model_json`` in tfjs, predict on ``inputs``; outputs in model order."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = {"inputs": [{"name": n, "dtype": "int32" if a.dtype.kind in "iu" else "float32",
                            "shape": list(a.shape), "data": a.reshape(-1).tolist()}
                           for n, a in inputs]}
        src, out = Path(tmp, "in.json"), Path(tmp, "out.json")
        src.write_text(json.dumps(spec))
        env = dict(os.environ, NODE_PATH=str(NODE_DIR / "node_modules"))
        proc = subprocess.run(["node", str(RUNNER), str(model_json), str(src), str(out)],
                              capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=NODE_DIR)
        if proc.returncode != 0:
            raise TfjsError(proc.stderr.strip() or f"node exited {proc.returncode}")
        result = json.loads(out.read_text())
    result["arrays"] = [np.asarray(o["data"], dtype=np.float32 if o["dtype"] == "float32"
                                   else np.int32).reshape(o["shape"]) for o in result["outputs"]]
    return result
