"""Long mutation-fuzzing run of every reader and of the conversions from what it read (the
bounded version runs in CI as tests/fuzz/test_fuzz.py; both use tests/fuzz/harness.py).

    python bench/fuzz.py --iterations 20000 [--seconds 600] [--target onnx] [--seed 0]

Seeds are consecutive integers from --seed, so a finding is replayed with
``--target T --seed S --iterations 1``. An iteration that runs past --hang-seconds is a hang:
the stack goes to stderr, the run exits, and ``$TMPDIR/modelport-fuzz-current.txt`` holds its
``--target T --seed S``. Prints iterations, time, and each finding (target,
seed, exception) once per distinct (exception type, innermost modelport function); exits 1
if any.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from tests.fuzz.harness import TARGETS, run_one

CURRENT = Path(tempfile.gettempdir()) / "modelport-fuzz-current.txt"  # the running iteration


def _where(error: BaseException) -> str:
    """The innermost modelport frame of the traceback (file:function), or '?'."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if "/modelport/" in f.filename]
    if not frames:
        return "?"
    f = frames[-1]
    return f"{f.filename.split('/modelport/')[-1]}:{f.name}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--target", choices=sorted(TARGETS), action="append",
                        help="fuzz only these (repeatable); default: all, round robin")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--traceback", action="store_true", help="print each finding's traceback")
    parser.add_argument("--hang-seconds", type=float, default=120,
                        help=f"an iteration running longer is a hang: the Python stack goes to "
                             f"stderr, the process exits, and {CURRENT} names the iteration")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # NaN/Inf warnings are expected on mutated weights
    targets = args.target or sorted(TARGETS)
    started = time.perf_counter()
    findings: dict[tuple[str, str], tuple[str, int, BaseException]] = {}
    done = dict.fromkeys(targets, 0)
    with tempfile.TemporaryDirectory(prefix="modelport-fuzz-") as scratch, \
            open(CURRENT, "w") as current:
        for i in range(args.iterations):
            if args.seconds and time.perf_counter() - started > args.seconds:
                break
            target = targets[i % len(targets)]
            seed = args.seed + i
            current.seek(0)
            current.truncate()
            current.write(f"--target {target} --seed {seed}\n")
            current.flush()
            # A loop inside a C library (libhdf5 2.0.0 loops forever on some corrupt files)
            # never returns to Python, so no signal handler runs; faulthandler's thread does.
            faulthandler.dump_traceback_later(args.hang_seconds, exit=True)
            error = run_one(target, seed, Path(scratch))
            faulthandler.cancel_dump_traceback_later()
            done[target] += 1
            if error is not None:
                where = _where(error)
                key = (type(error).__name__, where)
                if key not in findings:
                    findings[key] = (target, seed, error)
                    print(f"FINDING {target} seed={seed} at {where}: {type(error).__name__}: "
                          f"{str(error)[:200]}", flush=True)
                    if args.traceback:
                        traceback.print_exception(error)
    elapsed = time.perf_counter() - started
    total = sum(done.values())
    print(f"iterations: {total} ({', '.join(f'{t}: {n}' for t, n in done.items())}) in "
          f"{elapsed:.1f} s ({total / max(elapsed, 1e-9):.1f}/s); distinct findings: "
          f"{len(findings)}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
