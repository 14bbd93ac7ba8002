"""Layers whose lowering has no op-by-op inverse, raised by proof: lower again and compare.

modelport's Keras -> ONNX lowering writes some layers as subgraphs that no rule can read back (a
recurrent cell with a custom activation as a Scan loop, ...). For those it records in the model's
metadata (``keras_to_onnx.HINT_KEY``) each layer's class, config, call, the ONNX values it reads
and makes, and its weights' shapes. Raising takes a record only as a hypothesis:

1. the nodes named ``<layer>/...`` are the candidate subgraph;
2. the hypothesised layer is lowered again with *probe* weights, whose values are their own
   positions (2**23 + 1, + 2, ... as float32), and matched against the subgraph node for node: op,
   domain, attributes, wiring, Scan bodies, in order. Each constant of the subgraph then says
   which weight element sits where, so the weights are read back however the lowering
   rearranged them (transposed, split into gates, reordered);
3. it is lowered once more with the weights read back, and every node and constant must now be
   identical, bit for bit, and nothing outside may read a value from inside the subgraph.

Only then is the subgraph replaced by one ``KerasLayer`` node (domain ``ai.modelport.keras``),
which the raising emits as that layer with those weights. Identical ONNX means identical numbers,
so nothing is trusted from the record: a wrong, stale or hostile one proves nothing and changes
nothing (the subgraph stays, and is raised or refused op by op as before).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from ...models import Layer, LayersModel, Node, TensorRef, Weight, keras_shapes
from ...models.arrays import same_bits
from .core import Ctx

log = logging.getLogger(__name__)

DOMAIN = "ai.modelport.keras"
OP = "KerasLayer"
# Probe codes are exact float32 integers in (2**23, 2**24], far from the small constants a
# lowering writes (1, 0.5, 6, ...): at most 2**23 weight elements per layer.
PROBE_BASE = 2 ** 23
PROBE_LIMIT = 2 ** 23
# Raising replaces subgraphs after normalize(), which rewrites older opsets' nodes (so they no
# longer match a lowering at the model's opset) and leaves 17 and newer as they are.
MIN_OPSET = 17


@dataclass
class Proven:
    """A layer proven equal to the subgraph it replaced."""
    class_name: str
    config: dict
    weights: list[tuple[str, np.ndarray]]
    outputs: list[int]  # per Keras output, the KerasLayer node output holding it
    args: list  # the call, tensors as {"__input__": i} (the KerasLayer node's input i)
    kwargs: dict
    module: str | None = None  # a Keras 3 operation's (keras.src.ops.numpy for NotEqual)

    def emit(self, ctx: Ctx, node: ir.Node) -> None:
        """The rule for this KerasLayer node (registered as a pattern's ``ctx.fused``)."""
        refs = [ctx.ref(ctx.input(node, i)) for i in range(len(node.inputs))]
        config = {k: v for k, v in self.config.items() if k != "name"}
        call = Node(_decode(self.args, refs), _decode(self.kwargs, refs))
        first = ctx.layer(self.class_name, config, refs, weights=self.weights, call=call,
                          base=self.config.get("name") or self.class_name)
        if self.module is not None:  # an operation's config is its name and its own keys only
            ctx.layers[-1].module = self.module
            ctx.layers[-1].config = {"name": first.layer, **config}
        bound: set[int] = set()
        for i, k in enumerate(self.outputs):
            if k not in bound:  # a layer may return one ONNX value twice (an RNN's state)
                ctx.output(TensorRef(first.layer, 0, i), k)
                bound.add(k)


def _module(record: dict) -> str | None:
    """Only Keras 3 operations carry a module; anything else is not a layer we emit."""
    module = record.get("module")
    if module is None:
        return None
    if not isinstance(module, str) or not module.startswith("keras.src.ops."):
        raise ValueError(f"module {module!r} is not a Keras operation's")
    return module


def _decode(obj, refs: list):
    if isinstance(obj, dict) and set(obj) == {"__input__"}:
        return refs[int(obj["__input__"])]
    if isinstance(obj, dict):
        return {k: _decode(v, refs) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, refs) for v in obj]
    return obj


def replace_proven(model: ir.Model, opset: int) -> dict[str, Proven]:
    """Replace each recorded layer's subgraph that is proven equal to it; by node name."""
    from ..keras_to_onnx import HINT_KEY

    text = model.metadata_props.get(HINT_KEY)
    if not text or opset < MIN_OPSET:
        return {}
    try:
        records = json.loads(text)
    except ValueError:
        return {}
    proven: dict[str, Proven] = {}
    for record in records if isinstance(records, list) else []:
        if not isinstance(record, dict):
            continue
        try:
            found = _prove(model, record, opset)
        except Exception as e:  # noqa: BLE001 - a record that breaks anything proves nothing
            found = f"{type(e).__name__}: {e}"
        if isinstance(found, str):
            log.debug("re-lowering %s: not proven (%s)", record.get("name"), found)
            continue
        nodes, inputs, outputs, weights = found
        distinct = list({id(v): v for v in outputs}.values())
        node_name = _replace(model.graph, nodes, inputs, distinct, str(record["name"]))
        proven[node_name] = Proven(record["class_name"], dict(record["config"]), weights,
                                   [distinct.index(v) for v in outputs], record["args"],
                                   record["kwargs"], _module(record))
    if proven:
        model.opset_imports[DOMAIN] = 1
    return proven


def _prove(model: ir.Model, record: dict, opset: int):
    name = str(record["name"])
    graph = model.graph
    nodes = [n for n in graph if (n.name or "").startswith(f"{name}/")]
    if not nodes:
        return "no nodes carry the layer's name"
    values = {v.name: v for v in graph.inputs}
    values.update({v.name: v for n in graph for v in n.outputs if v.name})
    inputs = [values[str(n)] for n in record["inputs"]]
    outputs = [values[str(n)] for n in record["outputs"]]
    specs = [(str(p), [int(d) for d in shape], str(dtype)) for p, shape, dtype in record["weights"]]
    if any(dtype != "float32" for _, _, dtype in specs):
        return "a weight that is not float32"
    sizes = [math.prod(shape) for _, shape, _ in specs]
    total = sum(sizes)
    if total >= PROBE_LIMIT:
        return f"{total} weight elements, more than the probe codes can name"
    probes, offset = [], PROBE_BASE + 1
    for (path, shape, _), size in zip(specs, sizes):
        probes.append((path, np.arange(offset, offset + size, dtype=np.float32).reshape(shape)))
        offset += size
    found = np.zeros(total, np.float32)
    seen = np.zeros(total, bool)

    def read_back(h: np.ndarray, a: np.ndarray) -> str | None:
        if h.shape != a.shape or h.dtype != a.dtype:
            return f"a constant of shape {a.shape} {a.dtype} where {h.shape} {h.dtype} belongs"
        if h.dtype != np.float32:
            return None
        codes = h.reshape(-1).astype(np.float64) - PROBE_BASE
        coded = (codes >= 1) & (codes <= total) & (codes == np.round(codes))
        idx = codes[coded].astype(np.int64) - 1
        got = a.reshape(-1)[coded]
        known = seen[idx]
        if np.any(found[idx][known].view(np.uint32) != got[known].view(np.uint32)):
            return "one weight element read back with two values"
        found[idx], seen[idx] = got, True
        return None

    hypothesis = _lower_one(record, inputs, outputs, probes, opset)
    problem = _match_top(hypothesis, nodes, inputs, outputs, read_back)
    if problem:
        return problem
    if not seen.all():
        return f"{int((~seen).sum())} weight elements appear nowhere in the subgraph"
    weights, offset = [], 0
    for (path, shape, _), size in zip(specs, sizes):
        weights.append((path, found[offset:offset + size].reshape(shape).copy()))
        offset += size
    final = _lower_one(record, inputs, outputs, weights, opset)
    problem = _match_top(final, nodes, inputs, outputs, _identical)
    if problem:
        return f"lowered again with the weights read back: {problem}"
    inside = {id(n) for n in nodes}
    for n in nodes:
        for v in n.outputs:
            read_outside = any(id(u.node) not in inside for u in v.uses()) or v.is_graph_output()
            if read_outside and not any(v is o for o in outputs):
                return f"value {v.name!r} from inside the layer is read outside it"
    # Shape inference stops at the KerasLayer node: its outputs keep the shapes Keras gives.
    for old, spec in zip(outputs, final.graph.outputs):
        old.type = old.type or spec.type
        old.shape = old.shape or spec.shape
    return nodes, inputs, outputs, weights


def _identical(h: np.ndarray, a: np.ndarray) -> str | None:
    return None if same_bits(h, a) else f"a constant of shape {a.shape} differs"


def _lower_one(record: dict, inputs: list[ir.Value], outputs: list[ir.Value],
               weights: list[tuple[str, np.ndarray]], opset: int) -> ir.Model:
    """The recorded layer alone, called on Inputs shaped like ``inputs``, lowered at ``opset``."""
    from ..keras_to_onnx import lower

    layers, refs = [], []
    for i, v in enumerate(inputs):
        if v.shape is None or v.dtype is None:
            raise ValueError(f"input {v.name!r} has no known shape and type")
        dims = [d if isinstance(d, int) else None for d in list(v.shape)[1:]]
        dtype = {ir.DataType.FLOAT: "float32", ir.DataType.INT32: "int32",
                 ir.DataType.INT64: "int64", ir.DataType.BOOL: "bool"}[v.dtype]
        layers.append(Layer("InputLayer", f"input_{i}",
                            {"name": f"input_{i}", "batch_shape": [None, *dims], "dtype": dtype,
                             "sparse": False}))
        refs.append(TensorRef(f"input_{i}"))

    name = str(record["name"])
    layer = Layer(str(record["class_name"]), name, json.loads(json.dumps(record["config"])),
                  [Node(_decode(record["args"], refs), _decode(record["kwargs"], refs))],
                  [Weight(path, array) for path, array in weights], module=_module(record))
    model = LayersModel(name="relowered", kind="Functional", layers=[*layers, layer],
                        inputs=refs,
                        outputs=[TensorRef(name, 0, i) for i in range(len(record["outputs"]))],
                        config={"trainable": True})
    # Before lowering: the config must give the shapes the graph has, so that a record cannot
    # make the lowering build anything bigger than the tensors already in the file.
    for spec, v in zip(keras_shapes.output_specs(model), outputs):
        known = list(v.shape) if v.shape is not None else []
        if len(known) != len(spec.shape) or any(
                isinstance(a, int) and b is not None and a != b
                for a, b in zip(known[1:], spec.shape[1:])):
            raise ValueError(f"the layer gives {spec.shape} where the graph has {known}")
    return lower(model, opset=opset, optimize=True).model


def _match_top(hypothesis: ir.Model, nodes: list[ir.Node], inputs: list[ir.Value],
               outputs: list[ir.Value], on_const) -> str | None:
    graph = hypothesis.graph
    if len(graph.inputs) != len(inputs) or len(graph.outputs) != len(outputs):
        return "the layer's inputs or outputs differ in number"
    vmap = {id(h): a for h, a in zip(graph.inputs, inputs)}
    # lower() puts an Identity before a model output that is already an input or an output
    # (a layer returning one value twice); a layer inside a model has none.
    hyp, alias = list(graph), {}
    while hyp and hyp[-1].op_type == "Identity" and hyp[-1].outputs[0].is_graph_output():
        alias[id(hyp[-1].outputs[0])] = hyp[-1].inputs[0]
        hyp.pop()
    problem = _match_nodes(hyp, nodes, vmap, on_const)
    if problem:
        return problem
    ends = [alias.get(id(h), h) for h in graph.outputs]
    if any(vmap.get(id(h)) is not a for h, a in zip(ends, outputs)):
        return "the layer's outputs are other values"
    return None


def _const(v: ir.Value) -> np.ndarray | None:
    return v.const_value.numpy() if v.const_value is not None else None


def _match_nodes(hyp: list[ir.Node], act: list[ir.Node], vmap: dict, on_const) -> str | None:
    if len(hyp) != len(act):
        return f"{len(act)} nodes where the layer lowers to {len(hyp)}"
    for h, a in zip(hyp, act):
        where = f"node {a.name!r}"
        if (h.op_type, h.domain) != (a.op_type, a.domain):
            return f"{where} is {a.op_type}, the layer's lowering has {h.op_type} there"
        if set(h.attributes) != set(a.attributes):
            return f"{where} has other attributes"
        for key, ha in h.attributes.items():
            problem = _match_attr(ha, a.attributes[key], vmap, on_const)
            if problem:
                return f"{where}, attribute {key}: {problem}"
        if len(h.inputs) != len(a.inputs) or len(h.outputs) != len(a.outputs):
            return f"{where} has other inputs or outputs"
        for hv, av in zip(h.inputs, a.inputs):
            if hv is None or av is None:
                if hv is not av:
                    return f"{where} has an input where the lowering has none, or none where it has"
                continue
            if id(hv) in vmap:
                if vmap[id(hv)] is not av:
                    return f"{where} reads another value"
                continue
            hc, ac = _const(hv), _const(av)
            if hc is None or ac is None:
                return f"{where} reads a value from outside the layer"
            problem = on_const(hc, ac)
            if problem:
                return f"{where}: {problem}"
        for hv, av in zip(h.outputs, a.outputs):
            vmap[id(hv)] = av
    return None


def _match_attr(ha: ir.Attr, aa: ir.Attr, vmap: dict, on_const) -> str | None:
    if ha.type != aa.type:
        return "another type"
    if ha.type == ir.AttributeType.GRAPH:
        return _match_graph(ha.value, aa.value, vmap, on_const)
    if ha.type == ir.AttributeType.TENSOR:
        return on_const(ha.value.numpy(), aa.value.numpy())
    if ha.type in (ir.AttributeType.GRAPHS, ir.AttributeType.TENSORS,
                   ir.AttributeType.SPARSE_TENSOR, ir.AttributeType.SPARSE_TENSORS):
        return "not compared"
    h, a = ha.value, aa.value
    if isinstance(h, (list, tuple)) or type(h).__name__.endswith("Sequence"):
        h, a = list(h), list(a)
    if ha.type in (ir.AttributeType.FLOAT, ir.AttributeType.FLOATS):
        # a file holds float32; the lowering's own graph may still hold the float it computed
        h, a = np.float32(h).tolist(), np.float32(a).tolist()
    return None if h == a else f"{a!r} where the lowering has {h!r}"


def _match_graph(hg: ir.Graph, ag: ir.Graph, outer: dict, on_const) -> str | None:
    if len(hg.inputs) != len(ag.inputs) or len(hg.outputs) != len(ag.outputs):
        return "a body with other inputs or outputs"
    vmap = dict(outer)  # a body may read values of the enclosing graph
    vmap.update({id(h): a for h, a in zip(hg.inputs, ag.inputs)})
    for h, a in zip(hg.inputs, ag.inputs):
        if h.dtype != a.dtype:
            return "a body input of another type"
    problem = _match_nodes(list(hg), list(ag), vmap, on_const)
    if problem:
        return f"in the body, {problem}"
    for h, a in zip(hg.outputs, ag.outputs):
        if vmap.get(id(h)) is not a:
            return "a body output is another value"
    return None


def _replace(graph: ir.Graph, nodes: list[ir.Node], inputs: list[ir.Value],
             outputs: list[ir.Value], name: str) -> str:
    """Put one KerasLayer node for layer ``name`` in place of ``nodes``; its node name."""
    node_name = f"{name}/{OP}"  # onnx_ir keeps a node's given name
    node = ir.Node(DOMAIN, OP, inputs, [ir.AttrString("layer", name)],
                   num_outputs=len(outputs), name=node_name)
    for old, new in zip(outputs, node.outputs):
        new.type, new.shape = old.type, old.shape
    graph.insert_before(nodes[0], node)
    ir.convenience.replace_all_uses_with(outputs, list(node.outputs), replace_graph_outputs=True)
    for old, new in zip(outputs, node.outputs):
        label, old.name = old.name, None
        new.name = label
    graph.remove(nodes, safe=True)
    return node_name
