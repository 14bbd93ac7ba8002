"""Time-major and time-reversed *views* for the recurrent pre-pass (``recurrent.py``).

ONNX recurrent ops are time-major (``layout=0``: X ``[T, B, I]``, Y ``[T, D, B, H]``, Y_h/Y_c
``[D, B, H]``) while a Keras tensor has the batch on axis 0. The ``@pattern`` pre-pass
(``recurrent.claim_recurrent``) therefore follows *views*: an ONNX value that holds a Keras tensor
with time and batch swapped (``Transpose(perm=[1, 0, 2])``) and/or its time axis reversed (a
``Slice`` with step -1 over the whole time axis). Such Transposes and Slices are raised as the
identity on the Keras tensor (``ctx.fused``), and so are, unchanged, the ops that treat time and
batch alike (elementwise ops with constants that vary along the features only, Concat / Softmax /
LayerNormalization on the last axis, MatMul by a constant matrix): ``layout.optimize`` sinks the
Transposes after a recurrent op through them, and the input side has them hoisted above unary
ops. Any other op reading a time-major or reversed value is refused, naming it, and so is a graph
output that would be one. The views start:

* before a recurrent op: X is a view of a batch-first Keras tensor, time-major for ``layout=0``
  (batch-first for ``layout=1``); one reversed in time is Keras's ``go_backwards``;
* after it: Y loses its direction axis (``Squeeze``, or ``Gather`` of one direction; with two
  directions ``Transpose`` + ``Reshape`` to their concatenation), Y_h/Y_c likewise. Those nodes
  are raised with the op (``ctx.absorbed``) and their results bound to the layer's outputs.

Here: the plans (``View``, ``Direction``, ``Unit``, ``_State``), the graph predicates, the sweep
that carries views through the non-recurrent nodes (``_carry``, ``_blocks_view``), and the walk
from a unit's outputs to its merge and the output slots the graph reads (``_Walk`` and its seeds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeGuard

import numpy as np
import onnx_ir as ir

from ...models import TensorRef
from ..onnx_normalize import optional_input
from .core import Ctx, attr, static

STANDARD = ("", "ai.onnx")
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
STATES = {"LSTM": ("h", "c"), "GRU": ("h",), "RNN": ("h",)}
MERGES = {"Concat": "concat", "Add": "sum", "Mul": "mul"}
# Ops that compute the same on a view as on the Keras tensor behind it (elementwise, or along
# the last axis only): a view passes through them.
UNARY = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Elu", "Selu", "Softplus", "Softsign",
         "HardSigmoid", "HardSwish", "Exp", "Log", "Neg", "Abs", "Sqrt", "Reciprocal", "Erf",
         "Cast", "Identity", "Dropout", "Mish", "Gelu", "ThresholdedRelu", "Celu"}
BINARY = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu"}
LAST_AXIS = {"Concat": None, "Softmax": -1, "LogSoftmax": -1, "LayerNormalization": -1}


class _No(Exception):
    """Why a recurrent node cannot be raised; its rule refuses with this."""


# --- plans --------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class View:
    """How an ONNX value holds a Keras tensor: ``tensor`` is the value whose Keras tensor it is
    (bound by whoever raises that value) or a unit's output ``(unit, slot)``; ``swapped``: time
    on axis 0 and batch on axis 1; ``reversed``: time in reverse order."""

    tensor: object  # ir.Value | tuple[Unit, str]
    swapped: bool = False
    reversed: bool = False

    @property
    def plain(self) -> bool:
        """Neither swapped nor reversed: the Keras tensor as it is."""
        return not self.swapped and not self.reversed

    @property
    def slot(self) -> str | None:
        """The unit's output slot it views, or None for a tensor bound by others."""
        return self.tensor[1] if isinstance(self.tensor, tuple) else None

    @property
    def unit_slot(self) -> str:
        """The output slot of a view of a unit's output (every view a ``_Walk`` follows)."""
        if not isinstance(self.tensor, tuple):  # a bug in the walk, not a problem of the model
            raise RuntimeError(f"{self!r} is not a view of a recurrent unit's output")
        return str(self.tensor[1])

    def same_tensor(self, other: View) -> bool:
        """Whether both view the same Keras tensor."""
        if isinstance(self.tensor, tuple) and isinstance(other.tensor, tuple):
            return self.tensor[0] is other.tensor[0] and self.tensor[1] == other.tensor[1]
        return self.tensor is other.tensor

    def how(self) -> str:
        """What makes it a view, in words (for refusals)."""
        return " and ".join((["time-major"] if self.swapped else []) +
                            (["in reversed time order"] if self.reversed else []))


@dataclass(eq=False)
class Direction:
    """One direction of a recurrent op as a Keras layer: its config and weights."""

    node: ir.Node
    go_backwards: bool
    config: dict
    weights: list[tuple[str, np.ndarray]]


@dataclass(eq=False, repr=False)
class Unit:
    """One Keras layer: a recurrent layer, or a Bidirectional over two directions."""

    op: str  # ONNX op type
    nodes: list[ir.Node]  # the ops it computes; the first in graph order builds the layer
    dirs: list[Direction]
    initial: list[ir.Value] = field(default_factory=list)  # batch-first, bound by others
    binds: list[tuple[ir.Value, View]] = field(default_factory=list)  # values it binds
    seen: dict[int, tuple[ir.Value, View]] = field(default_factory=dict)  # its views
    absorbed: set[int] = field(default_factory=set)  # nodes raised with it
    followed: dict[int, str] = field(default_factory=dict)  # Transposes/Slices after it: slot
    used: set[str] = field(default_factory=set)  # output slots the graph reads
    merge: str | None = None  # Bidirectional merge_mode
    merged_kind: str | None = None  # seq | h: what the merge joins
    outputs: dict[str, int] = field(default_factory=dict)  # slot -> Keras output index
    return_sequences: bool = False
    return_state: bool = False
    layer: str | None = None  # the Keras layer's name, once built
    reads_reversed: bool = False  # the graph reads an output in reversed time order

    @property
    def bidirectional(self) -> bool:
        """Whether the unit is a Bidirectional (two directions)."""
        return len(self.dirs) == 2

    def ref(self, slot: str) -> TensorRef:
        """The Keras tensor of output ``slot``, once the layer is built."""
        if self.layer is None:  # a bug in the rule, not a problem of the model
            raise RuntimeError(f"{self!r}: its outputs are read before its layer is built")
        return TensorRef(self.layer, 0, self.outputs[slot])

    def __repr__(self) -> str:
        return f"Unit({self.op}, {[n.name for n in self.nodes]})"


@dataclass
class _State:
    views: dict[int, View] = field(default_factory=dict)  # non-plain or unit outputs
    plans: dict[int, Unit | str] = field(default_factory=dict)
    openers: set[int] = field(default_factory=set)  # Transposes/Slices leading into X
    tainted: set[int] = field(default_factory=set)  # views taken in by other patterns
    mine: set[int] = field(default_factory=set)  # nodes raised with a recurrent op



# --- small graph predicates ---------------------------------------------------------------------

def _is(node: ir.Node | None, op: str) -> TypeGuard[ir.Node]:
    return node is not None and node.op_type == op and node.domain in STANDARD


def _perm(node: ir.Node) -> list[int]:
    return [int(p) for p in attr(node, "perm") or []]


def _is_swap(node: ir.Node | None) -> bool:
    """Transpose exchanging the first two axes of a rank-3 tensor (time <-> batch)."""
    return _is(node, "Transpose") and _perm(node) == [1, 0, 2]


def _ints(ctx: Ctx, v: ir.Value | None) -> list[int] | None:
    c = ctx.const(v) if v is not None else None
    return None if c is None else [int(i) for i in np.asarray(c).reshape(-1)]


def _reversal_axis(ctx: Ctx, node: ir.Node | None) -> int | None:
    """The axis a Slice reverses whole (step -1 from the last element past the first) of a
    rank-3 tensor, or None."""
    if not _is(node, "Slice") or len(node.inputs) < 5:
        return None
    x = node.inputs[0]
    starts, ends, axes, steps = (_ints(ctx, v) for v in node.inputs[1:5])
    if x is None or x.shape is None or len(x.shape) != 3 or starts is None or ends is None or \
            axes is None or steps is None or len(axes) != 1 or steps != [-1]:
        return None
    axis = axes[0] % 3
    size = ctx.shape(x)[axis]
    start, end = starts[0], ends[0]
    if size is None:  # only the "from the end, past the start" constants prove it
        whole = start == -1 and end <= -(2 ** 62)
    else:
        whole = (start == -1 or start >= size - 1) and end <= -size - 1
    return axis if whole else None


def _squeeze_axes(ctx: Ctx, node: ir.Node) -> list[int] | None:
    given = optional_input(node, 1)
    axes = _ints(ctx, given) if given is not None else attr(node, "axes")
    x = optional_input(node, 0)
    rank = len(x.shape) if x is not None and x.shape is not None else None
    if axes is None or rank is None:
        return None
    return sorted(int(a) % rank for a in axes)


def _gather_index(ctx: Ctx, node: ir.Node, axis: int, size: int) -> int | None:
    """The index a Gather takes with a scalar index on ``axis`` of a ``size``-long axis."""
    x = optional_input(node, 0)
    shape = x.shape if x is not None else None
    if shape is None or int(attr(node, "axis", 0)) % len(shape) != axis:
        return None
    c = ctx.const(optional_input(node, 1))
    if c is None or np.ndim(c) != 0 or not -size <= int(c) < size:
        return None
    return int(c) % size


def _reshape_keeps(ctx: Ctx, node: ir.Node, keep: int, tail: list[int]) -> bool:
    """A Reshape that keeps the first ``keep`` axes and folds the rest into ``tail``."""
    if not _is(node, "Reshape"):
        return False
    target = _ints(ctx, optional_input(node, 1))
    data = optional_input(node, 0)
    src = ctx.shape(data) if data is not None and data.shape is not None else None
    folded = static(src[keep:]) if src is not None else None
    if target is None or src is None or len(target) != keep + len(tail) or \
            target.count(-1) > 1 or folded is None or \
            int(np.prod(folded)) != int(np.prod(tail)):
        return False
    zero_copies = not int(attr(node, "allowzero", 0))
    for i in range(keep):
        t = target[i]
        if not (t == -1 or (t == 0 and zero_copies) or (src[i] is not None and t == src[i])):
            return False
    return all(t == want or t == -1 for t, want in zip(target[keep:], tail))


def _uses(v: ir.Value) -> list[tuple[ir.Node, int]]:
    return [(u.node, u.idx) for u in v.uses()]


def _layout(node: ir.Node) -> int:
    return int(attr(node, "layout", 0))



def _tensor(ctx: Ctx, v: ir.Value, what: str) -> TensorRef:
    if not ctx.is_tensor(v):
        raise ctx.refuse(f"its {what} {v.name!r} is not a Keras tensor: the node computing it "
                         "was not raised")
    return ctx.ref(v)


# --- views: the sweep over the graph ------------------------------------------------------------

def _is_recurrent(node: ir.Node) -> bool:
    return node.op_type in GATES and node.domain in STANDARD


def _is_view_op(ctx: Ctx, node: ir.Node | None) -> bool:
    return _is_swap(node) or _reversal_axis(ctx, node) is not None


def _view_of(ctx: Ctx, state: _State, v: ir.Value) -> View:
    """The view ``v`` holds; through openers not swept yet (a partner op's input)."""
    known = state.views.get(id(v))
    if known is not None:
        return known
    p = v.producer()
    source = optional_input(p, 0) if p is not None and id(p) in state.openers else None
    if p is not None and source is not None:
        return _through(ctx, p, _view_of(ctx, state, source)) or View(v)
    return View(v)


def _through(ctx: Ctx, node: ir.Node, view: View) -> View | None:
    """The view after a time/batch swap or a time reversal; None for a reversal of another
    axis."""
    if _is_swap(node):
        return replace(view, swapped=not view.swapped)
    if _reversal_axis(ctx, node) != (0 if view.swapped else 1):
        return None
    return replace(view, reversed=not view.reversed)


def _openers(ctx: Ctx, ops: list[ir.Node]) -> set[int]:
    """Swaps and reversals on the way into an X, through unary ops (hoisted above them)."""
    found: set[int] = set()
    for node in ops:
        v = optional_input(node, 0)
        while v is not None and (p := v.producer()) is not None and p.domain in STANDARD:
            if _is_view_op(ctx, p):
                found.add(id(p))
            elif not (p.op_type in UNARY and _constants_after_first(ctx, p)):
                break
            v = optional_input(p, 0)
    return found


def _constants_after_first(ctx: Ctx, node: ir.Node) -> bool:
    return all(v is None or ctx.const(v) is not None for v in node.inputs[1:])


def _identity(ctx: Ctx, node: ir.Node) -> None:
    """A swap or reversal: the same Keras tensor, seen differently."""
    ctx.output(_tensor(ctx, ctx.input(node, 0), "input"))


def _refusal(why: str) -> Callable[[Ctx, ir.Node], None]:
    def refuse(ctx: Ctx, node: ir.Node) -> None:
        raise ctx.refuse(why)
    return refuse


def _carry(ctx: Ctx, state: _State, node: ir.Node) -> None:
    """Carry views through one non-recurrent node, or refuse it where they cannot pass."""
    ins = [v for v in node.inputs if v is not None]
    views = [_view_of(ctx, state, v) for v in ins]
    bent = [(v, w) for v, w in zip(ins, views) if not w.plain]
    tainted = any(id(v) in state.tainted for v in ins)
    if id(node) in state.mine:
        return  # raised with a recurrent op, which binds what the rest reads
    if id(node) in ctx.absorbed:  # raised by another pattern with a neighbour
        if bent or tainted:
            state.tainted.update(id(o) for o in node.outputs)
        return
    if not (bent or tainted or id(node) in state.openers):
        return
    out = node.outputs[0]
    if tainted or id(node) in ctx.fused:
        _refuse_node(ctx, node, "its input is a time-major or time-reversed view of a "
                                "recurrent layer's tensor inside a pattern")
        return
    if _is_view_op(ctx, node):
        view = _through(ctx, node, views[0])
        if view is None:
            _refuse_node(ctx, node, f"it reverses an axis of {ins[0].name!r} other than time")
        elif out.is_graph_output() and not view.plain:
            _refuse_node(ctx, node, f"graph output {out.name!r} would be {view.how()}")
        else:
            state.views[id(out)] = view
            ctx.fused[id(node)] = _identity
        return
    why = _blocks_view(ctx, node, ins, views)
    if why is None and out.is_graph_output():
        why = f"graph output {out.name!r} would be {bent[0][1].how()}"
    if why is not None:
        _refuse_node(ctx, node, why)
    else:
        state.views[id(out)] = View(out, bent[0][1].swapped, bent[0][1].reversed)


def _refuse_node(ctx: Ctx, node: ir.Node, why: str) -> None:
    ctx.fused[id(node)] = _refusal(why)


def _blocks_view(ctx: Ctx, node: ir.Node, ins: list[ir.Value], views: list[View]) -> str | None:
    """Why ``node`` cannot compute on the views it reads as on their Keras tensors, or None."""
    op, bent = node.op_type, next(w for w in views if not w.plain)
    where = f"its input is {bent.how()} (a view of a recurrent layer's tensor)"
    if node.domain not in STANDARD or any(o.uses() or o.is_graph_output()
                                          for o in node.outputs[1:]):
        return f"{where}, which only ops that treat time and batch alike take"
    consts = [ctx.const(v) for v in ins]
    for w, c in zip(views, consts):
        if c is None and (w.swapped, w.reversed) != (bent.swapped, bent.reversed):
            return f"{where}, and another input is not: no Keras layer aligns them"
    if op in UNARY:
        return None if _constants_after_first(ctx, node) and consts[0] is None else \
            f"{where}, and its other inputs are computed"
    if op in BINARY:
        for c in consts:
            if c is not None and c.ndim > 1 and any(d != 1 for d in c.shape[:-1]):
                return (f"{where}, and a constant of shape {list(c.shape)} varies along time "
                        "or batch")
        return None
    if op == "MatMul":
        c = consts[1] if len(consts) == 2 else None
        return None if consts[0] is None and c is not None and c.ndim == 2 else \
            f"{where}; only a product by a constant matrix (Dense) is raised there"
    if op in LAST_AXIS:
        rank = len(ins[0].shape) if ins[0].shape is not None else 0
        axis = attr(node, "axis", LAST_AXIS[op])
        if rank and axis is not None and int(axis) % rank == rank - 1 and \
                (op != "Concat" or all(c is None for c in consts)):
            return None
        return f"{where}, and it computes along axis {axis}, not the features"
    return f"{where}; {op} would compute along the wrong axes of the Keras tensor"


# --- the walk from a unit's outputs: merges, and the outputs it must return --------------------

class _Walk:
    """Follows a unit's outputs through swaps and reversals to find the two directions' merge
    and the output slots the graph reads."""

    def __init__(self, ctx: Ctx, unit: Unit, merges: bool) -> None:
        self.ctx, self.unit, self.merges = ctx, unit, merges
        self.todo: list[tuple[ir.Value, View]] = []
        self.pending: dict[int, ir.Node] = {}  # merge candidates, by node id

    def seed(self, value: ir.Value, slot: str, swapped: bool = False,
             reversed_: bool = False) -> None:
        view = View((self.unit, slot), swapped, reversed_)
        self.unit.binds.append((value, view))
        self.todo.append((value, view))

    def claim(self, node: ir.Node) -> None:
        self.unit.absorbed.add(id(node))

    def run(self) -> None:
        while True:
            while self.todo:
                self._visit(*self.todo.pop())
            if not self._merge_pending():
                break
        self._mark_used()

    def _visit(self, value: ir.Value, view: View) -> None:
        self.unit.seen[id(value)] = (value, view)
        if value.is_graph_output() and not view.plain:
            raise _No(f"graph output {value.name!r} would be {view.how()}")
        for node, idx in _uses(value):
            if self.merges and node.op_type in MERGES and node.domain in STANDARD:
                self.pending[id(node)] = node
            elif view.swapped and idx == 0 and view.unit_slot.startswith("seq") and \
                    self._last_step(node, "h" + view.unit_slot[3:],
                                    -1 if _processing_order(view) else 0):
                continue
            elif not view.plain and idx == 0 and _is_view_op(self.ctx, node):
                after = _through(self.ctx, node, view)
                if after is not None:
                    self.unit.followed[id(node)] = view.unit_slot
                    self.todo.append((node.outputs[0], after))

    def _last_step(self, node: ir.Node, slot: str, index: int) -> bool:
        """The step a time-major sequence holds the final state at taken (``index`` -1 where
        the view is in processing order, else 0; tf2onnx's ``outputs[-1]``: a one-step Slice
        of the time axis then Squeeze, or a Gather): the final h, which the layer returns
        without its sequence. Claims it and seeds the h slot."""
        ctx = self.ctx
        taken: ir.Node | None = None
        end = 2 ** 31 - 1 if index == -1 else index + 1
        if _is(node, "Gather") and int(attr(node, "axis", 0)) == 0:
            c = ctx.const(optional_input(node, 1))
            if c is not None and np.ndim(c) == 0 and int(c) == index:
                taken = node
        elif _is(node, "Slice") and len(node.inputs) >= 4:
            starts, ends, axes = (_ints(ctx, v) for v in node.inputs[1:4])
            steps = _ints(ctx, optional_input(node, 4)) if len(node.inputs) > 4 else [1]
            uses = _uses(node.outputs[0])
            if starts == [index] and ends is not None and \
                    (ends[0] >= end if index == -1 else ends[0] == end) and \
                    axes == [0] and steps == [1] and len(uses) == 1 and \
                    not node.outputs[0].is_graph_output() and \
                    _is(uses[0][0], "Squeeze") and _squeeze_axes(ctx, uses[0][0]) == [0]:
                taken = uses[0][0]
        if taken is None:
            return False
        self.claim(node)
        self.claim(taken)
        self.seed(taken.outputs[0], slot)
        return True

    def _merge_pending(self) -> bool:
        """Claim one merge of the two directions' outputs (Keras's merge_mode)."""
        for key, node in list(self.pending.items()):
            entries = [self.unit.seen.get(id(v)) if v is not None else None for v in node.inputs]
            first, second = entries if len(entries) == 2 else (None, None)
            if first is None or second is None:
                continue
            a, b = first[1], second[1]
            kind = _pair_kind(a.unit_slot, b.unit_slot)
            if kind is None or (a.swapped, a.reversed) != (b.swapped, b.reversed):
                continue
            if node.op_type == "Concat":
                rank = len(node.outputs[0].shape) if node.outputs[0].shape is not None else 0
                if not rank or int(attr(node, "axis")) % rank != rank - 1 or \
                        not a.unit_slot.endswith("_f"):
                    continue  # Keras concatenates forward then backward, on the features
            if self.unit.merge is not None:
                raise _No("its two directions' outputs are merged twice; Keras's Bidirectional "
                          "has one merge_mode")
            del self.pending[key]
            self.claim(node)
            out, mode = self._average(node) if node.op_type == "Add" else \
                (node.outputs[0], MERGES[node.op_type])
            self.unit.merge, self.unit.merged_kind = mode, kind
            self.seed(out, "merged", a.swapped, a.reversed)
            return True
        return False

    def _average(self, add: ir.Node) -> tuple[ir.Value, str]:
        """Add then halve (Div by 2 or Mul by 0.5, nothing else reading the sum) is 'ave'."""
        out = add.outputs[0]
        uses = _uses(out)
        if len(uses) == 1 and not out.is_graph_output():
            node, idx = uses[0]
            c = self.ctx.const(node.inputs[1 - idx]) if len(node.inputs) == 2 else None
            if c is not None and c.size >= 1 and np.all(c == c.reshape(-1)[0]) and \
                    ((node.op_type == "Div" and idx == 0 and c.reshape(-1)[0] == 2) or
                     (node.op_type == "Mul" and c.reshape(-1)[0] == 0.5)):
                self.claim(node)
                return node.outputs[0], "ave"
        return out, "sum"

    def _mark_used(self) -> None:
        """Output slots read outside the unit (its own nodes, merges, swaps and reversals)."""
        own = {id(n) for n in self.unit.nodes} | self.unit.absorbed | set(self.unit.followed)
        for value, view in self.unit.seen.values():
            if value.is_graph_output() or any(id(n) not in own for n, _ in _uses(value)):
                self.unit.used.add(view.unit_slot)

    def reversed_ends(self) -> bool:
        """Whether the graph reads one of its outputs in reversed time order."""
        own = {id(n) for n in self.unit.nodes} | self.unit.absorbed | set(self.unit.followed)
        return any(view.reversed and (value.is_graph_output() or
                                      any(id(n) not in own for n, _ in _uses(value)))
                   for value, view in self.unit.seen.values())


def _processing_order(view: View) -> bool:
    """Whether a view of a sequence output holds the steps in the order the layer processed
    them, so that its last step is the final state: Keras returns a single layer's sequence in
    that order and a Bidirectional's backward sequence in time order (reversed)."""
    slot = view.unit_slot
    if slot in ("seq", "seq_f"):
        return not view.reversed
    return slot == "seq_b" and view.reversed


def _pair_kind(a: str, b: str) -> str | None:
    """seq or h when ``a`` and ``b`` are that output of the two directions."""
    for kind in ("seq", "h"):
        if {a, b} == {f"{kind}_f", f"{kind}_b"}:
            return kind
    return None


def _single_hops(walk: _Walk, node: ir.Node, layout: int, suffix: str, seq_reversed: bool
                 ) -> None:
    """Seed the walk with one direction's outputs, its direction axis squeezed away."""
    ctx = walk.ctx
    slots = ["seq", *STATES[node.op_type]]
    for i, v in enumerate(node.outputs[:len(slots)]):
        if v is None:
            continue
        if v.is_graph_output():
            raise _No(f"graph output {v.name!r} keeps ONNX's direction axis")
        slot = slots[i] + suffix
        dir_axis = (2 if layout else 1) if i == 0 else (1 if layout else 0)
        for user, idx in _uses(v):
            if i > 0 and idx in (5, 6) and _is_recurrent(user) and _layout(user) == layout \
                    and not suffix:
                # another op's initial state: Y_h/Y_c as they are (same layout)
                walk.unit.binds.append((v, View((walk.unit, slots[i]))))
                walk.unit.seen[id(v)] = (v, View((walk.unit, slots[i])))
                continue
            squeezes = _is(user, "Squeeze") and _squeeze_axes(ctx, user) == [dir_axis]
            takes_it = _is(user, "Gather") and i > 0 and not layout and \
                _gather_index(ctx, user, 0, 1) == 0  # h_n[-1] of one direction
            if not (squeezes or takes_it):
                raise _No(f"output {i} ({v.name!r}) is used by {user.op_type} node "
                          f"{user.name!r}, not squeezed out of its direction axis")
            walk.claim(user)
            walk.seed(user.outputs[0], slot, swapped=i == 0 and not layout,
                      reversed_=i == 0 and seq_reversed)


def _bidirectional_hops(walk: _Walk, node: ir.Node, layout: int) -> None:
    """Seed the walk with a two-direction op's outputs: their concatenation (Transpose +
    Reshape) or one direction (Gather)."""
    ctx = walk.ctx
    slots = ["seq", *STATES[node.op_type]]
    hidden = walk.unit.dirs[0].config["units"]
    for i, v in enumerate(node.outputs[:len(slots)]):
        if v is None:
            continue
        if v.is_graph_output():
            raise _No(f"graph output {v.name!r} keeps ONNX's direction axis")
        seq = i == 0
        dir_axis = (2 if layout else 1) if seq else (1 if layout else 0)
        for user, _ in _uses(v):
            if _concat_hop(walk, user, seq, layout, hidden):
                continue
            d = _gather_index(ctx, user, dir_axis, 2) if _is(user, "Gather") else \
                _slice_direction(ctx, user, dir_axis)
            if d is not None and _is(user, "Slice"):  # tf2onnx: Slice [d, d+1) + Squeeze
                walk.claim(user)
                user = _uses(user.outputs[0])[0][0]
            if d is None:
                raise _No(f"output {i} ({v.name!r}) is used by {user.op_type} node "
                          f"{user.name!r}, which neither concatenates its directions nor "
                          "takes one")
            walk.claim(user)
            walk.seed(user.outputs[0], slots[i] + ("_f", "_b")[d], swapped=seq and not layout)


def _slice_direction(ctx: Ctx, node: ir.Node, axis: int) -> int | None:
    """The direction d a Slice [d, d+1) on the direction ``axis`` takes when only a Squeeze of
    that axis reads it (tf2onnx's split of a bidirectional op's outputs), else None."""
    if not _is(node, "Slice") or len(node.inputs) < 4:
        return None
    starts, ends, axes = (_ints(ctx, v) for v in node.inputs[1:4])
    steps = _ints(ctx, optional_input(node, 4)) if len(node.inputs) > 4 else [1]
    uses = _uses(node.outputs[0])
    if starts is None or ends is None or axes != [axis] or steps != [1] or \
            starts[0] not in (0, 1) or ends[0] != starts[0] + 1 or len(uses) != 1 or \
            node.outputs[0].is_graph_output() or not _is(uses[0][0], "Squeeze") or \
            _squeeze_axes(ctx, uses[0][0]) != [axis]:
        return None
    return starts[0]


def _concat_hop(walk: _Walk, user: ir.Node, seq: bool, layout: int, hidden: int) -> bool:
    """[T, 2, B, H] -> Transpose(0, 2, 1, 3) -> Reshape [T, B, 2H] (or batch-first), and
    [2, B, H] -> Transpose(1, 0, 2) -> Reshape [B, 2H]: Keras's 'concat' merge."""
    ctx, keep = walk.ctx, (2 if seq else 1)
    if layout:  # [B, T, 2, H] / [B, 2, H]: the directions already sit before the features
        reshape, swapped = user, False
    else:
        perms: dict[tuple[int, ...], bool] = \
            {(0, 2, 1, 3): True, (2, 0, 1, 3): False} if seq else {(1, 0, 2): False}
        if not _is(user, "Transpose") or tuple(_perm(user)) not in perms:
            return False
        uses = _uses(user.outputs[0])
        if len(uses) != 1 or user.outputs[0].is_graph_output():
            return False
        reshape, swapped = uses[0][0], perms[tuple(_perm(user))]
    if not _reshape_keeps(ctx, reshape, keep, [2 * hidden]):
        return False
    if walk.unit.merge is not None:
        raise _No("its two directions' outputs are merged twice; Keras's Bidirectional has "
                  "one merge_mode")
    if reshape is not user:
        walk.claim(user)
    walk.claim(reshape)
    walk.unit.merge, walk.unit.merged_kind = "concat", "seq" if seq else "h"
    walk.seed(reshape.outputs[0], "merged", swapped=swapped)
    return True
