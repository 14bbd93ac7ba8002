"""The batched real-tfjs runners (graph-models and layers-models): every job gets its own
result, a failing job does not hide the others (they go on in a fresh Node process), and
results line up with their jobs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import modelport
from modelport.runtime import tfjs_node

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
DENSE = FIXTURES / "tfjs_graph" / "dense"


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


@pytest.fixture()
def layers_jobs(tmp_path, tfjs):
    """Two layers-models written by modelport (one input and one output; three and two), with
    their fixture inputs and the outputs Keras computed."""
    jobs, wants = [], []
    for name in ("cnn_bn_pool", "multi_io"):
        report = modelport.convert(FIXTURES / "keras3" / f"{name}.keras", tmp_path / name,
                                   to="tfjs-layers")
        with np.load(FIXTURES / "keras3" / f"{name}.npz") as data:
            inputs = [(k.split(":", 1)[1], data[k]) for k in data if k.startswith("input:")]
            wants.append([data[k] for k in data if k.startswith("output:")])
        jobs.append(tfjs_node.LayersJob(Path(report.destination), inputs))
    return jobs, wants


def test_layers_batch_matches_one_model_runs(layers_jobs):
    jobs, wants = layers_jobs
    results = tfjs_node.run_layers_batch(jobs)
    assert [type(r) for r in results] == [tfjs_node.LayersResult] * 2
    for job, result, want in zip(jobs, results, wants):
        assert result.error is None, result.error
        alone = tfjs_node.run_layers(job.model_json, job.inputs)["arrays"]
        assert len(result.outputs) == len(alone) == len(want)
        for got, one, expected in zip(result.outputs, alone, want):
            np.testing.assert_array_equal(got, one)
            np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-4)


def test_layers_batch_charges_a_broken_model_to_its_job(layers_jobs, tmp_path):
    (good, other), _ = layers_jobs
    broken = tmp_path / "broken"
    shutil.copytree(good.model_json.parent, broken)
    for shard in broken.glob("*.bin"):
        shard.unlink()  # model.json names shards that are not there
    bad = tfjs_node.LayersJob(broken / "model.json", good.inputs)
    results = tfjs_node.run_layers_batch([bad, other, bad, good])
    assert [r.error is None for r in results] == [False, True, False, True]
    assert all(Path(r.error.file) == bad.model_json and r.outputs is None
               for r in results[::2])
    assert all(isinstance(r.error, tfjs_node.TfjsError) for r in results[::2])
    alone = tfjs_node.run_layers(other.model_json, other.inputs)["arrays"]
    for got, one in zip(results[1].outputs, alone):
        np.testing.assert_array_equal(got, one)
    with pytest.raises(tfjs_node.TfjsError):
        tfjs_node.run_layers(bad.model_json, bad.inputs)
