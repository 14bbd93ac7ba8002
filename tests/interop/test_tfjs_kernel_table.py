"""modelport/api/tfjs_kernels.json (what ``inspect``'s TF.js backend warnings read) is what
the installed tfjs backends register: made again by tests/interop/node/list_tfjs_kernels.js
and compared, backend by backend."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from modelport.api import web_gaps
from modelport.runtime import tfjs_node

SCRIPT = Path(__file__).parent / "node" / "list_tfjs_kernels.js"


def test_the_committed_table_is_the_installed_tfjs(tfjs):
    done = subprocess.run(["node", str(SCRIPT)], capture_output=True, text=True, timeout=120,
                          check=False,
                          env={**os.environ, "NODE_PATH": str(tfjs_node.node_modules())})
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = json.loads(done.stdout)
    table = web_gaps.kernels()
    for backend in ("cpu", "webgl", "wasm"):
        assert fresh["backends"][backend] == table["backends"][backend], \
            f"{backend}: regenerate modelport/api/tfjs_kernels.json with {SCRIPT.name}"
    for backend in set(fresh["backends"]) & set(table["backends"]):
        assert fresh["backends"][backend] == table["backends"][backend], backend
