"""Convert each suite case to a TF.js graph-model, run it in real tfjs, compare, tabulate.

Every case ends in exactly one outcome:

- ``pass``: every output has the expected shape and is within tolerance;
- ``unsupported``: ``modelport.convert`` refused with ``UnsupportedError`` (its message names
  the op or the value);
- ``convert-error``: conversion raised anything else;
- ``tfjs-error``: real tfjs could not load or run the written graph-model (tfjs's message);
- ``mismatch``: tfjs ran it, and an output differs (shape, or values beyond tolerance).

Tolerance: float outputs are compared with ``|got - want| <= atol + rtol * |want|`` (NaN equals
NaN), atol 1e-4 and rtol 1e-3 by default, as for every float32 comparison in this repository.
Exceptions are data in ``TOLERANCES`` with the reason. Integer and bool outputs must be equal
(int64 expected values are compared with the int32 that TF.js returns).
"""

from __future__ import annotations

import json
import shutil
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from modelport.runtime import tfjs_node

from .cases import SuiteCase

ATOL, RTOL = 1e-4, 1e-3

# case id -> (atol, rtol, why the default does not apply). Empty: every case is held to the
# default (the light models' outputs are softmax probabilities of order 1e-3 or a pooled value
# of order 0.5, so even their large pre-softmax activations need no looser bound at the output).
TOLERANCES: dict[str, tuple[float, float, str]] = {}

OUTCOMES = ("pass", "unsupported", "convert-error", "tfjs-error", "mismatch")


@dataclass
class CaseResult:
    id: str
    collection: str
    outcome: str
    detail: str = ""
    ops: list[str] = field(default_factory=list)
    convert_s: float = 0.0
    tfjs_s: float = 0.0
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    tolerance: tuple[float, float] = (ATOL, RTOL)

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"


@dataclass
class Converted:
    case: SuiteCase
    model_json: Path
    feeds: list[tuple[str, np.ndarray]]
    fetch: list[str]
    seconds: float


def convert_case(case: SuiteCase, out_dir: Path) -> Converted | CaseResult:
    """``modelport.convert`` the case's ONNX file to a TF.js graph-model under ``out_dir``."""
    import modelport

    dst = out_dir / case.id.replace("/", "__")
    if dst.exists():
        shutil.rmtree(dst)
    started = time.perf_counter()
    try:
        report = modelport.convert(case.model_path, dst, to="tfjs-graph", validate=False)
    except modelport.UnsupportedError as e:
        return _failed(case, "unsupported", str(e), started)
    except Exception as e:  # noqa: BLE001 - every failure is a recorded outcome of the case
        return _failed(case, "convert-error", f"{type(e).__name__}: {e}", started)
    seconds = time.perf_counter() - started
    model_json = Path(report.destination)
    signature = json.loads(model_json.read_text()).get("signature", {})
    inputs, expected = case.io()
    try:
        feeds = [(name, array) for (name, array) in
                 zip(_tensor_names(signature.get("inputs", {}), [n for n, _ in inputs], "input"),
                     [a for _, a in inputs])]
        fetch = _tensor_names(signature.get("outputs", {}), [n for n, _ in expected], "output")
    except ValueError as e:
        return _failed(case, "convert-error", str(e), started)
    for name, array in inputs:
        # The wire to tfjs is int32 (TF.js has no int64): wider values would wrap silently.
        info = np.iinfo(np.int32)
        if array.dtype.kind in "iu" and array.size and (array.max() > info.max
                                                        or array.min() < info.min):
            return _failed(case, "unsupported", f"input {name!r} holds int64 values outside "
                           "int32, and TF.js has no int64 tensors", started)
    return Converted(case, model_json, feeds, fetch, seconds)


def _tensor_names(entries: dict, onnx_names: list[str], what: str) -> list[str]:
    """The graph-model tensor for each ONNX graph input/output, by the signature's keys.

    The converter keys the signature by the ONNX value names; a signature that does not name
    every ONNX input and output is a conversion defect, reported as such.
    """
    names = []
    for onnx_name in onnx_names:
        entry = entries.get(onnx_name)
        if entry is None:
            raise ValueError(f"the graph-model signature has no {what} {onnx_name!r} "
                             f"(it has {sorted(entries)})")
        names.append(entry["name"])
    return names


def _failed(case: SuiteCase, outcome: str, detail: str, started: float) -> CaseResult:
    # Errors start with the file they concern; every case's file is model.onnx, so drop it.
    detail = str(detail).replace(f"{case.model_path}: ", "")
    return CaseResult(case.id, case.collection, outcome, _one_line(detail), case.ops,
                      convert_s=round(time.perf_counter() - started, 3))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:400]


def compare(case_id: str, got: list[np.ndarray], expected: list[tuple[str, np.ndarray]]
            ) -> tuple[str, str, float | None, float | None]:
    """(outcome, detail, max abs error, max relative error) over all outputs."""
    atol, rtol, _ = TOLERANCES.get(case_id, (ATOL, RTOL, ""))
    worst_abs = worst_rel = 0.0
    problems = []
    if len(got) != len(expected):
        return "mismatch", f"{len(got)} outputs, expected {len(expected)}", None, None
    for actual, (name, want) in zip(got, expected):
        actual = np.asarray(actual)
        if actual.shape != want.shape:
            problems.append(f"{name}: shape {list(actual.shape)}, expected {list(want.shape)}")
            continue
        if want.dtype.kind in "iub":
            if not np.array_equal(actual.astype(np.int64), want.astype(np.int64)):
                bad = int(np.sum(actual.astype(np.int64) != want.astype(np.int64)))
                problems.append(f"{name}: {bad} of {want.size} integer values differ")
            continue
        a, w = actual.astype(np.float64), want.astype(np.float64)
        same_nan = np.isnan(a) == np.isnan(w)
        finite = ~np.isnan(a) & ~np.isnan(w)
        err = np.where(finite, np.abs(a - w), 0.0)
        err = np.where(np.isinf(a) & np.isinf(w) & (a == w), 0.0, err)
        rel = err / np.maximum(np.abs(w), 1e-30)
        if err.size:
            worst_abs = max(worst_abs, float(np.max(err)))
            worst_rel = max(worst_rel, float(np.max(np.where(np.abs(w) > atol, rel, 0.0))))
        over = (err > atol + rtol * np.abs(w)) | ~same_nan
        if np.any(over):
            i = np.unravel_index(int(np.argmax(np.where(over, err + 1, 0))), want.shape)
            problems.append(f"{name}: {int(np.sum(over))} of {want.size} values beyond "
                            f"atol {atol:g} + rtol {rtol:g}; worst at {list(map(int, i))}: "
                            f"got {actual[i]!r}, expected {want[i]!r}; max abs err "
                            f"{float(np.max(err)):.3g}")
    if problems:
        return "mismatch", "; ".join(problems), worst_abs, worst_rel
    return "pass", "", worst_abs, worst_rel


def run_cases(cases: list[SuiteCase], out_dir: Path, *, keep: bool = False,
              progress=lambda _msg: None) -> list[CaseResult]:
    """Convert every case, run the converted ones in one tfjs batch, compare; in case order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, CaseResult] = {}
    converted: list[Converted] = []
    for case in cases:
        progress(f"converting {case.id}")
        item = convert_case(case, out_dir)
        if isinstance(item, CaseResult):
            results[case.id] = item
        else:
            converted.append(item)
    progress(f"running {len(converted)} graph-models in real tfjs")
    ran = tfjs_node.run_graph_batch([tfjs_node.GraphJob(
        c.model_json, c.feeds, c.fetch, budget_s=300.0 if c.case.collection == "light" else 60.0)
        for c in converted])
    for c, r in zip(converted, ran):
        base = {"ops": c.case.ops, "convert_s": round(c.seconds, 3), "tfjs_s": round(r.seconds, 3)}
        if r.error is not None:
            results[c.case.id] = CaseResult(c.case.id, c.case.collection, "tfjs-error",
                                            _one_line(r.error.message), **base)
            continue
        outcome, detail, abs_err, rel_err = compare(c.case.id, r.outputs, c.case.io()[1])
        atol, rtol, _ = TOLERANCES.get(c.case.id, (ATOL, RTOL, ""))
        results[c.case.id] = CaseResult(c.case.id, c.case.collection, outcome,
                                        _one_line(detail), max_abs_err=abs_err,
                                        max_rel_err=rel_err, tolerance=(atol, rtol), **base)
        if not keep:
            shutil.rmtree(c.model_json.parent, ignore_errors=True)
    return [results[c.id] for c in cases]


# --- tables -------------------------------------------------------------------------------------

def by_collection(results: list[CaseResult]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for r in results:
        row = table.setdefault(r.collection, {"cases": 0, **dict.fromkeys(OUTCOMES, 0)})
        row["cases"] += 1
        row[r.outcome] += 1
    return table


def by_op(results: list[CaseResult]) -> dict[str, dict]:
    """For each ONNX op: how many cases use it, how many of those pass, which fail."""
    table: dict[str, dict] = defaultdict(lambda: {"cases": 0, "passed": 0, "failing": []})
    for r in results:
        for op in r.ops:
            row = table[op]
            row["cases"] += 1
            if r.passed:
                row["passed"] += 1
            else:
                row["failing"].append(r.id)
    return dict(sorted(table.items()))


def to_json(results: list[CaseResult]) -> dict:
    return {"tolerance": {"atol": ATOL, "rtol": RTOL,
                          "per_case": {k: {"atol": a, "rtol": r, "reason": why}
                                       for k, (a, r, why) in TOLERANCES.items()}},
            "by_collection": by_collection(results), "by_op": by_op(results),
            "by_model": [asdict(r) for r in results]}


def summary_lines(results: list[CaseResult]) -> list[str]:
    """A plain-text pass table (by collection, by op, failures by model) for a terminal."""
    lines = [f"ONNX model suites in real tfjs (atol {ATOL:g}, rtol {RTOL:g})"]
    for name, row in by_collection(results).items():
        extra = ", ".join(f"{o} {row[o]}" for o in OUTCOMES[1:] if row[o])
        lines.append(f"  {name:18} {row['pass']:3}/{row['cases']:<3} pass "
                     f"({100 * row['pass'] / row['cases']:.0f} %){'; ' + extra if extra else ''}")
    lines.append("  by op (cases passing / cases using the op):")
    ops = by_op(results)
    width = max((len(op) for op in ops), default=10)
    for op, row in ops.items():
        flag = "" if row["passed"] == row["cases"] else "   <-"
        lines.append(f"    {op:{width}} {row['passed']:3}/{row['cases']:<3}{flag}")
    failing = [r for r in results if not r.passed]
    if failing:
        lines.append("  not passing, by model:")
        for r in failing:
            lines.append(f"    {r.id}: {r.outcome}: {r.detail[:200]}")
    return lines
