"""``--per-layer`` on a check that passed: each source layer's error along the graph, for the
report people look at (``api.html_report`` plots ``ParityReport.per_layer``). On a mismatch
``validate._localise`` fills it while it looks for the first diverging layer; on a pass
nothing is to blame, so only the walk that measures the layers runs (no second opinion)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..models import LayersModel, TfjsGraph

if TYPE_CHECKING:
    from ..formats.loading import Model
    from .parity import ParityReport, Tolerances


def profile(report: ParityReport, source: Model, target: Model,
            feeds: tuple[list[np.ndarray], list[np.ndarray]], tolerances: Tolerances) -> None:
    """Fill ``report.per_layer`` for a Keras source against an ONNX file or a TF.js
    graph-model (the pairs whose own values the per-layer check reads); others stay empty."""
    import onnx_ir as ir

    from . import intermediates

    if not isinstance(source, LayersModel) or not isinstance(target, (ir.Model, TfjsGraph)):
        return
    batch, probes = report.inputs.get("batch"), report.inputs.get("probes") or []
    rows = len(feeds[0][0]) if feeds[0] and feeds[0][0].ndim else 0
    groups = [slice(i * batch, (i + 1) * batch) for i in range(len(probes))] \
        if batch and len(probes) > 1 and rows == batch * len(probes) else None
    walk = intermediates.keras_vs_onnx(source, feeds[0], target, feeds[1], tolerances,
                                       groups=groups)
    report.per_layer = walk.layers
