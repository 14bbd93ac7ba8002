"""Representation -> representation; no file is read or written here (the import contracts
forbid ``formats``).

``keras_to_onnx/`` lowers Keras layers (one function per class), ``onnx_to_keras/`` raises ONNX
ops into Keras layers (one rule per op), ``onnx_to_tfjs/`` and ``tfjs_to_onnx/`` map between ONNX
and TF ops (``tf_op_table`` holds the 1:1 renames both read). Shared steps: ``onnx_normalize``
(one opset, shape inference, constant folding), ``layout`` (the Transpose-cancelling pass),
``padding`` (TF's SAME padding), ``irbuild`` (building onnx_ir graphs), ``rewire`` (handing a
value's readers to its replacement after a rewrite).
"""
