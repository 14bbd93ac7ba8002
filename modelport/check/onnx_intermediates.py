"""An ONNX source's intermediate values against an ONNX file's or a TF.js graph-model's
(``--per-layer`` with an ONNX source).

Both models run with every value kept: the source in onnxruntime with every value marked as an
output, an ONNX target likewise, a TF.js graph-model in the NumPy TF reference with every node's
output requested. Each source node's outputs are looked for among the target's values by value
(``intermediates.Values``: same size, layout moves, the noise rule), the value of the same name
first, where the target has one (an ONNX file derived from the source keeps its names). The
node blamed follows ``intermediates.blame``.

Neither side has a NumPy reference that runs ONNX, so the rounding noise of each source value
is estimated as the check does without one: the source run again on inputs moved by
``PERTURBATION`` (relative), and the deviation of every value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from ..models import TfjsGraph
from .intermediates import Values, Walk, blame, onnx_values, tfjs_values
from .parity import Tolerances

PERTURBATION = 2.0 ** -22  # relative, as the check's own estimate without a reference


def onnx_vs_target(source: ir.Model, target: ir.Model | TfjsGraph,
                   feeds: tuple[list[np.ndarray], list[np.ndarray]], tolerances: Tolerances,
                   *, groups: list[slice] | None = None) -> Walk:
    """The first source node (in graph order) blamed for a divergence between ``source`` on
    ``feeds[0]`` and ``target`` on ``feeds[1]`` (``groups``: the probes' rows of the joined
    batch, each judged on its own)."""
    ours = onnx_values(source, feeds[0])
    noise = _noise(source, feeds[0], ours)
    theirs = onnx_values(target, feeds[1]) if isinstance(target, ir.Model) \
        else tfjs_values(target, feeds[1])
    values = Values(theirs, tolerances, groups)
    nodes = list(source.graph)
    producer = {out.name: i for i, node in enumerate(nodes) for out in node.outputs}
    status: dict[int, bool] = {}
    held = compared = 0
    for i, node in enumerate(nodes):
        outs = [o.name for o in node.outputs if o.name in ours]
        if not outs:
            continue
        found = [_find(values, name, ours[name], noise.get(name)) for name in outs]
        status[i] = all(found)
        held += sum(found)
        compared += len(outs)
    producers = {i: [producer[v.name] for v in node.inputs if v is not None
                     and v.name in producer] for i, node in enumerate(nodes)}
    outputs = [producer[o.name] for o in source.graph.outputs if o.name in producer]
    walk = Walk(None, held, compared, len(theirs))
    step = blame(list(range(len(nodes))), producers, outputs, status)
    if step is not None:
        walk.first = _blamed(nodes[step], ours, noise, values, theirs)
        walk.notes.append(_sentence(walk))
    return walk


def _find(values: Values, name: str, expected: np.ndarray, noise: np.ndarray | None) -> bool:
    """Whether the target holds ``expected``: in its value of the same name, else anywhere."""
    same = values.values.get(name)
    if same is not None and same.shape == expected.shape:
        alone = Values({name: same}, values.tolerances, values.groups)
        if alone.find(expected, noise) is not None:
            return True
    return values.find(expected, noise) is not None


def _noise(source: ir.Model, arrays: list[np.ndarray], values: dict[str, np.ndarray]
           ) -> dict[str, np.ndarray]:
    """Each value's deviation when the float inputs move by PERTURBATION (relative)."""
    rng = np.random.default_rng(7)
    moved = [x * (1 + PERTURBATION * rng.choice([-1.0, 1.0], x.shape)).astype(x.dtype)
             if x.dtype.kind == "f" else x for x in arrays]
    again = onnx_values(source, moved)
    noise = {}
    for name, value in values.items():
        other = again.get(name)
        if other is not None and other.shape == value.shape and value.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                deviation = np.abs(other.astype(np.float64) - value)
            noise[name] = np.where(np.isfinite(deviation), deviation, 0.0)
    return noise


def _blamed(node: ir.Node, ours: dict[str, np.ndarray], noise: dict[str, np.ndarray],
            values: Values, theirs: dict[str, np.ndarray]) -> dict[str, Any]:
    name = next(o.name for o in node.outputs if o.name in ours)
    near = values.nearest(ours[name], noise.get(name))
    found = near.result if near else None
    size = int(np.size(ours[name]))
    return {"layer": node.name or name, "class": node.op_type, "value": name,
            "max_abs": found.max_abs if found else float("inf"),
            "mismatched": found.mismatched if found else size, "total": size,
            "nearest_value": near.value if near else None,
            "nearest_layout": near.layout if near else None,
            "weights": sorted(v.name for v in node.inputs
                              if v is not None and v.const_value is not None),
            "compared_in": "the target's own values"}


def _sentence(walk: Walk) -> str:
    first = walk.first or {}
    said = (f"the target's own values ({walk.values}): none holds {first['value']}, the output "
            f"of the source's node {first['layer']} ({first['class']})")
    if first["nearest_value"]:
        said += (f"; the nearest, {first['nearest_value']} ({first['nearest_layout']}), is off "
                 f"by up to {first['max_abs']:.3g}")
    return said + f"; {walk.held} of {walk.compared} source values are held by the target"
