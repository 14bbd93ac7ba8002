"""Control flow v2: ``StatelessIf`` and ``StatelessWhile``, whose branches,
condition and body are functions of the graph's library (``TfjsGraph.functions``).

Each runs the function as a graph of its own (``models.tfjs_functions.as_graph``) through the
reference's ``run``, as tfjs's ``control_executor`` runs ``functionMap[name]``: ``If`` reads the
first element of ``cond`` and runs one branch on the remaining inputs; ``While`` runs ``cond``
on the loop values and, while its first element is true, ``body``. An op function only sees
its node, so ``run`` makes the graph being evaluated known here (``library``).

TF1's ``Switch``/``Merge``/``Enter``/``Exit``/``NextIteration`` frames are first lifted to these
ops (``models.tfjs_control_v1``, ``lifted``). The stateful ``If``/``While`` (TF writes them only
for branches with side effects) are not evaluated. Each op, and the lift, is checked against
TensorFlow by ``fixtures/control_flow`` (tests/test_control_flow.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

from ...errors import FormatError, UnsupportedError
from ...models import TfjsGraph, tfjs_tensor_arrays
from ...models.tfjs_control_v1 import lift
from ...models.tfjs_functions import as_graph
from ...models.tfjs_tensor_lists import dense
from ._base import Op, register

MAX_ITERATIONS = 1_000_000  # a While past this is refused (a probe must not hang)

Runner = Callable[[TfjsGraph, list[np.ndarray]], list[np.ndarray]]

_GRAPH: ContextVar[TfjsGraph | None] = ContextVar("tfjs_reference_graph", default=None)
# The package's evaluator, handed in by it (it imports this module to register the ops).
_RUN: ContextVar[Runner | None] = ContextVar("tfjs_reference_run", default=None)


@contextmanager
def library(graph: TfjsGraph, run: Runner) -> Iterator[None]:
    """Make ``graph``'s library the one control-flow ops call into while evaluating it, each
    function evaluated by ``run``."""
    token, run_token = _GRAPH.set(graph), _RUN.set(run)
    try:
        yield
    finally:
        _GRAPH.reset(token)
        _RUN.reset(run_token)


def lifted(graph: TfjsGraph) -> TfjsGraph:
    """``graph`` with TF1 conds and loops lifted to ``StatelessIf``/``StatelessWhile``, and
    its tensor lists and TF1 TensorArrays as dense tensors (``models.tfjs_tensor_lists``,
    ``models.tfjs_tensor_arrays``)."""
    return dense(lift(tfjs_tensor_arrays.dense(graph)))


def _function(op: Op, attr: str) -> str:
    value = op.node.attrs.get(attr) or {}
    name = (value.get("func") or {}).get("name") if isinstance(value, dict) else None
    graph = _GRAPH.get()
    if not isinstance(name, str) or graph is None or name not in graph.functions:
        raise FormatError(f"{op.node.op} node {op.name!r}: attribute {attr!r} names no "
                          f"function of the graph's library ({name!r})")
    return name


def _call(name: str, args: list[np.ndarray]) -> list[np.ndarray]:
    graph, run = _GRAPH.get(), _RUN.get()
    assert graph is not None and run is not None  # (_function checked; set with the graph)
    sub = as_graph(graph, name, [list(np.shape(a)) for a in args])
    return run(sub, list(args))


def _truth(value: np.ndarray, what: str) -> bool:
    flat = np.asarray(value).reshape(-1)
    if flat.size == 0:
        raise FormatError(f"{what}: the condition is an empty tensor")
    return bool(flat[0])


@register("StatelessIf")
def stateless_if(op: Op) -> list[np.ndarray]:
    """Run ``then_branch`` or ``else_branch`` on the inputs after ``cond``."""
    branch = "then_branch" if _truth(op.inputs[0], f"If node {op.name!r}") else "else_branch"
    return _call(_function(op, branch), list(op.inputs[1:]))


@register("StatelessWhile")
def stateless_while(op: Op) -> list[np.ndarray]:
    """Run ``body`` on the loop values while ``cond`` of them holds."""
    cond, body = _function(op, "cond"), _function(op, "body")
    values = list(op.inputs)
    for _ in range(MAX_ITERATIONS):
        if not _truth(_call(cond, values)[0], f"While node {op.name!r}"):
            return values
        values = _call(body, values)
    raise UnsupportedError(f"While node {op.name!r}: still running after {MAX_ITERATIONS} "
                           "iterations")
