"""Options as objects, and where each one applies.

``ConvertOptions`` says how a conversion writes its result, ``CheckOptions`` (from
``check.options``) how its numeric check runs. Both are frozen and built once, from
``api.convert``'s keywords or from the CLI's flags, with every value checked as they are built
(a bad ``--quantize`` spec or opset is a ``UsageError`` before any model is read). A field left
``None`` was not given.

``SCOPES`` declares, for each option that only some routes use, the routes it affects (a
predicate over an ``api.routes.Route``) and the words for them. An option *given* to a route it
does not affect is a ``UsageError`` naming the option, the route and where it applies
(``check_applies``), never silently ignored. ``to``, ``force`` and ``validate`` apply to every
route (``validate=False`` asks to skip a numeric check; on a route without one it holds).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields

from ..check.options import CheckOptions
from ..check.parity import Tolerances
from ..converters.pinned_values import InputValue, parse_input_values
from ..converters.pinning import InputShape, parse_input_shapes
from ..errors import UnsupportedError, UsageError
from ..formats import sniff
from ..formats.tfjs_manifest import QuantizeRule, parse_quantize
from ..models.onnx_model import resolve_opset
from ..registry import Registry
from .routes import GRAPH, ONNX, TFJS_TARGETS, Route, Step

__all__ = ["SCOPES", "CheckOptions", "ConvertOptions", "Scope", "check_applies",
           "input_shapes", "output_names", "quantize_rules"]

INPUTS_LAYOUTS = ("channels_last", "channels_first")


def quantize_rules(specs: Iterable[str] | None) -> tuple[QuantizeRule, ...] | None:
    """``--quantize`` specs parsed once (``None``: none given); a bad one is a UsageError."""
    specs = list(specs or ())
    if not specs:
        return None
    try:
        return tuple(parse_quantize(specs))
    except UnsupportedError as e:
        raise UsageError(f"--quantize: {e.message}") from None


def input_shapes(specs: Iterable[object] | dict[str, object] | None
                 ) -> tuple[InputShape, ...] | None:
    """``--input-shape`` specs parsed once (``None``: none given): ``NAME=D0,D1,...`` strings,
    ``(name, dims)`` pairs, or a ``{name: dims}`` dict; a bad one is a UsageError."""
    if isinstance(specs, dict):
        specs = [(str(k), tuple(v)) for k, v in specs.items()]  # type: ignore[arg-type]
    if isinstance(specs, str):
        specs = [specs]
    items = list(specs or ())
    return parse_input_shapes(items) if items else None  # type: ignore[arg-type]


def input_values(specs: Iterable[object] | dict[str, object] | None
                 ) -> tuple[InputValue, ...] | None:
    """``--input-value`` specs parsed once (``None``: none given): ``NAME=V`` strings,
    ``(name, value)`` pairs, or a ``{name: value}`` dict; a bad one is a UsageError."""
    if isinstance(specs, dict):
        specs = list(specs.items())
    if isinstance(specs, str):
        specs = [specs]
    items = list(specs or ())
    return parse_input_values(items) if items else None  # type: ignore[arg-type]


def output_names(names: Iterable[str] | str | None) -> tuple[str, ...] | None:
    """``--outputs`` as value names (comma-separated, repeatable; ``None``: not given)."""
    if names is None:
        return None
    if isinstance(names, str):
        names = [names]
    out = tuple(n.strip() for item in names for n in item.split(",") if n.strip())
    if not out:
        raise UsageError("--outputs names no value", hint="give --outputs NAME[,NAME...]")
    return out


@dataclass(frozen=True)
class ConvertOptions:
    """How a conversion writes its result; ``None``: not given, the default applies."""

    to: str | None = None  # a --to name (h5, keras, tfjs-layers, tfjs-graph, onnx)
    force: bool = False  # replace an existing destination
    quantize: tuple[QuantizeRule, ...] | None = None  # see ``quantize_rules``
    shard_size: int | None = None  # TF.js shard size in bytes
    opset: int | None = None  # of the ONNX modelport writes
    inputs_layout: str | None = None  # channels_last or channels_first
    validate: bool = True  # run the numeric check where the route has one
    input_shapes: tuple[InputShape, ...] | None = None  # dims pinned in the source
    input_values: tuple[InputValue, ...] | None = None  # inputs fixed to a value in the source
    batch: int | None = None  # the batch pinned where the source's is free (and the check's)
    outputs: tuple[str, ...] | None = None  # values the result's outputs are cut at
    metadata: tuple[tuple[str, object], ...] | None = None  # TF.js userDefinedMetadata entries
    onnx_opset: int = field(init=False, repr=False)  # ``opset`` resolved (the default if None)

    def __post_init__(self) -> None:
        if self.to is not None and self.to not in sniff.TARGETS:
            raise UsageError(f"--to {self.to!r}: choose one of {', '.join(sniff.TARGETS)}")
        if self.batch is not None and self.batch < 1:
            raise UsageError(f"--batch {self.batch}: the batch size must be at least 1")
        if self.shard_size is not None and self.shard_size <= 0:
            raise UsageError(f"--shard-size {self.shard_size}: the size must be positive")
        if self.inputs_layout is not None and self.inputs_layout not in INPUTS_LAYOUTS:
            raise UsageError(f"--inputs-layout {self.inputs_layout!r}: choose one of "
                             f"{', '.join(INPUTS_LAYOUTS)}")
        try:
            opset = resolve_opset(self.opset)
        except UnsupportedError as e:
            raise UsageError(f"--opset: {e.message}") from None
        object.__setattr__(self, "onnx_opset", opset)

    @property
    def rules(self) -> list[QuantizeRule]:
        """The quantization rules (none: weights stay as they are)."""
        return list(self.quantize or ())

    @property
    def shard_bytes(self) -> int:
        """The TF.js shard size (TF.js's own 4 MiB when not given)."""
        from ..formats.tfjs_manifest import DEFAULT_SHARD_SIZE

        return DEFAULT_SHARD_SIZE if self.shard_size is None else self.shard_size

    @property
    def channels_first(self) -> bool:
        """Whether image inputs of the result are NCHW."""
        return self.inputs_layout == "channels_first"

    def given(self) -> dict[str, object]:
        """The route-dependent options given explicitly, by field."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name in SCOPES and getattr(self, f.name) is not None}


@dataclass(frozen=True)
class Scope:
    """Where one option has an effect: ``applies(route, value)``, and the words for it."""

    flag: str  # as the CLI spells it
    where: str  # "TF.js targets", completing "... applies to"
    applies: Callable[[Route, object], bool]


def _writes_tfjs(route: Route, _value: object) -> bool:
    return route.target in TFJS_TARGETS


def _makes_onnx(route: Route, _value: object) -> bool:
    # the ONNX a route writes or maps onward is modelport's; raising reads ONNX at any opset
    return Step.LOWER in route.steps or (Step.TF_TO_ONNX in route.steps
                                         and Step.RAISE not in route.steps)


def _moves_layout(route: Route, _value: object) -> bool:
    return Step.LOWER in route.steps or Step.RAISE in route.steps


def _checks(route: Route, _value: object) -> bool:
    return route.parity


def _device(route: Route, value: object) -> bool:
    return route.parity and (value != "cuda" or route.runs_onnxruntime)


def _engine(route: Route, value: object) -> bool:
    # A graph-model source always runs in the NumPy TF reference (it is the reference the
    # result is held to); only a graph-model target runs in the engine asked for.
    return route.parity and (route.target == sniff.TFJS_GRAPH
                             or (route.source == GRAPH and value == "reference"))


def _pins(route: Route, _value: object) -> bool:
    return route.source in (ONNX, GRAPH)


def _fixes(route: Route, _value: object) -> bool:
    return route.source == ONNX


def _pins_or_checks(route: Route, _value: object) -> bool:
    return route.source in (ONNX, GRAPH) or route.parity


def _per_layer(route: Route, _value: object) -> bool:
    return route.per_layer


_CHECKED = ("routes with a numeric check: ONNX and TF.js graph-model targets, and Keras "
            "targets from ONNX or TF.js graph-model sources (not with --no-validate)")

SCOPES: Registry[Scope] = Registry("option scopes")
SCOPES.add("quantize", Scope("--quantize", "TF.js targets (tfjs-layers, tfjs-graph)",
                             _writes_tfjs))
SCOPES.add("metadata", Scope("--metadata", "TF.js targets (tfjs-layers, tfjs-graph)",
                             _writes_tfjs))
SCOPES.add("shard_size", Scope("--shard-size", "TF.js targets (tfjs-layers, tfjs-graph)",
                               _writes_tfjs))
SCOPES.add("opset", Scope("--opset", "the ONNX modelport writes: .onnx targets from Keras, "
                          "TF.js layers- and graph-models, and TF.js graph-models from Keras "
                          "or TF.js layers sources (through ONNX)", _makes_onnx))
SCOPES.add("inputs_layout", Scope(
    "--inputs-layout", "ONNX and TF.js graph-model targets from Keras or TF.js layers "
    "sources, and Keras targets from ONNX or TF.js graph-model sources", _moves_layout))
SCOPES.add("device", Scope("--device", f"{_CHECKED}; cuda only where onnxruntime runs (an "
                           "ONNX source or target)", _device))
SCOPES.add("engine", Scope(
    "--engine", "TF.js graph-model targets (how the result runs in the numeric check); a "
    "TF.js graph-model source always runs in the NumPy TF reference (--engine reference)",
    _engine))
SCOPES.add("tolerances", Scope("--atol/--rtol", _CHECKED, _checks))
SCOPES.add("inputs", Scope("--inputs", _CHECKED, _checks))
SCOPES.add("batch", Scope(
    "--batch", "ONNX and TF.js graph-model sources (it pins their free batch dim), and "
    f"{_CHECKED} (the rows of the seeded inputs)", _pins_or_checks))
SCOPES.add("input_shapes", Scope(
    "--input-shape", "ONNX and TF.js graph-model sources (Keras inputs are static but for "
    "the batch: use --batch)", _pins))
SCOPES.add("outputs", Scope("--outputs", "ONNX and TF.js graph-model sources", _pins))
SCOPES.add("input_values", Scope("--input-value", "ONNX sources", _fixes))
SCOPES.add("seed", Scope("--seed", _CHECKED, _checks))
SCOPES.add("save_inputs", Scope("--save-inputs", _CHECKED, _checks))
SCOPES.add("save_outputs", Scope("--save-outputs", _CHECKED, _checks))
SCOPES.add("per_layer", Scope("--per-layer", "Keras -> ONNX routes with a numeric check",
                              _per_layer))


def check_applies(route: Route, source_format: str, options: ConvertOptions,
                  check: CheckOptions) -> None:
    """Refuse, as a UsageError, any option given that ``route`` (as ``options.validate``
    runs it) would not use."""
    running = route.checked(options.validate)
    for name, value in [*options.given().items(), *check.given().items()]:
        scope = SCOPES[name]
        if scope.applies(running, value):
            continue
        shown = scope.flag if isinstance(value, (bool, tuple, Tolerances)) else \
            f"{scope.flag} {os.fspath(value) if isinstance(value, os.PathLike) else value}"
        raise UsageError(f"{shown} does not apply to {running.describe(source_format)}; "
                         f"{scope.flag} applies to {scope.where}",
                         hint=f"leave {scope.flag} out")
