"""Run every route of every model in the wild corpus and write tests/wild/RESULTS.md.

For each cached model (``fetch.py`` puts them there) and each target its format can be
converted to, this runs ``modelport convert SRC DST --to TARGET --json`` with the default
parity check, records the exit code and message, and for every file written loads it in
its real consumer (onnxruntime, real tfjs under Node, Keras 3) and compares it with the
source run in its own framework (onnxruntime for ONNX, real tfjs for TF.js, Keras 3 for
``.h5``) on the inputs the check used.

    python tests/wild/run.py [--json results.json] [--md RESULTS.md] [--timeout S] [ids...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import consumers  # noqa: E402
import fetch  # noqa: E402

# Targets per source format; the ones whose check saves inputs come first, so that routes
# with a read-back check only (Keras, TF.js layers targets) reuse those inputs.
ROUTES = {
    "onnx": ["tfjs-graph", "h5", "keras", "tfjs-layers"],
    "tfjs-graph": ["onnx", "h5", "keras", "tfjs-layers"],
    "tfjs-layers": ["onnx", "tfjs-graph", "h5", "keras"],
    "h5": ["onnx", "tfjs-graph", "keras", "tfjs-layers"],
}
ROUTE_NAMED = re.compile(r"--to (onnx|tfjs-graph|tfjs-layers|h5|keras)\b|--input-shape|--inputs\b")
SUFFIX = {"onnx": ".onnx", "h5": ".h5", "keras": ".keras", "tfjs-graph": "", "tfjs-layers": ""}


def _modelport() -> list[str]:
    return [sys.executable, "-m", "modelport"]


def _convert(src: Path, dst: Path, target: str, inputs_npz: Path | None, timeout: float,
             extra: tuple[str, ...] = ()) -> dict:
    """Run the CLI once; the JSON report (or the error) plus the exit code and time.

    ``--save-inputs`` is a usage error on routes with no numeric check (Keras and TF.js
    layers targets from Keras sources): those run again without it.
    """
    cmd = _modelport() + ["convert", str(src), str(dst), "--to", target, "--json", "-q",
                          "--force", *extra]
    if inputs_npz is not None:
        cmd += ["--save-inputs", str(inputs_npz)]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"rc": "timeout", "message": f"no result within {timeout:.0f} s",
                "seconds": round(time.monotonic() - t0, 1)}
    out: dict = {"rc": proc.returncode, "seconds": round(time.monotonic() - t0, 1)}
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        report = {}
    out["report"] = report
    if proc.returncode != 0:
        msg = report.get("message") or _parity_message(report) or \
            (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        if proc.returncode == 2 and inputs_npz is not None and "--save-inputs" in msg:
            return _convert(src, dst, target, None, timeout, extra)
        hint = report.get("hint")
        out["message"] = msg + (f" [hint: {hint}]" if hint else "")
    return out


def inspect_verdicts(src: Path, timeout: float) -> dict[str, bool] | str:
    """``modelport inspect --json``'s verdict per target (True: it can go there), or why
    there is none. Issue 18 asks that it agree with ``convert`` on every route."""
    cmd = _modelport() + ["inspect", str(src), "--json"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"inspect: no result within {timeout:.0f} s"
    try:
        targets = json.loads(proc.stdout)["targets"]
    except (json.JSONDecodeError, KeyError, TypeError):
        tail = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        return f"inspect exit {proc.returncode}: {tail}"
    return {t: bool(v.get("ok")) for t, v in targets.items()}


def inspect_disagrees(row: dict) -> str | None:
    """Where ``inspect`` and ``convert`` disagree on a route, or None.

    A file written (exit 0, or 6 with the file kept) is a route inspect must call possible; a
    refusal (exit 4) one it must call impossible. Other outcomes (a timeout) decide nothing.
    """
    verdict = row.get("inspect")
    if isinstance(verdict, str):
        return verdict
    if row["rc"] in (0, 6) and verdict is not True:
        return f"inspect says {verdict!r}, convert wrote the file (exit {row['rc']})"
    if row["rc"] == 4 and verdict is not False:
        return f"inspect says {verdict!r}, convert refused (exit 4): {row.get('message', '')[:300]}"
    return None


def _parity_message(report: dict) -> str:
    """What a failed check (exit 6) says: each failing output, its error and tolerance."""
    parity = report.get("parity") or {}
    bad = [o for o in parity.get("outputs") or [] if not o.get("passed")]
    if not bad:
        return ""
    parts = [f"output {o.get('name')} {o.get('shape')}: max_abs {o.get('max_abs'):.3g} > "
             f"tolerance {o.get('tolerance', o.get('atol')):.3g} (cosine {o.get('cosine')}, "
             f"{o.get('mismatched')}/{o.get('total')} off)" for o in bad]
    where = parity.get("first_divergence")
    return "parity mismatch: " + "; ".join(parts) + (f"; first divergence {where}" if where else "")


def _probe(npz: Path, names: list[str]) -> list[np.ndarray] | None:
    """The first probe of saved check inputs, in the source's input order."""
    if not npz.is_file():
        return None
    data = np.load(npz)
    probes: dict[str, dict[str, np.ndarray]] = {}
    for key in data.files:
        probe, _, name = key.rpartition("::")
        probes.setdefault(probe, {})[name] = data[key]
    if not probes:
        return None
    arrays = next(iter(probes.values()))
    by_name = {k.split(":")[0]: v for k, v in arrays.items()}
    if all(n.split(":")[0] in by_name for n in names):
        picked = [by_name[n.split(":")[0]] for n in names]
    elif len(arrays) == len(names):
        picked = list(arrays.values())
    else:
        return None
    return _few_rows(picked)


def _few_rows(arrays: list[np.ndarray], rows: int = 2) -> list[np.ndarray]:
    """Two rows are enough for the consumers; cut only when every input shares the batch."""
    lead = {a.shape[0] if a.ndim else None for a in arrays}
    if len(lead) == 1 and None not in lead and next(iter(lead)) > rows:
        return [a[:rows] for a in arrays]
    return arrays


def _synth(model: dict, src: Path) -> list[np.ndarray] | None:
    """Seeded inputs when no check saved any: of the shapes the corpus gives for the model
    (sizes its package feeds it), else of the source's own shapes (a Keras model's free batch
    becomes 1; ONNX and graph-models only when every dimension is static)."""
    given = model.get("inputs")
    specs = [(shape, kind) for shape, kind in given] if given else \
        consumers.input_specs(model["format"], src)
    if specs is None:
        return None
    rng = np.random.default_rng(0)
    arrays = []
    for shape, kind in specs:
        if kind == "int":
            arrays.append(rng.integers(0, 256, size=shape).astype(np.int32))
        else:
            arrays.append(rng.uniform(0, 1, size=shape).astype(np.float32))
    return arrays


def _consumer_check(model: dict, src: Path, target: str, dst: Path, report: dict,
                    inputs: list[np.ndarray], source_out: list[np.ndarray]) -> dict:
    keras = report.get("keras") or {}
    feed = list(inputs)
    expected = list(source_out)
    if keras:  # raised from ONNX: keras_array = onnx_array.transpose(perm)
        for i, p in enumerate(keras.get("input_perms") or []):
            if p is not None and i < len(feed):
                feed[i] = np.transpose(feed[i], p)
        for i, p in enumerate(keras.get("output_perms") or []):
            if p is not None and i < len(expected):
                expected[i] = np.transpose(expected[i], p)
    try:
        got = consumers.run(target, dst, feed)
    except consumers.ConsumerError as e:
        return {"ok": False, "error": None, "detail": str(e)}
    ok, err, detail = consumers.compare(expected, got)
    return {"ok": ok, "error": err, "detail": detail}


def run_model(model: dict, work: Path, timeout: float, quick: bool = False) -> list[dict]:
    """Every route of one model; a result per route.

    ``quick``: for the models the corpus marks ``heavy`` (modelport's own check takes
    minutes on them), convert with ``--no-validate`` and rely on the consumer comparison
    alone, on seeded inputs of the model's static shapes.
    """
    src = fetch.model_entry(model)
    extra = ("--no-validate",) if quick and model.get("heavy") else ()
    fmt = model["format"]
    rows = []
    inputs: list[np.ndarray] | None = None
    source_out: list[np.ndarray] | None = None
    ref = HERE / "reference" / f"{model['id']}.npz"
    if ref.is_file():  # the source's framework is not Keras 3: its recorded run
        with np.load(ref) as data:
            inputs = [data[k] for k in data.files if k.startswith("input:")]
            source_out = [data[k] for k in data.files if k.startswith("output:")]
    source_error = None
    names: list[str] | None = None
    verdicts = inspect_verdicts(src, timeout)
    for target in ROUTES[fmt]:
        dst = work / f"{model['id']}.{target}{SUFFIX[target]}"
        npz = work / f"{model['id']}.{target}.inputs.npz"
        res = _convert(src, dst, target, npz, timeout, extra)
        row = {"id": model["id"], "target": target, "checked": not extra,
               **{k: v for k, v in res.items() if k != "report"}}
        row["inspect"] = verdicts if isinstance(verdicts, str) else verdicts.get(target)
        report = res.get("report") or {}
        row["custom_layers"] = report.get("custom_layers") or []
        row["quantized_weights"] = len(report.get("quantized_weights") or [])
        # Exit 6 keeps the file for inspection: the consumers say whether the check was right.
        kept = res["rc"] == 6 and (dst.is_file() or (dst / "model.json").is_file())
        if res["rc"] == 0 or kept:
            if names is None and source_out is None:
                try:
                    names = consumers.input_names(fmt, src)
                except consumers.ConsumerError as e:
                    source_error = str(e)
            if inputs is None and names is not None:
                inputs = _probe(npz, names)
                if inputs is None:
                    try:
                        inputs = _synth(model, src)
                    except consumers.ConsumerError as e:
                        source_error = str(e)
            if inputs is not None and source_out is None and source_error is None:
                try:
                    source_out = consumers.run(fmt, src, inputs)
                except consumers.ConsumerError as e:
                    source_error = str(e)
            if source_out is not None and inputs is not None:
                row["consumer"] = _consumer_check(model, src, target, dst, report, inputs,
                                                  source_out)
            else:
                row["consumer"] = {"ok": None, "error": None,
                                   "detail": source_error or "no inputs to compare on"}
        rows.append(row)
        print(f"  {model['id']} -> {target}: rc={row['rc']} ({row['seconds']} s)"
              + (f" consumer={row['consumer']}" if "consumer" in row else "")
              + (f" :: {row.get('message', '')[:200]}" if row["rc"] != 0 else ""),
              file=sys.stderr, flush=True)
    consumers.forget_keras()
    return rows


def outcome(row: dict) -> str:
    """A short word for a route's result."""
    rc = row["rc"]
    if rc == 0:
        c = row.get("consumer") or {}
        if c.get("ok"):
            return "ok"
        return "MISMATCH" if c.get("ok") is False else "ok (unchecked)"
    if rc == 6 and (row.get("consumer") or {}).get("ok"):
        return "parity (6), consumers agree"
    return {3: "exit 3", 4: "refused (4)", 6: "parity (6)", 70: "EXIT 70",
            "timeout": "timeout"}.get(rc, f"exit {rc}")


def write_markdown(rows: list[dict], path: Path, measured: str = "") -> None:
    """RESULTS.md: a matrix of models by route, then every failure's message."""
    corpus = fetch.load_corpus()
    models = {m["id"]: m for m in corpus["models"]}
    targets = ["onnx", "tfjs-graph", "tfjs-layers", "h5", "keras"]
    by = {(r["id"], r["target"]): r for r in rows}
    ids = [m["id"] for m in corpus["models"] if any(r["id"] == m["id"] for r in rows)]
    done = list(rows)
    ok = sum(outcome(r) == "ok" for r in done)
    lines = [
        "# Wild corpus: every route on real models from packages",
        "",
        ("Generated by `python tests/wild/run.py` (models fetched by `tests/wild/fetch.py`; "
         "the list and licences are in `corpus.json`). Each cell: the outcome of `modelport "
         "convert SRC DST --to TARGET` with the default check, and for a written file the "
         "worst error of its real consumer (onnxruntime, tfjs under Node, Keras 3) against "
         "the source run in its own framework, relative to the output's largest magnitude."),
        "",
        *([measured, ""] if measured else []),
        (f"Routes: {len(done)}; converted and matched in the real consumer: {ok} "
         f"({100 * ok / max(1, len(done)):.0f} %); " + ", ".join(
             f"{word}: {n}" for word, n in sorted(_counts(done).items())) + "."),
        "",
        "| model | package@version | format | domain | " + " | ".join(targets) + " |",
        "|---|---|---|---|" + "---|" * len(targets),
    ]
    for mid in ids:
        m = models[mid]
        cells = []
        for t in targets:
            r = by.get((mid, t))
            if r is None:
                cells.append("—")
                continue
            word = outcome(r)
            c = r.get("consumer") or {}
            if r["rc"] in (0, 6) and c.get("error") is not None:
                word += f" {c['error']:.1e}"
            cells.append(word)
        lines.append(f"| {mid} | {m['package']}@{_version(corpus, m)} ({m['registry']}) | "
                     f"{m['format']} | {m['domain']} | " + " | ".join(cells) + " |")
    lines += ["", "## Routes that did not convert and match", ""]
    for r in rows:
        if outcome(r) == "ok":
            continue
        c = r.get("consumer") or {}
        msg = r.get("message") or c.get("detail") or ""
        lines.append(f"- **{r['id']} → {r['target']}** — {outcome(r)}: "
                     + msg.replace("|", "\\|").replace("\n", " ")[:900])
    if any("inspect" in r for r in rows):
        lines += ["", "## Where `modelport inspect --json` and `convert` disagree", ""]
        disagree = [(r, inspect_disagrees(r)) for r in rows if inspect_disagrees(r)]
        lines += [f"- **{r['id']} → {r['target']}** — " + why.replace("|", "\\|")[:600]
                  for r, why in disagree] or [("None: on every route, inspect's verdict per "
                                               "target is what convert did.")]
    path.write_text("\n".join(lines) + "\n")


def problem(row: dict, siblings: dict[str, dict] | None = None) -> str | None:
    """Why a route breaks the acceptance invariants of issue 18, or None when it meets them.

    Converted: the real consumer must match. Refused: exit 4 with a message that offers a
    route (``--to ...``, ``--input-shape``/``--inputs``, or a ``modelport convert`` line);
    every ``--to TARGET`` it offers that ``siblings`` (the same model's rows by target) holds
    must work. Anything else (exit 3, 6, 70, a timeout) breaks them.
    """
    rc = row["rc"]
    message = row.get("message") or ""
    if rc == 0:
        consumer = row.get("consumer") or {}
        return None if consumer.get("ok") else \
            f"written, but the real consumer disagrees: {consumer}"
    if rc == 4:
        if not ROUTE_NAMED.search(message) and "modelport convert" not in message:
            return f"a refusal that offers no route: {message}"
        for target in sorted({m.group(1) for m in ROUTE_NAMED.finditer(message)
                              if m.group(1)}):
            other = (siblings or {}).get(target)
            if other is not None and outcome(other) != "ok":
                return (f"the refusal offers --to {target}, which does not work "
                        f"({outcome(other)}): {message}")
        return None
    return f"{outcome(row)}: {message}"


def siblings_of(rows: list[dict]) -> dict[str, dict[str, dict]]:
    """Rows by model id, then by target."""
    out: dict[str, dict[str, dict]] = {}
    for r in rows:
        out.setdefault(r["id"], {})[r["target"]] = r
    return out


def write_known(rows: list[dict], path: Path) -> None:
    """known_failures.json: every route that breaks the invariants, with its outcome today."""
    sib = siblings_of(rows)
    routes = {f"{r['id']} -> {r['target']}": outcome(r) for r in rows
              if problem(r, sib[r["id"]])}
    doc = {"about": ("Routes of the wild corpus that do not meet issue 18's acceptance yet, "
                     "with their outcome today (tests/wild/RESULTS.md has the messages); "
                     "under 'inspect', the routes where `modelport inspect` and `convert` "
                     "disagree, with the disagreement. "
                     "test_wild.py requires each to fail exactly so: remove an entry when a "
                     "fix makes its route pass. Regenerate: python tests/wild/run.py --known "
                     "tests/wild/known_failures.json"),
           "routes": dict(sorted(routes.items())),
           "inspect": dict(sorted((f"{r['id']} -> {r['target']}", inspect_disagrees(r))
                                  for r in rows if inspect_disagrees(r)))}
    path.write_text(json.dumps(doc, indent=1) + "\n")


def _counts(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[outcome(r)] = counts.get(outcome(r), 0) + 1
    return counts


def _version(corpus: dict, m: dict) -> str:
    return corpus["packages"][f"{m['registry']}:{m['package']}"]["version"]


def run_all(ids: list[str] | None = None, timeout: float = 300,
            work: Path | None = None, log: Path | None = None) -> list[dict]:
    """Run every route of the cached corpus (or of ``ids``); the rows, one per route (and
    each model's rows appended to ``log`` as JSON lines as soon as they are done)."""
    corpus = fetch.load_corpus()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="modelport-wild-") as tmp:
        base = work or Path(tmp)
        for model in corpus["models"]:
            if ids and model["id"] not in ids:
                continue
            if not fetch.model_ready(model):
                raise RuntimeError(f"{model['id']} is not in the cache: run tests/wild/fetch.py")
            done = run_model(model, base, timeout)
            rows.extend(done)
            if log is not None:
                with open(log, "a") as f:
                    f.writelines(json.dumps(r, default=str) + "\n" for r in done)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line: run the harness, write RESULTS.md and optionally the rows as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None, help="write the rows here")
    ap.add_argument("--md", type=Path, default=HERE / "RESULTS.md", help="markdown table")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per conversion")
    ap.add_argument("--known", type=Path, default=None,
                    help="write the routes that break the acceptance invariants here (the "
                         "format of known_failures.json)")
    ap.add_argument("--rows", type=Path, default=None,
                    help="render RESULTS.md (and --known) from rows a run wrote with --json")
    ap.add_argument("--measured", default="", help="a line for RESULTS.md: what was measured "
                    "(the commit, the machine)")
    ap.add_argument("ids", nargs="*", help="only these model ids")
    args = ap.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    if args.rows:
        rows = json.loads(args.rows.read_text())
    else:
        rows = run_all(args.ids or None, args.timeout,
                       log=args.json.with_suffix(".jsonl") if args.json else None)
    if args.json and not args.rows:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    if args.md:
        write_markdown(rows, args.md, args.measured)
    if args.known:
        write_known(rows, args.known)
    return 0


if __name__ == "__main__":
    sys.exit(main())
