"""``modelport inspect``: what a user asks before converting, as a typed ``Inspection`` whose
``to_dict()`` is exactly what ``inspect --json`` prints (after ``"ok"``)."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..check.readback import Quantization, quantization_summary
from ..errors import ModelportError
from ..formats import sniff
from ..formats.loading import load
from ..models import LayersModel, TfjsGraph, keras_dialect, keras_shapes, tfjs_support
from ..models.weight_counts import onnx_weights, weight_totals

if TYPE_CHECKING:  # annotations only: importing ``api`` must not import onnx_ir (and onnx)
    import onnx_ir as ir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TensorInfo:
    """An input or output: its name (and a graph-model's tensor), shape (None: unknown
    dimension) and dtype, None where modelport cannot tell."""

    name: str | None  # None: an ONNX value without a name
    shape: list[int | None] | None
    dtype: str | None
    tensor: str | None = None  # TF.js graph-models: the graph tensor behind the signature key

    def to_dict(self) -> dict[str, Any]:
        """As ``--json`` prints it."""
        named: dict[str, Any] = {"name": self.name}
        if self.tensor is not None:
            named["tensor"] = self.tensor
        return {**named, "shape": self.shape, "dtype": self.dtype}


@dataclass(frozen=True)
class Blocker:
    """A layer that keeps the model from a target, and why."""

    layer: str
    class_name: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """As ``--json`` prints it."""
        return {"layer": self.layer, "class": self.class_name, "reason": self.reason}


@dataclass(frozen=True)
class TargetInfo:
    """Whether the model can go to one target: ``ok``, the layers that block it, and a note
    (why a whole target is out, or how it is reached); ``through``: the format a route goes
    through (Keras -> TF.js graph-model through ONNX)."""

    ok: bool
    blockers: list[Blocker] = field(default_factory=list)
    note: str | None = None
    through: str | None = None

    @property
    def remark(self) -> str | None:
        """What the text report says instead of listing blockers."""
        return self.note or (f"through {self.through}" if self.through else None)

    def to_dict(self) -> dict[str, Any]:
        """As ``--json`` prints it."""
        blockers = [b.to_dict() for b in self.blockers]
        if self.through is not None:
            return {"ok": self.ok, "note": f"through {self.through}", "blockers": blockers}
        done: dict[str, Any] = {"ok": self.ok, "blockers": blockers}
        if self.note is not None:
            done["note"] = self.note
        return done


@dataclass(frozen=True)
class ModelSummary:
    """The model's name, kind (Sequential, Functional, ONNX graph, TF.js graph) and the names
    of the models nested in it."""

    name: str | None  # None: an ONNX graph without a name
    kind: str
    nested_models: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """As ``--json`` prints it."""
        return {"name": self.name, "kind": self.kind, "nested_models": list(self.nested_models)}


@dataclass(frozen=True)
class Inspection:
    """Everything ``inspect`` tells about a model: format, I/O, layers (ops for op graphs),
    size, quantization, and for each target whether the model can go there."""

    path: str
    format: str | None
    dialect: str | None
    keras_version: str | None
    model: ModelSummary
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    layers: int
    layers_by_class: dict[str, int]
    parameters: int
    weight_bytes: int
    weight_dtypes: dict[str, int]
    quantization: Quantization
    targets: dict[str, TargetInfo]
    onnx: dict[str, Any] | None = None  # ONNX sources: IR version, opsets, producer, Transposes
    # known TF.js backend gaps (``web_gaps``) of a TF.js source or a model with a TF.js target
    tfjs_warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The inspection as plain data, in the CLI's ``--json`` structure."""
        head: dict[str, Any] = {"path": self.path, "format": self.format,
                                "dialect": self.dialect, "keras_version": self.keras_version}
        if self.onnx is not None:
            head["onnx"] = self.onnx
        return {
            **head, "model": self.model.to_dict(),
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "layers": self.layers, "layers_by_class": dict(self.layers_by_class),
            "parameters": self.parameters, "weight_bytes": self.weight_bytes,
            "weight_dtypes": dict(self.weight_dtypes),
            "quantization": self.quantization.to_dict(),
            "targets": {name: t.to_dict() for name, t in self.targets.items()},
            "tfjs_warnings": list(self.tfjs_warnings),
        }


def inspect(path: str | os.PathLike[str], *, input_shapes: object = None,
            batch: int | None = None, validate: bool = True,
            max_memory: int | str | None = None, input_values: object = None) -> Inspection:
    """Everything a user asks before converting: format, I/O, layers, size, targets.

    ``input_shapes``/``batch`` (as ``convert``'s) pin an ONNX or TF.js graph-model's free dims
    first, and ``input_values`` fix ONNX inputs, so the inspection describes the model as
    ``convert`` would take it. A target whose
    parity check the memory budget would refuse is not reached (``planning``), unless
    ``validate`` is False (``--no-validate``); ``max_memory`` (``--max-memory``) sets that
    budget as ``convert``'s does."""
    from ..budget import max_memory as budget

    model = load(path)
    if input_shapes or batch or input_values:
        from .core import shape_source
        from .options import input_shapes as specs
        from .options import input_values as value_specs

        model = shape_source(model, specs(input_shapes), batch, None,  # type: ignore[arg-type]
                             values=value_specs(input_values))[0]  # type: ignore[arg-type]
    with budget(max_memory):
        targets, written = _targets(path, model, input_shapes, batch, validate, input_values)
    if isinstance(model, TfjsGraph):
        return _warned(_inspect_tfjs_graph(model, path, targets), model)
    if not isinstance(model, LayersModel):
        return _warned(_inspect_onnx(model, path, targets), written)
    classes = Counter(layer.class_name for layer in model.iter_layers() if layer.model is None)
    nested = [layer.name for layer in model.iter_layers() if layer.model is not None]
    source = model.source
    return _warned(Inspection(
        path=str(path), format=source.format if source else None,
        dialect=source.dialect if source else None,
        keras_version=source.keras_version if source else None,
        model=ModelSummary(model.name, model.kind, nested),
        inputs=_io_description(model, inputs=True),
        outputs=_io_description(model, inputs=False),
        layers=sum(classes.values()), layers_by_class=_by_count(classes),
        parameters=model.parameter_count(), weight_bytes=model.weight_bytes(),
        weight_dtypes=dict(Counter(str(w.array.dtype) for _, w in model.all_weights())),
        quantization=quantization_summary(model), targets=targets), written)


def _warned(info: Inspection, graph: TfjsGraph | None) -> Inspection:
    """``info`` with the TF.js backend gaps it can see (``web_gaps``): for a TF.js source, or
    a model with a TF.js target; ``graph``: the TF.js graph-model the source is or becomes."""
    from .web_gaps import tfjs_gaps

    tfjs = info.format in (sniff.TFJS_GRAPH, sniff.TFJS_LAYERS) or any(
        info.targets[t].ok for t in ("tfjs-layers", "tfjs-graph") if t in info.targets)
    if not tfjs:
        return info
    warnings = tfjs_gaps([(str(t.name), t.dtype) for t in info.inputs], graph)
    return replace(info, tfjs_warnings=warnings)


def _targets(path: str | os.PathLike[str], model: object, input_shapes: object,
             batch: int | None, validate: bool = True, input_values: object = None
             ) -> tuple[dict[str, TargetInfo], TfjsGraph | None]:
    """Each target's verdict from a dry run of ``convert`` (``planning``): "yes" where
    ``convert`` writes the file and its check's memory budget holds (``validate``: False for
    ``--no-validate``). A refusal lists every blocking layer where the layers' facts name
    them, else ``convert``'s own message; and the TF.js graph-model the tfjs-graph target
    would be (None: none)."""
    from .options import ConvertOptions
    from .options import input_shapes as shape_specs
    from .options import input_values as value_specs
    from .planning import dry_run

    options = ConvertOptions(input_shapes=shape_specs(input_shapes),  # type: ignore[arg-type]
                             input_values=value_specs(input_values),  # type: ignore[arg-type]
                             batch=batch, validate=validate)
    targets = {}
    written = model if isinstance(model, TfjsGraph) else None
    for name, fmt in sniff.TARGETS.items():
        verdict = dry_run(path, name, options)
        if verdict.ok and isinstance(verdict.result, TfjsGraph):
            written = verdict.result
        if verdict.ok:
            targets[name] = TargetInfo(True, through=verdict.through)
            continue
        assert verdict.error is not None
        found = _layer_blockers(model, fmt) if isinstance(model, LayersModel) else []
        if found:
            targets[name] = TargetInfo(False, [Blocker(n, c, r) for n, c, r in found])
        else:
            error = verdict.error
            where = f"layer {error.layer!r}: " if error.layer else ""
            hint = f" ({error.hint})" if error.hint else ""
            targets[name] = TargetInfo(False, note=f"{where}{error.message}{hint}")
    return targets, written


def _layer_blockers(model: LayersModel, fmt: str) -> list[tuple[str, str, str]]:
    """Every layer the layers' facts say keeps ``model`` from ``fmt`` (the dry run stops at
    the first)."""
    if fmt in (sniff.ONNX, sniff.TFJS_GRAPH):
        from ..converters.keras_to_onnx import unsupported_layers

        return [(n, c, f"no ONNX lowering for {c}") for n, c in unsupported_layers(model)]
    if fmt == sniff.TFJS_LAYERS:
        return tfjs_support.blockers(tfjs_support.prepare(model))
    found = keras_dialect.keras3_blockers(model)
    if fmt == sniff.KERAS_H5:
        found += keras_dialect.legacy_h5_blockers(model)
    return found


def _by_count(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _io_description(model: LayersModel, *, inputs: bool) -> list[TensorInfo]:
    if model.kind == "Sequential":
        names = [model.layers[0].name if inputs else model.layers[-1].name] if model.layers else []
    else:
        names = [ref.layer for ref in (model.inputs if inputs else model.outputs)]
    try:
        specs: list[Any] = (keras_shapes.input_specs(model) if inputs
                            else keras_shapes.output_specs(model))
    except ModelportError as e:
        log.info("no static shapes for %s: %s", model.name, e)
        specs = [None] * len(names)
    return [TensorInfo(name, list(spec.shape) if spec else None, spec.dtype if spec else None)
            for name, spec in zip(names, specs)]


def _onnx_tensors(values: Iterable[ir.Value]) -> list[TensorInfo]:
    return [TensorInfo(v.name, [d if isinstance(d, int) else None for d in v.shape]
                       if v.shape is not None else None,
                       str(v.dtype).rsplit(".", 1)[-1].lower() if v.dtype is not None
                       else None) for v in values]


def _inspect_onnx(model: ir.Model, path: str | os.PathLike[str],
                  targets: dict[str, TargetInfo]) -> Inspection:
    graph = model.graph
    ops = Counter(node.op_type for node in graph.all_nodes())
    # initializers and Constant nodes, those of If/Loop/Scan subgraphs included
    inits = onnx_weights(model)
    parameters, weight_bytes = weight_totals(model)
    return Inspection(
        path=str(path), format=sniff.ONNX, dialect=None, keras_version=None,
        onnx={"ir_version": model.ir_version, "opsets": dict(graph.opset_imports),
              "producer": f"{model.producer_name or ''} {model.producer_version or ''}".strip(),
              "transposes": ops.get("Transpose", 0)},
        model=ModelSummary(graph.name, "ONNX graph"),
        inputs=_onnx_tensors(graph.inputs), outputs=_onnx_tensors(graph.outputs),
        layers=sum(ops.values()), layers_by_class=_by_count(ops),
        parameters=parameters, weight_bytes=weight_bytes,
        weight_dtypes=dict(Counter(str(t.dtype).rsplit(".", 1)[-1].lower() for t in inits)),
        quantization=Quantization(), targets=targets)


def _inspect_tfjs_graph(graph: TfjsGraph, path: str | os.PathLike[str],
                        targets: dict[str, TargetInfo]) -> Inspection:
    ops = Counter(node.op for node in graph.nodes)
    weights = [a for a in graph.weights.values() if a.dtype != object]
    parameters, weight_bytes = weight_totals(graph)
    quant = Counter(str(q["dtype"]) for q in graph.quantization.values())
    return Inspection(
        path=str(path), format=sniff.TFJS_GRAPH, dialect="tf-graph", keras_version=None,
        model=ModelSummary("graph-model", "TF.js graph"),
        inputs=[TensorInfo(i.key, i.shape, i.dtype, tensor=i.tensor) for i in graph.inputs],
        outputs=[TensorInfo(i.key, i.shape, i.dtype, tensor=i.tensor) for i in graph.outputs],
        layers=len(graph.nodes), layers_by_class=_by_count(ops),
        parameters=parameters, weight_bytes=weight_bytes,
        weight_dtypes=dict(Counter(str(a.dtype) for a in weights)),
        quantization=Quantization(dict(quant)), targets=targets)
