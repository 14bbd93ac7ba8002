"""The shapes a layer's variables must have, given its config and its input: the check Keras
makes when it loads weights ("Shape mismatch in layer ... Weight expects shape (7, 17).
Received saved weight with shape (7, 16)"), which a file's weights must pass before anything
is converted. The variables of the classes here are floating point, as Keras saves them; an
integer one (which Keras would cast on load) is refused rather than guessed at.

Without it, a config that disagrees with its weights (``units`` edited, a kernel from another
model) converts "successfully": every route computes with the stored arrays, the parity check
compares two computations with the same arrays, and the files written are ones Keras and
TF.js refuse to load.

One rule per layer class: its ``variable_shapes`` in ``layer_facts`` (``RULES`` here is a view of
them), ``rule(config, input spec) -> {variable name: shape}``, ``None`` in a shape where the
input leaves a size open. A class without a rule (attention, EinsumDense, ConvLSTM, adapt()
state) is not checked here; its lowering reads the shapes it needs from the arrays themselves.
"""

from __future__ import annotations

from ..errors import FormatError, ModelportError
from . import LayersModel
from .keras_shapes import TensorSpec, infer
from .layer_facts import VARIABLE_SHAPE_RULES

Shape = tuple
RULES = VARIABLE_SHAPE_RULES  # every class's variable-shape rule, read from its facts


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
