"""TF1 TensorArrays (``TensorArrayV3`` and its ``Scatter``/``Read``/``Write``/``Gather``/
``Size`` ops) held as dense tensors, so that a TF1 ``tf.map_fn`` loop (what TF1-era exports
hold, e.g. a detector's per-image NMS) is plain tensor math carried through the loop, for the
NumPy TF reference and the ONNX mapping alike.

A TensorArray is a pair of outputs: ``:0`` the handle (a resource every op on the array reads)
and ``:1`` the flow (a float scalar threaded from op to op, and through the loop's
``Enter``/``Merge``/``Switch``/``NextIteration``/``Exit``, to order the ops). Here the flow
becomes the array's value, ``[n, *element_shape]``, and the handle becomes ``n`` (the static
size, int32), so every op is a function of what it reads:

* ``TensorArrayV3(n)``: handle ``n``; flow zeros ``[n, *S]``, ``S`` the element shape where
  the array's or its Gathers' ``element_shape`` attribute says it, a 1 for each dimension
  known only at run time (the first write broadcasts it, as for ``TensorListReserve``), and a
  scalar zero where the rank is unknown and only a Scatter fills the array;
* ``TensorArrayScatterV3(h, indices, value, flow)``: ``flow`` broadcast to
  ``[h, *shape(value)[1:]]`` with ``value``'s rows put at ``indices`` (``TensorScatterUpdate``);
* ``TensorArrayWriteV3(h, i, value, flow)``: ``flow`` broadcast to ``[h, *shape(value)]``
  with ``value`` put at row ``i``;
* ``TensorArrayReadV3(h, i, flow)``: ``GatherV2(flow, i, 0)``; ``TensorArrayGatherV3(h,
  indices, flow)``: ``GatherV2(flow, indices, 0)``; ``TensorArraySizeV3(h, flow)``: ``h``.

The frame ops a flow or handle passes through are re-typed (TF types flows float32 and handles
``resource``) so the v1 lift (``models.tfjs_control_v1``) types the loop values right. This runs
before that lift. A growing array (``dynamic_size``), an op not listed, or an array written
element by element whose element rank no attribute gives is an UnsupportedError naming it.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from .tfjs_graph import (
    TfjsGraph,
    TfNode,
    a_int,
    a_type,
    attr_bool,
    attr_type,
    const_node,
    decode_shape,
    input_name,
)

ARRAY_OPS = frozenset({"TensorArrayV3", "TensorArrayScatterV3", "TensorArrayReadV3",
                       "TensorArrayWriteV3", "TensorArrayGatherV3", "TensorArraySizeV3"})
# ops a handle or a flow passes through unchanged (output 0 is input 0's value)
PASS = frozenset({"Enter", "Merge", "Switch", "Exit", "NextIteration", "Identity",
                  "RefEnter", "RefMerge", "RefSwitch", "RefExit", "RefNextIteration"})
_NUMPY = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}


def has_arrays(graph: TfjsGraph) -> bool:
    """Whether any node of ``graph``'s main body is a TF1 TensorArray op."""
    return any(n.op.startswith("TensorArray") for n in graph.nodes)


def dense(graph: TfjsGraph) -> TfjsGraph:
    """``graph`` with its TF1 TensorArrays as dense tensors (``graph`` itself where it has
    none)."""
    if not has_arrays(graph):
        return graph
    weights = dict(graph.weights)
    nodes = _Rewriter(graph.nodes, weights).run()
    return TfjsGraph(nodes, weights, graph.inputs, graph.outputs, versions=graph.versions,
                     extra=graph.extra, quantization=graph.quantization, source=graph.source,
                     functions=dict(graph.functions))


def _fail(node: TfNode, why: str) -> UnsupportedError:
    return UnsupportedError(f"{node.op} node {node.name!r}: {why}", layer=node.name)


def _ref(ref: str) -> str:
    name, k = input_name(ref)
    return f"{name}:{k}"


def _data(node: TfNode) -> list[str]:
    return [r for r in node.inputs if not r.startswith("^")]


def _controls(node: TfNode) -> list[str]:
    return [r for r in node.inputs if r.startswith("^")]


class _Rewriter:
    def __init__(self, nodes: list[TfNode], weights: dict[str, np.ndarray]) -> None:
        self.nodes = nodes
        self.by_name = {n.name: n for n in nodes}
        self.weights = weights
        self.added: list[TfNode] = []
        self.used = set(self.by_name) | set(weights)
        self.initials: set[str] = set()  # the nodes holding arrays' first values

    # --- tracing: which array a handle or flow ref belongs to --------------------------------
    def array_of(self, ref: str) -> TfNode | None:
        """The ``TensorArrayV3`` node a handle or flow ref comes from (through pass-through
        ops and the array ops' flow outputs), or None."""
        seen: set[str] = set()
        while True:
            name = input_name(ref)[0]
            node = self.by_name.get(name)
            if node is None or name in seen:
                return None
            seen.add(name)
            if node.op == "TensorArrayV3":
                return node
            data = _data(node)
            # a pass-through op, or a Scatter/Write's flow (whose input 0 is the handle)
            if not data or node.op not in PASS | {"TensorArrayScatterV3", "TensorArrayWriteV3"}:
                return None
            ref = data[0]

    def unique(self, base: str) -> str:
        name, i = base, 0
        while name in self.used:
            i += 1
            name = f"{base}_{i}"
        self.used.add(name)
        return name

    def const(self, base: str, value: np.ndarray) -> str:
        name = self.unique(f"{base}/dense_array_const")
        value = np.asarray(value)
        dtype = {np.dtype(np.int32): "int32", np.dtype(np.float32): "float32",
                 np.dtype(np.bool_): "bool"}[value.dtype]
        self.weights[name] = value
        self.added.append(const_node(name, dtype, list(value.shape)))
        return name

    def op(self, base: str, suffix: str, op: str, inputs: list[str], attrs: dict | None = None
           ) -> str:
        name = self.unique(f"{base}/dense_array/{suffix}")
        self.added.append(TfNode(name, op, inputs, attrs or {}))
        return name

    # --- the pass -----------------------------------------------------------------------------
    def run(self) -> list[TfNode]:
        arrays = [n for n in self.nodes if n.op == "TensorArrayV3"]
        for node in self.nodes:
            if node.op.startswith("TensorArray") and node.op not in ARRAY_OPS:
                raise _fail(node, "this TensorArray op is not supported (only TensorArrayV3, "
                                  "ScatterV3, ReadV3, WriteV3, GatherV3 and SizeV3 are); "
                                  "convert the model from TF2 code, whose tensor lists are")
        for node in arrays:
            if attr_bool(node, "dynamic_size", False):
                raise _fail(node, "a TensorArray that grows (dynamic_size=true) is not "
                                  "supported; only fixed-size arrays (tf.map_fn's) are")
        flows = {f"{a.name}:1": a.name for a in arrays}  # new flow refs of TensorArrayV3:1
        out: list[TfNode] = []
        for node in self.nodes:
            self.added = []
            replacement = self.rewrite(node, flows)
            out.extend(self.added)
            out.append(replacement)
        out = [TfNode(n.name, n.op, [self._renamed(r, flows) for r in n.inputs], n.attrs,
                      n.device) for n in out]
        return self.retype(out)

    @staticmethod
    def _renamed(ref: str, flows: dict[str, str]) -> str:
        if ref.startswith("^"):
            return ref
        return flows.get(_ref(ref), ref)

    def rewrite(self, node: TfNode, flows: dict[str, str]) -> TfNode:
        if node.op not in ARRAY_OPS:
            return node
        data, controls, n = _data(node), _controls(node), node.name
        array = node if node.op == "TensorArrayV3" else self.array_of(data[0])
        if array is None:
            raise _fail(node, "its TensorArray handle does not come from a TensorArrayV3 "
                              "node of the graph")
        dtype = attr_type(array, "dtype", "float32") or "float32"
        axis0 = self.const(n, np.asarray(0, np.int32)) if node.op in (
            "TensorArrayReadV3", "TensorArrayGatherV3") else ""
        if node.op == "TensorArrayV3":
            flows[f"{n}:1"] = self.initial(node, dtype)
            # the handle is the size from now on (TensorArraySizeV3 reads it)
            return TfNode(n, "Identity", [data[0], *controls], {"T": a_type("int32")})
        if node.op == "TensorArraySizeV3":
            return TfNode(n, "Identity", [data[0], *controls], {"T": a_type("int32")})
        if node.op == "TensorArrayReadV3":
            return TfNode(n, "GatherV2", [data[2], data[1], axis0, *controls],
                          {"batch_dims": a_int(0)})
        if node.op == "TensorArrayGatherV3":
            return TfNode(n, "GatherV2", [data[2], data[1], axis0, *controls],
                          {"batch_dims": a_int(0)})
        handle, index, value, flow = data[:4]
        count = self.op(n, "count", "Reshape", [handle, self.const(n, np.asarray([1],
                                                                                 np.int32))])
        value_shape = self.op(n, "value_shape", "Shape", [value])
        if node.op == "TensorArrayScatterV3":
            rows = self.op(n, "row_shape", "StridedSlice",
                           [value_shape, self.const(n, np.asarray([1], np.int32)),
                            self.const(n, np.asarray([0], np.int32)),
                            self.const(n, np.asarray([1], np.int32))],
                           {**_slice(), "end_mask": a_int(1)})
            full = self.op(n, "full_shape", "ConcatV2",
                           [count, rows, self.const(n, np.asarray(0, np.int32))],
                           {"N": a_int(2)})
            where = self.op(n, "indices", "ExpandDims",
                            [index, self.const(n, np.asarray(-1, np.int32))])
            update = value
        else:  # TensorArrayWriteV3
            full = self.op(n, "full_shape", "ConcatV2",
                           [count, value_shape, self.const(n, np.asarray(0, np.int32))],
                           {"N": a_int(2)})
            where = self.op(n, "index", "Reshape",
                            [index, self.const(n, np.asarray([1, 1], np.int32))])
            update = self.op(n, "update", "ExpandDims",
                             [value, self.const(n, np.asarray(0, np.int32))])
        grown = self.op(n, "broadcast", "BroadcastTo", [flow, full])
        return TfNode(n, "TensorScatterUpdate", [grown, where, update, *controls],
                      {"T": a_type(dtype)})

    def initial(self, array: TfNode, dtype: str) -> str:
        """The node holding ``array``'s value before any write: zeros ``[n, *S]``."""
        n = array.name
        shape = self.element_shape(array)
        zero = self.const(n, np.zeros((), _NUMPY.get(dtype, np.float32)))
        if shape is None:  # only a Scatter fills it (element_shape checked): any rank will do
            return self._initial(self.op(n, "initial", "Identity", [zero], {"T": a_type(dtype)}))
        count = self.op(n, "count", "Reshape", [_data(array)[0],
                                                self.const(n, np.asarray([1], np.int32))])
        dims = np.asarray([1 if d is None or d < 0 else d for d in shape], np.int32)
        full = self.op(n, "shape", "ConcatV2", [count, self.const(n, dims),
                                                self.const(n, np.asarray(0, np.int32))],
                       {"N": a_int(2)})
        return self._initial(self.op(n, "initial", "Fill", [full, zero], {"T": a_type(dtype)}))

    def _initial(self, name: str) -> str:
        self.initials.add(name)
        return name

    def element_shape(self, array: TfNode) -> list[int | None] | None:
        """``array``'s element shape from its own or its Gathers' ``element_shape`` (None
        where the rank is unknown and only Scatters write it)."""
        found = _attr_shape(array)
        users = [n for n in self.nodes if n.op in ARRAY_OPS and n.op != "TensorArrayV3"
                 and self.array_of(_data(n)[0]) is array]
        for user in users:
            if found is None and user.op == "TensorArrayGatherV3":
                found = _attr_shape(user)
        if found is None and any(u.op == "TensorArrayWriteV3" for u in users):
            raise _fail(array, "its element shape has an unknown rank, and it is written "
                               "element by element (give the TensorArray an element_shape)")
        return found

    def retype(self, nodes: list[TfNode]) -> list[TfNode]:
        """Pass-through ops carrying a flow typed with its array's dtype, and those carrying
        a handle typed int32 (TF types them float32 and resource)."""
        by_name = {n.name: n for n in nodes}
        kinds: dict[str, str] = {}  # node name -> dtype its output 0 now has
        for node in nodes:
            if node.name in self.by_name and self.by_name[node.name].op == "TensorArrayV3":
                kinds[node.name] = "int32"
            elif node.op == "TensorScatterUpdate" or node.name in self.initials:
                kinds[node.name] = attr_type(node, "T", "float32") or "float32"
        changed = True
        while changed:
            changed = False
            for node in nodes:
                data = _data(node)
                if node.op not in PASS or node.name in kinds or not data:
                    continue
                source = [kinds.get(input_name(r)[0]) for r in data]
                known = [s for s in source if s is not None]
                if known:
                    kinds[node.name] = known[0]
                    changed = True
        return [TfNode(n.name, n.op, n.inputs, {**n.attrs, "T": a_type(kinds[n.name])},
                       n.device) if n.op in PASS and n.name in kinds and n.name in by_name
                else n for n in nodes]


def _attr_shape(node: TfNode) -> list[int | None] | None:
    value = node.attrs.get("element_shape")
    if not isinstance(value, dict) or "shape" not in value:
        return None
    return decode_shape(value["shape"])


def _slice() -> dict:
    return {"begin_mask": a_int(0), "end_mask": a_int(0), "ellipsis_mask": a_int(0),
            "new_axis_mask": a_int(0), "shrink_axis_mask": a_int(0)}
