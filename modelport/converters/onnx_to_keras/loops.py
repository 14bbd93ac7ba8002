"""tf2onnx's recurrent ``Loop``s rewritten as the ONNX ``RNN`` / ``GRU`` ops they compute.

tf2onnx rewrites a Keras LSTM into an ONNX ``LSTM`` op, but leaves Keras 3's ``GRU`` and
``SimpleRNN`` as the ``Loop`` it translated from TF's while loop: the body reads the time-major
sequence of the enclosing graph one step at a time (``Gather(X, t)``), carries the state and the
weights, and scans out the new state. The recurrent raising (``recurrent.py``) knows the ONNX
ops, so a Loop of that shape is replaced by the op before raising, its Keras layer then built
the usual way (views, ``return_sequences``, a final-state read, Bidirectional pairs).

Nothing is assumed of the body's arithmetic: the weights are the Loop's constant carried
values, given a role by shape (kernel ``[I, kH]``, recurrent kernel ``[H, kH]``, bias ``[kH]``
or ``[2, kH]``; k = 1 is an RNN, 3 a GRU), and each candidate op (role assignment, activations
seen in the body, GRU's ``linear_before_reset`` from the bias) is run by ``onnx.reference``
beside the Loop on seeded random sequences and initial states. Only a candidate whose every
output agrees (to float32 rounding) replaces it; otherwise the Loop stays, and is refused by
name.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
import onnx_ir as ir

from ..onnx_normalize import const_array
from .initializers import add_initializer

log = logging.getLogger(__name__)

STANDARD = ("", "ai.onnx")
ACTIVATIONS = ("Tanh", "Relu", "Sigmoid", "Softsign", "Softplus")
TOLERANCE = 1e-5  # relative to the outputs' scale: float32 rounding of a few steps


@dataclass
class _Loop:
    """A Loop read as a recurrence: what it scans and carries."""

    node: ir.Node
    x: ir.Value  # the time-major sequence [T, B, I] the body reads from the enclosing graph
    h0: ir.Value  # the initial state [B, H]
    state: int  # index of the state among the carried values
    weights: list[np.ndarray]  # the constant carried values
    hidden: int
    steps: int


def rewrite_recurrent_loops(model: ir.Model) -> int:
    """Replace each Loop that computes an RNN or GRU over a sequence by that op; how many."""
    graph = model.graph
    opset = max(model.opset_imports.get("", 13), 14)
    done = 0
    for node in list(graph):
        if node.op_type != "Loop" or node.domain not in STANDARD:
            continue
        try:
            loop = _read(node)
            found = _candidate(loop, opset) if loop is not None else None
        except Exception as e:  # noqa: BLE001 - a Loop not understood stays a Loop, named
            log.debug("Loop %s: not a recurrence (%s: %s)", node.name, type(e).__name__, e)
            continue
        if found is not None:
            _replace(graph, loop, found)  # type: ignore[arg-type]
            done += 1
    return done


# --- reading the Loop -----------------------------------------------------------------------

def _body(node: ir.Node) -> ir.Graph:
    return node.attributes["body"].value


def _outer_reads(body: ir.Graph) -> list[ir.Value]:
    """Values of the enclosing graph that the body reads (not its own)."""
    own = {id(v) for v in body.inputs} | {id(v) for v in body.initializers.values()}
    own |= {id(o) for n in body for o in n.outputs}
    seen: dict[int, ir.Value] = {}
    for n in body:
        for v in n.inputs:
            if v is not None and id(v) not in own:
                seen[id(v)] = v
        if any(a.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)
               for a in n.attributes.values()):
            raise ValueError("a nested subgraph")
    return list(seen.values())


def _static(v: ir.Value | None) -> list[int | None] | None:
    if v is None or v.shape is None:
        return None
    return [d if isinstance(d, int) else None for d in v.shape]


def _read(node: ir.Node) -> _Loop | None:
    """The Loop as a recurrence, or None: a static trip count, one sequence read from outside,
    one non-constant carried state of shape [B, H], the rest constants passed through, one
    scan output."""
    body = _body(node)
    carried = list(node.inputs[2:])
    if len(body.outputs) != 1 + len(carried) + 1 or len(node.outputs) != len(carried) + 1:
        return None
    # without a trip count the body's condition ends the loop; the trial run below shows
    # whether it runs the sequence's length (the rewritten op runs exactly that)
    trips = const_array(node.inputs[0]) if node.inputs[0] is not None else None
    outer = [v for v in _outer_reads(body) if const_array(v) is None]
    if (node.inputs[0] is not None and trips is None) or len(outer) != 1:
        return None
    x = outer[0]
    xs = _static(x)
    if xs is None or len(xs) != 3 or xs[0] is None or xs[2] is None or \
            (trips is not None and int(trips) < xs[0]):
        return None
    states = [i for i, v in enumerate(carried) if v is not None and const_array(v) is None
              and v.dtype == ir.DataType.FLOAT]
    if len(states) != 1:
        return None
    state = states[0]
    hs = _static(carried[state])
    weights = [const_array(v) for i, v in enumerate(carried) if i != state]
    if hs is None or len(hs) != 2 or hs[1] is None:
        return None
    # every float constant carried goes through the body unchanged; the others are counters
    # (TF's time index), whose final values nothing may read
    for i, v in enumerate(carried):
        if i == state:
            continue
        if v is not None and v.dtype == ir.DataType.FLOAT:
            if body.outputs[1 + i] is not body.inputs[2 + i]:
                return None
        elif node.outputs[i].uses() or node.outputs[i].is_graph_output():
            return None
    float_weights = [w for w in weights if w is not None and w.dtype == np.float32]
    h0 = carried[state]
    if h0 is None:
        return None
    return _Loop(node, x, h0, state, float_weights, int(hs[1]), int(xs[0]))


# --- candidates and their proof -----------------------------------------------------------

@dataclass
class _Op:
    op: str  # RNN | GRU
    w: np.ndarray  # [1, kH, I]
    r: np.ndarray  # [1, kH, H]
    b: np.ndarray  # [1, 2kH]
    activations: list[str]
    linear_before_reset: int = 0


def _candidates(loop: _Loop) -> list[_Op]:
    h = loop.hidden
    xs = _static(loop.x)
    inputs = int(xs[2]) if xs is not None and xs[2] is not None else -1
    found_acts = {n.op_type for n in _body(loop.node)} & set(ACTIVATIONS)
    out: list[_Op] = []
    for k, op in ((1, "RNN"), (3, "GRU")):
        kernels = [w for w in loop.weights if w.ndim == 2 and w.shape == (inputs, k * h)]
        recurrents = [w for w in loop.weights if w.ndim == 2 and w.shape == (h, k * h)]
        biases = [w for w in loop.weights if w.shape in ((k * h,), (2, k * h))] or \
            [np.zeros(k * h, np.float32)]
        for kernel, rec, bias in itertools.product(kernels, recurrents, biases):
            if kernel is rec:
                continue
            two = bias.ndim == 2
            b = np.concatenate([bias[0], bias[1]]) if two else \
                np.concatenate([bias, np.zeros_like(bias)])
            w, r = kernel.T[None], rec.T[None]
            if op == "RNN":
                out.extend(_Op(op, w, r, b[None], [a]) for a in sorted(found_acts))
            elif {"Sigmoid", "Tanh"} <= found_acts:
                out.append(_Op(op, w, r, b[None], ["Sigmoid", "Tanh"], int(two)))
    return out


def _candidate(loop: _Loop, opset: int) -> _Op | None:
    """The first candidate op that computes what the Loop computes."""
    candidates = _candidates(loop)
    if not candidates:
        return None
    rng = np.random.default_rng(0)
    xs = _static(loop.x)
    assert xs is not None and xs[2] is not None
    x = rng.standard_normal((loop.steps, 3, xs[2])).astype(np.float32)
    h0 = (rng.standard_normal((3, loop.hidden)) * 0.5).astype(np.float32)
    want = _run_loop(loop, x, h0, opset)
    for cand in candidates:
        got = _run_op(cand, x, h0, opset)
        if all(_close(a, b) for a, b in zip(got, want)):
            return cand
    return None


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(b))), 1.0)
    return bool(np.max(np.abs(a - b)) <= TOLERANCE * scale)


def _run_loop(loop: _Loop, x: np.ndarray, h0: np.ndarray, opset: int) -> list[np.ndarray]:
    """The Loop's final state and scanned states, by ``onnx.reference``."""
    from onnx.reference import ReferenceEvaluator

    node = loop.node
    proto = ir.serde.serialize_node(node)
    outputs = [f"out{i}" for i in range(len(node.outputs))]
    del proto.output[:]
    proto.output.extend(outputs)
    inits, seen = [], set()
    for v in [*node.inputs, *_outer_reads(_body(node))]:
        c = const_array(v) if v is not None else None
        if v is not None and c is not None and v.name not in seen:
            seen.add(v.name)
            inits.append(onnx.numpy_helper.from_array(np.asarray(c), v.name))
    assert loop.x.name is not None and loop.h0.name is not None
    graph = onnx.helper.make_graph(
        [proto], "loop",
        [onnx.helper.make_tensor_value_info(loop.x.name, onnx.TensorProto.FLOAT, None),
         onnx.helper.make_tensor_value_info(loop.h0.name, onnx.TensorProto.FLOAT, None)],
        [onnx.helper.make_tensor_value_info(o, 0, None) for o in outputs], inits)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    results = list(ReferenceEvaluator(model).run(None, {loop.x.name: x, loop.h0.name: h0}))
    # onnx.reference concatenates the per-step [B, H] scan values along axis 0 where ONNX
    # (and onnxruntime) stacks them on a new one: the same numbers, reshaped
    scanned = np.asarray(results[-1])
    if scanned.size != loop.steps * h0.size:
        raise ValueError(f"a scan output of shape {scanned.shape}")
    return [np.asarray(results[loop.state]), scanned.reshape(loop.steps, *h0.shape)]


_NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Tanh": np.tanh, "Relu": lambda v: np.maximum(v, 0), "Sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    "Softsign": lambda v: v / (1 + np.abs(v)), "Softplus": lambda v: np.log1p(np.exp(v))}


def _run_op(op: _Op, x: np.ndarray, h0: np.ndarray, opset: int) -> list[np.ndarray]:
    """The candidate op's final state and states; ``onnx.reference`` for GRU, the RNN
    formula of the ONNX spec for RNN (the reference knows only its Tanh)."""
    from onnx.reference import ReferenceEvaluator

    if op.op == "RNN":
        f = _NUMPY_ACTIVATIONS[op.activations[0]]
        units = op.r.shape[2]
        h, states = h0.astype(np.float32), []
        for t in range(x.shape[0]):
            h = f(x[t] @ op.w[0].T + h @ op.r[0].T + op.b[0, :units] + op.b[0, units:])
            h = h.astype(np.float32)
            states.append(h)
        return [h, np.stack(states)]

    attrs: dict = {"hidden_size": int(op.r.shape[2]), "activations": op.activations}
    if op.op == "GRU":
        attrs["linear_before_reset"] = op.linear_before_reset
    node = onnx.helper.make_node(op.op, ["x", "w", "r", "b", "", "h0"], ["y", "yh"], **attrs)
    feeds = {"x": x, "w": op.w, "r": op.r, "b": op.b, "h0": h0[None]}
    y, yh = ReferenceEvaluator(node, opsets={"": opset}).run(None, feeds)
    return [np.asarray(yh)[0], np.asarray(y)[:, 0]]


# --- the rewrite ----------------------------------------------------------------------------

def _replace(graph: ir.Graph, loop: _Loop, op: _Op) -> None:
    """The op in place of the Loop: Unsqueeze(h0) as initial_h, Squeezes of Y and Y_h to the
    Loop's scan output and final state."""
    node = loop.node
    base = node.name or "loop"
    w = add_initializer(graph, f"{base}/W", op.w)
    r = add_initializer(graph, f"{base}/R", op.r)
    b = add_initializer(graph, f"{base}/B", op.b)
    axis0 = add_initializer(graph, f"{base}/axis0", np.array([0], np.int64))
    axis1 = add_initializer(graph, f"{base}/axis1", np.array([1], np.int64))
    h0 = ir.node("Unsqueeze", [loop.h0, axis0], name=f"{base}/initial_h")
    attrs: dict = {"hidden_size": loop.hidden, "activations": op.activations}
    if op.op == "GRU":
        attrs["linear_before_reset"] = op.linear_before_reset
    rnn = ir.node(op.op, [loop.x, w, r, b, None, h0.outputs[0]], attrs, num_outputs=2,
                  name=f"{base}/{op.op}")
    seq = ir.node("Squeeze", [rnn.outputs[0], axis1], name=f"{base}/Y")
    last = ir.node("Squeeze", [rnn.outputs[1], axis0], name=f"{base}/Y_h")
    xs = _static(loop.x)
    assert xs is not None
    batch = loop.x.shape[1] if loop.x.shape is not None else None
    h0.outputs[0].shape = ir.Shape([1, batch, loop.hidden])
    rnn.outputs[0].shape = ir.Shape([loop.steps, 1, batch, loop.hidden])
    rnn.outputs[1].shape = ir.Shape([1, batch, loop.hidden])
    seq.outputs[0].shape = ir.Shape([loop.steps, batch, loop.hidden])
    last.outputs[0].shape = ir.Shape([batch, loop.hidden])
    for v in (*h0.outputs, *rnn.outputs, *seq.outputs, *last.outputs):
        v.type = ir.TensorType(ir.DataType.FLOAT)
    graph.insert_before(node, [h0, rnn, seq, last])
    carried = list(node.inputs[2:])
    for i, out in enumerate(node.outputs):
        if not out.uses() and not out.is_graph_output():
            continue
        if i == len(carried):
            new = seq.outputs[0]
        elif i == loop.state:
            new = last.outputs[0]
        else:
            source = carried[i]  # a constant passed through
            if source is None:
                raise ValueError("an output of an absent carried value")
            new = source
        name = out.name
        out.replace_all_uses_with(new, replace_graph_outputs=True)
        if name is not None and new.producer() in (seq, last):  # keep the name outputs had
            out.name = None
            new.name = name
    graph.remove(node, safe=True)
