"""The first node of a TF.js graph-model whose value leaves tolerance on one browser backend.

A backend that diverges is walked node by node: the browser fetches every node's output
(``executeAsync`` with the node names) on the check's first inputs, modelport's NumPy TF
reference computes the same nodes, and the first node in graph order whose values differ past
``atol + rtol * |reference|`` (integers: at all) is named, with its op: the kernel of that
backend to suspect.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import Job, run

SKIP = {"Const", "Placeholder", "NoOp", "Identity", "IdentityN"}
ATOL, RTOL = 1e-4, 1e-3


@dataclass
class Divergence:
    """The first node off on ``backend``: its name, op, largest error, and how many nodes
    were compared before it."""

    backend: str
    node: str
    op: str
    max_abs: float
    compared: int

    def to_dict(self) -> dict:
        """As the report's ``first_divergence``."""
        return {"backend": self.backend, "layer": self.node, "class": self.op, "op": self.op,
                "max_abs": self.max_abs, "compared": self.compared}


def first_divergence(graph, model_json: Path, inputs: list[tuple[str, np.ndarray]],
                     backend: str) -> Divergence | None:
    """The first node of ``graph`` off on ``backend`` (None: every node holds, or the backend
    fails before giving values)."""
    from ..tfjs_reference import run as reference

    nodes = [n for n in graph.nodes if n.op not in SKIP and not n.op.startswith("Enter")
             and not n.op.startswith("Exit")]
    if not nodes:
        return None
    names = [n.name for n in nodes]
    result = run([Job(model_json, "graph", inputs, names)], (backend,))[0][backend]
    if result.outputs is None:
        return None
    wanted = reference(graph, [a for _, a in inputs], names)
    for i, (node, got, want) in enumerate(zip(nodes, result.outputs, wanted)):
        got, want = np.asarray(got), np.asarray(want)
        if got.shape != want.shape:
            return Divergence(backend, node.name, node.op, float("inf"), i)
        if want.dtype.kind not in "fiub":
            continue
        g, w = got.astype(np.float64), want.astype(np.float64)
        finite = np.isfinite(g) & np.isfinite(w)
        if (np.isfinite(g) != np.isfinite(w)).any():
            return Divergence(backend, node.name, node.op, float("inf"), i)
        diff = np.where(finite, np.abs(g - w), 0.0)
        # integers are exact on every backend that computes them as integers
        exact = want.dtype.kind in "iub"
        if (diff > (0.0 if exact else ATOL + RTOL * np.abs(np.where(finite, w, 0.0)))).any():
            return Divergence(backend, node.name, node.op, float(diff.max()), i)
    return None
