"""Conversion cost per route against a read-write floor, and against the tools people use today.

    python bench/bench_routes.py                           # MobileNetV2, ResNet50, 1 GB stack
    python bench/bench_routes.py --dense-gb 1 3            # + the 3 GB Dense stack
    python bench/bench_routes.py --models MobileNetV2 --dense-gb --routes h5-onnx
    python bench/bench_routes.py --tf-python /work/venvs/tf/bin/python   # + tensorflowjs, tf2onnx

Models are Keras 2 ``.h5`` files (made on demand in ``bench/out`` by tf_keras from the
``--tf-python`` environment when there is one, else by Keras 3), so that the older tools can read
the very same files. Routes, each in a fresh process, the way a user runs them
(``modelport convert SRC DST --no-validate``):

    h5-onnx     .h5 -> .onnx
    h5-tfjs     .h5 -> TF.js layers-model
    onnx-graph  .onnx (written by h5-onnx) -> TF.js graph-model
    graph-onnx  that TF.js graph-model -> .onnx (the way back)
    onnx-h5     the .onnx (written by h5-onnx) raised back to Keras layers, .h5

The floor reads every byte of the source's files into one reused buffer and writes them to
one file, in a fresh Python process: no tool can convert for less (a ``read()`` per chunk,
into fresh memory each time, was up to 8x slower on the bench machine, a floor too kind to
the converters; a memory-mapped copy is within 10% of this one). Each row runs the floor and
the conversion ``--repeat`` times, interleaved, each writing a new file after ``sync`` (so no
run pays for the previous run's writeback), and reports the fastest floor and the median
conversion: on a shared virtual disk single runs of the same copy vary by 8x, and the fastest
copy is what the machine can do (a stricter yardstick than the median copy). modelport
writes TF.js shards and compares a read-back with up to 4 threads; the floor is one thread, as
``cp`` is. modelport's bytecode is compiled first, as ``pip install`` does; an editable
checkout under ``PYTHONDONTWRITEBYTECODE`` would otherwise recompile it on every run (0.1 s). ``start-up`` is a bare process importing numpy, h5py and onnx, the libraries
modelport is made of; ``net`` is the ratio with it taken off the conversion, what the
conversion itself costs above the floor. Peak RSS is the child's ``ru_maxrss`` from
``wait4``; this parent stays small (it never loads a model), so what the child inherits at
exec is negligible. Goals (issue 6): wall <= 2x floor, peak RSS <= 1.3x weight bytes + 200 MB.

With ``--tf-python``, the same files go through ``tensorflowjs_converter --input_format keras``
(h5-tfjs) and ``python -m tf2onnx.convert --keras`` (h5-onnx), whole processes, and the table
prints their time and RSS next to modelport's. No released tool converts ONNX to TF.js or back
without TensorFlow and a SavedModel detour, so those routes have no competitor column.

``bench/speed.py`` measures the goals as issue 17 restated them (imports per dependency, small
models against their route's imports plus this floor, checked against unchecked), with these
helpers.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
ROUTES = ("h5-onnx", "h5-tfjs", "onnx-graph", "graph-onnx", "onnx-h5")

_MAKE = r"""
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
kind, out = sys.argv[1], sys.argv[2]
try:
    import tf_keras as keras
except ImportError:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
keras.utils.set_random_seed(7)
if kind == "MobileNetV2":
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
elif kind == "ResNet50":
    model = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))
else:  # Dense stack of about N GB: 4096x4096 float32 kernels, 64 MiB each
    layers = max(1, round(float(kind) * 1e9 / (4096 * 4096 * 4)))
    inputs = keras.Input((4096,), name="x")
    x = inputs
    for i in range(layers):
        x = keras.layers.Dense(4096, activation="relu" if i < layers - 1 else None,
                               name=f"dense_{i}")(x)
    model = keras.Model(inputs, x, name=f"dense_stack_{layers}")
model.save(out)
"""

_FLOOR = r"""
import os, sys
src, out = sys.argv[1], sys.argv[2]
paths = [src] if os.path.isfile(src) else [os.path.join(src, n) for n in sorted(os.listdir(src))]
if os.path.isfile(src + ".data"):  # ONNX external data belongs to the source
    paths.append(src + ".data")
buf = bytearray(1 << 24)  # one buffer, reused: fresh 16 MB reads cost up to 8x more here
view = memoryview(buf)
with open(out, "wb") as sink:
    for p in paths:
        with open(p, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                sink.write(view[:n])
"""

# tensorflowjs 4.22 imports tensorflow_decision_forests at module level for a path these
# conversions never take; an empty stand-in lets the real CLI run unchanged.
_TFDF_STUB = "# stand-in: tensorflowjs imports it at module level\n"


def _measure(cmd: list[str], env: dict | None = None) -> dict:
    """Wall time and peak RSS of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = {"wall": wall, "rss": usage.ru_maxrss * 1024}
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()
        status = (f"killed by {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
                  else f"exit {proc.returncode}")
        result["error"] = f"{status}: {tail[-1][:200]}" if tail else status
    return result


def _fresh(cmd: list[str], out: Path, env: dict | None = None) -> dict:
    """``_measure`` with ``out`` removed and the page cache written back first, so every run
    writes a new file from a quiet disk."""
    _remove(out)
    os.sync()
    return _measure(cmd, env)


def _remove(out: Path) -> None:
    """``out``, and the ONNX external data file beside it."""
    for p in (out, out.with_name(out.name + ".data")):
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def _median(runs: list[dict]) -> dict:
    errors = [r["error"] for r in runs if r.get("error")]
    return {"wall": statistics.median(r["wall"] for r in runs),
            "rss": max(r["rss"] for r in runs), **({"error": errors[0]} if errors else {})}


def _fastest(runs: list[dict]) -> dict:
    return {**_median(runs), "wall": min(r["wall"] for r in runs)}


def startup_seconds(repeat: int) -> float:
    """A bare process importing the libraries modelport is made of."""
    cmd = [sys.executable, "-c", "import numpy, h5py, onnx"]
    return statistics.median(_measure(cmd)["wall"] for _ in range(max(repeat, 3)))


def _size(path: Path) -> int:
    if path.is_file():
        data = path.with_name(path.name + ".data")
        return path.stat().st_size + (data.stat().st_size if data.is_file() else 0)
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def make_model(kind: str, tf_python: str | None) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    name = kind if not kind.replace(".", "").isdigit() else f"dense_stack_{kind}gb"
    path = OUT / f"{name}_k2.h5" if tf_python else OUT / f"{name}_k3.h5"
    if not path.exists():
        python = tf_python or sys.executable
        env = {"KERAS_BACKEND": "jax", **os.environ}  # a backend the caller chose wins
        proc = subprocess.run([python, "-c", _MAKE, kind, str(path)], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"could not build {kind}:\n{proc.stderr[-2000:]}")
    return path


def _modelport(src: Path, dst: Path) -> list[str]:
    return [sys.executable, "-m", "modelport", "convert", str(src), str(dst), "--no-validate",
            "--force", "-q"]


def bench_model(name: str, h5: Path, routes: tuple[str, ...], work: Path,
                tf_python: str | None, stub_dir: Path, repeat: int = 3,
                startup: float = 0.0) -> list[dict]:
    weight_bytes = _weight_bytes(h5)
    rows = []
    onnx_path, graph_path = work / f"{name}.onnx", work / f"{name}_graph"

    def row(route, src, dst, competitor=None):
        floor_cmd = [sys.executable, "-c", _FLOOR, str(src), str(work / "floor.bin")]
        floors, convs = [], []
        for _ in range(repeat):
            floors.append(_fresh(floor_cmd, work / "floor.bin"))
            _remove(work / "floor.bin")
            convs.append(_fresh(_modelport(src, dst), dst))
        # the floor is the fastest copy, what the machine does when nothing gets in the way
        # (on a shared virtual disk the same copy took 0.4 to 3.3 s within a minute); the
        # conversion is the median run: a stricter yardstick than comparing medians
        floor, conv = _fastest(floors), _median(convs)
        r = {"model": name, "route": route, "weight_bytes": weight_bytes,
             "source_bytes": _size(src), "floor_s": floor["wall"], "convert_s": conv["wall"],
             "ratio": conv["wall"] / max(floor["wall"], 1e-9), "rss": conv["rss"],
             "startup_s": startup,
             "net_ratio": max(conv["wall"] - startup, 0.0) / max(floor["wall"], 1e-9),
             "convert_runs": [c["wall"] for c in convs], "floor_runs": [f["wall"] for f in floors],
             "rss_goal": 1.3 * weight_bytes + 200e6, "error": conv.get("error")}
        r["rss_ratio"] = r["rss"] / r["rss_goal"]
        if competitor:
            label, cmd, env, out = competitor
            other = _fresh(cmd, out, env)  # once: these tools take 5-20 s a run
            r.update(other_tool=label, other_s=other["wall"], other_rss=other["rss"],
                     other_error=other.get("error"))
        rows.append(r)
        print(_line(r), flush=True)
        if dst not in (onnx_path, graph_path):  # later routes read only these two
            _remove(dst)
        return r

    tf_env = None
    if tf_python:
        tf_env = dict(os.environ, PYTHONPATH=str(stub_dir), TF_USE_LEGACY_KERAS="1",
                      TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    needs_onnx = any(r in routes for r in ("h5-onnx", "onnx-graph", "graph-onnx", "onnx-h5"))
    if needs_onnx:
        competitor = None
        if tf_python:
            competitor = ("tf2onnx", [tf_python, "-m", "tf2onnx.convert", "--keras", str(h5),
                                      "--output", str(work / "tf2onnx.onnx"), "--opset", "17"],
                          tf_env, work / "tf2onnx.onnx")
        if "h5-onnx" in routes:
            row("h5-onnx", h5, onnx_path, competitor)
        else:
            _measure(_modelport(h5, onnx_path))
    if "h5-tfjs" in routes:
        competitor = None
        if tf_python:
            competitor = ("tensorflowjs_converter",
                          [tf_python, "-m", "tensorflowjs.converters.converter",
                           "--input_format", "keras", str(h5), str(work / "tfjs_converter")],
                          tf_env, work / "tfjs_converter")
        row("h5-tfjs", h5, work / f"{name}_layers", competitor)
    if "onnx-graph" in routes or "graph-onnx" in routes:
        if "onnx-graph" in routes:
            row("onnx-graph", onnx_path, graph_path)
        else:
            _measure(_modelport(onnx_path, graph_path))
    if "graph-onnx" in routes:
        row("graph-onnx", graph_path, work / f"{name}_back.onnx")
    if "onnx-h5" in routes:
        row("onnx-h5", onnx_path, work / f"{name}_raised.h5")
    for p in work.iterdir():  # keep the disk footprint at one model's worth
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return rows


def _weight_bytes(h5: Path) -> int:
    code = ("import sys, modelport; m = modelport.load(sys.argv[1]); "
            "print(m.weight_bytes())")
    proc = subprocess.run([sys.executable, "-c", code, str(h5)], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return int(proc.stdout.strip().splitlines()[-1])


HEADER = (f"{'model':18} {'route':10} {'weights':>8} {'floor s':>7} {'conv s':>7} {'ratio':>5} "
          f"{'net':>5} "
          f"{'RSS':>7} {'RSS/goal':>8}  {'other tool':22} {'other s':>7} {'other RSS':>9}")


def _line(r: dict) -> str:
    text = (f"{r['model'][:18]:18} {r['route']:10} {r['weight_bytes'] / 1e6:7.1f}M "
            f"{r['floor_s']:7.2f} {r['convert_s']:7.2f} {r['ratio']:5.2f} {r['net_ratio']:5.2f} "
            f"{r['rss'] / 1e6:6.0f}M {r['rss_ratio']:8.2f}")
    if r.get("error"):
        text += f"  FAILED: {r['error']}"
    if r.get("other_tool"):
        other = (f"FAILED: {r['other_error']}" if r.get("other_error") else
                 f"{r['other_s']:7.2f} {r['other_rss'] / 1e6:8.0f}M")
        text += f"  {r['other_tool']:22} {other}"
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=["MobileNetV2", "ResNet50"])
    ap.add_argument("--dense-gb", nargs="*", type=float, default=[1.0],
                    help="sizes of Dense stacks to build and convert (none: skip)")
    ap.add_argument("--routes", nargs="*", default=list(ROUTES), choices=ROUTES)
    ap.add_argument("--tf-python", help="a Python with tensorflow, tf_keras, tensorflowjs and "
                    "tf2onnx: builds Keras 2 files and times the older tools on them")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of the floor and of each conversion: the fastest floor and the "
                    "median conversion are reported")
    ap.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    compileall.compile_dir(str(ROOT / "modelport"), quiet=1)
    startup = startup_seconds(args.repeat)
    print(f"start-up (python -c 'import numpy, h5py, onnx'): {startup:.3f} s", flush=True)
    kinds = list(args.models) + [f"{g:g}" for g in args.dense_gb]
    rows = []
    with tempfile.TemporaryDirectory(dir=OUT.parent) as tmp:
        stub = Path(tmp, "stubs", "tensorflow_decision_forests")
        stub.mkdir(parents=True)
        (stub / "__init__.py").write_text(_TFDF_STUB)
        work = Path(tmp, "work")
        work.mkdir()
        print(HEADER, flush=True)
        for kind in kinds:
            h5 = make_model(kind, args.tf_python)
            name = kind if not kind.replace(".", "").isdigit() else f"Dense {kind} GB"
            rows += bench_model(name, h5, tuple(args.routes), work, args.tf_python,
                                stub.parent, args.repeat, startup)
    print("goals: ratio <= 2 (median wall vs the fastest read and write of the source's bytes, "
          "fresh process each), RSS/goal <= 1 (peak RSS vs 1.3x weight bytes + 200 MB); "
          "net: the ratio with the start-up of numpy, h5py and onnx taken off")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 1 if any(r.get("error") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
