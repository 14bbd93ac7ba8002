"""Numerical parity: tolerances as data, per-output statistics, and a report people and
pipelines can read.

An element passes when ``|actual - expected| <= atol + rtol * |expected|`` (numpy's allclose).
NaN and Inf are explicit: by default a NaN must sit where the source has a NaN and an infinity
must equal the source's (``nan_policy="match"``); ``"fail"`` fails any NaN on either side.
The report says, per output, the tolerance that would have passed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import UnsupportedError

DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-3
NAN_POLICIES = ("match", "fail")


@dataclass(frozen=True)
class Tolerance:
    """One output passes when ``|actual - expected| <= atol + rtol * |expected|``."""

    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL


@dataclass
class Tolerances:
    """A default tolerance, per-output ones, and how NaN and Inf count (see the module)."""

    default: Tolerance = field(default_factory=Tolerance)
    per_output: dict[str, Tolerance] = field(default_factory=dict)
    nan_policy: str = "match"

    def __post_init__(self) -> None:
        if self.nan_policy not in NAN_POLICIES:
            raise UnsupportedError(f"nan policy {self.nan_policy!r}; choose one of "
                                   f"{', '.join(NAN_POLICIES)}")

    def for_output(self, name: str) -> Tolerance:
        """The tolerance for output ``name``."""
        return self.per_output.get(name, self.default)


@dataclass
class OutputReport:
    """One output compared: its statistics, the worst element, and the verdict."""

    name: str
    shape: list[int]
    dtype: str
    atol: float
    rtol: float
    passed: bool
    max_abs: float
    max_rel: float
    mean_abs: float
    p99_abs: float
    cosine: float
    mismatched: int
    total: int
    worst_index: list[int]
    worst_expected: float
    worst_actual: float
    nan_mismatches: int = 0
    inf_mismatches: int = 0
    atol_needed: float = 0.0  # the smallest atol (at this rtol) that would have passed
    note: str = ""


@dataclass
class ParityReport:
    """Two models run on the same inputs, every output compared (``passed``: all within
    tolerance). ``inputs`` describes the inputs (seed and batch, or the file, and the shapes);
    ``first_divergence`` names the first layer whose output leaves tolerance, when asked and
    found."""

    source: str
    target: str
    source_engine: str
    target_engine: str
    inputs: dict[str, Any]
    outputs: list[OutputReport]
    passed: bool
    first_divergence: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (what ``--json`` prints)."""
        return asdict(self)

    def to_json(self) -> str:
        """``to_dict()`` as a JSON string."""
        return json.dumps(self.to_dict(), indent=2)


def compare_output(name: str, expected: np.ndarray, actual: np.ndarray, tol: Tolerance,
                   nan_policy: str = "match") -> OutputReport:
    """Compare one output with its expected values (same shape, else it fails with a note)."""
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    if expected.shape != actual.shape:
        return OutputReport(name, list(actual.shape), str(actual.dtype), tol.atol, tol.rtol, False,
                            float("inf"), float("inf"), float("inf"), float("inf"), 0.0,
                            int(expected.size), int(expected.size), [], 0.0, 0.0,
                            note=f"shape {list(actual.shape)} != expected {list(expected.shape)}")
    e = expected.astype(np.float64)
    a = actual.astype(np.float64)
    e_nan, a_nan = np.isnan(e), np.isnan(a)
    if nan_policy == "match":
        nan_bad = e_nan != a_nan
    else:
        nan_bad = e_nan | a_nan
    e_inf, a_inf = np.isinf(e), np.isinf(a)
    inf_bad = (e_inf | a_inf) & ~(e_inf & a_inf & (e == a))
    finite = ~(e_nan | a_nan | e_inf | a_inf)
    diff = np.where(finite, np.abs(a - e), 0.0)
    allowed = tol.atol + tol.rtol * np.abs(e)
    bad = (finite & (diff > allowed)) | nan_bad | inf_bad
    total = int(e.size)
    if total == 0:
        return OutputReport(name, list(a.shape), str(actual.dtype), tol.atol, tol.rtol, True,
                            0.0, 0.0, 0.0, 0.0, 1.0, 0, 0, [], 0.0, 0.0)
    rel = np.where(finite & (np.abs(e) > 0), diff / np.maximum(np.abs(e), 1e-30), 0.0)
    excess = np.where(finite, diff - tol.rtol * np.abs(e), 0.0)
    worst = np.unravel_index(int(np.argmax(np.where(bad, diff + 1e300 * bad, diff))), e.shape)
    ef, af = np.where(finite, e, 0.0).ravel(), np.where(finite, a, 0.0).ravel()
    denom = float(np.linalg.norm(ef) * np.linalg.norm(af))
    both_zero = not ef.any() and not af.any()
    cosine = float(ef @ af / denom) if denom > 0 else (1.0 if both_zero else 0.0)
    return OutputReport(
        name=name, shape=list(a.shape), dtype=str(actual.dtype), atol=tol.atol, rtol=tol.rtol,
        passed=not bool(bad.any()),
        max_abs=float(diff.max()), max_rel=float(rel.max()), mean_abs=float(diff.mean()),
        p99_abs=float(np.percentile(diff, 99)), cosine=cosine, mismatched=int(bad.sum()),
        total=total, worst_index=[int(i) for i in worst], worst_expected=float(e[worst]),
        worst_actual=float(a[worst]), nan_mismatches=int(nan_bad.sum()),
        inf_mismatches=int(inf_bad.sum()), atol_needed=float(max(excess.max(), 0.0)))


def compare_outputs(names: list[str], expected: list[np.ndarray], actual: list[np.ndarray],
                    tolerances: Tolerances) -> list[OutputReport]:
    """Compare every output, each at its own tolerance."""
    if len(expected) != len(actual):
        raise UnsupportedError(f"the models have {len(expected)} and {len(actual)} outputs")
    return [compare_output(n, e, a, tolerances.for_output(n), tolerances.nan_policy)
            for n, e, a in zip(names, expected, actual)]


def format_table(report: ParityReport) -> list[str]:
    """The human-readable report."""
    lines = [f"parity: {report.source_engine} on the source vs {report.target_engine} on the "
             f"result, {report.inputs.get('description', '')}".rstrip(", ")]
    header = (f"  {'output':24} {'shape':16} {'max abs':>10} {'max rel':>10} {'mean abs':>10} "
              f"{'p99 abs':>10} {'cosine':>10} {'bad':>8}  tolerance")
    lines.append(header)
    for o in report.outputs:
        shape = "x".join(str(d) for d in o.shape)
        status = "ok" if o.passed else "FAIL"
        lines.append(f"  {o.name[:24]:24} {shape[:16]:16} {o.max_abs:10.3g} {o.max_rel:10.3g} "
                     f"{o.mean_abs:10.3g} {o.p99_abs:10.3g} {o.cosine:10.7f} "
                     f"{o.mismatched:8d}  atol {o.atol:g} rtol {o.rtol:g} {status}")
        if not o.passed:
            detail = o.note or (f"worst at {tuple(o.worst_index)}: expected "
                                f"{o.worst_expected:.6g}, got {o.worst_actual:.6g}; atol "
                                f"{o.atol_needed:.3g} would pass")
            if o.nan_mismatches or o.inf_mismatches:
                detail += f"; {o.nan_mismatches} NaN and {o.inf_mismatches} Inf mismatches"
            lines.append(f"    {detail}")
    if report.first_divergence:
        d = report.first_divergence
        lines.append(f"  first diverging layer: {d['layer']} ({d['class']}): max abs "
                     f"{d['max_abs']:.3g} against the reference")
    lines.extend(f"  note: {note}" for note in report.notes)
    lines.append("  result: " + ("PASS" if report.passed else "MISMATCH"))
    return lines
