"""A library function of a TF.js graph-model as a graph of its own.

``as_graph(graph, name, shapes)`` gives the ``TfjsGraph`` that tfjs runs for function ``name``
(``operation_mapper.mapFunction``): a ``Placeholder`` per input arg (signature key = arg name),
the function's nodes, and its outputs in ``outputArg`` order, with the graph's weights for its
``Const`` nodes and the whole library (functions call functions). Tensor references in TF's
function form (``node:out_name:k``) become ``node:j``, j the output's index among the op's
outputs (output lists of the multi-output ops functions hold; for any other op, k).
"""

from __future__ import annotations

from .tfjs_graph import TensorInfo, TfjsGraph, TfNode, a_shape, a_type

# op -> its named outputs, in order, where the op has more than one
OUTPUT_NAMES: dict[str, list[str]] = {
    "TopKV2": ["values", "indices"], "Unique": ["y", "idx"],
    "FusedBatchNorm": ["y", "batch_mean", "batch_variance", "reserve_space_1",
                       "reserve_space_2"],
    "FusedBatchNormV3": ["y", "batch_mean", "batch_variance", "reserve_space_1",
                         "reserve_space_2", "reserve_space_3"],
}


def normal_ref(ref: str, ops: dict[str, str]) -> str:
    """``ref`` as ``node:k`` (``^node`` and ``node`` kept); ``ops``: node name -> op."""
    parts = ref.split(":")
    if ref.startswith("^") or len(parts) != 3:
        return ref
    node, out_name, k = parts
    names = OUTPUT_NAMES.get(ops.get(node, ""))
    index = names.index(out_name) + int(k) if names and out_name in names else int(k)
    return f"{node}:{index}"


def as_graph(graph: TfjsGraph, name: str,
             shapes: list[list[int | None] | None] | None = None) -> TfjsGraph:
    """Function ``name`` of ``graph``'s library as a graph; ``shapes``: its args' shapes where
    known (None: unknown rank)."""
    fn = graph.functions[name]
    ops = {n.name: n.op for n in fn.nodes}
    shapes = shapes or [None] * len(fn.inputs)
    nodes: list[TfNode] = []
    inputs: list[TensorInfo] = []
    for (arg, dtype), shape in zip(fn.inputs, shapes):
        attrs = {"dtype": a_type(dtype)}
        if shape is not None:
            attrs["shape"] = a_shape(shape)
        nodes.append(TfNode(arg, "Placeholder", [], attrs))
        inputs.append(TensorInfo(arg, f"{arg}:0", dtype, shape))
    nodes.extend(TfNode(node.name, node.op, [normal_ref(r, ops) for r in node.inputs],
                        node.attrs, node.device) for node in fn.nodes)
    outputs = []
    for arg, dtype in fn.outputs:
        ref = normal_ref(fn.ret[arg], ops)
        outputs.append(TensorInfo(arg, ref if ":" in ref else f"{ref}:0", dtype, None))
    # the Consts of every library function (nested control flow reads the others')
    consts = {n.name for f in graph.functions.values() for n in f.nodes if n.op == "Const"}
    weights = {k: v for k, v in graph.weights.items() if k in consts}
    return TfjsGraph(nodes, weights, inputs, outputs, versions=graph.versions,
                     functions=graph.functions)


# What tfjs's GraphModel.execute() refuses (graph_executor: control flow, dynamic shapes, hash
# tables): a graph holding any of these runs only with executeAsync().
ASYNC_OPS = frozenset({
    "Switch", "Merge", "Enter", "Exit", "NextIteration", "StatelessIf", "StatelessWhile", "If",
    "While", "NonMaxSuppressionV2", "NonMaxSuppressionV3", "NonMaxSuppressionV5", "Where",
    "HashTable", "HashTableV2", "LookupTableImport", "LookupTableImportV2", "LookupTableFind",
    "LookupTableFindV2", "LookupTableSize", "LookupTableSizeV2"})


def execute_async_ops(graph: TfjsGraph) -> list[str]:
    """The ops of ``graph`` (its functions included) for which tfjs needs
    ``GraphModel.executeAsync``; empty where ``execute`` runs it."""
    return sorted({n.op for n in graph.all_nodes() if n.op in ASYNC_OPS})
