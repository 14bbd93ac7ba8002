"""Run hostile cases one per child process and print exit code, peak RSS, time and the last
line of output (the before/after table of issue 19):

    python -m tests.hostile.measure OUTDIR [CASE-ID-PREFIX ...]

Each child runs under an address-space limit (``--limit-gb``, default 3) so a case that would
exhaust memory ends there instead of taking the machine.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from . import make_hostile, make_resource


def command(case: make_hostile.Case, src: Path, out: Path) -> list[str]:
    """The CLI arguments that run ``case`` on ``src``, writing under ``out``."""
    fill = {"src": str(src), "folder": str(src.parent)}
    extra = [e.format(**fill) for e in case.extra]
    target = str(out / case.target.format(**fill))
    if case.command == "convert":
        return ["convert", str(src), target, "-q", *extra]
    if case.command == "inspect":
        return ["inspect", str(src)]
    return ["validate", str(src), target, *extra]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("outdir", type=Path)
    parser.add_argument("prefix", nargs="*")
    parser.add_argument("--limit-gb", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()
    cases = [c for c in make_resource.CASES if not args.prefix
             or any(c.id.startswith(p) for p in args.prefix)]
    made = make_hostile.build(args.outdir, cases)
    limit = int(args.limit_gb * (1 << 30))
    for case in cases:
        out = args.outdir / "out" / case.id
        out.mkdir(parents=True)
        code, rss, seconds, text = run_limited(command(case, made[case.id], out), limit,
                                               args.timeout)
        lines = [x for x in text.splitlines() if x.strip()]
        left = sorted(str(p.relative_to(out)) for p in out.iterdir())
        print(f"{case.id}\t{code}\t{rss:.0f}MB\t{seconds:.1f}s\t"
              f"{'wrote ' + ','.join(left) if left else '-'}\t{(lines or [''])[-1][:200]}",
              flush=True)


CHILD = """
import resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from modelport.cli import main
try:
    main(sys.argv[2:], prog_name="modelport")
finally:
    print(f"\\nPEAK_RSS_KB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}",
          file=sys.stderr)
"""


def run_limited(argv: list[str], limit: int, timeout: float) -> tuple[int, float, float, str]:
    """Run the CLI with ``argv`` in a child under an address-space ``limit``: its exit code,
    peak RSS in MB, seconds and output (``-9`` and NaN on a timeout)."""
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, str(limit), *argv],
                              check=False, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return -9, float("nan"), time.perf_counter() - start, (e.stdout or b"").decode()
    seconds = time.perf_counter() - start
    text = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    found = re.search(r"PEAK_RSS_KB (\d+)", text)
    rss = int(found.group(1)) / 1024 if found else float("nan")
    text = re.sub(r"\s*PEAK_RSS_KB \d+\s*", "\n", text)
    return proc.returncode, rss, seconds, text


if __name__ == "__main__":
    main()
