"""TF.js graph-models: ``model.json`` with ``format: "graph-model"`` and binary weight shards.

``modelTopology`` is a GraphDef in protobuf's JSON mapping: ``{"node": [{"name", "op",
"input", "attr", "device"}], "library", "versions"}``; attribute values are AttrValue JSON
(``{"i": "3"}`` — int64 as a string —, ``{"f": 0.5}``, ``{"b": true}``, ``{"s": <base64>}``,
``{"type": "DT_FLOAT"}``, ``{"shape": {"dim": [{"size": "-1"}]}}``, ``{"list": {...}}``).
Every ``Const`` node's value is a weight of the same name in ``weightsManifest`` (any number of
groups; shards, quantization and strings as in ``tfjs_manifest``). ``signature`` names the
inputs and outputs (``{"inputs": {key: {"name": "x:0", "dtype", "tensorShape"}}}``).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import FormatError, ModelportError, UnsupportedError
from ..fsutil import atomic_output
from ..models import SourceInfo, TensorInfo, TfjsGraph, TfNode
from ..models.tfjs_graph import (
    DT_OF,
    DTYPES,
    attr_shape,
    attr_type,
    check,
    decode_shape,
    encode_shape,
    input_name,
)
from . import tfjs_graph_v0, tfjs_layers, tfjs_library, tfjs_manifest
from .tfjs_layers import load_model_json, model_json_path

# --- reading ------------------------------------------------------------------------------------

def read(path: str | os.PathLike) -> TfjsGraph:
    """Read a TF.js graph-model (``path``: its model.json or the folder holding one, or a 0.x
    model's tensorflowjs_model.pb, see ``tfjs_graph_v0``); a missing signature is made from
    the Placeholders (inputs) and the nodes nothing reads (outputs)."""
    path = Path(path)
    json_path = tfjs_graph_v0.pb_path(path) or model_json_path(path)
    try:
        if not json_path.is_file():
            raise FormatError("no model.json here")
        data = (tfjs_graph_v0.model_json(json_path) if json_path.suffix == ".pb"
                else load_model_json(json_path))
        if data.get("format") not in ("graph-model", None):
            raise FormatError(f"format is {data.get('format')!r}, not graph-model")
        topology = data.get("modelTopology")
        if not isinstance(topology, dict) or not isinstance(topology.get("node"), list):
            raise FormatError("modelTopology has no node list")
        nodes = [_node(n) for n in topology["node"]]
        stored = tfjs_manifest.read_manifest(json_path.parent, data.get("weightsManifest", []),
                                             file=json_path)
        weights = {w.name: w.array for w in stored}
        quantization = {w.name: w.quantization for w in stored if w.quantization}
        graph = TfjsGraph(nodes, weights, [], [], versions=topology.get("versions") or {},
                          extra={k: data[k] for k in ("userDefinedMetadata", "modelInitializer",
                                                      "generatedBy", "convertedBy",
                                                      "initializerSignature") if k in data},
                          quantization=quantization)
        graph.functions = tfjs_library.read_library(topology, _node)
        _inline_constants(graph)
        signature = data.get("signature") or {}
        if not isinstance(signature, dict):
            raise FormatError("model.json's signature is not an object")
        graph.inputs = _signature(signature.get("inputs")) or _placeholders(graph)
        graph.outputs = _signature(signature.get("outputs")) or _sinks(graph)
        check(graph)
    except ModelportError as e:
        e.with_file(json_path)
        raise
    except OSError as e:
        raise FormatError(f"cannot read ({e.strerror})", file=json_path) from None
    graph.source = SourceInfo("tfjs-graph", str(json_path), "tf-graph",
                              data.get("generatedBy"))
    return graph


def _node(raw: Any) -> TfNode:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) \
            or not isinstance(raw.get("op"), str):
        raise FormatError(f"a graph node lacks a name or an op: {str(raw)[:80]}")
    inputs = raw.get("input", [])
    attrs = raw.get("attr", {})
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise FormatError(f"node {raw['name']!r} has malformed inputs")
    if not isinstance(attrs, dict) or not all(isinstance(v, dict) for v in attrs.values()):
        raise FormatError(f"node {raw['name']!r} has malformed attributes")
    for key, value in attrs.items():
        problem = _attr_problem(value)
        if problem:
            raise FormatError(f"node {raw['name']!r} ({raw['op']}): attribute {key!r} is "
                              f"malformed ({problem})")
    return TfNode(raw["name"], raw["op"], list(inputs), dict(attrs), raw.get("device"))


def _is_int(v: Any) -> bool:
    # AttrValue JSON writes int64 as a decimal string; plain JSON integers are accepted too.
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    if isinstance(v, str):
        body = v[1:] if v[:1] == "-" else v
        return body.isdigit()
    return False


def _is_float(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) or \
        v in ("NaN", "Infinity", "-Infinity")


def _is_b64(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        base64.b64decode(v, validate=True)
    except ValueError:
        return False
    return True


def _is_shape(v: Any) -> bool:
    if not isinstance(v, dict):
        return False
    dims = v.get("dim", [])
    return isinstance(dims, list) and all(isinstance(d, dict) and _is_int(d.get("size", "-1"))
                                          for d in dims)


_CHECKS = {"i": _is_int, "f": _is_float, "b": lambda v: isinstance(v, bool), "s": _is_b64,
           "type": lambda v: isinstance(v, str) and v in DTYPES, "shape": _is_shape}


def _attr_problem(value: dict) -> str | None:
    """What is wrong with one AttrValue JSON, or None: every typed field must hold its kind,
    so that the typed accessors below never meet a value they cannot decode."""
    for kind, ok in _CHECKS.items():
        if kind in value and not ok(value[kind]):
            return f"{kind!r} holds {str(value[kind])[:40]!r}"
    if "list" in value:
        items = value["list"]
        if not isinstance(items, dict):
            return "'list' is not an object"
        for kind, entries in items.items():
            if kind not in _CHECKS:
                continue
            if not isinstance(entries, list):
                return f"list {kind!r} is not a list"
            bad = [e for e in entries if not _CHECKS[kind](e)]
            if bad:
                return f"list {kind!r} holds {str(bad[0])[:40]!r}"
    return None


def _inline_constants(graph: TfjsGraph) -> None:
    """Const nodes whose value is written in the topology (older converters), not a weight."""
    for node in graph.all_nodes():
        if node.op != "Const" or node.name in graph.weights:
            continue
        tensor = (node.attrs.get("value") or {}).get("tensor")
        if not isinstance(tensor, dict) or not any(
                k == "tensorContent" or k.endswith("Val") for k in tensor):
            # The converter keeps only dtype and shape in the node; the value is a weight.
            raise FormatError(f"Const node {node.name!r} has no value in the weights "
                              "manifest (and none inline)")
        graph.weights[node.name] = _decode_tensor(node.name, tensor)


def _decode_tensor(name: str, tensor: dict) -> np.ndarray:
    dtype = DTYPES.get(tensor.get("dtype", "DT_FLOAT"))
    shape = decode_shape(tensor.get("tensorShape", {})) or []
    dims = [d for d in shape if d is not None]
    if dtype in (None, "string", "resource", "variant") or len(dims) != len(shape):
        raise UnsupportedError(f"inline constant {name!r} of type {tensor.get('dtype')}")
    count = int(np.prod(dims)) if dims else 1
    if "tensorContent" in tensor:
        raw = base64.b64decode(tensor["tensorContent"])
        array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    else:
        key = {"float32": "floatVal", "float64": "doubleVal", "bool": "boolVal",
               "int64": "int64Val", "float16": "halfVal"}.get(dtype, "intVal")
        values = [float(v) if dtype.startswith("float") else int(v) if dtype != "bool" else bool(v)
                  for v in tensor.get(key, [])]
        array = np.asarray(values, dtype=dtype)
        if array.size == 1 and count > 1:
            array = np.full(count, array[0], dtype=dtype)
    if array.size != count:
        raise FormatError(f"constant {name!r} holds {array.size} values for shape {shape}")
    return array.reshape(shape).astype(dtype)


def _signature(entries: Any) -> list[TensorInfo]:
    if not isinstance(entries, dict):
        return []
    out = []
    for key, entry in entries.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise FormatError(f"signature entry {key!r} has no tensor name")
        if "tensorShape" in entry and not _is_shape(entry["tensorShape"]):
            raise FormatError(f"signature entry {key!r} has a malformed tensorShape")
        if "dtype" in entry and (not isinstance(entry["dtype"], str)
                                 or entry["dtype"] not in DTYPES):
            raise FormatError(f"signature entry {key!r} has an unknown dtype "
                              f"{str(entry['dtype'])[:40]!r}")
        dtype = DTYPES.get(entry.get("dtype", "DT_FLOAT"), "float32")
        # no tensorShape at all (--output_node_names entries) is an unknown shape; an empty
        # one is a scalar's
        shape = decode_shape(entry["tensorShape"]) if "tensorShape" in entry else None
        out.append(TensorInfo(key, _tensor_ref(key, entry["name"]), dtype, shape))
    return out


def _tensor_ref(key: str, name: str) -> str:
    """A signature entry's tensor as ``node:k``, resolved as tfjs resolves it (tfjs-converter's
    ``parseNodeName``): ``node`` is output 0 (``tensorflowjs_converter --output_node_names``
    writes op names so), ``node:k`` output k, and ``node:output_name:k`` (a function's named
    output) output k."""
    parts = name.split(":")
    if len(parts) == 1:
        return f"{name}:0"
    if len(parts) > 3 or not parts[-1].isdigit():
        raise FormatError(f"signature entry {key!r} names {name!r}, which is not 'node', "
                          "'node:k' or 'node:output:k'")
    return f"{parts[0]}:{int(parts[-1])}"


def _placeholders(graph: TfjsGraph) -> list[TensorInfo]:
    return [TensorInfo(n.name, f"{n.name}:0", attr_type(n, "dtype", "float32"),
                       attr_shape(n, "shape")) for n in graph.nodes if n.op == "Placeholder"]


def _sinks(graph: TfjsGraph) -> list[TensorInfo]:
    used = {input_name(i)[0] for n in graph.nodes for i in n.inputs}
    return [TensorInfo(n.name, f"{n.name}:0", attr_type(n, "T", "float32"), None)
            for n in graph.nodes if n.name not in used and n.op not in ("Const", "NoOp")]


# --- writing ------------------------------------------------------------------------------------

def to_model_json(graph: TfjsGraph, manifest: list,
                  metadata: dict[str, object] | None = None) -> dict:
    """The model.json document of ``graph``, with ``manifest`` as its weights manifest and
    ``metadata`` added to its userDefinedMetadata (``--metadata``)."""
    def node_json(n: TfNode) -> dict:
        out: dict = {"name": n.name, "op": n.op}
        if n.inputs:
            out["input"] = list(n.inputs)
        if n.device:
            out["device"] = n.device
        if n.attrs:
            out["attr"] = n.attrs
        return out

    def entries(infos: list[TensorInfo]) -> dict:
        return {i.key: {"name": i.tensor, "dtype": DT_OF.get(i.dtype, "DT_FLOAT"),
                        "tensorShape": encode_shape(i.shape)} for i in infos}
    doc = {"format": "graph-model",
           "generatedBy": graph.extra.get("generatedBy", "modelport"),
           "convertedBy": f"modelport v{__version__}",
           "signature": {"inputs": entries(graph.inputs), "outputs": entries(graph.outputs)},
           "modelTopology": {"node": [node_json(n) for n in graph.nodes],
                             "library": tfjs_library.library_json(graph.functions, node_json),
                             "versions": graph.versions or {}},
           "weightsManifest": manifest}
    for key in ("userDefinedMetadata", "modelInitializer"):
        if key in graph.extra:
            doc[key] = graph.extra[key]
    if metadata:
        doc["userDefinedMetadata"] = {**(doc.get("userDefinedMetadata") or {}), **metadata}
    return doc


def write(graph: TfjsGraph, dst: str | os.PathLike, *, force: bool = False,
          shard_size: int = tfjs_manifest.DEFAULT_SHARD_SIZE,
          quantize: list[tfjs_manifest.QuantizeRule] | None = None,
          metadata: dict[str, object] | None = None) -> Path:
    """Write a graph-model folder (``dst``, or ``dst``'s folder for a ``.json`` name);
    ``metadata``: userDefinedMetadata entries, as tensorflowjs_converter's ``--metadata``."""
    check(graph)
    folder, json_name = tfjs_layers.destination(dst)
    consts = [n.name for n in graph.all_nodes() if n.op == "Const"]
    weights = [(name, _tfjs_array(name, graph.weights[name])) for name in consts]
    chosen = tfjs_manifest.choose_quantization(
        [n for n, a in weights if a.dtype.kind == "f"], quantize or [])
    with atomic_output(folder, directory=True, force=force) as tmp:
        group = tfjs_manifest.write_group(tmp, 0, weights, shard_size=shard_size,
                                          quantization=chosen, kept=graph.quantization)
        (tmp / json_name).write_text(json.dumps(to_model_json(graph, [group], metadata)))
    return folder / json_name


def check_writable(graph: TfjsGraph) -> None:
    """Every refusal ``write`` would make, without writing (``inspect``'s dry run)."""
    check(graph)
    for node in graph.nodes:
        array = graph.weights.get(node.name) if node.op == "Const" else None
        if array is not None and array.dtype == np.int64:
            _tfjs_array(node.name, array)


def _tfjs_array(name: str, array: np.ndarray) -> np.ndarray:
    # TF.js keeps int64 constants as int32 (its loader narrows them); refuse what would wrap.
    if array.dtype == np.int64:
        if array.size and (array.max() > np.iinfo(np.int32).max or
                           array.min() < np.iinfo(np.int32).min):
            raise UnsupportedError(f"int64 constant {name!r} does not fit in int32, which is "
                                   "all TF.js stores")
        return array.astype(np.int32)
    if array.dtype == np.float64:
        return array.astype(np.float32)
    return array
