"""What quantized weights are expected to do to a model's outputs.

A TF.js target written with ``--quantize`` stores some weights as uint8/uint16 (an affine step
per tensor) or float16; it cannot match the source to float32 rounding, and a check that holds
it to that fails every faithful quantized conversion. What it can be held to is the error its
quantization is expected to cause, measured on the same inputs: the target's NumPy reference
runs once with the weights as stored and once with every quantized weight moved by a fresh
uniform draw of up to half its step (uint8/uint16: ``scale / 2``; float16: half a unit in the
last place), which is how far rounding to that grid moves a weight; whole numbers (an average
pool's counts, a zero, shapes) and single values are taken as exact, since the grid holds them.
The outputs' deviation is a sample of the quantization error's size: the noise rule (see
``parity``) judges the outputs against it, so a conversion passes exactly when it is as good as
its quantization allows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ..models import LayersModel, TfjsGraph

FLOAT16_STEP = 2.0 ** -11  # relative: float16's unit in the last place at 1, halved below


def is_quantized(model: object) -> bool:
    """Whether ``model`` (a loaded target) stores any weight quantized."""
    if isinstance(model, TfjsGraph):
        return bool(model.quantization)
    if isinstance(model, LayersModel):
        return any(w.quantization for _, w in model.all_weights())
    return False


def quantization_noise(model: LayersModel | TfjsGraph, feeds: list[list[np.ndarray]],
                       seed: int = 0) -> list[list[np.ndarray]]:
    """Per run of ``feeds`` (in ``model``'s layout), each output's deviation when every
    quantized weight moves by up to half its quantization step (see the module)."""
    from ..runtime.engines import deviation

    rng = np.random.default_rng(seed)
    out = []
    for arrays in feeds:
        stored = _run(model, arrays)
        with _jittered(model, rng):
            moved = _run(model, arrays)
        out.append(deviation(moved, stored))
    return out


def _run(model: LayersModel | TfjsGraph, arrays: list[np.ndarray]) -> list[np.ndarray]:
    if isinstance(model, TfjsGraph):
        from ..runtime.tfjs_reference import run

        return run(model, list(arrays), [o.tensor for o in model.outputs])
    from ..runtime.keras_reference import run as run_keras

    return run_keras(model, list(arrays)).outputs


def _step(entry: dict, array: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``array`` moved by a uniform draw of up to half the step of its stored dtype."""
    dtype = str(entry.get("dtype", ""))
    if array.size <= 1 or not array.size or np.array_equal(array, np.round(array)):
        return array
    if dtype == "float16":
        move = array * rng.uniform(-FLOAT16_STEP, FLOAT16_STEP, array.shape)
    else:
        scale = float(entry.get("scale", 0.0) or 0.0)
        move = rng.uniform(-scale / 2, scale / 2, array.shape)
    return (array + move).astype(array.dtype)


@contextmanager
def _jittered(model: LayersModel | TfjsGraph, rng: np.random.Generator) -> Iterator[None]:
    """Within the block, every quantized weight of ``model`` is moved (see ``_step``); put
    back afterwards, whatever happens."""
    if isinstance(model, TfjsGraph):
        kept = {name: model.weights[name] for name in model.quantization
                if name in model.weights}
        try:
            for name, array in kept.items():
                model.weights[name] = _step(model.quantization[name], array, rng)
            yield
        finally:
            model.weights.update(kept)
        return
    weights = [w for _, w in model.all_weights() if w.quantization]
    arrays = [w.array for w in weights]
    try:
        for w in weights:
            assert w.quantization is not None
            w.array = _step(w.quantization, w.array, rng)
        yield
    finally:
        for w, array in zip(weights, arrays):
            w.array = array
