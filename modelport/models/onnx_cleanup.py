"""The last step before any ONNX model is written (Keras, TF.js or ONNX source alike).

1. Initializers nothing reads are dropped, in every graph (a branch's or a loop body's too):
   a converter leaves some behind (the constants a rewrite replaced by its own copy), as may a
   source model; onnxruntime prints a warning for each one on every load.
2. A model stamped with a newer IR version than its contents need (onnx >= 1.23 stamps IR 14
   on any model, which onnxruntime 1.31 refuses) is stamped with the oldest IR version that
   holds them: the one its opsets belong to, raised by the newest feature it uses (IR
   versions only add features: float8 types in 9, int4 in 10, ...). The file is the same model.
"""

from __future__ import annotations

import onnx_ir as ir

# The IR version that introduced each tensor type newer than IR 8 (onnx.proto).
_TYPE_IR = {
    ir.DataType.FLOAT8E4M3FN: 9, ir.DataType.FLOAT8E4M3FNUZ: 9, ir.DataType.FLOAT8E5M2: 9,
    ir.DataType.FLOAT8E5M2FNUZ: 9, ir.DataType.UINT4: 10, ir.DataType.INT4: 10,
}
for _name, _version in (("FLOAT4E2M1", 11), ("FLOAT8E8M0", 12), ("UINT2", 13), ("INT2", 13),
                        ("FLOAT6E2M3", 14), ("FLOAT6E3M2", 14)):
    if hasattr(ir.DataType, _name):  # (types an older onnx_ir does not know cannot occur)
        _TYPE_IR[getattr(ir.DataType, _name)] = _version
# Local functions (IR 8), with attributes (9), overloads and metadata_props (10).
_FUNCTIONS_IR = 10


def finalize(model: ir.Model) -> None:
    """``model`` as it is written, in place: unused initializers dropped, the IR version no
    newer than its contents need (see the module's docstring)."""
    drop_unused_initializers(model)
    needed = needed_ir_version(model)
    if needed is not None and model.ir_version > needed:
        model.ir_version = needed


def drop_unused_initializers(model: ir.Model) -> int:
    """Remove the initializers no node reads (graph inputs and outputs stay); how many went."""
    dropped = 0
    for graph in model.graphs():
        for name, value in list(graph.initializers.items()):
            if not value.uses() and not value.is_graph_output() and not value.is_graph_input():
                graph.initializers.pop(name)
                dropped += 1
    return dropped


def needed_ir_version(model: ir.Model) -> int | None:
    """The oldest IR version that holds ``model``: that of its opsets, raised by the types and
    functions it uses; None where it cannot be told (an opset this onnx does not know)."""
    import onnx  # heavy: only writers need it

    known = onnx.helper.OP_SET_ID_VERSION_MAP  # (domain, version) -> IR version
    domains = {domain for domain, _ in known}
    needed = 3
    for domain, version in model.opset_imports.items():
        domain = domain or "ai.onnx"
        if (domain, version) in known:
            needed = max(needed, known[domain, version])
        elif domain in domains:
            return None  # an opset newer than this onnx knows: the stamp stays
    if model.functions:
        needed = max(needed, _FUNCTIONS_IR)
    for graph in model.graphs():
        values = [*graph.inputs, *graph.outputs, *graph.initializers.values()]
        values += [v for node in graph for v in node.outputs]
        for v in values:
            dtype = v.dtype if v.type is not None else None
            if dtype is not None:
                needed = max(needed, _TYPE_IR.get(dtype, 0))
        if any(node.metadata_props for node in graph):
            needed = max(needed, _FUNCTIONS_IR)  # node metadata_props came with IR 10
    return needed
