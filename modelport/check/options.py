"""How a numeric check runs: one frozen object for ``validate`` and for ``convert``'s parity
check, instead of a row of keyword arguments handed from function to function.

A field left ``None`` was not given: the check uses its default, and ``api.options`` may tell
an option that was given from one that was not (given to a route it does not affect, it is a
usage error rather than silently ignored).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from ..converters.pinning import InputShape
from ..errors import UsageError
from .parity import Tolerances

DEVICES = ("auto", "cpu", "cuda")
ENGINES = ("auto", "tfjs", "reference")  # and browser[:BACKEND[,BACKEND...]] (_engine_choice)
DEFAULT_SEED = 0


@dataclass(frozen=True)
class CheckOptions:
    """The numeric check's settings; ``None``: not given, the default applies."""

    device: str | None = None  # onnxruntime's: auto, cpu or cuda
    engine: str | None = None  # TF.js graph-models': auto, tfjs (real, under Node) or reference;
    # browser[:cpu,wasm,webgl,webgpu,mobile]: TF.js outputs in headless Chromium, per backend
    tolerances: Tolerances | None = None  # atol/rtol, per output, NaN policy
    inputs: str | os.PathLike[str] | None = None  # an .npz instead of seeded inputs
    batch: int | None = None  # of the seeded inputs (their first dim, where it is free)
    input_shapes: tuple[InputShape, ...] | None = None  # the seeded inputs' dims, by input
    seed: int | None = None  # of the seeded inputs
    per_layer: bool = False  # on a mismatch, name the first diverging Keras layer
    save_inputs: str | os.PathLike[str] | None = None  # an .npz of the inputs the check ran
    save_outputs: str | os.PathLike[str] | None = None  # an .npz of both sides' outputs

    def __post_init__(self) -> None:
        _choice("--device", self.device, DEVICES)
        _engine_choice(self.engine)
        if self.batch is not None and self.batch < 1:
            raise UsageError(f"--batch {self.batch}: the batch size must be at least 1")

    @property
    def device_or_default(self) -> str:
        """The onnxruntime device to ask for (``auto`` when not given)."""
        return self.device or "auto"

    @property
    def engine_or_default(self) -> str:
        """How TF.js graph-models run (``auto`` when not given)."""
        return self.engine or "auto"

    @property
    def tolerances_or_default(self) -> Tolerances:
        """The tolerances (atol 1e-4, rtol 1e-3, NaN where the source has NaN by default)."""
        return self.tolerances or Tolerances()

    @property
    def batch_or_default(self) -> int | None:
        """The seeded probes' batch size (None: as the inputs' size allows, see
        ``probes.default_batch``)."""
        return self.batch

    @property
    def seed_or_default(self) -> int:
        """The seeded inputs' seed."""
        return DEFAULT_SEED if self.seed is None else self.seed

    def given(self) -> dict[str, object]:
        """The options given explicitly (not ``None``, ``per_layer`` only when set), by field."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) not in (None, False)}


def _choice(flag: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise UsageError(f"{flag} {value!r}: choose one of {', '.join(choices)}")


def _engine_choice(value: str | None) -> None:
    """An ``--engine`` value: one of ENGINES, or ``browser`` with its backends."""
    from ..errors import ModelportError
    from ..runtime.tfjs_browser import backends_of, is_browser

    if value is not None and is_browser(value):
        try:
            backends_of(value)
        except ModelportError as e:
            raise UsageError(e.message) from None
        return
    _choice("--engine", value, ENGINES + ("browser[:cpu,wasm,webgl,webgpu,mobile]",))
