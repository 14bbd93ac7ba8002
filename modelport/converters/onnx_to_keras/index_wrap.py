"""The negative-index wrap before a table lookup, dropped where the lookup does it anyway.

Keras 3's ``Embedding`` on TensorFlow is ``ops.take(embeddings, x)``, which wraps negative
indices first (``where(x < 0, x + N, x)``); tf2onnx writes that as ``Cast``, ``Less``,
``Not``, ``Mul`` and ``Add`` nodes before the ``Gather``. ONNX's ``Gather`` (and Keras's
``Embedding``) already read index ``i`` in ``[-N, N)`` as row ``i mod N``, so a computation
``f`` of the indices with ``f(i) mod N == i mod N`` on all of ``[-N, N)`` changes no looked-up
row. Such an ``f`` (elementwise ops of the indices and scalar constants only) is run on every
index of that range with ``onnx.reference``, and where it passes, the ``Gather`` reads the
indices themselves: the raising then sees the ``Embedding`` the model had.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir

from ..onnx_normalize import const_array, optional_input
from ..rewire import remove_unread

STANDARD = ("", "ai.onnx")
ELEMENTWISE = {"Add", "Sub", "Mul", "Cast", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
               "Not", "Where", "Equal", "And", "Or", "Neg", "Abs", "Mod", "Identity"}
MAX_NODES = 24
MAX_ROWS = 1 << 22


def _subgraph(idx: ir.Value) -> tuple[ir.Value, list[ir.Node]] | None:
    """The one non-constant source of ``idx`` and the elementwise nodes between, in order."""
    nodes: dict[int, ir.Node] = {}
    sources: dict[int, ir.Value] = {}
    stack = [idx]
    while stack:
        v = stack.pop()
        c = const_array(v)
        if c is not None:
            if c.size != 1:
                return None
            continue
        node = v.producer()
        if node is None or node.domain not in STANDARD or node.op_type not in ELEMENTWISE:
            sources[id(v)] = v
            continue
        if id(node) in nodes:
            continue
        nodes[id(node)] = node
        if len(nodes) > MAX_NODES:
            return None
        stack.extend(x for x in node.inputs if x is not None)
    if len(sources) != 1 or not nodes:
        return None
    source = next(iter(sources.values()))
    if source.dtype not in (ir.DataType.INT32, ir.DataType.INT64):
        return None
    order = {id(n): i for i, n in enumerate(idx.graph or [])} if idx.graph is not None else {}
    return source, sorted(nodes.values(), key=lambda n: order.get(id(n), 0))


def _wraps(source: ir.Value, nodes: list[ir.Node], idx: ir.Value, rows: int, opset: int) -> bool:
    """``idx`` computed from every index in [-rows, rows) is that index modulo ``rows``."""
    from onnx.reference import ReferenceEvaluator

    protos = [ir.serde.serialize_node(n) for n in nodes]
    inits = []
    seen = set()
    for n in nodes:
        for v in n.inputs:
            c = const_array(v) if v is not None else None
            if v is not None and c is not None and v.name not in seen:
                seen.add(v.name)
                inits.append(onnx.numpy_helper.from_array(np.asarray(c), v.name))
    if source.name is None or idx.name is None or source.dtype is None:
        return False
    dtype = source.dtype.numpy()
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    graph = onnx.helper.make_graph(
        protos, "wrap", [onnx.helper.make_tensor_value_info(source.name, elem, None)],
        [onnx.helper.make_tensor_value_info(idx.name, 0, None)], inits)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    every = np.arange(-rows, rows, dtype=dtype)
    try:
        (got,) = ReferenceEvaluator(model).run(None, {source.name: every})
    except Exception:  # noqa: BLE001 - what the reference cannot run proves nothing
        return False
    got = np.asarray(got)
    return got.shape == every.shape and got.dtype.kind in "iu" and \
        bool(np.array_equal(np.mod(got, rows), np.mod(every, rows)))


def drop_index_wraps(model: ir.Model) -> int:
    """Let each Gather of rows of a constant table read its raw indices where what computes
    them only wraps negative ones; how many."""
    graph = model.graph
    opset = model.opset_imports.get("", 13)
    done = 0
    for node in list(graph):
        if node.op_type != "Gather" or node.domain not in STANDARD:
            continue
        axis = node.attributes.get("axis")
        table = const_array(optional_input(node, 0))
        idx = optional_input(node, 1)
        if table is None or table.ndim < 1 or idx is None or \
                (axis is not None and int(axis.value) != 0) or table.shape[0] > MAX_ROWS:
            continue
        found = _subgraph(idx)
        if found is None or not _wraps(found[0], found[1], idx, int(table.shape[0]), opset):
            continue
        node.replace_input_with(1, found[0])
        done += 1
    if done:
        remove_unread(graph, ELEMENTWISE)
    return done
