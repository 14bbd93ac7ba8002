"""The read-back check of Keras and TF.js layers targets: the written file, read again, must be
the model that was meant to be written, layer graph and every weight bit for bit (quantized
weights report their error instead)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelportError, ParityError
from ..formats import deferred, keras_h5, keras_v3, sniff, tfjs_layers
from ..models import LayersModel, tfjs_semantics, tfjs_support
from ..models.arrays import same_bits


@dataclass(frozen=True)
class ReadbackCheck:
    """A written model read back and compared with the one meant: the layer graph, and every
    weight bit for bit (a quantized weight reports its error instead)."""

    structure_equal: bool
    weights_compared: int
    weights_differing: int
    quantized: int  # weights stored quantized
    max_abs_weight_error: float
    first_difference: str | None  # where the two first differ, or None

    def to_dict(self) -> dict[str, object]:
        """The check as plain data (the ``"check"`` entry of ``--json``)."""
        return {"structure_equal": self.structure_equal,
                "weights_compared": self.weights_compared,
                "weights_differing": self.weights_differing, "quantized": self.quantized,
                "max_abs_weight_error": self.max_abs_weight_error,
                "first_difference": self.first_difference}


@dataclass(frozen=True)
class QuantizedWeight:
    """One weight stored quantized: how (``dtype``, and ``min``/``scale`` for uint8/uint16),
    and whether it is kept as the source stored it (else ``--quantize`` chose it)."""

    name: str
    dtype: str
    min: float | None
    scale: float | None
    kept: bool

    def to_dict(self) -> dict[str, object]:
        """The weight as plain data (an item of ``"quantized_weights"`` in ``--json``)."""
        return {"name": self.name, "dtype": self.dtype, "min": self.min, "scale": self.scale,
                "from": "source" if self.kept else "--quantize"}


@dataclass(frozen=True)
class Quantization:
    """How many weights a model stores quantized, by dtype (``{"uint8": 3}``; empty: none),
    and each of them (``weights``)."""

    by_dtype: dict[str, int] = field(default_factory=dict)
    weights: tuple[QuantizedWeight, ...] = ()

    @property
    def kept(self) -> int:
        """The quantized weights stored as the source stored them (same dtype, same bytes)."""
        return sum(1 for w in self.weights if w.kept)

    @property
    def total(self) -> int:
        """The quantized weights, all dtypes together."""
        return sum(self.by_dtype.values())

    def __bool__(self) -> bool:
        return bool(self.by_dtype)

    def to_dict(self) -> dict[str, int]:
        """The counts by dtype (the ``"quantization"`` entry of ``--json``)."""
        return dict(self.by_dtype)


@dataclass(frozen=True)
class Written:
    """A layers target written and checked: the model read back, the check, and the rewrites
    tfjs-layers needed (equivalent configs, said in the report)."""

    back: LayersModel
    check: ReadbackCheck
    rewrites: list[str]


def check_written(model: LayersModel, written: Path, target: str) -> Written:
    """Read a Keras/TF.js layers target back and compare it with what was meant to be written
    (for TF.js, the model with the rewrites tfjs-layers needs)."""
    back = _read_back(written, target)
    expected, rewrites = model, list[str]()
    if target == sniff.TFJS_LAYERS:
        expected, rewrites = tfjs_support.prepare_with_notes(model)
        # the file means what tfjs computes: a config tfjs-layers reads otherwise than Keras
        # (Concatenate(axis=-2)) reads back identical yet computes other numbers there
        wrong = tfjs_semantics.divergences(back)
        if wrong:
            name, reason = wrong[0]
            raise ParityError("the written layers-model computes other numbers in tfjs than "
                              f"the model: {reason}", file=written,
                              layer=name, hint="use `--to tfjs-graph`")
    check = compare(expected, back)
    if not check.structure_equal or (check.weights_differing and not check.quantized):
        raise ModelportError(
            "internal check failed: the written model does not read back identical "
            f"({check.first_difference})", file=written)
    return Written(back, check, rewrites)


def compare(a: LayersModel, b: LayersModel) -> ReadbackCheck:
    """Structure equality and per-weight comparison of two LayersModels."""
    sa, sb = a.structure(), b.structure()
    first = _first_difference(sa, sb, "model")
    wa = list(a.all_weights())
    wb = list(b.all_weights())
    differing, max_abs, quantized = 0, 0.0, 0
    scratch_a, scratch_b = deferred.Scratch(), deferred.Scratch()
    if len(wa) != len(wb):
        first = first or f"{len(wa)} weights vs {len(wb)}"
    pairs = list(zip(wa, wb))
    # A deferred weight (a read-back check's) that can stream is compared piece by piece as it
    # is read, several at once; what that cannot tell is read whole below and dropped after the
    # comparison: one weight at a time, never a second copy of the model.
    streamed = deferred.streamed_verdicts([(x.array, y.array) for (_, x), (_, y) in pairs])
    for ((owner_a, x), (_owner_b, y)), same in zip(pairs, streamed):
        if y.quantization is not None:
            quantized += 1
        if same:
            continue
        xa = deferred.materialize(x.array, scratch_a)
        ya = deferred.materialize(y.array, scratch_b)
        if not same_bits(xa, ya):
            differing += 1
            if xa.shape == ya.shape and xa.size and not xa.dtype.hasobject:
                max_abs = max(max_abs, float(np.max(np.abs(
                    xa.astype(np.float64) - ya.astype(np.float64)))))
            if y.quantization is None and first is None:
                first = f"weight {owner_a}/{x.path} differs"
        del xa, ya
    return ReadbackCheck(structure_equal=first is None or first.startswith("weight"),
                         weights_compared=len(wa), weights_differing=differing,
                         quantized=quantized, max_abs_weight_error=max_abs,
                         first_difference=first)


def _read_back(written: Path, target: str) -> LayersModel:
    """The written model, read again for ``compare``: its large weights are left on disk until
    ``compare`` reads each one, so the check never holds a second copy of the weights."""
    readers = {sniff.TFJS_LAYERS: tfjs_layers.read, sniff.KERAS_H5: keras_h5.read,
               sniff.KERAS_V3: keras_v3.read}
    return readers[target](written, deferred=True)


def _first_difference(x: object, y: object, where: str) -> str | None:
    if type(x) is not type(y) and not (isinstance(x, (int, float)) and isinstance(y, (int, float))):
        return f"{where}: {type(x).__name__} vs {type(y).__name__}"
    if isinstance(x, dict) and isinstance(y, dict):
        for k in sorted(set(x) | set(y), key=str):
            if k not in x or k not in y:
                return f"{where}.{k}: present on one side only"
            d = _first_difference(x[k], y[k], f"{where}.{k}")
            if d:
                return d
        return None
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        if len(x) != len(y):
            return f"{where}: length {len(x)} vs {len(y)}"
        for i, (p, q) in enumerate(zip(x, y)):
            d = _first_difference(p, q, f"{where}[{i}]")
            if d:
                return d
        return None
    return None if x == y else f"{where}: {x!r} vs {y!r}"


def quantization_summary(model: LayersModel, source: LayersModel | None = None) -> Quantization:
    """How many weights are stored quantized, by dtype, and each one; with ``source`` (the
    model ``model`` was written from), which of them keep the source's quantization."""
    counts = Counter(str(w.quantization["dtype"]) for _, w in model.all_weights()
                     if w.quantization)
    before = [w.quantization for _, w in source.all_weights()] if source is not None else []
    weights = []
    for i, (owner, w) in enumerate(model.all_weights()):
        q = w.quantization
        if not q:
            continue
        was = before[i] if i < len(before) else None
        kept = was is not None and all(was.get(k) == q.get(k) for k in ("dtype", "min", "scale"))
        weights.append(QuantizedWeight(f"{owner}/{w.path}", str(q["dtype"]), _number(q, "min"),
                                       _number(q, "scale"), kept))
    return Quantization(dict(counts), tuple(weights))


def dropped_quantization(source: object, route_keeps: bool, quantize: bool) -> str | None:
    """A note for the report when ``source`` (a TF.js layers- or graph-model) stores weights
    quantized and the result does not keep them so (``route_keeps``: a TF.js model re-written
    as one; ``quantize``: --quantize was given): re-written as float32, they take 2-4x the
    space, which must not happen silently. None: nothing to say."""
    from ..models import TfjsGraph

    if route_keeps or quantize:
        return None
    if isinstance(source, LayersModel):
        by_dtype = quantization_summary(source).by_dtype
    elif isinstance(source, TfjsGraph):
        by_dtype = dict(Counter(str(q["dtype"]) for q in source.quantization.values()))
    else:
        return None
    if not by_dtype:
        return None
    shown = ", ".join(f"{k}: {v}" for k, v in by_dtype.items())
    return (f"the source stores {sum(by_dtype.values())} weights quantized ({shown}); this "
            "target holds them dequantized, as float32")


def written_quantization(model_json: Path, source: dict[str, dict]) -> Quantization:
    """How the weights of a written TF.js model.json are stored quantized, from its manifest;
    ``source``: the source's quantization entries by weight name (a TF.js graph's), to tell
    the weights kept as the source stored them."""
    from ..formats import tfjs_layers

    doc = tfjs_layers.load_model_json(tfjs_layers.model_json_path(model_json))
    counts: Counter[str] = Counter()
    weights = []
    for group in doc.get("weightsManifest") or []:
        for entry in group.get("weights") or []:
            q = entry.get("quantization")
            if not q:
                continue
            counts[str(q["dtype"])] += 1
            was = source.get(entry["name"]) or {}
            kept = bool(was) and all(was.get(k) == q.get(k) for k in ("dtype", "min", "scale"))
            weights.append(QuantizedWeight(entry["name"], str(q["dtype"]), _number(q, "min"),
                                           _number(q, "scale"), kept))
    return Quantization(dict(counts), tuple(weights))


def _number(entry: dict, key: str) -> float | None:
    value = entry.get(key)
    return float(value) if isinstance(value, (int, float)) else None
