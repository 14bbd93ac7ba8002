"""The batched real-tfjs runner: every job gets its own result, a failing job does not hide
the others (they go on in a fresh Node process), and results line up with their jobs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from modelport.runtime import tfjs_node

DENSE = Path(__file__).resolve().parents[2] / "fixtures" / "tfjs_graph" / "dense"


@pytest.fixture()
def dense_job():
    with np.load(DENSE / "io.npz") as data:
        x, want = data["input:x"], data["output:gate"]
    return tfjs_node.GraphJob(DENSE / "model.json", [("x:0", x)], ["Identity:0"]), want


def test_failures_are_charged_to_their_job_and_the_rest_still_run(dense_job, tmp_path):
    job, want = dense_job
    broken = tmp_path / "broken"
    shutil.copytree(DENSE, broken)
    (broken / "group1-shard1of1.bin").unlink()  # tfjs cannot load it
    bad = tfjs_node.GraphJob(broken / "model.json", job.inputs, job.outputs)
    results = tfjs_node.run_graph_batch([job, bad, job, bad, job])
    assert [r.error is None for r in results] == [True, False, True, False, True]
    for r in results[::2]:
        np.testing.assert_allclose(r.outputs[0], want, atol=1e-5, rtol=1e-5)
    assert all(Path(r.error.file) == bad.model_json for r in results[1::2])
    with pytest.raises(tfjs_node.TfjsError):
        tfjs_node.run_graph(bad.model_json, bad.inputs, bad.outputs)
