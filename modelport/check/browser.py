"""``--engine browser``: the check of a TF.js output in headless Chromium, one result per backend.

Each backend (cpu, wasm, webgl, webgpu, mobile) is its own parity check against the reference
engine, on the same inputs, with the same statistics and tolerance rule as any check
(``validate_models``); the browser runs every backend in one launch (see
``runtime.tfjs_browser.engine``). ``mobile`` (WebGL computing in float16 textures, as on phones
without float32 render targets) is information, judged by its own tolerance (MOBILE_TOLERANCE):
it never fails the check, and its report says how far such phones would be.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UnsupportedError
from .options import CheckOptions
from .parity import ParityReport, Tolerance, Tolerances

# float16 keeps 11 significant bits (a relative step of 2^-11, about 4.9e-4); a few dozen
# layers compound it to about 1e-3 of the values' scale, so 1e-2 absolute and relative holds
# such a model and still catches a backend that computes something else (an overflow to Inf
# past 65504, a kernel that differs).
MOBILE_TOLERANCE = Tolerance(atol=1e-2, rtol=1e-2)


@dataclass
class BackendResult:
    """One backend's check: its parity report, or why it could not run; ``informational``:
    reported but never failing the check (the mobile float16 setting)."""

    backend: str
    report: ParityReport | None
    error: str | None = None
    informational: bool = False

    @property
    def passed(self) -> bool:
        """Whether the backend ran and every output held its tolerance."""
        return self.report is not None and self.report.passed

    @property
    def max_abs(self) -> float | None:
        """The largest absolute error over every output (None when it did not run)."""
        if self.report is None or not self.report.outputs:
            return None
        return max(o.max_abs for o in self.report.outputs)


@dataclass
class BrowserReport:
    """The check of one TF.js output on every chosen backend; ``passed``: every backend that
    is not information ran and held its tolerance."""

    source: str
    target: str
    results: list[BackendResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every non-informational backend ran and passed."""
        return all(r.passed for r in self.results if not r.informational)

    @property
    def failed(self) -> list[str]:
        """The backends that failed or diverged (informational ones excluded)."""
        return [r.backend for r in self.results if not r.informational and not r.passed]

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (what ``--json`` prints)."""
        return {"source": self.source, "target": self.target, "engine": "browser",
                "passed": self.passed, "failed_backends": self.failed,
                "backends": [{"backend": r.backend, "passed": r.passed,
                              "informational": r.informational, "max_abs": r.max_abs,
                              "error": r.error,
                              "report": r.report.to_dict() if r.report else None}
                             for r in self.results]}

    def lines(self) -> list[str]:
        """The text report: one block per backend, the failing ones named at the end."""
        from .parity import format_table

        out = [f"{self.source} vs {self.target} in headless Chromium"]
        for r in self.results:
            tag = (" (information: float16 textures, its own tolerance "
                   f"atol {MOBILE_TOLERANCE.atol:g} rtol {MOBILE_TOLERANCE.rtol:g})"
                   ) if r.informational else ""
            if r.report is None:
                out.append(f"backend {r.backend}{tag}: FAILED to run: {r.error}")
                continue
            verdict = "PASS" if r.passed else "DIVERGED"
            out.append(f"backend {r.backend}{tag}: {verdict}, max abs error {r.max_abs:.3g}")
            out += [f"  {line}" for line in format_table(r.report)]
        if self.failed:
            out.append(f"failed or diverged on: {', '.join(self.failed)}")
        return out


def is_tfjs(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a TF.js model (a model.json, or a folder holding one)."""
    p = Path(path)
    return (p / "model.json").is_file() if p.is_dir() else p.suffix == ".json"


def validate_backends(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                      options: CheckOptions) -> BrowserReport:
    """Check the TF.js model ``dst`` against ``src`` on each backend ``options.engine`` names
    (``browser`` alone: cpu, wasm and webgl), each a full parity check (see the module)."""
    from .validate import validate_with

    return _each_backend(src, dst, options, lambda opts: validate_with(src, dst, opts))


def _each_backend(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                  options: CheckOptions, check: Any) -> BrowserReport:
    """Run ``check(options for one backend)`` per backend, the browser launched once."""
    from ..runtime.tfjs_browser import backends_of, missing
    from ..runtime.tfjs_browser.engine import session
    from ..runtime.tfjs_node import TfjsError

    if not is_tfjs(dst):
        raise UnsupportedError(f"--engine browser runs TF.js models in a browser; {dst} is not "
                               "one (its model.json): use --engine auto for other formats")
    reason = missing()
    if reason:
        raise UnsupportedError(f"--engine browser cannot run here; it needs {reason}")
    backends = backends_of(options.engine_or_default)
    report = BrowserReport(str(src), str(dst))
    with session(backends):
        for backend in backends:
            mobile = backend == "mobile"
            opts = dataclasses.replace(options, engine=f"browser:{backend}")
            if mobile:
                base = options.tolerances_or_default
                opts = dataclasses.replace(opts, tolerances=Tolerances(
                    default=MOBILE_TOLERANCE, nan_policy=base.nan_policy))
            try:
                result = BackendResult(backend, check(opts), informational=mobile)
                if options.per_layer and result.report is not None and not result.passed:
                    _walk(result, dst)
            except TfjsError as e:  # this backend failed; anything else fails every backend
                result = BackendResult(backend, None, e.message, informational=mobile)
            report.results.append(result)
    return report


def _walk(result: BackendResult, dst: str | os.PathLike[str]) -> None:
    """``--per-layer`` on a backend that diverged: the first node of a graph-model off there
    (runtime.tfjs_browser.localise), on the check's first inputs."""
    from ..formats.loading import load
    from ..models import TfjsGraph
    from ..runtime.tfjs_browser import LAST_JOBS
    from ..runtime.tfjs_browser.localise import first_divergence

    model = load(dst)
    if not isinstance(model, TfjsGraph) or not LAST_JOBS or result.report is None:
        return
    job = LAST_JOBS[0]
    found = first_divergence(model, job.model_json, job.inputs, result.backend)
    if found is None:
        result.report.notes.append(f"{result.backend}: no single node of the graph leaves "
                                   "tolerance on the first inputs")
        return
    result.report.first_divergence = found.to_dict()
    result.report.notes.append(
        f"on {result.backend}, {found.compared} nodes hold before {found.node}: suspect "
        f"tfjs's {found.op} kernel on {result.backend}")
