"""Recurrent layers and the wrappers: SimpleRNN, GRU, LSTM, ConvLSTM1D/2D/3D, Bidirectional,
TimeDistributed. The only Python loops here are over time steps.

Gate layouts (kernel columns, recurrent kernel columns and bias, in blocks of ``units``):

* LSTM: ``i, f, c, o``; ``c' = f c + i act(z_c)``, ``h' = o act(c')``.
* GRU: ``z, r, h``. ``reset_after=True`` (the Keras 2.x/3 default): bias ``(2, 3 units)`` =
  (input bias, recurrent bias), ``hh = act(x W_h + b_h + r * (h U_h + b'_h))``;
  ``reset_after=False``: bias ``(3 units,)``, ``hh = act(x W_h + b_h + (r * h) U_h)``.
  ``h' = z h + (1 - z) hh``.
* SimpleRNN: ``h' = act(x W + b + h U)``.
* ConvLSTM: as LSTM with convolutions; input convolutions use the layer's strides, padding and
  dilation; recurrent convolutions are ``same``, stride 1, no dilation.

Masks (Keras 3 ``backend.rnn``, JAX backend): a masked step keeps the previous states. Its
output is 0 with ``zero_output_for_mask`` and otherwise the previous *first state* (h), except
with ``unroll=True`` where it is the previous output (zeros before the first step) and
``zero_output_for_mask`` is ignored. The last output is the output of the last step processed,
so with ``zero_output_for_mask`` and a masked final step it is 0. With ``go_backwards`` the
steps run from the end and ``return_sequences`` gives them in processing (reversed) order.
Bidirectional forces ``zero_output_for_mask = return_sequences`` on both directions, reverses
the backward sequence back to time order, and merges.
"""

from __future__ import annotations

import numpy as np

from ._base import (
    Call,
    Masked,
    as_float,
    channels_first,
    dispatch,
    ints,
    register,
    unsupported,
)
from .activations import activation
from .conv import conv

_STATES = {"SimpleRNN": 1, "GRU": 1, "LSTM": 2, "ConvLSTM1D": 2, "ConvLSTM2D": 2,
           "ConvLSTM3D": 2}


# --- the time loop ------------------------------------------------------------------------------

def scan(step, xs: np.ndarray, states: list[np.ndarray], mask: np.ndarray | None, *,
         go_backwards: bool, zero_output_for_mask: bool, unroll: bool
         ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run ``step(t, states) -> (output, states)`` over time; (outputs (B, T, ...), states)."""
    steps = xs.shape[1]
    outputs: list[np.ndarray] = []
    for t in (range(steps - 1, -1, -1) if go_backwards else range(steps)):
        out, new_states = step(t, states)
        if mask is not None:
            keep = mask[:, t].reshape((-1,) + (1,) * (out.ndim - 1))
            if unroll:
                prev = outputs[-1] if outputs else np.zeros_like(out)
            else:
                prev = np.zeros_like(out) if zero_output_for_mask else states[0]
            out = np.where(keep, out, prev)
            new_states = [np.where(keep.reshape((-1,) + (1,) * (s.ndim - 1)), n, s)
                          for n, s in zip(new_states, states)]
        outputs.append(out)
        states = new_states
    return np.stack(outputs, axis=1), states


def _initial_states(call: Call, count: int) -> list[np.ndarray] | None:
    given = call.inputs[1:] + list(_flat(call.kwargs.get("initial_state")))
    if not given:
        return None
    if len(given) != count:
        raise unsupported(call, f"got {len(given)} initial states, expected {count}")
    return [as_float(s, call.cfg) for s in given]


def _flat(obj) -> list[np.ndarray]:
    if obj is None:
        return []
    if isinstance(obj, np.ndarray):
        return [obj]
    return [a for v in obj for a in _flat(v)]


def _time_mask(call: Call) -> np.ndarray | None:
    mask = call.mask
    if mask is None:
        return None
    kept = np.asarray(mask).astype(bool)
    while kept.ndim > 2:  # (B, T, 1) and the like: a step is kept if any entry is
        kept = np.any(kept, axis=-1)
    return kept


# --- cells --------------------------------------------------------------------------------------

def _simple_rnn_step(call: Call, x: np.ndarray):
    cfg, w = call.cfg, call.w
    act = activation(cfg.get("activation", "tanh"), call.name)
    xw = x @ w["cell/kernel"].astype(x.dtype)
    if cfg.get("use_bias", True) and w.has("cell/bias"):
        xw = xw + w["cell/bias"].astype(x.dtype)
    recurrent = w["cell/recurrent_kernel"].astype(x.dtype)

    def step(t, states):
        h = act(xw[:, t] + states[0] @ recurrent)
        return h, [h]
    return step


def _lstm_step(call: Call, x: np.ndarray):
    cfg, w = call.cfg, call.w
    act = activation(cfg.get("activation", "tanh"), call.name)
    rec_act = activation(cfg.get("recurrent_activation", "sigmoid"), call.name)
    xw = x @ w["cell/kernel"].astype(x.dtype)
    if cfg.get("use_bias", True) and w.has("cell/bias"):
        xw = xw + w["cell/bias"].astype(x.dtype)
    recurrent = w["cell/recurrent_kernel"].astype(x.dtype)
    u = recurrent.shape[0]

    def step(t, states):
        h, c = states
        z = xw[:, t] + h @ recurrent
        i, f = rec_act(z[:, :u]), rec_act(z[:, u:2 * u])
        c = f * c + i * act(z[:, 2 * u:3 * u])
        h = rec_act(z[:, 3 * u:]) * act(c)
        return h, [h, c]
    return step


def _gru_step(call: Call, x: np.ndarray):
    cfg, w = call.cfg, call.w
    act = activation(cfg.get("activation", "tanh"), call.name)
    rec_act = activation(cfg.get("recurrent_activation", "sigmoid"), call.name)
    reset_after = cfg.get("reset_after", True)
    recurrent = w["cell/recurrent_kernel"].astype(x.dtype)
    u = recurrent.shape[0]
    bias = w.get("cell/bias") if cfg.get("use_bias", True) else None
    if bias is not None:
        bias = bias.astype(x.dtype)
        if reset_after and bias.ndim != 2:
            raise unsupported(call, f"reset_after=True needs a (2, {3 * u}) bias, got {bias.shape}")
    in_bias = None if bias is None else (bias[0] if reset_after else bias)
    rec_bias = bias[1] if (bias is not None and reset_after) else None
    xw = x @ w["cell/kernel"].astype(x.dtype)
    if in_bias is not None:
        xw = xw + in_bias

    def step(t, states):
        h = states[0]
        xz, xr, xh = xw[:, t, :u], xw[:, t, u:2 * u], xw[:, t, 2 * u:]
        if reset_after:
            inner = h @ recurrent
            if rec_bias is not None:
                inner = inner + rec_bias
            z, r = rec_act(xz + inner[:, :u]), rec_act(xr + inner[:, u:2 * u])
            hh = act(xh + r * inner[:, 2 * u:])
        else:
            inner = h @ recurrent[:, :2 * u]
            z, r = rec_act(xz + inner[:, :u]), rec_act(xr + inner[:, u:])
            hh = act(xh + (r * h) @ recurrent[:, 2 * u:])
        h = z * h + (1 - z) * hh
        return h, [h]
    return step


def _run_rnn(call: Call, x: np.ndarray, mask, states, *, zero_output=None):
    cfg = call.cfg
    x = as_float(x, cfg)
    units = int(cfg["units"])
    kind = call.class_name
    if states is None:
        states = [np.zeros((x.shape[0], units), x.dtype) for _ in range(_STATES[kind])]
    make = {"SimpleRNN": _simple_rnn_step, "LSTM": _lstm_step, "GRU": _gru_step}[kind]
    zero = cfg.get("zero_output_for_mask", False) if zero_output is None else zero_output
    outputs, states = scan(make(call, x), x, states, mask,
                           go_backwards=bool(cfg.get("go_backwards")),
                           zero_output_for_mask=bool(zero), unroll=bool(cfg.get("unroll")))
    return outputs, states


def _rnn_result(call: Call, outputs: np.ndarray, states: list, mask) -> Masked:
    cfg = call.cfg
    seq = bool(cfg.get("return_sequences"))
    out = outputs if seq else outputs[:, -1]
    values = [out] + (list(states) if cfg.get("return_state") else [])
    masks = [mask if seq else None] + [None] * (len(values) - 1)
    return Masked(values, masks)


def _rnn_layer(call: Call, zero_output=None) -> Masked:
    mask = _time_mask(call)
    states = _initial_states(call, _STATES[call.class_name])
    outputs, states = _run_rnn(call, call.x, mask, states, zero_output=zero_output)
    return _rnn_result(call, outputs, states, mask)


for _name in ("SimpleRNN", "GRU", "LSTM"):
    register(_name)(_rnn_layer)


# --- ConvLSTM -----------------------------------------------------------------------------------

def _conv_lstm(n: int):
    def fn(call: Call, zero_output=None) -> Masked:
        cfg, w = call.cfg, call.w
        x = as_float(call.x, cfg)
        cf = channels_first(cfg)
        if cf:  # (B, T, C, *S) -> (B, T, *S, C)
            x = np.moveaxis(x, 2, -1)
        strides = ints(cfg.get("strides", 1), n, "strides")
        dilation = ints(cfg.get("dilation_rate", 1), n, "dilation_rate")
        padding = str(cfg.get("padding", "valid")).lower()
        kernel = w["cell/kernel"].astype(x.dtype)
        recurrent = w["cell/recurrent_kernel"].astype(x.dtype)
        f = recurrent.shape[-1] // 4
        batch, steps = x.shape[:2]
        # Every step's input convolution at once, time folded into the batch.
        xw = conv(x.reshape(batch * steps, *x.shape[2:]), kernel, strides, dilation, padding)
        if cfg.get("use_bias", True) and w.has("cell/bias"):
            xw = xw + w["cell/bias"].astype(x.dtype)
        xw = xw.reshape(batch, steps, *xw.shape[1:])
        act = activation(cfg.get("activation", "tanh"), call.name)
        rec_act = activation(cfg.get("recurrent_activation", "sigmoid"), call.name)
        ones = (1,) * n

        def step(t, states):
            h, c = states
            z = xw[:, t] + conv(h, recurrent, ones, ones, "same")
            i, fg = rec_act(z[..., :f]), rec_act(z[..., f:2 * f])
            c = fg * c + i * act(z[..., 2 * f:3 * f])
            h = rec_act(z[..., 3 * f:]) * act(c)
            return h, [h, c]

        states = _initial_states(call, 2)
        if states is None:
            states = [np.zeros((batch, *xw.shape[2:-1], f), x.dtype) for _ in range(2)]
        elif cf:
            states = [np.moveaxis(s, 1, -1) for s in states]
        mask = _time_mask(call)
        zero = cfg.get("zero_output_for_mask", False) if zero_output is None else zero_output
        outputs, states = scan(step, xw, states, mask, go_backwards=bool(cfg.get("go_backwards")),
                               zero_output_for_mask=bool(zero), unroll=bool(cfg.get("unroll")))
        if cf:
            outputs = np.moveaxis(outputs, -1, 2)
            states = [np.moveaxis(s, -1, 1) for s in states]
        return _rnn_result(call, outputs, states, mask)
    return fn


for _n in (1, 2, 3):
    register(f"ConvLSTM{_n}D")(_conv_lstm(_n))


# --- wrappers -----------------------------------------------------------------------------------

@register("Bidirectional")
def _bidirectional(call: Call) -> Masked:
    cfg = call.cfg
    forward = cfg["layer"]
    backward = cfg.get("backward_layer")
    if backward is None:
        backward = {"class_name": forward["class_name"],
                    "config": {**forward["config"], "go_backwards": True}}
    if forward["class_name"] not in _STATES:
        raise unsupported(call, f"wraps a {forward['class_name']}, not a recurrent layer")
    seq = bool(forward["config"].get("return_sequences"))
    mask = _time_mask(call)
    initial = _flat(call.kwargs.get("initial_state")) + call.inputs[1:]
    half = len(initial) // 2
    results = []
    for entry, prefix, init in ((forward, "forward_layer", initial[:half]),
                                (backward, "backward_layer", initial[half:])):
        inner = call.inner(entry, prefix, [call.x], [mask],
                           {"initial_state": init} if init else {})
        fn = _rnn_layer if entry["class_name"] in ("SimpleRNN", "GRU", "LSTM") else \
            _conv_lstm(int(entry["class_name"][8]))
        # Bidirectional forces zero_output_for_mask = return_sequences on both directions.
        results.append(fn(inner, zero_output=seq).values)
    (y, *fstates), (y_rev, *bstates) = results
    if seq:
        y_rev = np.flip(y_rev, axis=1)
    mode = cfg.get("merge_mode", "concat")
    merged = {"concat": lambda: [np.concatenate([y, y_rev], axis=-1)],
              "sum": lambda: [y + y_rev], "mul": lambda: [y * y_rev],
              "ave": lambda: [(y + y_rev) / np.float32(2)], None: lambda: [y, y_rev]}
    if mode not in merged:
        raise unsupported(call, f"merge_mode {mode!r}")
    outs = merged[mode]()
    values = outs + fstates + bstates
    out_masks = [mask if seq else None] * len(outs)
    return Masked(values, out_masks + [None] * (len(values) - len(outs)))


@register("TimeDistributed", mask="propagate")
def _time_distributed(call: Call) -> list[np.ndarray]:
    x = call.x
    batch, steps = x.shape[:2]
    folded = x.reshape(batch * steps, *x.shape[2:])
    mask = call.mask
    # Keras hands the wrapped layer mask[:, t]; only a mask with per-step structure survives.
    inner_mask = (np.asarray(mask).reshape(batch * steps, *mask.shape[2:])
                  if mask is not None and np.ndim(mask) > 2 else None)
    inner = call.inner(call.cfg["layer"], "layer", [folded], [inner_mask])
    values = dispatch(inner).values
    return [v.reshape(batch, steps, *v.shape[1:]) for v in values]
