"""The function library of a TF.js graph-model: ``modelTopology.library.function``.

``tensorflowjs_converter --control_flow_v2`` keeps ``tf.cond``/``tf.while_loop`` as
``StatelessIf``/``StatelessWhile`` nodes whose branches, condition and body are FunctionDefs in
protobuf's JSON mapping: ``{"signature": {"name", "inputArg": [{"name", "type"}],
"outputArg": [...]}, "nodeDef": [<nodes as in the main graph>], "ret": {out_arg: "node:out:k"},
"attr", "argAttr"}``. tfjs (``operation_mapper.mapFunction``) runs each as a sub-graph whose
Placeholders are the input args; its ``Const`` nodes take their values from the one weights
manifest, by node name.
"""

from __future__ import annotations

from typing import Any

from ..errors import FormatError
from ..models.tfjs_graph import DT_OF, DTYPES, TfFunction, TfNode


def read_library(topology: dict, node: Any) -> dict[str, TfFunction]:
    """The functions of ``topology['library']`` by name (``node`` parses one nodeDef)."""
    library = topology.get("library") or {}
    if not isinstance(library, dict):
        raise FormatError("modelTopology's library is not an object")
    functions: dict[str, TfFunction] = {}
    for raw in library.get("function") or []:
        fn = _function(raw, node)
        if fn.name in functions:
            raise FormatError(f"the library defines function {fn.name!r} twice")
        functions[fn.name] = fn
    return functions


def _function(raw: Any, node: Any) -> TfFunction:
    signature = raw.get("signature") if isinstance(raw, dict) else None
    if not isinstance(signature, dict) or not isinstance(signature.get("name"), str):
        raise FormatError(f"a library function has no signature name: {str(raw)[:80]}")
    name = signature["name"]

    def args(key: str) -> list[tuple[str, str]]:
        out = []
        for arg in signature.get(key) or []:
            if not isinstance(arg, dict) or not isinstance(arg.get("name"), str):
                raise FormatError(f"function {name!r}: a malformed {key} entry")
            out.append((arg["name"], DTYPES.get(arg.get("type", "DT_FLOAT"), "float32")))
        return out
    ret = raw.get("ret") or {}
    if not isinstance(ret, dict) or not all(isinstance(v, str) for v in ret.values()):
        raise FormatError(f"function {name!r}: malformed ret map")
    nodes = raw.get("nodeDef") or []
    if not isinstance(nodes, list):
        raise FormatError(f"function {name!r}: nodeDef is not a list")
    extra = {k: raw[k] for k in ("attr", "argAttr") if k in raw}
    return TfFunction(name, args("inputArg"), args("outputArg"), [node(n) for n in nodes],
                      dict(ret), extra)


def library_json(functions: dict[str, TfFunction], node_json: Any) -> dict:
    """``modelTopology.library`` for ``functions`` (``node_json`` writes one node)."""
    if not functions:
        return {}
    out = []
    for fn in functions.values():
        entry: dict = {
            "signature": {
                "name": fn.name,
                "inputArg": [{"name": a, "type": DT_OF.get(t, "DT_FLOAT")} for a, t in fn.inputs],
                "outputArg": [{"name": a, "type": DT_OF.get(t, "DT_FLOAT")}
                              for a, t in fn.outputs]},
            "nodeDef": [node_json(n) for n in fn.nodes],
            "ret": dict(fn.ret)}
        entry.update(fn.extra)
        out.append(entry)
    return {"function": out}


def function_consts(functions: dict[str, TfFunction]) -> list[TfNode]:
    """The library functions' Const nodes (their values are weights of the graph)."""
    return [n for fn in functions.values() for n in fn.nodes if n.op == "Const"]
