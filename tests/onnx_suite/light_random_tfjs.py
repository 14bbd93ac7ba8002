"""The light models with seeded random weights, converted to TF.js graph-models and run in real
tfjs, against onnxruntime on the same randomized ONNX model.

    python -m tests.onnx_suite.light_random_tfjs [--only vgg19 resnet50]

Not part of the test run (VGG19 alone takes over a minute in tfjs's CPU backend): the shipped
light models' uniform weights are checked in tfjs by the suite, the randomized ones by the round
trip in onnxruntime (tests/test_onnx_light_random_weights.py); this script closes the gap
(random weights *and* real tfjs) when asked. Prints max abs error per model on the outputs and
on the pre-softmax logits, and exits 1 when one is outside atol 1e-4 + rtol 1e-3 (logits: 1e-4
of the largest).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from modelport.runtime import tfjs_node
from tests.interop.test_onnx_roundtrip_light import _run, _softmax_producing
from tests.onnx_suite.cases import discover
from tests.test_onnx_light_random_weights import randomized


def main(argv: list[str] | None = None) -> int:
    import modelport

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args(argv)
    cases = [c for c in discover("light") if not args.only or c.name in args.only]
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        jobs, expected = [], {}
        for case in cases:
            source = randomized(case)
            softmax = _softmax_producing(source, source.graph.output[0].name)
            inputs, _ = case.io()
            want = _run(source, dict(inputs), [softmax.input[0]] if softmax else [])
            if softmax is not None:  # expose the logits as a second output of the source
                source.graph.output.append(onnx.helper.make_tensor_value_info(
                    softmax.input[0], onnx.TensorProto.FLOAT, list(want[-1].shape)))
            src = Path(tmp, f"{case.name}.onnx")
            onnx.save(source, src)
            report = modelport.convert(src, Path(tmp, case.name), to="tfjs-graph",
                                       validate=False)
            model_json = Path(report.destination)
            signature = json.loads(model_json.read_text())["signature"]
            fetch = [o["name"] for o in signature["outputs"].values()]
            feeds = [(i["name"], a) for i, (_, a) in zip(signature["inputs"].values(), inputs)]
            jobs.append(tfjs_node.GraphJob(model_json, feeds, fetch, budget_s=600))
            expected[case.name] = want
        started = time.perf_counter()
        results = dict(zip([c.name for c in cases], tfjs_node.run_graph_batch(jobs)))
        print(f"{'model':14} {'output max abs':>15} {'logit max abs':>14} {'largest logit':>14}")
        for case in cases:
            result, want = results[case.name], expected[case.name]
            if result.error is not None:
                print(f"{case.name:14} tfjs failed: {result.error.message}")
                failed = True
                continue
            out, w = result.outputs[0].reshape(want[0].shape), want[0]
            ok = bool(np.all(np.abs(out - w) <= 1e-4 + 1e-3 * np.abs(w)))
            line = f"{case.name:14} {float(np.max(np.abs(out - w))):15.3g}"
            if len(want) > 1:
                z, zw = result.outputs[1].reshape(-1), want[1].reshape(-1)
                scale = float(np.max(np.abs(zw)))
                ok &= bool(np.max(np.abs(z - zw)) <= 1e-4 * scale)
                line += f" {float(np.max(np.abs(z - zw))):14.3g} {scale:14.3g}"
            failed |= not ok
            print(line + ("" if ok else "  OUT OF TOLERANCE"))
        print(f"tfjs time {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
