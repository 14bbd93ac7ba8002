"""ONNX's own model suites (pytorch-converted, pytorch-operator, light) converted to TF.js
graph-models and run in real ``@tensorflow/tfjs`` under Node.

``cases`` finds the cases and their data, ``suite`` converts them, runs them in a few Node
processes (``modelport.runtime.tfjs_node.run_graph_batch``) and compares, and tabulates the results by model and by op;
``report`` runs everything outside pytest and writes ``RESULTS.md``.
"""
