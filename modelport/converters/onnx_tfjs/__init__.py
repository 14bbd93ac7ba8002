"""ONNX <-> TF.js graph-model op mapping (both directions).

``to_tfjs.convert(model: onnx_ir.Model) -> TfjsGraph`` and
``from_tfjs.convert(graph: TfjsGraph) -> onnx_ir.Model``; ``table.py`` holds the 1:1 op
renames as data, shared by both directions; ops that need surgery have functions.
"""
