"""What tfjs-layers 4.22 can run, as data: classes it registers and settings it mishandles.

Every row was seen in real ``@tensorflow/tfjs`` 4.22: a class missing from its registry fails to
load; a setting listed here either fails to load or loads and computes different numbers. The
layers-model writer refuses a model with any of them, naming the layer and the reason.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ModelportError
from . import LayersModel
from .keras_dialect import LEGACY_HARD_SIGMOID, MODELPORT_LAYERS

# Layer classes registered by tfjs-layers 4.22 (tf.serialization.SerializationMap).
TFJS_LAYER_CLASSES = {
    "Activation", "Add", "AlphaDropout", "Average", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "BatchNormalization", "Bidirectional", "CategoryEncoding", "CenterCrop",
    "Concatenate", "Conv1D", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose",
    "ConvLSTM2D", "Cropping2D", "Dense", "DepthwiseConv2D", "Dot", "Dropout", "ELU", "Embedding",
    "Flatten", "GRU", "GaussianDropout", "GaussianNoise", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Identity",
    "InputLayer", "LSTM", "LayerNormalization", "LeakyReLU", "Masking", "MaxPooling1D",
    "MaxPooling2D", "MaxPooling3D", "Maximum", "Minimum", "Multiply", "PReLU", "Permute", "ReLU",
    "RepeatVector", "Rescaling", "Reshape", "Resizing", "SeparableConv2D", "SimpleRNN", "Softmax",
    "SpatialDropout1D", "ThresholdedReLU", "TimeDistributed", "UpSampling2D", "ZeroPadding2D",
}
TFJS_ACTIVATIONS = {"elu", "hard_sigmoid", "linear", "relu", "relu6", "selu", "sigmoid",
                    "softmax", "softplus", "softsign", "tanh", "swish", "mish", "gelu", "gelu_new"}

_CONVS = ("Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "Conv3DTranspose", "DepthwiseConv2D",
          "SeparableConv2D")
_GLOBAL_POOLS = ("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
                 "GlobalMaxPooling2D")
_RNNS = ("LSTM", "GRU", "SimpleRNN")


@dataclass(frozen=True)
class Rule:
    classes: tuple[str, ...]
    applies: Callable[[dict], bool]
    reason: str


RULES = [
    Rule(("GRU",), lambda c: bool(c.get("reset_after")),
         "tfjs-layers 4.22 does not implement GRU(reset_after=True), the Keras default"),
    Rule(("Conv1D",), lambda c: c.get("padding") == "causal",
         "tfjs-layers 4.22 rejects Conv1D(padding='causal')"),
    Rule(("UpSampling2D",), lambda c: c.get("interpolation", "nearest") != "nearest",
         "tfjs-layers resizes bilinearly without half-pixel centres: different numbers "
         "from Keras"),
    Rule(_GLOBAL_POOLS, lambda c: bool(c.get("keepdims")),
         "tfjs-layers 4.22 ignores keepdims=True on global pooling"),
    Rule(_CONVS, lambda c: c.get("groups", 1) not in (1, None),
         "tfjs-layers has no grouped convolutions"),
    Rule(("Conv2DTranspose", "Conv3DTranspose"), lambda c: c.get("output_padding") is not None,
         "tfjs-layers ignores output_padding"),
    Rule(("Conv2DTranspose", "Conv3DTranspose"),
         lambda c: any(d != 1 for d in _tuple(c.get("dilation_rate", 1))),
         "tfjs-layers has no dilated transposed convolutions"),
    Rule(("ReLU",), lambda c: bool(c.get("negative_slope")) or bool(c.get("threshold")),
         "tfjs-layers' ReLU has only max_value (no negative_slope or threshold)"),
    Rule(("LayerNormalization",), lambda c: bool(c.get("rms_scaling")),
         "tfjs-layers has no RMS layer normalization"),
    Rule(("Dense", "Embedding", "EinsumDense"), lambda c: c.get("lora_rank") is not None,
         "LoRA-adapted layers have extra variables tfjs-layers does not know"),
    Rule(("Dense", "Embedding"), lambda c: c.get("quantization_config") is not None,
         "Keras-quantized layers are not loadable by tfjs-layers"),
    Rule(_RNNS, lambda c: bool(c.get("time_major")), "tfjs-layers has no time_major RNNs"),
    Rule(("ELU",), lambda c: float(c.get("alpha", 1.0)) != 1.0,
         "tfjs-layers 4.22 supports ELU only with alpha=1"),
    Rule(("Reshape",), lambda c: -1 in list(c.get("target_shape") or []),
         "tfjs-layers 4.22 leaves a -1 in Reshape's target_shape unresolved, so the layers "
         "after it cannot be built"),
    Rule(("Bidirectional",), lambda c: not _mirrored_backward(c),
         "the backward layer is not the mirror of the forward layer; tfjs-layers always mirrors"),
]


def _tuple(value: object) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _mirrored_backward(cfg: dict) -> bool:
    backward = cfg.get("backward_layer")
    if backward is None:
        return True
    forward = cfg.get("layer") or {}
    if backward.get("class_name") != forward.get("class_name"):
        return False
    a = {k: v for k, v in forward.get("config", {}).items() if k not in ("name", "go_backwards")}
    b = {k: v for k, v in backward.get("config", {}).items() if k not in ("name", "go_backwards")}
    return a == b and bool(backward["config"].get("go_backwards")) != bool(
        forward.get("config", {}).get("go_backwards"))


def prepare(model: LayersModel) -> LayersModel:
    return prepare_with_notes(model)[0]


def prepare_with_notes(model: LayersModel) -> tuple[LayersModel, list[str]]:
    """A copy of ``model`` with the equivalent rewrites tfjs-layers needs (weights are shared),
    and one line per rewrite.

    * ``Reshape`` with a ``-1``: tfjs-layers leaves it unresolved at build time, so the layers
      after it cannot create their weights; where the input shape is static, the ``-1`` is
      replaced by the size it stands for (the same reshape for every input Keras accepts).
    """
    from .keras_shapes import infer

    out = copy.copy(model)
    out.layers = [copy.copy(layer) for layer in model.layers]
    notes: list[str] = []
    try:
        specs = infer(model)
    except ModelportError:
        specs = {}
    for layer in out.layers:
        if layer.model is not None:
            layer.model, inner = prepare_with_notes(layer.model)
            notes.extend(inner)
        elif layer.class_name == "Reshape" and -1 in list(layer.config.get("target_shape") or []):
            resolved = _resolved_reshape(layer, specs)
            if resolved is not None:
                notes.append(f"{layer.name}: Reshape target_shape {layer.config['target_shape']} "
                             f"-> {resolved}")
                layer.config = {**layer.config, "target_shape": resolved}
    return out, notes


def _resolved_reshape(layer, specs: dict) -> list[int] | None:
    target = list(layer.config["target_shape"])
    sizes = set()
    for node in layer.inbound_nodes:
        refs = node.inputs()
        spec = specs.get((refs[0].layer, refs[0].node, refs[0].tensor)) if refs else None
        if spec is None or any(d is None for d in spec.shape[1:]):
            return None
        sizes.add(math.prod(spec.shape[1:]))
    known = math.prod(d for d in target if d != -1)
    if len(sizes) != 1 or target.count(-1) != 1 or known == 0:
        return None
    total = sizes.pop()
    if total % known:
        return None
    return [total // known if d == -1 else d for d in target]


def layer_blockers(class_name: str, config: dict) -> list[str]:
    """Reasons tfjs-layers cannot run this layer config (empty when it can)."""
    # modelport's own layers load once modelport/js/modelport_layers.js has registered them
    if class_name not in TFJS_LAYER_CLASSES and class_name not in MODELPORT_LAYERS:
        return [f"tfjs-layers 4.22 has no {class_name} layer"]
    reasons = [rule.reason for rule in RULES if class_name in rule.classes and rule.applies(config)]
    for key in ("activation", "recurrent_activation"):
        value = config.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            reasons.append(f"{key} is a serialized object, not a built-in activation name")
        elif value == "hard_sigmoid":
            reasons.append("Keras 3's hard_sigmoid is relu6(x + 3) / 6; tfjs's is "
                           "clip(0.2 x + 0.5, 0, 1)")
        elif value not in TFJS_ACTIVATIONS and value not in ("silu", LEGACY_HARD_SIGMOID):
            reasons.append(f"tfjs-layers has no {value!r} activation")
    dtype = config.get("dtype")
    if isinstance(dtype, str) and dtype not in ("float32", "int32") and class_name != "InputLayer":
        reasons.append(f"dtype policy {dtype!r}: tfjs-layers computes in float32 only")
    for key in ("layer", "backward_layer"):
        inner = config.get(key)
        if isinstance(inner, dict) and "class_name" in inner and not (
                key == "backward_layer" and _mirrored_backward(config)):
            reasons.extend(layer_blockers(inner["class_name"], inner.get("config") or {}))
    return reasons


def blockers(model: LayersModel) -> list[tuple[str, str, str]]:
    """``(layer name, class, reason)`` for everything that keeps ``model`` out of tfjs-layers."""
    found = []
    specs: dict = {}  # the graph's shapes, inferred once when a layer needs them
    for layer in model.iter_layers():
        if layer.model is not None:
            continue
        for reason in layer_blockers(layer.class_name, layer.config):
            found.append((layer.name, layer.class_name, reason))
        if layer.class_name == "BatchNormalization" and _input_rank(model, layer, specs) > 4:
            found.append((layer.name, layer.class_name, "tfjs-layers 4.22 implements "
                          "batchNormalization for inputs up to rank 4"))
        if layer.class_name == "InputLayer" and layer.config.get("dtype") not in (
                None, "float32", "int32", "bool"):
            found.append((layer.name, "InputLayer",
                          f"input dtype {layer.config.get('dtype')!r} is not a tfjs dtype"))
    return found


def _input_rank(model: LayersModel, layer, specs: dict) -> int:
    """The rank of a layer's first input where the graph's shapes say it (else 0); ``specs``
    caches the inferred shapes across calls."""
    from .keras_shapes import infer

    if "shapes" not in specs:
        try:
            specs["shapes"] = infer(model)
        except ModelportError:
            specs["shapes"] = {}
    shapes = specs["shapes"]
    for node in layer.inbound_nodes:
        refs = node.inputs()
        spec = shapes.get((refs[0].layer, refs[0].node, refs[0].tensor)) if refs else None
        if spec is not None:
            return len(spec.shape)
    return 0
