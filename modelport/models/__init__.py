"""In-memory representations shared by every format and converter, and their facts.

``LayersModel`` (``layers.py``) is what Keras ``.h5``, Keras ``.keras`` and TF.js layers-models are read
into; ``TfjsGraph`` (``tfjs_graph.py``) is a TF.js graph-model. ONNX models are ``onnx_ir.Model``
(``onnx_versions.py`` holds the opsets modelport writes). The Keras layer facts (shapes, variables,
dialects, what tfjs-layers supports) live beside them. Nothing in this package reads or writes
files, and it imports nothing of modelport but ``errors`` and ``limits``.
"""

from .layers import Layer, LayersModel, Node, SourceInfo, TensorRef, Weight
from .tfjs_graph import TensorInfo, TfjsGraph, TfNode

__all__ = [
           "Layer",
           "LayersModel",
           "Node",
           "SourceInfo",
           "TensorInfo",
           "TensorRef",
           "TfNode",
           "TfjsGraph",
           "Weight",
]
