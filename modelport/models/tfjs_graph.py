"""TF.js graph-models in memory: GraphDef nodes, their typed attributes, and graph walks.

``TfNode.attrs`` keeps TF's JSON AttrValue encoding as read; the ``attr_*`` readers decode one
value (a malformed one is a FormatError naming node and attribute), the ``a_*`` makers encode
one. Converters and executors use these; the file format (``formats.tfjs_graph``) only reads
and writes them.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field

import numpy as np

from ..errors import FormatError
from .layers import SourceInfo


@dataclass
class TfNode:
    """A GraphDef node as TF.js graph-models store it.

    ``inputs`` are ``"name"``, ``"name:k"`` (output k) or ``"^name"`` (control dependency).
    ``attrs`` keeps TF's JSON AttrValue encoding as is (``{"i": "3"}``, ``{"type":
    "DT_FLOAT"}``, ``{"s": <base64>}``, ``{"list": {...}}``, ``{"shape": {...}}``), so that
    nothing is lost between reading and writing; the ``attr_*`` functions below are its typed
    accessors.
    """

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    device: str | None = None


@dataclass
class TensorInfo:
    """A signature entry: the graph tensor (``name:0``), dtype name, shape (None = unknown)."""

    key: str
    tensor: str
    dtype: str
    shape: list[int | None] | None


@dataclass
class TfFunction:
    """A function of the graph's library (``modelTopology.library.function``): the body of a
    control-flow v2 op (``StatelessIf``'s branches, ``StatelessWhile``'s cond and body).

    ``inputs``/``outputs`` are the signature's (arg name, dtype name) pairs in order; inside the
    function an input arg is read by its name, as a node output is. ``ret`` maps each output arg
    to the tensor that gives it (``node:k``, or TF's ``node:out_name:k``). A function's ``Const``
    nodes hold their values in the graph's weights, by node name, like the main graph's.
    ``extra`` keeps the rest of the FunctionDef (``attr``, ``argAttr``) as read.
    """

    name: str
    inputs: list[tuple[str, str]]
    outputs: list[tuple[str, str]]
    nodes: list[TfNode]
    ret: dict[str, str]
    extra: dict = field(default_factory=dict)


@dataclass
class TfjsGraph:
    """A TF.js graph-model: GraphDef nodes, constant values by node name, and the signature."""

    nodes: list[TfNode]
    weights: dict[str, np.ndarray]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    versions: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # userDefinedMetadata, modelInitializer, ...
    quantization: dict[str, dict] = field(default_factory=dict)  # weight name -> manifest entry
    source: SourceInfo | None = None
    functions: dict[str, TfFunction] = field(default_factory=dict)  # the library, by name

    def all_nodes(self) -> list[TfNode]:
        """The main graph's nodes, then every library function's."""
        return [*self.nodes, *(n for f in self.functions.values() for n in f.nodes)]

    def node(self, name: str) -> TfNode:
        """The node named ``name``; KeyError where there is none."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def weight_bytes(self) -> int:
        """How many bytes the constant values take (string tensors, held as object arrays, not
        counted)."""
        return int(sum(a.nbytes for a in self.weights.values() if a.dtype != object))


DTYPES = {"DT_FLOAT": "float32", "DT_INT32": "int32", "DT_BOOL": "bool", "DT_STRING": "string",
          "DT_INT64": "int64", "DT_HALF": "float16", "DT_DOUBLE": "float64",
          "DT_UINT8": "uint8", "DT_INT8": "int8", "DT_INT16": "int16", "DT_UINT16": "uint16",
          "DT_COMPLEX64": "complex64", "DT_RESOURCE": "resource", "DT_VARIANT": "variant"}
DT_OF = {v: k for k, v in DTYPES.items()}


# --- attribute values ---------------------------------------------------------------------------

def _checked(read):
    """An attribute reader whose malformed value (``{"i": "x"}``, base64 that is not UTF-8, a
    list where a dict belongs) is a FormatError naming the node and attribute."""
    @functools.wraps(read)
    def wrapper(node: TfNode, name: str, *args, **kwargs):
        try:
            return read(node, name, *args, **kwargs)
        except (ValueError, TypeError, AttributeError, KeyError) as e:  # binascii.Error and
            # UnicodeDecodeError are ValueErrors
            value = repr(node.attrs.get(name))[:80]
            raise FormatError(f"{node.op} node {node.name!r}: attribute {name!r} is malformed "
                              f"({value}: {type(e).__name__})") from None
    return wrapper


def _int64(value) -> int:
    """An AttrValue int: int64 in TF (JSON carries it as a string of any length)."""
    number = int(value)
    if not -2**63 <= number < 2**63:
        raise ValueError(f"{number} is not an int64")
    return number


@_checked
def attr_int(node: TfNode, name: str, default: int | None = None) -> int | None:
    """Integer attribute ``name`` of ``node``, or ``default`` where it has none."""
    value = node.attrs.get(name)
    return default if value is None or "i" not in value else _int64(value["i"])


@_checked
def attr_float(node: TfNode, name: str, default: float | None = None) -> float | None:
    """Float attribute ``name`` of ``node``, or ``default`` where it has none."""
    value = node.attrs.get(name)
    return default if value is None or "f" not in value else float(value["f"])


@_checked
def attr_bool(node: TfNode, name: str, default: bool | None = None) -> bool | None:
    """Boolean attribute ``name`` of ``node``, or ``default`` where it has none."""
    value = node.attrs.get(name)
    return default if value is None or "b" not in value else bool(value["b"])


@_checked
def attr_str(node: TfNode, name: str, default: str | None = None) -> str | None:
    """String attribute ``name`` of ``node`` (base64 of UTF-8), or ``default`` where it has none."""
    value = node.attrs.get(name)
    if value is None or "s" not in value:
        return default
    return base64.b64decode(value["s"]).decode("utf8")


@_checked
def attr_type(node: TfNode, name: str, default: str | None = None) -> str | None:
    """Type attribute ``name`` of ``node`` as a dtype name (``float32``; a DT_ name without one is
    kept as is), or ``default`` where it has none."""
    value = node.attrs.get(name)
    if value is None or "type" not in value:
        return default
    return DTYPES.get(value["type"], value["type"])


@_checked
def attr_shape(node: TfNode, name: str) -> list[int | None] | None:
    """Shape attribute ``name`` of ``node`` (None for an unknown dimension), or None where it has
    none or the rank is unknown."""
    value = node.attrs.get(name)
    if value is None or "shape" not in value:
        return None
    return decode_shape(value["shape"])


@_checked
def attr_list(node: TfNode, name: str, kind: str) -> list:
    """A list attribute's items: ``kind`` is i, f, b, s, type or shape."""
    value = node.attrs.get(name)
    if value is None or "list" not in value:
        return []
    items = value["list"].get(kind, [])
    if kind == "i":
        return [_int64(v) for v in items]
    if kind == "f":
        return [float(v) for v in items]
    if kind == "s":
        return [base64.b64decode(v).decode("utf8") for v in items]
    if kind == "type":
        return [DTYPES.get(v, v) for v in items]
    if kind == "shape":
        return [decode_shape(v) for v in items]
    return list(items)


def decode_shape(shape: dict) -> list[int | None] | None:
    """A TF tensorShape as dims (None for an unknown one), or None for an unknown rank; a size past
    int64 is a FormatError."""
    if shape.get("unknownRank"):
        return None
    dims = [int(d.get("size", -1)) for d in shape.get("dim", [])]
    if any(d >= 2**63 for d in dims):
        raise FormatError(f"a tensorShape with a dimension past int64: {dims}")
    return [None if d < 0 else d for d in dims]


def encode_shape(shape: list[int | None] | None) -> dict:
    """``shape`` (None for an unknown dimension; None itself for an unknown rank) as a TF
    tensorShape."""
    if shape is None:
        return {"unknownRank": True}
    return {"dim": [{"size": str(-1 if d is None else int(d))} for d in shape]}


def a_int(v: int) -> dict:
    """An integer AttrValue (JSON carries the int64 as a string)."""
    return {"i": str(int(v))}


def a_float(v: float) -> dict:
    """A float AttrValue."""
    return {"f": float(v)}


def a_bool(v: bool) -> dict:
    """A boolean AttrValue."""
    return {"b": bool(v)}


def a_str(v: str) -> dict:
    """A string AttrValue (base64 of its UTF-8)."""
    return {"s": base64.b64encode(v.encode("utf8")).decode("ascii")}


def a_type(dtype: str) -> dict:
    """A type AttrValue for dtype name ``dtype`` (``float32`` -> DT_FLOAT)."""
    return {"type": DT_OF[dtype]}


def a_shape(shape: list[int | None] | None) -> dict:
    """A shape AttrValue (``encode_shape``)."""
    return {"shape": encode_shape(shape)}


def const_node(name: str, dtype: str, shape: list[int]) -> TfNode:
    """A ``Const`` node ``name`` whose value (``dtype``, ``shape``) is the weight of that name,
    as tensorflowjs_converter writes one."""
    return TfNode(name, "Const", [], {
        "dtype": a_type(dtype),
        "value": {"tensor": {"dtype": a_type(dtype)["type"],
                             "tensorShape": a_shape(list(shape))["shape"]}}})


def a_list(kind: str, values: list) -> dict:
    """A list AttrValue of ``values``, each encoded as ``kind`` (i, f, b, s, type or shape)
    wants."""
    if kind == "i":
        values = [str(int(v)) for v in values]
    elif kind == "f":
        values = [float(v) for v in values]
    elif kind == "s":
        values = [base64.b64encode(v.encode("utf8")).decode("ascii") for v in values]
    elif kind == "type":
        values = [DT_OF[v] for v in values]
    elif kind == "shape":
        values = [encode_shape(v) for v in values]
    return {"list": {kind: values}}


def input_name(ref: str) -> tuple[str, int]:
    """``"node:k"`` -> (node, k); control inputs ``^node`` -> (node, -1); inside a library
    function also TF's ``"node:out_name:k"`` -> (node, k) (k counts within ``out_name``, which
    is output k for the single-output ops functions hold)."""
    if ref.startswith("^"):
        return ref[1:], -1
    if ref.count(":") == 2:
        ref = ref.split(":")[0] + ":" + ref.split(":")[2]
    name, _, index = ref.partition(":")
    if index and not index.isdigit():
        raise FormatError(f"tensor reference {ref!r} has no output number after the colon")
    return name, int(index) if index else 0


def check(graph: TfjsGraph) -> None:
    """Names unique, inputs exist, Consts have values, every weight has a node, no cycle."""
    by_name: dict[str, TfNode] = {}
    for node in graph.nodes:
        if node.name in by_name:
            raise FormatError(f"two graph nodes are named {node.name!r}")
        by_name[node.name] = node
    for node in graph.nodes:
        for ref in node.inputs:
            source, _ = input_name(ref)
            if source not in by_name:
                raise FormatError(f"node {node.name!r} reads {ref!r}, which no node produces")
        if node.op == "Const" and node.name not in graph.weights:
            raise FormatError(f"Const node {node.name!r} has no value in the weights")
    function_consts = _check_functions(graph)
    extra = [name for name in graph.weights if name not in by_name
             and name not in function_consts]
    if extra:
        raise FormatError(f"the weights manifest has weights no node uses: {extra[:5]}")
    for info in graph.inputs + graph.outputs:
        if input_name(info.tensor)[0] not in by_name:
            raise FormatError(f"signature tensor {info.tensor!r} is not in the graph")
    order(graph)


def _check_functions(graph: TfjsGraph) -> set[str]:
    """Each library function's nodes read args or its own nodes, its Consts have weights, its
    ``ret`` names tensors it has; returns the names of the functions' Consts."""
    consts: set[str] = set()
    for fn in graph.functions.values():
        names = {n.name for n in fn.nodes} | {arg for arg, _ in fn.inputs}
        for node in fn.nodes:
            for ref in node.inputs:
                if input_name(ref)[0] not in names:
                    raise FormatError(f"function {fn.name!r}: node {node.name!r} reads {ref!r}, "
                                      "which no node or argument of the function produces")
            if node.op == "Const":
                if node.name not in graph.weights:
                    raise FormatError(f"function {fn.name!r}: Const node {node.name!r} has no "
                                      "value in the weights")
                consts.add(node.name)
        for arg, _ in fn.outputs:
            if arg not in fn.ret or input_name(fn.ret[arg])[0] not in names:
                raise FormatError(f"function {fn.name!r}: output {arg!r} is not returned by "
                                  "any node of the function")
    return consts


def order(graph: TfjsGraph) -> list[TfNode]:
    """Nodes in dependency order (Kahn); a cycle is a FormatError."""
    by_name = {n.name: n for n in graph.nodes}

    def deps(node: TfNode) -> set[str]:
        found = {input_name(i)[0] for i in node.inputs}
        if node.op in ("Merge", "RefMerge"):
            # A TF1 while loop feeds NextIteration back into its Merge: the one legal cycle.
            found = {d for d in found if d not in by_name or
                     by_name[d].op not in ("NextIteration", "RefNextIteration")}
        return found

    pending = {n.name: deps(n) for n in graph.nodes}
    users: dict[str, list[str]] = {}
    for name, waits_on in pending.items():
        for d in waits_on:
            users.setdefault(d, []).append(name)
    ready = [n for n, waits_on in pending.items() if not waits_on]
    out = []
    while ready:
        name = ready.pop()
        out.append(by_name[name])
        for user in users.get(name, []):
            pending[user].discard(name)
            if not pending[user]:
                ready.append(user)
    if len(out) != len(graph.nodes):
        stuck = sorted(n for n, deps in pending.items() if deps)[:3]
        raise FormatError(f"the graph has a cycle through {', '.join(stuck)}")
    return out
