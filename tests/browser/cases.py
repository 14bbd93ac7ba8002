"""Every TF.js fixture route run in headless Chromium: the models, their inputs, their NumPy
reference outputs, and one browser launch for all of them on every backend.

Models: the TF.js fixtures as they are (fixtures/tfjs layers-models made by real tfjs,
fixtures/tfjs_graph graph-models, fixtures/browser: one whose WebGL and WASM kernels differ) and one output per route that writes TF.js (Keras 2/3 .h5 and
.keras, ONNX, a TF.js layers-model, a converter-made graph-model, to tfjs-layers and
tfjs-graph), written by modelport. Inputs: each fixture's own (io.json / io.npz / the source's
.npz). Reference: modelport's NumPy executor of the model's semantics (Keras for layers-models,
TF ops for graph-models). Shared by tests/interop/test_browser.py and make_results.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import modelport
from modelport.formats.loading import load
from modelport.models import LayersModel
from modelport.runtime import engines, tfjs_browser

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
BACKENDS = ("cpu", "wasm", "webgl", "mobile")
# src, target format, the .npz whose input: arrays feed it
ROUTES = {
    "keras3_h5->layers": (FIXTURES / "keras3" / "cnn_bn_pool.h5", "tfjs-layers"),
    "keras3_h5->graph": (FIXTURES / "keras3" / "cnn_bn_pool.h5", "tfjs-graph"),
    "keras3_keras->graph": (FIXTURES / "keras3" / "cnn_bn_pool.keras", "tfjs-graph"),
    "keras2_h5->layers": (FIXTURES / "keras2" / "cnn_bn_pool.h5", "tfjs-layers"),
    "onnx->graph": (FIXTURES / "tf2onnx" / "cnn_bn_gap.onnx", "tfjs-graph"),
    "tfjs_layers->graph": (FIXTURES / "tfjs" / "tfjs_functional" / "model.json", "tfjs-graph"),
    "tfjs_graph->graph": (FIXTURES / "tfjs_converter" / "graph" / "multi_output_h5" /
                          "model.json", "tfjs-graph"),
}


@dataclass
class Model:
    """One TF.js model to run: where it is, its kind, its inputs, the reference's outputs."""

    name: str
    model_json: Path
    kind: str  # layers | graph
    inputs: list[tuple[str, np.ndarray]]
    output_names: list[str]
    tensors: list[str]  # graph-models: the tensors to fetch
    reference: list[np.ndarray]


def _arrays_of(io: Path) -> dict[str, np.ndarray]:
    if io.suffix == ".json":
        data = json.loads(io.read_text())
        return {f"input:{t['name']}": np.asarray(t["data"], dtype=t["dtype"]).reshape(t["shape"])
                for t in data["inputs"]}
    with np.load(io) as data:
        return {k: data[k] for k in data.files}


def _model(name: str, model_json: Path, io: Path) -> Model:
    """The model at ``model_json`` with the inputs of ``io`` and its NumPy reference outputs."""
    loaded = load(model_json)
    files = {k.split(":", 1)[1]: v for k, v in _arrays_of(io).items() if k.startswith("input:")}
    if isinstance(loaded, LayersModel):
        engine = engines.KerasReference(loaded)
        specs = engine.inputs()
        arrays = engines.arrays_for(files, specs, io)
        return Model(name, model_json, "layers", [(s.name, a) for s, a in zip(specs, arrays)],
                     engine.output_names(), [], list(engine.run(arrays)))
    graph = engines.TfjsGraphEngine(loaded, path=model_json, engine="reference")
    specs = graph.inputs()
    bare = {k.split(":")[0]: v for k, v in files.items()}
    arrays = engines.arrays_for(bare if len(bare) == len(files) else files,
                                [engines.InputSpec(s.name.split(":")[0], s.shape, s.dtype)
                                 for s in specs], io)
    return Model(name, model_json, "graph", [(s.name, a) for s, a in zip(specs, arrays)],
                 graph.output_names(), [o.tensor for o in loaded.outputs],
                 list(graph.run(arrays)))


def models(workdir: Path) -> list[Model]:
    """Every model the browser check runs (routes written into ``workdir``)."""
    out = []
    for d in sorted((FIXTURES / "tfjs").glob("*/model.json")):
        out.append(_model(f"fixture tfjs/{d.parent.name}", d, d.parent / "io.json"))
    for d in sorted((FIXTURES / "tfjs_graph").glob("*/model.json")):
        out.append(_model(f"fixture tfjs_graph/{d.parent.name}", d, d.parent / "io.npz"))
    for d in sorted((FIXTURES / "browser").glob("*/model.json")):
        out.append(_model(f"fixture browser/{d.parent.name}", d, d.parent / "io.npz"))
    for name, (src, to) in ROUTES.items():
        dst = workdir / name.replace(">", "").replace("-", "_")
        modelport.convert(src, dst, to=to, validate=False, force=True)
        io = src.parent / "io.npz" if src.name == "model.json" else src.with_suffix(".npz")
        if not io.exists():
            io = src.parent / "io.json"
        out.append(_model(f"route {name}", dst / "model.json", io))
    return out


def run(found: list[Model], backends: tuple[str, ...] = BACKENDS
        ) -> list[dict[str, tfjs_browser.Result]]:
    """All models on all backends in one browser launch."""
    return tfjs_browser.run([tfjs_browser.Job(m.model_json, m.kind, m.inputs, m.tensors)
                             for m in found], backends)


def max_error(model: Model, result: tfjs_browser.Result) -> float:
    """The largest ``|browser - reference|`` over every numeric output (NaN where they sit
    alike counts 0)."""
    assert result.outputs is not None
    worst = 0.0
    for got, want in zip(result.outputs, model.reference):
        d = engines.deviation([np.asarray(got)], [np.asarray(want)])[0]
        if np.asarray(got).shape != np.asarray(want).shape:
            return float("inf")
        worst = max(worst, float(d.max()) if d.size else 0.0)
    return worst


def within(model: Model, result: tfjs_browser.Result, atol: float, rtol: float) -> bool:
    """Every output within ``atol + rtol * |reference|`` of the reference."""
    assert result.outputs is not None
    for got, want in zip(result.outputs, model.reference):
        got, want = np.asarray(got), np.asarray(want)
        if got.shape != want.shape:
            return False
        if want.dtype.kind not in "fiub":
            continue
        d = engines.deviation([got], [want])[0]
        if (d > atol + rtol * np.abs(want.astype(np.float64))).any():
            return False
    return True
