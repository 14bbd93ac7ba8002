"""TF.js graph-model -> ONNX: ``driver.convert(graph: TfjsGraph) -> onnx_ir.Model``.

One mapping per TF op, registered in ``core.MAPPINGS`` by the family modules (``ops``, ``nn``,
``extra``), which import ``core`` and never the driver; 1:1 ops are rows of
``converters.tf_op_table``.
"""
