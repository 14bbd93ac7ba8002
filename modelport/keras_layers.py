"""Keras layers that modelport writes where stock Keras has none.

ONNX's LRN (AlexNet, Inception v1, ZFNet, ...) has no Keras 3 layer and cannot be composed from
stock layers: its exponent (0.75 in practice) needs a fractional power, which no stock layer
computes. modelport writes it as ``LocalResponseNormalization``, registered under the package
``modelport``; import this module before loading such a model in Keras 3::

    import keras
    import modelport.keras_layers  # registers modelport>LocalResponseNormalization
    model = keras.saving.load_model("alexnet.h5")

The TF.js twin is ``modelport/js/modelport_layers.js``. This module imports Keras, which
modelport itself never needs; nothing else in modelport imports it.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="modelport")
class LocalResponseNormalization(keras.layers.Layer):
    """ONNX LRN over the last (channel) axis.

    ``y = x / (bias + alpha / size * sum(x[c - lo .. c + hi] ** 2)) ** beta`` with
    ``lo = (size - 1) // 2`` and ``hi = size - 1 - lo``; channels outside the tensor count as 0.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.size, self.alpha = int(size), float(alpha)
        self.beta, self.bias = float(beta), float(bias)
        self.supports_masking = True

    def call(self, inputs):
        """The LRN of ``inputs`` (see the class): the squares summed over a zero-padded window of
        ``size`` channels."""
        lo = (self.size - 1) // 2
        hi = self.size - 1 - lo
        rank = len(inputs.shape)
        squared = ops.pad(ops.square(inputs), [[0, 0]] * (rank - 1) + [[lo, hi]])
        channels = inputs.shape[-1]
        total = squared[..., 0:channels]
        for i in range(1, self.size):
            total = total + squared[..., i:i + channels]
        return inputs / ops.power(self.bias + (self.alpha / self.size) * total, self.beta)

    def compute_output_shape(self, input_shape):
        """The input's shape: LRN keeps it."""
        return input_shape

    def get_config(self) -> dict:
        """The base layer's config plus size, alpha, beta and bias."""
        return {**super().get_config(), "size": self.size, "alpha": self.alpha,
                "beta": self.beta, "bias": self.bias}
