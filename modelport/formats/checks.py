"""Checks every reader applies to what a model file declares, before trusting it.

The limits themselves are in ``modelport.limits``.

* Declared sizes: a weight whose declared shape needs more bytes than the file can hold is a
  FormatError raised *before* anything is allocated (a 4 TiB shape must never reach NumPy as a
  MemoryError).
* Layer names: a config that names two layers alike is refused by name, before the graph is
  built (the graph would otherwise wire inputs to the wrong layer, or report a dangling input).
* Non-finite weights (NaN/Inf) are legal and converted, but logged as a WARNING naming the file
  and the weights: they are almost always a training accident, and a conversion that silently
  carries them would pass a parity check (NaN matches NaN) while the model is useless.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterable

import numpy as np

from ..errors import FormatError
from ..limits import MAX_ELEMENTS

log = logging.getLogger("modelport")

# Compressed storage (gzip'd HDF5 chunks, deflated zip members) may legitimately hold more
# bytes than it occupies, but not wildly more: real weights compress by a few x at best.
MAX_EXPANSION = 64
SLACK_BYTES = 1 << 20  # tiny tensors (and all-zero chunked ones) may be stored as fill values
_SCAN_CHUNK = 1 << 24  # elements per NaN/Inf scan step: bounded temporary memory


def check_element_count(shape: Iterable[int], *, what: str, file: str | os.PathLike | None
                        ) -> int:
    """The element count of ``shape``, or a FormatError when it is absurd."""
    dims = list(shape)
    if any(not isinstance(d, (int, np.integer)) or d < 0 for d in dims):
        raise FormatError(f"{what} has an invalid shape {dims!r}", file=file)
    count = math.prod(int(d) for d in dims)
    if count > MAX_ELEMENTS:
        raise FormatError(f"{what} declares {count} elements (shape {dims}); more than "
                          f"{MAX_ELEMENTS} is not a real model", file=file)
    return count


def check_declared_bytes(declared: int, stored: int, *, what: str,
                         file: str | os.PathLike | None) -> None:
    """Refuse a tensor that declares far more bytes than its storage holds."""
    if declared > stored * MAX_EXPANSION + SLACK_BYTES:
        raise FormatError(f"{what} declares {declared} bytes but the file stores {stored} for "
                          "it (corrupt or crafted shape)", file=file)


def check_layer_names(config: object, *, file: str | os.PathLike | None) -> None:
    """Refuse a model config in which two layers of one model share a name."""
    stack = [config]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        inner = node.get("config")
        layers = inner.get("layers") if isinstance(inner, dict) else None
        if not isinstance(layers, list):
            continue
        seen: set[str] = set()
        for layer in layers:
            if not isinstance(layer, dict):
                continue
            cfg = layer.get("config")
            name = layer.get("name", cfg.get("name") if isinstance(cfg, dict) else None)
            if isinstance(name, str):
                if name in seen:
                    raise FormatError(f"layer name {name!r} appears twice in the model config; "
                                      "layer names must be unique", file=file)
                seen.add(name)
            stack.append(layer)  # nested models have their own namespace


def count_non_finite(array: np.ndarray) -> tuple[int, int]:
    """(NaN count, Inf count) of a float array, scanned in chunks (memory-mapped weights stay
    mapped; the temporary masks stay small)."""
    if array.dtype.kind not in "fc" or array.size == 0:
        return 0, 0
    flat = array.reshape(-1)
    nans = infs = 0
    for start in range(0, flat.size, _SCAN_CHUNK):
        part = flat[start:start + _SCAN_CHUNK]
        # A NaN or Inf anywhere makes the sum NaN or Inf, so a finite sum proves the chunk
        # finite at the cost of one pass without temporaries; only a non-finite sum (or a
        # finite-valued overflow) pays for the exact count.
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.add.reduce(part)):
                continue
        nans += int(np.count_nonzero(np.isnan(part)))
        infs += int(np.count_nonzero(np.isinf(part)))
    return nans, infs


def warn_non_finite(named: Iterable[tuple[str, object]], *,
                    file: str | os.PathLike | None) -> list[tuple[str, int, int]]:
    """Log one WARNING per weight holding NaN or Inf; return (name, NaNs, Infs) of those. Each
    weight is an array or anything ``np.asarray`` makes one of (an ONNX tensor)."""
    found = []
    for name, array in named:
        nans, infs = count_non_finite(np.asarray(array))
        if nans or infs:
            found.append((name, nans, infs))
            log.warning("%s: %s holds %d NaN and %d Inf values (converted as they are)",
                        os.fspath(file) if file is not None else "model", name, nans, infs)
    return found


class BackgroundScan:
    """``warn_non_finite`` on a worker thread, for a conversion that reads its source's weights
    anyway: the scan (a pass over every weight, 0.13 s a GB from memory) overlaps the
    conversion's own work instead of coming first. numpy releases the GIL while it sums.

    ``named`` is taken as a list up front, so the conversion may change its model (drop or
    replace weights) meanwhile; each array is let go once scanned. ``wait()`` waits for the
    scan; ``result()`` waits and returns what ``warn_non_finite`` returns, raising what it
    raised; ``cancel()`` makes it stop after the weight in hand (a conversion that failed, or
    was interrupted, does not wait for a scan of gigabytes)."""

    def __init__(self, named: Iterable[tuple[str, object]], *,
                 file: str | os.PathLike | None) -> None:
        self._todo = list(named)
        self._file = file
        self._found: list[tuple[str, int, int]] = []
        self._error: BaseException | None = None
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modelport-non-finite-scan",
                                        daemon=True)
        self._thread.start()

    def _drain(self):
        self._todo.reverse()
        while self._todo and not self._cancelled.is_set():
            yield self._todo.pop()
        self._todo.clear()

    def _run(self) -> None:
        try:
            self._found = warn_non_finite(self._drain(), file=self._file)
        except BaseException as e:  # noqa: BLE001 - handed to the caller in result()
            self._error = e

    def cancel(self) -> None:
        """Make the scan stop after the weight in hand."""
        self._cancelled.set()

    def wait(self) -> None:
        """Wait for the scan to end."""
        self._thread.join()

    def result(self) -> list[tuple[str, int, int]]:
        """Wait for the scan; what ``warn_non_finite`` returned, or raise what it raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._found


def layers_model_weights(model) -> Iterable[tuple[str, np.ndarray]]:
    """(``layer 'x' weight 'kernel'``, array) for every weight of a LayersModel."""
    for owner, weight in model.all_weights():
        yield f"layer {owner!r} weight {weight.path!r}", weight.array
