"""Proving a conversion: below the API, above converters and runtime.

``parity`` (tolerances as data, per-output statistics, the report), ``validate`` (run two models
on the same inputs, each in its own engine), ``readback`` (a written Keras or TF.js layers file
read again must be the model meant: layer graph and every weight bit for bit), ``divergence``
(the first Keras layer or ONNX node where a mismatch starts), ``layouts`` (feeding arrays to a
model that holds them channels-first or channels-last), ``options`` (what a check is asked to do).
"""
