"""In-memory representations shared by every format and converter, and their facts.

``LayersModel`` (``layers.py``) is what Keras ``.h5``, Keras ``.keras`` and TF.js layers-models
are read into; ``TfjsGraph`` (``tfjs_graph.py``) is a TF.js graph-model. ONNX models are
``onnx_ir.Model`` (``onnx_model.py`` holds the opsets modelport writes). Each Keras layer class's
facts (shape rule, variables, Keras 2 dialect, what tfjs-layers supports) are declared once in
``layer_facts/``; ``keras_shapes``, ``weight_shapes``, ``keras_variables``, ``keras_dialect`` and
``tfjs_support`` apply them to whole models. Nothing in this package reads or writes files, and it
imports nothing of modelport but ``errors``, ``limits`` and ``registry``.
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
