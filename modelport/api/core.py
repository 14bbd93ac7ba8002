"""Orchestration: sniff, read, route, write, check. No layer or op knowledge lives here.

``convert`` builds the option objects from its keywords; ``convert_with`` finds the route
(``api.routes``), refuses an option the route would not use (``api.options``), makes the cheap
checks (destination, CUDA) before the model is read, then runs the route's steps, writes the
result and checks it as the route says.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .._lazy import DeferredModule
from ..check.options import CheckOptions
from ..check.parity import Tolerances
from ..check.readback import (
    Written,
    check_written,
    dropped_quantization,
    quantization_summary,
    written_quantization,
)
from ..errors import FormatError, ModelportError, OutputError, UnsupportedError, UsageError
from ..formats import keras_h5, keras_v3, sniff, tfjs_layers
from ..formats.checks import BackgroundScan, layers_model_weights
from ..formats.loading import load
from ..fsutil import check_destination, check_parent, move_into_place, staging
from ..models import LayersModel, TfjsGraph
from ..models.tfjs_functions import execute_async_ops
from ..models.weight_counts import weight_totals
from . import routes
from .metadata import metadata_entries
from .options import (
    ConvertOptions,
    check_applies,
    output_names,
    quantize_rules,
)
from .options import input_shapes as input_shape_specs
from .options import input_values as input_value_specs
from .report import (
    ConversionReport,
    KerasDetails,
    OnnxDetails,
    TfjsGraphDetails,
    WrittenFile,
)
from .routes import TFJS_TARGETS, Route, Step

if TYPE_CHECKING:
    import onnx_ir as ir

    from ..converters.onnx_to_keras import Raised
    from ..converters.pinned_values import InputValue
    from ..converters.pinning import InputShape
    from ..formats.loading import Model
else:
    # onnx_ir (onnx, ml_dtypes) is imported by the routes that make or read ONNX, not by a
    # Keras -> TF.js layers-model conversion: each ``ir.`` below runs where it is loaded already.
    ir = DeferredModule("onnx_ir")

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
PathLike = str | os.PathLike[str]


def _quiet(_: str) -> None:
    pass


def save(model: Model, dst: PathLike, *, to: str | None = None, force: bool = False,
         quantize: list[str] | None = None, shard_size: int | None = None) -> Path:
    """Write ``model`` in the format ``dst`` (or ``to``) names; nothing is left on failure.

    A ``LayersModel`` goes to .h5, .keras or a TF.js layers-model; an ``onnx_ir.Model`` to
    .onnx; a ``TfjsGraph`` to a TF.js graph-model folder (use ``convert`` to change family).
    ``quantize`` and ``shard_size`` apply to TF.js targets (a UsageError elsewhere).
    """
    options = ConvertOptions(to=to, force=force, quantize=quantize_rules(quantize),
                             shard_size=shard_size)
    if isinstance(model, TfjsGraph):
        kind, target = routes.GRAPH, sniff.TFJS_GRAPH
    elif isinstance(model, LayersModel):
        kind, target = routes.LAYERS, sniff.target_format(dst, to)
    else:
        kind, target = routes.ONNX, sniff.ONNX
    route = routes.ROUTES.get(f"{kind} -> {target}")
    if route is None or route.steps:
        raise UnsupportedError(f"writing {target} is not supported yet", file=dst)
    writing = replace(route, read_back=False, parity=False)
    check_applies(writing, _source_format(model), options, CheckOptions())
    return _write(model, Path(dst), target, options, force=force)


def convert(src: PathLike, dst: PathLike, *, to: str | None = None, force: bool = False,
            quantize: list[str] | None = None, shard_size: int | None = None,
            opset: int | None = None, channels_first_inputs: bool | None = None,
            validate: bool = True, device: str | None = None, engine: str | None = None,
            tolerances: Tolerances | None = None, inputs: PathLike | None = None,
            input_shapes: Iterable[object] | dict[str, object] | None = None,
            batch: int | None = None,
            outputs: list[str] | str | None = None,
            input_values: Iterable[object] | dict[str, object] | None = None,
            metadata: Iterable[str] | dict[str, PathLike] | None = None,
            report_html: PathLike | None = None,
            progress: Progress | None = None,
            max_memory: int | str | None = None) -> ConversionReport:
    """Convert ``src`` to ``dst`` and check the result.

    Keras and TF.js layers-model targets are read back and compared structurally and bit for
    bit. ONNX and TF.js graph-model targets are checked numerically: the source runs in its
    executor, the result in its own, on the same inputs (``validate=False`` skips that).

    Keywords, each as the CLI flag of the same name: ``to`` (target format, when ``dst``'s name
    does not say it), ``force`` (replace ``dst``), ``quantize`` (TF.js weight quantization
    specs, e.g. ``["uint8"]``), ``shard_size`` (TF.js shard bytes), ``opset`` (of the ONNX
    modelport writes), ``channels_first_inputs`` (NCHW image inputs: ``--inputs-layout``),
    ``validate``, and for the numeric check ``device``, ``engine``, ``tolerances``, ``inputs``
    (an .npz); ``input_shapes`` (``--input-shape``: ``{"images": (1, 3, 640, 640)}``,
    ``["images=1,3,640,640"]``, or the dims alone for a model with one input) and ``batch``
    pin an ONNX or TF.js graph-model source's free dims before it is converted (shapes are
    inferred again and what ``Shape`` computed folds to constants; ``batch`` also sets the
    check's rows); ``input_values`` (``--input-value``: ``{"sr": 16000}`` or ``["sr=16000"]``)
    fixes ONNX inputs to a value, so what the graph decides from them folds (the result has no
    such inputs); ``outputs`` (``--outputs``) cuts the graph at those values; ``metadata``
    (``--metadata``: ``{"labels": "labels.json"}`` or ``["labels=labels.json"]``) writes
    userDefinedMetadata into a TF.js model.json; ``report_html`` (``--report``) writes the
    report as an HTML page (``api.html_report``). ``None`` means not given. An option given to
    a route it does not affect is a ``UsageError`` (see ``api.options.SCOPES``). ``progress``
    receives one line per stage. ``max_memory`` (``--max-memory``: bytes, or ``"4G"``) is the
    check's memory budget (``modelport.budget``).
    """
    layout = None if channels_first_inputs is None else (
        "channels_first" if channels_first_inputs else "channels_last")
    options = ConvertOptions(to=to, force=force, quantize=quantize_rules(quantize),
                             shard_size=shard_size, opset=opset, inputs_layout=layout,
                             validate=validate, input_shapes=input_shape_specs(input_shapes),
                             batch=batch, outputs=output_names(outputs),
                             input_values=input_value_specs(input_values),
                             metadata=metadata_entries(metadata))
    check = CheckOptions(device=device, engine=engine, tolerances=tolerances, inputs=inputs)
    from ..budget import max_memory as budget

    with budget(max_memory):
        report = convert_with(src, dst, options, check, progress)
    if report_html is not None:
        from .html_report import save

        save(report, report_html)
    return report


def convert_with(src: PathLike, dst: PathLike, options: ConvertOptions,
                 check: CheckOptions | None = None,
                 progress: Progress | None = None) -> ConversionReport:
    """``convert`` with its settings as option objects (what the CLI builds)."""
    started = time.perf_counter()
    check = check or CheckOptions()
    say = progress or _quiet
    src_format = sniff.sniff(src)
    target = routes.target_for(src_format, dst, options.to)
    route = routes.find(src_format, target)
    check_applies(route, src_format, options, check)
    route = route.checked(options.validate)
    if route.runs_onnxruntime and check.device == "cuda":
        _require_cuda()
    check_destination(Path(dst), options.force)
    check_parent(tfjs_layers.destination(dst)[0] if target in TFJS_TARGETS else Path(dst))
    say(f"reading {src}")
    model = load(src, format=src_format, scan_values=False)
    scan = _scan(model, src)
    job = _Job(Path(src), Path(dst), options, replace(check, per_layer=route.per_layer), say)
    try:
        report = _run(route, model, job)
    except BaseException:
        if scan is not None:  # its error is the one to tell; the source's NaNs can wait
            scan.cancel()
        raise
    finally:
        if scan is not None:
            scan.wait()
    if scan is not None:
        scan.result()
    kept = not route.steps and route.target in TFJS_TARGETS  # a TF.js model re-written as one
    dropped = dropped_quantization(model, kept, bool(options.quantize))
    if dropped:
        hint = " (--quantize DTYPE quantizes them again)" if target in TFJS_TARGETS else ""
        report.notes.append(dropped + hint)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


@dataclass(frozen=True)
class _Job:
    """One conversion under way: where from and to, its options, and whom to tell."""

    src: Path
    dst: Path
    options: ConvertOptions
    check: CheckOptions
    progress: Progress
    # what the conversion chose itself (the report's notes say so): input shapes from the
    # model's metadata, and the batch pinned to 1 after a free batch was refused
    recorded_shapes: bool = False
    batch_retried: bool = False


@dataclass(frozen=True)
class _Shaped:
    """The source as the route takes it (cut at --outputs, its dims pinned), the model the
    check runs as the source (cut but not pinned: it runs on the pinned sizes), the pinned dims
    by input, and the job with the check's options set from them."""

    model: Model
    checked: Model
    pinned: dict[str, tuple[int | None, ...]]
    cut: bool
    job: _Job


def _shaped(source: Model, job: _Job) -> _Shaped:
    """``--outputs`` and ``--input-shape``/``--batch`` applied to an ONNX or TF.js graph-model
    source (``converters.pinning``); a spec that does not fit the model is a UsageError."""
    options = job.options
    if isinstance(source, LayersModel):  # --batch: the check's rows (Keras shapes are static)
        if options.batch is not None:
            job = replace(job, check=replace(job.check, batch=options.batch))
        return _Shaped(source, source, {}, False, job)
    model, checked, pinned = shape_source(source, options.input_shapes, options.batch,
                                          options.outputs, job.progress,
                                          values=options.input_values)
    if model is source:
        return _Shaped(source, source, {}, False, job)
    from ..converters import pinning

    specs = tuple(pinning.InputShape(k, v) for k, v in pinned.items())
    check = replace(job.check, input_shapes=specs or None,
                    batch=options.batch if options.batch is not None else job.check.batch)
    return _Shaped(model, checked, pinned, bool(options.outputs or options.input_values),
                   replace(job, check=check))


def shape_source(source: Model, input_shapes: tuple[InputShape, ...] | None,
                 batch: int | None, outputs: tuple[str, ...] | None,
                 progress: Progress = _quiet, *, values: tuple[InputValue, ...] | None = None
                 ) -> tuple[Model, Model, dict[str, tuple[int | None, ...]]]:
    """An ONNX or TF.js graph-model cut at ``outputs``, with inputs fixed to ``values``
    (``converters.pinned_values``) and its inputs' dims pinned (``converters.pinning``): the
    model to convert, the one to check it against (cut and fixed, not pinned), and the pinned
    dims by input; nothing asked: ``source`` as is. A Keras model has static shapes but for the
    batch: asking it is a UsageError."""
    from ..converters import pinning

    if not (outputs or input_shapes or batch or values):
        return source, source, {}
    if values and not isinstance(source, ir.Model):
        raise UsageError("--input-value applies to ONNX sources")
    if isinstance(source, LayersModel):
        raise UsageError("--input-shape, --batch and --outputs apply to ONNX and TF.js "
                         "graph-model sources; a Keras model's shapes are static but for the "
                         "batch, which stays free")
    if isinstance(source, TfjsGraph):
        graph = pinning.cut_graph(source, outputs) if outputs else source
        inputs, aliases = pinning.graph_inputs(graph)
        pinned = pinning.resolve(input_shapes or (), batch, inputs, aliases=aliases)
        checked: Model = graph
        model: Model = pinning.pin_graph(graph, pinned) if pinned else graph
    else:
        checked = pinning.cut_onnx(ir.from_proto(ir.to_proto(source)), outputs) \
            if outputs else source
        if values:
            from ..converters.pinned_values import fix_onnx_inputs

            checked = fix_onnx_inputs(checked, values)
            progress("fixed input values: " + "; ".join(str(v) for v in values)
                     + " (the result has no such inputs; what they decided folds)")
        pinned = pinning.resolve(input_shapes or (), batch, pinning.onnx_inputs(checked))
        model = pinning.pin_onnx(checked, pinned) if pinned or values else checked
    if outputs:
        progress(f"cut the graph at {', '.join(outputs)}")
    if pinned:
        shown = "; ".join(f"{k} {pinning.show(v)}" for k, v in pinned.items())
        progress(f"pinned input shapes: {shown} (shapes inferred again, constants folded)")
    return model, checked, pinned


def _record_shapes(result: Model, shaped: _Shaped, job: _Job) -> None:
    """The written model says which shapes it was pinned to and where it was cut (ONNX:
    metadata_props; a graph-model: userDefinedMetadata; a Keras model: its input shapes)."""
    from ..converters import pinning

    notes: dict[str, object] = {}
    if shaped.pinned:
        notes[pinning.PINNED_KEY] = {k: list(v) for k, v in shaped.pinned.items()}
    if job.options.outputs:
        notes[pinning.CUT_KEY] = list(job.options.outputs)
    if job.options.input_values:
        from ..converters.pinned_values import VALUES_KEY

        notes[VALUES_KEY] = {v.name: list(v.values) if not v.scalar else v.values[0]
                             for v in job.options.input_values}
    if not notes or isinstance(result, LayersModel):
        return
    for key, value in notes.items():
        if isinstance(result, TfjsGraph):
            meta = dict(result.extra.get("userDefinedMetadata") or {})
            meta[key] = value
            result.extra["userDefinedMetadata"] = meta
        else:
            pinning.record(result, key, value)


def _require_cuda() -> None:
    from ..runtime.onnxruntime import cuda_usable

    if not cuda_usable():
        raise UnsupportedError("--device cuda was requested but onnxruntime's CUDA provider "
                               "cannot run here (no GPU, or CUDA/cuDNN libraries missing)",
                               hint="use --device auto or cpu")


def _scan(model: Model, src: PathLike) -> BackgroundScan | None:
    """The NaN/Inf warning ``load`` gives, for a model loaded with ``scan_values=False``, run
    while the conversion works (``None``: nothing to scan; TF.js graph-models are not)."""
    named: list[tuple[str, object]]
    if isinstance(model, LayersModel):
        named = list(layers_model_weights(model))
        file: PathLike = model.source.path if model.source is not None else src
    elif isinstance(model, TfjsGraph):
        return None
    else:
        from ..formats import onnx as onnx_format

        named, file = list(onnx_format.float_initializers(model)), src
    return BackgroundScan(named, file=file) if named else None


def plan(route: Route, source: Model, job: _Job, release: bool = False
         ) -> tuple[Model, Raised | None, _Shaped]:
    """``route``'s steps on ``source`` (cut and pinned as the options say): the model the
    target's writer gets, the raised Keras model where the route raises, and the shaped
    source. Nothing is written or run: ``inspect`` calls this for its verdicts, so that it says
    what ``convert`` does (``release``: see ``_run``)."""
    try:
        with _diagnosed(job.src, source):
            job = _recorded_shapes(route, source, job)
            try:
                return _steps(route, source, job, release)
            except UnsupportedError:
                retry = _at_batch_one(route, source, job)
                if retry is None:
                    raise
                try:
                    return _steps(route, source, retry, release)
                except UnsupportedError:
                    pass
                raise
    except ModelportError as e:
        e.with_file(job.src)
        raise


def _steps(route: Route, source: Model, job: _Job, release: bool
           ) -> tuple[Model, Raised | None, _Shaped]:
    raised: Raised | None = None
    shaped = _shaped(source, job)
    job = shaped.job
    result: Model = shaped.model
    for step in route.steps:
        if step is Step.RAISE:
            assert isinstance(result, ir.Model)
            raised = _raise(result, route, job)
            result = raised.model
        else:
            result = _translate(step, result, route, job, release)
            if step is Step.TF_TO_ONNX and shaped.pinned:
                # the mapped graph is folded as an ONNX source is: what TF computed from
                # Shape becomes constants
                from ..converters.pinning import pin_onnx

                assert isinstance(result, ir.Model)
                result = pin_onnx(result, shaped.pinned)
    return result, raised, shaped


def _at_batch_one(route: Route, source: Model, job: _Job) -> _Job | None:
    """The job again with the batch pinned to 1, where raising an ONNX model whose only free
    dims are its inputs' batch was refused: an export that computes its shapes from the batch
    (jax2tf: Shape -> Slice -> Concat -> Reshape/Expand, magika's standard_v3) folds at a
    batch of one, and the Keras model is declared for one sample (``Raised``'s inputs); else
    None. ``--batch N`` chooses another batch."""
    options = job.options
    if Step.RAISE not in route.steps or not isinstance(source, ir.Model) or \
            options.batch is not None or options.input_shapes:
        return None
    from ..converters.pinning import free_dims, onnx_inputs

    inputs = onnx_inputs(source)
    frees = [free_dims(shape) for _, shape in inputs if shape is not None]
    if len(frees) != len(inputs) or not any(f == [0] for f in frees) or \
            any(f not in ([], [0]) for f in frees) or not _reads_batch_size(source):
        return None
    job.progress("raising with a free batch was refused; raising at a batch of 1")
    return replace(job, options=replace(options, batch=1), batch_retried=True)


def _reads_batch_size(model: ir.Model) -> bool:
    """Whether the graph computes with its batch size: a ``Shape`` whose first element is
    taken (``Gather`` of index 0, a ``Slice`` from 0, through ``Cast``s), the shape arithmetic
    that only a static batch folds. A model that indexes the batch otherwise (a GatherND
    across samples) is not raised again: a batch of one may be one it cannot run at."""
    from ..converters.onnx_normalize import const_array

    for node in model.graph:
        if node.op_type != "Shape" or int(node.attributes["start"].value
                                           if "start" in node.attributes else 0) != 0:
            continue
        todo = list(node.outputs[0].uses())
        while todo:
            use = todo.pop()
            reader = use.node
            if reader.op_type == "Cast":
                todo += list(reader.outputs[0].uses())
                continue
            first = const_array(reader.inputs[1]) if len(reader.inputs) > 1 and \
                reader.inputs[1] is not None else None
            if first is not None and first.size and int(first.reshape(-1)[0]) == 0 and \
                    reader.op_type in ("Gather", "Slice") and use.idx == 0:
                return True
    return False


def _recorded_shapes(route: Route, source: Model, job: _Job) -> _Job:
    """A route that raises to Keras layers (static sizes) from an ONNX model with free image
    sizes that its metadata records (Ultralytics' ``imgsz``) pins them to those, when no
    ``--input-shape`` chose others (``converters.recorded_shapes``)."""
    if Step.RAISE not in route.steps or job.options.input_shapes or \
            not isinstance(source, ir.Model):
        return job
    from ..converters.recorded_shapes import recorded_shapes

    specs = recorded_shapes(source)
    if not specs:
        return job
    if job.options.batch is not None:
        specs = tuple(replace(s, dims=(job.options.batch, *s.dims[1:])) for s in specs)
    shown = " ".join(f"--input-shape {s}" for s in specs)
    job.progress(f"the model's metadata records its input size: pinned as {shown}")
    return replace(job, options=replace(job.options, input_shapes=specs), recorded_shapes=True)


def _run(route: Route, source: Model, job: _Job) -> ConversionReport:
    """Run ``route`` on the loaded ``source``: its steps, the write, and its checks."""
    if route.read_back and not route.steps:
        assert isinstance(source, LayersModel)  # layers rewritten as layers
        return _rewrite_layers(route, source, job)
    # Without the parity check nothing runs the source again: the steps may drop its weights
    # as they go (a TF.js graph's filters, once transposed for ONNX); they are counted first.
    release = not route.parity and route.source == routes.GRAPH
    counted = _sizes(source) if release else None
    result, raised, shaped = plan(route, source, job, release)
    job = shaped.job
    checked = shaped.checked
    _record_shapes(result, shaped, job)
    if raised is not None:  # the report describes the Keras model raised
        assert isinstance(result, LayersModel)
        sizes = (result.weight_bytes(), result.parameter_count())
        layers = len(result.layers)
    else:  # the report describes the source
        sizes = counted or _sizes(checked)
        layers = _size(checked)
    label = f"{_label(route.target)} to {job.dst}" if raised else str(job.dst)
    job.progress(f"writing {label} ({human_bytes(sizes[0])} of weights)")
    with _staged(job.dst, job.options.force) as stage:
        staged = _write(result, stage / job.dst.name, route.target, job.options, force=False)
        written = check_written(result, staged, route.target) \
            if route.read_back and isinstance(result, LayersModel) else None
        report = ConversionReport(
            source=str(job.src), destination=str(job.dst),
            source_format=_source_format(source), target_format=route.target,
            dialect="keras3" if raised else _dialect(source, "-"), layers=layers,
            parameters=sizes[1], weight_bytes=sizes[0])
        _describe_result(report, result, raised, written, job.options)
        report.input_shapes = {k: list(v) for k, v in shaped.pinned.items()}
        if job.options.input_values:
            report.notes.append(
                "inputs fixed to a value: " + "; ".join(str(v) for v in job.options.input_values)
                + ": the result has no such inputs and computes what the source does for "
                "those values")
        if job.batch_retried:
            report.notes.append(
                "the batch was pinned to 1: with it free, the model's shape arithmetic does not "
                "fold to the static sizes Keras layers need; the Keras model is declared for "
                "one sample (--batch N raises it at N)")
        if job.recorded_shapes:
            report.notes.append(
                "input shapes pinned to the size the model's metadata records ("
                + "; ".join(f"{k} {list(v)}" for k, v in shaped.pinned.items())
                + "): Keras layers need static sizes; --input-shape chooses others")
        report.outputs = list(job.options.outputs or ())
        if isinstance(result, TfjsGraph):  # what the manifest stores quantized, and how
            report.quantization = written_quantization(staged, result.quantization)
        if route.parity:
            _check_parity(report, checked, staged, raised, job, in_memory=shaped.cut)
    final = _tfjs_json(job.dst) if route.target in TFJS_TARGETS else job.dst
    report.destination = str(final)
    report.files = _files(final, route.target)
    return report


def _rewrite_layers(route: Route, model: LayersModel, job: _Job) -> ConversionReport:
    """A layers model written as a layers target, read back and compared in a staging folder,
    and moved into place only when every check passed (a failure leaves DST untouched)."""
    job.progress(f"writing {_label(route.target)} to {job.dst} "
                 f"({human_bytes(model.weight_bytes())} of weights)")
    dst, inner = job.dst, job.dst.name
    if route.target in TFJS_TARGETS:
        folder, inner = tfjs_layers.destination(job.dst)
        # a new folder is staged whole; into an existing one, its files are moved one by one
        dst, inner = (folder / inner, inner) if folder.is_dir() and not \
            (folder / inner).exists() else (folder, f"{folder.name}/{inner}")
    with _staged(dst, job.options.force) as stage:
        try:
            staged = _write(model, stage / inner, route.target, job.options, force=False)
        except OutputError as e:  # named where it was going, not the staging folder
            if e.file and Path(e.file).is_relative_to(stage):
                e.file = str(dst.parent / Path(e.file).relative_to(stage))
                e.args = (str(e),)
            raise
        job.progress("reading the result back to check it")
        written = check_written(model, staged, route.target)
        parity = None
        if job.options.validate and quantization_summary(written.back).total:
            # quantized weights cannot match exactly: what they do to the outputs is checked
            from ..check.validate import Pairing, validate_models

            job.progress("checking what quantization does to the outputs")
            parity = validate_models(model, staged, job.check, Pairing(
                source_path=job.src, source_label=str(job.src), written=True))
    path = _tfjs_json(job.dst) if route.target in TFJS_TARGETS else job.dst
    if parity is not None:
        parity.target = str(path)
    return ConversionReport(
        source=str(job.src), destination=str(path), source_format=_source_format(model),
        target_format=route.target, dialect=_dialect(model, "?"),
        layers=sum(1 for _ in model.iter_layers()), parameters=model.parameter_count(),
        weight_bytes=model.weight_bytes(), files=_files(Path(path), route.target),
        check=written.check, quantization=quantization_summary(written.back, model),
        rewrites=written.rewrites, custom_layers=_custom_layers(model), parity=parity)


def _translate(step: Step, model: Model, route: Route, job: _Job, release: bool) -> Model:
    """One step between op graphs: Keras layers lowered to ONNX, ONNX mapped to TF ops, TF
    ops mapped to ONNX (``release``: the source may drop its weights as they are used)."""
    opset = job.options.onnx_opset
    if step is Step.LOWER:
        from ..converters.keras_to_onnx import lower

        assert isinstance(model, LayersModel)
        job.progress(f"lowering {sum(1 for _ in model.iter_layers())} layers to ONNX opset "
                     f"{opset}")
        return lower(model, opset=opset,
                     channels_first_inputs=job.options.channels_first).model
    if step is Step.TF_TO_ONNX:
        from ..converters.tfjs_to_onnx import driver as from_tfjs

        assert isinstance(model, TfjsGraph)
        # raising reads ONNX at any opset: the opset is named only where the ONNX is kept
        at = "" if Step.RAISE in route.steps else f" opset {opset}"
        job.progress(f"mapping {len(model.nodes)} TF ops to ONNX{at}")
        return from_tfjs.convert(model, opset=opset, release=release)
    from ..converters.onnx_to_tfjs import driver as to_tfjs

    assert step is Step.ONNX_TO_TF and isinstance(model, ir.Model)
    job.progress(f"mapping {model.graph.num_nodes()} ONNX ops to TF ops")
    return to_tfjs.convert(model)


def _raise(model: ir.Model, route: Route, job: _Job) -> Raised:
    from ..converters.onnx_to_keras import raise_model

    job.progress(f"raising {model.graph.num_nodes()} ONNX nodes to Keras layers")
    try:
        return raise_model(model, channels_first_inputs=job.options.channels_first,
                           for_tfjs=route.target == sniff.TFJS_LAYERS, name=job.src.stem,
                           source=str(job.src), one_sample=job.batch_retried)
    except UnsupportedError as e:
        _hint_pinning(e, model, job)
        raise


def _hint_pinning(error: UnsupportedError, model: ir.Model, job: _Job) -> None:
    """A refusal to raise a model whose inputs have free dims other than the batch names those
    inputs and ``--input-shape``: Keras layers need static sizes, which pinning gives."""
    from ..converters.pinning import free_dims, onnx_inputs, show

    _hint_values(error, model, job)
    if job.options.input_shapes:
        return
    free = [(name, shape) for name, shape in onnx_inputs(model)
            if shape is None or [i for i in free_dims(shape) if i > 0]]
    if not free:
        return
    name, shape = free[0]
    size = "224" if len(shape or ()) == 4 else "16"  # an image's side, a sequence's length
    example = ",".join(str(d) if isinstance(d, int) else ("1" if i == 0 else size)
                       for i, d in enumerate(shape or ()))
    listing = "; ".join(f"{n!r} {show(s)}" for n, s in free)
    note = (f"input {listing} has free dims; Keras layers need static sizes: pin them with "
            f"--input-shape {name}={example} (your sizes; repeat per input), and shapes "
            "computed at run time fold to constants")
    error.hint = f"{note}; {error.hint}" if error.hint else note


def _hint_values(error: UnsupportedError, model: ir.Model, job: _Job) -> None:
    """A refusal of a model with a scalar input (a switch, such as Silero VAD's sample rate,
    which a Keras model cannot take) names ``--input-value`` with a value the graph tests."""
    from ..converters.pinning import onnx_inputs
    from ..runtime.engines import compared_values

    scalars = [name for name, shape in onnx_inputs(model) if shape == []]
    if not scalars:
        return
    switches = compared_values(ir.to_proto(model))  # what the check's probes feed them too
    examples = []
    for name in scalars:
        tested = list(switches.get(name, ()))
        examples.append(f"--input-value {name}={tested[0] if tested else 'V'}" + (
            f" (the graph tests it for {', '.join(map(str, tested))})" if tested else ""))
    note = ("a Keras model has no scalar inputs: fix " + ("it" if len(scalars) == 1 else "them")
            + " with " + "; ".join(examples) + ", and what the graph decides from it folds")
    error.hint = f"{note}; {error.hint}" if error.hint else note


def _describe_result(report: ConversionReport, result: Model, raised: Raised | None,
                     written: Written | None, options: ConvertOptions) -> None:
    """What the target format adds to the report, and the read-back check's findings."""
    layout = "channels_first" if options.channels_first else "channels_last"
    if not isinstance(result, (LayersModel, TfjsGraph)):  # ONNX (not ir.Model: see the imports)
        report.onnx = OnnxDetails(
            opset=int(result.graph.opset_imports.get("", 0)), ir_version=result.ir_version,
            transposes=sum(1 for n in result.graph if n.op_type == "Transpose"),
            inputs_layout=layout)
    elif isinstance(result, TfjsGraph):
        report.tfjs_graph = TfjsGraphDetails(
            nodes=len(result.nodes), transposes=sum(1 for n in result.nodes
                                                    if n.op == "Transpose"),
            execute_async=execute_async_ops(result))
    if written is not None:
        assert isinstance(result, LayersModel)
        report.check = written.check
        report.quantization = quantization_summary(written.back, result)
        report.rewrites = written.rewrites
        report.custom_layers = _custom_layers(result)
    if raised is not None:
        report.keras = KerasDetails(inputs_layout=layout, input_perms=raised.input_perms,
                                    output_perms=raised.output_perms,
                                    permutes=raised.permutes)


def _check_parity(report: ConversionReport, source: Model, staged: Path,
                  raised: Raised | None, job: _Job, *, in_memory: bool = False) -> None:
    """Run the source and the staged result on the same inputs; the verdict goes in the
    report (a mismatch is reported, the result kept for inspection)."""
    from ..check.validate import Pairing, validate_models

    job.progress("checking parity on the same inputs")
    try:
        parity = validate_models(source, staged, job.check, Pairing(
            source_path=job.src, source_label=str(job.src), opset=job.options.onnx_opset,
            raised=raised, written=True, in_memory=in_memory), progress=job.progress)
    except MemoryError:
        raise UnsupportedError(
            "the conversion itself succeeded, but its parity check ran out of memory (it runs "
            "both models on the same inputs); nothing was kept",
            hint="convert again with --no-validate, then check the result on a machine with "
                 "more memory (modelport validate, with --batch 1)") from None
    parity.target = str(job.dst)
    report.parity = parity


def _write(model: Model, path: Path, target: str, options: ConvertOptions, *,
           force: bool) -> Path:
    """Write ``model`` as ``target`` at ``path`` (the writers are all-or-nothing)."""
    if isinstance(model, TfjsGraph):
        from ..formats import tfjs_graph

        return tfjs_graph.write(model, path, force=force, shard_size=options.shard_bytes,
                                quantize=options.rules, metadata=dict(options.metadata or ()))
    if not isinstance(model, LayersModel):
        from ..formats import onnx as onnx_format

        return onnx_format.write(model, path, force=force)
    try:
        if target == sniff.KERAS_H5:
            return keras_h5.write(model, path, force=force)
        if target == sniff.KERAS_V3:
            return keras_v3.write(model, path, force=force)
        if target == sniff.TFJS_LAYERS:
            return tfjs_layers.write(model, path, force=force,
                                     shard_size=options.shard_bytes, quantize=options.rules,
                                     metadata=dict(options.metadata or ()))
    except ModelportError as e:
        if model.source is not None and e.file is None:
            e.with_file(model.source.path)
        raise
    raise UnsupportedError(f"writing {target} is not supported yet", file=path)


@contextlib.contextmanager
def _diagnosed(src: Path, model: Model) -> Iterator[None]:
    """An unexpected exception while converting an ONNX model becomes a FormatError when
    ONNX's full check refuses the model too (the model, not modelport, is at fault)."""
    try:
        yield
    except ModelportError:
        raise
    except Exception as e:
        if isinstance(model, (LayersModel, TfjsGraph)):  # not ONNX
            raise
        from ..formats import onnx as onnx_format

        reason = onnx_format.invalid_reason(src)
        if reason is None:
            raise
        raise FormatError(f"not a valid ONNX model: {reason}") from e


@contextlib.contextmanager
def _staged(dst: Path, force: bool) -> Iterator[Path]:
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


def _custom_layers(model: LayersModel) -> list[str]:
    from ..models.keras_dialect import MODELPORT_LAYERS

    return sorted({layer.class_name for layer in model.iter_layers()
                   if layer.class_name in MODELPORT_LAYERS})


def _tfjs_json(dst: Path) -> Path:
    folder, name = tfjs_layers.destination(dst)
    return folder / name


def _sizes(model: Model) -> tuple[int, int]:
    """(bytes of weights, parameters), counted as ``inspect`` counts them."""
    parameters, nbytes = weight_totals(model)
    return nbytes, parameters


def _size(model: Model) -> int:
    if isinstance(model, LayersModel):
        return sum(1 for _ in model.iter_layers())
    if isinstance(model, TfjsGraph):
        return len(model.nodes)
    return sum(1 for _ in model.graph.all_nodes())  # If/Loop/Scan bodies too, as inspect counts


def _label(target: str) -> str:
    return {sniff.KERAS_H5: "Keras 3 .h5", sniff.KERAS_V3: "Keras 3 .keras",
            sniff.TFJS_LAYERS: "TF.js layers-model"}.get(target, target)


def human_bytes(n: float) -> str:
    """``1.2 MB``: a byte count as the reports print it (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _source_format(model: Model) -> str:
    source = getattr(model, "source", None)
    return source.format if source else "onnx"


def _dialect(model: Model, unknown: str) -> str:
    source = getattr(model, "source", None)
    return source.dialect if source else unknown


def _files(written: Path, target: str) -> list[WrittenFile]:
    if target == sniff.ONNX:
        data = written.with_name(written.name + ".data")
        return [WrittenFile(path=str(p), bytes=p.stat().st_size) for p in (written, data)
                if p.exists()]
    if target in TFJS_TARGETS:
        folder = written.parent
        doc = tfjs_layers.load_model_json(written)
        names = [written.name] + [p for g in doc["weightsManifest"] for p in g["paths"]]
        return [WrittenFile(path=str(folder / n), bytes=(folder / n).stat().st_size)
                for n in names]
    return [WrittenFile(path=str(written), bytes=written.stat().st_size)]

