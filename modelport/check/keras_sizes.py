"""What the NumPy Keras reference holds when the check runs a layers model, in bytes, sized
from the layers' static shapes before anything runs (issue 19's budget, for the Keras side).

The reference (``runtime.keras_reference``) keeps every tensor of the graph until its run
ends, so a run holds the sum of all of them, not a liveness peak. The check's float64 noise
run is the largest: REFERENCE_BYTES per element, and TEMPORARIES tensors of the largest size
beside them for what a layer computes before it hands its output on (the random-rounding
factors, a widened input). Measured on nsfwjs' MobileNetV2 (tfjs-layers) at 3x224x224x3: 66M
elements, whose float64 run grew the process by 534 MiB; this counts 559 MiB. The per-layer
profile (``layer_errors.profile``) holds the float32 and float64 runs and a float64 noise per
tensor at once: PROFILE_BYTES per element.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..models import LayersModel

REFERENCE_BYTES = 8  # the float64 noise run
TEMPORARIES = 2  # tensors of the largest size a layer holds beside them, in float64
PROFILE_BYTES = 24  # float32 run (4) + float64 run (8) + float64 noise (8) + temporaries (4)


@dataclass(frozen=True)
class KerasValues:
    """The elements of every tensor the reference computes on a feed, and the largest."""

    elements: int
    largest: str
    largest_shape: list[int]
    output_elements: int


def keras_values(model: LayersModel, feed: list[np.ndarray]) -> KerasValues | None:
    """Every tensor of ``model`` (nested models as their outputs, as the reference keeps them)
    on ``feed`` (one array per input, in input order), from ``keras_shapes``; None where a
    shape cannot be inferred (no verdict: the run itself reports)."""
    from ..models import keras_graph, keras_shapes

    try:
        graph = keras_graph.as_functional(model)
        given = {ref.layer: tuple(int(d) for d in np.shape(x))
                 for ref, x in zip(graph.inputs, feed)}
        specs = keras_shapes.infer(graph, given)
    except Exception:  # noqa: BLE001 - no shapes, no verdict: the run itself reports
        return None
    elements, largest, shape = 0, "", [0]
    for key, spec in specs.items():
        dims = list(spec.shape)
        if any(d is None for d in dims):
            continue  # a size only the run knows: not counted
        count = math.prod(max(int(d or 0), 0) for d in dims)
        elements += count
        if count > math.prod(shape):
            largest, shape = str(key[0]), [int(d or 0) for d in dims]
    outputs = 0
    for ref in graph.outputs:
        found = specs.get((ref.layer, ref.node, ref.tensor))
        out = [] if found is None else list(found.shape)
        if found is not None and all(isinstance(d, int) for d in out):
            outputs += math.prod(max(int(d or 0), 0) for d in out)
    return KerasValues(elements, largest, shape, outputs)
