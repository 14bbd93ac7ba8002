"""What tfjs-layers 4.22 can run: the classes it registers and the settings it mishandles.

Every fact was seen in real ``@tensorflow/tfjs`` 4.22: a class missing from its registry fails to
load; a setting listed fails to load or loads and computes different numbers. Per class they are
its facts in ``layer_facts`` (``tfjs``, ``tfjs_blockers``, ``tfjs_max_rank``, ``tfjs_rewrite``);
what applies to every class (activations, dtypes, wrapped layers) is here. The layers-model writer
refuses a model with any of them, naming the layer and the reason.
"""

from __future__ import annotations

import copy

from ..errors import ModelportError
from . import LayersModel, tfjs_rewrites
from .keras_dialect import LEGACY_HARD_SIGMOID
from .layer_facts import FACTS
from .layer_facts.recurrent import mirrored_backward

# Classes tfjs-layers 4.22 registers that modelport has no other fact about.
TFJS_ONLY_CLASSES = frozenset({"CategoryEncoding"})
TFJS_ACTIVATIONS = {"elu", "hard_sigmoid", "linear", "relu", "relu6", "selu", "sigmoid",
                    "softmax", "softplus", "softsign", "tanh", "swish", "mish", "gelu", "gelu_new"}


def loads_in_tfjs(class_name: str) -> bool:
    """Whether tfjs-layers 4.22 has the class (modelport's own layers: once
    modelport/js/modelport_layers.js has registered them)."""
    facts = FACTS.get(class_name)
    if facts is None:
        return class_name in TFJS_ONLY_CLASSES
    return facts.tfjs or facts.module is not None


def prepare(model: LayersModel) -> LayersModel:
    """``prepare_with_notes`` without the notes."""
    return prepare_with_notes(model)[0]


def prepare_with_notes(model: LayersModel) -> tuple[LayersModel, list[str]]:
    """A copy of ``model`` with the equivalent rewrites tfjs-layers needs (weights are shared),
    and one line per rewrite: each class's ``tfjs_rewrite`` (``Reshape``: a ``-1`` in
    ``target_shape`` replaced by the size it stands for, where the input shape is static), and
    the compositions of ``tfjs_rewrites`` (``Subtract``, causal ``Conv1D``).
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
        else:
            facts = FACTS.get(layer.class_name)
            rewrite = facts.tfjs_rewrite if facts is not None else None
            rewritten = rewrite(layer, specs) if rewrite is not None else None
            if rewritten is not None:
                layer.config, note = rewritten
                notes.append(note)
    # layers tfjs-layers lacks, as exact compositions of layers it has (Subtract, causal Conv1D)
    notes.extend(tfjs_rewrites.rewrite(out, specs))
    return out, notes


def layer_blockers(class_name: str, config: dict) -> list[str]:
    """Reasons tfjs-layers cannot run this layer config (empty when it can)."""
    # modelport's own layers load once modelport/js/modelport_layers.js has registered them
    if not loads_in_tfjs(class_name):
        return [f"tfjs-layers 4.22 has no {class_name} layer"]
    facts = FACTS.get(class_name)
    rules = facts.tfjs_blockers if facts is not None else ()
    reasons = [rule.reason for rule in rules if rule.applies(config)]
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
                key == "backward_layer" and mirrored_backward(config)):
            reasons.extend(layer_blockers(inner["class_name"], inner.get("config") or {}))
    return reasons


def blockers(model: LayersModel) -> list[tuple[str, str, str]]:
    """``(layer name, class, reason)`` for everything that keeps ``model`` out of tfjs-layers."""
    found: list[tuple[str, str, str]] = []
    specs: dict = {}  # the graph's shapes, inferred once when a layer needs them
    for layer in model.iter_layers():
        if layer.model is not None:
            continue
        found.extend((layer.name, layer.class_name, reason)
                     for reason in layer_blockers(layer.class_name, layer.config))
        facts = FACTS.get(layer.class_name)
        limit = facts.tfjs_max_rank if facts is not None else None
        if limit is not None and _input_rank(model, layer, specs) > limit[0]:
            found.append((layer.name, layer.class_name, limit[1]))
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
