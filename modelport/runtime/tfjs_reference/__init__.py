"""An independent NumPy executor of TensorFlow op semantics for TF.js graph-models.

``run(graph, inputs, outputs)`` evaluates a ``TfjsGraph`` the way TensorFlow's CPU kernels
define each op (NHWC by default, NCHW where TF allows it), from the ops' documented semantics:
NumPy only, no TensorFlow/TF.js, and no code shared with modelport's ONNX <-> TF.js mapping, so
that it can judge that mapping. It is itself checked against outputs recorded from real
TensorFlow (``fixtures/tf_ops``, made by ``fixtures/make_tf_op_cases.py``).

One family per module, each registering one small function per TF op name in
``_base.REGISTRY``: ``plumbing`` (Placeholder, Const, Identity…), ``conv``, ``matmul``, ``nn``
(pooling, batch norm, LRN), ``activations``, ``elementwise``, ``reduction``, ``transform``
(shapes, slicing, gathering), ``space`` (SpaceToBatchND, BatchToSpaceND), ``creation`` (casts,
shapes, ranges, one-hot) and ``image`` (resizing).

Only the nodes the requested outputs depend on run (control inputs ``^name`` order nothing
here: there is no state). Values are freed once their last reader has run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np

from ...errors import FormatError, ModelportError, UnsupportedError
from ...models import TfjsGraph, TfNode
from ...models.tfjs_graph import attr_type, input_name, order
from ..precision import integral, rounded, widened
from . import (  # noqa: F401
    activations,
    control_flow,
    conv,
    creation,
    elementwise,
    image,
    matmul,
    nms,
    nn,
    plumbing,  # (imported to register their ops)
    reduction,
    space,
    transform,
)
from ._base import NUMPY_DTYPES, REGISTRY, Op

log = logging.getLogger(__name__)

__all__ = ["REGISTRY", "run", "supported_ops"]


def supported_ops() -> set[str]:
    """The TF op names the reference can execute."""
    return set(REGISTRY)


def run(graph: TfjsGraph, inputs: dict[str, np.ndarray] | list[np.ndarray] | np.ndarray,
        outputs: list[str] | None = None) -> list[np.ndarray]:
    """Evaluate ``graph``.

    ``inputs``: a dict keyed by signature key, tensor name (``x:0``) or Placeholder name, or a
    list in ``graph.inputs`` order. ``outputs``: signature keys, tensor names (``name:k``) or
    node names (output 0); default ``graph.outputs``. Returns the outputs in that order.
    """
    graph = control_flow.lifted(graph)  # TF1 frames as v2 ops
    with control_flow.library(graph, run):  # control-flow ops call the graph's functions
        return _run(graph, inputs, outputs)


def _run(graph: TfjsGraph, inputs: dict[str, np.ndarray] | list[np.ndarray] | np.ndarray,
         outputs: list[str] | None) -> list[np.ndarray]:
    feeds = _feeds(graph, inputs)
    wanted = _output_tensors(graph, outputs)
    by_name = {n.name: n for n in graph.nodes}
    needed = _needed(by_name, [input_name(t)[0] for t in wanted])
    readers: dict[str, int] = {}
    for node in graph.nodes:
        if node.name in needed:
            for ref in node.inputs:
                if not ref.startswith("^"):
                    readers[input_name(ref)[0]] = readers.get(input_name(ref)[0], 0) + 1
    keep = {input_name(t)[0] for t in wanted}
    values: dict[str, list[np.ndarray]] = {}
    for node in order(graph):
        if node.name not in needed:
            continue
        args = []
        for ref in node.inputs:
            if ref.startswith("^"):
                continue
            source, k = input_name(ref)
            produced = values[source]
            if k >= len(produced):
                raise FormatError(f"node {node.name!r} reads {ref!r}, but {source!r} "
                                  f"({by_name[source].op}) has {len(produced)} outputs")
            args.append(produced[k])
        value = feeds.get(node.name) if node.op in ("Placeholder", "PlaceholderWithDefault") \
            else graph.weights.get(node.name) if node.op == "Const" else None
        values[node.name] = [_rounded(v) for v in _evaluate(node, args, value)]
        for ref in node.inputs:  # free what no one else reads
            if ref.startswith("^"):
                continue
            source = input_name(ref)[0]
            readers[source] -= 1
            if readers[source] == 0 and source not in keep:
                values.pop(source, None)
    out = []
    for tensor in wanted:
        source, k = input_name(tensor)
        produced = values[source]
        if k >= len(produced):
            raise FormatError(f"output {tensor!r}: {source!r} ({by_name[source].op}) has "
                              f"{len(produced)} outputs")
        out.append(produced[k])
    return out


# Small float results that hold only integers below 2**24 (shape and index arithmetic: sizes
# cast to float, Range limits, floored coordinates) are exact in float32, so no engine rounds
# them; moving them by an ulp would make Range, Floor or a Cast to int take another value.
SMALL = 4096


def _rounded(value: np.ndarray) -> np.ndarray:
    """``precision.rounded`` for an op's result, except for exact small integral floats."""
    if isinstance(value, np.ndarray) and 0 < value.size <= SMALL and integral(value):
        return value
    return rounded(value)


def _evaluate(node: TfNode, args: list[np.ndarray], value: np.ndarray | None
              ) -> list[np.ndarray]:
    fn = REGISTRY.get(node.op)
    if fn is None:
        raise UnsupportedError(
            f"node {node.name!r}: op {node.op!r} is not implemented by the TF reference",
            hint=f"supported: {', '.join(sorted(REGISTRY))}")
    try:
        result = fn(Op(node, args, value))
    except ModelportError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise FormatError(f"{node.op} node {node.name!r}: cannot evaluate it on inputs of "
                          f"shapes {[list(np.shape(a)) for a in args]} "
                          f"({type(e).__name__}: {e})") from e
    except MemoryError:
        raise UnsupportedError(f"{node.op} node {node.name!r}: its result on inputs of shapes "
                               f"{[list(np.shape(a)) for a in args]} does not fit in memory"
                               ) from None
    if isinstance(result, (list, tuple)):
        return [np.asarray(r) for r in result]
    return [np.asarray(result)]


def _needed(by_name: dict[str, TfNode], roots: Iterable[str]) -> set[str]:
    needed: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        if name not in by_name:
            raise FormatError(f"no node named {name!r} in the graph")
        needed.add(name)
        stack.extend(input_name(ref)[0] for ref in by_name[name].inputs if not ref.startswith("^"))
    return needed


def _output_tensors(graph: TfjsGraph, outputs: list[str] | None) -> list[str]:
    if outputs is None:
        return [o.tensor for o in graph.outputs]
    by_key = {o.key: o.tensor for o in graph.outputs}
    names = {n.name for n in graph.nodes}
    tensors = []
    for name in outputs:
        if name in by_key:
            tensors.append(by_key[name])
        elif name in names:
            tensors.append(f"{name}:0")
        elif input_name(name)[0] in names and ":" in name:
            tensors.append(name)
        else:
            raise ValueError(f"unknown output {name!r}: not a signature key "
                             f"({', '.join(by_key) or 'none'}), a node or a tensor of the graph")
    return tensors


def _feeds(graph: TfjsGraph, inputs) -> dict[str, np.ndarray]:
    """Fed values by Placeholder name, converted to the Placeholder's dtype."""
    infos = graph.inputs
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    if isinstance(inputs, dict):
        aliases: dict[str, str] = {}
        for info in infos:
            placeholder = input_name(info.tensor)[0]
            for alias in (info.key, info.tensor, placeholder):
                aliases[alias] = placeholder
        placeholders = {n.name for n in graph.nodes if n.op in ("Placeholder",
                                                                "PlaceholderWithDefault")}
        feeds = {}
        for key, array in inputs.items():
            node = aliases.get(key)
            if node is None and input_name(key)[0] in placeholders and input_name(key)[1] == 0:
                node = input_name(key)[0]
            if node is None:
                raise ValueError(f"unknown input {key!r}; the graph's inputs are "
                                 f"{[i.key for i in infos]} (tensors "
                                 f"{[i.tensor for i in infos]})")
            if node in feeds:
                raise ValueError(f"input {node!r} is fed twice")
            feeds[node] = np.asarray(array)
    else:
        arrays = list(inputs)
        if len(arrays) != len(infos):
            raise ValueError(f"got {len(arrays)} inputs; the graph has {len(infos)}: "
                             f"{[i.key for i in infos]}")
        feeds = {input_name(i.tensor)[0]: np.asarray(a) for i, a in zip(infos, arrays)}
    by_name = {n.name: n for n in graph.nodes}
    for name, array in feeds.items():
        fed = by_name.get(name)
        if fed is None:
            raise FormatError(f"signature input {name!r} is not a node of the graph")
        feeds[name] = _as_dtype(fed, array)
    return feeds


def _as_dtype(node: TfNode, array: np.ndarray) -> np.ndarray:
    name = attr_type(node, "dtype")
    if name not in NUMPY_DTYPES:
        return array
    dtype = widened(np.dtype(NUMPY_DTYPES[name]))
    return array if array.dtype == dtype else array.astype(dtype)
