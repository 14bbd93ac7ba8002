"""Numerical parity: tolerances from the noise, per-output statistics, and a report people and
pipelines can read.

**The default rule judges each output against float32 rounding, not a habit.** The check runs a
NumPy reference of one side twice on the same inputs, as the model computes (float32) and in
float64 with random rounding (``runtime.precision``); their difference is what rounding alone
does to that output on those inputs (its *noise*). A faithful conversion's error is a small
multiple of it (over the project's fixtures, suites and fuzzed models: p99 under 7x, the worst
11.7x, a fuzz-mutated graph, measured with half the random rounding used now, which makes the
noise about 1.4x larger: bench/noise_calibration.py); a wrong weight, sign or padding moves
the output by orders of magnitude more. So, per output and per probe (one batch of one input
distribution):

    an element fails when  |actual - expected|  >  max(NOISE_FACTOR * noise,
                                                       SCALE_FLOOR * scale,
                                                       ELEMENT_ULPS * 2**-23 * |expected|)

where ``noise`` is the probe's largest rounding deviation and ``scale`` the root mean square of
its expected values. The floors keep exact computations (no rounding at all) from demanding bit
equality, relative to the output's scale so that an error is never hidden by elements near
zero; and they allow an element the few units in its last place by which a float32 kernel's
own exp, tanh or division may miss (onnxruntime's softmax misses by up to ~10), which a
reference that computes those in float64 does not show as noise. Where rounding alone moves an
output by more than ILL_CONDITIONED of its scale, the output is **ill-conditioned** on those
inputs (huge equal logits into a softmax, say): the report says so and the check cannot judge
it more finely than rounding does.

**A tolerance given by the user** (``--atol``/``--rtol``, per output) replaces the rule for the
outputs it names with numpy's allclose, ``|actual - expected| <= atol + rtol * |expected|``
element by element; the noise is still measured and reported.

NaN and Inf are explicit under both rules: by default a NaN must sit where the source has a NaN
and an infinity must equal the source's (``nan_policy="match"``); ``"fail"`` fails any NaN on
either side. The report says, per output, the noise, the tolerance, the margin (tolerance over
error: above 1 passes) and the absolute tolerance that would have passed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from types import EllipsisType
from typing import Any

import numpy as np

from ..errors import UnsupportedError
from .error_histogram import error_histogram

DEFAULT_ATOL = 1e-4  # an explicit tolerance's missing half (--atol without --rtol, or back)
DEFAULT_RTOL = 1e-3
NOISE_FACTOR = 12.0  # a faithful conversion's error in units of the measured rounding noise
QUANTIZATION_FACTOR = 4.0  # a quantized target's error in units of its sampled quantization error
SCALE_FLOOR = 1e-6  # of the output's RMS: the least tolerance, for exact computations
ELEMENT_ULPS = 16  # float32 units in the last place a kernel's transcendental may miss by
ABS_FLOOR = 1e-30  # an output that is zero everywhere must stay zero
ILL_CONDITIONED = 1e-3  # rounding noise past this fraction of the output's scale
NAN_POLICIES = ("match", "fail")
NOISE_RULE = "noise"
FIXED_RULE = "fixed"


@dataclass(frozen=True)
class Tolerance:
    """A tolerance the user gave: numpy's allclose, ``|actual - expected| <= atol + rtol *
    |expected|`` (a missing half takes DEFAULT_ATOL / DEFAULT_RTOL)."""

    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL


@dataclass
class Tolerances:
    """The noise rule by default (see the module), the user's tolerances where given
    (``default`` for every output, ``per_output`` by name), and how NaN and Inf count."""

    default: Tolerance | None = None
    per_output: dict[str, Tolerance] = field(default_factory=dict)
    nan_policy: str = "match"

    def __post_init__(self) -> None:
        if self.nan_policy not in NAN_POLICIES:
            raise UnsupportedError(f"nan policy {self.nan_policy!r}; choose one of "
                                   f"{', '.join(NAN_POLICIES)}")

    def for_output(self, name: str) -> Tolerance | None:
        """The user's tolerance for output ``name``; None: the noise rule judges it."""
        return self.per_output.get(name, self.default)


@dataclass
class OutputReport:
    """One output compared: its statistics, the worst element, the noise and the verdict.

    ``rule``: ``noise`` (the default) or ``fixed`` (the user's atol/rtol). ``noise``: the
    largest deviation float32 rounding alone causes (see the module); ``scale``: the expected
    values' root mean square; ``tolerance``: the absolute error allowed where the margin is
    least (under the fixed rule, ``atol``); ``margin``: tolerance over error where it is least
    (above 1 passes; None when there is no error at all); ``error_to_scale``: ``max_abs`` over
    ``scale``. ``atol``/``rtol``: the rule as numpy's allclose would state it (the noise rule's
    tolerance, rtol 0)."""

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
    rule: str = NOISE_RULE
    noise: float = 0.0
    noise_source: str = ""
    quantization: float = 0.0  # the quantized weights' sampled effect (see check.quantized)
    scale: float = 0.0
    tolerance: float = 0.0
    margin: float | None = None
    error_to_scale: float = 0.0
    ill_conditioned: bool = False
    # counts of |a - e| per half-decade (check.error_histogram), for the HTML report's plots
    error_histogram: dict[str, Any] | None = None


@dataclass
class Intermediates:
    """A sample of the source's layer outputs looked for among the result's own values, on
    every check where modelport knows how to find them (a Keras source against an ONNX file:
    ``check.sampled_layers``). ``layers``: the sampled layers, in call order; ``held``: how
    many of them the file holds; ``absent``: sampled layers the file does not hold while a
    layer just after them is held (fused into it by a converter, not a fault);
    ``first_not_held``: where a divergence starts (the first layer, walking back from a sampled
    one, whose output the file does not hold while it holds its inputs), which fails the check;
    ``skipped``: why nothing was compared. ``raised``: the roles turned round, for a Keras file
    raised from an ONNX source: the file's layers looked for among the source's values."""

    compared: int = 0
    held: int = 0
    layers: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    first_not_held: dict[str, Any] | None = None
    skipped: str | None = None
    raised: bool = False

    @property
    def passed(self) -> bool:
        """No divergence among the file's own values."""
        return self.first_not_held is None


@dataclass
class ParityReport:
    """Two models run on the same inputs, every output compared (``passed``: all within
    tolerance). ``inputs`` describes the inputs (seed, batch and probes, or the file, and the
    shapes); ``first_divergence`` names the first layer whose output leaves tolerance, when
    asked and found; ``noise``: how the rounding noise was measured; ``intermediates``: the
    sampled layers compared in the result's own values (``passed`` also needs them held)."""

    source: str
    target: str
    source_engine: str
    target_engine: str
    inputs: dict[str, Any]
    outputs: list[OutputReport]
    passed: bool
    first_divergence: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    noise: str = ""
    intermediates: Intermediates | None = None
    # --per-layer: each source layer's error along the graph (``intermediates.Walk.layers``)
    per_layer: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (what ``--json`` prints): an infinite or NaN statistic
        is None, so that every JSON parser reads it."""
        return _finite(asdict(self))

    def to_json(self) -> str:
        """``to_dict()`` as a JSON string."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def compare_output(name: str, expected: np.ndarray, actual: np.ndarray, tol: Tolerance | None,
                   nan_policy: str = "match", *, noise: np.ndarray | None = None,
                   groups: list[slice] | None = None, noise_source: str = "",
                   quantization: np.ndarray | None = None) -> OutputReport:
    """Compare one output with its expected values (same shape, else it fails with a note).

    ``tol``: the user's tolerance, or None for the noise rule, which judges each of ``groups``
    (slices of the first axis: one per probe; default the whole output) against ``noise`` (the
    rounding deviation per element, in the same layout; None: none measured, the floor only).
    """
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    rule = NOISE_RULE if tol is None else FIXED_RULE
    if expected.shape != actual.shape:
        return OutputReport(name, list(actual.shape), str(actual.dtype),
                            tol.atol if tol else 0.0, tol.rtol if tol else 0.0, False,
                            float("inf"), float("inf"), float("inf"), float("inf"), 0.0,
                            int(expected.size), int(expected.size), [], 0.0, 0.0,
                            note=f"shape {list(actual.shape)} != expected {list(expected.shape)}",
                            rule=rule)
    e = expected.astype(np.float64)
    a = actual.astype(np.float64)
    total = int(e.size)
    if total == 0:
        return OutputReport(name, list(a.shape), str(actual.dtype), tol.atol if tol else 0.0,
                            tol.rtol if tol else 0.0, True, 0.0, 0.0, 0.0, 0.0, 1.0, 0, 0, [],
                            0.0, 0.0, rule=rule)
    e_nan, a_nan = np.isnan(e), np.isnan(a)
    nan_bad = (e_nan != a_nan) if nan_policy == "match" else (e_nan | a_nan)
    e_inf, a_inf = np.isinf(e), np.isinf(a)
    inf_bad = (e_inf | a_inf) & ~(e_inf & a_inf & (e == a))
    finite = ~(e_nan | a_nan | e_inf | a_inf)
    diff = np.where(finite, np.abs(a - e), 0.0)
    # (a 0-d output, a While's trip count, is one group: ``...`` indexes it)
    whole: list[slice | EllipsisType] = list(groups or [slice(None)]) if diff.ndim else [...]
    judged = _fixed(diff, e, finite, tol, noise) if tol is not None else \
        _by_noise(diff, e, finite, (noise, quantization), whole)
    bad = judged.bad | nan_bad | inf_bad
    rel = np.where(finite & (np.abs(e) > 0), diff / np.maximum(np.abs(e), 1e-30), 0.0)
    worst = np.unravel_index(int(np.argmax(np.where(bad, diff + 1e300 * bad, diff))), e.shape)
    ef, af = np.where(finite, e, 0.0).ravel(), np.where(finite, a, 0.0).ravel()
    denom = float(np.linalg.norm(ef) * np.linalg.norm(af))
    both_zero = not ef.any() and not af.any()
    cosine = float(ef @ af / denom) if denom > 0 else (1.0 if both_zero else 0.0)
    scale = _rms(e, finite)
    max_abs = float(diff.max())
    return OutputReport(
        name=name, shape=list(a.shape), dtype=str(actual.dtype),
        atol=tol.atol if tol else judged.tolerance, rtol=tol.rtol if tol else 0.0,
        passed=not bool(bad.any()),
        max_abs=max_abs, max_rel=float(rel.max()), mean_abs=float(diff.mean()),
        p99_abs=float(np.percentile(diff, 99)), cosine=cosine, mismatched=int(bad.sum()),
        total=total, worst_index=[int(i) for i in worst], worst_expected=float(e[worst]),
        worst_actual=float(a[worst]), nan_mismatches=int(nan_bad.sum()),
        inf_mismatches=int(inf_bad.sum()), atol_needed=judged.atol_needed, rule=rule,
        noise=judged.noise, noise_source=noise_source if noise is not None else "",
        quantization=judged.quantization,
        scale=scale, tolerance=judged.tolerance, margin=judged.margin,
        error_to_scale=max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else
                                                          float("inf")),
        ill_conditioned=judged.ill_conditioned, error_histogram=error_histogram(diff, finite))


@dataclass
class _Judged:
    bad: np.ndarray  # elements out of tolerance
    tolerance: float  # where the margin is least
    margin: float | None
    atol_needed: float
    noise: float
    ill_conditioned: bool = False
    quantization: float = 0.0


def element_floor(expected: np.ndarray) -> np.ndarray:
    """The least error the noise rule allows each element: ELEMENT_ULPS float32 units in the
    last place of its expected value (see the module)."""
    return ELEMENT_ULPS * 2.0 ** -23 * np.abs(np.where(np.isfinite(expected), expected, 0.0))


def _log(error: float, rounding: float, quantized: float, scale: float) -> None:
    """With MODELPORT_PARITY_LOG set to a file, append each judged group as a JSON line: how
    the noise factor and floors were calibrated (bench/noise_calibration.py reads it)."""
    path = os.environ.get("MODELPORT_PARITY_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"test": os.environ.get("PYTEST_CURRENT_TEST"), "error": error,
                                "noise": rounding, "quantization": quantized,
                                "scale": scale}) + "\n")


def _largest(values: np.ndarray | None, group: slice | EllipsisType, ok: np.ndarray) -> float:
    return float(np.max(np.where(ok, values[group], 0.0))) if values is not None else 0.0


def _rms(e: np.ndarray, finite: np.ndarray) -> float:
    values = e[finite]
    return float(np.sqrt(np.mean(np.square(values)))) if values.size else 0.0


def _fixed(diff: np.ndarray, e: np.ndarray, finite: np.ndarray, tol: Tolerance,
           noise: np.ndarray | None) -> _Judged:
    allowed = tol.atol + tol.rtol * np.abs(e)
    bad = finite & (diff > allowed)
    excess = np.where(finite, diff - tol.rtol * np.abs(e), 0.0)
    hit = finite & (diff > 0)
    margin = float(np.min(allowed[hit] / diff[hit])) if hit.any() else None
    return _Judged(bad, tol.atol, margin, float(max(excess.max(), 0.0)),
                   _largest(noise, slice(None), finite))


def _by_noise(diff: np.ndarray, e: np.ndarray, finite: np.ndarray,
              noises: tuple[np.ndarray | None, np.ndarray | None],
              groups: list[slice | EllipsisType]) -> _Judged:
    bad = np.zeros(diff.shape, dtype=bool)
    least: tuple[float, float] | None = None  # (margin, tolerance) where the margin is least
    worst_noise, worst_quantization, needed, ill = 0.0, 0.0, 0.0, False
    for group in groups:
        d, ok = diff[group], finite[group]
        if not d.size:
            continue
        scale = _rms(e[group], ok)
        rounding = _largest(noises[0], group, ok)
        quantized = _largest(noises[1], group, ok)
        tolerance = max(NOISE_FACTOR * rounding, QUANTIZATION_FACTOR * quantized,
                        SCALE_FLOOR * scale, ABS_FLOOR)
        allowed = np.maximum(tolerance, element_floor(e[group]))
        error = float(d.max())
        _log(error, rounding, quantized, scale)
        bad[group] = ok & (d > allowed)
        hit = ok & (d > 0)
        margin = float(np.min(allowed[hit] / d[hit])) if hit.any() else float("inf")
        if least is None or margin < least[0]:
            least = (margin, tolerance)
        worst_noise = max(worst_noise, rounding)
        worst_quantization = max(worst_quantization, quantized)
        needed = max(needed, error)
        ill = ill or rounding > ILL_CONDITIONED * scale
    if least is None:
        return _Judged(bad, 0.0, None, 0.0, 0.0)
    return _Judged(bad, least[1], least[0] if np.isfinite(least[0]) else None, needed,
                   worst_noise, ill, worst_quantization)


def compare_outputs(names: list[str], expected: list[np.ndarray], actual: list[np.ndarray],
                    tolerances: Tolerances, *, noise: list[np.ndarray] | None = None,
                    groups: list[slice] | None = None, noise_source: str = "",
                    quantization: list[np.ndarray] | None = None) -> list[OutputReport]:
    """Compare every output, each under its own rule (see the module); ``noise`` per output
    and ``groups`` as ``compare_output`` takes them."""
    if len(expected) != len(actual):
        raise UnsupportedError(f"the models have {len(expected)} and {len(actual)} outputs")
    return [compare_output(n, e, a, tolerances.for_output(n), tolerances.nan_policy,
                           noise=None if noise is None else noise[i],
                           groups=_groups_for(groups, np.asarray(e)),
                           noise_source=noise_source,
                           quantization=None if quantization is None else quantization[i])
            for i, (n, e, a) in enumerate(zip(names, expected, actual))]


def _groups_for(groups: list[slice] | None, expected: np.ndarray) -> list[slice] | None:
    """The probes' slices where this output has them on its first axis, else the whole."""
    if not groups or expected.ndim == 0:
        return None
    stop = groups[-1].stop
    return groups if stop == expected.shape[0] else None


def format_table(report: ParityReport) -> list[str]:
    """The human-readable report."""
    lines = [f"parity: {report.source_engine} on the source vs {report.target_engine} on the "
             f"result, {report.inputs.get('description', '')}".rstrip(", ")]
    header = (f"  {'output':24} {'shape':16} {'max abs':>10} {'/scale':>9} {'noise':>9} "
              f"{'tolerance':>9} {'margin':>8} {'cosine':>10} {'bad':>7}")
    lines.append(header)
    for o in report.outputs:
        shape = "x".join(str(d) for d in o.shape)
        status = "ok" if o.passed else "FAIL"
        margin = "-" if o.margin is None else f"{o.margin:.3g}"
        rule = "" if o.rule == NOISE_RULE else f" (atol {o.atol:g} rtol {o.rtol:g})"
        lines.append(f"  {o.name[:24]:24} {shape[:16]:16} {o.max_abs:10.3g} "
                     f"{o.error_to_scale:9.2g} {o.noise:9.2g} {o.tolerance:9.2g} {margin:>8} "
                     f"{o.cosine:10.7f} {o.mismatched:7d} {status}{rule}")
        if not o.passed:
            detail = o.note or (f"worst at {tuple(o.worst_index)}: expected "
                                f"{o.worst_expected:.6g}, got {o.worst_actual:.6g}; atol "
                                f"{o.atol_needed:.3g} would pass")
            if o.nan_mismatches or o.inf_mismatches:
                detail += f"; {o.nan_mismatches} NaN and {o.inf_mismatches} Inf mismatches"
            lines.append(f"    {detail}")
        if o.quantization:
            lines.append(f"    quantized weights: their sampled effect on it is "
                         f"{o.quantization:.3g}; up to {QUANTIZATION_FACTOR:g}x that passes")
        if o.ill_conditioned:
            lines.append(f"    ill-conditioned on these inputs: on at least one probe float32 "
                         f"rounding alone moves it by more than {ILL_CONDITIONED:g} of that "
                         f"probe's scale (up to {o.noise:.3g}); no check can judge it more "
                         "finely than that")
    if report.noise:
        lines.append(f"  noise: {report.noise}")
    lines.extend(_intermediates_lines(report.intermediates))
    if report.first_divergence:
        d = report.first_divergence
        lines.append(f"  first diverging layer: {d['layer']} ({d['class']}): max abs "
                     f"{d['max_abs']:.3g} against the reference")
    lines.extend(f"  note: {note}" for note in report.notes)
    lines.append("  result: " + ("PASS" if report.passed else "MISMATCH"))
    return lines


def _intermediates_lines(found: Intermediates | None) -> list[str]:
    if found is None:
        return []
    if found.skipped:
        return [f"  intermediates: not compared ({found.skipped})"]
    line = (f"  intermediates: {found.held} of {found.compared} sampled layer outputs "
            + ("of the result held by the source's own values" if found.raised else
               "held by the file's own values"))
    if found.absent:
        line += (f" ({', '.join(found.absent)}: not held, but a layer just after it is: "
                 "taken as fused)")
    if found.first_not_held:
        line += f"; FAIL at {found.first_not_held['layer']}"
    return [line]
