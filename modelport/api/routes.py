"""Every conversion modelport makes, as one table: (source kind, target format) -> the steps.

A source is one of three kinds, by what ``load`` makes of it: a layers model (Keras .h5 or
.keras, TF.js layers-model: ``LayersModel``), an ONNX model (``onnx_ir.Model``) or a TF.js
graph-model (``TfjsGraph``). A route's steps turn the source into the target's representation
(ONNX is the hub between layers models and TF.js graphs); the result is then written and
checked, by reading it back (layers targets: the layer graph and every weight bit for bit),
by running both models on the same inputs (the parity check), or both. ``api.core`` runs the
row it finds here and holds no route of its own; ``api.options`` says, from the same rows,
which options a route honours.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from enum import Enum

from ..errors import UnsupportedError
from ..formats import sniff
from ..registry import Registry

# Source kinds.
LAYERS = "layers"
ONNX = "onnx"
GRAPH = "tfjs-graph"

_KIND_OF_FORMAT = {sniff.KERAS_H5: LAYERS, sniff.KERAS_V3: LAYERS, sniff.TFJS_LAYERS: LAYERS,
                   sniff.ONNX: ONNX, sniff.TFJS_GRAPH: GRAPH}
KERAS_TARGETS = (sniff.KERAS_H5, sniff.KERAS_V3, sniff.TFJS_LAYERS)  # written from layers
TFJS_TARGETS = (sniff.TFJS_LAYERS, sniff.TFJS_GRAPH)


class Step(Enum):
    """One translation between representations (the converters do the work)."""

    LOWER = "lowered to ONNX"  # Keras layers -> ONNX (converters.keras_to_onnx)
    ONNX_TO_TF = "mapped to TF ops"  # ONNX -> TF.js graph (converters.onnx_to_tfjs)
    TF_TO_ONNX = "mapped to ONNX"  # TF.js graph -> ONNX (converters.tfjs_to_onnx)
    RAISE = "raised to Keras layers"  # ONNX -> Keras layers (converters.onnx_to_keras)


@dataclass(frozen=True)
class Route:
    """One row: what a source of kind ``source`` goes through to become a ``target`` file."""

    source: str  # LAYERS, ONNX or GRAPH
    target: str  # a sniff format
    steps: tuple[Step, ...]
    read_back: bool  # the written file is read again and compared bit for bit
    parity: bool  # both models run on the same inputs (skipped with validate=False)
    per_layer: bool = False  # a parity mismatch names the first diverging layer

    @property
    def runs_onnxruntime(self) -> bool:
        """Whether the parity check runs a model in onnxruntime (an ONNX source or target)."""
        return self.parity and ONNX in (self.source, self.target)

    def checked(self, validate: bool) -> Route:
        """The route as it runs: without its parity check when ``validate`` is False."""
        return self if validate or not self.parity else replace(self, parity=False,
                                                                 per_layer=False)

    def describe(self, source_format: str) -> str:
        """``keras-h5 -> onnx (lowered to ONNX, written, checked numerically)``, for
        messages."""
        done = [step.value for step in self.steps] + ["written"]
        if self.read_back:
            done.append("read back and compared bit for bit")
        done.append("checked numerically" if self.parity else "no numeric check")
        return f"{source_format} -> {self.target} ({', '.join(done)})"


ROUTES: Registry[Route] = Registry("conversion routes")


def _add(source: str, target: str, *steps: Step, read_back: bool = False,
         parity: bool = True, per_layer: bool = False) -> None:
    ROUTES.add(f"{source} -> {target}", Route(source, target, steps, read_back, parity,
                                              per_layer))


# Layers models: rewritten as layers (read back), or lowered to ONNX (checked numerically).
for _target in KERAS_TARGETS:
    _add(LAYERS, _target, read_back=True, parity=False)
_add(LAYERS, sniff.ONNX, Step.LOWER, per_layer=True)
_add(LAYERS, sniff.TFJS_GRAPH, Step.LOWER, Step.ONNX_TO_TF)
# ONNX: rewritten, mapped to TF ops, or raised to layers (read back, and run against the source).
_add(ONNX, sniff.ONNX)
_add(ONNX, sniff.TFJS_GRAPH, Step.ONNX_TO_TF)
for _target in KERAS_TARGETS:
    _add(ONNX, _target, Step.RAISE, read_back=True)
# TF.js graph-models: mapped to ONNX, rewritten, or raised to layers through ONNX.
_add(GRAPH, sniff.ONNX, Step.TF_TO_ONNX)
_add(GRAPH, sniff.TFJS_GRAPH)
for _target in KERAS_TARGETS:
    _add(GRAPH, _target, Step.TF_TO_ONNX, Step.RAISE, read_back=True)


def source_kind(source_format: str) -> str:
    """The kind of source a sniffed format is read as (LAYERS, ONNX or GRAPH)."""
    kind = _KIND_OF_FORMAT.get(source_format)
    if kind is None:
        raise UnsupportedError(f"reading {source_format} models is not supported yet")
    return kind


def target_for(source_format: str, dst: str | os.PathLike[str], to: str | None) -> str:
    """The target format: ``to`` if given, else from ``dst``'s name; a folder is a TF.js
    layers-model from a layers source and a graph-model from an op graph (ONNX, TF.js graph)."""
    target = sniff.target_format(dst, to)
    if to is None and target == sniff.TFJS_LAYERS and source_kind(source_format) != LAYERS:
        return sniff.TFJS_GRAPH
    return target


def find(source_format: str, target: str) -> Route:
    """The route from a source of ``source_format`` to ``target``."""
    return ROUTES.require(f"{source_kind(source_format)} -> {target}")
