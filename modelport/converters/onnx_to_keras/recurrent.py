"""LSTM / GRU / RNN raised to Keras recurrent layers (gate order and reset handled here).

ONNX recurrent ops are time-major while a Keras tensor has the batch on axis 0; the ``@pattern``
pre-pass (``claim_recurrent``) follows the time-major and time-reversed *views* between them
(``recurrent_views.py``: the Transposes / Slices raised as the identity, the ops a view passes
through, the Squeeze / Gather / Reshape after an op raised with it) and plans each op as a Keras
layer; the ``@rule`` builds it.

Two directions, one ``direction="bidirectional"`` op or two single-direction ops reading one
tensor in opposite orders (as the Keras -> ONNX route writes a ``Bidirectional``), make a
``Bidirectional``; a ``Concat`` (last axis), ``Add``, ``Mul`` or ``Add`` + halving of the two
directions' outputs is its ``merge_mode``, else ``None``. Keras has no setting for clip,
input_forget, peepholes, sequence_lens shorter than the sequence, activations outside its own,
constant non-zero initial states: those ops are refused.

Gate layouts (``keras_to_onnx/recurrent.py`` is the reverse): LSTM Keras i, f, c, o against ONNX
i, o, f, c; GRU z, r, h in both, ``linear_before_reset=1`` is ``reset_after=True`` with bias
(2, 3u) = [Wb; Rb], ``linear_before_reset=0`` is ``reset_after=False`` with bias Wb + Rb (ONNX
adds Rbh outside the reset product, so it folds into the input bias); LSTM/RNN bias Wb + Rb.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import optional_input
from .core import Ctx, attr, pattern, rule, runtime_zeros
from .recurrent_views import (
    GATES,
    STATES,
    Direction,
    Unit,
    View,
    _bidirectional_hops,
    _carry,
    _is,
    _is_recurrent,
    _layout,
    _No,
    _openers,
    _single_hops,
    _squeeze_axes,
    _State,
    _tensor,
    _uses,
    _view_of,
    _Walk,
)

KERAS_CLASS = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "SimpleRNN"}
DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"],
                       "RNN": ["Tanh"]}
LSTM_FROM_ONNX = [0, 2, 3, 1]  # Keras gate k (i, f, c, o) is ONNX gate LSTM_FROM_ONNX[k]
# ONNX activations with a Keras 3 name; HardSigmoid/Elu only with Keras's fixed constants.
ACTIVATIONS = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu", "Softsign": "softsign",
               "Softplus": "softplus"}
TAKES_ALPHA = {"Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "HardSigmoid", "Elu"}
TAKES_BETA = {"Affine", "ScaledTanh", "HardSigmoid"}

_STATES: weakref.WeakKeyDictionary[Ctx, _State] = weakref.WeakKeyDictionary()


# --- the cell: attributes and weights -----------------------------------------------------------

def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _activations(node: ir.Node, dirs: int) -> list[list[str]]:
    """Keras names of each direction's activations (f, g[, h])."""
    count = len(DEFAULT_ACTIVATIONS[node.op_type])
    names = [_text(a) for a in attr(node, "activations", [])] or \
        DEFAULT_ACTIVATIONS[node.op_type] * dirs
    if len(names) != count * dirs:
        raise _No(f"{len(names)} activations for {dirs} direction(s) of {count}")
    alphas = list(attr(node, "activation_alpha", []))
    betas = list(attr(node, "activation_beta", []))
    keras = []
    for name in names:  # onnxruntime's reading: each function takes the parameters it has
        alpha = alphas.pop(0) if name in TAKES_ALPHA and alphas else None
        beta = betas.pop(0) if name in TAKES_BETA and betas else None
        keras.append(_keras_activation(name, alpha, beta))
    return [keras[d * count:(d + 1) * count] for d in range(dirs)]


def _keras_activation(name: str, alpha: float | None, beta: float | None) -> str:
    if name in ACTIVATIONS:
        return ACTIVATIONS[name]
    if name == "HardSigmoid":  # Keras 3's hard_sigmoid is relu6(x + 3) / 6
        a, b = (0.2 if alpha is None else alpha), (0.5 if beta is None else beta)
        if np.isclose(a, 1 / 6, rtol=1e-6) and np.isclose(b, 0.5, rtol=1e-6):
            return "hard_sigmoid"
        raise _No(f"HardSigmoid(alpha={a:g}, beta={b:g}) is not Keras's hard_sigmoid "
                  "(alpha 1/6, beta 0.5)")
    if name == "Elu" and (alpha is None or np.isclose(alpha, 1.0)):
        return "elu"
    raise _No(f"activation {name} has no Keras recurrent-layer equivalent")


def _weight(ctx: Ctx, node: ir.Node, i: int, what: str) -> np.ndarray | None:
    v = optional_input(node, i)
    if v is None:
        return None
    c = ctx.const(v)
    if c is None:
        raise _No(f"its {what} is computed at run time; Keras layers hold constant weights")
    return np.asarray(c, np.float32)


def _absent_or_zero(ctx: Ctx, node: ir.Node, i: int, what: str) -> None:
    v = optional_input(node, i)
    if v is not None:
        c = ctx.const(v)
        if c is None or np.any(c != 0):
            raise _No(f"{what} has no Keras equivalent")


def _cells(ctx: Ctx, node: ir.Node) -> list[Direction]:
    """The node's directions as Keras cells (go_backwards still unset), or _No."""
    op = node.op_type
    if attr(node, "clip") is not None:
        raise _No("clip (cell clipping) has no Keras equivalent")
    if op == "LSTM" and int(attr(node, "input_forget", 0)):
        raise _No("input_forget=1 (coupled input and forget gates) has no Keras equivalent")
    if op == "LSTM":
        _absent_or_zero(ctx, node, 7, "a peephole input P")
    _sequence_lens(ctx, node)
    w = _weight(ctx, node, 1, "W")
    r = _weight(ctx, node, 2, "R")
    b = _weight(ctx, node, 3, "B")
    if w is None or r is None or w.ndim != 3 or r.ndim != 3:
        raise _No("W and R must be constant [directions, gates * hidden, ...] tensors")
    dirs, hidden, gates = w.shape[0], r.shape[-1], GATES[op]
    if r.shape[1] != gates * hidden or w.shape[1] != gates * hidden:
        raise _No(f"W {list(w.shape)} / R {list(r.shape)} do not hold {gates} gates")
    if b is None:
        b = np.zeros((dirs, 2 * gates * hidden), np.float32)
    direction = _text(attr(node, "direction", "forward"))
    if (dirs == 2) != (direction == "bidirectional"):
        raise _No(f"direction {direction!r} with {dirs} direction(s) of weights")
    acts = _activations(node, dirs)
    lbr = int(attr(node, "linear_before_reset", 0))
    return [Direction(node, False, _config(op, hidden, acts[d], lbr),
                      _keras_weights(op, w[d], r[d], b[d], hidden, lbr)) for d in range(dirs)]


def _sequence_lens(ctx: Ctx, node: ir.Node) -> None:
    """sequence_lens only when provably the whole sequence (Keras has no per-row lengths)."""
    v = optional_input(node, 4)
    if v is None:
        return
    lens = ctx.const(v)
    x = ctx.input(node, 0)
    time_axis = 1 if int(attr(node, "layout", 0)) else 0
    steps = ctx.shape(x)[time_axis] if x.shape is not None else None
    if lens is None or steps is None or np.any(lens != steps):
        raise _No("sequence_lens may be shorter than the sequence: Keras recurrent layers have "
                  "no per-row lengths (a Masking layer's semantics differ)")


def _config(op: str, hidden: int, acts: list[str], lbr: int) -> dict:
    """The Keras 3 config (canonical keys, as the layer fixtures hold them)."""
    if op == "LSTM" and acts[1] != acts[2]:
        raise _No(f"LSTM activations g={acts[1]} and h={acts[2]} differ; Keras uses one "
                  "activation for both")
    config: dict[str, Any] = {
        "return_sequences": False, "return_state": False, "go_backwards": False,
        "stateful": False, "unroll": False, "zero_output_for_mask": False, "units": int(hidden)}
    if op == "RNN":
        config["activation"] = acts[0]
    else:
        config.update(activation=acts[1], recurrent_activation=acts[0])
    config["use_bias"] = True
    if op == "LSTM":
        config["unit_forget_bias"] = True  # initialization only: the weights are given
    config.update(dropout=0.0, recurrent_dropout=0.0)
    if op == "GRU":
        config["reset_after"] = bool(lbr)
    config["seed"] = None
    return config


def _keras_weights(op: str, w: np.ndarray, r: np.ndarray, b: np.ndarray, hidden: int,
                   lbr: int) -> list[tuple[str, np.ndarray]]:
    gates = GATES[op]
    kernel, recurrent = w.T, r.T  # (input, gates * hidden), (hidden, gates * hidden)
    wb, rb = b[:gates * hidden], b[gates * hidden:]
    if op == "GRU" and lbr:
        bias = np.stack([wb, rb])  # reset_after: the recurrent bias sits inside r * (...)
    else:
        bias = wb + rb  # GRU lbr=0: ONNX adds Rbh outside the reset product too
    if op == "LSTM":
        kernel, recurrent, bias = (_reorder(a, hidden, LSTM_FROM_ONNX)
                                   for a in (kernel, recurrent, bias))
    return [("cell/kernel", kernel), ("cell/recurrent_kernel", recurrent), ("cell/bias", bias)]


def _reorder(a: np.ndarray, units: int, order: list[int]) -> np.ndarray:
    return np.concatenate([a[..., g * units:(g + 1) * units] for g in order], axis=-1)


# --- X and the initial states -------------------------------------------------------------------

def _direction_reversed(node: ir.Node) -> bool:
    return _text(attr(node, "direction", "forward")) == "reverse"


def _source(ctx: Ctx, state: _State, node: ir.Node) -> View:
    """The view X holds: time-major for layout 0, batch-first for layout 1."""
    x = ctx.input(node, 0)
    if id(x) in state.tainted:
        raise _No("X is a view of a recurrent layer's tensor taken in by another pattern")
    view = _view_of(ctx, state, x)
    layout = _layout(node)
    if view.swapped != (layout == 0):
        where = "batch-first" if layout else "time-major"
        raise _No(f"X is not a {where} view of a batch-first tensor (layout={layout})")
    return view


# ONNX's initial_h (and LSTM's initial_c) inputs
INITIAL_STATES = {"LSTM": (5, 6), "GRU": (5,), "RNN": (5,)}


def zero_initial_state(node: ir.Node, i: int) -> bool:
    """Input ``i`` of a recurrent op is an initial state made of zeros at run time, the zeros
    Keras starts from: nothing upstream of it is raised."""
    return i in INITIAL_STATES.get(node.op_type, ()) and runtime_zeros(optional_input(node, i))


def _initial(ctx: Ctx, state: _State, node: ir.Node) -> tuple[list[ir.Value], set[int]]:
    """Keras initial states (values bound to batch-first tensors) and the Unsqueezes they come
    through; [] where ONNX starts from zeros, as Keras does by default."""
    given = [optional_input(node, i) for i in INITIAL_STATES[node.op_type]]
    if all(v is None for v in given):
        return [], set()
    # absent, or zeros made at run time (PyTorch's torch.zeros(..., x.size(0), ...)): zeros
    consts = [np.zeros(1) if v is None or runtime_zeros(v) else ctx.const(v) for v in given]
    if all(c is not None and not np.any(c) for c in consts):
        return [], set()
    states, absorbed = [], set()
    for v, c in zip(given, consts):
        if v is None or c is not None:
            raise _No("an initial state that is a constant (or absent beside a computed one): "
                      "Keras starts from zeros or from tensors computed from the inputs")
        handed = state.views.get(id(v))
        if handed is not None and handed.slot in ("h", "c"):  # another op's raw Y_h / Y_c
            states.append(v)
            continue
        p = v.producer()
        source = optional_input(p, 0) if p is not None else None
        if not _is(p, "Unsqueeze") or _squeeze_axes(ctx, p) != [1 if _layout(node) else 0] or \
                any(n is not node for n, _ in _uses(v)) or v.is_graph_output() or \
                source is None or not _view_of(ctx, state, source).plain or \
                id(source) in state.tainted:
            raise _No(f"initial state {v.name!r} is not a batch-first tensor given a direction "
                      "axis (Unsqueeze)")
        absorbed.add(id(p))
        states.append(source)
    return states, absorbed


# --- planning -----------------------------------------------------------------------------------

def _single(ctx: Ctx, state: _State, node: ir.Node) -> Unit:
    """One direction: a Keras recurrent layer (go_backwards where it reads from the end)."""
    (cell,) = _cells(ctx, node)
    cell.go_backwards = _source(ctx, state, node).reversed != _direction_reversed(node)
    initial, absorbed = _initial(ctx, state, node)
    unit = Unit(node.op_type, [node], [cell], initial, absorbed=set(absorbed))
    walk = _Walk(ctx, unit, merges=False)
    # Keras returns the sequence in processing order; ONNX's reverse direction in time order.
    _single_hops(walk, node, _layout(node), "", _direction_reversed(node))
    walk.run()
    _outputs_single(unit)
    unit.reads_reversed = walk.reversed_ends()
    return unit


def _pair(ctx: Ctx, state: _State, fwd: ir.Node, bwd: ir.Node) -> tuple[Unit, bool]:
    """Two single-direction ops over one tensor in opposite orders: a Bidirectional; and
    whether the graph reads one of its outputs in reversed time order."""
    cells = []
    for node, backwards in ((fwd, False), (bwd, True)):
        (cell,) = _cells(ctx, node)
        cell.go_backwards = backwards
        cells.append(cell)
    unit = Unit(fwd.op_type, [fwd, bwd], cells)
    walk = _Walk(ctx, unit, merges=True)
    for node, suffix in ((fwd, "_f"), (bwd, "_b")):
        # Bidirectional's outputs are in time order: ONNX's Y is reversed where X was.
        _single_hops(walk, node, _layout(node), suffix, _source(ctx, state, node).reversed)
    walk.run()
    _outputs_bidirectional(unit)
    return unit, walk.reversed_ends()


def _bidirectional(ctx: Ctx, state: _State, node: ir.Node) -> Unit:
    cells = _cells(ctx, node)
    if _source(ctx, state, node).reversed:
        raise _No("a bidirectional op over a time-reversed sequence")
    if _initial(ctx, state, node)[0]:
        raise _No("initial states of a bidirectional op are not raised")
    cells[1].go_backwards = True
    unit = Unit(node.op_type, [node], cells)
    walk = _Walk(ctx, unit, merges=True)
    _bidirectional_hops(walk, node, _layout(node))
    walk.run()
    _outputs_bidirectional(unit)
    return unit


def _backwards(ctx: Ctx, state: _State, node: ir.Node) -> bool:
    return _source(ctx, state, node).reversed != _direction_reversed(node)


def _partner(ctx: Ctx, state: _State, node: ir.Node, later: list[ir.Node]) -> ir.Node | None:
    """A later single-direction op reading the same tensor in the other order, both without
    initial states."""
    mine = _source(ctx, state, node)
    for other in later:
        if id(other) in state.plans or other.op_type != node.op_type or \
                _layout(other) != _layout(node) or \
                _text(attr(other, "direction", "forward")) == "bidirectional":
            continue
        try:
            theirs = _source(ctx, state, other)
            if theirs.same_tensor(mine) and \
                    _backwards(ctx, state, other) != _backwards(ctx, state, node) and \
                    not _has_initial(ctx, state, other) and not _has_initial(ctx, state, node):
                return other
        except _No:
            continue
    return None


def _has_initial(ctx: Ctx, state: _State, node: ir.Node) -> bool:
    """Initial states other than zeros (which Keras starts from anyway)."""
    try:
        return bool(_initial(ctx, state, node)[0])
    except _No:
        return True


def _plan(ctx: Ctx, state: _State, node: ir.Node, later: list[ir.Node]) -> Unit:
    """Two directions make a Bidirectional where they are merged, or where one is read in time
    order that Keras's go_backwards layer returns reversed; else each is a layer."""
    if _text(attr(node, "direction", "forward")) == "bidirectional":
        return _bidirectional(ctx, state, node)
    alone: Unit | _No
    try:
        alone = _single(ctx, state, node)
    except _No as e:
        alone = e
    other = _partner(ctx, state, node, later)
    if other is not None:
        fwd, bwd = (other, node) if _backwards(ctx, state, node) else (node, other)
        try:
            pair, pair_reversed = _pair(ctx, state, fwd, bwd)
        except _No:
            pair = None
        alone_reversed = isinstance(alone, _No) or alone.reads_reversed or \
            _reads_reversed(ctx, state, other)
        if pair is not None and (pair.merge is not None or
                                 (alone_reversed and not pair_reversed)):
            pair.nodes = [node, other]  # the first op in graph order builds the layer
            return pair
    if isinstance(alone, _No):
        raise alone
    return alone


def _reads_reversed(ctx: Ctx, state: _State, node: ir.Node) -> bool:
    try:
        return _single(ctx, state, node).reads_reversed
    except _No:
        return True


# --- Keras outputs ------------------------------------------------------------------------------

def _outputs_single(unit: Unit) -> None:
    """return_sequences / return_state from the outputs the graph reads: [seq or last, h, c]."""
    used, states = unit.used, STATES[unit.op]
    unit.return_sequences = "seq" in used
    unit.return_state = "c" in used or (unit.return_sequences and "h" in used)
    if unit.return_sequences:
        unit.outputs["seq"] = 0
    if unit.return_state:
        unit.outputs.update({s: 1 + i for i, s in enumerate(states)})
    elif "h" in used:
        unit.outputs["h"] = 0  # the last output is the final h


def _outputs_bidirectional(unit: Unit) -> None:
    """[merged] or [forward, backward] (merge_mode None), then the states when returned:
    forward's, then backward's."""
    used, states = unit.used, STATES[unit.op]
    separate_seq = {"seq_f", "seq_b"} & used
    if unit.merge is not None:
        if separate_seq:
            raise _No("both the merged and the separate directions' sequences are read; "
                      "Keras's Bidirectional returns one or the other")
        unit.return_sequences = unit.merged_kind == "seq"
        unit.outputs["merged"] = 0
        main = 1
    else:
        unit.return_sequences = bool(separate_seq)
        kind = "seq" if unit.return_sequences else "h"
        unit.outputs.update({f"{kind}_f": 0, f"{kind}_b": 1})
        main = 2
    unit.return_state = any(s[:-2] in states and s not in unit.outputs for s in used)
    if unit.return_state:
        order = [s + d for d in ("_f", "_b") for s in states]
        unit.outputs.update({s: main + i for i, s in enumerate(order)})
    missing = used - set(unit.outputs)
    if missing:
        raise _No(f"Keras's Bidirectional cannot return {sorted(missing)} beside the rest")


# --- the pre-pass and the rule ----------------------------------------------------------------

@pattern
def claim_recurrent(ctx: Ctx, graph: ir.Graph) -> None:
    """Plan every recurrent op, claim the nodes raised with it, and carry views through the
    rest of the graph in order."""
    nodes = list(graph)
    ops = [n for n in nodes if _is_recurrent(n)]
    if not ops:
        return
    state = _State(openers=_openers(ctx, ops))
    _STATES[ctx] = state
    for node in nodes:
        if id(node) in state.plans:
            continue  # the second direction of a Bidirectional
        if not _is_recurrent(node):
            _carry(ctx, state, node)
            continue
        try:
            unit = _plan(ctx, state, node, ops[ops.index(node) + 1:])
        except _No as e:
            state.plans[id(node)] = str(e)
            continue
        _commit(ctx, state, unit)


def _commit(ctx: Ctx, state: _State, unit: Unit) -> None:
    for node in unit.nodes:
        state.plans[id(node)] = unit
    # Swaps and reversals of an output the layer does not return lead only into its merge.
    inner = {n for n, slot in unit.followed.items() if slot not in unit.outputs}
    claimed = {id(node) for node in unit.nodes[1:]} | unit.absorbed | inner
    ctx.absorbed.update(claimed)
    state.mine.update(claimed)
    for value, view in unit.binds:
        state.views[id(value)] = view


@rule(*GATES)
def recurrent(ctx: Ctx, node: ir.Node) -> None:
    """LSTM / GRU / RNN: the Keras layer the pre-pass planned (or its reason why not)."""
    state = _STATES.get(ctx)
    plan = state.plans.get(id(node)) if state is not None else None
    if plan is None:
        raise ctx.refuse("not planned by the recurrent pre-pass")
    if isinstance(plan, str):
        raise ctx.refuse(plan)
    _emit(ctx, plan)


def _emit(ctx: Ctx, unit: Unit) -> None:
    x = _tensor(ctx, ctx.input(unit.nodes[0], 0), "input")
    cls = KERAS_CLASS[unit.op]
    flags = {"return_sequences": unit.return_sequences, "return_state": unit.return_state}
    config: dict[str, Any]
    if unit.bidirectional:
        # Keras's Bidirectional sets zero_output_for_mask on both layers (no mask: no effect)
        fwd, bwd = ({"name": None, "trainable": True, "dtype": "float32", **d.config, **flags,
                     "go_backwards": d.go_backwards,
                     "zero_output_for_mask": unit.return_sequences} for d in unit.dirs)
        config = {"merge_mode": unit.merge, "layer": {"class_name": cls, "config": fwd},
                  "backward_layer": {"class_name": cls, "config": bwd}}
        weights = [(f"{side}_layer/{path}", a)
                   for side, d in zip(("forward", "backward"), unit.dirs) for path, a in d.weights]
        ref = ctx.layer("Bidirectional", config, x, weights=weights)
        fwd["name"], bwd["name"] = f"forward_{ref.layer}", f"backward_{ref.layer}"
    else:
        (d,) = unit.dirs
        config = {**d.config, **flags, "go_backwards": d.go_backwards}
        ref = ctx.layer(cls, config, x, weights=d.weights)
    unit.layer = ref.layer
    if unit.initial:
        refs = [_tensor(ctx, s, "initial state") for s in unit.initial]
        ctx.layers[-1].inbound_nodes[0].kwargs["initial_state"] = refs
    for value, view in unit.binds:
        if view.slot in unit.outputs:
            ctx.bind(value, unit.ref(view.slot))
