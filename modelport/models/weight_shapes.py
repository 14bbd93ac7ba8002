"""The shapes a layer's variables must have, given its config and its input: the check Keras
makes when it loads weights ("Shape mismatch in layer ... Weight expects shape (7, 17).
Received saved weight with shape (7, 16)"), which a file's weights must pass before anything
is converted. The variables of the classes here are floating point, as Keras saves them; an
integer one (which Keras would cast on load) is refused rather than guessed at.

Without it, a config that disagrees with its weights (``units`` edited, a kernel from another
model) converts "successfully": every route computes with the stored arrays, the parity check
compares two computations with the same arrays, and the files written are ones Keras and
TF.js refuse to load.

One rule per layer class, registered in ``RULES``: ``rule(config, input spec) -> {variable
name: shape}``, ``None`` in a shape where the input leaves a size open. A class without a rule
(attention, EinsumDense, wrappers, adapt() state) is not checked here; its lowering reads the
shapes it needs from the arrays themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..errors import FormatError, ModelportError
from ..registry import Registry
from . import LayersModel
from .keras_shapes import TensorSpec, infer

Shape = tuple
Rule = Callable[[dict, TensorSpec], dict[str, Shape]]
RULES: Registry[Rule] = Registry("Keras variable shape rule")


def register(*class_names: str) -> Callable[[Rule], Rule]:
    def deco(fn: Rule) -> Rule:
        for name in class_names:
            RULES.add(name, fn)
        return fn
    return deco


def check(model: LayersModel) -> None:
    """Raise a FormatError naming the layer and variable whose stored shape contradicts what
    its config and input imply. Nested models are checked on their own inputs. Where shape
    inference cannot run, nothing is checked: the stage that needs shapes reports that."""
    try:
        specs = infer(model)
    except ModelportError:
        return
    fed = _first_inputs(model, specs)
    for layer in model.layers:
        if layer.model is not None:
            check(layer.model)
            continue
        rule = RULES.get(layer.class_name)
        spec = fed.get(layer.name)
        if rule is None or not layer.weights or spec is None:
            continue
        try:
            expected = rule(layer.config, spec)
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError):
            continue  # a malformed config: shape inference (run by every reader) names it
        for weight in layer.weights:
            want = expected.get(weight.path.rsplit("/", 1)[-1])
            have = tuple(weight.array.shape)
            if want is not None and weight.array.dtype.kind != "f":
                # Keras saves a variable in its own dtype, and these classes' are floats
                raise FormatError(f"variable {weight.path!r} is stored as "
                                  f"{weight.array.dtype}, not as floating point",
                                  layer=layer.name)
            if want is not None and not _fits(have, want):
                raise FormatError(
                    f"variable {weight.path!r} is stored with shape {list(have)}, but the "
                    f"layer's config and its input {list(spec.shape)} imply "
                    f"{[d if d is not None else '?' for d in want]}", layer=layer.name)


def _first_inputs(model: LayersModel, specs: dict) -> dict[str, TensorSpec]:
    """Each layer's first input at its first call (the variables' shapes follow from it)."""
    fed: dict[str, TensorSpec] = {}
    if model.kind == "Sequential":
        for before, layer in zip(model.layers, model.layers[1:]):
            spec = specs.get((before.name, 0, 0))
            if spec is not None:
                fed[layer.name] = spec
        return fed
    for layer in model.layers:
        refs = layer.inbound_nodes[0].inputs() if layer.inbound_nodes else []
        spec = specs.get((refs[0].layer, refs[0].node, refs[0].tensor)) if refs else None
        if spec is not None:
            fed[layer.name] = spec
    return fed


def _fits(have: Shape, want: Shape) -> bool:
    return len(have) == len(want) and all(w is None or h == w for h, w in zip(have, want))


def _n(value, rank: int) -> tuple[int, ...]:
    """``kernel_size`` and friends: an int or a list, as Keras accepts them."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * rank
    values = tuple(int(v) for v in value)
    if len(values) != rank:
        raise ValueError(f"{values} for rank {rank}")
    return values


def _channels(config: dict, spec: TensorSpec) -> int | None:
    first = config.get("data_format") == "channels_first"
    return spec.shape[1] if first else spec.shape[-1]


def _axes(config: dict, spec: TensorSpec, default: int = -1) -> tuple[int, ...]:
    axis = config.get("axis", default)
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    rank = len(spec.shape)
    return tuple(int(a) % rank for a in axes)


@register("Dense")
def _dense(config: dict, spec: TensorSpec) -> dict[str, Shape]:
    units = int(config["units"])
    return {"kernel": (spec.shape[-1], units), "bias": (units,)}


@register("Embedding")
def _embedding(config: dict, spec: TensorSpec) -> dict[str, Shape]:
    return {"embeddings": (int(config["input_dim"]), int(config["output_dim"]))}


def _conv(config: dict, spec: TensorSpec, rank: int) -> dict[str, Shape]:
    filters, groups = int(config["filters"]), int(config.get("groups", 1) or 1)
    ch = _channels(config, spec)
    per_group = ch // groups if ch is not None else None
    return {"kernel": _n(config["kernel_size"], rank) + (per_group, filters),
            "bias": (filters,)}


def _conv_transpose(config: dict, spec: TensorSpec, rank: int) -> dict[str, Shape]:
    filters = int(config["filters"])
    return {"kernel": _n(config["kernel_size"], rank) + (filters, _channels(config, spec)),
            "bias": (filters,)}


def _depthwise(config: dict, spec: TensorSpec, rank: int) -> dict[str, Shape]:
    multiplier, ch = int(config.get("depth_multiplier", 1)), _channels(config, spec)
    kernel = _n(config["kernel_size"], rank) + (ch, multiplier)
    # Keras 3 names the depthwise kernel "kernel", Keras 2 "depthwise_kernel"
    return {"depthwise_kernel": kernel, "kernel": kernel,
            "bias": (ch * multiplier if ch is not None else None,)}


def _separable(config: dict, spec: TensorSpec, rank: int) -> dict[str, Shape]:
    multiplier, ch = int(config.get("depth_multiplier", 1)), _channels(config, spec)
    filters = int(config["filters"])
    mid = ch * multiplier if ch is not None else None
    return {"depthwise_kernel": _n(config["kernel_size"], rank) + (ch, multiplier),
            "pointwise_kernel": (1,) * rank + (mid, filters), "bias": (filters,)}


for _rank in (1, 2, 3):
    RULES.add(f"Conv{_rank}D", partial(_conv, rank=_rank))
    RULES.add(f"Conv{_rank}DTranspose", partial(_conv_transpose, rank=_rank))
for _rank in (1, 2):
    RULES.add(f"DepthwiseConv{_rank}D", partial(_depthwise, rank=_rank))
    RULES.add(f"SeparableConv{_rank}D", partial(_separable, rank=_rank))


@register("BatchNormalization")
def _batch_norm(config: dict, spec: TensorSpec) -> dict[str, Shape]:
    axes = _axes(config, spec)
    if len(axes) != 1:
        raise ValueError("several axes")  # Keras 2 only; not checked
    shape = (spec.shape[axes[0]],)
    return dict.fromkeys(("gamma", "beta", "moving_mean", "moving_variance"), shape)


@register("LayerNormalization")
def _layer_norm(config: dict, spec: TensorSpec) -> dict[str, Shape]:
    shape = tuple(spec.shape[a] for a in _axes(config, spec))
    return dict.fromkeys(("gamma", "beta"), shape)


@register("GroupNormalization")
def _group_norm(config: dict, spec: TensorSpec) -> dict[str, Shape]:
    return dict.fromkeys(("gamma", "beta"), (spec.shape[_axes(config, spec)[0]],))


@register("PReLU")
def _prelu(config: dict, spec: TensorSpec) -> dict[str, Shape]:
    shape = list(spec.shape[1:])
    for axis in config.get("shared_axes") or []:
        shape[int(axis) - 1] = 1
    return {"alpha": tuple(shape)}


def _recurrent(config: dict, spec: TensorSpec, gates: int) -> dict[str, Shape]:
    units = int(config["units"])
    bias: Shape = (gates * units,)
    if gates == 3 and config.get("reset_after", True):
        bias = (2, gates * units)
    return {"kernel": (spec.shape[-1], gates * units), "recurrent_kernel": (units, gates * units),
            "bias": bias}


RULES.add("LSTM", partial(_recurrent, gates=4))
RULES.add("GRU", partial(_recurrent, gates=3))
RULES.add("SimpleRNN", partial(_recurrent, gates=1))


@register("Bidirectional")
def _bidirectional(config: dict, spec: TensorSpec) -> dict[str, Shape]:
    """Both directions' variables, keyed by their last name; where the backward layer's
    shapes differ from the forward one's, that key cannot tell them apart: not checked."""
    expected = [RULES[inner["class_name"]](inner["config"], spec)
                for inner in (config["layer"], config.get("backward_layer") or config["layer"])]
    if expected[0] != expected[1]:
        raise ValueError("the two directions differ")
    return expected[0]


@register("TimeDistributed")
def _time_distributed(config: dict, spec: TensorSpec) -> dict[str, Shape]:
    """The wrapped layer's variables, for one time step's input."""
    inner = config["layer"]
    step = TensorSpec(spec.shape[:1] + spec.shape[2:], spec.dtype)
    return RULES[inner["class_name"]](inner["config"], step)
