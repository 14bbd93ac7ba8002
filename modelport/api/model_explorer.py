"""``--model-explorer FILE.json``: a per-layer check's errors as node data for Google's Model
Explorer, which colours a model's graph by it (its "custom node data" overlay).

The format is Model Explorer's ``GraphNodeData`` JSON (its ``node_data_builder``), plain JSON
that needs no Model Explorer to write: ``{"results": {node_key: {"value": number}},
"gradient": [{"stop": 0..1, "bgColor": colour}, ...]}``, where a node key is a node id or
one of a node's output tensor names. modelport keys each Keras layer's error by the values of
the checked file that hold its output (``ParityReport.per_layer[i]["values"]``: ONNX value
names, TF.js node names), which is what Model Explorer shows as the output tensor names of an
ONNX model's nodes; load the file in Model Explorer's side panel with the checked model open.
The value is the layer's largest absolute error; layers the file does not hold have none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..fsutil import atomic_output

if TYPE_CHECKING:
    from ..check.parity import ParityReport
    from .report import ConversionReport

GRADIENT = [{"stop": 0, "bgColor": "#e8f5e9"}, {"stop": 0.5, "bgColor": "#fff59d"},
            {"stop": 1, "bgColor": "#ef5350"}]


def node_data(parity: dict[str, Any]) -> dict[str, Any]:
    """The ``GraphNodeData`` of a parity report's ``per_layer`` (see the module)."""
    results: dict[str, dict[str, float]] = {}
    for entry in parity.get("per_layer") or []:
        value = entry.get("max_abs")
        if not entry.get("held") or not isinstance(value, (int, float)):
            continue
        for key in entry.get("values") or []:
            results[str(key)] = {"value": float(value)}
    return {"results": results, "gradient": GRADIENT}


def write(path: str | os.PathLike[str], parity: dict[str, Any]) -> Path:
    """Write ``node_data(parity)`` to ``path`` (replaced if it exists)."""
    path = Path(path)
    with atomic_output(path, directory=False, force=True) as tmp:
        tmp.write_text(json.dumps(node_data(parity), indent=1), encoding="utf-8")
    return path


def save(report: ConversionReport | ParityReport, path: str | os.PathLike[str]) -> Path:
    """Write the node data of a ``convert`` or ``validate`` result's per-layer check; one
    that measured no layer is a UsageError that says which checks do."""
    from .report import ConversionReport

    parity = report.parity if isinstance(report, ConversionReport) else report
    if parity is None or not parity.per_layer:
        raise UsageError("--model-explorer: the check measured no layer's error",
                         hint="the per-layer check measures them: a Keras source against an "
                              "ONNX file or a TF.js graph-model (validate --per-layer; convert "
                              "to .onnx measures them itself)")
    return write(path, parity.to_dict())
