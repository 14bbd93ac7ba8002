"""Orchestration: sniff, read, route, write, check. No layer or op knowledge lives here."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import ModelportError, UnsupportedError
from .fsutil import check_destination
from . import keras_shapes
from .models import LayersModel
from .formats import keras_dialect, keras_h5, keras_v3, sniff, tfjs_layers, tfjs_manifest, \
    tfjs_support

log = logging.getLogger(__name__)

_READERS = {sniff.KERAS_H5: keras_h5.read, sniff.KERAS_V3: keras_v3.read,
            sniff.TFJS_LAYERS: tfjs_layers.read}
_LAYERS_FORMATS = (sniff.KERAS_H5, sniff.KERAS_V3, sniff.TFJS_LAYERS)
_PENDING = {sniff.TFJS_GRAPH: "TF.js graph-model"}

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def load(path: str | os.PathLike, *, format: str | None = None):
    """Read a model: a ``LayersModel`` for Keras ``.h5``/``.keras`` files and TF.js
    layers-models, an ``onnx_ir.Model`` for ``.onnx`` files."""
    fmt = format or sniff.sniff(path)
    if fmt == sniff.ONNX:
        from .formats import onnx as onnx_format

        return onnx_format.read(path)
    reader = _READERS.get(fmt)
    if reader is None:
        raise UnsupportedError(f"reading {_PENDING.get(fmt, fmt)} models is not supported yet",
                               file=path)
    return reader(path)


def save(model: LayersModel, dst: str | os.PathLike, *, to: str | None = None,
         force: bool = False, quantize: list[str] | None = None,
         shard_size: int = tfjs_manifest.DEFAULT_SHARD_SIZE) -> Path:
    """Write ``model`` in the format ``dst`` (or ``to``) names; nothing is left on failure."""
    target = sniff.target_format(dst, to)
    rules = tfjs_manifest.parse_quantize(quantize or [])
    if rules and target != sniff.TFJS_LAYERS:
        raise UnsupportedError("--quantize applies to TF.js targets only")
    try:
        if target == sniff.KERAS_H5:
            return keras_h5.write(model, dst, force=force)
        if target == sniff.KERAS_V3:
            return keras_v3.write(model, dst, force=force)
        if target == sniff.TFJS_LAYERS:
            return tfjs_layers.write(model, dst, force=force, shard_size=shard_size,
                                     quantize=rules)
    except ModelportError as e:
        if model.source is not None and e.file is None:
            e.with_file(model.source.path)
        raise
    raise UnsupportedError(f"writing {_PENDING.get(target, target)} is not supported yet",
                           file=dst)


@dataclass
class ConversionReport:
    source: str
    destination: str
    source_format: str
    target_format: str
    dialect: str
    layers: int
    parameters: int
    weight_bytes: int
    files: list[dict] = field(default_factory=list)
    check: dict = field(default_factory=dict)
    parity: dict | None = None  # ONNX targets: the numerical check, see runtime/parity.py
    onnx: dict | None = None  # opset, IR version, Transposes left
    quantization: dict = field(default_factory=dict)
    rewrites: list[str] = field(default_factory=list)  # equivalent config rewrites the target needed
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def convert(src: str | os.PathLike, dst: str | os.PathLike, *, to: str | None = None,
            force: bool = False, quantize: list[str] | None = None,
            shard_size: int = tfjs_manifest.DEFAULT_SHARD_SIZE,
            opset: int | None = None, channels_first_inputs: bool = False,
            validate: bool = True, device: str = "auto", tolerances=None,
            inputs: str | os.PathLike | None = None,
            progress: Progress = _quiet) -> ConversionReport:
    """Convert ``src`` to ``dst``, then read the result back and check it.

    The check is structural and bit-exact for lossless targets: the written file must read back
    to the same layer graph and the same weight bytes. Quantized weights report their error.
    """
    started = time.perf_counter()
    target = sniff.target_format(dst, to)
    check_destination(Path(dst), force)
    if target in _PENDING:
        raise UnsupportedError(f"converting to {_PENDING[target]} is not supported yet",
                               file=dst)
    progress(f"reading {src}")
    model = load(src)
    if target == sniff.ONNX:
        return _convert_to_onnx(model, src, Path(dst), force=force, opset=opset,
                                channels_first_inputs=channels_first_inputs, validate=validate,
                                device=device, tolerances=tolerances, inputs=inputs,
                                progress=progress, started=started)
    if not isinstance(model, LayersModel):
        raise UnsupportedError("converting ONNX models to Keras or TF.js is not supported yet",
                               file=src)
    progress(f"writing {_label(target)} to {dst} ({human_bytes(model.weight_bytes())} of weights)")
    written = save(model, dst, to=to, force=force, quantize=quantize, shard_size=shard_size)
    progress("reading the result back to check it")
    back = load(written, format=target)
    rewrites: list[str] = []
    expected = model
    if target == sniff.TFJS_LAYERS:
        expected, rewrites = tfjs_support.prepare_with_notes(model)
    check = compare(expected, back)
    if not check["structure_equal"] or check["weights_differing"] and not check["quantized"]:
        raise ModelportError(
            "internal check failed: the written model does not read back identical "
            f"({check['first_difference']})", file=written)
    report = ConversionReport(
        source=str(src), destination=str(written), source_format=_source_format(model),
        target_format=target, dialect=model.source.dialect if model.source else "?",
        layers=sum(1 for _ in model.iter_layers()), parameters=model.parameter_count(),
        weight_bytes=model.weight_bytes(), files=_files(Path(written), target),
        check=check, quantization=_quantization_summary(back), rewrites=rewrites,
        seconds=round(time.perf_counter() - started, 3))
    return report


def _convert_to_onnx(model, src, dst: Path, *, force: bool, opset: int | None,
                     channels_first_inputs: bool, validate: bool, device: str, tolerances,
                     inputs, progress: Progress, started: float) -> ConversionReport:
    from .converters.keras_to_onnx import DEFAULT_OPSET, lower
    from .formats import onnx as onnx_format

    if not isinstance(model, LayersModel):
        raise UnsupportedError("the source is already ONNX", file=src)
    if validate and device == "cuda":
        from .runtime.onnxruntime import cuda_usable

        if not cuda_usable():
            raise UnsupportedError("--device cuda was requested but onnxruntime's CUDA provider "
                                   "cannot run here (no GPU, or CUDA/cuDNN libraries missing)",
                                   hint="use --device auto or cpu")
    opset = opset or DEFAULT_OPSET
    progress(f"lowering {sum(1 for _ in model.iter_layers())} layers to ONNX opset {opset}")
    try:
        lowered = lower(model, opset=opset, channels_first_inputs=channels_first_inputs)
    except ModelportError as e:
        raise e.with_file(src)
    progress(f"writing {dst} ({human_bytes(model.weight_bytes())} of weights)")
    # Written and checked in a staging folder next to dst, moved into place at the end: an
    # error on the way (including in the parity check) leaves nothing at dst.
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.modelport-", dir=dst.parent or "."))
    try:
        staged = onnx_format.write(lowered.model, staging / dst.name)
        report = _onnx_report(model, src, staged, lowered, opset, channels_first_inputs)
        if validate:
            progress(f"checking parity: NumPy Keras reference vs onnxruntime ({device})")
            parity = validate_models(model, staged, tolerances=tolerances, device=device,
                                     inputs=inputs, per_layer=True, opset=opset,
                                     source_label=str(src))
            parity.target = str(dst)
            report.parity = parity.to_json()
        check_destination(dst, force)
        for item in sorted(staging.iterdir(), key=lambda p: p.suffix != ".data"):
            os.replace(item, dst.parent / item.name)  # the data file first, the model last
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.destination = str(dst)
    report.files = _files(dst, sniff.ONNX)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _onnx_report(model: LayersModel, src, written: Path, lowered, opset: int,
                 channels_first_inputs: bool) -> ConversionReport:
    return ConversionReport(
        source=str(src), destination=str(written), source_format=_source_format(model),
        target_format=sniff.ONNX, dialect=model.source.dialect if model.source else "?",
        layers=sum(1 for _ in model.iter_layers()), parameters=model.parameter_count(),
        weight_bytes=model.weight_bytes(), files=_files(written, sniff.ONNX),
        onnx={"opset": opset, "ir_version": lowered.model.ir_version,
              "transposes": lowered.transposes,
              "inputs_layout": "channels_first" if channels_first_inputs else "channels_last"})


def validate(src: str | os.PathLike, dst: str | os.PathLike, *, tolerances=None,
             device: str = "auto", inputs: str | os.PathLike | None = None, batch: int = 2,
             seed: int = 0, per_layer: bool = False):
    """Run ``src`` and ``dst`` on the same inputs and compare every output (a ParityReport)."""
    source = load(src)
    return validate_models(source, dst, tolerances=tolerances, device=device, inputs=inputs,
                           batch=batch, seed=seed, per_layer=per_layer, source_label=str(src))


def validate_models(source, dst: str | os.PathLike, *, tolerances=None, device: str = "auto",
                    inputs: str | os.PathLike | None = None, batch: int = 2, seed: int = 0,
                    per_layer: bool = False, opset: int | None = None,
                    source_label: str | None = None):
    from .runtime import engines, parity

    tolerances = tolerances or parity.Tolerances()
    a = _engine(source, device)
    target = load(dst) if sniff.sniff(dst) != sniff.ONNX else None
    b = _engine(target if target is not None else Path(dst), device)
    specs_a, specs_b = a.inputs(), b.inputs()
    if len(specs_a) != len(specs_b):
        raise UnsupportedError(f"the models take {len(specs_a)} and {len(specs_b)} inputs")
    if inputs is not None:
        arrays = engines.inputs_from_file(inputs, specs_a)
        described = {"description": f"inputs from {inputs}", "file": str(inputs)}
    else:
        arrays = engines.seeded_inputs(specs_a, batch=batch, seed=seed)
        described = {"description": f"seeded inputs (seed {seed}, batch {batch})",
                     "seed": seed, "batch": batch}
    described["shapes"] = {s.name: list(x.shape) for s, x in zip(specs_a, arrays)}
    arrays_b = [_match_layout(x, s) for x, s in zip(arrays, specs_b)]
    expected = a.run(arrays)
    actual = b.run(arrays_b)
    outputs = parity.compare_outputs(a.output_names(), expected, actual, tolerances)
    report = parity.ParityReport(
        source=source_label or _describe(source), target=str(dst), source_engine=a.label,
        target_engine=b.label, inputs=described, outputs=outputs,
        passed=all(o.passed for o in outputs))
    if not report.passed and per_layer and isinstance(source, LayersModel) and target is None:
        from .converters.keras_to_onnx import DEFAULT_OPSET
        from .runtime.divergence import first_divergence

        report.first_divergence = first_divergence(source, arrays, tolerances,
                                                   opset=opset or DEFAULT_OPSET,
                                                   device="cpu")
        if report.first_divergence is None:
            report.notes.append("every layer matches before the layout pass: the difference "
                                "comes from Transpose optimisation")
    return report


def _describe(model) -> str:
    return model.source.path if isinstance(model, LayersModel) and model.source else "model"


def _engine(model, device: str):
    from .runtime import engines

    if isinstance(model, LayersModel):
        return engines.KerasReference(model)
    return engines.OnnxRuntime(model, device=device)


def _match_layout(array: np.ndarray, spec) -> np.ndarray:
    """Feed a channels-last array to a model that exposes channels-first inputs."""
    if array.ndim >= 3 and all(d is None or d == s for d, s in zip(spec.shape, array.shape)):
        return array
    moved = np.moveaxis(array, -1, 1) if array.ndim >= 3 else array
    return np.ascontiguousarray(moved)


def _label(target: str) -> str:
    return {sniff.KERAS_H5: "Keras 3 .h5", sniff.KERAS_V3: "Keras 3 .keras",
            sniff.TFJS_LAYERS: "TF.js layers-model"}.get(target, target)


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _source_format(model: LayersModel) -> str:
    return model.source.format if model.source else "?"


def _files(written: Path, target: str) -> list[dict]:
    if target == sniff.ONNX:
        data = written.with_name(written.name + ".data")
        return [{"path": str(p), "bytes": p.stat().st_size} for p in (written, data)
                if p.exists()]
    if target == sniff.TFJS_LAYERS:
        folder = written.parent
        doc = tfjs_layers.load_model_json(written)
        names = [written.name] + [p for g in doc["weightsManifest"] for p in g["paths"]]
        return [{"path": str(folder / n), "bytes": (folder / n).stat().st_size} for n in names]
    return [{"path": str(written), "bytes": written.stat().st_size}]


def compare(a: LayersModel, b: LayersModel) -> dict:
    """Structure equality and per-weight comparison of two LayersModels."""
    sa, sb = a.structure(), b.structure()
    first = _first_difference(sa, sb, "model")
    wa = list(a.all_weights())
    wb = list(b.all_weights())
    differing, max_abs, quantized = 0, 0.0, 0
    if len(wa) != len(wb):
        first = first or f"{len(wa)} weights vs {len(wb)}"
    for (owner_a, x), (_owner_b, y) in zip(wa, wb):
        if y.quantization is not None:
            quantized += 1
        if x.array.shape != y.array.shape or x.array.dtype != y.array.dtype or \
                x.array.tobytes() != y.array.tobytes():
            differing += 1
            if x.array.shape == y.array.shape and x.array.size:
                max_abs = max(max_abs, float(np.max(np.abs(
                    x.array.astype(np.float64) - y.array.astype(np.float64)))))
            if y.quantization is None and first is None:
                first = f"weight {owner_a}/{x.path} differs"
    return {"structure_equal": first is None or first.startswith("weight"),
            "weights_compared": len(wa), "weights_differing": differing,
            "quantized": quantized, "max_abs_weight_error": max_abs,
            "first_difference": first}


def _first_difference(x: object, y: object, where: str) -> str | None:
    if type(x) is not type(y) and not (isinstance(x, (int, float)) and isinstance(y, (int, float))):
        return f"{where}: {type(x).__name__} vs {type(y).__name__}"
    if isinstance(x, dict):
        for k in sorted(set(x) | set(y), key=str):
            if k not in x or k not in y:
                return f"{where}.{k}: present on one side only"
            d = _first_difference(x[k], y[k], f"{where}.{k}")
            if d:
                return d
        return None
    if isinstance(x, (list, tuple)):
        if len(x) != len(y):
            return f"{where}: length {len(x)} vs {len(y)}"
        for i, (p, q) in enumerate(zip(x, y)):
            d = _first_difference(p, q, f"{where}[{i}]")
            if d:
                return d
        return None
    return None if x == y else f"{where}: {x!r} vs {y!r}"


def _quantization_summary(model: LayersModel) -> dict:
    counts = Counter(w.quantization["dtype"] for _, w in model.all_weights() if w.quantization)
    return dict(counts)


# --- inspect ------------------------------------------------------------------------------------

def inspect(path: str | os.PathLike) -> dict:
    """Everything a user asks before converting: format, I/O, layers, size, targets."""
    model = load(path)
    if not isinstance(model, LayersModel):
        return _inspect_onnx(model, path)
    classes = Counter(layer.class_name for layer in model.iter_layers() if layer.model is None)
    nested = [layer.name for layer in model.iter_layers() if layer.model is not None]
    quant = _quantization_summary(model)
    targets = {}
    for name, fmt in sniff.TARGETS.items():
        if fmt == sniff.ONNX:
            from .converters.keras_to_onnx import unsupported_layers

            missing = unsupported_layers(model)
            targets[name] = {"ok": not missing, "blockers": [
                {"layer": n, "class": c, "reason": f"no ONNX lowering for {c}"}
                for n, c in missing]}
            continue
        if fmt in _PENDING:
            targets[name] = {"ok": False, "blockers": [],
                             "note": f"writing {_PENDING[fmt]} is not supported yet"}
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
                      "note": "converting ONNX models is not supported yet"}
               for name in sniff.TARGETS if name != "onnx"}
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
