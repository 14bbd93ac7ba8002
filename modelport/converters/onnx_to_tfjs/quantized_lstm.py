"""onnxruntime's ``com.microsoft`` ``DynamicQuantizeLSTM`` -> TF ops, as its CPU kernel computes it.

``quantize_dynamic`` turns an ONNX ``LSTM`` into this op: W and R stored as 8-bit integers
([D, input, 4H] and [D, H, 4H], i.e. transposed from ONNX's), with a scale per direction (or per
gate column) and a zero point. onnxruntime's kernel (``UniDirectionalLstm`` with quantized
``GemmWeights``) runs each GEMM on 8-bit activations quantized at run time, the way
``DynamicQuantizeLinear`` does (see ``quantized``):

* ``X W``: the whole input [T, B, I] is quantized once per direction (one scale and zero point
  for all of it), multiplied with W in integers, and scaled by ``x_scale * w_scale`` (per
  column where the scale is);
* per step, ``H_{t-1} R``: the hidden state [B, H] is quantized on its own (its own scale and
  zero point, every step; over the whole batch, which onnxruntime does only where it runs the
  batch in one piece: one row, or up to 4 with hidden_size > 256, or one thread. Otherwise it
  splits the batch into one chunk per thread, quantized apart, so its numbers depend on the
  machine: refused, naming ``--batch``), multiplied with R in integers, scaled by
  ``h_scale * r_scale`` and added to that step's ``X W``; then ``Wb + Rb`` (summed once) is
  added and the gates run as in ONNX's ``LSTM`` (order i, o, f, c; peepholes i, o, f).

Here the integer products are float32 ``BatchMatMulV2``/``MatMul`` of the centered integers
(``q - zp``, whole numbers), exact while every partial sum stays below 2**24 in magnitude:
with |q - zp| <= 255 and |w - w_zp| <= 255 that holds for any input where
``255 * sum_k |w_k - w_zp|`` does (checked per column on the constant weights; past it the
conversion logs a warning). onnxruntime reads one zero point per direction (the first: it
requires them equal). The gate activations use TF's sigmoid/tanh against onnxruntime's MLAS
approximations, as the float ``LSTM`` mapping does. A run-time sequence length becomes a
``StatelessWhile`` per direction, as in ``recurrent``. Refused by name: ``sequence_lens``
(onnxruntime then quantizes only the rows up to the longest length), ``clip`` and
``input_forget``, and weights, scales or zero points computed at run time.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_ir as ir

from ...models.tfjs_graph import a_bool, a_int, a_type
from .control_flow import append_item
from .core import Ctx, attr, rule
from .math_ops import reduce
from .quantized import EXACT_LIMIT
from .recurrent import ACTIVATIONS, DEFAULT_ACTS, _initial, _Math, steps_loop

log = logging.getLogger(__name__)

DOMAIN = "com.microsoft"
OPS = frozenset({"DynamicQuantizeLSTM"})  # mapped from onnxruntime's contrib domain


def _acts(node: ir.Node) -> list[str]:
    """The activations f, g, h per direction, with ONNX's ``LSTM`` spellings."""
    n_dir = 2 if attr(node, "direction", "forward") == "bidirectional" else 1
    acts = attr(node, "activations", None) or DEFAULT_ACTS["LSTM"] * n_dir
    return [a if a in ACTIVATIONS else a.capitalize() if a.capitalize() in ACTIVATIONS
            else a for a in acts]


def _check(ctx: Ctx, node: ir.Node) -> str | None:
    shape = ctx.shape(ctx.inp(node, 0))
    if shape is None or len(shape) != 3:
        return f"the input {ctx.inp(node, 0).name!r} has no known rank 3 shape ({shape})"
    batch, hidden = shape[1], attr(node, "hidden_size", None)
    if batch is None or hidden is None or batch > 4 or (batch >= 2 and hidden <= 256):
        return (f"onnxruntime quantizes the hidden state per chunk of the batch, one chunk per "
                f"thread, when batch > 4 or 2 <= batch with hidden_size <= 256, so its numbers "
                f"depend on its thread count (batch {batch}, hidden_size {hidden}); pin the "
                f"batch (--batch 1)")
    if ctx.opt(node, 4) is not None:
        return ("sequence_lens is given (onnxruntime then quantizes the input only up to the "
                "longest length), which is not mapped")
    if attr(node, "clip", None) is not None:
        return "clip is not mapped"
    if attr(node, "input_forget", 0):
        return "input_forget=1 (coupled input and forget gates) is not mapped"
    if attr(node, "hidden_size", None) is None:
        return "no hidden_size attribute"
    for i, what in ((1, "W"), (2, "R"), (3, "B"), (7, "P"), (8, "W_scale"),
                    (9, "W_zero_point"), (10, "R_scale"), (11, "R_zero_point")):
        v = ctx.opt(node, i)
        if v is None and i in (1, 2, 8, 9, 10, 11):
            return f"no {what} input"
        if v is not None and ctx.value(v) is None:
            return f"{what} ({v.name!r}) is computed at run time; only constants are mapped"
    bad = [a for a in _acts(node) if a not in ACTIVATIONS]
    if bad:
        return f"activation(s) {bad} are not mapped"
    return None


def _quantized(ctx: Ctx, x: str, rank: int) -> tuple[str, str]:
    """``x`` quantized as onnxruntime's LSTM does it (one uint8 scale and zero point over the
    whole tensor, see ``quantized``): (``q - zp`` as float32, the scale)."""
    m = _Math(ctx)
    zero, top = m.f(0.0), m.f(255.0)
    lo = m.op("Minimum", reduce(ctx, "Min", x, list(range(rank)), False), zero)
    hi = m.op("Maximum", reduce(ctx, "Max", x, list(range(rank)), False), zero)
    scale = m.op("SelectV2", m.op("Equal", hi, lo), m.f(1.0),
                 m.op("RealDiv", m.op("Sub", hi, lo), top))
    zp = m.op("Round", m.op("Minimum", m.op("Maximum", m.op("Neg", m.op("RealDiv", lo, scale)),
                                            zero), top))
    # clip(round(x / scale) + zp, 0, 255) - zp, with whole-number bounds
    q = m.op("Round", m.op("RealDiv", x, scale))
    return m.op("Minimum", m.op("Maximum", q, m.op("Neg", zp)), m.op("Sub", top, zp)), scale


class _Direction:
    """One direction's constants: centered W and R, their scales, the fused bias, peepholes."""

    def __init__(self, ctx: Ctx, node: ir.Node, d: int, hidden: int) -> None:
        def const(i: int) -> np.ndarray | None:
            v = ctx.opt(node, i)
            return None if v is None else np.asarray(ctx.value(v))

        self.w, self.w_scale = self._centered(node, const(1), const(8), const(9), d)
        self.r, self.r_scale = self._centered(node, const(2), const(10), const(11), d)
        b = const(3)
        gh = 4 * hidden
        # onnxruntime adds Wb + Rb once, in float32, and that sum to each step's pre-activation
        self.bias = None if b is None else \
            (b[d, :gh].astype(np.float32) + b[d, gh:].astype(np.float32)).astype(np.float32)
        p = const(7)
        self.p = None if p is None else p[d].astype(np.float32)
        self.cache: dict[tuple[int, str], str] = {}

    @staticmethod
    def _centered(node: ir.Node, w: np.ndarray | None, scale: np.ndarray | None,
                  zp: np.ndarray | None, d: int) -> tuple[np.ndarray, np.ndarray]:
        assert w is not None and scale is not None and zp is not None  # (the check asks)
        zero = float(np.asarray(zp)[d].reshape(-1)[0])  # the one onnxruntime reads
        centered = w[d].astype(np.float32) - np.float32(zero)
        bound = 255.0 * float(np.abs(centered.astype(np.float64)).sum(axis=0).max(initial=0.0))
        if bound >= EXACT_LIMIT:
            log.warning("%s node %r: its sums can reach %.3g, past 2**24, where float32 stops "
                        "holding every integer: the result may differ from onnxruntime's by "
                        "rounding on some inputs", node.op_type, node.name, bound)
        return centered, np.asarray(scale, np.float32)[d]

    def const(self, ctx: Ctx, what: str, array: np.ndarray) -> str:
        """``array`` as a constant of ``ctx`` (one per graph or function body)."""
        key = (id(ctx), what)
        if key not in self.cache:
            self.cache[key] = ctx.const(array, what)
        return self.cache[key]


def _step(ctx: Ctx, acts: list[tuple[str, float | None, float | None]], xw: str, h: str,
          c: str, k: _Direction, hidden: int) -> tuple[str, str]:
    """One time step from its ``X W`` ([B, 4H], scaled) and the state: (H_t, C_t)."""
    m = _Math(ctx)
    hq, h_scale = _quantized(ctx, h, 2)
    acc = ctx.op("MatMul", [hq, k.const(ctx, "R_centered", k.r)],
                 {"transpose_a": a_bool(False), "transpose_b": a_bool(False)}, hint="h_R")
    # onnxruntime scales by (h_scale * r_scale), a float32 product, then accumulates
    pre = m.add(xw, m.mul(acc, m.mul(h_scale, k.const(ctx, "R_scale", k.r_scale))))
    if k.bias is not None:
        pre = m.add(pre, k.const(ctx, "WRb", k.bias))
    i_, o_, f_, g_ = ctx.op_n("Split", [ctx.i32(1, "axis"), pre], {"num_split": a_int(4)}, 4,
                              hint="gates")
    if k.p is not None:
        i_ = m.add(i_, m.mul(k.const(ctx, "P_i", k.p[:hidden]), c))
        f_ = m.add(f_, m.mul(k.const(ctx, "P_f", k.p[2 * hidden:3 * hidden]), c))
    it, ft, gt = m.act(*acts[0], x=i_), m.act(*acts[0], x=f_), m.act(*acts[1], x=g_)
    c_new = m.add(m.mul(ft, c), m.mul(it, gt))
    if k.p is not None:
        o_ = m.add(o_, m.mul(k.const(ctx, "P_o", k.p[hidden:2 * hidden]), c_new))
    return m.mul(m.act(*acts[0], x=o_), m.act(*acts[2], x=c_new)), c_new


@rule("DynamicQuantizeLSTM", check=_check)
def dynamic_quantize_lstm(ctx: Ctx, node: ir.Node) -> list[str]:
    """DynamicQuantizeLSTM -> the steps of each direction (see the module); Y, Y_h, Y_c."""
    hidden = int(attr(node, "hidden_size"))
    direction = attr(node, "direction", "forward")
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    names = _acts(node)
    alphas = attr(node, "activation_alpha", None) or []
    betas = attr(node, "activation_beta", None) or []

    def acts(d: int) -> list[tuple[str, float | None, float | None]]:
        return [(names[j], alphas[j] if j < len(alphas) else None,
                 betas[j] if j < len(betas) else None) for j in range(3 * d, 3 * d + 3)]

    x_v = ctx.inp(node, 0)
    x = ctx.x(x_v)
    steps = ctx.need_shape(x_v, node)[0]
    xq, x_scale = _quantized(ctx, x, 3)
    zeros = ctx.op("Fill", [ctx.shape_vector([ctx.dim_of(x, 1), hidden]), ctx.scalar(0.0)],
                   {"T": a_type("float32")}, hint="zeros")
    ys, last_h, last_c = [], [], []
    base = ctx.scope
    for d, name in enumerate(dirs):
        ctx.scope = f"{base}/{name}"
        k = _Direction(ctx, node, d, hidden)
        h, c = _initial(ctx, node, 5, d, zeros), _initial(ctx, node, 6, d, zeros)
        acc = ctx.op("BatchMatMulV2", [xq, ctx.const(k.w, "W_centered")],
                     {"adj_x": a_bool(False), "adj_y": a_bool(False)}, hint="x_W")
        mult = ctx.op("Mul", [x_scale, ctx.const(k.w_scale, "W_scale")], hint="x_W_scale")
        xw = ctx.op("Mul", [acc, mult], hint="xw")  # [T, B, 4H]
        if steps is None:
            y, h, c = _loop(ctx, acts(d), xw, h, c, k, hidden, name)
        else:
            parts = ctx.op_n("Split", [ctx.i32(0, "axis"), xw], {"num_split": a_int(steps)},
                             steps, hint="xw_steps") if steps > 1 else [xw]
            outs: dict[int, str] = {}
            order = range(steps) if name == "forward" else range(steps - 1, -1, -1)
            for t in order:
                xw_t = ctx.op("Squeeze", [parts[t]], {"squeeze_dims": _list_i([0])}, hint="xw_t")
                h, c = _step(ctx, acts(d), xw_t, h, c, k, hidden)
                outs[t] = h
            y = ctx.op("Pack", [outs[t] for t in range(steps)],
                       {"axis": a_int(0), "N": a_int(steps)}, hint="Y_dir")
        ys.append(y)
        last_h.append(h)
        last_c.append(c)
    ctx.scope = base
    n = len(ys)
    return [ctx.op("Pack", ys, {"axis": a_int(1), "N": a_int(n)}, hint="Y"),  # [T, D, B, H]
            ctx.op("Pack", last_h, {"axis": a_int(0), "N": a_int(n)}, hint="Y_h"),
            ctx.op("Pack", last_c, {"axis": a_int(0), "N": a_int(n)}, hint="Y_c")]


def _list_i(values: list[int]) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def _loop(ctx: Ctx, acts: list[tuple[str, float | None, float | None]], xw: str, h0: str,
          c0: str, k: _Direction, hidden: int, direction: str) -> tuple[str, str, str]:
    """One direction over a run-time length: a StatelessWhile whose body is ``_step`` on
    element t (T-1-t in reverse) of ``xw``; (Y [T, B, H], H_T, C_T)."""
    count = ctx.op("Reshape", [ctx.dim_of(xw, 0), ctx.i32([], "scalar")], hint="steps")
    start = ctx.const(np.zeros((0, 1, hidden), np.float32), "Y_start")
    starts = [ctx.i32(0, "t"), count, h0, c0, start, xw]
    dtypes = ["int32", "int32", "float32", "float32", "float32", "float32"]

    def body(sub: Ctx, refs: list[str]) -> list[str]:
        t, n, h, c, y, seq = refs
        index = t if direction == "forward" else \
            sub.op("Sub", [sub.op("Sub", [n, sub.i32(1, "one")]), t], hint="back_t")
        xw_t = sub.op("GatherV2", [seq, index, sub.i32(0, "axis")], {"batch_dims": a_int(0)},
                      hint="xw_t")
        h_new, c_new = _step(sub, acts, xw_t, h, c, k, hidden)
        return [sub.op("AddV2", [t, sub.i32(1, "one")], hint="next_t"), n, h_new, c_new,
                append_item(sub, y, h_new, True), seq]

    refs = steps_loop(ctx, starts, ["t", "n", "h", "c", "Y", "xw"], dtypes, body)
    y = refs[4]
    if direction != "forward":  # gathered from the end: back in time order
        y = ctx.op("ReverseV2", [y, ctx.i32([0], "axis")], hint="Y_in_order")
    return y, refs[2], refs[3]
