"""Sizes for the free dims of a check's seeded inputs that the model can run at.

A free height, width or sequence length has no size the file states; a check that invents one
may hand a pool a window larger than its input (issue 18, finding 6). So the sizes come, in
order, from what the model says of itself and from its own layers:

1. sizes its metadata records: Ultralytics' ``imgsz`` (``[640, 640]``), modelport's own pinned
   shapes (``modelport.input_shapes``);
2. a ladder (8, 16, 32, ...) with each rung raised to at least the largest (dilated) window of a
   convolution or pool and rounded up to a multiple of the product of their strides (capped:
   the runs grow with the square of the size), so that every stride divides evenly and every
   window fits. A fixed crop counts as a window one longer than what it cuts: SpliceAI's
   ``Cropping1D(5000)`` on a free length runs at 10001 and above, nothing less.

``validate`` tries them in turn while the *source* cannot run at one (or gives an empty
output), and refuses with exit 4, naming the inputs and the sizes tried, when none runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..models import LayersModel, TfjsGraph

LADDER = (8, 16, 32, 64, 128, 256)
MAX_STRIDE = 64  # the total stride a size is rounded to at most
TRIES = 4  # sizes tried at most
_SPATIAL_ONNX = {"Conv", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool", "LpPool"}
_SPATIAL_TF = {"Conv2D", "DepthwiseConv2dNative", "MaxPool", "AvgPool", "Conv3D",
               "MaxPool3D", "AvgPool3D", "FusedConv2D", "FusedDepthwiseConv2dNative"}


def candidates(model: object) -> list[int]:
    """The free-dim sizes to try for ``model`` (an ONNX ``onnx_ir.Model``, a ``TfjsGraph`` or a
    ``LayersModel``), best first; never empty."""
    stride, window = _strides_and_windows(model)
    stride = max(1, min(stride, MAX_STRIDE))
    out: list[int] = [s for s in _metadata_sizes(model) if s > 0]
    rounded = []
    for rung in LADDER:
        size = math.ceil(max(rung, window) / stride) * stride
        rounded.append(size)
        if size not in out:
            out.append(size)
    # The strides multiply over the whole network, yet a network that halves one axis only
    # (a text recogniser's height: PaddleOCR's [2, 1] strides) runs at less than their product
    # and may fail above it (PP-OCRv3's recogniser takes heights up to 48, not 64): the largest
    # rung below the rounded ones that every window fits is the last try.
    below = [r for r in LADDER if window <= r < min(rounded) and r not in out]
    out = out[:TRIES]
    if below and len(out) < TRIES:
        out.append(below[-1])
    return out


def _strides_and_windows(model: object) -> tuple[int, int]:
    """The product of the convolutions' and pools' largest strides, and their largest
    dilated window."""
    pairs: Iterable[tuple[int, int]]
    if isinstance(model, TfjsGraph):
        pairs = _tf_pairs(model)
    elif isinstance(model, LayersModel):
        pairs = _keras_pairs(model)
    elif hasattr(model, "graph"):
        pairs = _onnx_pairs(model)
    else:
        pairs = []
    stride, window = 1, 1
    for s, w in pairs:
        stride *= max(1, s)
        window = max(window, w)
    return stride, window


def _onnx_pairs(model: object) -> Iterable[tuple[int, int]]:
    import onnx_ir as ir

    graph = model.graph  # type: ignore[attr-defined]
    for node in ir.traversal.RecursiveGraphIterator(graph):
        if node.op_type not in _SPATIAL_ONNX:
            continue
        attrs = node.attributes
        strides = list(attrs["strides"].value) if "strides" in attrs else [1]
        dilations = list(attrs["dilations"].value) if "dilations" in attrs else [1]
        kernel: list[int] = list(attrs["kernel_shape"].value) if "kernel_shape" in attrs else []
        if not kernel and len(node.inputs) > 1 and node.inputs[1] is not None \
                and node.inputs[1].shape is not None:
            kernel = [d for d in list(node.inputs[1].shape)[2:] if isinstance(d, int)]
        yield max(strides or [1]), _dilated(kernel, dilations)


def _tf_pairs(graph: TfjsGraph) -> Iterable[tuple[int, int]]:
    from ..models.tfjs_graph import attr_list, attr_str, input_name

    for node in graph.all_nodes():
        if node.op not in _SPATIAL_TF:
            continue
        nhwc = (attr_str(node, "data_format", "NHWC") or "NHWC").endswith("C")
        strides = attr_list(node, "strides", "i") or [1, 1, 1, 1]
        spatial = strides[1:-1] if nhwc else strides[2:]
        dilations = attr_list(node, "dilations", "i")
        dilations = (dilations[1:-1] if nhwc else dilations[2:]) if dilations else [1]
        kernel = attr_list(node, "ksize", "i")
        if kernel:
            kernel = kernel[1:-1] if nhwc else kernel[2:]
        elif len(node.inputs) > 1:
            weights = graph.weights.get(input_name(node.inputs[1])[0])
            kernel = list(weights.shape[:-2]) if weights is not None else []
        yield max(spatial or [1]), _dilated(kernel, dilations)


def _keras_pairs(model: LayersModel) -> Iterable[tuple[int, int]]:
    for layer in model.iter_layers():
        cfg = layer.config or {}
        if "cropping" in cfg:  # Cropping1D/2D/3D: each axis keeps what is left after its cuts
            yield 1, _cropped(cfg["cropping"]) + 1
            continue
        strides = _ints(cfg.get("strides"))
        kernel = _ints(cfg.get("kernel_size") or cfg.get("pool_size"))
        if not kernel and not strides:
            continue
        yield max(strides or [1]), _dilated(kernel, _ints(cfg.get("dilation_rate")) or [1])


def _cropped(cropping: object) -> int:
    """The most a Keras ``cropping`` config cuts from one axis: an int cuts it from both ends
    (of every axis), a pair is one axis's two ends, a list of pairs one pair per axis."""
    if isinstance(cropping, int):
        return 2 * cropping
    items = list(cropping) if isinstance(cropping, (list, tuple)) else []
    if items and all(isinstance(v, int) for v in items):
        return sum(items)  # Cropping1D's (start, end)
    return max((sum(_ints(axis)) if not isinstance(axis, int) else 2 * axis
                for axis in items), default=0)


def _ints(value: object) -> list[int]:
    if isinstance(value, int):
        return [value]
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value if isinstance(v, int)]
    return []


def _dilated(kernel: list[int], dilations: list[int]) -> int:
    if not kernel:
        return 1
    if len(dilations) < len(kernel):
        dilations = [dilations[0] if dilations else 1] * len(kernel)
    return max((k - 1) * d + 1 for k, d in zip(kernel, dilations))


def _metadata_sizes(model: object) -> list[int]:
    """Sizes the model's metadata records for its inputs' free dims (see the module)."""
    from ..converters.pinning import PINNED_KEY
    from ..converters.recorded_shapes import SIZE_KEYS, metadata

    meta = metadata(model)
    out: list[int] = []
    for key in (*SIZE_KEYS, PINNED_KEY):
        value = meta.get(key)
        sizes = _ints(value) if not isinstance(value, dict) else [
            d for dims in value.values() for d in _ints(dims)[2:]]
        for s in sizes:
            if s > 0 and s not in out:
                out.append(s)
    return out[:1]
