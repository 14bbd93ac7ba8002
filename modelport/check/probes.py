"""The inputs a parity check runs: several seeded distributions, or the user's file.

One distribution leaves errors unseen that another shows: a model fed standard-normal values
may never saturate what images in [0, 255] saturate, and a softmax head squashes differences
that other inputs leave in view. So the seeded check runs **probes**, each one batch of one
distribution, and judges every output per probe (each with its own scale and noise):

* ``normal``: standard-normal floats (what earlier versions fed);
* ``unit``: floats uniform in [0, 1) (images scaled to [0, 1], probabilities);
* ``pixel``: floats uniform in [0, 255), for inputs shaped like images (rank 4 with 1, 3 or 4
  channels first or last): raw pixels, what a model with its own rescaling expects;

integer inputs get values uniform over their whole range (an Embedding's vocabulary, a Gather
table's rows; 10 without a bound) and booleans coin flips, with a fresh seed per probe. An
integer scalar the graph compares with constants (``InputSpec.values``: silero-vad's
``sr == 16000``) is a switch: the ``normal`` probe takes one of those constants, the others
the default range, so that both sides of the switch are checked (the ranges above would never
pick a sample rate).

``--save-inputs`` writes the probes to an ``.npz`` as ``<probe>::<input name>``; ``--inputs``
reads such a file back as the same probes (and any other ``.npz`` as one probe, ``file``), so
a check can be repeated and shared.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UnsupportedError
from ..limits import MAX_CHECK_INPUT_ELEMENTS

if TYPE_CHECKING:
    from ..runtime.engines import InputSpec

SEPARATOR = "::"  # between a probe's name and an input's in a saved .npz
FREE_DIM = 8  # a free dimension other than the batch
MIN_BATCH, MAX_BATCH = 1, 16  # a probe's batch where the user gives none
PROBE_ELEMENTS = 1 << 16  # the input elements a probe may take where the user gives no batch
IMAGE_CHANNELS = (1, 3, 4)


@dataclass
class Probe:
    """One batch of inputs, in input order, and the distribution it was drawn from."""

    name: str
    arrays: list[np.ndarray]


Pinned = dict[str, tuple[int | None, ...]]  # an input's dims given by the user (None: free)


def seeded_probes(specs: list[InputSpec], *, batch: int | None, seed: int,
                  pinned: Pinned | None = None, free: int = FREE_DIM) -> list[Probe]:
    """The seeded probes for ``specs`` (see the module): ``normal`` and ``unit`` always,
    ``pixel`` when a float input is shaped like an image; ``batch`` rows each (None: see
    ``default_batch``). ``pinned`` gives inputs' dims by name (``--input-shape``); a dim
    neither it nor the model fixes is ``batch`` first, else ``free``."""
    batch = default_batch(specs, pinned, free) if batch is None else batch
    shapes = [_shape(spec, batch, (pinned or {}).get(spec.name), free) for spec in specs]
    names = ["normal", "unit"]
    if any(spec.dtype.startswith("float") and _image_like(shape)
           for spec, shape in zip(specs, shapes)):
        names.append("pixel")
    return [Probe(name, [_draw(name, spec, shape, np.random.default_rng([seed, k, i]))
                         for i, (spec, shape) in enumerate(zip(specs, shapes))])
            for k, name in enumerate(names)]


def default_batch(specs: list[InputSpec], pinned: Pinned | None = None,
                  free: int = FREE_DIM) -> int:
    """A probe's batch where the user gives none: as many rows as PROBE_ELEMENTS input
    elements hold, between MIN_BATCH and MAX_BATCH. Small inputs get many rows, so that a unit
    a few inputs leave dead (a ReLU's zero) is woken by others; a 224x224 image gets one row a
    probe (a NumPy reference takes seconds an image of a ResNet50)."""
    pinned = pinned or {}
    if any(pinned.get(s.name) and pinned[s.name][0] is not None for s in specs):
        return next(p[0] for s in specs if (p := pinned.get(s.name)) and p[0] is not None)
    if _state_beside_batch(specs, pinned, free):
        return free
    per_row = sum(int(np.prod([free if d is None else d
                               for d in _dims(spec, pinned.get(spec.name))[1:]], dtype=object))
                  for spec in specs) or 1
    return max(MIN_BATCH, min(MAX_BATCH, PROBE_ELEMENTS // per_row))


def _state_beside_batch(specs: list[InputSpec], pinned: Pinned, free: int) -> bool:
    """Whether an input is shaped like a recurrent state (first dim fixed, a later one free:
    ONNX's LSTM/GRU/RNN state ``[directions, batch, hidden]``) beside an input whose first
    dim is free (the batch): that free dim is then the batch, which the run needs to equal the
    other input's (silero-vad's ``state [2, ?, 128]`` beside ``input [?, ?]``), so the batch
    is the free size, where the probe stays within 4 x PROBE_ELEMENTS."""
    dims = [_dims(spec, pinned.get(spec.name)) for spec in specs]
    batched = any(d and d[0] is None for d in dims)
    state = any(d and d[0] is not None and None in d[1:] for d in dims)
    if not (batched and state):
        return False
    elements = sum(int(np.prod([free if x is None else x for x in d], dtype=object))
                   for d in dims)
    return elements <= 4 * PROBE_ELEMENTS


def _dims(spec: InputSpec, pinned: tuple[int | None, ...] | None) -> list[int | None]:
    """The input's dims with the pinned ones filled in (a pinned rank wins over an unknown
    one)."""
    if pinned is None:
        return list(spec.shape)
    if len(pinned) != len(spec.shape):
        return list(pinned)
    return [p if p is not None else d for p, d in zip(pinned, spec.shape)]


def free_dims(specs: list[InputSpec], pinned: Pinned | None = None) -> dict[str, list[int]]:
    """Per input, the dims other than the first that neither the model nor ``pinned`` fixes
    (the sizes a check has to choose)."""
    out = {}
    for spec in specs:
        dims = _dims(spec, (pinned or {}).get(spec.name))
        free = [i for i, d in enumerate(dims) if d is None and i > 0]
        if free:
            out[spec.name] = free
    return out


def _shape(spec: InputSpec, batch: int, pinned: tuple[int | None, ...] | None = None,
           free: int = FREE_DIM) -> list[int]:
    shape = [batch if i == 0 and d is None else (free if d is None else d)
             for i, d in enumerate(_dims(spec, pinned))]
    if int(np.prod(shape, dtype=object)) > MAX_CHECK_INPUT_ELEMENTS:
        raise UnsupportedError(
            f"input {spec.name!r} has shape {shape}: more than {MAX_CHECK_INPUT_ELEMENTS} "
            "elements to generate for the parity check",
            hint="pin a smaller size where the model allows one (--input-shape NAME=D0,D1,...), "
                 "check it with your own inputs (--inputs), or skip the check (--no-validate)")
    return shape


def _image_like(shape: list[int]) -> bool:
    return len(shape) == 4 and (shape[-1] in IMAGE_CHANNELS or shape[1] in IMAGE_CHANNELS)


def _draw(probe: str, spec: InputSpec, shape: list[int], rng: np.random.Generator
          ) -> np.ndarray:
    if spec.values and probe == "normal":  # a switch: the constants the graph tests it for
        return rng.choice(np.asarray(spec.values), shape).astype(spec.dtype)
    if spec.dtype.startswith(("int", "uint")):
        return rng.integers(0, spec.high or 10, shape).astype(spec.dtype)
    if spec.high is not None:  # a float input read as indices (a Keras 2 Embedding's input)
        return rng.integers(0, spec.high, shape).astype(spec.dtype)
    if spec.dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if probe == "unit":
        return rng.random(shape).astype(spec.dtype)
    if probe == "pixel" and _image_like(shape):
        return (rng.random(shape) * 255.0).astype(spec.dtype)
    if probe == "pixel":  # a second input beside an image: the unit range
        return rng.random(shape).astype(spec.dtype)
    return rng.standard_normal(shape).astype(spec.dtype)


def file_probes(path: str | os.PathLike[str], specs: list[InputSpec]) -> list[Probe]:
    """The probes of an ``.npz``: those ``--save-inputs`` wrote (keys ``probe::input``), else
    its arrays as one probe named ``file`` (by input name, or in order)."""
    from ..runtime.engines import arrays_for, read_arrays

    files = read_arrays(path)
    if files and all(SEPARATOR in key for key in files):
        grouped: dict[str, dict[str, np.ndarray]] = {}
        for key, array in files.items():
            probe, _, name = key.partition(SEPARATOR)
            grouped.setdefault(probe, {})[name] = array
        return [Probe(name, arrays_for(arrays, specs, path))
                for name, arrays in grouped.items()]
    return [Probe("file", arrays_for(files, specs, path))]


def save_probes(path: str | os.PathLike[str], probes: list[Probe], specs: list[InputSpec]
                ) -> None:
    """Write ``probes`` where ``file_probes`` reads them back."""
    from ..fsutil import write_npz

    write_npz(path, {f"{probe.name}{SEPARATOR}{spec.name}": array
                     for probe in probes for spec, array in zip(specs, probe.arrays)})
