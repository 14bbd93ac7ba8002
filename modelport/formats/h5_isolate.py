"""Opt-in isolation of an untrusted HDF5 file's first read (``--isolate``; issue 19 point 5).

libhdf5 (2.0.0) loops forever on some corrupt files (a changed global-heap reference in a
variable-length string attribute, found by fuzzing): a C loop that Python cannot interrupt
in-process. With isolation on, a child process walks the whole file first as the readers will
(every group, dataset and attribute, variable-length values read), under a time limit; a child
that does not finish is killed and the file refused (exit 3). The walk is deterministic in the
file's bytes, so a file the child read through is one the process reads through too.

It costs a Python start with h5py and one walk of the file's metadata (see README: measured on
MobileNetV2). Isolation is on within ``isolated()``, or with MODELPORT_ISOLATE set to the time
limit in seconds (``1`` or ``yes``: the default limit).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from ..errors import FormatError

DEFAULT_SECONDS = 60.0
ENV = "MODELPORT_ISOLATE"
_seconds: ContextVar[float | None] = ContextVar("modelport_isolate", default=None)

# Run as ``python -c``: h5py only (no modelport, no NumPy work beyond h5py's own), reading
# what the readers read: every attribute's value, every object's metadata, and the values of
# variable-length (string) datasets. Links other than hard links are not followed.
WALK = """
import sys
import h5py

def attrs(obj):
    for key in obj.attrs:
        obj.attrs[key]

def visit(name, obj):
    attrs(obj)
    if isinstance(obj, h5py.Dataset):
        obj.shape, obj.dtype, obj.chunks
        if h5py.check_vlen_dtype(obj.dtype) is not None or obj.dtype.kind == "O":
            obj[()]

with h5py.File(sys.argv[1], "r") as f:
    attrs(f)
    f.visititems(visit)
"""


def limit() -> float | None:
    """The time limit of an isolated read in seconds, or None when isolation is off."""
    seconds = _seconds.get()
    if seconds is not None:
        return seconds
    value = os.environ.get(ENV, "").strip().lower()
    if not value or value in ("0", "no", "false"):
        return None
    if value in ("1", "yes", "true"):
        return DEFAULT_SECONDS
    try:
        return float(value)
    except ValueError:
        return DEFAULT_SECONDS


@contextlib.contextmanager
def isolated(seconds: float | None = DEFAULT_SECONDS) -> Iterator[None]:
    """Within the block, every HDF5 file read is walked in a child first (None: off)."""
    token = _seconds.set(seconds)
    try:
        yield
    finally:
        _seconds.reset(token)


def check(path: str | os.PathLike, seconds: float | None = None) -> None:
    """Walk ``path`` in a child process when isolation is on (or ``seconds`` is given);
    a FormatError when the walk does not finish in time or the child dies."""
    seconds = limit() if seconds is None else seconds
    if seconds is None:
        return
    path = Path(path)
    try:
        proc = subprocess.run([sys.executable, "-c", WALK, os.fspath(path)],
                              capture_output=True, text=True, timeout=seconds, check=False)
    except subprocess.TimeoutExpired:
        raise FormatError(
            f"reading the HDF5 file did not finish within {seconds:g} s in an isolated child "
            "(libhdf5 loops on some corrupt files): refused", file=path) from None
    if proc.returncode < 0:  # killed by a signal: a crash in libhdf5
        raise FormatError(f"reading the HDF5 file crashed an isolated child (signal "
                          f"{-proc.returncode}): refused", file=path)
    # a Python error in the walk is the in-process reader's to name, with its own message
