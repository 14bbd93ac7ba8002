"""``modelport validate``: run two models on the same inputs and compare every output."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ModelportError, UnsupportedError
from ..formats import sniff
from ..formats.loading import load
from ..models import LayersModel, TfjsGraph
from ..models.onnx_model import (
    NORMALIZED_OPSET,
    declare_as_inputs,
    opset_of,
    resolve_opset,
    skeleton,
)
from .layouts import match_input, match_output


def validate(src: str | os.PathLike, dst: str | os.PathLike, *, tolerances=None,
             device: str = "auto", inputs: str | os.PathLike | None = None, batch: int = 2,
             seed: int = 0, per_layer: bool = False, engine: str = "auto"):
    """Run ``src`` and ``dst`` on the same inputs and compare every output (a ParityReport)."""
    source = load(src)
    return validate_models(source, dst, tolerances=tolerances, device=device, inputs=inputs,
                           batch=batch, seed=seed, per_layer=per_layer, source_label=str(src),
                           source_path=src, engine=engine)


def validate_models(source, dst: str | os.PathLike, *, tolerances=None, device: str = "auto",
                    inputs: str | os.PathLike | None = None, batch: int = 2, seed: int = 0,
                    per_layer: bool = False, opset: int | None = None,
                    source_label: str | None = None, source_path=None, engine: str = "auto",
                    perms: tuple[list, list] | None = None, raised=None,
                    written: bool = False):
    """``perms``: (input, output) permutations p with target_array = source_array.transpose(p)
    (None entries: same layout), as a raising conversion reports them; without them a
    channels-first/last difference is recognised from the input shapes. ``written``: dst is
    what a conversion just wrote from ``source``, whose weights were checked on reading."""
    from ..runtime import engines
    from . import parity

    tolerances = tolerances or parity.Tolerances()
    a = _engine(source, source_path, device, "reference")
    if written and sniff.sniff(dst) == sniff.ONNX:
        # onnxruntime reads the weights itself; scanning them here would map a second copy
        from ..formats import onnx as onnx_format

        target = onnx_format.read(dst, scan_values=False)
    else:
        target = load(dst)
    b = _engine(target, dst, device, engine)
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
    if perms is not None:
        arrays_b = [np.ascontiguousarray(x.transpose(p)) if p else x
                    for x, p in zip(arrays, perms[0])]
    else:
        arrays_b = [match_input(x, s) for x, s in zip(arrays, specs_b)]
    for model, feed in ((source, arrays), (target, arrays_b)):
        _check_sizes(model, [s.name for s in (specs_a if model is source else specs_b)], feed)
    expected = a.run(arrays)
    actual = b.run(arrays_b)
    if perms is not None:
        expected = [np.ascontiguousarray(np.asarray(y).transpose(p)) if p else y
                    for y, p in zip(expected, perms[1])]
    else:
        expected = [match_output(y, z) for y, z in zip(expected, actual)]
    outputs = parity.compare_outputs(a.output_names(), expected, actual, tolerances)
    report = parity.ParityReport(
        source=source_label or _describe(source), target=str(dst), source_engine=a.label,
        target_engine=b.label, inputs=described, outputs=outputs,
        passed=all(o.passed for o in outputs))
    if not report.passed and raised is not None:
        from .divergence import first_raised_divergence

        report.first_divergence = first_raised_divergence(source_path, raised, target, arrays,
                                                          arrays_b, tolerances)
    if not report.passed and per_layer and isinstance(source, LayersModel) and \
            not isinstance(target, (LayersModel, TfjsGraph)):
        from .divergence import first_divergence

        report.first_divergence = first_divergence(source, arrays, tolerances,
                                                   opset=resolve_opset(opset),
                                                   device="cpu")
        if report.first_divergence is None:
            report.notes.append("every layer matches before the layout pass: the difference "
                                "comes from Transpose optimisation")
    return report


def _describe(model) -> str:
    return model.source.path if isinstance(model, LayersModel) and model.source else "model"


def _engine(model, path, device: str, engine: str):
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
    import onnx_ir as ir

    return engines.OnnxRuntime(ir.to_proto(model).SerializeToString(), device=device)


def _upgraded(model, device: str, why: ModelportError):
    """onnxruntime has no kernel for an op at an old opset of the source: run the source
    upgraded to opset 17 by onnx's version converter instead, and say so in the label."""
    import onnx_ir as ir

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


def _check_sizes(model, names: list[str], feed: list[np.ndarray]) -> None:
    """Refuse, before onnxruntime allocates it, an ONNX value that would hold more than
    ``limits.MAX_CHECK_TENSOR_ELEMENTS`` on these inputs (see there). Shapes come from ONNX's
    shape inference with the inputs' shapes fixed; values it cannot size are not checked."""
    import onnx
    import onnx_ir as ir

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
