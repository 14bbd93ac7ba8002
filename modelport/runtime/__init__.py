"""Engines that run a model on inputs, nothing else: onnxruntime (CUDA when usable, CPU
otherwise), modelport's NumPy executors of Keras layer semantics (``keras_reference``) and of TF
op semantics (``tfjs_reference``), and real @tensorflow/tfjs under Node (``tfjs_node``).
``engines`` gives them one interface for the check.
"""
