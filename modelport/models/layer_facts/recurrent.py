"""Recurrent layers (their cells included), ConvLSTM, and the wrappers Bidirectional and
TimeDistributed, whose facts are those of the layer they wrap."""

from __future__ import annotations

from functools import partial

from ...errors import FormatError
from .base import (
    VARIABLE_SHAPE_RULES,
    TensorSpec,
    TfjsRule,
    declarer,
    layer_variables,
    shape_rule,
)
from .conv import conv_shape
from .helpers import bias, compute_dtype, leaf, one, out

declare = declarer(__name__)

# --- cells: sub-objects of the recurrent layers, which hold the variables -----------------------


def _cell_variables(config: dict) -> list[str]:
    return ["kernel", "recurrent_kernel"] + bias(config)


declare("LSTMCell", "GRUCell", "SimpleRNNCell", "ConvLSTMCell", variables=leaf(_cell_variables))


def _in_cell(config: dict) -> list[tuple[str, bool]]:
    """A recurrent layer's variables: its cell's (Keras 3: attribute ``cell``)."""
    return [(f"cell/{n}", True) for n in _cell_variables(config)]


# --- recurrent layers ---------------------------------------------------------------------------

def _with_states(cfg: dict, shape: tuple, state: tuple, count: int) -> list[TensorSpec]:
    shapes = [shape] + ([state] * count if cfg.get("return_state") else [])
    return [s for each in shapes for s in out(cfg, each)]


def _rnn(cfg: dict, inputs: list, kwargs: dict, *, states: int) -> list[TensorSpec]:
    batch, steps, _ = one(inputs, 3).shape
    units = int(cfg["units"])
    shape = (batch, steps, units) if cfg.get("return_sequences") else (batch, units)
    return _with_states(cfg, shape, (batch, units), states)


def _recurrent_variable_shapes(config: dict, spec: TensorSpec, gates: int) -> dict[str, tuple]:
    units = int(config["units"])
    bias_shape: tuple = (gates * units,)
    if gates == 3 and config.get("reset_after", True):
        bias_shape = (2, gates * units)
    return {"kernel": (spec.shape[-1], gates * units), "recurrent_kernel": (units, gates * units),
            "bias": bias_shape}


_TIME_MAJOR = TfjsRule(lambda c: bool(c.get("time_major")), "tfjs-layers has no time_major RNNs")

declare("SimpleRNN", shape=partial(_rnn, states=1), variables=_in_cell,
        variable_shapes=partial(_recurrent_variable_shapes, gates=1), tfjs=True,
        tfjs_blockers=(_TIME_MAJOR,))
declare("GRU", shape=partial(_rnn, states=1), variables=_in_cell,
        variable_shapes=partial(_recurrent_variable_shapes, gates=3), tfjs=True,
        tfjs_blockers=(TfjsRule(lambda c: bool(c.get("reset_after")),
                                "tfjs-layers 4.22 does not implement GRU(reset_after=True), the "
                                "Keras default"), _TIME_MAJOR))
declare("LSTM", shape=partial(_rnn, states=2), variables=_in_cell,
        variable_shapes=partial(_recurrent_variable_shapes, gates=4), tfjs=True,
        tfjs_blockers=(_TIME_MAJOR,))


def _conv_lstm(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    x = one(inputs, n + 3)
    one_step = [TensorSpec((x.shape[0], *x.shape[2:]), x.dtype)]
    step = conv_shape(cfg, one_step, {}, n=n)[0].shape
    shape = (step[0], x.shape[1], *step[1:]) if cfg.get("return_sequences") else step
    return _with_states(cfg, shape, step, 2)  # (h, c), each shaped like one step's output


declare("ConvLSTM1D", shape=partial(_conv_lstm, n=1), variables=_in_cell)
declare("ConvLSTM2D", shape=partial(_conv_lstm, n=2), variables=_in_cell, tfjs=True)
declare("ConvLSTM3D", shape=partial(_conv_lstm, n=3), variables=_in_cell)


# --- wrappers -----------------------------------------------------------------------------------

def _inner(entry: dict, inputs: list[TensorSpec]) -> list[TensorSpec]:
    """Outputs of a wrapped layer given as ``{"class_name", "config"}``."""
    cfg = entry["config"]
    return shape_rule(entry["class_name"], cfg.get("name"))(cfg, inputs, {})


def _bidirectional(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    x = one(inputs)
    fwd = _inner(cfg["layer"], [x])
    bwd = _inner(cfg.get("backward_layer") or cfg["layer"], [x])
    mode, f, b = cfg.get("merge_mode", "concat"), fwd[0], bwd[0]
    if mode == "concat":
        fl, bl = f.shape[-1], b.shape[-1]
        last = None if fl is None or bl is None else fl + bl
        merged = [TensorSpec(f.shape[:-1] + (last,), f.dtype)]
    elif mode in ("sum", "mul", "ave", None):
        merged = [f] if mode else [f, b]
    else:
        raise FormatError(f"merge_mode {mode!r} is not concat, sum, mul, ave or None")
    return merged + fwd[1:] + bwd[1:]


def _bidirectional_variables(config: dict) -> list[tuple[str, bool]] | None:
    forward = config["layer"]
    backward = config.get("backward_layer") or forward
    fwd = layer_variables(forward["class_name"], forward["config"])
    bwd = layer_variables(backward["class_name"], backward["config"])
    if fwd is None or bwd is None:
        return None
    return ([(f"forward_layer/{p}", t) for p, t in fwd]
            + [(f"backward_layer/{p}", t) for p, t in bwd])


def _bidirectional_variable_shapes(config: dict, spec: TensorSpec) -> dict[str, tuple]:
    """Both directions' variables, keyed by their last name; where the backward layer's
    shapes differ from the forward one's, that key cannot tell them apart: not checked."""
    expected = [VARIABLE_SHAPE_RULES[inner["class_name"]](inner["config"], spec)
                for inner in (config["layer"], config.get("backward_layer") or config["layer"])]
    if expected[0] != expected[1]:
        raise ValueError("the two directions differ")
    return expected[0]


def mirrored_backward(cfg: dict) -> bool:
    """Whether a Bidirectional's backward layer is the forward one run backwards (the only
    form tfjs-layers builds)."""
    backward = cfg.get("backward_layer")
    if backward is None:
        return True
    forward = cfg.get("layer") or {}
    if backward.get("class_name") != forward.get("class_name"):
        return False
    a = {k: v for k, v in forward.get("config", {}).items() if k not in ("name", "go_backwards")}
    b = {k: v for k, v in backward.get("config", {}).items() if k not in ("name", "go_backwards")}
    return a == b and bool(backward["config"].get("go_backwards")) != bool(
        forward.get("config", {}).get("go_backwards"))


declare("Bidirectional", shape=_bidirectional, variables=_bidirectional_variables,
        variable_shapes=_bidirectional_variable_shapes, tfjs=True, tfjs_blockers=(
            TfjsRule(lambda c: not mirrored_backward(c),
                     "the backward layer is not the mirror of the forward layer; tfjs-layers "
                     "always mirrors"),))


def _time_distributed(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    x = one(inputs, min_rank=3)
    dtype = compute_dtype(cfg) if "float" in x.dtype else x.dtype  # the wrapper autocasts too
    outs = _inner(cfg["layer"], [TensorSpec((x.shape[0], *x.shape[2:]), dtype)])
    return [TensorSpec((o.shape[0], x.shape[1], *o.shape[1:]), o.dtype) for o in outs]


def _time_distributed_variables(config: dict) -> list[tuple[str, bool]] | None:
    inner = config["layer"]
    found = layer_variables(inner["class_name"], inner["config"])
    if found is None:
        return None
    return [(f"layer/{p}", t) for p, t in found]


def _time_distributed_variable_shapes(config: dict, spec: TensorSpec) -> dict[str, tuple]:
    """The wrapped layer's variables, for one time step's input."""
    inner = config["layer"]
    step = TensorSpec(spec.shape[:1] + spec.shape[2:], spec.dtype)
    return VARIABLE_SHAPE_RULES[inner["class_name"]](inner["config"], step)


declare("TimeDistributed", shape=_time_distributed, variables=_time_distributed_variables,
        variable_shapes=_time_distributed_variable_shapes, tfjs=True)
