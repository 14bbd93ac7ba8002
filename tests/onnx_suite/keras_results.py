"""ONNX's model suites raised to Keras layers (ONNX -> .h5 and ONNX -> TF.js layers-model), run
in the real tools, compared with the outputs ONNX ships; and the pass table.

    .venv/bin/python -m tests.onnx_suite.keras_results [--collections light,pytorch-converted]
        [--out tests/onnx_suite/RESULTS_KERAS.md] [--json results.json]

regenerates ``tests/onnx_suite/RESULTS_KERAS.md`` (the pytest module
``tests/interop/test_onnx_to_keras_suites.py`` runs the same code, asserts it, and prints the
table at the end of the session).

For each case, each target (``h5``: ``modelport.convert(model.onnx, m.h5)``; ``tfjs-layers``:
``modelport.convert(model.onnx, web, to="tfjs-layers")``) ends in one outcome:

- ``pass``: the real tool loaded the file and every output is within tolerance;
- ``unsupported``: modelport refused with ``UnsupportedError``; the op types of the nodes it
  names are recorded (``refused_ops``);
- ``convert-error``: conversion raised anything else;
- ``load-error``: real Keras 3 (``keras.models.load_model(path, compile=False)``) or real
  ``@tensorflow/tfjs`` (``tf.loadLayersModel``, strict) could not load or run the written file;
- ``mismatch``: the tool ran it and an output differs (shape, or values beyond tolerance).

Real Keras runs ``model.predict`` (one XLA program), except for light models whose pre-softmax
logits are ill-conditioned (decided from the data as in tests/interop/test_onnx_roundtrip_light:
``spacing(max |logit|) > rtol``; SqueezeNet's equal logits are 9.5e9): those run ``model(x)``,
layer by layer as tfjs runs them. XLA fuses SqueezeNet's global pooling into the softmax and
recomputes the pooled logits inside it in another order; at 9.5e9 the float32 spacing is 1024,
so ``exp(logit - max)`` overflows and predict returns NaN for a model that is right (its
random-weight twin below matches onnxruntime to 1e-7).

Inputs are fed permuted by the report's ``input_perms`` and expected outputs permuted by its
``output_perms`` (``keras_array = onnx_array.transpose(p)``). Comparison: ``suite.compare``,
the TF.js graph suite's rule (atol 1e-4 + rtol 1e-3, NaN equals NaN, integers exact).

modelport's own parity check of the .h5 conversion (onnxruntime on the source vs its NumPy
Keras reference on the result, ``report.parity.passed``) is recorded as well (the
layers-model is converted with ``validate=False``: real tfjs checks it). onnxruntime has no
kernels for some ops at the opsets of the oldest pytorch-converted files (AveragePool-1,
BatchNormalization-6, Gemm-6, PRelu-6); for those the check runs the source upgraded to opset
17 by onnx's version converter and says so in ``report.parity.source_engine``, which the
table notes as "source upgraded".

``light`` with random weights: ONNX ships those models with every weight 0.02, which cannot see
a permuted channel; ``tests/test_onnx_light_random_weights.randomized`` gives them seeded
He-scaled weights, the pre-softmax logits are exposed as a second graph output, and ONNX ->
.h5 -> real Keras must reproduce onnxruntime on that randomized ONNX (outputs at atol 1e-4 +
rtol 1e-3; logits within 1e-4 of the largest logit, float32 sums in another order).

Real tfjs runs the layers-models with ``tfjs_node.run_layers_batch`` (as few Node processes as
possible, in the background while real Keras works): ``tfjs_node.run_layers`` starts Node
per model and returns every weight's values as JSON, which tfjs cannot stringify for ResNet50
or VGG19 ("Invalid string length").
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np

from modelport.runtime import tfjs_node

from .cases import SuiteCase
from .suite import ATOL, RTOL, TOLERANCES, compare

TARGETS = ("h5", "tfjs-layers")
OUTCOMES = ("pass", "unsupported", "convert-error", "load-error", "mismatch")
LOGIT_TOL = 1e-4  # random-weight logits: of the largest |logit|

# "<Op> node '<name>': why" entries of raise_model's listing (joined by "; "), and the
# "layer '<name>': <Keras class>: why" of a layer tfjs-layers cannot run.
_REFUSED_NODE = re.compile(r"(?:^|: |; )([A-Za-z][A-Za-z0-9_]*) node '")
_REFUSED_LAYER = re.compile(r"(?:^|: )layer '[^']*': ([A-Za-z][A-Za-z0-9_]*): ")
# validation's engine label when onnxruntime had no kernel at the source's own opset
_UPGRADED = re.compile(r"source upgraded from opset (\d+) to (\d+)")


@dataclass
class TargetResult:
    outcome: str
    detail: str = ""
    refused_ops: list[str] = field(default_factory=list)  # sorted, unique
    parity: str | None = None  # modelport's own check: pass | fail | None
    parity_upgraded: str | None = None  # "6 -> 17": parity ran the source upgraded to opset 17
    max_abs_err: float | None = None
    convert_s: float = 0.0
    run_s: float = 0.0
    keras_call: str | None = None  # .h5: "predict", or "eager" for ill-conditioned logits

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"


@dataclass
class KerasCaseResult:
    id: str
    collection: str
    ops: list[str]
    targets: dict[str, TargetResult]

    @property
    def outcome(self) -> str:
        """pass (both targets), refused (both refused, same ops), else the first bad outcome."""
        outs = [t.outcome for t in self.targets.values()]
        if all(o == "pass" for o in outs):
            return "pass"
        if all(o == "unsupported" for o in outs) and len(
                {tuple(t.refused_ops) for t in self.targets.values()}) == 1:
            return "refused"
        return next(o for o in outs if o != "pass")

    @property
    def refused_ops(self) -> list[str]:
        return sorted({op for t in self.targets.values() for op in t.refused_ops})


@dataclass
class RandomResult:
    id: str
    outcome: str  # pass | unsupported | convert-error | load-error | mismatch
    detail: str = ""
    refused_ops: list[str] = field(default_factory=list)
    max_abs_err: float | None = None
    softmax: bool = False  # the output is a Softmax's: its logits are compared too
    logit_err: float | None = None  # max abs logit error / largest |logit|
    seconds: float = 0.0


# --- conversion ---------------------------------------------------------------------------------

@dataclass
class _Written:
    path: Path  # the .h5, or the layers-model's model.json
    input_perms: list
    output_perms: list
    parity: str | None
    upgraded: str | None  # "<old opset> -> <new>" when the parity check upgraded the source
    seconds: float


def refused_ops(message: str) -> list[str]:
    """What an ``UnsupportedError`` of the route names: the ONNX op types of the nodes that
    cannot be raised, or the Keras class of the layer tfjs-layers cannot run."""
    found = set(_REFUSED_NODE.findall(message))
    layer = _REFUSED_LAYER.search(message)
    if layer:
        found.add(layer.group(1))
    return sorted(found)


# ONNX's light models that hold ~100M-element weights as ConstantOfShape: tiny files whose
# weights and check need more than the default budget (vgg19: 1.07 GiB), so they are given
# --max-memory, as a user would be told to.
LARGE_CONSTANT_WEIGHTS = {"light_vgg19": "4G", "light_zfnet512": "4G"}


def convert(src: Path, dst: Path, to: str, *, validate: bool = True) -> _Written | TargetResult:
    """``modelport.convert`` ``src`` to ``dst`` (``h5``: a .h5 file; ``tfjs-layers``: a folder);
    with ``validate``, modelport's own parity check runs and is recorded."""
    import modelport

    started = time.perf_counter()
    kwargs: dict = {"to": "tfjs-layers"} if to == "tfjs-layers" else {}
    if src.stem in LARGE_CONSTANT_WEIGHTS:  # past the default memory budget (issue 19)
        kwargs["max_memory"] = LARGE_CONSTANT_WEIGHTS[src.stem]
    parity = upgraded = None
    try:
        report = modelport.convert(src, dst, validate=validate, **kwargs)
        if validate:
            parity = "pass" if report.parity and report.parity.passed else "fail"
            upgraded = source_upgraded(report.parity.source_engine if report.parity else "")
    except modelport.UnsupportedError as e:
        return TargetResult("unsupported", _detail(e, src), refused_ops(str(e)),
                            convert_s=_since(started))
    except Exception as e:  # noqa: BLE001 - every failure is a recorded outcome
        return TargetResult("convert-error", _detail(f"{type(e).__name__}: {e}", src),
                            convert_s=_since(started))
    return _Written(Path(report.destination), report.keras.input_perms,
                    report.keras.output_perms, parity, upgraded, _since(started))


def source_upgraded(engine_label: str) -> str | None:
    """``"6 -> 17"`` when validation ran the source upgraded by onnx's version converter
    (onnxruntime has no kernel for an op at its own opset), else None."""
    found = _UPGRADED.search(engine_label)
    return f"{found.group(1)} -> {found.group(2)}" if found else None


def _detail(text, src: Path) -> str:
    return " ".join(str(text).replace(f"{src}: ", "").split())[:500]


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def permuted(arrays: list[tuple[str, np.ndarray]], perms: list) -> list[tuple[str, np.ndarray]]:
    """``(name, array.transpose(p))``; integer arrays as int32 (Keras and tfjs inputs)."""
    out = []
    for (name, a), p in zip(arrays, perms or [None] * len(arrays)):
        a = np.ascontiguousarray(a.transpose(p)) if p else a
        out.append((name, a.astype(np.int32) if a.dtype.kind in "iu" else a))
    return out


# --- real Keras 3 -------------------------------------------------------------------------------

def run_keras(path: Path, feeds: list[tuple[str, np.ndarray]], *, eager: bool = False
              ) -> list[np.ndarray]:
    """Load ``path`` in real Keras 3 once and run it on ``feeds`` (model input order):
    ``model.predict``, or with ``eager`` ``model(x)`` layer by layer."""
    import keras

    import modelport.keras_layers  # noqa: F401 - registers modelport>LocalResponseNormalization

    model = keras.models.load_model(path, compile=False)
    try:
        xs = [a for _, a in feeds]
        x = xs[0] if len(xs) == 1 else xs
        # predict compiles the whole model once (JAX); calling it eagerly compiles op by op,
        # 5-10 times slower on these models.
        ys = model(x, training=False) if eager else model.predict(x, verbose=0)
        ys = list(ys.values()) if isinstance(ys, dict) else ys
        ys = ys if isinstance(ys, (list, tuple)) else [ys]
        return [np.asarray(keras.ops.convert_to_numpy(y)) for y in ys]
    finally:
        big = model.count_params() > 10**6
        del model
        if big:  # clear_session collects garbage: 0.2 s a call, worth it for big models only
            keras.backend.clear_session()
            gc.collect()


# --- the suites ---------------------------------------------------------------------------------

def _judge(case_id: str, got: list[np.ndarray], expected) -> tuple[str, str, float | None]:
    outcome, detail, abs_err, _ = compare(case_id, got, expected)
    return outcome, " ".join(detail.split())[:500], abs_err


def run_all(cases: list[SuiteCase], random_cases: list[SuiteCase], out_dir: Path, *,
            keep: bool = False, progress=lambda _msg: None
            ) -> tuple[list[KerasCaseResult], list[RandomResult]]:
    """Every case to a layers-model first, run in real tfjs in a background Node process while
    every case goes to .h5 and runs in real Keras 3 here, then ``random_cases`` with random
    weights; results in case order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    folders = {}
    for case in cases:
        folders[case.id] = out_dir / case.id.replace("/", "__")
        shutil.rmtree(folders[case.id], ignore_errors=True)
        folders[case.id].mkdir(parents=True)
    targets: dict[str, dict[str, TargetResult]] = {case.id: {} for case in cases}
    web_jobs: list[tuple[SuiteCase, _Written, tfjs_node.LayersJob]] = []
    for case in cases:
        progress(f"{case.id}: tfjs-layers")
        web = convert(case.model_path, folders[case.id] / "web", "tfjs-layers", validate=False)
        if isinstance(web, TargetResult):
            targets[case.id]["tfjs-layers"] = web
        else:
            budget = 300.0 if case.collection == "light" else 60.0
            web_jobs.append((case, web, tfjs_node.LayersJob(web.path,
                                                  permuted(case.io()[0], web.input_perms),
                                                  budget)))
    progress(f"running {len(web_jobs)} layers-models in real tfjs (in the background)")
    ran: list = []
    failed: list[BaseException] = []

    def tfjs_batch() -> None:
        try:
            ran.extend(tfjs_node.run_layers_batch([job for _, _, job in web_jobs]))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            failed.append(e)

    worker = threading.Thread(target=tfjs_batch, name="tfjs-layers-batch", daemon=True)
    worker.start()
    try:
        for case in cases:
            progress(f"{case.id}: .h5")
            targets[case.id]["h5"] = _h5_case(case, folders[case.id], keep)
        random = run_random_light(random_cases, out_dir, progress=progress)
    finally:
        worker.join()
    if failed:
        raise failed[0]
    for (case, web, _), ran_job in zip(web_jobs, ran):
        if ran_job.error is not None:
            result = TargetResult("load-error", " ".join(ran_job.error.message.split())[:500],
                                  parity=web.parity, convert_s=web.seconds,
                                  run_s=round(ran_job.seconds, 3))
        else:
            outcome, detail, err = _judge(case.id, ran_job.outputs,
                                          permuted(case.io()[1], web.output_perms))
            result = TargetResult(outcome, detail, parity=web.parity, max_abs_err=err,
                                  convert_s=web.seconds, run_s=round(ran_job.seconds, 3))
        targets[case.id]["tfjs-layers"] = result
    if not keep:
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)
    results = [KerasCaseResult(c.id, c.collection, c.ops,
                               {t: targets[c.id][t] for t in TARGETS}) for c in cases]
    return results, random


def ill_conditioned(case: SuiteCase) -> bool:
    """A light model whose pre-softmax logits are so large that float32 rounding alone breaks
    the output tolerance (the rule of tests/interop/test_onnx_roundtrip_light.py)."""
    from tests.interop.test_onnx_roundtrip_light import _logits_if_ill_conditioned

    return case.collection == "light" and \
        _logits_if_ill_conditioned(case, dict(case.io()[0])) is not None


def _h5_case(case: SuiteCase, folder: Path, keep: bool) -> TargetResult:
    inputs, expected = case.io()
    h5 = convert(case.model_path, folder / "m.h5", "h5")
    if isinstance(h5, TargetResult):
        return h5
    started = time.perf_counter()
    eager = ill_conditioned(case)
    try:
        got = run_keras(h5.path, permuted(inputs, h5.input_perms), eager=eager)
    except Exception as e:  # noqa: BLE001 - real Keras refused the file: an outcome
        return TargetResult("load-error", _detail(f"{type(e).__name__}: {e}", case.model_path),
                            parity=h5.parity, parity_upgraded=h5.upgraded,
                            convert_s=h5.seconds, run_s=_since(started))
    finally:
        if not keep:
            h5.path.unlink(missing_ok=True)
    outcome, detail, err = _judge(case.id, got, permuted(expected, h5.output_perms))
    return TargetResult(outcome, detail, parity=h5.parity, parity_upgraded=h5.upgraded,
                        max_abs_err=err, convert_s=h5.seconds, run_s=_since(started),
                        keras_call="eager" if eager else "predict")


def run_random_light(cases: list[SuiteCase], out_dir: Path, *, seed: int = 0,
                     progress=lambda _msg: None) -> list[RandomResult]:
    """The light models with seeded random weights: ONNX -> .h5 -> real Keras 3 against
    onnxruntime on the randomized ONNX, outputs and pre-softmax logits."""
    results = []
    for case in cases:
        progress(f"{case.id}: random weights")
        folder = out_dir / ("random__" + case.name)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        try:
            results.append(_random_one(case, folder, seed))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return results


def _random_one(case: SuiteCase, folder: Path, seed: int) -> RandomResult:
    import onnx

    from tests.interop.test_onnx_roundtrip_light import _run, _softmax_producing
    from tests.test_onnx_light_random_weights import randomized

    started = time.perf_counter()
    source = randomized(case, seed=seed)
    inputs, _ = case.io()
    softmax = _softmax_producing(source, source.graph.output[0].name)
    if softmax is not None:  # the logits as a second graph output, shape from ONNX's inference
        inferred = onnx.shape_inference.infer_shapes(source).graph.value_info
        logits = next(v for v in inferred if v.name == softmax.input[0])
        source.graph.output.append(logits)
    src = folder / "random.onnx"
    onnx.save(source, src)
    h5 = convert(src, folder / "m.h5", "h5", validate=False)
    if isinstance(h5, TargetResult):
        return RandomResult(case.id, h5.outcome, h5.detail, h5.refused_ops,
                            softmax=softmax is not None, seconds=_since(started))
    want = _run(source, dict(inputs), [])
    if not all(np.all(np.isfinite(w)) for w in want):
        return RandomResult(case.id, "mismatch", "the randomized source overflows in "
                            "onnxruntime", seconds=_since(started))
    names = [o.name for o in source.graph.output]
    try:
        got = run_keras(h5.path, permuted(inputs, h5.input_perms))
    except Exception as e:  # noqa: BLE001 - real Keras refused the file: an outcome
        return RandomResult(case.id, "load-error", _detail(f"{type(e).__name__}: {e}", src),
                            seconds=_since(started))
    expected = permuted(list(zip(names, want)), h5.output_perms)
    n_out = len(names) - (softmax is not None)
    outcome, detail, err = _judge(case.id, got[:n_out], expected[:n_out])
    logit_err = None
    if softmax is not None and len(got) != len(names):
        outcome, detail = "mismatch", f"{len(got)} outputs, expected {len(names)}"
    elif softmax is not None:
        z, z_want = (np.asarray(a, np.float64).reshape(-1) for a in (got[-1], expected[-1][1]))
        scale = float(np.max(np.abs(z_want)))
        if z.shape != z_want.shape:
            outcome, detail = "mismatch", f"logits: {z.size} values, expected {z_want.size}"
        elif scale <= 1e-3:
            outcome, detail = "mismatch", "degenerate logits: the test would prove nothing"
        else:
            logit_err = float(np.max(np.abs(z - z_want))) / scale
            if logit_err > LOGIT_TOL and outcome == "pass":
                outcome, detail = "mismatch", (f"pre-softmax logits differ by {logit_err:.3g} "
                                               f"of the largest ({scale:.3g})")
    return RandomResult(case.id, outcome, detail, max_abs_err=err, softmax=softmax is not None,
                        logit_err=logit_err, seconds=_since(started))


# --- tables -------------------------------------------------------------------------------------

def _converted(t: TargetResult) -> bool:
    return t.outcome not in ("unsupported", "convert-error")


def by_collection(results: list[KerasCaseResult]) -> dict[str, dict[str, int]]:
    """Per collection: cases; converted to .h5 / to a layers-model; refused by both (no Keras
    layer); layers-model refused alone (no tfjs-layers layer); passing in Keras / tfjs."""
    table: dict[str, dict[str, int]] = {}
    for r in results:
        row = table.setdefault(r.collection, dict.fromkeys(
            ("cases", "h5_converted", "web_converted", "refused", "web_refused", "keras_pass",
             "tfjs_pass"), 0))
        h5, web = r.targets["h5"], r.targets["tfjs-layers"]
        row["cases"] += 1
        row["h5_converted"] += _converted(h5)
        row["web_converted"] += _converted(web)
        row["refused"] += r.outcome == "refused"
        row["web_refused"] += web.outcome == "unsupported" and h5.outcome != "unsupported"
        row["keras_pass"] += h5.passed
        row["tfjs_pass"] += web.passed
    return table


def to_json(results: list[KerasCaseResult], random: list[RandomResult]) -> dict:
    return {"tolerance": {"atol": ATOL, "rtol": RTOL, "random_logits": LOGIT_TOL,
                          "per_case": {k: {"atol": a, "rtol": r, "reason": why}
                                       for k, (a, r, why) in TOLERANCES.items()}},
            "by_collection": by_collection(results),
            "by_model": [{**asdict(r), "outcome": r.outcome} for r in results],
            "light_random_weights": [asdict(r) for r in random]}


def _err(x: float | None) -> str:
    return "" if x is None else f"{x:.2g}"


def _cell(t: TargetResult) -> str:
    cell = {"pass": "✓", "unsupported": "refused"}.get(t.outcome, f"✗ {t.outcome}")
    if t.outcome == "unsupported" and t.refused_ops:
        cell += f" ({', '.join(t.refused_ops)})"
    return cell + (" (eager)" if t.keras_call == "eager" else "")


def _parity(t: TargetResult) -> str:
    if t.parity and t.parity_upgraded:
        return f"{t.parity} (source upgraded {t.parity_upgraded})"
    return t.parity or ""


def summary_lines(results: list[KerasCaseResult], random: list[RandomResult]) -> list[str]:
    """The pass table for a terminal: by collection, then what is refused or failing."""
    lines = [("ONNX model suites -> Keras layers (.h5 in real Keras 3, layers-model in real "
              f"tfjs; atol {ATOL:g}, rtol {RTOL:g})")]
    for name, row in by_collection(results).items():
        lines.append(f"  {name:18} {row['cases']:3} cases, {row['refused']} refused (no Keras "
                     f"layer): real Keras {row['keras_pass']}/{row['cases'] - row['refused']}"
                     f" pass; real tfjs {row['tfjs_pass']}/"
                     f"{row['cases'] - row['refused'] - row['web_refused']} pass "
                     f"({row['web_refused']} more refused for tfjs-layers)")
    if random:
        ok = sum(r.outcome == "pass" for r in random)
        refused = sum(r.outcome == "unsupported" for r in random)
        lines.append(f"  light, random weights (.h5 in real Keras vs onnxruntime): {ok} pass, "
                     f"{refused} refused, of {len(random)}")
    for r in results:
        if r.outcome == "refused":
            lines.append(f"    {r.id}: refused ({', '.join(r.refused_ops)})")
        elif r.targets["tfjs-layers"].outcome == "unsupported":
            lines.append(f"    {r.id}: layers-model refused "
                         f"({', '.join(r.targets['tfjs-layers'].refused_ops)})")
    for r in results:
        for target, t in r.targets.items():
            if t.outcome not in ("pass", "unsupported") or t.parity == "fail":
                lines.append(f"    {r.id} [{target}]: {t.outcome}, parity {t.parity}: "
                             f"{t.detail[:200]}")
    for r in random:
        if r.outcome not in ("pass", "unsupported"):
            lines.append(f"    {r.id} [random weights]: {r.outcome}: {r.detail[:200]}")
    return lines


INTRO = (
    "Generated by `python -m tests.onnx_suite.keras_results`; do not edit by hand (the tests "
    "in `tests/interop/test_onnx_to_keras_suites.py` run the same code and assert it). Each "
    "case of `onnx/backend/test/data/{light,pytorch-converted}` is converted with "
    "`modelport.convert(model.onnx, m.h5)` and `modelport.convert(model.onnx, web, "
    "to=\"tfjs-layers\")`. The `.h5` is loaded with `keras.models.load_model(path, "
    "compile=False)` (Keras 3, JAX backend) and run with `model.predict` (`model(x)`, marked "
    "eager, for light models whose equal logits are too large for float32 to order: XLA's "
    "fused softmax turns them into NaN); the layers-model is loaded with "
    "`tf.loadLayersModel(..., {strict: true})` (`@tensorflow/tfjs`, CPU backend, Node). Both "
    "run on the case's inputs permuted by the report's `input_perms` and are compared with the "
    f"outputs ONNX ships permuted by `output_perms`, atol {ATOL:g}, rtol {RTOL:g}.\n\n"
    "Refused: modelport raises `UnsupportedError` naming the ONNX op of each node no Keras "
    "layer computes (with those settings), or, for the layers-model alone, the Keras layer "
    "tfjs-layers cannot run; the tests assert every refusal by name. `parity` is modelport's "
    "own check of the `.h5` (onnxruntime on the source vs its NumPy Keras reference); "
    "\"source upgraded 6 -> 17\": onnxruntime has no kernel for an op at the source's old "
    "opset, so the check ran the source upgraded by onnx's version converter.")


def markdown(results: list[KerasCaseResult], random: list[RandomResult], seconds: float) -> str:
    out = ["# ONNX model suites → Keras layers → real Keras 3 and real tfjs", "",
           INTRO, "", f"Total wall time {seconds:.0f} s.", "",
           "## By collection", "",
           ("| collection | cases | refused (no Keras layer) | converted to .h5 | real Keras "
            "pass | layers-model refused alone (no tfjs-layers layer) | converted to "
            "layers-model | real tfjs pass |"),
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, row in by_collection(results).items():
        out.append(f"| {name} | {row['cases']} | {row['refused']} | {row['h5_converted']} | "
                   f"{row['keras_pass']}/{row['cases'] - row['refused']} | {row['web_refused']}"
                   f" | {row['web_converted']} | {row['tfjs_pass']}/"
                   f"{row['cases'] - row['refused'] - row['web_refused']} |")
    if random:
        out += ["", ("## light with seeded random weights (ONNX → .h5 → real Keras 3, vs "
                     "onnxruntime)"), "",
                ("He-scaled weights instead of the uniform 0.02 (which cannot see a permuted "
                 "channel); the pre-softmax logits are a second output, compared within "
                 f"{LOGIT_TOL:g} of the largest logit."), "",
                "| model | outcome | max abs err | logit err (of largest) | s | detail |",
                "| --- | --- | ---: | ---: | ---: | --- |"]
        for r in random:
            what = f"refused ({', '.join(r.refused_ops)})" if r.outcome == "unsupported" \
                else r.outcome
            detail = "" if r.outcome == "unsupported" else r.detail.replace("|", "/")[:200]
            out.append(f"| {r.id} | {what} | {_err(r.max_abs_err)} | {_err(r.logit_err)} | "
                       f"{r.seconds:.1f} | {detail} |")
    out += ["", "## By model", "",
            ("| case | converted | refused (ONNX op / Keras layer) | real Keras (.h5) | real "
             "tfjs (layers-model) | max abs err Keras / tfjs | parity (.h5) | detail |"),
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        h5, web = r.targets["h5"], r.targets["tfjs-layers"]
        converted = ", ".join(name for name, t in ((".h5", h5), ("layers-model", web))
                              if _converted(t)) or "no"
        detail = "" if r.outcome == "refused" else next(
            (t.detail for t in r.targets.values() if t.outcome != "pass"), "")
        out.append(f"| {r.id} | {converted} | {', '.join(r.refused_ops)} | {_cell(h5)} | "
                   f"{_cell(web)} | {_err(h5.max_abs_err)} / {_err(web.max_abs_err)} | "
                   f"{_parity(h5)} | {detail.replace('|', '/')[:300]} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from .cases import discover

    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", default="light,pytorch-converted")
    parser.add_argument("--out", default=str(here / "RESULTS_KERAS.md"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    collections = [c for c in args.collections.split(",") if c]
    cases = [c for name in collections for c in discover(name)]
    say = lambda m: print(m, file=sys.stderr, flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="modelport-keras-suite-") as tmp:
        results, random = run_all(cases, discover("light") if "light" in collections else [],
                                  Path(tmp), progress=say)
    seconds = time.perf_counter() - started
    Path(args.out).write_text(markdown(results, random, seconds))
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(results, random), indent=1))
    for line in summary_lines(results, random):
        print(line)
    print(f"{seconds:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
