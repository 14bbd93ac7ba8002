"""The ``LayerFacts`` record, the ``FACTS`` table keyed by Keras class name, and its lookups.

A family module (``core``, ``conv``, ...) declares each class once with its ``declare``
(``declare = declarer(__name__)``); the
machinery modules of ``models/`` (``keras_shapes``, ``weight_shapes``, ``keras_variables``,
``keras_dialect``, ``tfjs_support``) walk graphs and configs and ask this table about a class.
Nothing here walks a graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ...errors import UnsupportedError
from ...registry import Registry


@dataclass(frozen=True)
class TensorSpec:
    """Shape (``None`` where unknown, e.g. the batch) and dtype name of a symbolic tensor."""

    shape: tuple[int | None, ...]
    dtype: str


# rule(config, input specs, call kwargs) -> output specs, as Keras 3's compute_output_spec.
ShapeRule = Callable[[dict, list[TensorSpec], dict], list[TensorSpec]]
# variables(config) -> ordered (path, trainable), before a frozen config freezes them all; None
# where the class is wrapped around a layer whose variables are unknown.
VariablesRule = Callable[[dict], "list[tuple[str, bool]] | None"]
# variable_shapes(config, first input) -> {variable name: shape}, None where a size is open.
VariableShapeRule = Callable[[dict, TensorSpec], dict[str, tuple]]
# tfjs_rewrite(layer, the graph's specs) -> (new config, note), or None where none is needed.
TfjsRewrite = Callable[[Any, Mapping[tuple, TensorSpec]], "tuple[dict, str] | None"]

# Classes that are models, not layers: they have no facts of their own, only their layers do.
MODEL_CLASSES = frozenset({"Functional", "Model", "Sequential"})


@dataclass(frozen=True)
class TfjsRule:
    """A setting that tfjs-layers 4.22 mishandles: ``applies(config)`` and the reason."""

    applies: Callable[[dict], bool]
    reason: str


@dataclass(frozen=True)
class LayerFacts:
    """Everything modelport knows about one Keras layer class, independent of any route.

    shape: the output specs from config and input specs (``keras_shapes``); None for a class
        modelport only reads and writes the variables of (a cell inside an RNN, EinsumDense).
    variables: the variables' ``(path, trainable)`` in Keras's creation order, paths as ``.keras``
        files nest them (``kernel``, ``cell/bias``, ``forward_layer/cell/kernel``); None: unknown.
    variable_shapes: the shapes the variables must have (``weight_shapes``); None: not checked.
    tfjs: tfjs-layers 4.22 registers the class. ``tfjs_blockers``: settings it mishandles, in
        the order their reasons are reported. ``tfjs_max_rank``: (rank, reason) where it
        implements the class only up to an input rank. ``tfjs_rewrite``: an equivalent config
        it needs instead (``tfjs_support.prepare``).
    keras2_names: canonical (Keras 3) config key -> Keras 2's (and TF.js's) name for it.
    keras2_only: Keras 2 keys Keras 3 rejects -> the value at which dropping them changes
        nothing (None: any value). Another value is kept, and Keras 3 writers refuse it.
    from_keras2: a further in-place fix of a Keras 2 config (run after the renames).
    keras3_missing: why Keras 3 has no such class (a Keras 2 class), None where it has one.
    keras3_blockers: reasons Keras 3 cannot load this config or would compute it differently.
    module: for modelport's own layers (``modelport>...``), the Python module defining them.
    python_class: the Python class's name where it is not the name configs give the class
        (Keras 3 registers GroupedQueryAttention as GroupQueryAttention): ``.keras`` weight
        folders and Keras 3's legacy ``.h5`` configs use it.
    config_defaults: what Keras assumes for a config key a file leaves out, filled in on
        reading; the legacy ``.h5`` writer leaves out a default that loader would misread.
    family: the module that declared the class (``conv``): its lowering and its reference
        live in the modules of the same name (``converters/keras_to_onnx/conv.py``, ...).
    """

    shape: ShapeRule | None = None
    variables: VariablesRule | None = None
    variable_shapes: VariableShapeRule | None = None
    tfjs: bool = False
    tfjs_blockers: tuple[TfjsRule, ...] = ()
    tfjs_max_rank: tuple[int, str] | None = None
    tfjs_rewrite: TfjsRewrite | None = None
    keras2_names: Mapping[str, str] = field(default_factory=dict)
    keras2_only: Mapping[str, Any] = field(default_factory=dict)
    from_keras2: Callable[[dict], None] | None = None
    keras3_missing: str | None = None
    keras3_blockers: Callable[[dict], list[str]] | None = None
    module: str | None = None
    python_class: str | None = None
    config_defaults: Mapping[str, Any] = field(default_factory=dict)
    family: str = ""


FACTS: Registry[LayerFacts] = Registry("Keras layer facts")


Declare = Callable[..., None]


def declarer(module_name: str) -> Declare:
    """The ``declare`` function of one family module, which begins with
    ``declare = declarer(__name__)``: its records name that module as their family, so that no
    declaration repeats it.

    ``declare(*class_names, **facts)`` enters the same facts for ``class_names`` (one call per
    class, or per variant group); the keywords are ``LayerFacts``'s fields.
    """
    family = module_name.rsplit(".", 1)[-1]

    def declare(*class_names: str, **facts: Any) -> None:
        record = LayerFacts(**facts, family=family)
        for name in class_names:
            FACTS.add(name, record)
    return declare


# --- lookups ------------------------------------------------------------------------------------

T = TypeVar("T")


class FactView(Mapping[str, T], Generic[T]):
    """The classes whose facts give ``field`` (not None), read live from ``FACTS``: the old
    per-fact tables (``keras_shapes.RULES``, ``weight_shapes.RULES``) as views of it."""

    def __init__(self, field_name: str) -> None:
        self.field_name = field_name

    def __getitem__(self, name: str) -> T:
        value = getattr(FACTS[name], self.field_name)
        if value is None:
            raise KeyError(name)
        return value  # getattr of the field this view was made for

    def __iter__(self) -> Iterator[str]:
        return (n for n, f in FACTS.items() if getattr(f, self.field_name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


SHAPE_RULES: FactView[ShapeRule] = FactView("shape")
VARIABLE_SHAPE_RULES: FactView[VariableShapeRule] = FactView("variable_shapes")


def shape_rule(class_name: str, layer_name: str | None = None) -> ShapeRule:
    """The shape rule of ``class_name``; none is an UnsupportedError listing the known ones."""
    if class_name not in SHAPE_RULES:
        raise UnsupportedError(f"no shape rule for layer class {class_name!r}", layer=layer_name,
                               hint=f"supported: {', '.join(sorted(SHAPE_RULES))}")
    return SHAPE_RULES[class_name]


def layer_variables(class_name: str, config: dict) -> list[tuple[str, bool]] | None:
    """Ordered ``(path, trainable)`` of a (non-model) layer, or None for an unknown class.

    ``trainable`` is the variable's own flag (batch-norm statistics are never trainable); a
    frozen layer (``trainable: false`` in its config) makes all of its variables non-trainable.
    """
    frozen = config.get("trainable", True) is False
    facts = FACTS.get(class_name)
    if facts is None or facts.variables is None:
        return None
    found = facts.variables(config)
    if found is None:
        return None
    return [(path, trainable and not frozen) for path, trainable in found]
