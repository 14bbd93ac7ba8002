"""``modelport validate``: run two models on the same inputs and compare every output."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx_ir as ir

from ..errors import ModelportError, UnsupportedError
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


def validate(src: str | os.PathLike[str], dst: str | os.PathLike[str], *,
             tolerances: Tolerances | None = None, device: str = "auto",
             inputs: str | os.PathLike[str] | None = None, batch: int = 2, seed: int = 0,
             per_layer: bool = False, engine: str = "auto") -> ParityReport:
    """Run ``src`` and ``dst`` on the same inputs and compare every output.

    ``tolerances``: atol/rtol (default 1e-4, 1e-3), per output, and the NaN policy; ``device``:
    onnxruntime's (auto, cpu, cuda); ``inputs``: an .npz of inputs instead of seeded ones
    (``batch``, ``seed``); ``per_layer``: on a mismatch, name the first diverging Keras layer;
    ``engine``: how TF.js graph-models run (auto, tfjs, reference).
    """
    return validate_with(src, dst, CheckOptions(
        device=device, engine=engine, tolerances=tolerances, inputs=inputs, batch=batch,
        seed=seed, per_layer=per_layer))


def validate_with(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                  options: CheckOptions) -> ParityReport:
    """``validate`` with its settings as one ``CheckOptions`` (what the CLI builds)."""
    source = load(src)
    return validate_models(source, dst, options, Pairing(source_path=src,
                                                         source_label=str(src)))


def validate_models(source: Model, dst: str | os.PathLike[str], options: CheckOptions,
                    pairing: Pairing | None = None) -> ParityReport:
    """Run the loaded ``source`` and the model at ``dst`` on the same inputs and compare every
    output (see ``Pairing`` for what a conversion adds)."""
    pairing = pairing or Pairing()
    device = options.device_or_default
    a = _engine(source, pairing.source_path, device, "reference")
    target = _load_target(dst, pairing.written)
    b = _engine(target, dst, device, options.engine_or_default)
    specs_a, specs_b = a.inputs(), b.inputs()
    if len(specs_a) != len(specs_b):
        raise UnsupportedError(f"the models take {len(specs_a)} and {len(specs_b)} inputs")
    arrays, described = _inputs(specs_a, options)
    raised = pairing.raised
    if raised is not None:
        arrays_b = [np.ascontiguousarray(x.transpose(p)) if p else x
                    for x, p in zip(arrays, raised.input_perms)]
    else:
        arrays_b = [match_input(x, s) for x, s in zip(arrays, specs_b)]
    _check_sizes(source, [s.name for s in specs_a], arrays)
    _check_sizes(target, [s.name for s in specs_b], arrays_b)
    expected = a.run(arrays)
    actual = b.run(arrays_b)
    if raised is not None:
        expected = [np.ascontiguousarray(np.asarray(y).transpose(p)) if p else y
                    for y, p in zip(expected, raised.output_perms)]
    else:
        expected = [match_output(y, z) for y, z in zip(expected, actual)]
    from . import parity

    tolerances = options.tolerances_or_default
    outputs = parity.compare_outputs(a.output_names(), expected, actual, tolerances)
    report = ParityReport(
        source=pairing.source_label or _describe(source), target=str(dst),
        source_engine=a.label, target_engine=b.label, inputs=described, outputs=outputs,
        passed=all(o.passed for o in outputs))
    if not report.passed:
        _localise(report, source, target, (arrays, arrays_b), options, pairing)
    return report


def _load_target(dst: str | os.PathLike[str], written: bool) -> Model:
    if written and sniff.sniff(dst) == sniff.ONNX:
        # onnxruntime reads the weights itself; scanning them here would map a second copy
        from ..formats import onnx as onnx_format

        return onnx_format.read(dst, scan_values=False)
    return load(dst)


def _inputs(specs: list[Any], options: CheckOptions) -> tuple[list[np.ndarray], dict[str, Any]]:
    """The check's inputs (from the file, or seeded) and their description for the report."""
    from ..runtime import engines

    described: dict[str, Any]
    if options.inputs is not None:
        arrays = engines.inputs_from_file(options.inputs, specs)
        described = {"description": f"inputs from {options.inputs}",
                     "file": str(options.inputs)}
    else:
        batch, seed = options.batch_or_default, options.seed_or_default
        arrays = engines.seeded_inputs(specs, batch=batch, seed=seed)
        described = {"description": f"seeded inputs (seed {seed}, batch {batch})",
                     "seed": seed, "batch": batch}
    described["shapes"] = {s.name: list(x.shape) for s, x in zip(specs, arrays)}
    return arrays, described


def _localise(report: ParityReport, source: Model, target: Model,
              feeds: tuple[list[np.ndarray], list[np.ndarray]], options: CheckOptions,
              pairing: Pairing) -> None:
    """Name, on a mismatch, the first layer whose output leaves tolerance: for a raising
    conversion always, for a Keras source against an ONNX model with ``per_layer``."""
    tolerances = options.tolerances_or_default
    if pairing.raised is not None and isinstance(target, LayersModel):
        from .divergence import first_raised_divergence

        report.first_divergence = first_raised_divergence(
            pairing.source_path, pairing.raised, target, feeds[0], feeds[1], tolerances)
    if options.per_layer and isinstance(source, LayersModel) and \
            isinstance(target, ir.Model):
        from .divergence import first_divergence

        report.first_divergence = first_divergence(source, feeds[0], tolerances,
                                                   opset=resolve_opset(pairing.opset),
                                                   device="cpu")
        if report.first_divergence is None:
            report.notes.append("every layer matches before the layout pass: the difference "
                                "comes from Transpose optimisation")


def _describe(model: Model) -> str:
    return model.source.path if isinstance(model, LayersModel) and model.source else "model"


def _engine(model: Model, path: str | os.PathLike[str] | None, device: str,
            engine: str) -> Engine:
    """The executor for a model: Keras reference, onnxruntime, or real tfjs / TF reference."""
    from ..runtime import engines

    if isinstance(model, LayersModel):
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


def _check_sizes(model: Model, names: list[str], feed: list[np.ndarray]) -> None:
    """Refuse, before onnxruntime allocates it, an ONNX value that would hold more than
    ``limits.MAX_CHECK_TENSOR_ELEMENTS`` on these inputs (see there). Shapes come from ONNX's
    shape inference with the inputs' shapes fixed; values it cannot size are not checked."""
    import onnx

    from ..limits import MAX_CHECK_TENSOR_ELEMENTS

    if not isinstance(model, ir.Model):
        return
    proto, values = skeleton(model, min_bytes=1024)
    proto = declare_as_inputs(proto, values)
    shapes = dict(zip(names, (x.shape for x in feed)))
    for vi in proto.graph.input:
        if vi.name in shapes:
            dims = vi.type.tensor_type.shape.dim
            del dims[:]
            for d in shapes[vi.name]:
                dims.add().dim_value = int(d)
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    except Exception:  # noqa: BLE001 - no shapes, no verdict: the run itself reports
        return
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if not dims or any(not d.HasField("dim_value") for d in dims):
            continue
        count = 1
        for d in dims:
            count *= max(d.dim_value, 0)
        if count > MAX_CHECK_TENSOR_ELEMENTS:
            raise UnsupportedError(
                f"the parity check would hold {count} elements in {vi.name!r} (shape "
                f"{[d.dim_value for d in dims]}), past what a check allocates "
                f"({MAX_CHECK_TENSOR_ELEMENTS})", hint="skip the check with --no-validate")
