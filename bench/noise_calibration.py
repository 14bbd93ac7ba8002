"""How far inside its tolerance a faithful conversion sits: the noise rule's calibration.

Run any tests (or conversions) with ``MODELPORT_PARITY_LOG=/tmp/parity.jsonl``; every group the
noise rule judges is appended there (check/parity.py ``_log``). This script reads the log and
prints the distribution of ``error / noise`` (the noise factor a faithful conversion needed)
and of ``error / scale``, and the cases nearest the tolerance::

    MODELPORT_PARITY_LOG=/tmp/parity.jsonl pytest tests/interop tests/test_mutation.py -k faithful
    python bench/noise_calibration.py /tmp/parity.jsonl
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from modelport.check.parity import NOISE_FACTOR, QUANTIZATION_FACTOR, SCALE_FLOOR


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("--worst", type=int, default=15)
    ap.add_argument("--only", default="", help="keep the lines whose test name has this text "
                                               "(e.g. 'faithful': not the mutants)")
    args = ap.parse_args()
    with open(args.log, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows = [r for r in rows if not r.get("quantization")
            and args.only in (r.get("test") or "")]
    ratio = np.array([r["error"] / r["noise"] if r["noise"] > 0 else
                      (0.0 if r["error"] == 0 else np.inf) for r in rows])
    scale = np.array([r["error"] / r["scale"] if r["scale"] > 0 else 0.0 for r in rows])
    allowed = np.array([max(NOISE_FACTOR * r["noise"], SCALE_FLOOR * r["scale"], 1e-30)
                        for r in rows])
    errors = np.array([r["error"] for r in rows])
    print(f"{len(rows)} judged groups (quantized ones left out; factor {QUANTIZATION_FACTOR:g})")
    finite = ratio[np.isfinite(ratio)]
    for q in (50, 90, 99, 99.9, 100):
        print(f"  error / noise  p{q:<5g} {np.percentile(finite, q):8.3g}   "
              f"error / scale p{q:<5g} {np.percentile(scale, q):8.3g}")
    print(f"  over the tolerance (16x noise, floor {SCALE_FLOOR:g} of RMS): "
          f"{int((errors > allowed).sum())}")
    order = np.argsort(-(errors / allowed))
    print("  nearest the tolerance (error / tolerance):")
    for i in order[: args.worst]:
        r = rows[i]
        print(f"    {errors[i] / allowed[i]:6.3f}  error {r['error']:.3g} noise {r['noise']:.3g} "
              f"scale {r['scale']:.3g}  {(r.get('test') or '')[:90]}")


if __name__ == "__main__":
    main()
