"""What the NumPy Keras reference holds when the check runs a layers model, in bytes, sized
from the layers' static shapes before anything runs (issue 19's budget, for the Keras side).

The reference (``runtime.keras_reference``) frees each tensor once its last reader has run,
so a run holds the peak of the tensors alive at once in its call order (``budget.steps_peak``,
the liveness that sizes onnxruntime too), with a nested model's own peak while it runs and the
tensors the check asks it to keep (``keep``: the sampled layers') to the end, and what a
layer's own computation holds within its call (``_work``: a convolution's im2col). The check's
float64 noise run is the largest: REFERENCE_BYTES per element, and TEMPORARIES tensors of the
largest size beside them for what a layer computes before it hands its output on (the
random-rounding factors, a widened input). The comparisons that keep every tensor of a run
(the per-layer profile, ``layer_errors.profile``, and the localisation of a mismatch) hold the
float32 and float64 runs and a float64 noise per tensor at once, by the sum of every tensor
(``elements``): PROFILE_BYTES per element.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable
from dataclasses import dataclass

import numpy as np

from .. import budget
from ..models import Layer, LayersModel

REFERENCE_BYTES = 8  # the float64 noise run
TEMPORARIES = 2  # tensors of the largest size a layer holds beside them, in float64
KEPT_BYTES = 4  # a kept tensor of a float32 run, held while the float64 run runs
PROFILE_BYTES = 24  # float32 run (4) + float64 run (8) + float64 noise (8) + temporaries (4)


@dataclass(frozen=True)
class KerasValues:
    """The elements of the tensors the reference computes on a feed: all of them, the most
    alive at once (``peak``), the largest one, and the outputs."""

    elements: int
    largest: str
    largest_shape: list[int]
    output_elements: int
    peak: int = 0
    kept: int = 0  # elements of the tensors ``keep`` names


def keras_values(model: LayersModel, feed: list[np.ndarray],
                 keep: Collection[tuple] = ()) -> KerasValues | None:
    """The tensors of ``model`` (nested models as their outputs, and their own peak while they
    run) on ``feed`` (one array per input, in input order), from ``keras_shapes``; ``keep``
    names (layer, call) or (layer, call, output) tensors the run keeps to its end. None where
    a shape cannot be inferred (no verdict: the run itself reports)."""
    return _values(model, [tuple(int(d) for d in np.shape(x)) for x in feed], keep)


def _values(model: LayersModel, shapes: list[tuple[int, ...]], keep: Collection[tuple] = ()
            ) -> KerasValues | None:
    from ..models import keras_graph, keras_shapes

    try:
        graph = keras_graph.as_functional(model)
        given = dict(zip((ref.layer for ref in graph.inputs), shapes))
        specs = keras_shapes.infer(graph, given)
        order = keras_graph.call_order(graph)
    except Exception:  # noqa: BLE001 - no shapes, no verdict: the run itself reports
        return None
    sizes: dict[Hashable, int] = {}
    elements, largest, shape = 0, "", [0]
    for key, spec in specs.items():
        dims = list(spec.shape)
        if any(d is None for d in dims):
            continue  # a size only the run knows: not counted
        count = math.prod(max(int(d or 0), 0) for d in dims)
        sizes[key] = count
        elements += count
        if count > math.prod(shape):
            largest, shape = str(key[0]), [int(d or 0) for d in dims]
    steps = _steps(graph, order, specs, sizes)
    outputs = [(ref.layer, ref.node, ref.tensor) for ref in graph.outputs]
    named = [k for k in specs if k in keep or k[:2] in keep]
    peak = budget.steps_peak(steps, sizes, [*outputs, *named])
    return KerasValues(elements, largest, shape, sum(sizes.get(k, 0) for k in outputs), peak,
                       sum(sizes.get(k, 0) for k in named))


def _steps(graph: LayersModel, order: list, specs: dict, sizes: dict[Hashable, int]
           ) -> list[tuple[Collection[Hashable], Collection[Hashable]]]:
    """The reference's run of ``graph`` as liveness steps (tensors read, tensors made), in
    its order (``keras_graph.call_order``, the dependency order it runs in): the inputs
    first; a nested model's own peak made and freed within its call."""
    steps: list[tuple[Collection[Hashable], Collection[Hashable]]] = [
        ((), [(ref.layer, ref.node, ref.tensor) for ref in graph.inputs])]
    by_call: dict[tuple, list[Hashable]] = {}
    for key in specs:
        by_call.setdefault(key[:2], []).append(key)
    for layer, k in order:
        refs = layer.inbound_nodes[k].inputs()
        reads = {(r.layer, r.node, r.tensor) for r in refs}
        made = list(by_call.get((layer.name, k), []))
        work = _work(layer, [specs.get((r.layer, r.node, r.tensor)) for r in refs],
                     [specs[key] for key in made])
        if work:
            sizes[("work", layer.name, k)] = work
            made.append(("work", layer.name, k))
        if layer.model is not None:
            inner = _nested_peak(layer.model, [specs.get((r.layer, r.node, r.tensor))
                                               for r in refs])
            if inner:
                sizes[("nested", layer.name, k)] = inner
                made.append(("nested", layer.name, k))
        steps.append((reads, made))
    return steps


CONVOLUTIONS = {f"{kind}{n}D" for kind in ("Conv", "DepthwiseConv", "SeparableConv")
                for n in (1, 2, 3)}
TRANSPOSED = {f"Conv{n}DTranspose" for n in (1, 2, 3)}


def _work(layer: Layer, inputs: list, outputs: list) -> int:
    """The elements a layer's own computation holds beside its input and output, made and
    freed within its call (0: within TEMPORARIES): a convolution's im2col matrix (every
    window of its padded input, copied by ``tensordot``: output positions x kernel taps x
    input channels, for the batch rows computed at once, ``window_rows``; a transposed one's
    every tap's contribution: input positions x taps x filters), its padded input, and a copy
    of its output (groups joined, layout moved)."""
    cls = layer.class_name
    if cls in ATTENTION:
        return _attention_work(layer, inputs)
    if cls not in CONVOLUTIONS | TRANSPOSED or len(inputs) != 1 or len(outputs) != 1:
        return 0
    x, y = inputs[0], outputs[0]
    if x is None or any(d is None for d in (*x.shape, *y.shape)) or len(x.shape) < 3:
        return 0
    first = layer.config.get("data_format") == "channels_first"
    cin, cout = (int(x.shape[1]), int(y.shape[1])) if first else (int(x.shape[-1]),
                                                                  int(y.shape[-1]))
    size = layer.config.get("kernel_size", 1)
    taps = math.prod(size) if isinstance(size, (list, tuple)) else int(size) ** (len(x.shape) - 2)
    xs, ys = math.prod(int(d) for d in x.shape), math.prod(int(d) for d in y.shape)
    if cls in TRANSPOSED:
        windows = xs // max(cin, 1) * taps * cout
    else:
        from ..runtime.keras_reference.conv import DEPTHWISE_COPIES, window_rows

        batch = max(int(y.shape[0]), 1)
        per_row = ys // max(cout, 1) // batch * taps * cin
        if not cls.startswith("Conv"):
            # einsum (depthwise) copies the windows twice (its transpose, then its BLAS
            # operand): measured 379 MiB in a 5x5 DepthwiseConv2D whose windows are 186 MiB
            per_row *= DEPTHWISE_COPIES
        # the reference computes as many batch rows at once as fit its window bytes; rows
        # counted at float32's itemsize, the most either run holds (float64 takes half)
        windows = window_rows(batch, per_row, np.dtype(np.float32).itemsize) * per_row
        if cls.startswith("SeparableConv"):  # the depthwise result before the pointwise
            windows += ys // max(cout, 1) * cin * int(layer.config.get("depth_multiplier", 1))
    return windows + 2 * xs + ys


ATTENTION = {"MultiHeadAttention", "GroupQueryAttention", "Attention", "AdditiveAttention"}


def _attention_work(layer: Layer, inputs: list) -> int:
    """An attention layer's scores, its softmax and their masked copies (SCORE_COPIES of
    batch x heads x query positions x key positions, in float64 whatever the run), its
    projected query, key and value, and AdditiveAttention's every query-key sum (times the
    features) before its reduction."""
    if len(inputs) < 2 or any(x is None or any(d is None for d in x.shape) for x in inputs[:2]):
        return 0
    query, value = (tuple(int(d) for d in x.shape) for x in inputs[:2])
    if len(query) < 3 or len(value) < 3:
        return 0
    tq, tk = math.prod(query[1:-1]), math.prod(value[1:-1])
    cfg = layer.config
    heads = int(cfg.get("num_heads") or cfg.get("num_query_heads") or 1)
    scores = query[0] * heads * tq * tk * SCORE_COPIES
    features = heads * int(cfg.get("key_dim") or cfg.get("head_dim") or query[-1])
    projected = 3 * query[0] * max(tq, tk) * features
    if layer.class_name == "AdditiveAttention":
        scores += 2 * query[0] * tq * tk * query[-1]
    return scores + projected


SCORE_COPIES = 4


def _nested_peak(model: LayersModel, inputs: list) -> int:
    """A nested model's own peak on inputs of these specs (0: not known)."""
    if any(spec is None or any(d is None for d in spec.shape) for spec in inputs):
        return 0
    found = _values(model, [tuple(int(d) for d in spec.shape) for spec in inputs])
    return 0 if found is None else found.peak
