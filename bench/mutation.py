"""The parity check's power, measured by mutation (issue 17, point 8): the long run.

    python bench/mutation.py                               # every Keras fixture, every route
    python bench/mutation.py --routes onnx --cap 20 --models 'keras3/*'
    python bench/mutation.py --layers --suites light       # + fixtures/layers, ONNX's light suite

For each Keras fixture (fixtures/keras2, keras3, applications; ``--layers`` adds the one-layer
cases of fixtures/layers) and each route (``onnx``: Keras -> ONNX; ``tfjs-graph``: that ONNX ->
graph-model; ``tfjs-layers``: Keras -> layers-model; ``h5``: the ONNX raised to ``.h5``), the
faithful conversion is made unchecked, then checked by ``modelport.validate`` (its verdict is
printed: a faithful conversion must pass), then mutated (tests/mutants.py: at most ``--cap``
mutants per kind). A mutant is effective when an output moves by more than 1e-5 of its RMS on
the inputs the real framework recorded with the fixture; each effective mutant must fail
``modelport.validate``. ``--suites`` adds ONNX's own suites (their stored inputs), mutated after
conversion to a graph-model. Prints the score (caught / effective) per kind, per route and per
model, the escaped mutants, and the time taken; ``--json`` writes every outcome.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import mutants  # noqa: E402

FIXTURES = ROOT / "fixtures"


@dataclass
class Model:
    """A fixture: its id, the file converted, and its recorded inputs."""

    id: str
    path: Path
    npz: Path


@dataclass
class Verdict:
    """The check's verdict on one faithful conversion, and its distance from the recording."""

    model: str
    route: str
    passed: bool | None  # None: the conversion itself was refused
    note: str = ""
    recorded: float | None = None  # faithful result vs the real framework's outputs, / RMS


def keras_models(whole: bool, layers: bool) -> list[Model]:
    """The Keras fixtures with recorded inputs (an .h5 where there is one, else the .keras):
    the models of fixtures/keras2, keras3 and applications, and the cases of fixtures/layers."""
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    out = []
    for gen, models in sorted(manifest["keras"].items() if whole else []):
        for name, entry in sorted(models.items()):
            files = entry["files"]
            file = next((f for f in files if f.endswith(".h5")), None) or next(
                (f for f in files if f.endswith(".keras")), None)
            if file:
                out.append(Model(f"{gen}/{name}", FIXTURES / gen / file,
                                 FIXTURES / gen / f"{name}.npz"))
    for path in sorted((FIXTURES / "applications").glob("*.keras") if whole else []):
        if path.with_suffix(".npz").exists():
            out.append(Model(f"applications/{path.stem}", path, path.with_suffix(".npz")))
    if layers:
        cases = json.loads((FIXTURES / "layers" / "cases.json").read_text())
        for case_id, entry in sorted(cases.items()):
            out.append(Model(f"layers/{case_id}", FIXTURES / "layers" / entry["file"],
                             FIXTURES / "layers" / f"{case_id}.npz"))
    return out


def recorded_outputs(npz: Path) -> list[np.ndarray]:
    with np.load(npz) as data:
        return [data[k] for k in data.files if k.startswith("output:")]


def measure_keras(model: Model, routes: list[str], args: argparse.Namespace, work: Path
                  ) -> tuple[list[Verdict], list[mutants.Outcome]]:
    import modelport

    verdicts, outcomes = [], []
    inputs = mutants.recorded_inputs(model.npz)
    expected = recorded_outputs(model.npz)
    folder = work / model.id.replace("/", "_")
    for route in routes:
        try:
            source, result = mutants.faithful(route, model.path, folder)
        except modelport.ModelportError as e:
            verdicts.append(Verdict(model.id, route, None, f"not converted: {e}"[:160]))
            continue
        verdicts.append(_verdict(model.id, route, source, result, inputs, expected))
        outcomes += _measure(verdicts[-1], source, result, inputs, folder / f"mutants-{route}",
                             args)
    return verdicts, outcomes


def _measure(verdict: Verdict, source: Path, result: Path, inputs: list[np.ndarray],
             work: Path, args: argparse.Namespace) -> list[mutants.Outcome]:
    """The mutants of one faithful result; where the result itself does not run on the
    recorded inputs, none (said in the verdict's note)."""
    try:
        return mutants.measure(verdict.model, verdict.route, source, result, inputs, work,
                               cap=args.cap, kinds=tuple(args.kinds))
    except Exception as e:  # noqa: BLE001 - one case must not end the long run
        verdict.note = (verdict.note + f" mutants not measured: {type(e).__name__}: {e}")[:200]
        return []


def _verdict(model: str, route: str, source: Path, result: Path, inputs: list[np.ndarray],
             expected: list[np.ndarray] | None) -> Verdict:
    import modelport

    recorded = None
    try:
        got = mutants.run(result, inputs)
        if expected is not None and [g.shape for g in got] == [e.shape for e in expected]:
            recorded = mutants.movement(expected, got)
    except Exception:  # noqa: BLE001 - the distance is informative only
        pass
    try:
        report = modelport.validate(source, result)
    except modelport.ModelportError as e:
        return Verdict(model, route, False, f"check raised {type(e).__name__}: {e}"[:160],
                       recorded)
    note = "" if report.passed else "; ".join(
        f"{o.name}: max abs {o.max_abs:.2g}, cosine {o.cosine:.4f}" for o in report.outputs
        if not o.passed)[:160]
    return Verdict(model, route, report.passed, note, recorded)


def measure_suites(collections: list[str], args: argparse.Namespace, work: Path
                   ) -> tuple[list[Verdict], list[mutants.Outcome]]:
    """ONNX's suites: each case converted to a graph-model and mutated there."""
    import modelport
    from tests.onnx_suite import cases

    verdicts, outcomes = [], []
    for case in cases.all_cases(tuple(collections)):
        if args.models and not any(fnmatch.fnmatch(case.id, p) for p in args.models):
            continue
        folder = work / case.id.replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        graph = folder / "faithful-graph"
        try:
            modelport.convert(case.model_path, graph, to="tfjs-graph", validate=False)
            inputs = [a for _, a in case.io()[0]]
        except Exception as e:  # noqa: BLE001 - the suites hold cases modelport refuses
            verdicts.append(Verdict(case.id, "tfjs-graph", None, f"not converted: {e}"[:160]))
            continue
        verdicts.append(_verdict(case.id, "tfjs-graph", case.model_path, graph / "model.json",
                                 inputs, [a for _, a in case.io()[1]]))
        outcomes += _measure(verdicts[-1], case.model_path, graph / "model.json", inputs,
                             folder / "mutants", args)
    return verdicts, outcomes


def print_report(verdicts: list[Verdict], outcomes: list[mutants.Outcome], seconds: float
                 ) -> None:
    print("\nFaithful conversions (the check's verdict; distance from the real framework's "
          "outputs / RMS):")
    for v in verdicts:
        state = "refused" if v.passed is None else "PASS" if v.passed else "FAIL"
        distance = "" if v.recorded is None else f"{v.recorded:.1e}"
        print(f"  {v.model:<42} {v.route:<12} {state:<7} {distance:>8}  {v.note}")
    print("\nMutation score per kind:")
    print(mutants.table(outcomes))
    print("\nPer route:")
    print(mutants.table(outcomes, key=lambda o: o.route, title="route"))
    print("\nPer model and route:")
    print(mutants.table(outcomes, key=lambda o: f"{o.model} {o.route}", title="model route"))
    still = [o for o in outcomes if o.moved is not None and o.moved == 0]
    print(f"\nMutants that do not move the output at all: {len(still)} of {len(outcomes)}")
    escaped = [o for o in outcomes if o.effective and not o.caught]
    print(f"Escaped (effective, yet the check passed): {len(escaped)}")
    for o in escaped:
        print(f"  {o.model} {o.route} {o.mutant.label} moved {o.moved:.1e} of RMS"
              + (f" [{o.error}]" if o.error else ""))
    failed = [v for v in verdicts if v.passed is False]
    print(f"Faithful conversions the check fails: {len(failed)} of "
          f"{sum(v.passed is not None for v in verdicts)}")
    print(f"Time: {seconds:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routes", nargs="+", default=list(mutants.ROUTES),
                    choices=mutants.ROUTES)
    ap.add_argument("--kinds", nargs="+", default=list(mutants.KINDS), choices=mutants.KINDS)
    ap.add_argument("--cap", type=int, default=8, help="mutants per kind, model and route")
    ap.add_argument("--models", nargs="*", default=[],
                    help="fnmatch patterns over model ids (keras3/cnn_bn_pool, layers/Dense...)")
    ap.add_argument("--layers", action="store_true", help="add the fixtures/layers cases")
    ap.add_argument("--no-keras", action="store_true", help="skip the Keras models (keras2, keras3, applications)")
    ap.add_argument("--suites", nargs="*", choices=["light", "pytorch-converted",
                                                    "pytorch-operator"],
                    help="add ONNX's suites (-> tfjs-graph)")
    ap.add_argument("--json", type=Path, help="write every outcome and verdict here")
    args = ap.parse_args()

    start = time.perf_counter()
    verdicts: list[Verdict] = []
    outcomes: list[mutants.Outcome] = []
    with tempfile.TemporaryDirectory(prefix="modelport-mutation-") as tmp:
        work = Path(tmp)
        for model in keras_models(not args.no_keras, args.layers):
            if args.models and not any(fnmatch.fnmatch(model.id, p) for p in args.models):
                continue
            v, o = measure_keras(model, args.routes, args, work)
            verdicts += v
            outcomes += o
            print(f"{model.id}: {sum(x.effective for x in o)} effective, "
                  f"{sum(bool(x.caught) for x in o)} caught", flush=True)
        if args.suites:
            v, o = measure_suites(args.suites, args, work)
            verdicts += v
            outcomes += o
    print_report(verdicts, outcomes, time.perf_counter() - start)
    if args.json:
        args.json.write_text(json.dumps({
            "verdicts": [vars(v) for v in verdicts],
            "outcomes": [{"model": o.model, "route": o.route, "kind": o.mutant.kind,
                          "target": o.mutant.target, "detail": o.mutant.detail,
                          "moved": o.moved, "effective": o.effective, "caught": o.caught,
                          "error": o.error} for o in outcomes],
            "scores": mutants.scores(outcomes)}, indent=1))


if __name__ == "__main__":
    main()
