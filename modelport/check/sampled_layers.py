"""A sample of the source's layer outputs, looked for in the result on every check.

A softmax or a global pooling at the end of a network can squash an error to below the
output's rounding noise: one convolution weight moved by 0.5 in MobileNetV2 passes the output
comparison while most of the layer outputs after it are no longer in the file. So the default
check of a Keras source against an ONNX file (``validate``, and ``convert``'s check) also
compares a handful of intermediate values, as ``--per-layer`` does after a failure
(``intermediates``), at a bounded cost:

- **The sample** (``plan``): SAMPLE layers spread evenly along the call order, always including
  the last computing layer before each output and before each selecting operation (an
  arg-max, a top-k, a comparison, a rounding: like a saturated output it hides an error in
  what it reads, so its being held excuses nothing; MoveNet's centre heatmap, a reduction's
  maximum). Squashing layers between a computing layer and an output (a softmax, a sigmoid,
  an exponential: ``SQUASHING``) are walked through as layers computing nothing are, and are
  held excusing nothing either (Magika's softmax, spelled out as exp(x - max(x)) / sum); for each,
  the layers it reads and those up to REACH calls after it are kept too (the rule below needs
  them). Layers that compute nothing at
  inference (Dropout and the like) and layers no output depends on are never sampled.
- **No extra reference run**: the check already runs the source's NumPy reference in float32 on
  every row and in float64 on one row per probe (its rounding noise); ``Keeping`` wraps that
  engine and keeps the sampled tensors of both runs, on the rows the noise is measured on.
- **The file's values, cheaply**: the ONNX graph without its large initializers, every value a
  node computes marked as an output, the initializers fed as inputs (no copy of the weights, a
  session built in milliseconds), run in onnxruntime on those rows only
  (``file_values``). A Keras tensor is held when a value holds it under the check's noise rule
  (``intermediates.Values``: by value, in any layout the layout pass produces).

**The verdict.** A converter may fuse a layer into the next one (BatchNormalization folded
into its Conv, a ZeroPadding2D into the Conv's pads), so a sampled layer the file does not hold
is not by itself a fault. It fails the check when none of the layers up to REACH calls after it
holds either (an error persists; a fused layer's successor is held again), or when nothing
but the model's outputs comes after it (a squashing output is exactly what hides an error, so
its being held says nothing). The report then names where the divergence starts: walking back
from the sampled layer through the layers it reads that the file does not hold, the first whose
inputs the file holds (``first_not_held``, with the file's nearest value, the nodes computing
it and their weights, as ``--per-layer`` reports them).

A model whose initializers take more than MAX_WEIGHT_BYTES, or that onnxruntime cannot run
with its values marked, is not compared, and the report says why.

**Raised files, the other way round.** A Keras file raised from an ONNX source (``.h5``,
``.keras``) hides one wrong weight behind a saturated softmax just as well (Magika: a Dense
kernel's column negated passed the output comparison), so there the roles turn: the written
file's layers are sampled, its NumPy reference runs again on the first row of each probe in
float32 and float64 keeping their tensors (``compare_raised``: a few rows, so its memory is
bounded whatever the check's batch), and they are looked for among the source's values (an
ONNX source's in onnxruntime, a graph-model's in the NumPy TF reference) by the same rule.
Only the layers raising bound to an ONNX value are sampled (``Raised.bound``): a composition's
inner layers are held by no value of the source.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelportError
from ..models import LayersModel, TfjsGraph, keras_graph
from .intermediates import Held, Values, Walk, _blamed, _sentence, closure, mark_all, tfjs_values
from .parity import Intermediates, Tolerances

if TYPE_CHECKING:
    import onnx_ir as ir

    from ..runtime.engines import InputSpec, KerasReference

Call = tuple[str, int]  # a Keras call: (layer, call index)
Key = tuple[str, int, int]  # a Keras tensor: (layer, call, output index)
SAMPLE = 8  # sampled layers per check: about +10-25% of a check's time (bench/)
REACH = 2  # calls after an unheld sampled layer that must be unheld too for it to fail
MAX_WEIGHT_BYTES = 500 << 20  # past this the file's values are not compared (cost, memory)
INLINE_BYTES = 1024  # initializers smaller than this stay in the graph (shapes, axes, pads)
PASS_THROUGH = frozenset({"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                          "GaussianNoise", "GaussianDropout", "AlphaDropout", "Identity",
                          "ActivityRegularization"})  # the identity at inference
# operations whose output moves only when their input crosses a boundary (an arg-max's pick,
# a comparison, a rounding): like a saturated output they hide an error before them, so the
# layer they read is sampled as an output's is, and their being held says nothing
SELECTING = frozenset({"Argmax", "Argmin", "TopK", "Equal", "NotEqual", "Greater",
                       "GreaterEqual", "Less", "LessEqual", "Round", "Floor", "Ceil",
                       "Max", "Min"})  # a reduction's max/min picks one element per slice
# layers that squash most of their input's range into rounding noise (a softmax of logits far
# apart, an exponential of differences from a maximum): between them and an output, an error
# is as hidden as behind the output itself, so the squashing tail of an output is walked
# through to the layers it reads, and its being held excuses nothing (Magika's softmax,
# written by jax2tf as exp(x - max(x)) / sum: one logit column negated passed otherwise)
SQUASHING = frozenset({"Softmax"})
SQUASHING_ACTIVATIONS = frozenset({"softmax", "sigmoid", "hard_sigmoid", "exponential", "tanh",
                                   "softsign", "log_softmax"})


@dataclass
class Plan:
    """The sampled calls of a Keras model and what the verdict needs about its graph."""

    model: LayersModel
    graph: LayersModel  # the model as a functional graph
    sampled: list[Call]
    order: list[Call]
    producers: dict[Call, list[Call]]
    consumers: dict[Call, list[Call]]
    outputs: set[Call]
    inputs: set[Call]
    relevant: set[Call]  # calls some output depends on
    selecting: set[Call] = field(default_factory=set)  # calls of SELECTING operations
    tail: set[Call] = field(default_factory=set)  # squashing calls an output reads through

    def kept(self) -> set[Call]:
        """The calls whose tensors the verdict reads: the sampled ones, those they read and
        those up to REACH calls after them."""
        calls = set(self.sampled)
        for call in self.sampled:
            calls.update(self.producers.get(call, ()))
            calls.update(self.after(call))
        return calls - self.inputs

    def after(self, call: Call) -> set[Call]:
        """The calls up to REACH steps after ``call`` that an output depends on, the outputs
        themselves aside."""
        found: set[Call] = set()
        edge = [call]
        for _ in range(REACH):
            edge = [c for e in edge for c in self.consumers.get(e, ())
                    if c in self.relevant and c not in found and c not in self.selecting
                    and c not in self.tail]
            found.update(edge)
        return found - self.outputs


def plan(model: LayersModel, count: int | None = None,
         eligible: Collection[str] | None = None) -> Plan:
    """The calls to sample in ``model`` (see the module): the last computing call before each
    output, then calls spread evenly along the call order, ``count`` (default SAMPLE) in all;
    only layers in ``eligible`` where given (a raised file: those bound to an ONNX value)."""
    count = SAMPLE if count is None else count
    graph = keras_graph.as_functional(model)
    order = [(layer.name, k) for layer, k in keras_graph.call_order(graph)]
    classes = {layer.name: layer.class_name for layer in graph.layers}
    producers = {(layer.name, k): list(dict.fromkeys((r.layer, r.node)
                                                     for r in layer.inbound_nodes[k].inputs()))
                 for layer, k in keras_graph.call_order(graph)}
    consumers: dict[Call, list[Call]] = defaultdict(list)
    for call in order:
        for p in producers[call]:
            consumers[p].append(call)
    outputs = {(r.layer, r.node) for r in graph.outputs}
    inputs = {(r.layer, r.node) for r in graph.inputs}
    relevant = closure(list(outputs), producers)
    last: list[Call] = []
    selecting = {c for c in order if classes.get(c[0]) in SELECTING}
    squashing = {layer.name for layer in graph.layers if layer.class_name in SQUASHING or (
        layer.class_name == "Activation"
        and layer.config.get("activation") in SQUASHING_ACTIVATIONS)}
    tail: set[Call] = set()
    ends = [o for o in order if o in outputs] + [c for c in order if c in selecting]
    for out in ends:
        todo = list(producers.get(out, ()))
        while todo:  # through the layers that compute nothing or squash, to one that computes
            call = todo.pop(0)
            if call in inputs or call in outputs or call in last or call in selecting or \
                    call in tail:
                continue
            if call[0] in squashing and out in outputs:
                tail.add(call)
                todo.extend(producers.get(call, ()))
            elif classes.get(call[0]) in PASS_THROUGH or \
                    (eligible is not None and call[0] not in eligible):
                todo.extend(producers.get(call, ()))
            else:
                last.append(call)
    candidates = [c for c in order if c in relevant and c not in outputs and c not in last
                  and classes.get(c[0]) not in PASS_THROUGH and c not in selecting
                  and c not in tail and (eligible is None or c[0] in eligible)]
    spread = max(count - len(last), 0)
    picks = sorted({int((i + 0.5) * len(candidates) / spread) for i in range(spread)}
                   if candidates and spread else set())
    chosen = set(last[:count]) | {candidates[i] for i in picks}
    return Plan(model, graph, [c for c in order if c in chosen], order, producers, dict(consumers),
                outputs, inputs, relevant, selecting, tail)


class Keeping:
    """The source's NumPy reference engine, unchanged for the check, that keeps the planned
    calls' tensors of its float32 runs and of its float64 runs (``rounding``), on the rows the
    check measures the rounding noise on, for ``compare``."""

    def __init__(self, engine: KerasReference, calls: set[Call], sizes: list[int]) -> None:
        self.engine = engine
        self.label = engine.label
        self.calls = calls
        self.sizes = sizes  # each probe's rows
        # per run: the rows kept (None: all), the source's arrays and tensors on them
        self.narrow: list[tuple[np.ndarray | None, list[np.ndarray], dict[Key, np.ndarray]]] = []
        self.wide: list[dict[Key, np.ndarray]] = []

    def inputs(self) -> list[InputSpec]:
        """The engine's inputs."""
        return self.engine.inputs()

    def output_names(self) -> list[str]:
        """The engine's output names."""
        return self.engine.output_names()

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """The reference's outputs on ``arrays``; the planned tensors are kept."""
        from ..runtime.keras_reference import run

        result = run(self.engine.model, list(arrays), keep=self.calls)  # the rest is freed
        self.narrow.append((None, list(arrays), self._kept(result.tensors)))
        return result.outputs

    def rounding(self, arrays: list[np.ndarray], outputs: list[np.ndarray]
                 ) -> list[np.ndarray]:
        """``KerasReference.rounding``; the planned tensors of the float64 run are kept, and
        those of the float32 run narrowed to its rows."""
        from ..runtime.engines import deviation
        from ..runtime.keras_reference import run
        from ..runtime.precision import exact

        with exact(jitter=True):
            wide = run(self.engine.model, list(arrays), keep=self.calls)
        i = len(self.wide)
        self.wide.append(self._kept(wide.tensors))
        if i < len(self.narrow):
            self._narrow(i, arrays)
        return deviation(outputs, wide.outputs)

    def _narrow(self, i: int, arrays: list[np.ndarray]) -> None:
        """Run ``i``'s kept tensors on the rows its rounding run took: all of them, or the
        first row of each probe (as the check takes them where probes are joined and large)."""
        _, given, tensors = self.narrow[i]
        if all(np.shape(a) == np.shape(g) for a, g in zip(arrays, given)):
            return
        rows = np.cumsum([0, *self.sizes[:-1]]).astype(int)
        total = sum(self.sizes)
        if not given or any(np.ndim(g) == 0 or np.shape(g)[0] != total or
                            not np.array_equal(g[rows], a)
                            for g, a in zip(given, arrays)):
            self.narrow[i] = (None, given, {})  # rows not recognised: nothing to compare
            return
        self.narrow[i] = (rows, [g[rows] for g in given], {
            key: value[rows] for key, value in tensors.items()
            if value.ndim and value.shape[0] == total})

    def _kept(self, tensors: dict[Key, Any]) -> dict[Key, np.ndarray]:
        return {key: value for key, value in tensors.items()
                if key[:2] in self.calls and isinstance(value, np.ndarray)}


def _take(value: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    return value if rows is None else value[rows]


def file_values(target: ir.Model, arrays: list[np.ndarray], *, device: str = "cpu"
                ) -> dict[str, np.ndarray]:
    """Every tensor value ``target``'s main graph computes on ``arrays`` (its inputs, in
    order), by name: the graph is serialized without its initializers of INLINE_BYTES or more,
    which are fed as inputs instead (no copy of the weights), with every node's outputs marked
    as graph outputs."""
    from ..models.onnx_model import declare_as_inputs, skeleton
    from ..runtime.engines import OnnxRuntime

    proto, weights = skeleton(target, min_bytes=INLINE_BYTES)
    proto = declare_as_inputs(proto, weights)
    mark_all(proto.graph)
    engine = OnnxRuntime(proto.SerializeToString(), device=device)
    by_name = {v.name: v for v in weights}
    given = iter(arrays)
    feed = []
    for spec in engine.inputs():
        weight = by_name.get(spec.name)
        const = None if weight is None else weight.const_value
        feed.append(next(given) if const is None else const.numpy())
    got = zip(engine.output_names(), engine.run(feed))
    return {name: value for name, value in got if isinstance(value, np.ndarray)}


def skip_reason(target: ir.Model | TfjsGraph) -> str | None:
    """Why ``target``'s values are not compared on every check, or None."""
    size = target.weight_bytes() if isinstance(target, TfjsGraph) else sum(
        v.const_value.nbytes for v in target.graph.initializers.values()
        if v.const_value is not None)
    if size > MAX_WEIGHT_BYTES:
        return (f"its weights take {size / 2**20:.0f} MB, past the "
                f"{MAX_WEIGHT_BYTES >> 20} MB up to which the check compares them on every "
                "run; --per-layer compares them after a mismatch")
    return None


@dataclass
class _Run:
    """One run of the comparison: the source's kept tensors and their noise, the file's
    values, and each planned call's verdict once looked for."""

    tensors: dict[Key, np.ndarray]
    noise: dict[Key, np.ndarray]
    values: Values
    found: dict[Key, Held | None] = field(default_factory=dict)

    def held(self, call: Call) -> bool | None:
        """Whether the file holds every output of ``call``; None: none was kept."""
        keys = [k for k in self.tensors if k[:2] == call]
        if not keys:
            return None
        for key in keys:
            if key not in self.found:
                self.found[key] = self.values.find(self.tensors[key], self.noise.get(key))
        return all(self.found[k] is not None for k in keys)


def compare(p: Plan, keeping: Keeping, target_feeds: list[list[np.ndarray]],
            target: ir.Model | TfjsGraph, tolerances: Tolerances, *, device: str = "cpu",
            raised: bool = False) -> Intermediates:
    """The sampled calls of ``p`` looked for in ``target``'s own values on the rows
    ``keeping`` kept of each run (``target_feeds``: the check's feeds in the file's layout),
    judged as the module says. ``raised``: ``p`` is the written Keras file's and ``target``
    the ONNX source it was raised from (the roles turned round; the report says so)."""
    names = [layer for layer, _k in p.sampled]
    report = Intermediates(layers=names, raised=raised)
    if len(keeping.narrow) != len(target_feeds) or len(keeping.wide) != len(target_feeds):
        report.skipped = "the source's reference did not run once per feed"
        return report
    for (rows, source_arrays, tensors), wide, feed in zip(keeping.narrow, keeping.wide,
                                                          target_feeds):
        arrays = [_take(x, rows) for x in feed]
        try:
            values = tfjs_values(target, arrays) if isinstance(target, TfjsGraph) else \
                file_values(target, arrays, device=device)
        except ModelportError as e:
            report.skipped = f"onnxruntime cannot run the file with its values marked: {e}"
            return report
        run = _Run(tensors, _noise(tensors, wide), Values(values, tolerances,
                                                          _groups(rows, arrays, keeping)))
        failed = _judge(p, run, report)
        if failed is not None:
            report.first_not_held = _locate(p, failed, run, source_arrays, target, raised)
            return report
    return report


def compare_raised(p: Plan, engine: KerasReference,
                   feeds: list[tuple[list[np.ndarray], list[np.ndarray]]],
                   source: ir.Model | TfjsGraph, tolerances: Tolerances, *,
                   device: str = "cpu") -> Intermediates:
    """The sampled calls of ``p``, a Keras file raised from ``source``, looked for among the
    source's own values (see the module): ``engine`` (the file's NumPy reference) runs each of
    ``feeds`` (a few rows: the source's arrays, the file's) in float32 and float64 keeping
    them, and ``compare`` judges them, the roles turned round."""
    first = feeds[0][1][0] if feeds and feeds[0][1] else None
    rows = int(np.shape(first)[0]) if first is not None and np.ndim(first) else 0
    keeping = Keeping(engine, p.kept(), [1] * rows if rows > 1 else [])  # a row per probe
    for _, arrays in feeds:
        keeping.rounding(arrays, keeping.run(arrays))
    return compare(p, keeping, [fa for fa, _ in feeds], source, tolerances, device=device,
                   raised=True)


def _judge(p: Plan, run: _Run, report: Intermediates) -> Call | None:
    """Count the sampled calls the file holds; the first whose absence is a fault (see the
    module), or None."""
    report.compared = report.held = 0
    report.absent = []
    failed = None
    for call in p.sampled:
        held = run.held(call)
        if held is None:
            continue
        report.compared += 1
        if held:
            report.held += 1
            continue
        if any(run.held(c) for c in p.after(call)):
            report.absent.append(call[0])
        elif failed is None:
            failed = call
    return failed


def _locate(p: Plan, call: Call, run: _Run, source_arrays: list[np.ndarray],
            target: ir.Model | TfjsGraph, raised: bool = False) -> dict[str, Any]:
    """Where the divergence seen at ``call`` starts: walking back through the calls it reads
    that the file does not hold (every tensor of the source now captured on the kept rows), the
    first whose inputs the file holds; described as ``--per-layer`` describes it (``raised``:
    the calls are the written file's, the values the source's)."""
    from .divergence import captured

    reference, noise = captured(p.model, source_arrays)
    run.tensors, run.noise = dict(reference.tensors), noise
    position = {c: i for i, c in enumerate(p.order)}
    current, seen = call, {call}
    while True:
        unheld = [c for c in p.producers.get(current, ()) if c not in p.inputs
                  and c not in seen and run.held(c) is False]
        if not unheld:
            break
        current = max(unheld, key=position.__getitem__)
        seen.add(current)
    key = next(k for k in sorted(run.tensors) if k[:2] == current and run.found.get(k) is None)
    near = run.values.nearest(run.tensors[key], run.noise.get(key))
    order = keras_graph.call_order(p.graph)
    # a raised file's layers are named after the source's nodes: no converter's naming to read
    first = _blamed(p.graph, order, key, int(np.size(run.tensors[key])), near, run.found,
                    None if raised else target)
    if "first_unheld" in first:
        # --per-layer's second guess (a node named after an earlier layer computes past its
        # held output) is for a whole walk; here the rule's own answer is named
        layer = p.graph.layer(key[0])
        first.update({"layer": layer.name, "class": layer.class_name, "call": key[1],
                      "output": key[2]})
        del first["first_unheld"], first["owner_node"]
    held = sum(h is not None for h in run.found.values())
    first["compared_in"] = ("the source's own values (the written file's layers, sampled on "
                            "every check)" if raised else
                            "the file's own values (sampled on every check)")
    first["sampled"] = call[0]
    walk = Walk(first, held, len(run.found), len(run.values.values))
    if raised:
        walk.values_of, walk.tensors_of = "the source", "the written file's "
    first["sentence"] = _sentence(walk)
    return first


def _noise(narrow: dict[Key, np.ndarray], wide: dict[Key, np.ndarray]) -> dict[Key, np.ndarray]:
    """Each kept tensor's float32 rounding noise: its distance to the float64 run's."""
    noise = {}
    for key, value in narrow.items():
        other = wide.get(key)
        if other is None or np.shape(other) != value.shape or value.dtype.kind != "f":
            continue
        both = np.isfinite(value) & np.isfinite(other)
        noise[key] = np.where(both, np.abs(value.astype(np.float64) - other), 0.0)
    return noise


def _groups(rows: np.ndarray | None, arrays: list[np.ndarray], keeping: Keeping
            ) -> list[slice] | None:
    """Each probe's rows of the compared batch: one row each where rows were taken, each
    probe's where they are joined, else the whole."""
    if rows is not None:
        return [slice(i, i + 1) for i in range(len(rows))]
    sizes = keeping.sizes
    if len(sizes) > 1 and arrays and np.ndim(arrays[0]) and \
            np.shape(arrays[0])[0] == sum(sizes):
        starts = np.cumsum([0, *sizes])
        return [slice(int(a), int(b)) for a, b in pairwise(starts)]
    return None
