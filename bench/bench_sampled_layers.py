"""The sampled intermediates of every Keras -> ONNX check (issue 17, point 3): what they cost and
whether any faithful conversion fails them.

    python bench/bench_sampled_layers.py --cost MobileNetV2.keras ResNet50.keras   # checked vs not
    python bench/bench_sampled_layers.py --sweep                                   # every fixture

``--cost``: each model converted once with --no-validate, then checked with the sampled
intermediates and without them (``validate._sampling`` returning None), alternated, best of
--repeat; as the reference runs are the check's own, what the sample adds is its own step (the
file run with its values marked, the matching), timed inside the same check and given as a share
of the rest of it (the median over --repeat: a busy machine moves whole checks by 50%); and the
whole ``convert`` (check included) against ``--no-validate``.

``--sweep``: every Keras fixture (fixtures/keras2, keras3, applications, layers, and the TF.js
layers-models in fixtures/tfjs and fixtures/tfjs_converter) converted to ONNX with the default
check: a faithful conversion must pass; a failure of the sampled layers is listed with the
layer it names. Conversions modelport refuses are counted, not checked.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def _best(fn, repeat, clock=time.perf_counter):
    times = []
    for _ in range(repeat):
        t = clock()
        fn()
        times.append(clock() - t)
    return min(times)


def cost(models, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        for src in map(Path, models):
            _cost_of(src, Path(tmp) / f"{src.stem}.onnx", repeat)


def _timed_check(src, dst):
    """One ``validate`` of dst against src: its wall-clock time, the time of its sampled-layer
    step (from the check's own progress lines), and the report."""
    from modelport.check.options import CheckOptions
    from modelport.check.validate import Pairing, validate_models
    from modelport.formats.loading import load

    marks = []

    def progress(line):
        marks.append((time.perf_counter(), line))

    start = time.perf_counter()
    report = validate_models(load(src), dst, CheckOptions(device="cpu"),
                             Pairing(source_path=src), progress=progress)
    end = time.perf_counter()
    step = next((end - t for t, line in marks if "sampled layers" in line), 0.0)
    return end - start, step, report


def _cost_of(src, dst, repeat):
    import modelport
    from modelport.check import validate as check

    sampling = check._sampling
    modelport.convert(src, dst, validate=False, force=True)
    _timed_check(src, dst)  # warm: imports, caches
    with_it, without, steps, shares = [], [], [], []
    for _ in range(repeat):  # alternated: a busy machine slows both alike
        check._sampling = sampling
        total, step, report = _timed_check(src, dst)
        with_it.append(total)
        steps.append(step)
        shares.append(step / (total - step))
        check._sampling = lambda *args: None
        without.append(_timed_check(src, dst)[0])
    check._sampling = sampling
    unchecked = _best(lambda: modelport.convert(src, dst, validate=False, force=True), repeat)
    checked = _best(lambda: modelport.convert(src, dst, force=True, device="cpu"), repeat)
    a, b = min(with_it), min(without)
    share = sorted(shares)[len(shares) // 2]
    found = report.intermediates
    compared = found.compared if found else 0
    print(json.dumps({"model": src.stem, "check_with": a, "check_without": b,
                      "sampled_step": min(steps), "sampled_share_median": share,
                      "convert_checked": checked, "convert_unchecked": unchecked,
                      "held": found.held if found else None, "compared": compared}))
    print(f"{src.stem}: the sampled-layer step takes {min(steps):.2f} s, +{share:.0%} of the rest "
          f"of the same check (median of {repeat}); checks side by side: {b:.2f} s without, "
          f"{a:.2f} s with {compared} sampled layers (best of {repeat}); convert "
          f"{unchecked:.2f} s unchecked, {checked:.2f} s checked ({checked / unchecked:.2f}x)",
          flush=True)


def _sources():
    for folder in ("keras2", "keras3", "applications", "layers"):
        for path in sorted((FIXTURES / folder).iterdir()):
            if path.suffix in (".h5", ".keras"):
                yield path
    for folder in ("tfjs", "tfjs_converter"):
        for path in sorted((FIXTURES / folder).glob("*/model.json")):
            if json.loads(path.read_text()).get("format") == "layers-model":
                yield path


def sweep(only):
    import modelport
    from modelport.errors import ModelportError, ParityError

    counts = {"passed": 0, "failed": 0, "refused": 0, "sampled": 0}
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for src in _sources():
            name = str(src.relative_to(FIXTURES))
            if only and not any(o in name for o in only):
                continue
            dst = Path(tmp) / "out.onnx"
            try:
                report = modelport.convert(src, dst, force=True, device="cpu")
            except ParityError:
                raise
            except ModelportError as e:
                counts["refused"] += 1
                print(f"refused {name}: {str(e)[:100]}", flush=True)
                continue
            parity = report.parity
            found = parity.intermediates if parity else None
            counts["sampled"] += bool(found and found.compared)
            if report.passed:
                counts["passed"] += 1
                continue
            counts["failed"] += 1
            outputs = all(o.passed for o in parity.outputs)
            first = found.first_not_held if found else None
            failures.append(name)
            print(f"FAIL {name}: outputs {'pass' if outputs else 'fail'}; sampled "
                  f"{found.held if found else '-'}/{found.compared if found else '-'}"
                  + (f", first not held {first['layer']} ({first['class']})" if first else ""),
                  flush=True)
    print(json.dumps(counts))
    return failures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cost", nargs="*", default=None)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.cost is not None:
        cost(args.cost or [FIXTURES / "applications" / "MobileNetV2.keras"], args.repeat)
    if args.sweep:
        sys.exit(1 if sweep(args.only) else 0)


if __name__ == "__main__":
    main()
