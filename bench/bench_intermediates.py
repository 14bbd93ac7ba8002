"""What comparing the file's intermediate values would add to every Keras -> ONNX check
(issue 17, point 3): measured, not wired into the default path.

    python bench/bench_intermediates.py                      # cnn_bn_pool, MobileNetV2, ResNet50
    python bench/bench_intermediates.py --models MobileNetV2 --sample 8

For each model (converted once with --no-validate): the default check alone (``validate``), then
on the check's own first feed (its probes joined along the batch) the parts a per-check
comparison of intermediates would add, each timed on its own (best of --repeat):

- ``ort plain``: onnxruntime on the file as it is (what the check already pays);
- ``ort marked``: the file re-serialized with every value marked as an output, a new session,
  one run (``intermediates.onnx_values``);
- ``capture``: the NumPy reference with every tensor kept, in float32 and in float64 (the
  check already runs both for the outputs' noise; kept tensors are what is new);
- ``match all`` / ``match sample``: finding every Keras tensor / --sample of them, spread over
  the call order, among the file's values (``intermediates.Values.find``).

Then peak RSS (VmHWM, fresh processes) of the check alone and of the check followed by the
whole walk (``intermediates.keras_vs_onnx``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    "cnn_bn_pool": ROOT / "fixtures" / "keras3" / "cnn_bn_pool.h5",
    "MobileNetV2": ROOT / "fixtures" / "applications" / "MobileNetV2.keras",
    "ResNet50": ROOT / "fixtures" / "applications" / "ResNet50.keras",
    "EfficientNetB0": ROOT / "fixtures" / "applications" / "EfficientNetB0.keras",
}

_CHILD = r"""
import json, sys, time
from pathlib import Path
import modelport
src, dst, walk = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
t = time.perf_counter()
report = modelport.validate(src, dst, device="cpu")
check = time.perf_counter() - t
if walk:
    sys.path.insert(0, sys.argv[4])
    from bench_intermediates import feeds, walk_once
    walk_once(src, dst)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"check": check, "rss": hwm * 1024, "passed": report.passed}))
"""


def feeds(src, dst):
    """The check's first feed: its seeded probes joined along the batch, in each model's
    layout (as ``validate`` builds it when every input has a free batch axis), and each
    probe's rows."""
    import numpy as np

    from modelport.check.layouts import match_input
    from modelport.check.options import CheckOptions
    from modelport.check.probes import seeded_probes
    from modelport.formats.loading import load
    from modelport.runtime.engines import KerasReference, OnnxRuntime

    source = load(src)
    specs = KerasReference(source).inputs()
    options = CheckOptions()
    probes = seeded_probes(specs, batch=options.batch_or_default, seed=options.seed_or_default)
    keras = [np.concatenate(xs) for xs in zip(*(p.arrays for p in probes))]
    onnx_specs = OnnxRuntime(dst).inputs()
    starts = np.cumsum([0] + [p.arrays[0].shape[0] for p in probes])
    groups = [slice(int(a), int(b)) for a, b in pairwise(starts)]
    return source, keras, [match_input(x, s) for x, s in zip(keras, onnx_specs)], groups


def walk_once(src, dst):
    from modelport.check.intermediates import keras_vs_onnx
    from modelport.check.parity import Tolerances
    from modelport.formats.loading import load

    source, keras, onnx_arrays, groups = feeds(src, dst)
    return keras_vs_onnx(source, keras, load(dst), onnx_arrays, Tolerances(), groups=groups)


def _best(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def measure(name, src, dst, repeat, sample):
    import onnx_ir as ir

    import modelport
    from modelport.check.divergence import captured
    from modelport.check.intermediates import Values, mark_all, onnx_values
    from modelport.check.parity import Tolerances
    from modelport.formats.loading import load
    from modelport.models import keras_graph
    from modelport.runtime.engines import KerasReference, OnnxRuntime
    from modelport.runtime.precision import exact

    check, report = _best(lambda: modelport.validate(src, dst, device="cpu"), repeat)
    source, keras, onnx_arrays, groups = feeds(src, dst)
    target = load(dst)
    session_plain, engine = _best(lambda: OnnxRuntime(dst, device="cpu"), repeat)
    plain, _ = _best(lambda: engine.run(onnx_arrays), repeat)
    marked, values = _best(lambda: onnx_values(target, onnx_arrays), repeat)
    to_proto, proto = _best(lambda: ir.to_proto(target), repeat)
    mark_all(proto.graph)
    serialize, data = _best(proto.SerializeToString, repeat)
    session_marked, marked_engine = _best(lambda: OnnxRuntime(data, device="cpu"), repeat)
    run_marked, _ = _best(lambda: marked_engine.run(onnx_arrays), repeat)
    ref = KerasReference(source)

    def wide(capture):
        with exact():
            return ref.run(keras, capture=capture)

    f32, _ = _best(lambda: ref.run(keras), repeat)
    f32_kept, _ = _best(lambda: ref.run(keras, capture=True), repeat)
    f64, _ = _best(lambda: wide(False), repeat)
    f64_kept, _ = _best(lambda: wide(True), repeat)
    capture, (reference, noise) = _best(lambda: captured(source, keras), repeat)
    order = keras_graph.call_order(keras_graph.as_functional(source))
    keys = [(layer.name, k, 0) for layer, k in order if (layer.name, k, 0) in reference.tensors]
    step = max(1, len(keys) // sample)
    sampled = keys[::step][:sample]

    def match(which):
        found = Values(values, Tolerances(), groups)
        return sum(found.find(reference.tensors[k], noise.get(k)) is not None for k in which)

    match_all, held = _best(lambda: match(keys), repeat)
    match_some, held_some = _best(lambda: match(sampled), repeat)
    return {"model": name, "batch": keras[0].shape[0], "check": check,
            "passed": report.passed, "ort_session_plain": session_plain, "ort_plain": plain,
            "ort_marked": marked, "to_proto": to_proto, "serialize": serialize,
            "ort_session_marked": session_marked, "ort_run_marked": run_marked,
            "values": len(values), "ref_f32": f32, "ref_f32_kept": f32_kept, "ref_f64": f64,
            "ref_f64_kept": f64_kept, "capture_f32_f64": capture, "match_all": match_all,
            "held": held, "keras_tensors": len(keys), "match_sample": match_some,
            "sample": len(sampled), "held_sample": held_some}


def rss(src, dst, walk):
    out = subprocess.run([sys.executable, "-c", _CHILD, str(src), str(dst), "1" if walk else "0",
                          str(Path(__file__).parent)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _say(name, row):
    kept = (row["ref_f32_kept"] - row["ref_f32"]) + (row["ref_f64_kept"] - row["ref_f64"])
    # the check runs the reference in f32 and f64 and onnxruntime already: what is new is the
    # marked model (serialized, its session, its run instead of the plain one), the tensors
    # the reference keeps, and the matching
    ort_extra = row["to_proto"] + row["serialize"] + row["ort_session_marked"] + \
        row["ort_run_marked"] - row["ort_plain"]
    for what, match in (("all", row["match_all"]), (f"sample {row['sample']}",
                                                    row["match_sample"])):
        extra = ort_extra + max(kept, 0.0) + match
        print(f"{name} ({what}): check {row['check']:.2f} s (batch {row['batch']}); ONNX "
              f"marked: to_proto {row['to_proto']:.3f} + serialize {row['serialize']:.3f} + "
              f"session {row['ort_session_marked']:.3f} (plain {row['ort_session_plain']:.3f}) "
              f"+ run {row['ort_run_marked']:.3f} (plain {row['ort_plain']:.3f}); reference "
              f"keeping tensors +{kept:.3f} s (f32 {row['ref_f32']:.3f}, f64 "
              f"{row['ref_f64']:.3f}); match {match:.3f} s ({row['held']}/"
              f"{row['keras_tensors']} held over {row['values']} values); extra on every "
              f"check {extra:.2f} s = {extra / row['check']:.0%} of the check")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="*", default=["cnn_bn_pool", "MobileNetV2", "ResNet50"])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--sample", type=int, default=8)
    parser.add_argument("--no-rss", action="store_true")
    args = parser.parse_args()
    import modelport

    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            src = MODELS[name]
            dst = Path(tmp) / f"{name}.onnx"
            modelport.convert(src, dst, validate=False, force=True)
            row = measure(name, src, dst, args.repeat, args.sample)
            if not args.no_rss:
                row["rss_check"] = rss(src, dst, False)["rss"]
                row["rss_check_and_walk"] = rss(src, dst, True)["rss"]
            print(json.dumps(row))
            _say(name, row)
            if "rss_check" in row:
                print(f"  peak RSS: check {row['rss_check'] / 2**20:.0f} MB, check + walk "
                      f"{row['rss_check_and_walk'] / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
