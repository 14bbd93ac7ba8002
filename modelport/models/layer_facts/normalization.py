"""Normalization layers, and modelport's own LocalResponseNormalization."""

from __future__ import annotations

from .base import TensorSpec, TfjsRule, declarer
from .helpers import axes, leaf, no_variables, same_shape

declare = declarer(__name__)


def _scale_and_center(config: dict) -> list[str]:
    names = []
    if config.get("scale", True):
        names.append("gamma")
    if config.get("center", True):
        names.append("beta")
    return names


def _batch_norm_variable_shapes(config: dict, spec: TensorSpec) -> dict[str, tuple]:
    found = axes(config, spec)
    if len(found) != 1:
        raise ValueError("several axes")  # Keras 2 only; not checked
    shape = (spec.shape[found[0]],)
    return dict.fromkeys(("gamma", "beta", "moving_mean", "moving_variance"), shape)


def _single_axis(cfg: dict) -> None:
    """Keras 2 may write BatchNormalization's axis as a one-element list; Keras 3 wants an int."""
    if isinstance(cfg.get("axis"), list) and len(cfg["axis"]) == 1:
        cfg["axis"] = cfg["axis"][0]


declare("BatchNormalization", shape=same_shape,
        variables=leaf(lambda c: _scale_and_center(c) + ["moving_mean", "moving_variance"]),
        variable_shapes=_batch_norm_variable_shapes, tfjs=True,
        tfjs_max_rank=(4, ("tfjs-layers 4.22 implements batchNormalization for inputs up to "
                           "rank 4")),
        from_keras2=_single_axis)


def _layer_norm_variables(config: dict) -> list[str]:
    # rms_scaling: Keras creates gamma only (whatever center says).
    if config.get("rms_scaling"):
        return ["gamma"]
    return _scale_and_center(config)


def _layer_norm_variable_shapes(config: dict, spec: TensorSpec) -> dict[str, tuple]:
    shape = tuple(spec.shape[a] for a in axes(config, spec))
    return dict.fromkeys(("gamma", "beta"), shape)


declare("LayerNormalization", shape=same_shape, variables=leaf(_layer_norm_variables),
        variable_shapes=_layer_norm_variable_shapes, tfjs=True, tfjs_blockers=(
            TfjsRule(lambda c: bool(c.get("rms_scaling")),
                     "tfjs-layers has no RMS layer normalization"),))


def _group_norm_variable_shapes(config: dict, spec: TensorSpec) -> dict[str, tuple]:
    return dict.fromkeys(("gamma", "beta"), (spec.shape[axes(config, spec)[0]],))


declare("GroupNormalization", shape=same_shape, variables=leaf(_scale_and_center),
        variable_shapes=_group_norm_variable_shapes)

declare("UnitNormalization", shape=same_shape, variables=no_variables)

# adapt() state; absent when mean and variance are given in the config instead.
declare("Normalization", shape=same_shape, variables=leaf(
    lambda c: [] if c.get("mean") is not None else ["mean", "variance", "count"]))

# modelport's own layer (modelport/keras_layers.py, modelport/js/modelport_layers.js), named by
# its registered name, as Keras writes it in .h5 and TF.js files.
declare("modelport>LocalResponseNormalization", shape=same_shape, variables=no_variables,
        module="modelport.keras_layers")


def _rms_norm_variable_shapes(config: dict, spec: TensorSpec) -> dict[str, tuple]:
    # Keras sorts the axes as given (negative ones first) and multiplies by the scale with
    # NumPy broadcasting, so only trailing axes build.
    axis = config.get("axis", -1)
    found = sorted(int(a) for a in (axis if isinstance(axis, (list, tuple)) else [axis]))
    return {"scale": tuple(spec.shape[a] for a in found)}


declare("RMSNormalization", shape=same_shape, variables=leaf(lambda c: ["scale"]),
        variable_shapes=_rms_norm_variable_shapes)
