"""Run many TF.js graph-models in one Node process (``tests/interop/node/run_graph_batch.js``).

Each job's outcome is either its output arrays or tfjs's own error message. When the Node process
itself dies (out of memory, over time), the job that was running is charged with it and the batch
restarts after it, so one bad model never hides the results of the others.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modelport.runtime.tfjs_node import _decode, _encode, available, node_modules

SCRIPT = Path(__file__).resolve().parents[1] / "interop" / "node" / "run_graph_batch.js"


@dataclass
class Job:
    id: str
    model_json: Path
    inputs: list[tuple[str, np.ndarray]]  # signature tensor name -> array
    outputs: list[str]  # tensor names to fetch
    budget_s: float = 120.0  # time this job may take before the process is killed


@dataclass
class JobResult:
    id: str
    ok: bool
    outputs: list[np.ndarray] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def run_batch(jobs: list[Job]) -> dict[str, JobResult]:
    """Run ``jobs`` in order in as few Node processes as possible; a result for every job."""
    reason = available()
    if reason:
        raise RuntimeError(f"real tfjs cannot run here: {reason}")
    results: dict[str, JobResult] = {}
    pending = list(jobs)
    while pending:
        done, crash = _run_process(pending)
        results.update(done)
        rest = [j for j in pending if j.id not in done]
        if not rest:
            break
        if crash is None:  # pragma: no cover - the script writes a line for every job it ran
            crash = "the batch runner stopped without a result"
        # The first job without a result was running when the process died.
        results[rest[0].id] = JobResult(rest[0].id, False, error=crash)
        pending = rest[1:]
    return results


def _run_process(jobs: list[Job]) -> tuple[dict[str, JobResult], str | None]:
    with tempfile.TemporaryDirectory(prefix="modelport-batch-") as tmp:
        spec, out = Path(tmp, "jobs.json"), Path(tmp, "results.jsonl")
        spec.write_text(json.dumps([
            {"id": j.id, "model": str(j.model_json), "outputs": j.outputs,
             "inputs": [_encode(n, a) for n, a in j.inputs]} for j in jobs]))
        env = dict(os.environ, NODE_PATH=str(node_modules()))
        budget = 10.0 + sum(j.budget_s for j in jobs)  # 10 s: Node start and tfjs import
        crash = None
        try:
            proc = subprocess.run(["node", str(SCRIPT), str(spec), str(out)],
                                  capture_output=True, text=True, timeout=budget, env=env,
                                  check=False)
            if proc.returncode != 0:
                lines = proc.stderr.strip().splitlines()
                crash = f"node exited {proc.returncode}: {lines[-1] if lines else ''}".strip()
        except subprocess.TimeoutExpired:
            crash = f"the Node process ran over its {budget:.0f} s budget"
        done = {}
        if out.exists():
            for line in out.read_text().splitlines():
                item = json.loads(line)
                done[item["id"]] = JobResult(
                    item["id"], item["ok"],
                    [_decode(o) for o in item.get("outputs", [])], item.get("error"),
                    item["ms"] / 1000)
        if crash and len(done) == len(jobs):
            crash = None  # died after the last job (at exit): every result is in
        return done, crash
