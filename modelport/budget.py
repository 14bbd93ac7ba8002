"""The memory budget: what a check (or a NumPy reference run) may hold, in bytes, sized before
anything is allocated (issue 19).

Element caps do not bound memory: a 139-byte ONNX file whose ``Expand`` makes one float into
``[8192, 8192]`` stays under any per-tensor cap and still drives the check past 4 GB (both
engines' outputs, the noise run in float64, the comparison's temporaries). So every check sizes
what it will hold, in bytes, and refuses with exit 4 when the total passes the budget:

    DEFAULT_BYTES + WEIGHT_FACTOR * the model's own weight bytes, capped by the memory the
    system has available; ``--max-memory`` (``max_memory=`` in the library, or the environment
    variable MODELPORT_MAX_MEMORY) sets it instead.

A tiny file cannot claim gigabytes unasked; a model whose weights are large is allowed values
in proportion.

An ONNX model's values are counted by liveness (``live_peak``: onnxruntime frees a value after
its last reader); a layers model run in the NumPy Keras reference, which frees the same way,
by the same liveness (``steps_peak``, from ``check.keras_sizes``). ``inspect`` runs the same
sizing on the same inputs (``check.validate.check_budget``), so it says where the check would
refuse.

The same sizes keep ONNX's shape inference from exploding: with data propagation it turns
1-D values into proto dims, so an ``Expand`` to ``[2**24]`` costs gigabytes of protobuf.
``data_prop_safe`` says whether a model's constant shape targets are small enough for it.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Collection, Hashable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import TypeVar

import numpy as np

from .errors import UnsupportedError, UsageError

DEFAULT_BYTES = 640 << 20  # values a check may hold for a model with no weights
WEIGHT_FACTOR = 4  # per byte of the model's own weights
AVAILABLE_SHARE = 0.8  # of MemAvailable, at most
DATA_PROP_MAX = 1 << 16  # elements of a shape-op's result past which data propagation is off
ENV = "MODELPORT_MAX_MEMORY"
# A float32 output is held as: the source's and the target's values, the float64 noise run,
# the noise itself and the comparison's float64 temporaries (parity.compare_output).
OUTPUT_BYTES_PER_ELEMENT = 64
# Every value of a graph is counted as if all were alive at once, twice (the noise run in
# float64 beside the float32 run).
VALUE_FACTOR = 2

V = TypeVar("V", bound=Hashable)  # a value's name (ONNX) or key (Keras), for steps_peak
_limit: ContextVar[int | None] = ContextVar("modelport_max_memory", default=None)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?)[bB]?\s*$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str | int) -> int:
    """``2G``, ``1.5GiB``, ``800M``, ``123456`` (bytes) as a number of bytes."""
    if isinstance(text, int):
        return text
    found = _SIZE.match(str(text))
    if not found:
        raise UsageError(f"--max-memory {text!r}: give bytes, or a size such as 2G or 800M")
    return int(float(found.group(1)) * _UNITS[found.group(2).lower()])


@contextlib.contextmanager
def max_memory(limit: int | str | None) -> Iterator[None]:
    """Within the block, the budget is ``limit`` bytes (None: the default)."""
    token = _limit.set(None if limit is None else parse_size(limit))
    try:
        yield
    finally:
        _limit.reset(token)


def available() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def budget(weight_bytes: int = 0) -> tuple[int, bool]:
    """The budget in bytes for a model with ``weight_bytes`` of weights, and whether the user
    set it (``--max-memory``)."""
    given = _limit.get()
    if given is None and os.environ.get(ENV):
        given = parse_size(os.environ[ENV])
    if given is not None:
        return given, True
    total = DEFAULT_BYTES + WEIGHT_FACTOR * max(0, weight_bytes)
    free = available()
    if free is not None:
        total = min(total, max(int(free * AVAILABLE_SHARE), DEFAULT_BYTES // 4))
    return total, False


def require(needed: int, what: str, *, weight_bytes: int = 0, layer: str | None = None) -> None:
    """Refuse (exit 4) when ``needed`` bytes pass the budget; ``what`` says what holds them."""
    limit, given = budget(weight_bytes)
    if needed <= limit:
        return
    how = ("raise it with --max-memory (max_memory= in the library)" if not given else
           "--max-memory set it; raise it further")
    raise UnsupportedError(
        f"{what} would need {_human(needed)}, past the memory budget of {_human(limit)}",
        layer=layer, hint=f"{how}, or skip the check with --no-validate")


def human(n: int) -> str:
    """``n`` bytes as the budget's messages write them (``1.5 GiB``, ``640 MiB``)."""
    return _human(n)


def _human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


# --- ONNX: constant shape targets, before shape inference ---------------------------------------

_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8,
             14: 8, 15: 16, 16: 2}


def _constants(initializers, nodes) -> dict[str, np.ndarray]:
    """Small constants among ``initializers`` and the Constant nodes of ``nodes``."""
    from onnx import numpy_helper

    found: dict[str, np.ndarray] = {}
    tensors = [(t.name, t) for t in initializers]
    tensors.extend((node.output[0], attr.t) for node in nodes
                   if node.op_type == "Constant" and node.output
                   for attr in node.attribute if attr.name == "value" and attr.HasField("t"))
    for name, t in tensors:
        if math.prod(t.dims) <= 64 and not t.external_data:
            try:
                found[name] = numpy_helper.to_array(t)
            except Exception:  # noqa: BLE001 - an unreadable constant is the reader's to report
                continue
    return found


def shape_op_results(proto) -> Iterator[tuple[str, str, int, int]]:
    """(node name or output, op, elements, bytes per element) of every Expand, ConstantOfShape,
    Tile and Range of ``proto`` (an ``onnx.ModelProto``) whose result's size its constant
    inputs fix: in the main graph, subgraphs and functions."""
    graphs = [proto.graph]
    stack = [proto.graph]
    while stack:
        g = stack.pop()
        for node in g.node:
            for attr in node.attribute:
                subs = ([attr.g] if attr.HasField("g") else []) + list(attr.graphs)
                graphs.extend(subs)
                stack.extend(subs)
    bodies = graphs + list(proto.functions)
    for body in bodies:
        consts = _constants(getattr(body, "initializer", []), body.node)
        for node in body.node:
            yield from _sized(node, consts)


def _sized(node, consts: dict[str, np.ndarray]) -> Iterator[tuple[str, str, int, int]]:
    label = node.name or (node.output[0] if node.output else node.op_type)
    ins = list(node.input)
    try:
        if node.op_type == "Expand" and len(ins) > 1 and ins[1] in consts:
            yield label, node.op_type, _count(consts[ins[1]]), 4
        elif node.op_type == "ConstantOfShape" and ins and ins[0] in consts:
            size = 4
            for attr in node.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    size = _ITEMSIZE.get(attr.t.data_type, 8)
            yield label, node.op_type, _count(consts[ins[0]]), size
        elif node.op_type == "Tile" and len(ins) > 1 and ins[1] in consts:
            base = math.prod(consts[ins[0]].shape) if ins[0] in consts else 1
            yield label, node.op_type, base * _count(consts[ins[1]]), 4
        elif node.op_type == "Range" and len(ins) > 2 and all(i in consts for i in ins[:3]):
            start, limit, delta = (float(np.asarray(consts[i]).reshape(-1)[0]) for i in ins[:3])
            if delta != 0 and math.isfinite(start + limit + delta):
                yield label, node.op_type, max(0, math.ceil((limit - start) / delta)), 4
    except (ValueError, TypeError, OverflowError, IndexError):
        return


def _count(dims: np.ndarray) -> int:
    return math.prod(max(int(d), 1) for d in np.asarray(dims).reshape(-1).tolist())


def data_prop_safe(proto) -> bool:
    """Whether ONNX shape inference with data propagation is safe on ``proto``: no shape op
    makes a constant-sized result past DATA_PROP_MAX elements (data propagation may turn
    such a 1-D value into as many proto dims)."""
    graph = proto.graph
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        dims = vi.type.tensor_type.shape.dim
        if len(dims) == 1 and dims[0].HasField("dim_value") and \
                dims[0].dim_value > DATA_PROP_MAX:
            return False  # a long 1-D value, whatever made it (a folded constant, an input)
    if any(len(t.dims) == 1 and t.dims[0] > DATA_PROP_MAX for t in graph.initializer):
        return False
    return all(n <= DATA_PROP_MAX for _, _, n, _ in shape_op_results(proto))


def check_shape_ops(proto, *, what: str = "the model", weight_bytes: int = 0) -> None:
    """Refuse (exit 4) a model whose constant-sized shape ops alone pass the budget."""
    total = 0
    worst: tuple[str, str, int] | None = None
    for label, op, count, size in shape_op_results(proto):
        total += count * size
        if worst is None or count > worst[2]:
            worst = (label, op, count)
    if worst is not None:
        require(total * VALUE_FACTOR, f"{what}: {worst[1]} {worst[0]!r} makes {worst[2]} "
                f"elements; its values", weight_bytes=weight_bytes)


def infer_shapes(proto, *, check: bool = False, strict: bool = False, what: str = "the model",
                 weight_bytes: int = 0):
    """``onnx.shape_inference.infer_shapes`` with data propagation where ``data_prop_safe``
    (see there), after refusing a model whose shape ops pass the budget."""
    import onnx

    check_shape_ops(proto, what=what, weight_bytes=weight_bytes)
    return onnx.shape_inference.infer_shapes(proto, check_type=check, strict_mode=strict,
                                             data_prop=data_prop_safe(proto))


def value_bytes(vi) -> int | None:
    """The bytes an ONNX ValueInfoProto's tensor holds, where its shape is fully known."""
    tt = vi.type.tensor_type
    dims = tt.shape.dim
    if not tt.HasField("shape") or any(not d.HasField("dim_value") for d in dims):
        return None
    return math.prod(max(d.dim_value, 0) for d in dims) * _ITEMSIZE.get(tt.elem_type, 8)


def value_bytes_per_element(vi) -> int:
    """The bytes of one element of an ONNX ValueInfoProto's tensor."""
    return _ITEMSIZE.get(vi.type.tensor_type.elem_type, 8)


def _subgraph_names(node) -> set[str]:
    """Names a node's subgraphs read (outer-scope values stay alive until the node runs)."""
    names: set[str] = set()
    for attr in node.attribute:
        for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            for inner in g.node:
                names.update(inner.input)
                names |= _subgraph_names(inner)
    return names


def live_peak(graph, sizes: dict[str, int]) -> int:
    """The most bytes of ``sizes`` (value name -> bytes) alive at once when ``graph`` (an
    ``onnx.GraphProto``, nodes in topological order) runs node by node and frees each value
    after its last reader, as onnxruntime's allocation planner does; graph outputs live to
    the end. A value with no known size counts nothing."""
    steps = [({*node.input, *_subgraph_names(node)}, list(node.output)) for node in graph.node]
    return steps_peak(steps, sizes, {vi.name for vi in graph.output})


def steps_peak(steps: Sequence[tuple[Collection[V], Collection[V]]], sizes: Mapping[V, int],
               kept: Collection[V] = ()) -> int:
    """The most bytes of ``sizes`` alive at once when ``steps`` ((values read, values made)
    each, in the order they run) run one by one and each value is freed after its last
    reader; the values of ``kept`` live to the end. Shared by onnxruntime's sizing
    (``live_peak``) and the NumPy Keras reference's (``check.keras_sizes``): both free so."""
    last: dict[V, int] = {}
    for i, (reads, _) in enumerate(steps):
        for name in reads:
            last[name] = i
    end = len(steps)
    for name in kept:
        last[name] = end
    dying: dict[int, int] = {}
    alive = peak = 0
    for i, (_, made) in enumerate(steps):
        for name in made:
            size = sizes.get(name, 0)
            if not size:
                continue
            alive += size
            # a value nothing reads is freed once its step ran
            dying[last.get(name, i)] = dying.get(last.get(name, i), 0) + size
        peak = max(peak, alive)
        alive -= dying.pop(i, 0)
    return max(peak, alive)
