"""Which variables each Keras layer class owns, in Keras's own order, and where they live.

Every format stores a layer's variables differently (HDF5 by name in "legacy" order, ``.keras``
by position under object paths such as ``layers/lstm/cell/vars/0``, TF.js by name), so all of
them need the same fact: for a layer config, the ordered list of ``(path, trainable)``, where
``path`` is the Keras 3 object path inside the layer with the variable's name last
(``kernel``, ``cell/recurrent_kernel``, ``forward_layer/cell/bias``, ``layer/kernel``).

Keras 3 and Keras 2 agree on this order for every class listed here (checked against files the
real frameworks wrote: ``fixtures/keras2`` and ``fixtures/keras3``).
"""

from __future__ import annotations

from collections.abc import Callable

# Classes whose only state is a cell (Keras 3: attribute ``cell``; the file path has ``cell/``).
RNN_CLASSES = {"LSTM", "GRU", "SimpleRNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}
WRAPPER_CLASSES = {"Bidirectional", "TimeDistributed"}
MODEL_CLASSES = {"Functional", "Model", "Sequential"}

# Layers that own no variables at all.
NO_VARIABLES = {
    "InputLayer", "Activation", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
    "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
    "Flatten", "Reshape", "Permute", "RepeatVector", "Masking", "Identity", "Lambda",
    "Cropping1D", "Cropping2D", "Cropping3D", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
    "ReLU", "LeakyReLU", "ELU", "Softmax", "ThresholdedReLU",
    "Rescaling", "CenterCrop", "Resizing", "UnitNormalization",
    "modelport>LocalResponseNormalization",
}


def _bias(config: dict) -> list[str]:
    return ["bias"] if config.get("use_bias", True) else []


def _norm(config: dict) -> list[str]:
    names = []
    if config.get("scale", True):
        names.append("gamma")
    if config.get("center", True):
        names.append("beta")
    return names


# Leaf layers: the variable names, in the order Keras creates them.
def _layer_norm(config: dict) -> list[str]:
    # rms_scaling: Keras creates gamma only (whatever center says).
    if config.get("rms_scaling"):
        return ["gamma"]
    return _norm(config)


LEAF_VARIABLES: dict[str, Callable[[dict], list[str]]] = {
    "Dense": lambda c: ["kernel"] + _bias(c),
    "Embedding": lambda c: ["embeddings"],
    "PReLU": lambda c: ["alpha"],
    "BatchNormalization": lambda c: _norm(c) + ["moving_mean", "moving_variance"],
    "LayerNormalization": _layer_norm,
    "GroupNormalization": _norm,
    "LSTMCell": lambda c: ["kernel", "recurrent_kernel"] + _bias(c),
    "GRUCell": lambda c: ["kernel", "recurrent_kernel"] + _bias(c),
    "SimpleRNNCell": lambda c: ["kernel", "recurrent_kernel"] + _bias(c),
    "ConvLSTMCell": lambda c: ["kernel", "recurrent_kernel"] + _bias(c),
    # adapt() state; absent when mean and variance are given in the config instead
    "Normalization": lambda c: [] if c.get("mean") is not None else ["mean", "variance", "count"],
}
for _conv in ("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"):
    LEAF_VARIABLES[_conv] = lambda c: ["kernel"] + _bias(c)
for _dw in ("DepthwiseConv1D", "DepthwiseConv2D"):
    LEAF_VARIABLES[_dw] = lambda c: ["depthwise_kernel"] + _bias(c)
for _sep in ("SeparableConv1D", "SeparableConv2D"):
    LEAF_VARIABLES[_sep] = lambda c: ["depthwise_kernel", "pointwise_kernel"] + _bias(c)

# EinsumDense: a bias only where bias_axes is set (Keras 3 also names it "bias").
LEAF_VARIABLES["EinsumDense"] = lambda c: ["kernel"] + (["bias"] if c.get("bias_axes") else [])


def _multi_head_attention(config: dict) -> list[str]:
    """MultiHeadAttention owns EinsumDense sub-layers, each a kernel and (use_bias) a bias.

    Paths are the attribute names ``.keras`` files key them by (``query_dense/vars/0``), in
    the order Keras creates them, which is also its legacy HDF5 order (weight_names
    ``mha/query/kernel``, ``mha/key/kernel``, ``mha/gate/kernel``, ``mha/value/kernel``,
    ``mha/attention_output/kernel``: the sub-layers' *names*, checked against Keras 3.15.1).
    The gate (``use_gate=True``) has no public attribute, so its folder is ``_gate_dense``.
    """
    subs = ["query_dense", "key_dense"] + (["_gate_dense"] if config.get("use_gate") else []) \
        + ["value_dense", "output_dense"]
    names = ["kernel"] + (["bias"] if config.get("use_bias", True) else [])
    return [f"{sub}/{name}" for sub in subs for name in names]


# Layers made of sub-layers that are not themselves in the config: variable paths per class.
COMPOSITE_VARIABLES: dict[str, Callable[[dict], list[str]]] = {
    "MultiHeadAttention": _multi_head_attention,
}

NON_TRAINABLE = {"moving_mean", "moving_variance", "mean", "variance", "count"}
# Names other versions give the same variable (Keras 3 calls DepthwiseConv2D's kernel "kernel").
ALIASES = {"depthwise_kernel": {"kernel"}}


def same_variable(stored_name: str, canonical: str) -> bool:
    """Whether a stored variable name (last path part, ``:0`` dropped) is ``canonical``."""
    return stored_name == canonical or stored_name in ALIASES.get(canonical, ())

_CELL_OF = {"LSTM": "LSTMCell", "GRU": "GRUCell", "SimpleRNN": "SimpleRNNCell",
            "ConvLSTM1D": "ConvLSTMCell", "ConvLSTM2D": "ConvLSTMCell", "ConvLSTM3D": "ConvLSTMCell"}


def is_known(class_name: str) -> bool:
    return (class_name in NO_VARIABLES or class_name in LEAF_VARIABLES or class_name in RNN_CLASSES
            or class_name in WRAPPER_CLASSES or class_name in COMPOSITE_VARIABLES)


def layer_variables(class_name: str, config: dict) -> list[tuple[str, bool]] | None:
    """Ordered ``(path, trainable)`` of a (non-model) layer, or None for an unknown class.

    ``trainable`` is the variable's own flag (batch-norm statistics are never trainable); a
    frozen layer (``trainable: false`` in its config) makes all of its variables non-trainable.
    """
    frozen = config.get("trainable", True) is False
    if class_name in NO_VARIABLES:
        return []
    if class_name in LEAF_VARIABLES:
        names = LEAF_VARIABLES[class_name](config)
        return [(n, n not in NON_TRAINABLE and not frozen) for n in names]
    if class_name in COMPOSITE_VARIABLES:
        return [(p, not frozen) for p in COMPOSITE_VARIABLES[class_name](config)]
    if class_name in RNN_CLASSES:
        names = LEAF_VARIABLES[_CELL_OF[class_name]](config)
        return [(f"cell/{n}", not frozen) for n in names]
    if class_name == "TimeDistributed":
        inner = config["layer"]
        found = layer_variables(inner["class_name"], inner["config"])
        if found is None:
            return None
        return [(f"layer/{p}", t and not frozen) for p, t in found]
    if class_name == "Bidirectional":
        forward = config["layer"]
        backward = config.get("backward_layer") or forward
        fwd = layer_variables(forward["class_name"], forward["config"])
        bwd = layer_variables(backward["class_name"], backward["config"])
        if fwd is None or bwd is None:
            return None
        return ([(f"forward_layer/{p}", t and not frozen) for p, t in fwd]
                + [(f"backward_layer/{p}", t and not frozen) for p, t in bwd])
    return None


def legacy_order(items: list[tuple[object, bool]]) -> list[object]:
    """Keras's HDF5 order: trainable variables first, then the others, each in natural order."""
    return [x for x, t in items if t] + [x for x, t in items if not t]


def snake_case(class_name: str) -> str:
    """Keras's ``to_snake_case``: the name ``.keras`` files use for a layer's weight folder."""
    import re

    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
