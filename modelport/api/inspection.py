"""``modelport inspect``: what a user asks before converting."""

from __future__ import annotations

import logging
import os
from collections import Counter

from ..check.readback import quantization_summary
from ..errors import ModelportError
from ..formats import sniff
from ..formats.loading import load
from ..models import LayersModel, TfjsGraph, keras_dialect, keras_shapes, tfjs_support

log = logging.getLogger(__name__)


def inspect(path: str | os.PathLike) -> dict:
    """Everything a user asks before converting: format, I/O, layers, size, targets."""
    model = load(path)
    if isinstance(model, TfjsGraph):
        return _inspect_tfjs_graph(model, path)
    if not isinstance(model, LayersModel):
        return _inspect_onnx(model, path)
    classes = Counter(layer.class_name for layer in model.iter_layers() if layer.model is None)
    nested = [layer.name for layer in model.iter_layers() if layer.model is not None]
    quant = quantization_summary(model)
    targets = {}
    for name, fmt in sniff.TARGETS.items():
        if fmt == sniff.ONNX:
            from ..converters.keras_to_onnx import unsupported_layers

            missing = unsupported_layers(model)
            targets[name] = {"ok": not missing, "blockers": [
                {"layer": n, "class": c, "reason": f"no ONNX lowering for {c}"}
                for n, c in missing]}
            continue
        if fmt == sniff.TFJS_GRAPH:
            from ..converters.keras_to_onnx import unsupported_layers

            missing = unsupported_layers(model)
            targets[name] = {"ok": not missing, "note": "through ONNX", "blockers": [
                {"layer": n, "class": c, "reason": f"no ONNX lowering for {c}"}
                for n, c in missing]}
            continue
        if fmt == sniff.TFJS_LAYERS:
            found = tfjs_support.blockers(tfjs_support.prepare(model))
        else:
            found = keras_dialect.keras3_blockers(model)
        targets[name] = {"ok": not found, "blockers": [
            {"layer": n, "class": c, "reason": r} for n, c, r in found]}
    return {
        "path": str(path),
        "format": model.source.format if model.source else None,
        "dialect": model.source.dialect if model.source else None,
        "keras_version": model.source.keras_version if model.source else None,
        "model": {"name": model.name, "kind": model.kind, "nested_models": nested},
        "inputs": _io_description(model, inputs=True),
        "outputs": _io_description(model, inputs=False),
        "layers": sum(classes.values()),
        "layers_by_class": dict(sorted(classes.items(), key=lambda kv: (-kv[1], kv[0]))),
        "parameters": model.parameter_count(),
        "weight_bytes": model.weight_bytes(),
        "weight_dtypes": dict(Counter(str(w.array.dtype) for _, w in model.all_weights())),
        "quantization": quant,
        "targets": targets,
    }


def _io_description(model: LayersModel, *, inputs: bool) -> list[dict]:
    if model.kind == "Sequential":
        names = [model.layers[0].name if inputs else model.layers[-1].name] if model.layers else []
    else:
        names = [ref.layer for ref in (model.inputs if inputs else model.outputs)]
    try:
        specs = keras_shapes.input_specs(model) if inputs else keras_shapes.output_specs(model)
    except ModelportError as e:
        log.info("no static shapes for %s: %s", model.name, e)
        specs = [None] * len(names)
    return [{"name": name, "shape": list(spec.shape) if spec else None,
             "dtype": spec.dtype if spec else None} for name, spec in zip(names, specs)]


def _inspect_onnx(model, path) -> dict:
    import onnx_ir as ir

    graph = model.graph
    ops = Counter(node.op_type for node in graph.all_nodes())
    inits = [v.const_value for v in graph.initializers.values() if v.const_value is not None]

    def describe(values) -> list[dict]:
        return [{"name": v.name, "shape": [d if isinstance(d, int) else None for d in v.shape]
                 if v.shape is not None else None,
                 "dtype": str(v.dtype).rsplit(".", 1)[-1].lower() if v.dtype is not None else None}
                for v in values]
    targets = {name: {"ok": False, "blockers": [],
                      "note": "converting ONNX models to Keras is not supported yet"}
               for name in ("h5", "keras", "tfjs-layers")}
    targets["tfjs-graph"] = {"ok": True, "blockers": [], "note": "op mapping"}
    del ir
    return {
        "path": str(path), "format": sniff.ONNX, "dialect": None,
        "keras_version": None,
        "onnx": {"ir_version": model.ir_version, "opsets": dict(graph.opset_imports),
                 "producer": f"{model.producer_name or ''} {model.producer_version or ''}".strip(),
                 "transposes": ops.get("Transpose", 0)},
        "model": {"name": graph.name, "kind": "ONNX graph", "nested_models": []},
        "inputs": describe(graph.inputs), "outputs": describe(graph.outputs),
        "layers": sum(ops.values()),
        "layers_by_class": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "parameters": int(sum(t.size for t in inits)),
        "weight_bytes": int(sum(t.nbytes for t in inits)),
        "weight_dtypes": dict(Counter(str(t.dtype).rsplit(".", 1)[-1].lower() for t in inits)),
        "quantization": {},
        "targets": targets,
    }


def _inspect_tfjs_graph(graph: TfjsGraph, path) -> dict:
    ops = Counter(node.op for node in graph.nodes)
    weights = [a for a in graph.weights.values() if a.dtype != object]
    quant = Counter(q["dtype"] for q in graph.quantization.values())

    def describe(infos) -> list[dict]:
        return [{"name": i.key, "tensor": i.tensor, "shape": i.shape, "dtype": i.dtype}
                for i in infos]
    return {
        "path": str(path), "format": sniff.TFJS_GRAPH, "dialect": None,
        "keras_version": None, "model": {"name": "graph-model", "kind": "TF.js graph",
                                         "nested_models": []},
        "inputs": describe(graph.inputs), "outputs": describe(graph.outputs),
        "layers": len(graph.nodes),
        "layers_by_class": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "parameters": int(sum(a.size for a in weights)),
        "weight_bytes": graph.weight_bytes(),
        "weight_dtypes": dict(Counter(str(a.dtype) for a in weights)),
        "quantization": dict(quant),
        "targets": {"onnx": {"ok": True, "blockers": [], "note": "op mapping"},
                    **{name: {"ok": False, "blockers": [],
                              "note": "raising graph ops to Keras layers is not supported yet"}
                       for name in ("h5", "keras", "tfjs-layers")}},
    }
