"""What tfjs-layers 4.22 computes for a layers-model whose config it reads otherwise than Keras.

A layers-model file means what real tfjs computes from it. Where tfjs-layers runs a config
differently from Keras and the difference changes numbers rather than failing to load, this
module gives the Keras config that computes tfjs's numbers, so that the NumPy Keras reference
(``TfjsLayersEngine`` without real tfjs) and the read-back check judge the file as tfjs runs it,
not as Keras would. Each fact here was read in the tfjs-layers 4.22 sources and seen in real
tfjs (tests/interop/test_tfjs_layers_axes.py):

- ``Concatenate`` with an axis below -1: the backend's ``concatenate`` maps every negative axis
  to the rank, so the tensors are joined along the last axis (``axis=-1``), while the layer's
  output shape says Keras's. ``BatchNormalization``, ``LayerNormalization`` and ``Dot`` count a
  negative axis from the back as Keras does; ``Softmax`` refuses an axis that is not the last
  (tfjs-core's softmax throws); ``Flatten`` and ``Permute`` take no negative axis.
- ``BatchNormalization`` over an axis other than the last: tfjs's CPU ``batchNorm`` kernel walks
  the mean, variance, gamma and beta cyclically over the flat input, so every axis but the last
  gets other statistics. No Keras config computes that: ``uncomputable`` names such layers (the
  read-back check of a written file refuses them; the reference still computes Keras's BN).
"""

from __future__ import annotations

import copy

from ..errors import ModelportError
from . import Layer, LayersModel


def divergences(model: LayersModel) -> list[tuple[str, str]]:
    """``(layer name, reason)`` for each layer (nested models too) tfjs-layers 4.22 computes
    differently from Keras."""
    found = [(layer.name, reason) for layer in model.iter_layers()
             if (reason := _divergence(layer)) is not None]
    return found + uncomputable(model)


def uncomputable(model: LayersModel) -> list[tuple[str, str]]:
    """``(layer name, reason)`` for each layer (nested models too) whose tfjs numbers no Keras
    config computes: a BatchNormalization over another axis than the last, or a Softmax (which
    tfjs refuses to run)."""
    from .keras_shapes import infer

    found = []
    try:
        specs = infer(model)
    except ModelportError:
        specs = {}
    for layer in model.layers:
        if layer.model is not None:
            found += uncomputable(layer.model)
            continue
        axis = layer.config.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        spec = specs.get((layer.name, 0, 0))
        why = _LAST_AXIS_ONLY.get(layer.class_name)
        if why is None or not isinstance(axis, int) or spec is None \
                or axis % len(spec.shape) == len(spec.shape) - 1:
            continue
        found.append((layer.name, f"{layer.class_name}(axis={axis}): {why}"))
    return found


def as_computed(model: LayersModel) -> LayersModel:
    """``model`` with each config tfjs-layers 4.22 computes differently from Keras replaced by
    the config Keras computes tfjs's numbers with (a copy; weights shared; ``model`` itself
    when nothing differs)."""
    if not any(_divergence(layer) is not None for layer in model.iter_layers()):
        return model
    out = copy.copy(model)
    out.layers = [copy.copy(layer) for layer in model.layers]
    for layer in out.layers:
        if layer.model is not None:
            layer.model = as_computed(layer.model)
        elif _divergence(layer) is not None:
            layer.config = _TFJS_CONFIG[layer.class_name](layer.config)
    return out


def _divergence(layer: Layer) -> str | None:
    if layer.model is not None or layer.class_name not in _TFJS_CONFIG:
        return None
    axis = layer.config.get("axis", -1)
    if isinstance(axis, int) and axis < -1:
        return (f"Concatenate(axis={axis}): tfjs-layers 4.22 concatenates along the last "
                "axis for any negative axis")
    return None


# classes tfjs-layers 4.22 computes over the last axis only (a rank is needed to tell)
_LAST_AXIS_ONLY = {
    "BatchNormalization": "tfjs-layers 4.22's CPU kernel normalizes the last axis only (it "
                          "cycles the statistics over the flat input)",
    "Softmax": "tfjs-core 4.22's softmax throws on any axis but the last",
}


def _last_axis(config: dict) -> dict:
    return {**config, "axis": -1}


_TFJS_CONFIG = {"Concatenate": _last_axis}
