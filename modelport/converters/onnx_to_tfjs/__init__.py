"""ONNX -> TF.js graph-model: ``driver.convert(model: onnx_ir.Model) -> TfjsGraph``.

One rule per ONNX op, registered in ``core.RULES`` by the family modules (``math_ops``, ``nn``,
``norm``, ``resize``, ``shapes``), which import ``core`` and never the driver.
"""
