"""Known TF.js backend gaps ``inspect`` can see without running anything.

- int64 tensors: tfjs has no int64 dtype; it reads int64 inputs and weights as int32 (values
  past 2**31 wrap).
- ops a backend lacks: tfjs runs a graph-model's TF ops through kernels each backend
  registers; ``tfjs_kernels.json`` lists the kernel names each backend of the pinned tfjs
  registers (made from the packages' own kernel registries by
  tests/interop/node/list_tfjs_kernels.js). A graph op named as a kernel that some backend
  does not register fails on that backend. Ops whose kernels are named otherwise (BiasAdd runs
  the Add kernel, _FusedConv2D FusedConv2D, ...) are not matched: the warning covers the
  names that match, no more.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from ..models import TfjsGraph

TABLE = Path(__file__).with_name("tfjs_kernels.json")


@cache
def kernels() -> dict[str, Any]:
    """The table: ``{"versions": {...}, "backends": {backend: [kernel names]}}``."""
    return json.loads(TABLE.read_text(encoding="utf-8"))


def tfjs_gaps(inputs: Iterable[tuple[str, str | None]], graph: TfjsGraph | None) -> list[str]:
    """The gaps of a model bound for (or read from) TF.js: its int64 ``inputs`` (name, dtype),
    and where ``graph`` (the TF.js graph-model it is or becomes) is given, each of its ops
    some backend has no kernel for (by name), with the backends that lack it."""
    out = [_int64(name) for name, dtype in inputs if dtype == "int64"]
    if graph is None:
        return out
    ops = Counter(node.op for node in graph.all_nodes())
    table = kernels()
    backends: dict[str, set[str]] = {b: set(k) for b, k in table["backends"].items()}
    known = set().union(*backends.values())
    version = table["versions"].get("tfjs-core", "?")
    for op in sorted(ops):
        if op not in known:
            continue
        lacking = [b for b, names in backends.items() if op not in names]
        if lacking:
            out.append(f"op {op} ({ops[op]} node(s)): tfjs {version} has no {op} kernel on "
                       f"the {', '.join(lacking)} backend(s), so the model fails there (it "
                       f"runs on {', '.join(b for b in backends if b not in lacking)})")
    return out


def _int64(name: str) -> str:
    return (f"input {name} is int64: tfjs has no int64 and runs it as int32 (values past "
            "2**31 - 1 wrap); feed int32 from web code")
