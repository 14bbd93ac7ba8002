"""Where a mismatch starts, read from the checked file's own intermediate values.

``--per-layer`` must look at the file that failed, not at a new conversion of its source: a
weight changed in the file after it was written, or a file written by another tool, is only
seen there. So every value the ONNX file's main graph computes is made a graph output (as
Polygraphy's ``mark all`` does; names only, onnxruntime types them), the file runs in
onnxruntime on the inputs the check used, and each Keras layer's output from the NumPy reference
is looked for among those values.

**By value, not by name**: tools name values as they like (``val_7``, ``StatefulPartitionedCall/
.../Conv2D:0``). A Keras tensor is *held* by an ONNX value of its element count, in its shape,
with its channels moved first or last (the layout pass) or time-major (an ONNX RNN), each also
reshaped where only dimensions of 1 differ, whose numbers pass the parity check's noise rule
(``parity``) against it. Values are screened on a sample of elements before a whole compare.

**Blame**: a converter may fuse layers (Conv + BatchNormalization into one Conv) or fold one
away, so a Keras tensor without a value in the file is not by itself a fault. The layer blamed
is the first, in call order, whose output has no value in the file *while every layer
downstream of it, on the way to an output that fails, has none either*: a fused layer's
successor is held again, a wrong weight's error reaches the output. When no layer qualifies
(an error masked on the way, say by a ReLU), the latest unheld layer whose inputs are all held
is named instead. The report names the ONNX nodes (and weights) that compute the value nearest
to the blamed layer's output from the values holding its inputs; where one of those nodes
computes and is named after an *earlier* Keras layer (modelport names nodes ``layer/Op``,
TF-based tools ``model/layer/Op``), that layer is blamed: its own output is in the file, but
the file goes on from a value its nodes computed after it.

Keras against Keras (``.h5``/``.keras``/TF.js layers-model on both sides) compares the same
layer names' tensors, both models running in the NumPy reference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import onnx_ir as ir

from ..models import LayersModel, TfjsGraph, keras_graph
from .divergence import Key, captured
from .parity import (
    ABS_FLOOR,
    NOISE_FACTOR,
    SCALE_FLOOR,
    OutputReport,
    Tolerance,
    Tolerances,
    compare_output,
    element_floor,
)

if TYPE_CHECKING:
    import onnx

Call = tuple[str, int]  # a Keras call: (layer, call index)
N = TypeVar("N", bound=Hashable)  # a step of a graph: a Keras call, an ONNX node
SAMPLE = 256  # elements screened before a whole value is compared: most candidates fail there
LARGEST = 1 << 31  # a protobuf message cannot be serialized past 2 GiB


@dataclass
class Held:
    """Where a Keras tensor is in the file: the ONNX value, how its layout differs, and the
    comparison (passed when the value holds it, else the nearest value found)."""

    value: str
    layout: str
    result: OutputReport | None = None  # for the nearest value only: what is reported
    max_abs: float | None = None  # a holding value's largest error (the report's plot)


@dataclass
class Walk:
    """The outcome of a layer-by-layer comparison: ``first`` (``parity.format_table``'s
    keys: layer, class, max_abs, mismatched, total, and where it was looked for), how many of
    the source's compared tensors the target holds, among how many values, and sentences for
    the report."""

    first: dict[str, Any] | None
    held: int
    compared: int
    values: int
    notes: list[str] = field(default_factory=list)
    looked: bool = True  # False: the target's values could not be read
    values_of: str = "the file"  # whose values were searched
    tensors_of: str = ""  # whose Keras tensors were looked for ("": the source's)
    # one entry per Keras call in call order: {"layer", "class", "call", "held", "max_abs"}
    # (max_abs: the largest error of the values holding its outputs; None where not held)
    layers: list[dict[str, Any]] = field(default_factory=list)


def mark_all(graph: onnx.GraphProto) -> list[str]:
    """Make every value a node of ``graph`` computes a graph output (by name only, so no type
    has to be known); the names added, in node order."""
    import onnx

    present = {o.name for o in graph.output}
    added = []
    for node in graph.node:
        for name in node.output:
            if name and name not in present:
                graph.output.append(onnx.ValueInfoProto(name=name))
                present.add(name)
                added.append(name)
    return added


def onnx_values(model: ir.Model, arrays: list[np.ndarray], *, device: str = "cpu"
                ) -> dict[str, np.ndarray]:
    """Every tensor value ``model``'s main graph computes on ``arrays`` (in its input order),
    by name, in node order. A model past protobuf's 2 GiB cannot be re-serialized with its
    outputs marked and is refused (UnsupportedError)."""
    from ..errors import UnsupportedError
    from ..runtime.engines import OnnxRuntime

    size = sum(v.const_value.nbytes for v in model.graph.initializers.values()
               if v.const_value is not None)
    if size >= LARGEST:
        raise UnsupportedError(f"the model's weights take {size / 2**30:.1f} GiB: too large to "
                               "re-serialize with every value marked as an output")
    proto = ir.to_proto(model)
    mark_all(proto.graph)
    engine = OnnxRuntime(proto.SerializeToString(), device=device)
    got = zip(engine.output_names(), engine.run(arrays))
    return {name: value for name, value in got if isinstance(value, np.ndarray)}


def tfjs_values(graph: TfjsGraph, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Every node's first output (weights and inputs aside) of a TF.js graph-model on
    ``arrays`` (in its input order), by node name, from the NumPy TF reference."""
    from ..runtime.tfjs_reference import run

    names = [n.name for n in graph.nodes if n.op not in ("Const", "Placeholder")]
    got = run(graph, list(arrays), names)
    return {name: np.asarray(v) for name, v in zip(names, got) if isinstance(v, np.ndarray)}


class Values:
    """A file's values indexed by element count, and the search for a Keras tensor among
    them under the parity check's rule."""

    def __init__(self, values: dict[str, np.ndarray], tolerances: Tolerances,
                 groups: list[slice] | None = None) -> None:
        self.values = values
        self.tolerances = tolerances
        self.groups = groups  # the probes' rows of the first axis, each judged on its own
        self.by_size: dict[int, list[str]] = defaultdict(list)
        for name, value in values.items():
            self.by_size[value.size].append(name)
        self.rng = np.random.default_rng(0)

    def find(self, expected: np.ndarray, noise: np.ndarray | None) -> Held | None:
        """The first value (in node order) that holds ``expected``, or None. Each candidate is
        screened on a sample of elements, read through the layout without moving the tensor;
        the few that pass are compared whole."""
        expected = np.asarray(expected)
        tol = self.tolerances.default
        rows = _rows(expected, noise, tol, self.groups)
        moved: dict[Layout, tuple[np.ndarray, np.ndarray | float]] = {}
        for name in self.by_size.get(expected.size, ()):
            actual = self.values[name]
            for layout in _layouts(expected.shape, actual.shape):
                if not self._screen(expected, layout, actual, rows, tol):
                    continue
                if layout not in moved:
                    moved[layout] = (layout.move(expected), rows if isinstance(rows, float) else
                                     layout.move(np.broadcast_to(np.reshape(
                                         rows, (-1,) + (1,) * (expected.ndim - 1)),
                                         expected.shape)))
                e, allowed = moved[layout]
                if _holds(e, actual, allowed, tol, self.tolerances.nan_policy):
                    err = np.abs(np.asarray(actual, np.float64) - e)
                    return Held(name, layout.label, max_abs=float(np.nanmax(err))
                                if err.size else 0.0)
        return None

    def nearest(self, expected: np.ndarray, noise: np.ndarray | None) -> Held | None:
        """The value closest to ``expected`` (least max abs error) among those of its size,
        with the parity check's whole report on it."""
        expected = np.asarray(expected)
        best: Held | None = None
        for name in self.by_size.get(expected.size, ()):
            actual = self.values[name]
            for layout in _layouts(expected.shape, actual.shape):
                batch_first = layout.perm[0] == 0 and layout.shape[:1] == expected.shape[:1]
                result = compare_output(name, layout.move(expected), actual,
                                        self.tolerances.default, self.tolerances.nan_policy,
                                        noise=None if noise is None else layout.move(noise),
                                        groups=_in_rows(self.groups, expected)
                                        if batch_first else None)
                if best is None or best.result is None or result.max_abs < best.result.max_abs:
                    best = Held(name, layout.label, result)
        return best

    def _screen(self, expected: np.ndarray, layout: Layout, actual: np.ndarray,
                rows: np.ndarray | float, tol: Tolerance | None) -> bool:
        """False when a sample of elements already exceeds the tolerance (so the whole value
        would fail); True: compare it whole."""
        if expected.size <= SAMPLE:
            return True
        picks = self.rng.integers(0, expected.size, SAMPLE)
        at = layout.source(picks)
        x = np.asarray(expected)[at].astype(np.float64)
        y = actual.reshape(-1)[picks].astype(np.float64)
        allowed = np.maximum(rows if isinstance(rows, float) else rows[at[0]],
                             element_floor(x)) if tol is None \
            else tol.atol + tol.rtol * np.abs(x)
        with np.errstate(invalid="ignore"):
            return not bool(np.any(np.abs(y - x) > allowed))


@dataclass(frozen=True)
class Layout:
    """How a Keras tensor sits in a value: its axes permuted (``perm``), then reshaped to
    ``shape`` (the value's)."""

    label: str
    perm: tuple[int, ...]
    moved: tuple[int, ...]  # the shape after the permutation
    shape: tuple[int, ...]

    def move(self, a: np.ndarray) -> np.ndarray:
        """``a`` in the value's layout (a copy)."""
        return np.ascontiguousarray(np.asarray(a).transpose(self.perm)).reshape(self.shape)

    def source(self, flat: np.ndarray) -> tuple[np.ndarray, ...]:
        """The Keras tensor's indices of the value's elements ``flat`` (flat indices):
        ``move(a).reshape(-1)[flat] == a[source(flat)]``, without moving ``a``."""
        at = np.unravel_index(flat, self.moved)  # a reshape keeps the permuted order
        source = list(at)
        for i, axis in enumerate(self.perm):
            source[axis] = at[i]
        return tuple(source)


def _holds(e: np.ndarray, a: np.ndarray, allowed: np.ndarray | float, tol: Tolerance | None,
           nan_policy: str) -> bool:
    """The parity check's verdict (``compare_output(...).passed``: the noise rule's
    ``allowed`` error, per element or for all, or the user's tolerance), without its
    statistics."""
    e = e.astype(np.float64, copy=False)
    a = a.astype(np.float64, copy=False)
    if not (np.isfinite(e).all() and np.isfinite(a).all()):
        e_nan, a_nan = np.isnan(e), np.isnan(a)
        if (e_nan != a_nan).any() if nan_policy == "match" else (e_nan | a_nan).any():
            return False
        e_inf, a_inf = np.isinf(e), np.isinf(a)
        if ((e_inf | a_inf) & ~(e_inf & a_inf & (e == a))).any():
            return False
        finite = np.isfinite(e) & np.isfinite(a)
        e, a = e[finite], a[finite]
        allowed = allowed if isinstance(allowed, float) else allowed[finite]
    allowed = tol.atol + tol.rtol * np.abs(e) if tol is not None else \
        np.maximum(allowed, element_floor(e))
    return not bool(np.any(np.abs(a - e) > allowed))


def _rows(expected: np.ndarray, noise: np.ndarray | None, tol: Tolerance | None,
          groups: list[slice] | None) -> np.ndarray | float:
    """The noise rule's tolerance for each row of ``expected``'s first axis (each probe's
    own, as the check judges its outputs), or one for the whole; unused under a tolerance the
    user gave."""
    if tol is not None or expected.dtype.kind not in "fiub":
        return 0.0
    groups = _in_rows(groups, expected)
    if groups is None:
        return _bound(expected, noise)
    rows = np.empty(expected.shape[0])
    for g in groups:
        rows[g] = _bound(expected[g], None if noise is None else np.asarray(noise)[g])
    return rows


def _in_rows(groups: list[slice] | None, expected: np.ndarray) -> list[slice] | None:
    """The probes' rows where ``expected``'s first axis is the joined batch, else None."""
    if not groups or expected.ndim == 0 or groups[-1].stop != expected.shape[0]:
        return None
    return groups


def _bound(expected: np.ndarray, noise: np.ndarray | None) -> float:
    """The noise rule's tolerance for ``expected`` as a whole (see ``parity``)."""
    e = expected.astype(np.float64)
    finite = np.isfinite(e)
    scale = float(np.sqrt(np.mean(np.square(e[finite])))) if finite.any() else 0.0
    rounding = 0.0
    if noise is not None and np.size(noise):
        rounding = float(np.max(np.where(np.isfinite(noise), noise, 0.0)))
    return max(NOISE_FACTOR * rounding, SCALE_FLOOR * scale, ABS_FLOOR)


def _layouts(shape: tuple[int, ...], target: tuple[int, ...]) -> Iterator[Layout]:
    """The ways a Keras tensor of ``shape`` can sit in a value of shape ``target`` (same
    size): as it is, with its channels moved first or last (the layout pass), time-major (an
    ONNX RNN's sequence), each also reshaped where only dimensions of 1 differ (an RNN's
    direction axis, a squeezed pooling)."""
    seen = set()
    for label, perm in _permutations(len(shape)):
        if perm in seen:
            continue
        seen.add(perm)
        moved = tuple(shape[i] for i in perm)
        if moved == target:
            yield Layout(label, perm, moved, target)
        elif _squeezed(moved) == _squeezed(target):
            yield Layout(f"{label}, reshaped", perm, moved, target)


def _permutations(rank: int) -> list[tuple[str, tuple[int, ...]]]:
    same = tuple(range(rank))
    if rank < 3:
        return [("same", same)]
    first = (0, rank - 1, *range(1, rank - 1))
    last = (0, *range(2, rank), 1)
    return [("same", same), ("channels first", first), ("channels last", last),
            ("time first", (1, 0, *range(2, rank)))]


def _squeezed(shape: tuple[int, ...]) -> list[int]:
    return [d for d in shape if d != 1]


def keras_vs_onnx(model: LayersModel, keras_arrays: list[np.ndarray],
                  target: ir.Model | TfjsGraph, onnx_arrays: list[np.ndarray],
                  tolerances: Tolerances, *, groups: list[slice] | None = None,
                  device: str = "cpu") -> Walk:
    """Each Keras layer's output (NumPy reference on ``keras_arrays``) looked for, by value,
    among the ONNX (or TF.js graph-model) ``target``'s own values on ``onnx_arrays``; the layer
    blamed as the module says. ``groups``: the probes' rows of the joined batch, each judged
    on its own noise as the check judges them."""
    values = Values(onnx_values(target, onnx_arrays, device=device)
                    if isinstance(target, ir.Model) else tfjs_values(target, onnx_arrays),
                    tolerances, groups)
    reference, noise = captured(model, keras_arrays)
    graph = keras_graph.as_functional(model)
    order = keras_graph.call_order(graph)
    held: dict[Key, Held | None] = {}
    for layer, k in order:
        for key in _keys(reference.tensors, layer.name, k):
            held[key] = values.find(reference.tensors[key], noise.get(key))
    status = {(layer.name, k): all(held[key] is not None
                                   for key in _keys(reference.tensors, layer.name, k))
              for layer, k in order if _keys(reference.tensors, layer.name, k)}
    walk = Walk(None, sum(h is not None for h in held.values()), len(held), len(values.values))
    walk.layers = _per_layer(order, reference.tensors, held)
    # the file's own values come from onnxruntime, or for a TF.js graph-model from the NumPy
    # TF reference (not the engine that ran the outputs): the report says which
    computed_in = "onnxruntime" if isinstance(target, ir.Model) else "NumPy TF reference"
    for entry in walk.layers:
        entry["computed_in"] = computed_in
    blamed = _blame(graph, order, status)
    if blamed is not None:
        key = next(key for key in _keys(reference.tensors, *blamed) if held[key] is None)
        near = values.nearest(reference.tensors[key], noise.get(key))
        walk.first = _blamed(graph, order, key, np.size(reference.tensors[key]), near, held,
                             target)
        walk.notes.append(_sentence(walk))
    return walk


LAYOUT_OPS = frozenset({"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Flatten",
                        "Shape", "Constant", "Cast"})  # move numbers, never compute them


def _blamed(graph: LayersModel, order: list[tuple[Any, int]], key: Key, size: int,
            near: Held | None, held: dict[Key, Held | None],
            target: ir.Model | TfjsGraph | None) -> dict[str, Any]:
    """The report on the blamed call's output ``key``: its nearest value, the values holding
    its inputs, the ONNX nodes (and weights) that compute the one from the others, and, where
    those nodes are named after an earlier Keras layer (a converter's naming) and compute, that
    layer instead: its output is held, but the file goes on from a value it computed after."""
    layer = graph.layer(key[0])
    inputs = {ref.layer: held.get((ref.layer, ref.node, ref.tensor))
              for ref in layer.inbound_nodes[key[1]].inputs()}
    found = near.result if near else None
    first: dict[str, Any] = {
        "layer": layer.name, "class": layer.class_name, "call": key[1], "output": key[2],
        "max_abs": found.max_abs if found else float("inf"),
        "mismatched": found.mismatched if found else int(size), "total": int(size),
        "nearest_value": near.value if near else None,
        "nearest_layout": near.layout if near else None,
        "inputs_held_by": {name: h.value for name, h in inputs.items() if h is not None},
        "onnx_nodes": [], "weights": [], "compared_in": "the file's own values"}
    if near is None or not isinstance(target, ir.Model):
        return first
    stops = {h.value for h in held.values() if h is not None} - {near.value}
    nodes, reached = _computing(target, near.value, stops)
    if not reached & set(first["inputs_held_by"].values()):
        return first  # the nearest value is not computed from the layer's inputs: no path
    weights = set(target.graph.initializers)
    first["onnx_nodes"] = [f"{n.name or '(unnamed)'} ({n.op_type})" for n in nodes]
    first["weights"] = sorted({v.name for n in nodes for v in n.inputs
                               if v is not None and v.name in weights})
    position = {lay.name: i for i, (lay, _k) in reversed(list(enumerate(order)))}
    owners = {part: n for n in nodes if n.op_type not in LAYOUT_OPS
              for part in (n.name or "").split("/") if part in position}
    earliest = min(owners, key=position.__getitem__, default=None)
    if earliest is not None and position[earliest] < position[layer.name]:
        owner = graph.layer(earliest)
        first.update({"layer": owner.name, "class": owner.class_name, "call": 0, "output": 0,
                      "first_unheld": layer.name, "owner_node": owners[earliest].name})
    return first


def _computing(target: ir.Model, value: str, stops: set[str]) -> tuple[list[ir.Node], set[str]]:
    """The nodes of ``target``'s main graph that compute ``value`` from the values in
    ``stops``, its inputs and its weights (in graph order), and the ``stops`` they read."""
    producer = {out.name: node for node in target.graph for out in node.outputs}
    found: set[int] = set()
    reached: set[str] = set()
    seen: set[str] = set()
    todo = [value]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in stops:
            reached.add(name)
            continue
        node = producer.get(name)
        if node is None or id(node) in found:
            continue
        found.add(id(node))
        todo.extend(v.name for v in node.inputs if v is not None and v.name)
    return [n for n in target.graph if id(n) in found], reached


def keras_in_onnx(source: LayersModel, target: ir.Model,
                  feeds: tuple[list[np.ndarray], list[np.ndarray]], tolerances: Tolerances, *,
                  opset: int, groups: list[slice] | None = None) -> Walk:
    """``keras_vs_onnx`` on the check's first feed (the source's arrays, the file's arrays);
    modelport's own lowering of the source, without the layout pass, is a second opinion only
    where the file's values cannot be read or name nothing."""
    from ..errors import ModelportError
    from .divergence import first_divergence

    try:
        walk = keras_vs_onnx(source, feeds[0], target, feeds[1], tolerances, groups=groups)
    except ModelportError as e:
        walk = Walk(None, 0, 0, 0, [f"the file's own values could not be compared: {e}"],
                    looked=False)
    if walk.first is not None:
        return walk
    try:
        relowered = first_divergence(source, feeds[0], tolerances, opset=opset, device="cpu")
    except ModelportError:
        relowered = None  # a second opinion only: a source modelport cannot lower has none
    if relowered is not None:
        relowered["compared_in"] = "modelport's lowering of the source, without the layout pass"
        walk.first = relowered
        walk.notes.append("modelport's own lowering of the source, without the layout pass, "
                          f"first diverges at {relowered['layer']}")
    elif not walk.looked:
        walk.notes.append("modelport's own lowering of the source matches at every layer "
                          "before the layout pass; the file itself could not be compared")
    else:
        walk.notes.append(f"the file holds {walk.held} of {walk.compared} Keras layer outputs "
                          "on the first inputs, and no layer is to blame on them")
    return walk


def _per_layer(order: list[tuple[Any, int]], tensors: dict[Key, Any],
               held: dict[Key, Held | None]) -> list[dict[str, Any]]:
    """Each Keras call's error along the graph (``Walk.layers``)."""
    out = []
    for layer, k in order:
        keys = _keys(tensors, layer.name, k)
        if not keys:
            continue
        found = [held[key] for key in keys]
        errors = [h.max_abs for h in found if h is not None and h.max_abs is not None]
        ok = all(h is not None for h in found)
        # "values": the file's values holding the outputs (a Model Explorer overlay's keys)
        out.append({"layer": layer.name, "class": layer.class_name, "call": k, "held": ok,
                    "max_abs": max(errors) if ok and errors else None,
                    "values": [h.value for h in found if h is not None]})
    return out


def _sentence(walk: Walk) -> str:
    first = walk.first or {}
    unheld = first.get("first_unheld", first["layer"])
    said = (f"{walk.values_of}'s own values (all {walk.values} of them): no value holds "
            f"{unheld}'s output")
    if first["nearest_value"]:
        said += (f"; the nearest, {first['nearest_value']} ({first['nearest_layout']}), is "
                 f"off by up to {first['max_abs']:.3g} in {first['mismatched']} of "
                 f"{first['total']} elements")
    if first["inputs_held_by"]:
        said += "; its inputs match (" + ", ".join(
            f"{k} as {v}" for k, v in first["inputs_held_by"].items()) + ")"
    if first["onnx_nodes"]:
        said += "; the file computes it with " + ", ".join(first["onnx_nodes"])
        if first["weights"]:
            said += " from the weights " + ", ".join(first["weights"])
    if "first_unheld" in first:
        said += (f"; {first['layer']}'s own output is held, but {first['owner_node']}, a node "
                 f"named after {first['layer']}, computes past it: the divergence is there")
    return said + (f"; {walk.held} of {walk.compared} {walk.tensors_of}Keras tensors are "
                   f"held by {walk.values_of}")


def _keys(tensors: dict[Key, Any], layer: str, k: int) -> list[Key]:
    keys: list[Key] = []
    while (layer, k, len(keys)) in tensors:
        keys.append((layer, k, len(keys)))
    return keys


def _blame(graph: LayersModel, order: list[tuple[Any, int]], status: dict[Call, bool]
           ) -> Call | None:
    """The Keras call blamed for a divergence from ``status`` (held or not, per call)."""
    producers = {(layer.name, k): [(r.layer, r.node) for r in layer.inbound_nodes[k].inputs()]
                 for layer, k in order}
    return blame([(layer.name, k) for layer, k in order], producers,
                 [(r.layer, r.node) for r in graph.outputs], status)


def blame(order: list[N], producers: dict[N, list[N]], outputs: list[N],
          status: dict[N, bool]) -> N | None:
    """The step blamed for a divergence (see the module): ``order`` the steps of a graph in
    execution order, ``producers`` the steps each reads, ``outputs`` those that give the
    model's outputs, ``status`` whether each step's output is held by the other model."""
    consumers: dict[N, list[N]] = defaultdict(list)
    for step in order:
        for p in producers.get(step, ()):
            consumers[p].append(step)
    failing = [o for o in outputs if status.get(o) is False]
    if not failing:
        return None  # every output is held: nothing on these inputs to localise
    relevant = closure(failing, producers)
    unheld = [step for step in order if status.get(step) is False and step in relevant]
    for step in unheld:
        downstream = closure([step], consumers) & relevant
        if not any(status.get(d) for d in downstream):
            return step
    frontier = [c for c in unheld if all(status.get(p, True) for p in producers.get(c, ()))]
    return frontier[-1] if frontier else None


def closure(start: list[N], edges: dict[N, list[N]]) -> set[N]:
    """``start`` and every step reachable from it along ``edges``."""
    seen, todo = set(start), list(start)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def keras_vs_keras(source: LayersModel, target: LayersModel, source_arrays: list[np.ndarray],
                   target_arrays: list[np.ndarray], tolerances: Tolerances, *,
                   groups: list[slice] | None = None) -> Walk:
    """Both Keras models in the NumPy reference, every tensor of the source compared with the
    target's of the same layer name, call and output: the first that fails, in call order."""
    from ..runtime.engines import KerasReference

    reference, noise = captured(source, source_arrays)
    theirs = KerasReference(target).run(target_arrays, capture=True).tensors
    graph = keras_graph.as_functional(source)
    compared = held = 0
    first = None
    for layer, k in keras_graph.call_order(graph):
        for key in _keys(reference.tensors, layer.name, k):
            if key not in theirs:
                continue
            compared += 1
            expected = np.asarray(reference.tensors[key])
            result = compare_output(layer.name, expected, theirs[key], tolerances.default,
                                    tolerances.nan_policy, noise=noise.get(key),
                                    groups=_in_rows(groups, expected))
            held += result.passed
            if not result.passed and first is None:
                first = {"layer": layer.name, "class": layer.class_name, "call": k,
                         "output": key[2], "max_abs": result.max_abs,
                         "mismatched": result.mismatched, "total": result.total,
                         "compared_in": "the target's layers of the same name"}
    walk = Walk(first, held, compared, len(theirs))
    if compared == 0:
        walk.notes.append("no layer of the target has a name the source's layers have: "
                          "nothing to compare layer by layer")
    return walk
