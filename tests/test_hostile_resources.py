"""The hostile corpus under resource limits (issue 19): every case runs in one child process
under an address-space limit, each case's peak RSS measured on its own (the peak is reset
between cases through /proc/self/clear_refs); a file under 1 MB that makes modelport use more
than 1 GB or take 60 s fails. Every expected exit code is one the README documents, never 70.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .hostile import make_hostile
from .test_hostile import ALL_CASES

ROOT = Path(__file__).resolve().parents[1]
ADDRESS_SPACE = 6 << 30  # over the interpreter's own mappings (~2-3 GB of virtual space
# with onnxruntime, h5py and NumPy's thread pools): what a case may add is ~2-3 GB at most
PEAK_RSS = 1 << 30
SECONDS = 60.0
SMALL = 1 << 20  # the limits hold for every file under this size

CHILD = textwrap.dedent("""
    import json, os, resource, sys, time
    from click.testing import CliRunner
    from modelport.cli import main

    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    jobs = json.loads(sys.stdin.read())

    def hwm():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024

    results = []
    for job in jobs:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak RSS from here on is this case's
        base = hwm()
        start = time.perf_counter()
        code = CliRunner().invoke(main, job["args"]).exit_code
        results.append({"id": job["id"], "exit": code, "seconds": time.perf_counter() - start,
                        "peak": hwm(), "base": base})
    print(json.dumps(results))
""")


def _args(case: make_hostile.Case, src: Path, out: Path) -> list[str]:
    fill = {"src": str(src), "folder": str(src.parent)}
    extra = [e.format(**fill) for e in case.extra]
    target = str(out / case.target.format(**fill))
    if case.command == "convert":
        return ["convert", str(src), target, "-q", *extra]
    if case.command == "inspect":
        return ["inspect", str(src)]
    return ["validate", str(src), target, *extra]


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def documented_exit_codes() -> set[int]:
    """The exit codes README.md lists (its "Exit codes:" item)."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"\* Exit codes: (.*?)\n\* ", text, re.S)
    assert found, "README.md has no 'Exit codes:' item"
    return {int(n) for n in re.findall(r"(?:^|,\s+)(\d+)\s", found.group(1))}


def test_every_expected_exit_is_documented():
    documented = documented_exit_codes()
    assert {0, 2, 3, 4, 5, 6, 7} <= documented
    for case in ALL_CASES:
        assert case.exit_code in documented and case.exit_code != 70, case.id


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(),
                    reason="per-case peak RSS needs Linux's /proc/self/clear_refs")
def test_corpus_stays_small(tmp_path):
    cases = ALL_CASES
    made = make_hostile.build(tmp_path / "corpus", cases)
    jobs = []
    for case in cases:
        out = tmp_path / "out" / case.id
        out.mkdir(parents=True)
        jobs.append({"id": case.id, "args": _args(case, made[case.id], out)})
    proc = subprocess.run([sys.executable, "-c", CHILD, str(ADDRESS_SPACE)],
                          input=json.dumps(jobs), capture_output=True, text=True,
                          cwd=ROOT, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    by_id = {c.id: c for c in cases}
    worst = max(results, key=lambda r: r["peak"])
    print(f"hostile corpus: {len(results)} cases; highest peak RSS {worst['peak'] >> 20} MB "
          f"({worst['id']}); slowest {max(r['seconds'] for r in results):.1f} s")
    for r in results:
        case = by_id[r["id"]]
        assert r["exit"] == case.exit_code and r["exit"] != 70, r
        if _size(made[case.id]) < SMALL:
            assert r["peak"] < PEAK_RSS, r  # the whole process, imports included
            assert r["seconds"] < SECONDS, r
        assert not any((tmp_path / "out" / case.id).iterdir()) or case.kind is None, r
