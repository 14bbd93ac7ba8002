"""Bytes <-> models: each module reads and writes one file format into the representations of
``modelport.models`` (``keras_h5``, ``keras_v3``, ``tfjs_layers`` with ``tfjs_manifest`` for the
weight shards, ``tfjs_graph``, ``onnx``); ``sniff`` recognises a format from the content,
``loading.load`` dispatches on it, ``checks`` refuses what a file declares before trusting it.
"""
