"""Input shapes a model's own metadata records, for routes that need static sizes.

An exporter that knows the size a model was made for often writes it next to a graph whose
height and width it left free: Ultralytics writes ``imgsz`` (``[640, 640]``) and ``batch`` into
every ONNX export (YOLOv5/v8/v11 detectors, NudeNet, ...). A Keras target needs static sizes
(the detector's post-processing computes its anchors from ``Shape``), so a conversion to one
that was given no ``--input-shape`` pins the image inputs to the recorded size and says so
(the report's ``input_shapes`` and a note); ``--input-shape`` chooses others. Only image-like
inputs are pinned: rank 4 with the channels static (NCHW or NHWC) and nothing free but the
batch, height and width.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence

from ..models import TfjsGraph
from .pinning import PINNED_KEY, InputShape, onnx_inputs

SIZE_KEYS = ("imgsz", "img_size", "image_size", "input_size")
BATCH_KEY = "batch"


def metadata(model: object) -> dict[str, object]:
    """An ONNX model's metadata_props or a graph-model's userDefinedMetadata, values read as
    JSON where they are JSON (Ultralytics writes ``'[640, 640]'`` as a string)."""
    raw: dict[str, object] = {}
    if isinstance(model, TfjsGraph):
        raw = dict(model.extra.get("userDefinedMetadata") or {})
    elif hasattr(model, "metadata_props"):
        raw = dict(model.metadata_props)
    out: dict[str, object] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        out[key] = value
    return out


def image_size(meta: dict[str, object]) -> tuple[int, int] | None:
    """The (height, width) the metadata records, if it records one."""
    for key in SIZE_KEYS:
        value = meta.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value, value
        if isinstance(value, list) and len(value) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            return value[0], value[1]
    return None


def recorded_shapes(model: object) -> tuple[InputShape, ...]:
    """``--input-shape`` specs for an ONNX model's (``onnx_ir``) image inputs whose height and
    width are free, from the size its metadata records (see the module); () when it records
    none, when an input is not image-like, or when the model was pinned already."""
    if isinstance(model, TfjsGraph) or not hasattr(model, "graph"):
        return ()
    meta = metadata(model)
    size = image_size(meta)
    if size is None or PINNED_KEY in meta:
        return ()
    batch = meta.get(BATCH_KEY)
    rows = batch if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0 else 1
    specs = []
    for name, shape in onnx_inputs(model):
        dims = _pinned(shape, size, rows)
        if dims is not None:
            specs.append(InputShape(name, dims))
    return tuple(specs)


def _pinned(shape: Sequence[int | str | None] | None, size: tuple[int, int], rows: int
            ) -> tuple[int, ...] | None:
    """An image input's shape with its batch, height and width pinned; None where the input
    is not a rank-4 image with static channels, or has nothing free in its height and width."""
    if shape is None or len(shape) != 4:
        return None
    static = [isinstance(d, int) for d in shape]
    if static[1] and not static[3]:
        spatial = (2, 3)  # NCHW
    elif static[3] and not static[1]:
        spatial = (1, 2)  # NHWC
    else:
        return None
    if not any(not static[i] for i in spatial):
        return None
    dims = [d if isinstance(d, int) else 0 for d in shape]
    for axis, side in zip(spatial, size):
        if static[axis] and dims[axis] != side:
            return None  # the metadata speaks of another size than the graph's
        dims[axis] = side
    if not static[0]:
        dims[0] = rows
    return tuple(dims)
