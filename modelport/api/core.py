"""Orchestration: sniff, read, route, write, check. No layer or op knowledge lives here."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..check.readback import check_written, quantization_summary
from ..errors import FormatError, ModelportError, UnsupportedError
from ..formats import (
    keras_h5,
    keras_v3,
    sniff,
    tfjs_layers,
    tfjs_manifest,
)
from ..formats.checks import BackgroundScan, layers_model_weights
from ..formats.loading import load
from ..fsutil import check_destination, check_parent, move_into_place, staging
from ..models import LayersModel, TfjsGraph
from ..models.onnx_model import resolve_opset

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _scan(model, src: str | os.PathLike) -> BackgroundScan | None:
    """The NaN/Inf warning ``load`` gives, for a model loaded with ``scan_values=False``, run
    while the conversion works (``None``: nothing to scan; TF.js graph-models are not)."""
    if isinstance(model, LayersModel):
        named = list(layers_model_weights(model))
        file = model.source.path if model.source is not None else src
    elif isinstance(model, TfjsGraph):
        return None
    else:
        from ..formats import onnx as onnx_format

        named, file = onnx_format.float_initializers(model), src
    return BackgroundScan(named, file=file) if named else None


def save(model, dst: str | os.PathLike, *, to: str | None = None,
         force: bool = False, quantize: list[str] | None = None,
         shard_size: int = tfjs_manifest.DEFAULT_SHARD_SIZE) -> Path:
    """Write ``model`` in the format ``dst`` (or ``to``) names; nothing is left on failure.

    A ``LayersModel`` goes to .h5, .keras or a TF.js layers-model; an ``onnx_ir.Model`` to
    .onnx; a ``TfjsGraph`` to a TF.js graph-model folder (use ``convert`` to change family).
    """
    rules = tfjs_manifest.parse_quantize(quantize or [])
    if isinstance(model, TfjsGraph):
        from ..formats import tfjs_graph

        return tfjs_graph.write(model, dst, force=force, shard_size=shard_size, quantize=rules)
    if not isinstance(model, LayersModel):
        from ..formats import onnx as onnx_format

        if rules:
            raise UnsupportedError("--quantize applies to TF.js targets only")
        return onnx_format.write(model, dst, force=force)
    target = sniff.target_format(dst, to)
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
    raise UnsupportedError(f"writing {target} is not supported yet",
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
    tfjs_graph: dict | None = None  # nodes, Transposes left
    keras: dict | None = None  # raised from ONNX: inputs layout, I/O permutations, Permutes
    quantization: dict = field(default_factory=dict)
    rewrites: list[str] = field(default_factory=list)  # equivalent config rewrites the target needed
    # modelport's own layer classes the result uses (Keras and TF.js load them once registered)
    custom_layers: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def convert(src: str | os.PathLike, dst: str | os.PathLike, *, to: str | None = None,
            force: bool = False, quantize: list[str] | None = None,
            shard_size: int = tfjs_manifest.DEFAULT_SHARD_SIZE,
            opset: int | None = None, channels_first_inputs: bool = False,
            validate: bool = True, device: str = "auto", engine: str = "auto", tolerances=None,
            inputs: str | os.PathLike | None = None,
            progress: Progress = _quiet) -> ConversionReport:
    """Convert ``src`` to ``dst`` and check the result.

    Keras and TF.js layers-model targets are read back and compared structurally and bit for
    bit. ONNX and TF.js graph-model targets are checked numerically: the source runs in its
    executor, the result in its own, on the same inputs (``validate=False`` skips that).
    """
    started = time.perf_counter()
    src_format = sniff.sniff(src)
    target = sniff.target_format(dst, to)
    if to is None and target == sniff.TFJS_LAYERS and src_format in _OP_FORMATS:
        target = sniff.TFJS_GRAPH  # a folder, from an op graph: a graph-model
    check_destination(Path(dst), force)
    check_parent(tfjs_layers.destination(dst)[0] if target in (sniff.TFJS_LAYERS,
                                                                sniff.TFJS_GRAPH) else Path(dst))
    progress(f"reading {src}")
    model = load(src, format=src_format, scan_values=False)
    scan = _scan(model, src)
    try:
        report = _convert_loaded(model, src, dst, target, to=to, force=force,
                                 quantize=quantize, shard_size=shard_size, opset=opset,
                                 channels_first_inputs=channels_first_inputs,
                                 validate=validate, device=device, engine=engine,
                                 tolerances=tolerances, inputs=inputs, progress=progress)
    except BaseException:
        if scan is not None:  # its error is the one to tell; the source's NaNs can wait
            scan.cancel()
        raise
    finally:
        if scan is not None:
            scan.wait()
    if scan is not None:
        scan.result()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _convert_loaded(model, src, dst, target: str, *, to: str | None, force: bool, quantize,
                    shard_size: int, opset: int | None, channels_first_inputs: bool,
                    validate: bool, device: str, engine: str, tolerances, inputs,
                    progress: Progress) -> ConversionReport:
    if target in _OP_FORMATS:
        return _convert_ops(model, src, Path(dst), target, force=force, opset=opset,
                            channels_first_inputs=channels_first_inputs, validate=validate,
                            device=device, engine=engine, tolerances=tolerances, inputs=inputs,
                            quantize=quantize, shard_size=shard_size, progress=progress)
    if not isinstance(model, LayersModel):
        return _convert_raise(model, src, Path(dst), target, force=force,
                              channels_first_inputs=channels_first_inputs, validate=validate,
                              device=device, tolerances=tolerances, inputs=inputs,
                              quantize=quantize, shard_size=shard_size, progress=progress)
    progress(f"writing {_label(target)} to {dst} ({human_bytes(model.weight_bytes())} of weights)")
    written = save(model, dst, to=to, force=force, quantize=quantize, shard_size=shard_size)
    progress("reading the result back to check it")
    back, check, rewrites = check_written(model, written, target)
    report = ConversionReport(
        source=str(src), destination=str(written), source_format=_source_format(model),
        target_format=target, dialect=model.source.dialect if model.source else "?",
        layers=sum(1 for _ in model.iter_layers()), parameters=model.parameter_count(),
        weight_bytes=model.weight_bytes(), files=_files(Path(written), target),
        check=check, quantization=quantization_summary(back), rewrites=rewrites,
        custom_layers=_custom_layers(model))
    return report


def _custom_layers(model: LayersModel) -> list[str]:
    from ..models.keras_dialect import MODELPORT_LAYERS

    return sorted({layer.class_name for layer in model.iter_layers()
                   if layer.class_name in MODELPORT_LAYERS})


_OP_FORMATS = (sniff.ONNX, sniff.TFJS_GRAPH)


def _to_op_graph(model, target: str, *, opset: int | None, channels_first_inputs: bool,
                 progress: Progress, release: bool = False):
    """Route ``model`` to ``target``'s representation: onnx_ir.Model or TfjsGraph.

    Keras layers are lowered to ONNX; ONNX is the hub between Keras and TF.js graphs.
    ``release``: ``model`` is not needed afterwards, its weights may go as they are used.
    """
    from ..converters.keras_to_onnx import lower

    opset = resolve_opset(opset)
    if isinstance(model, LayersModel):
        progress(f"lowering {sum(1 for _ in model.iter_layers())} layers to ONNX opset {opset}")
        model = lower(model, opset=opset, channels_first_inputs=channels_first_inputs).model
    elif channels_first_inputs:
        raise UnsupportedError("--inputs-layout applies to Keras sources")
    if target == sniff.ONNX:
        if isinstance(model, TfjsGraph):
            from ..converters.tfjs_to_onnx import driver as from_tfjs

            progress(f"mapping {len(model.nodes)} TF ops to ONNX opset {opset}")
            model = from_tfjs.convert(model, opset=opset, release=release)
        return model
    if isinstance(model, TfjsGraph):
        return model
    from ..converters.onnx_to_tfjs import driver as to_tfjs

    progress(f"mapping {model.graph.num_nodes()} ONNX ops to TF ops")
    return to_tfjs.convert(model)


def _convert_ops(model, src, dst: Path, target: str, *, force: bool, opset: int | None,
                 channels_first_inputs: bool, validate: bool, device: str, engine: str,
                 tolerances, inputs, quantize, shard_size: int,
                 progress: Progress) -> ConversionReport:
    from ..formats import onnx as onnx_format
    from ..formats import tfjs_graph

    if validate and device == "cuda":
        from ..runtime.onnxruntime import cuda_usable

        if not cuda_usable():
            raise UnsupportedError("--device cuda was requested but onnxruntime's CUDA provider "
                                   "cannot run here (no GPU, or CUDA/cuDNN libraries missing)",
                                   hint="use --device auto or cpu")
    rules = tfjs_manifest.parse_quantize(quantize or [])
    if rules and target != sniff.TFJS_GRAPH:
        raise UnsupportedError("--quantize applies to TF.js targets only")
    # Without the parity check nothing runs the source again: the conversion may drop its
    # weights as it goes (a TF.js graph's filters, once transposed for ONNX); they are counted
    # first.
    release = not validate and isinstance(model, TfjsGraph) and target == sniff.ONNX
    counted = (_weight_bytes(model), _parameters(model)) if release else None
    try:
        with _diagnosed(src, model):
            result = _to_op_graph(model, target, opset=opset,
                                  channels_first_inputs=channels_first_inputs,
                                  progress=progress, release=release)
    except ModelportError as e:
        raise e.with_file(src)
    weight_bytes, parameters = counted or (_weight_bytes(model), _parameters(model))
    progress(f"writing {dst} ({human_bytes(weight_bytes)} of weights)")
    with _staged(dst, force) as staging:
        if target == sniff.ONNX:
            staged = onnx_format.write(result, staging / dst.name)
            details = {"onnx": {"opset": _opset_of(result), "ir_version": result.ir_version,
                                "transposes": sum(1 for n in result.graph
                                                  if n.op_type == "Transpose"),
                                "inputs_layout": "channels_first" if channels_first_inputs
                                else "channels_last"}}
        else:
            staged = tfjs_graph.write(result, staging / dst.name, shard_size=shard_size,
                                      quantize=rules)
            details = {"tfjs_graph": {"nodes": len(result.nodes),
                                      "transposes": sum(1 for n in result.nodes
                                                        if n.op == "Transpose")}}
        report = ConversionReport(
            source=str(src), destination=str(dst), source_format=_source_format(model),
            target_format=target,
            dialect=model.source.dialect if getattr(model, "source", None) else "-",
            layers=_size(model), parameters=parameters, weight_bytes=weight_bytes,
            files=[], **details)
        if validate:
            from ..check.validate import validate_models

            progress("checking parity on the same inputs")
            parity = validate_models(model, staged, tolerances=tolerances, device=device,
                                     inputs=inputs, per_layer=isinstance(model, LayersModel)
                                     and target == sniff.ONNX, opset=opset,
                                     source_label=str(src), source_path=src, engine=engine,
                                     written=True)
            parity.target = str(dst)
            report.parity = parity.to_json()
    written = _tfjs_json(dst) if target == sniff.TFJS_GRAPH else dst
    report.destination = str(written)
    report.files = _files(written, target)
    return report


@contextlib.contextmanager
def _diagnosed(src, model):
    """An unexpected exception while converting an ONNX model becomes a FormatError when
    ONNX's full check refuses the model too (the model, not modelport, is at fault)."""
    try:
        yield
    except ModelportError:
        raise
    except Exception as e:
        if isinstance(model, TfjsGraph):
            raise
        from ..formats import onnx as onnx_format

        reason = onnx_format.invalid_reason(src)
        if reason is None:
            raise
        raise FormatError(f"not a valid ONNX model: {reason}") from e


def _convert_raise(model, src, dst: Path, target: str, *, force: bool,
                   channels_first_inputs: bool, validate: bool, device: str, tolerances,
                   inputs, quantize, shard_size: int,
                   progress: Progress) -> ConversionReport:
    """ONNX (or a TF.js graph, through ONNX) raised to Keras layers, written as ``target``
    (.h5, .keras or a TF.js layers-model), read back, and run against the source."""
    from ..converters.onnx_to_keras import raise_model

    source_model = model
    try:
        if isinstance(model, TfjsGraph):
            from ..converters.tfjs_to_onnx import driver as from_tfjs

            progress(f"mapping {len(model.nodes)} TF ops to ONNX")
            model = from_tfjs.convert(model)
        progress(f"raising {model.graph.num_nodes()} ONNX nodes to Keras layers")
        with _diagnosed(src, source_model):
            raised = raise_model(model, channels_first_inputs=channels_first_inputs,
                                 for_tfjs=target == sniff.TFJS_LAYERS, name=Path(src).stem,
                                 source=str(src))
    except ModelportError as e:
        raise e.with_file(src)
    result = raised.model
    progress(f"writing {_label(target)} to {dst} ({human_bytes(result.weight_bytes())} of "
             "weights)")
    with _staged(dst, force) as staging:
        to_name = next(k for k, v in sniff.TARGETS.items() if v == target)
        written = save(result, staging / dst.name, to=to_name, quantize=quantize,
                       shard_size=shard_size)
        back, check, rewrites = check_written(result, written, target)
        report = ConversionReport(
            source=str(src), destination=str(dst), source_format=_source_format(source_model),
            target_format=target, dialect="keras3",
            layers=len(result.layers), parameters=result.parameter_count(),
            weight_bytes=result.weight_bytes(), files=[], check=check,
            quantization=quantization_summary(back), rewrites=rewrites,
            custom_layers=_custom_layers(result))
        report.keras = {"inputs_layout": "channels_first" if channels_first_inputs
                        else "channels_last", "input_perms": raised.input_perms,
                        "output_perms": raised.output_perms, "permutes": raised.permutes}
        if validate:
            from ..check.validate import validate_models

            progress("checking parity on the same inputs")
            parity = validate_models(source_model, written, tolerances=tolerances,
                                     device=device, inputs=inputs, source_label=str(src),
                                     source_path=src, perms=(raised.input_perms,
                                                             raised.output_perms),
                                     raised=raised)
            parity.target = str(dst)
            report.parity = parity.to_json()
    written = _tfjs_json(dst) if target == sniff.TFJS_LAYERS else dst
    report.destination = str(written)
    report.files = _files(written, target)
    return report


@contextlib.contextmanager
def _staged(dst: Path, force: bool):
    """A staging folder next to dst to write and check the result in; when the block ends
    without an error, what it holds is moved into place (the external-data file next to an
    .onnx too, each name checked against --force). An error on the way, the parity check's
    included, leaves nothing at dst."""
    with staging(dst) as stage:
        yield stage
        check_destination(dst, force)
        for item in stage.iterdir():
            check_destination(dst.parent / item.name, force)
        # data files first, the model last
        for item in sorted(stage.iterdir(), key=lambda p: (p.name == dst.name, p.name)):
            move_into_place(item, dst.parent / item.name)


def _tfjs_json(dst: Path) -> Path:
    folder, name = tfjs_layers.destination(dst)
    return folder / name


def _opset_of(model) -> int:
    return int(model.graph.opset_imports.get("", 0))


def _weight_bytes(model) -> int:
    if isinstance(model, (LayersModel, TfjsGraph)):
        return model.weight_bytes()
    return int(sum(v.const_value.nbytes for v in model.graph.initializers.values()
                   if v.const_value is not None))


def _parameters(model) -> int:
    if isinstance(model, LayersModel):
        return model.parameter_count()
    if isinstance(model, TfjsGraph):
        return int(sum(a.size for a in model.weights.values()))
    return int(sum(v.const_value.size for v in model.graph.initializers.values()
                   if v.const_value is not None))


def _size(model) -> int:
    if isinstance(model, LayersModel):
        return sum(1 for _ in model.iter_layers())
    if isinstance(model, TfjsGraph):
        return len(model.nodes)
    return model.graph.num_nodes()


def _label(target: str) -> str:
    return {sniff.KERAS_H5: "Keras 3 .h5", sniff.KERAS_V3: "Keras 3 .keras",
            sniff.TFJS_LAYERS: "TF.js layers-model"}.get(target, target)


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _source_format(model) -> str:
    source = getattr(model, "source", None)
    return source.format if source else "onnx"


def _files(written: Path, target: str) -> list[dict]:
    if target == sniff.ONNX:
        data = written.with_name(written.name + ".data")
        return [{"path": str(p), "bytes": p.stat().st_size} for p in (written, data)
                if p.exists()]
    if target in (sniff.TFJS_LAYERS, sniff.TFJS_GRAPH):
        folder = written.parent
        doc = tfjs_layers.load_model_json(written)
        names = [written.name] + [p for g in doc["weightsManifest"] for p in g["paths"]]
        return [{"path": str(folder / n), "bytes": (folder / n).stat().st_size} for n in names]
    return [{"path": str(written), "bytes": written.stat().st_size}]
