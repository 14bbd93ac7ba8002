"""What ``convert`` returns: a typed report whose ``to_dict()`` is exactly what ``--json``
prints (after ``"ok"``), and whose ``to_json()`` is that as a JSON string."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

from ..check.parity import ParityReport
from ..check.readback import Quantization, ReadbackCheck


class WrittenFile(TypedDict):
    """One file the conversion wrote, and its size."""

    path: str
    bytes: int


@dataclass(frozen=True)
class OnnxDetails:
    """An ONNX target: its opset and IR version, the Transposes left, the inputs' layout."""

    opset: int
    ir_version: int
    transposes: int
    inputs_layout: str  # channels_last or channels_first

    def to_dict(self) -> dict[str, Any]:
        """The ``"onnx"`` entry of ``--json``."""
        return asdict(self)


@dataclass(frozen=True)
class TfjsGraphDetails:
    """A TF.js graph-model target: its nodes, the Transposes left, and the ops for which tfjs
    runs it only with ``GraphModel.executeAsync`` (control flow, dynamic shapes)."""

    nodes: int
    transposes: int
    execute_async: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``"tfjs_graph"`` entry of ``--json``."""
        return asdict(self)


@dataclass(frozen=True)
class KerasDetails:
    """A Keras target raised from ONNX: its inputs' layout, and per input and output the
    permutation p with keras_array = onnx_array.transpose(p) (None: same layout)."""

    inputs_layout: str
    input_perms: list[list[int] | None]
    output_perms: list[list[int] | None]
    permutes: int  # Permute layers the raising made

    def to_dict(self) -> dict[str, Any]:
        """The ``"keras"`` entry of ``--json``."""
        return asdict(self)


@dataclass
class ConversionReport:
    """One conversion: what was read and written, and how it was checked.

    ``check``: the read-back comparison (Keras and TF.js layers targets); ``parity``: the
    numeric check (ONNX and TF.js graph targets, and Keras targets raised from op graphs;
    None with ``validate=False``); ``onnx``/``tfjs_graph``/``keras``: what the target format
    adds; ``rewrites``: equivalent config rewrites the target needed; ``custom_layers``:
    modelport's own layer classes the result uses (Keras and TF.js load them once registered).
    """

    source: str
    destination: str
    source_format: str
    target_format: str
    dialect: str
    layers: int
    parameters: int
    weight_bytes: int
    files: list[WrittenFile] = field(default_factory=list)
    check: ReadbackCheck | None = None
    parity: ParityReport | None = None
    onnx: OnnxDetails | None = None
    tfjs_graph: TfjsGraphDetails | None = None
    keras: KerasDetails | None = None
    quantization: Quantization = field(default_factory=Quantization)
    rewrites: list[str] = field(default_factory=list)
    custom_layers: list[str] = field(default_factory=list)
    input_shapes: dict[str, list[int | None]] = field(default_factory=dict)  # pinned dims
    outputs: list[str] = field(default_factory=list)  # the values --outputs cut the graph at
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # what the user should know (dequantized)

    @property
    def passed(self) -> bool:
        """Whether the result reproduces the source (True when no numeric check ran: a
        read-back difference is an error, never a report)."""
        return self.parity is None or self.parity.passed

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data, in the CLI's ``--json`` structure."""
        return {
            "source": self.source, "destination": self.destination,
            "source_format": self.source_format, "target_format": self.target_format,
            "dialect": self.dialect, "layers": self.layers, "parameters": self.parameters,
            "weight_bytes": self.weight_bytes, "files": [dict(f) for f in self.files],
            "check": self.check.to_dict() if self.check is not None else {},
            "parity": _or_none(self.parity), "onnx": _or_none(self.onnx),
            "tfjs_graph": _or_none(self.tfjs_graph), "keras": _or_none(self.keras),
            "quantization": self.quantization.to_dict(),
            "quantized_weights": [w.to_dict() for w in self.quantization.weights],
            "rewrites": list(self.rewrites),
            "custom_layers": list(self.custom_layers),
            "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
            "outputs": list(self.outputs), "seconds": self.seconds, "notes": list(self.notes),
        }

    def to_json(self) -> str:
        """``to_dict()`` as a JSON string."""
        return json.dumps(self.to_dict(), indent=2)


def _or_none(part: ParityReport | OnnxDetails | TfjsGraphDetails | KerasDetails | None
             ) -> dict[str, Any] | None:
    return part.to_dict() if part is not None else None
