"""A compact histogram of one output's absolute errors, for the report people look at
(``api.html_report``): counts per half-decade of ``|actual - expected|`` from 1e-10 to 1e2,
plus the exact zeros and what falls outside. A few dozen integers per output, whatever its
size, so that the --json report and the HTML page stay small for big models."""

from __future__ import annotations

from typing import Any

import numpy as np

LOW, HIGH, PER_DECADE = -10, 2, 2  # log10 range and bins per decade


def error_histogram(diff: np.ndarray, finite: np.ndarray) -> dict[str, Any]:
    """``diff``: the absolute errors (0 where not ``finite``); the counts of the finite ones:
    ``{"log10_low", "log10_high", "counts", "zeros", "below", "above", "not_finite"}``
    (``below``: nonzero errors under 10**log10_low; ``above``: at or over 10**log10_high)."""
    d = np.asarray(diff, dtype=np.float64)[np.asarray(finite, dtype=bool)]
    zeros = int(np.count_nonzero(d == 0))
    nonzero = d[d > 0]
    logs = np.log10(nonzero) if nonzero.size else nonzero
    bins = (HIGH - LOW) * PER_DECADE
    counts, _ = np.histogram(logs, bins=bins, range=(LOW, HIGH))
    return {"log10_low": LOW, "log10_high": HIGH, "counts": [int(c) for c in counts],
            "zeros": zeros, "below": int(np.count_nonzero(logs < LOW)),
            "above": int(np.count_nonzero(logs >= HIGH)),
            "not_finite": int(np.size(finite) - np.count_nonzero(finite))}
