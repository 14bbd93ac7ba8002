"""Shared test fixtures: the model cases made by the real frameworks, and the real tools.

Interop tests need Node + @tensorflow/tfjs and Keras 3. Where they are missing the tests skip,
except under CI (``CI=true``) or ``MODELPORT_REQUIRE_INTEROP=1``, where a missing tool fails the
run: a required check that did not run is not a pass.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
REQUIRE_TOOLS = os.environ.get("CI", "").lower() == "true" or \
    os.environ.get("MODELPORT_REQUIRE_INTEROP") == "1"


@dataclass
class Case:
    """A model file made by a real framework, with seeded inputs and that framework's outputs."""

    id: str
    path: Path
    name: str
    generation: str  # keras2 | keras3 | tfjs
    kind: str  # h5 | keras (zip or folder) | tfjs
    inputs: list[tuple[str, np.ndarray]] = field(repr=False)
    outputs: list[tuple[str, np.ndarray]] = field(repr=False)


def _npz_io(npz_path: Path):
    with np.load(npz_path) as data:
        ins = [(k.split(":", 1)[1], data[k]) for k in data.files if k.startswith("input:")]
        outs = [(k.split(":", 1)[1], data[k]) for k in data.files if k.startswith("output:")]
    return ins, outs


def keras_cases() -> list[Case]:
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    cases = []
    for gen, models in sorted(manifest["keras"].items()):
        for name, entry in sorted(models.items()):
            ins, outs = _npz_io(FIXTURES / gen / f"{name}.npz")
            for file in entry["files"]:
                kind = "h5" if file.endswith(".h5") else "keras" if (
                    file.endswith(".keras") or file.endswith("_unzipped")) else None
                if kind:
                    cases.append(Case(f"{gen}/{file}", FIXTURES / gen / file, name, gen, kind,
                                      ins, outs))
    return cases


def tfjs_cases() -> list[Case]:
    cases = []
    for model_json in sorted((FIXTURES / "tfjs").glob("*/model.json")):
        io = json.loads((model_json.parent / "io.json").read_text())

        def arrays(items):
            return [(t["name"], np.asarray(t["data"], dtype=t["dtype"]).reshape(t["shape"]))
                    for t in items]
        name = model_json.parent.name
        cases.append(Case(f"tfjs/{name}", model_json, name, "tfjs", "tfjs",
                          arrays(io["inputs"]), arrays(io["outputs"])))
    return cases


def layer_cases() -> list[Case]:
    """One tiny model per layer class and variant (fixtures/layers, made by real Keras)."""
    index = FIXTURES / "layers" / "cases.json"
    if not index.exists():
        return []
    cases = []
    for case_id, entry in sorted(json.loads(index.read_text()).items()):
        path = FIXTURES / "layers" / entry["file"]
        ins, outs = _npz_io(path.with_name(case_id + ".npz"))
        case = Case(f"layers/{case_id}", path, case_id, entry.get("generation", "keras3"),
                    "h5" if path.suffix == ".h5" else "keras", ins, outs)
        case.layer_class = entry["class"]
        case.entry = entry
        cases.append(case)
    return cases


ALL_CASES = keras_cases() + tfjs_cases()
LAYER_CASES = layer_cases()


def case_params(cases=None):
    return [pytest.param(c, id=c.id) for c in (ALL_CASES if cases is None else cases)]


def require_tool(reason: str) -> None:
    if REQUIRE_TOOLS:
        pytest.fail(f"required interop tool unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tfjs():
    from tests.interop import tfjs_runner

    reason = tfjs_runner.available()
    if reason:
        require_tool(reason)
    return tfjs_runner


@pytest.fixture(scope="session")
def keras3():
    try:
        import keras
    except ImportError as e:  # pragma: no cover - depends on the environment
        require_tool(f"Keras 3 is not installed ({e})")
    if not keras.__version__.startswith("3."):
        require_tool(f"Keras {keras.__version__} is installed, not Keras 3")
    return keras


def assert_close(actual: np.ndarray, expected: np.ndarray, *, atol=1e-4, rtol=1e-3, what=""):
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=rtol, err_msg=what)


def pytest_terminal_summary(terminalreporter):
    """Publish measured numbers (quantization error in real tfjs) with the test run."""
    import sys

    module = sys.modules.get("tests.interop.test_tfjs_layers")
    if module is not None and module.QUANT_RESULTS:
        for line in module.pytest_terminal_summary_lines():
            terminalreporter.write_line(line)


# --- markers --------------------------------------------------------------------------------
# ``large`` tests build multi-GB models: run them with ``-m large`` (or any -m expression that
# names them) or MODELPORT_LARGE=1. Otherwise they are *deselected*, not skipped: CI treats a
# skip as a failure, and a test nobody asked for is not a skip.

def pytest_collection_modifyitems(config, items):
    wanted = os.environ.get("MODELPORT_LARGE") == "1" or "large" in (config.option.markexpr or "")
    if wanted:
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("large") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
