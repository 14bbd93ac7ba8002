"""The speed goals of issue 17 (point 9), measured in one run, each line with its goal.

    python bench/speed.py                                   # modelport alone
    python bench/speed.py --tf-python /tmp/tf/bin/python    # + tf2onnx, tensorflowjs_converter
    python bench/speed.py --deps-python /tmp/other/bin/python   # + another env's import times
    python bench/speed.py --only deps                       # one section (deps, small, large)

Every figure is a whole, fresh process, the way a user runs modelport
(``python -m modelport convert SRC DST``); the helpers (the byte floor, the model builder, the
process timer) are ``bench_routes``'s.

deps
    The import time of each dependency, in a fresh process each (``python -c 'import X'`` less a
    bare ``python -c pass``, median of ``--repeat``), with its version: dependency versions are
    chosen by this line (pyproject's ``ml_dtypes!=0.7.0`` came from it). ``--deps-python`` adds
    the same line for other interpreters, e.g. a throwaway venv holding another release.
small (goal: conversion <= 1.5x yardstick)
    Small fixtures (their bytes copy faster than Python starts), each route without the check.
    The yardstick is one fresh process that imports the modules the route needs (``NEEDS``:
    numpy, h5py and click for a TF.js layers-model, onnx_ir with onnx under it for the routes
    that build ONNX; sympy deferred, as modelport does) and then reads and writes the source's
    bytes (``bench_routes``'s floor):
    what no conversion, whatever its code, can beat with these libraries. ``extra`` names the
    heavy modules the conversion imported beyond its route's needs (none expected).
large (goals: unchecked <= 1.5x floor; checked <= 2x unchecked; >= 25x faster than tf2onnx,
>= 15x faster than tensorflowjs_converter)
    ResNet50 with random weights (``bench_routes.make_model``: Keras 2 ``.h5`` from tf_keras when
    ``--tf-python`` is given, so the older tools read the very same file; Keras 3 otherwise),
    each route unchecked against the byte floor (fastest copy in a fresh process) and against
    the small models' yardstick (``/yard``: the route's imports, then that copy; a warm 100 MB
    copy takes less time than importing numpy, so the floor alone mostly weighs the imports),
    then checked (the default ``convert``) against unchecked, then, with ``--tf-python``, ``python -m
    tf2onnx.convert --keras`` and ``tensorflowjs_converter --input_format keras`` on the same
    file in the same run (median of ``--other-repeat`` runs, 1 by default: they take 10-45 s).

As in ``bench_routes``: the yardstick or floor is the fastest of ``--repeat`` runs, the
conversion the median (a stricter comparison than median against median); modelport's bytecode
is compiled first, as ``pip install`` does.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_routes as br

ROOT = br.ROOT
DEPS = ("numpy", "h5py", "click", "ml_dtypes", "onnx", "onnx_ir", "onnxruntime", "sympy",
        "modelport", "modelport.cli")
HEAVY = ("onnx", "onnx_ir", "onnxruntime", "ml_dtypes")
BASE = ("numpy", "h5py", "click")
# what each route needs to import; onnx_ir imports onnx (and both ml_dtypes) at module level
NEEDS = {"tfjs-layers": BASE, "tfjs-graph": (*BASE, "onnx_ir"), "onnx": (*BASE, "onnx_ir")}
DST = {"tfjs-layers": "layers", "tfjs-graph": "graph", "onnx": "model.onnx"}
SMALL = ("fixtures/keras2/mlp_sequential.h5", "fixtures/keras2/cnn_bn_pool.h5",
         "fixtures/applications/MobileNetV2.keras")

_VERSION = r"""
import importlib.metadata as m, sys
for name in sys.argv[1:]:
    try:
        print(name, m.version(name))
    except m.PackageNotFoundError:
        print(name, "-")
"""

# modelport defers sympy (onnx_ir imports it, never uses it here): the yardstick does the same,
# with modelport's own finder, loaded without the package
_DEFER = r"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("_lazy", sys.argv.pop(1))
lazy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lazy)
lazy.defer_heavy_imports()
"""

_IMPORTED = r"""
import sys
from modelport.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    heavy = ("onnx", "onnx_ir", "onnxruntime", "ml_dtypes")
    print("imported:", ",".join(m for m in heavy if m in sys.modules), file=sys.stderr)
"""


def _wall(cmd: list[str], env: dict | None = None) -> float:
    r = br._measure(cmd, env)
    if r.get("error"):
        raise SystemExit(f"{' '.join(cmd[:6])}...: {r['error']}")
    return r["wall"]


def import_times(python: str, repeat: int) -> dict[str, tuple[float, float]]:
    """Seconds to import each of ``DEPS`` in a fresh ``python``, start-up taken off: (median,
    fastest) of ``repeat`` runs; on a busy machine the fastest is the steadier figure."""
    bare = [_wall([python, "-c", "pass"]) for _ in range(repeat)]
    out = {}
    mine = python == sys.executable  # modelport itself: only in the environment it is built for
    for mod in DEPS:
        if mod.startswith("modelport") and not mine:
            continue
        cmds = {mod: [python, "-c", f"import {mod}"]}
        if mod == "onnx_ir":  # as modelport imports it
            cmds["onnx_ir, sympy deferred"] = [python, "-c", f"{_DEFER}\nimport onnx_ir",
                                               str(ROOT / "modelport" / "_lazy.py")]
        for label, cmd in cmds.items():
            runs = [br._measure(cmd) for _ in range(repeat)]
            if any(r.get("error") for r in runs):
                continue  # not installed there
            walls = [r["wall"] for r in runs]
            out[label] = (max(statistics.median(walls) - statistics.median(bare), 0.0),
                          max(min(walls) - min(bare), 0.0))
    out["(python start-up)"] = (statistics.median(bare), min(bare))
    return out


def versions(python: str) -> dict[str, str]:
    dists = ("numpy", "h5py", "click", "ml_dtypes", "onnx", "onnx-ir", "onnxruntime",
             "onnxruntime-gpu", "sympy")
    proc = subprocess.run([python, "-c", _VERSION, *dists], capture_output=True, text=True,
                          check=True)
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines())


def deps_line(python: str, repeat: int) -> dict:
    times, vers = import_times(python, repeat), versions(python)
    print(f"deps ({python}): import time, median and fastest of {repeat} fresh processes",
          flush=True)
    for mod, (median, fastest) in times.items():
        ver = vers.get(mod.split(",")[0].replace("_ir", "-ir"), "-")
        if mod == "onnxruntime" and ver == "-":
            ver = f"gpu {vers.get('onnxruntime-gpu', '-')}"
        note = " (deferred by modelport: not executed)" if mod == "sympy" else ""
        print(f"  {mod:25} {ver if ver != '-' else '':12} {median:6.3f} s {fastest:6.3f} s{note}",
              flush=True)
    return {"python": python, "seconds": times, "versions": vers}


def _convert(src: Path, dst: Path, target: str, checked: bool) -> list[str]:
    cmd = [sys.executable, "-m", "modelport", "convert", str(src), str(dst), "--to", target,
           "--force", "-q"]
    return cmd if checked else [*cmd, "--no-validate"]


def _imported(src: Path, dst: Path, target: str) -> set[str]:
    cmd = [sys.executable, "-c", _IMPORTED, *_convert(src, dst, target, False)[3:]]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    line = [x for x in proc.stderr.splitlines() if x.startswith("imported:")]
    br._remove(dst)
    return set(filter(None, line[-1].removeprefix("imported:").strip().split(","))) \
        if line else {"?"}


def _yard_cmd(needs: tuple[str, ...], src: Path) -> list[str]:
    """A fresh process importing ``needs`` (sympy deferred, as modelport does), then copying
    ``src``'s bytes to the path given after it (``bench_routes``'s floor)."""
    return [sys.executable, "-c", f"{_DEFER}\nimport {', '.join(needs)}\n{br._FLOOR}",
            str(ROOT / "modelport" / "_lazy.py"), str(src)]


def _fastest(cmd: list[str], work: Path, repeat: int) -> float:
    """The fastest of ``repeat`` runs of a copy ``cmd`` (given its output path), each writing a
    new file after ``sync``."""
    out = work / "floor.bin"
    runs = [br._fresh([*cmd, str(out)], out) for _ in range(repeat)]
    br._remove(out)
    errors = [r["error"] for r in runs if r.get("error")]
    if errors:
        raise SystemExit(f"{' '.join(cmd[:3])}...: {errors[0]}")
    return min(r["wall"] for r in runs)


def small(work: Path, repeat: int, routes: tuple[str, ...] = tuple(NEEDS)) -> list[dict]:
    """Small models: unchecked conversion vs importing the route's modules + the byte floor."""
    print(f"\nsmall models, no check: conversion (median of {repeat}) vs yardstick (fastest of "
          f"{repeat}: import the route's modules, then read and write the source's bytes)",
          flush=True)
    print(f"  {'model':16} {'route':12} {'bytes':>8} {'conv s':>7} {'yard s':>7} {'ratio':>5}  "
          f"{'goal':5}  needs / extra imports", flush=True)
    rows = []
    for rel in SMALL:
        src = ROOT / rel
        for target in routes:
            needs, dst = NEEDS[target], work / DST[target]
            yards, convs = [], []
            for _ in range(repeat):
                yards.append(br._fresh([*_yard_cmd(needs, src), str(work / "floor.bin")],
                                       work / "floor.bin"))
                br._remove(work / "floor.bin")
                convs.append(br._fresh(_convert(src, dst, target, False), dst))
            errors = [c["error"] for c in convs + yards if c.get("error")]
            if errors:
                raise SystemExit(f"{src.name} -> {target}: {errors[0]}")
            yards, convs = [y["wall"] for y in yards], [c["wall"] for c in convs]
            implied = {*needs, "onnx", "ml_dtypes"} if "onnx_ir" in needs else set(needs)
            extra = (_imported(src, dst, target) & set(HEAVY)) - implied
            conv, yard = statistics.median(convs), min(yards)
            r = {"model": src.name, "route": target, "bytes": br._size(src), "convert_s": conv,
                 "yardstick_s": yard, "ratio": conv / yard, "needs": list(needs),
                 "extra_imports": sorted(extra)}
            rows.append(r)
            print(f"  {src.name[:16]:16} {target:12} {r['bytes'] / 1e6:7.2f}M {conv:7.3f} "
                  f"{yard:7.3f} {r['ratio']:5.2f}  {'ok' if r['ratio'] <= 1.5 else 'MISS':5}  "
                  f"{'+'.join(needs)} / {','.join(sorted(extra)) or 'none'}", flush=True)
    return rows


def large(kind: str, work: Path, repeat: int, tf_python: str | None, stub_dir: Path,
          routes: tuple[str, ...] = tuple(NEEDS), other_repeat: int = 1) -> list[dict]:
    """A large model: unchecked vs floor, checked vs unchecked, and the older tools."""
    h5 = br.make_model(kind, tf_python)
    weights = br._size(h5)
    floor = _fastest([sys.executable, "-c", br._FLOOR, str(h5)], work, repeat)
    print(f"\n{kind} ({h5.name}, {weights / 1e6:.0f} MB): byte floor {floor:.3f} s (fastest of "
          f"{repeat} fresh-process copies; yard: the route's imports, then the same copy); "
          f"conversions: median of {repeat}", flush=True)
    print(f"  {'route':12} {'unchecked':>9} {'/floor':>6} {'goal':5} {'/yard':>5} {'goal':5} "
          f"{'checked':>8} {'/unchk':>6} {'goal':5}", flush=True)
    rows = []
    for target in routes:
        needs, dst = NEEDS[target], work / DST[target]
        yard = _fastest(_yard_cmd(needs, h5), work, repeat)
        runs = {False: [], True: []}
        for _ in range(repeat):
            for checked in (False, True):
                runs[checked].append(br._fresh(_convert(h5, dst, target, checked), dst))
        r = {"model": kind, "route": target, "source_bytes": weights, "floor_s": floor,
             "yardstick_s": yard}
        for checked, key in ((False, "unchecked"), (True, "checked")):
            errors = [x["error"] for x in runs[checked] if x.get("error")]
            r[f"{key}_s"] = statistics.median(x["wall"] for x in runs[checked])
            r[f"{key}_rss"] = max(x["rss"] for x in runs[checked])
            r[f"{key}_error"] = errors[0] if errors else None
        r["unchecked_ratio"] = r["unchecked_s"] / floor
        r["yardstick_ratio"] = r["unchecked_s"] / yard
        r["checked_ratio"] = r["checked_s"] / r["unchecked_s"]
        rows.append(r)
        line = (f"  {target:12} {r['unchecked_s']:8.2f}s {r['unchecked_ratio']:6.2f} "
                f"{'ok' if r['unchecked_ratio'] <= 1.5 else 'MISS':5} "
                f"{r['yardstick_ratio']:5.2f} {'ok' if r['yardstick_ratio'] <= 1.5 else 'MISS':5} "
                f"{r['checked_s']:7.2f}s "
                f"{r['checked_ratio']:6.2f} {'ok' if r['checked_ratio'] <= 2 else 'MISS':5}")
        for key in ("unchecked_error", "checked_error"):
            if r[key]:
                line += f"  {key.split('_')[0]} FAILED: {r[key]}"
        print(line, flush=True)
        br._remove(dst)
    if tf_python:
        print("  side by side (same file, same run; goal: >= 25x tf2onnx, >= 15x "
              "tensorflowjs_converter):", flush=True)
        env = dict(os.environ, PYTHONPATH=str(stub_dir), TF_USE_LEGACY_KERAS="1",
                   TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        others = {
            "onnx": ("tf2onnx", [tf_python, "-m", "tf2onnx.convert", "--keras", str(h5),
                                 "--output", str(work / "tf2onnx.onnx"), "--opset", "17"],
                     work / "tf2onnx.onnx", 25),
            "tfjs-layers": ("tensorflowjs_converter",
                            [tf_python, "-m", "tensorflowjs.converters.converter",
                             "--input_format", "keras", str(h5), str(work / "tfjs_converter")],
                            work / "tfjs_converter", 15),
        }
        for r in rows:
            if r["route"] not in others:
                continue
            label, cmd, out, goal = others[r["route"]]
            other = br._median([br._fresh(cmd, out, env) for _ in range(other_repeat)])
            br._remove(out)
            r.update(other_tool=label, other_s=other["wall"], other_rss=other["rss"],
                     other_error=other.get("error"))
            if other.get("error"):
                print(f"  {label:22} FAILED: {other['error']}", flush=True)
                continue
            for key in ("unchecked", "checked"):
                r[f"speedup_{key}"] = other["wall"] / r[f"{key}_s"]
            print(f"  {r['route']:12} modelport {r['unchecked_s']:.2f} s unchecked, "
                  f"{r['checked_s']:.2f} s checked; {label} {other['wall']:.2f} s "
                  f"(median of {other_repeat}): "
                  f"{r['speedup_unchecked']:.1f}x / {r['speedup_checked']:.1f}x faster "
                  f"({'ok' if r['speedup_unchecked'] >= goal else 'MISS'} unchecked, "
                  f"{'ok' if r['speedup_checked'] >= goal else 'MISS'} checked)", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=("deps", "small", "large"),
                    default=["deps", "small", "large"])
    ap.add_argument("--models", nargs="*", default=["ResNet50"],
                    help="large models (bench_routes.make_model kinds)")
    ap.add_argument("--routes", nargs="*", choices=tuple(NEEDS), default=list(NEEDS),
                    help="target formats (from a Keras .h5/.keras source)")
    ap.add_argument("--tf-python", help="a Python with tensorflow, tf_keras, tensorflowjs and "
                    "tf2onnx: builds Keras 2 files and times the older tools on them")
    ap.add_argument("--deps-python", nargs="*", default=[],
                    help="other interpreters whose dependency import times to print too")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each small measurement")
    ap.add_argument("--large-repeat", type=int, default=3, help="runs of each large one")
    ap.add_argument("--other-repeat", type=int, default=1,
                    help="runs of tf2onnx and tensorflowjs_converter (the median is reported)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    args = ap.parse_args(argv)
    compileall.compile_dir(str(ROOT / "modelport"), quiet=1)
    doc: dict = {}
    if "deps" in args.only:
        doc["deps"] = [deps_line(p, args.repeat) for p in [sys.executable, *args.deps_python]]
    br.OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=br.OUT) as tmp:
        work = Path(tmp, "work")
        work.mkdir()
        stub = Path(tmp, "stubs", "tensorflow_decision_forests")
        stub.mkdir(parents=True)
        (stub / "__init__.py").write_text(br._TFDF_STUB)
        if "small" in args.only:
            doc["small"] = small(work, args.repeat, tuple(args.routes))
        if "large" in args.only:
            doc["large"] = [row for kind in args.models
                            for row in large(kind, work, args.large_repeat, args.tf_python,
                                             stub.parent, tuple(args.routes),
                                             args.other_repeat)]
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    failed = any(r.get(k) for r in doc.get("large", []) for k in
                 ("unchecked_error", "checked_error"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
