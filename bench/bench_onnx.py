"""Keras -> ONNX conversion cost against a read-write floor.

    python bench/bench_onnx.py                       # MobileNetV2, ResNet50, a ~1 GB Dense stack
    python bench/bench_onnx.py --models MobileNetV2 --dense-gb 0

For each model, in fresh processes: the floor (read every weight with h5py, write the same
bytes to one file), the conversion (``modelport convert SRC x.onnx --no-validate``) and the
parity check alone (``modelport validate``). Prints wall time, peak RSS and the ratios; goals:
conversion wall <= 2x floor, peak RSS <= 1.5x weight bytes + 200 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))

# Peak RSS from VmHWM, which starts afresh at exec (ru_maxrss would inherit the peak of the
# parent this child was forked from).
_CHILD = r"""
import json, sys, time
t = time.perf_counter()
exec(compile(sys.argv[1], "<bench>", "exec"))
wall = time.perf_counter() - t
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"wall": wall, "rss": hwm * 1024}))
"""

_FLOOR = r"""
import h5py, io, zipfile
src, out = sys.argv[2], sys.argv[3]
def copy(f, sink):
    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            sink.write(obj[()].tobytes())
    f.visititems(visit)
with open(out, "wb") as sink:
    if src.endswith(".keras"):
        with zipfile.ZipFile(src) as z, h5py.File(z.open("model.weights.h5"), "r") as f:
            copy(f, sink)
    else:
        with h5py.File(src, "r") as f:
            copy(f, sink)
"""

_CONVERT = r"""
from modelport.cli import main
try:
    main(["convert", sys.argv[2], sys.argv[3], "--no-validate", "--force", "-q"],
         standalone_mode=False)
except SystemExit as e:
    assert not e.code, e.code
"""

_VALIDATE = r"""
from modelport import api
report = api.validate(sys.argv[2], sys.argv[3], device="cpu")
assert report.passed, [o.max_abs for o in report.outputs]
"""


def _measure(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, code, *args], capture_output=True,
                          text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench step failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench(name: str, src: Path, work: Path) -> dict:
    import modelport

    weight_bytes = modelport.load(src).weight_bytes()
    floor = _measure(_FLOOR, str(src), str(work / "floor.bin"))
    onnx = work / f"{name}.onnx"
    conv = _measure(_CONVERT, str(src), str(onnx))
    check = _measure(_VALIDATE, str(src), str(onnx))
    rss_goal = 1.5 * weight_bytes + 200e6
    return {"model": name, "weight_bytes": weight_bytes,
            "floor_s": floor["wall"], "convert_s": conv["wall"],
            "ratio": conv["wall"] / max(floor["wall"], 1e-9),
            "floor_rss": floor["rss"], "convert_rss": conv["rss"],
            "rss_over_goal": conv["rss"] / rss_goal, "validate_s": check["wall"],
            "validate_rss": check["rss"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=["MobileNetV2", "ResNet50"])
    ap.add_argument("--dense-gb", type=float, default=1.0, help="0 to skip the Dense stack")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import make_applications as apps

    sources = [(m, apps.ensure(m)) for m in args.models]
    if args.dense_gb:
        path = apps.OUT / f"dense_stack_{args.dense_gb:g}gb.h5"
        if not path.exists():
            apps.make_dense_stack(args.dense_gb, path)
        sources.append((f"Dense stack {args.dense_gb:g} GB", path))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in sources:
            rows.append(bench(name.replace(" ", "_"), src, Path(tmp)))
            os.sync() if hasattr(os, "sync") else None
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':22} {'weights':>9} {'floor s':>8} {'conv s':>8} {'ratio':>6} "
          f"{'conv RSS':>9} {'RSS/goal':>8} {'check s':>8}")
    for r in rows:
        print(f"{r['model'][:22]:22} {r['weight_bytes'] / 1e6:8.1f}M {r['floor_s']:8.2f} "
              f"{r['convert_s']:8.2f} {r['ratio']:6.2f} {r['convert_rss'] / 1e6:8.0f}M "
              f"{r['rss_over_goal']:8.2f} {r['validate_s']:8.2f}")
    print("goals: ratio <= 2 (conversion wall vs reading+writing the weights once), "
          "RSS/goal <= 1 (peak RSS vs 1.5x weight bytes + 200 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
