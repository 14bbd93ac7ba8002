"""Recurrent layers: SimpleRNN, GRU, LSTM, ConvLSTM2D, Bidirectional, TimeDistributed.

Two formulations of one recurrence, chosen per call:

* **Fused** (ONNX ``RNN``/``GRU``/``LSTM``) when there is no Keras mask and the cell is one
  cuDNN computes (``FUSED_ACTIVATIONS``: onnxruntime's CUDA kernels ignore the activation and
  ``linear_before_reset`` attributes). The gate layouts differ; this is the one place that
  reorders them:

  =========  ==========================  ===============================================
  layer      Keras kernel columns        ONNX ``W``/``R`` rows (transposed), ``B``
  =========  ==========================  ===============================================
  LSTM       i, f, c, o                  i, o, f, c; ``B`` = [Wb, Rb], Rb = 0
  GRU        z, r, h                     z, r, h (same); ``reset_after=True`` only: bias
                                         (2, 3u) = [input; recurrent] -> [Wb, Rb] with
                                         ``linear_before_reset=1``
  SimpleRNN  (one gate)                  same
  =========  ==========================  ===============================================

* **Scan** (ONNX ``Scan`` over the time axis, the cell written out with ordinary ops, in
  Keras's own gate order) otherwise: a Keras mask (any pattern, zeros inside the sequence
  included: ``sequence_lens`` only expresses right padding, and even then ONNX writes zeros
  where Keras repeats the previous output), other activations (any that ``activations.py``
  knows: hard_sigmoid, Keras 2's hard_sigmoid, selu, ...), GRU ``reset_after=False``, and
  ConvLSTM. The input projection ``x @ kernel + bias`` (or the input convolution) is computed
  for all steps at once before the loop; the loop body does only the recurrent part.

Keras 3 mask semantics, followed exactly (``keras/src/backend/jax/rnn.py``, JAX backend; the
fixtures are made with it): a masked step keeps every state; its output is zeros when
``zero_output_for_mask`` (which ``Bidirectional`` forces to ``return_sequences``), else the
previous step's output, which is the initial ``h`` for a masked first step (``unroll=True``
starts from zeros instead and ignores ``zero_output_for_mask``). The last output is the last
step's output, masked or not. ``go_backwards`` reads the sequence from its end and returns the
outputs in that (reversed) order; the output mask is the input mask, not reversed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from ...errors import ModelportError, UnsupportedError
from ...models import Layer, TensorRef, Weight
from ...models.keras_shapes import TensorSpec
from ..padding import same_pads
from .activations import activation
from .context import LOWERINGS, ONNX_DTYPES, Builder, Call, Lowered, static_dims
from .conv import _tuple

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1  # Slice bounds: "to the end"

# The fused ops only where every runtime computes them the same: onnxruntime's CUDA kernels
# run cuDNN, which ignores the `activations`, `activation_alpha/beta` and `linear_before_reset`
# attributes (LSTM and GRU: sigmoid gates and tanh, GRU with the reset gate applied after the
# matrix product; RNN: tanh or relu). Everything else (hard_sigmoid, Keras 2's
# reset_after=False GRU, ...) takes the Scan formulation, which is exact everywhere.
FUSED_ACTIVATIONS: dict[str, dict[tuple[str, str], list[str]]] = {
    "SimpleRNN": {("tanh", ""): ["Tanh"], ("relu", ""): ["Relu"]},
    "GRU": {("tanh", "sigmoid"): ["Sigmoid", "Tanh"]},
    "LSTM": {("tanh", "sigmoid"): ["Sigmoid", "Tanh", "Tanh"]},
}
GATES = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}
STATES = {"SimpleRNN": 1, "GRU": 1, "LSTM": 2}
LSTM_TO_ONNX = [0, 3, 1, 2]  # ONNX gate g takes Keras gate LSTM_TO_ONNX[g] (i, o, f, c)

# A cell step in a Scan body: (body builder, projected input at t, states) -> new states; the
# step's output is the first new state (h).
Step = Callable[[Builder, ir.Value, list[ir.Value]], list[ir.Value]]


@dataclass
class Recurrence:
    """One direction of a recurrent layer, read from its config and variables."""

    kind: str  # SimpleRNN | GRU | LSTM
    units: int
    activation: str
    recurrent_activation: str
    go_backwards: bool
    return_sequences: bool
    zero_output_for_mask: bool
    unroll: bool
    reset_after: bool
    kernel: np.ndarray  # (features, gates * units)
    recurrent_kernel: np.ndarray  # (units, gates * units)
    input_bias: np.ndarray | None  # (gates * units,)
    recurrent_bias: np.ndarray | None  # (gates * units,), GRU reset_after only


@dataclass
class Result:
    """A recurrence run: its output sequence (with return_sequences), its last step's output and its
    final states."""

    sequence: ir.Value | None  # (batch, time, ...) in processing order; with return_sequences
    last: ir.Value  # last step's output
    states: list[ir.Value]  # final h (and c)

    def output(self, return_sequences: bool) -> ir.Value:
        """The layer's output: the sequence (run with ``return_sequences``), else the last."""
        if not return_sequences:
            return self.last
        if self.sequence is None:
            raise ModelportError("internal error: a recurrence ran without its sequence output")
        return self.sequence


def recurrence(call: Call, kind: str, cfg: dict, prefix: str = "") -> Recurrence:
    """The ``kind`` recurrence described by ``cfg`` with variables under ``prefix``."""
    if cfg.get("stateful"):
        raise UnsupportedError("stateful=True: an ONNX graph holds no state between runs",
                               layer=call.name)
    kernel = call.weight(f"{prefix}cell/kernel")
    recurrent_kernel = call.weight(f"{prefix}cell/recurrent_kernel")
    bias = call.weight(f"{prefix}cell/bias") if call.has_weight(f"{prefix}cell/bias") else None
    reset_after = kind == "GRU" and bool(cfg.get("reset_after", True))
    input_bias = recurrent_bias = bias
    if kind == "GRU" and bias is not None:
        if (bias.ndim == 2) != reset_after:
            raise UnsupportedError(f"GRU bias of shape {bias.shape} does not fit "
                                   f"reset_after={reset_after}", layer=call.name)
        input_bias, recurrent_bias = (bias[0], bias[1]) if reset_after else (bias, None)
    elif bias is not None:
        recurrent_bias = None
    return Recurrence(
        kind=kind, units=int(cfg["units"]),
        activation=_name(cfg.get("activation", "tanh")),
        recurrent_activation=_name(cfg.get("recurrent_activation", "sigmoid")),
        go_backwards=bool(cfg.get("go_backwards", False)),
        return_sequences=bool(cfg.get("return_sequences", False)),
        zero_output_for_mask=bool(cfg.get("zero_output_for_mask", False)),
        unroll=bool(cfg.get("unroll", False)),
        reset_after=reset_after, kernel=kernel, recurrent_kernel=recurrent_kernel,
        input_bias=input_bias, recurrent_bias=recurrent_bias)


def _name(act: str | None) -> str:
    return "linear" if act is None else act


def run_recurrence(ctx: Builder, call: Call, rec: Recurrence, x: ir.Value, dtype: str,
                   mask: ir.Value | None, initial: list[ir.Value]) -> Result:
    """Run ``rec`` over ``x`` (batch, time, features), fused where that is exact."""
    if mask is None and _fused_activations(rec) is not None:
        return _fused(ctx, call, rec, x, initial)
    projected = ctx.op("MatMul", x, _w(ctx, call, rec.kernel, "kernel"))
    if rec.input_bias is not None:
        projected = ctx.op("Add", projected, _w(ctx, call, rec.input_bias, "input_bias"))
    if not initial:
        zero = _zeros(ctx, x, [rec.units], dtype)
        initial = [zero] * STATES[rec.kind]
    return scan(ctx, projected, mask, initial, _cell_step(ctx, call, rec), dtype,
                state_dims=[rec.units], step_dims=[GATES[rec.kind] * rec.units],
                backwards=rec.go_backwards, return_sequences=rec.return_sequences,
                zero_output=rec.zero_output_for_mask and not rec.unroll,
                first_output=_zeros(ctx, x, [rec.units], dtype)
                if rec.unroll and mask is not None else None)


def _w(ctx: Builder, call: Call, array: np.ndarray, what: str) -> ir.Value:
    return ctx.const(array, f"{call.name}/{what}")


# --- the fused ONNX ops --------------------------------------------------------------------------

def _fused(ctx: Builder, call: Call, rec: Recurrence, x: ir.Value,
           initial: list[ir.Value]) -> Result:
    u, gates = rec.units, GATES[rec.kind]
    kernel, recurrent = rec.kernel, rec.recurrent_kernel
    input_bias = rec.input_bias if rec.input_bias is not None else np.zeros(gates * u,
                                                                            kernel.dtype)
    recurrent_bias = rec.recurrent_bias if rec.recurrent_bias is not None else \
        np.zeros_like(input_bias)
    if rec.kind == "LSTM":
        kernel, recurrent, input_bias, recurrent_bias = (
            _reorder(a, u, LSTM_TO_ONNX) for a in (kernel, recurrent, input_bias, recurrent_bias))
    w = ctx.const(kernel.T[None], f"{call.name}/W")
    r = ctx.const(recurrent.T[None], f"{call.name}/R")
    b = ctx.const(np.concatenate([input_bias, recurrent_bias])[None], f"{call.name}/B")
    if rec.go_backwards:
        x = _reverse_time(ctx, x)  # outputs then come in processing order, as Keras's do
    h0 = [ctx.unsqueeze(s, [0]) for s in initial]
    time_major = ctx.transpose(x, [1, 0, 2])
    attrs: dict = {"hidden_size": u, "activations": _fused_activations(rec)}
    if rec.kind == "GRU":
        attrs["linear_before_reset"] = int(rec.reset_after)
    op_inputs = [time_major, w, r, b, None] + h0
    outs = ctx.ops(rec.kind if rec.kind != "SimpleRNN" else "RNN", *op_inputs,
                   outputs=STATES[rec.kind] + 1, **attrs)
    states = [ctx.squeeze(s, [0]) for s in outs[1:]]
    sequence = None
    if rec.return_sequences:
        sequence = ctx.transpose(ctx.squeeze(outs[0], [1]), [1, 0, 2])
    return Result(sequence, states[0], states)


def _fused_activations(rec: Recurrence) -> list[str] | None:
    """The fused op's ``activations`` (f, g[, h]), or None where it is not exact everywhere."""
    if rec.kind == "GRU" and not rec.reset_after:
        return None  # linear_before_reset=0, which cuDNN cannot do
    gate = "" if rec.kind == "SimpleRNN" else rec.recurrent_activation
    return FUSED_ACTIVATIONS[rec.kind].get((rec.activation, gate))


def _split(ctx: Builder, x: ir.Value, sizes: list[int], axis: int) -> list[ir.Value]:
    # Sizes as the 'split' input (valid in every opset 13-21); Builder.split also sets
    # num_outputs from opset 18, which ONNX forbids together with 'split'.
    return ctx.ops("Split", x, ctx.ints(sizes, f"{ctx.prefix}split"), outputs=len(sizes),
                   axis=axis)


def _reorder(a: np.ndarray, units: int, order: list[int]) -> np.ndarray:
    blocks = [a[..., g * units:(g + 1) * units] for g in order]
    return np.concatenate(blocks, axis=-1)


def _reverse_time(ctx: Builder, x: ir.Value, axis: int = 1) -> ir.Value:
    return ctx.slice(x, [-1], [INT64_MIN], [axis], [-1])


# --- the Scan formulation ------------------------------------------------------------------------

@dataclass
class _Cell:
    """What a SimpleRNN/GRU/LSTM step needs inside the Scan body."""

    rec: Recurrence
    layer: str
    dtype: str
    recurrent_kernel: ir.Value  # (units, gates * units); GRU reset_after=False: z, r columns
    recurrent_h: ir.Value | None  # GRU reset_after=False: the h columns, applied to r * h
    recurrent_bias: ir.Value | None  # GRU reset_after=True

    def act(self, b: Builder, v: ir.Value) -> ir.Value:
        return activation(b, v, self.rec.activation, layer=self.layer)

    def gate(self, b: Builder, v: ir.Value) -> ir.Value:
        return activation(b, v, self.rec.recurrent_activation, layer=self.layer)


def _cell_step(ctx: Builder, call: Call, rec: Recurrence) -> Step:
    u, kernel = rec.units, rec.recurrent_kernel
    split_h = rec.kind == "GRU" and not rec.reset_after
    cell = _Cell(rec, call.name, call.spec.dtype,
                 _w(ctx, call, kernel[:, :2 * u] if split_h else kernel, "recurrent_kernel"),
                 _w(ctx, call, kernel[:, 2 * u:], "recurrent_kernel_h") if split_h else None,
                 None if rec.recurrent_bias is None else
                 _w(ctx, call, rec.recurrent_bias, "recurrent_bias"))
    step = {"SimpleRNN": _simple_step, "LSTM": _lstm_step, "GRU": _gru_step}[rec.kind]
    return lambda b, xt, states: step(b, cell, xt, states)


def _simple_step(b: Builder, cell: _Cell, xt: ir.Value, states: list[ir.Value]
                 ) -> list[ir.Value]:
    return [cell.act(b, b.op("Add", xt, b.op("MatMul", states[0], cell.recurrent_kernel)))]


def _lstm_step(b: Builder, cell: _Cell, xt: ir.Value, states: list[ir.Value]) -> list[ir.Value]:
    h, c = states
    z = b.op("Add", xt, b.op("MatMul", h, cell.recurrent_kernel))
    i, f, g, o = _split(b, z, [cell.rec.units] * 4, axis=-1)  # Keras order: i, f, c, o
    c = b.op("Add", b.op("Mul", cell.gate(b, f), c), b.op("Mul", cell.gate(b, i), cell.act(b, g)))
    return [b.op("Mul", cell.gate(b, o), cell.act(b, c)), c]


def _gru_step(b: Builder, cell: _Cell, xt: ir.Value, states: list[ir.Value]) -> list[ir.Value]:
    h, u = states[0], cell.rec.units
    x_z, x_r, x_h = _split(b, xt, [u] * 3, axis=-1)  # Keras order: z, r, h
    inner = b.op("MatMul", h, cell.recurrent_kernel)
    if cell.recurrent_bias is not None:
        inner = b.op("Add", inner, cell.recurrent_bias)
    if cell.rec.reset_after:
        h_z, h_r, h_h = _split(b, inner, [u] * 3, axis=-1)
    else:
        h_z, h_r = _split(b, inner, [u] * 2, axis=-1)
    z = cell.gate(b, b.op("Add", x_z, h_z))
    r = cell.gate(b, b.op("Add", x_r, h_r))
    if cell.rec.reset_after:  # the reset gate after the matrix product
        recurrent_h = b.op("Mul", r, h_h)
    else:
        recurrent_h = b.op("MatMul", b.op("Mul", r, h), cell.recurrent_h)
    hh = cell.act(b, b.op("Add", x_h, recurrent_h))
    # h = z * h_prev + (1 - z) * hh, in Keras's order of operations
    one_minus = b.op("Sub", _scalar(b, 1.0, cell.dtype), z)
    return [b.op("Add", b.op("Mul", z, h), b.op("Mul", one_minus, hh))]


def _scalar(ctx: Builder, value: float, dtype: str) -> ir.Value:
    return ctx.const(np.asarray(value, dtype=np.dtype(dtype)), f"{ctx.prefix}scalar")


def scan(ctx: Builder, xs: ir.Value, mask: ir.Value | None, initial: list[ir.Value], step: Step,
         dtype: str, *, state_dims: list[int], step_dims: list[int], backwards: bool,
         return_sequences: bool, zero_output: bool, first_output: ir.Value | None = None
         ) -> Result:
    """Run ``step`` over axis 1 of ``xs`` (batch, time, *step_dims), with Keras's mask
    semantics; every state is (batch, *state_dims).

    With a mask the output is carried as one more state: a masked step repeats it (from
    ``first_output``, default the initial h), and its last value is the layer's last output
    (zeros under ``zero_output``, like the last step's).
    """
    carry_out = mask is not None
    body = _ScanBody(ctx, dtype, state_dims)
    graph, n_state_out = body.build(step, len(initial), step_dims, masked=carry_out,
                                    zero_output=zero_output, return_sequences=return_sequences)
    scan_inputs = [xs]
    if mask is not None:  # (batch, time, 1, ...): broadcasts against the states at each step
        ones = list(range(2, 2 + len(state_dims)))
        scan_inputs.append(ctx.unsqueeze(ctx.cast(mask, "bool"), ones))
    n = len(scan_inputs)
    carried = list(initial) + ([first_output if first_output is not None else initial[0]]
                               if carry_out else [])
    results = ctx.ops("Scan", *carried, *scan_inputs, outputs=len(graph.outputs), body=graph,
                      num_scan_inputs=n, scan_input_axes=[1] * n,
                      scan_input_directions=[1] * n if backwards else None,
                      scan_output_axes=[1] if return_sequences else None)
    states = list(results[:len(initial)])
    last = results[len(initial)] if carry_out else states[0]
    sequence = results[n_state_out] if return_sequences else None
    return Result(sequence, last, states)


class _ScanBody:
    """Builds a Scan body graph: state inputs, then the step's scan inputs (x_t, mask_t)."""

    def __init__(self, ctx: Builder, dtype: str, state_dims: list[int]) -> None:
        self.b = Builder(ctx.opset)
        # One name space with the outer graph: a body value must not shadow an outer one.
        self.b._names = ctx._names  # the Builder keeps no other per-graph state
        self.b.prefix = f"{ctx.prefix}step/"
        self.outer_prefix = ctx.prefix
        self.dtype = dtype
        self.elem = ir.TensorType(ONNX_DTYPES.get(dtype, ir.DataType.FLOAT))
        self.state_dims = state_dims

    def value(self, name: str, dims: list[int], vtype: ir.TypeProtocol | None = None
              ) -> ir.Value:
        # onnxruntime wants the shapes of a Scan body's inputs and outputs (opset 13 at least).
        return ir.Value(name=self.b.unique(f"{self.b.prefix}{name}"), type=vtype or self.elem,
                        shape=ir.Shape([None, *dims]))

    def build(self, step: Step, n_states: int, step_dims: list[int], *, masked: bool,
              zero_output: bool, return_sequences: bool) -> tuple[ir.Graph, int]:
        b = self.b
        state_in = [self.value(f"state{i}_in", self.state_dims) for i in range(n_states)]
        prev_in = self.value("prev_out_in", self.state_dims) if masked else None
        x_in = self.value("x_t", step_dims)
        m_in = self.value("mask_t", [1] * len(self.state_dims),
                          ir.TensorType(ir.DataType.BOOL)) if masked else None
        new = step(b, x_in, state_in)
        out = new[0]
        if m_in is not None:
            # Keras: a masked step keeps the states and repeats the previous output (or zeros).
            new = [b.op("Where", m_in, n, s) for n, s in zip(new, state_in)]
            out = b.op("Where", m_in, out, _scalar(b, 0.0, self.dtype) if zero_output else prev_in)
        state_out = list(new) + ([out] if masked else [])
        inputs = state_in + ([prev_in] if prev_in else []) + [x_in] + ([m_in] if m_in else [])
        outputs: list[ir.Value] = []
        for v in state_out + ([out] if return_sequences else []):
            if v in outputs or v in inputs:  # each body output must be a distinct value
                v = b.op("Identity", v)
            v.type, v.shape = self.elem, ir.Shape([None, *self.state_dims])
            outputs.append(v)
        for node in b.tape.nodes:
            for v in node.outputs:
                if v.name is None:
                    v.name = b.unique(f"{b.prefix}v")
        graph = ir.Graph(inputs, outputs, nodes=b.tape.nodes, initializers=b.tape.initializers,
                         name=b.unique(f"{self.outer_prefix}body"))
        return graph, len(state_out)


def _zeros(ctx: Builder, like: ir.Value, tail: list[int], dtype: str) -> ir.Value:
    """Zeros of shape (batch of ``like``, *tail); the batch stays dynamic."""
    batch = ctx.slice(ctx.op("Shape", like), [0], [1], [0])
    shape = ctx.op("Concat", batch, ctx.ints(tail, f"{ctx.prefix}state_shape"), axis=0)
    zero = ctx.const(np.zeros((), dtype=np.dtype(dtype)), f"{ctx.prefix}zero")
    return ctx.op("Expand", zero, shape)


# --- layers --------------------------------------------------------------------------------------

def _masks(call: Call) -> tuple[ir.Value | None, ir.Value | None]:
    """(the mask the layer computes with, the mask its outputs carry on).

    Keras 3 (``Layer.__call__``) fills a layer's ``mask`` argument with the input's Keras mask
    only when the call has exactly one tensor argument: an RNN given ``initial_state`` runs
    unmasked. The mask its outputs carry is that input mask all the same. An explicit ``mask=``
    argument (Keras 3 records the mask a layer consumes that way) is used and carried.
    """
    explicit = call.kwargs.get("mask")
    if isinstance(explicit, ir.Value):
        return explicit, explicit
    incoming = call.masks[0] if call.masks else None
    nodes = call.layer.inbound_nodes
    if call.node >= len(nodes):  # a call made up by a wrapper: its inputs are all positional
        return (incoming if len(call.inputs) == 1 else None), incoming
    node = nodes[call.node]
    tensor_args = sum(1 for a in list(node.args) + list(node.kwargs.values()) if _has_tensor(a))
    return (incoming if tensor_args == 1 else None), incoming


def _has_tensor(obj: object) -> bool:
    if isinstance(obj, TensorRef):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_has_tensor(o) for o in obj)
    if isinstance(obj, dict):
        return any(_has_tensor(o) for o in obj.values())
    return False


def _initial_state(call: Call) -> list[ir.Value]:
    given = call.kwargs.get("initial_state")
    if given is None:
        return list(call.inputs[1:])
    return list(given) if isinstance(given, (list, tuple)) else [given]


@LOWERINGS.register("SimpleRNN", "GRU", "LSTM", relowered=True)
def lower_rnn(ctx: Builder, call: Call) -> Lowered:
    """Keras SimpleRNN/GRU/LSTM -> ONNX RNN/GRU/LSTM where that is exact, else a Scan (see the
    module); the sequence or the last output, then the final states with return_state."""
    kind = call.layer.class_name
    rec = recurrence(call, kind, call.config)
    mask, carried = _masks(call)
    result = run_recurrence(ctx, call, rec, call.x, call.spec.dtype, mask, _initial_state(call))
    out = result.output(rec.return_sequences)
    outputs = [out] + (result.states if call.config.get("return_state") else [])
    out_mask = carried if rec.return_sequences else None
    return Lowered(outputs, [out_mask] + [None] * (len(outputs) - 1))


@LOWERINGS.register("Bidirectional", relowered=True)
def lower_bidirectional(ctx: Builder, call: Call) -> Lowered:
    """Keras Bidirectional over SimpleRNN/GRU/LSTM -> a forward and a backward recurrence (the
    backward sequence reversed back to input order), merged per merge_mode: concat, sum, mul, ave,
    or None (both outputs)."""
    cfg = call.config
    forward = cfg["layer"]
    backward = cfg.get("backward_layer") or {
        "class_name": forward["class_name"],
        "config": {**forward["config"],
                   "go_backwards": not forward["config"].get("go_backwards", False)}}
    mask, carried = _masks(call)
    initial = _initial_state(call)
    half = len(initial) // 2
    results, return_sequences = [], False
    for entry, prefix, init in ((forward, "forward_layer/", initial[:half]),
                                (backward, "backward_layer/", initial[half:])):
        kind = entry["class_name"]
        if kind not in GATES:
            raise UnsupportedError(f"Bidirectional over {kind} (supported: "
                                   f"{', '.join(GATES)})", layer=call.name)
        return_sequences = bool(entry["config"].get("return_sequences", False))
        # Keras's Bidirectional forces zero_output_for_mask = return_sequences on both layers.
        sub = {**entry["config"], "zero_output_for_mask": return_sequences}
        rec = recurrence(call, kind, sub, prefix)
        results.append(run_recurrence(ctx, call, rec, call.x, call.spec.dtype, mask, init))
    fwd, bwd = results
    y = fwd.output(return_sequences)
    y_rev = bwd.output(return_sequences)
    if return_sequences:
        y_rev = _reverse_time(ctx, y_rev)  # back to input time order
    mode = cfg.get("merge_mode", "concat")
    merged = _merge(ctx, mode, y, y_rev, call)
    states = fwd.states + bwd.states if forward["config"].get("return_state") else []
    out_mask = carried if return_sequences else None
    return Lowered(merged + states, [out_mask] * len(merged) + [None] * len(states))


def _merge(ctx: Builder, mode: str | None, y: ir.Value, y_rev: ir.Value, call: Call
           ) -> list[ir.Value]:
    if mode is None:
        return [y, y_rev]
    if mode == "concat":
        return [ctx.op("Concat", y, y_rev, axis=-1)]
    if mode == "sum":
        return [ctx.op("Add", y, y_rev)]
    if mode == "mul":
        return [ctx.op("Mul", y, y_rev)]
    if mode == "ave":
        return [ctx.op("Div", ctx.op("Add", y, y_rev), ctx.scalar(2.0, call.spec))]
    raise UnsupportedError(f"merge_mode {mode!r} (supported: concat, sum, mul, ave, None)",
                           layer=call.name)


@LOWERINGS.register("TimeDistributed", relowered=True)
def lower_time_distributed(ctx: Builder, call: Call) -> Lowered:
    """Fold time into the batch, apply the wrapped layer's own lowering, unfold."""
    entry = call.config["layer"]
    inner = Layer(entry["class_name"], call.name, entry["config"],
                  weights=[Weight(w.path[len("layer/"):], w.array, w.trainable)
                           for w in call.layer.weights if w.path.startswith("layer/")])
    spec = call.spec
    rest = list(spec.shape[2:])
    x = call.x
    static_rest = static_dims(rest)
    if static_rest is not None:
        folded = ctx.reshape(x, [-1] + static_rest)
    else:
        tail = ctx.slice(ctx.op("Shape", x), [2], [INT64_MAX], [0])
        folded = ctx.op("Reshape", x, ctx.op("Concat", ctx.ints([-1], f"{ctx.prefix}fold"),
                                             tail, axis=0))
    out_spec = call.out_specs[0]
    inner_call = Call(layer=inner, node=0, inputs=[folded],
                      in_specs=[TensorSpec((None, *rest), spec.dtype)],
                      out_specs=[TensorSpec((None, *out_spec.shape[2:]), out_spec.dtype)])
    result = LOWERINGS.require(inner.class_name, layer=call.name)(ctx, inner_call)
    outs = result.outputs if isinstance(result, Lowered) else list(result)
    if len(outs) != 1:
        raise UnsupportedError(f"TimeDistributed over {inner.class_name} with {len(outs)} "
                               "outputs", layer=call.name)
    y_rest = static_dims(out_spec.shape[2:])
    time = spec.shape[1]
    if time is not None and y_rest is not None:
        y = ctx.reshape(outs[0], [-1, time] + y_rest)
    else:
        lead = ctx.slice(ctx.op("Shape", x), [0], [2], [0])
        tail = ctx.slice(ctx.op("Shape", outs[0]), [1], [INT64_MAX], [0])
        y = ctx.op("Reshape", outs[0], ctx.op("Concat", lead, tail, axis=0))
    return Lowered([y], [_masks(call)[1]])  # TimeDistributed passes its input's mask on


# --- ConvLSTM ------------------------------------------------------------------------------------

@LOWERINGS.register("ConvLSTM2D", relowered=True)
def lower_conv_lstm(ctx: Builder, call: Call) -> Lowered:
    """ConvLSTM: the input convolution for every step at once (time folded into the batch),
    then a Scan whose body does the recurrent 'same' convolution; channels-first inside."""
    cfg = call.config
    if cfg.get("stateful"):
        raise UnsupportedError("stateful=True: an ONNX graph holds no state between runs",
                               layer=call.name)
    n = call.rank - 3  # spatial dimensions
    channels_last = cfg.get("data_format") != "channels_first"
    x = ctx.transpose(call.x, [0, 1, n + 2] + list(range(2, n + 2))) if channels_last \
        else call.x  # (B, T, C, *S)
    xw, state_dims = _conv_lstm_inputs(ctx, call, x, n, channels_last)
    initial = _initial_state(call)
    if initial:
        initial = [ctx.to_channels_first(s, n + 2) if channels_last else s for s in initial]
    else:
        initial = [_zeros(ctx, x, state_dims, call.spec.dtype)] * 2
    mask, carried = _masks(call)
    unroll, return_sequences = bool(cfg.get("unroll")), bool(cfg.get("return_sequences"))
    result = scan(ctx, xw, mask, initial, _conv_lstm_step(ctx, call, n, state_dims),
                  call.spec.dtype, state_dims=state_dims,
                  step_dims=[4 * state_dims[0]] + state_dims[1:],
                  backwards=bool(cfg.get("go_backwards")), return_sequences=return_sequences,
                  zero_output=bool(cfg.get("zero_output_for_mask")) and not unroll,
                  first_output=_zeros(ctx, x, state_dims, call.spec.dtype)
                  if unroll and mask is not None else None)
    if return_sequences:
        out = result.output(True)
        if channels_last:
            out = ctx.transpose(out, [0, 1] + list(range(3, n + 3)) + [2])
    else:
        out = ctx.to_channels_last(result.last, n + 2) if channels_last else result.last
    states = [ctx.to_channels_last(s, n + 2) if channels_last else s for s in result.states]
    outputs = [out] + (states if cfg.get("return_state") else [])
    return Lowered(outputs, [carried if return_sequences else None] + [None] * (len(outputs) - 1))


def _conv_lstm_inputs(ctx: Builder, call: Call, x: ir.Value, n: int, channels_last: bool
                      ) -> tuple[ir.Value, list[int]]:
    """The input convolution of every step, (B, T, 4 * filters, *S'), and the state's
    (filters, *S')."""
    cfg, spec = call.config, call.spec.shape
    step_shape = static_dims([spec[-1], *spec[2:-1]] if channels_last else list(spec[2:]))
    if step_shape is None:
        raise UnsupportedError("ConvLSTM with dynamic spatial or channel dimensions",
                               layer=call.name)
    kernel = call.weight("cell/kernel")  # (*k, in, 4 filters)
    strides = _tuple(cfg.get("strides", 1), n)
    dilation = _tuple(cfg.get("dilation_rate", 1), n)
    ksize = list(kernel.shape[:n])
    pads = _input_pads(cfg.get("padding", "valid"), step_shape[1:], ksize, strides, dilation)
    bias = ctx.const(call.weight("cell/bias"), f"{call.name}/bias") \
        if call.has_weight("cell/bias") else None
    xw = ctx.op("Conv", ctx.reshape(x, [-1] + step_shape),
                ctx.const(kernel.transpose(_oik_perm(n)), f"{call.name}/kernel"), bias,
                kernel_shape=ksize, strides=strides, dilations=dilation, pads=pads)
    out = call.out_specs[0].shape[2 if cfg.get("return_sequences") else 1:]
    out_spatial = static_dims(out[:-1] if channels_last else out[1:])
    if out_spatial is None:
        raise UnsupportedError("ConvLSTM with dynamic output spatial dimensions",
                               layer=call.name)
    state_dims = [int(cfg["filters"])] + out_spatial
    gates = [4 * state_dims[0]] + state_dims[1:]
    if spec[1] is not None:
        return ctx.reshape(xw, [-1, spec[1]] + gates), state_dims
    lead = ctx.slice(ctx.op("Shape", x), [0], [2], [0])
    shape = ctx.op("Concat", lead, ctx.ints(gates, f"{ctx.prefix}shape"), axis=0)
    return ctx.op("Reshape", xw, shape), state_dims


def _oik_perm(n: int) -> list[int]:
    """Keras conv kernel (*k, in, out) -> ONNX (out, in, *k)."""
    return [n + 1, n] + list(range(n))


def _conv_lstm_step(ctx: Builder, call: Call, n: int, state_dims: list[int]) -> Step:
    """LSTM gates over the recurrent 'same' convolution of h, in Keras's i, f, c, o order."""
    cfg, filters = call.config, state_dims[0]
    recurrent = call.weight("cell/recurrent_kernel")  # (*k, filters, 4 filters)
    ksize = list(recurrent.shape[:n])
    r_kernel = ctx.const(recurrent.transpose(_oik_perm(n)), f"{call.name}/recurrent_kernel")
    pads = _input_pads("same", state_dims[1:], ksize, [1] * n, [1] * n)
    act_name = _name(cfg.get("activation", "tanh"))
    gate_name = _name(cfg.get("recurrent_activation", "sigmoid"))

    def step(b: Builder, xt: ir.Value, states: list[ir.Value]) -> list[ir.Value]:
        def act(v: ir.Value, name: str = act_name) -> ir.Value:
            return activation(b, v, name, layer=call.name)
        h, c = states
        z = b.op("Add", xt, b.op("Conv", h, r_kernel, kernel_shape=ksize, pads=pads))
        i, f, g, o = _split(b, z, [filters] * 4, axis=1)
        c = b.op("Add", b.op("Mul", act(f, gate_name), c), b.op("Mul", act(i, gate_name), act(g)))
        return [b.op("Mul", act(o, gate_name), act(c)), c]

    return step


def _input_pads(padding: str, spatial: list[int], ksize: list[int], strides: list[int],
                dilation: list[int]) -> list[int]:
    """ONNX pads for Keras 'valid'/'same' (TF rule: the odd pixel goes at the end)."""
    if padding == "valid":
        return [0] * (2 * len(spatial))
    if padding != "same":
        raise UnsupportedError(f"ConvLSTM padding {padding!r} (supported: valid, same)")
    split = [same_pads(size, k, s, d) for size, k, s, d in zip(spatial, ksize, strides, dilation)]
    return [before for before, _ in split] + [after for _, after in split]
