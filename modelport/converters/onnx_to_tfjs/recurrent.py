"""ONNX ``LSTM``, ``GRU`` and ``RNN`` -> TF ops, unrolled over a static sequence length.

tfjs-converter has no recurrent op, so each time step is written out with the ops of ONNX's
own equations (``BatchMatMulV2`` of the whole sequence with W once, then per step a ``MatMul``
with R, the gate activations and the elementwise updates), for each direction. The result runs
with ``GraphModel.execute`` (no control flow) and is exact to float32 rounding. The batch may be
dynamic; a run-time sequence length becomes a ``StatelessWhile`` per direction (``_loop``).

``sequence_lens``: a batch entry past its length keeps its state and outputs zeros (``SelectV2``
on ``t < len``), as ONNX defines; in the reverse direction the state stays the initial one until
the step at ``len - 1``, so both directions match ONNX. W, R, B and P are constants in the usual
export; fed as graph inputs (ONNX's own node tests do) they are read at run time (``_Param``:
the direction's slice, its gate rows and transposes as TF ops), over a static sequence length
only (the ``While`` body holds its weights as constants). ``input_forget=1`` is refused by name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx_ir as ir

from ...models.tfjs_graph import a_bool, a_float, a_int, a_type
from .control_flow import append_item
from .core import Ctx, attr, rule
from .subgraphs import emit_function

# gates in ONNX's order, per op
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"],
                "RNN": ["Tanh"]}
ACTIVATIONS = {"Sigmoid", "Tanh", "Relu", "HardSigmoid", "LeakyRelu", "Elu", "Softsign",
               "Softplus", "Affine", "ScaledTanh", "ThresholdedRelu"}


def _acts(node: ir.Node) -> list[str]:
    n_dir = 2 if attr(node, "direction", "forward") == "bidirectional" else 1
    acts = attr(node, "activations", None) or DEFAULT_ACTS[node.op_type] * n_dir
    return [a if a in ACTIVATIONS else a.capitalize() if a.capitalize() in ACTIVATIONS
            else a for a in acts]


def _check(ctx: Ctx, node: ir.Node) -> str | None:
    x = ctx.inp(node, 0)
    shape = ctx.shape(x)
    if shape is None or len(shape) != 3:
        return f"the input {x.name!r} has no known rank 3 shape ({shape})"
    layout = attr(node, "layout", 0)
    if shape[1 if layout else 0] is None:  # a While loop: its body holds constant weights
        for i, what in ((1, "W"), (2, "R"), (3, "B"), (7, "P")):
            v = ctx.opt(node, i)
            if v is not None and ctx.value(v) is None:
                return (f"{what} ({v.name!r}) is computed at run time and the sequence length "
                        "is too; run-time weights need a static length (--input-shape)")
    if attr(node, "input_forget", 0):
        return "input_forget=1 (coupled input and forget gates) is not mapped"
    bad = [a for a in _acts(node) if a not in ACTIVATIONS]
    if bad:
        return f"activation(s) {bad} are not mapped"
    if attr(node, "hidden_size", None) is None:
        return "no hidden_size attribute"
    return None


class _Param:
    """One direction's W, R, B or P: a constant's rows (Consts), or a run-time input's (TF ops
    in the main graph; the check keeps those out of ``_loop``'s While body)."""

    def __init__(self, ctx: Ctx, v: ir.Value | None, d: int, default: np.ndarray | None,
                 what: str) -> None:
        self.ref: str | None = None
        self.array: np.ndarray | None = default
        self.cache: dict[tuple, str] = {}
        if v is not None and ctx.value(v) is not None:
            self.array = np.asarray(ctx.value(v), np.float32)[d]
        elif v is not None:
            self.array = None
            self.ref = ctx.op("GatherV2", [ctx.x(v), ctx.i32(d, "direction"), ctx.i32(0, "axis")],
                              {"batch_dims": a_int(0)}, hint=f"{what}_dir")

    def __bool__(self) -> bool:
        return self.array is not None or self.ref is not None

    def rows(self, ctx: Ctx, lo: int, hi: int, hint: str, *, t: bool = False) -> str:
        """Rows ``lo:hi`` (of a 1-D value: elements), transposed when ``t``."""
        if self.array is not None:
            part = self.array[lo:hi]
            return ctx.const((part.T if t else part).copy(), hint)
        key = (id(ctx), lo, hi, t)
        if key not in self.cache:
            assert self.ref is not None
            ref = ctx.op("GatherV2", [self.ref, ctx.i32(list(range(lo, hi)), "rows"),
                                      ctx.i32(0, "axis")], {"batch_dims": a_int(0)}, hint=hint)
            self.cache[key] = ctx.op("Transpose", [ref, ctx.i32([1, 0], "perm")], hint=hint) \
                if t else ref
        return self.cache[key]


# an activation: its name, alpha and beta (None: the op's default)
Act = tuple[str, "float | None", "float | None"]


class _Math:
    """The elementwise TF ops a cell is made of."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def op(self, op: str, *ins: str, **attrs: dict) -> str:
        return self.ctx.op(op, list(ins), dict(attrs) or None)

    def add(self, a: str, b: str) -> str:
        return self.op("AddV2", a, b)

    def mul(self, a: str, b: str) -> str:
        return self.op("Mul", a, b)

    def f(self, x: float) -> str:
        return self.ctx.scalar(x)

    def act(self, name: str, alpha: float | None, beta: float | None, *, x: str) -> str:
        """ONNX's recurrent activation ``name`` (with its alpha/beta) of ``x``."""
        if name in ("Sigmoid", "Tanh", "Relu", "Softplus"):
            return self.op(name, x)
        if name == "Elu":
            a = 1.0 if alpha is None else alpha
            e = self.op("Elu", x)
            return e if a == 1.0 else self.op("SelectV2", self.op("Greater", x, self.f(0.0)),
                                              x, self.mul(self.f(a), e))
        if name == "LeakyRelu":
            return self.op("LeakyRelu", x, alpha=a_float(0.01 if alpha is None else alpha))
        if name == "HardSigmoid":
            a, b = (0.2 if alpha is None else alpha), (0.5 if beta is None else beta)
            y = self.add(self.mul(x, self.f(a)), self.f(b))
            return self.op("Minimum", self.op("Maximum", y, self.f(0.0)), self.f(1.0))
        if name == "Softsign":
            return self.op("RealDiv", x, self.add(self.op("Abs", x), self.f(1.0)))
        if name == "Affine":
            return self.add(self.mul(x, self.f(1.0 if alpha is None else alpha)),
                            self.f(0.0 if beta is None else beta))
        if name == "ScaledTanh":
            return self.mul(self.f(1.0 if alpha is None else alpha),
                            self.op("Tanh", self.mul(x, self.f(1.0 if beta is None else beta))))
        # ThresholdedRelu
        t = 1.0 if alpha is None else alpha
        return self.op("SelectV2", self.op("Greater", x, self.f(t)), x, self.f(0.0))


@rule("LSTM", "GRU", "RNN", check=_check)
def _recurrent(ctx: Ctx, node: ir.Node) -> list[str]:
    """LSTM/GRU/RNN -> the unrolled steps of each direction; Y, Y_h (and Y_c)."""
    m = _Math(ctx)
    kind = node.op_type
    gates = GATES[kind]
    hidden = int(attr(node, "hidden_size"))
    layout = attr(node, "layout", 0)
    direction = attr(node, "direction", "forward")
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    clip = attr(node, "clip", None)
    acts = _acts(node)
    alphas = attr(node, "activation_alpha", None) or []
    betas = attr(node, "activation_beta", None) or []
    n_act = len(DEFAULT_ACTS[kind])

    def activation(d: int, k: int) -> Act:
        j = d * n_act + k
        return (acts[j], alphas[j] if j < len(alphas) else None,
                betas[j] if j < len(betas) else None)

    x_v = ctx.inp(node, 0)
    x = ctx.x(x_v)
    if layout:
        x = ctx.op("Transpose", [x, ctx.i32([1, 0, 2], "perm")], hint="time_major")
    steps = ctx.need_shape(x_v, node)[1 if layout else 0]
    b_v, lens_v = ctx.opt(node, 3), ctx.opt(node, 4)
    lens = None if lens_v is None else _lens(ctx, lens_v, steps or -1)
    batch = ctx.dim_of(x, 1)
    zeros = ctx.op("Fill", [ctx.shape_vector([batch, hidden]), ctx.scalar(0.0)],
                   {"T": a_type("float32")}, hint="zeros")
    p_v = ctx.opt(node, 7)
    gh = gates * hidden

    ys, last_h, last_c = [], [], []
    base = ctx.scope
    for d, name in enumerate(dirs):
        ctx.scope = f"{base}/{name}"
        init_h = _initial(ctx, node, 5, d, zeros)
        init_c = _initial(ctx, node, 6, d, zeros) if kind == "LSTM" else None
        w = _Param(ctx, ctx.inp(node, 1), d, None, "W")
        r = _Param(ctx, ctx.inp(node, 2), d, None, "R")
        b = _Param(ctx, b_v, d, np.zeros(2 * gh, np.float32), "B")
        p = _Param(ctx, p_v, d, None, "P")
        # X W^T for every step at once: [T, B, I] x [I, G*H] -> [T, B, G*H]
        wt = w.rows(ctx, 0, gh, "W_t", t=True)
        xw = ctx.op("BatchMatMulV2", [x, wt], {"adj_x": a_bool(False), "adj_y": a_bool(False)},
                    hint="xw")
        xw = ctx.op("AddV2", [xw, b.rows(ctx, 0, gh, "Wb")], hint="xw_b")
        if steps is None:  # a While loop over the run-time length
            y_dir, h, c = _loop(ctx, kind, xw, init_h, init_c, r, b, hidden, clip,
                                activation, d, p, attr(node, "linear_before_reset", 0), lens,
                                name)
            ys.append(y_dir)
            last_h.append(h)
            last_c.append(c)
            continue
        xws = ctx.op_n("Split", [ctx.i32(0, "axis"), xw], {"num_split": a_int(steps)}, steps,
                       hint="xw_steps") if steps > 1 else [xw]
        xws = [ctx.op("Squeeze", [s], {"squeeze_dims": _list_i([0])}, hint="xw_t")
               for s in xws]
        h, c = init_h, init_c
        outs: dict[int, str] = {}
        order = range(steps) if name == "forward" else range(steps - 1, -1, -1)
        for t in order:
            h_new, c_new = _cell(ctx, m, kind, xws[t], h, c, r, b, hidden, clip,
                                 activation, d, p, attr(node, "linear_before_reset", 0))
            if lens is not None:
                keep = ctx.op("ExpandDims", [ctx.op("Less", [ctx.i32(t, "t"), lens]),
                                             ctx.i32(1, "axis")], hint="in_sequence")
                outs[t] = m.op("SelectV2", keep, h_new, zeros)
                h = m.op("SelectV2", keep, h_new, h)
                if c is not None and c_new is not None:
                    c = m.op("SelectV2", keep, c_new, c)
            else:
                outs[t] = h = h_new
                c = c_new
        ys.append(ctx.op("Pack", [outs[t] for t in range(steps)],
                         {"axis": a_int(0), "N": a_int(steps)}, hint="Y_dir"))
        last_h.append(h)
        last_c.append(c)
    ctx.scope = base
    y = ctx.op("Pack", ys, {"axis": a_int(1), "N": a_int(len(ys))}, hint="Y")  # [T, D, B, H]
    y_h = ctx.op("Pack", last_h, {"axis": a_int(0), "N": a_int(len(ys))}, hint="Y_h")
    outs_ = [y, y_h]
    if kind == "LSTM":
        outs_.append(ctx.op("Pack", [c for c in last_c if c is not None],
                            {"axis": a_int(0), "N": a_int(len(ys))}, hint="Y_c"))
    if layout:  # batch-major: Y [B, T, D, H], states [B, D, H]
        outs_ = [ctx.op("Transpose", [outs_[0], ctx.i32([2, 0, 1, 3], "perm")], hint="Y_bm"),
                 *(ctx.op("Transpose", [s, ctx.i32([1, 0, 2], "perm")], hint="state_bm")
                   for s in outs_[1:])]
    return outs_


def _list_i(values: list[int]) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def _lens(ctx: Ctx, v: ir.Value, steps: int) -> str | None:
    """The int32 sequence lengths, or None where they are constants all equal to ``steps``."""
    const = ctx.value(v)
    if const is not None and np.all(np.asarray(const) == steps):
        return None
    ref = ctx.x(v)
    if ctx.tf_dtype(v) != "int32":
        ref = ctx.op("Cast", [ref], {"DstT": a_type("int32")}, hint="lens")
    return ref


def _initial(ctx: Ctx, node: ir.Node, index: int, d: int, zeros: str) -> str:
    """Direction ``d``'s initial state from input ``index`` ([D, B, H]), or zeros."""
    v = ctx.opt(node, index)
    if v is None:
        return zeros
    layout = attr(node, "layout", 0)
    ref = ctx.x(v)
    # [D, B, H] (layout 0) or [B, D, H] (layout 1): take direction d
    axis = 1 if layout else 0
    begin = [0, 0, 0]
    begin[axis] = d
    end = [0, 0, 0]
    end[axis] = d + 1
    mask = 0b111 & ~(1 << axis)
    return ctx.op("StridedSlice", [ref, ctx.i32(begin, "begin"), ctx.i32(end, "end"),
                                   ctx.i32([1, 1, 1], "strides")],
                  {"begin_mask": a_int(mask), "end_mask": a_int(mask), "ellipsis_mask": a_int(0),
                   "new_axis_mask": a_int(0), "shrink_axis_mask": a_int(1 << axis)},
                  hint="initial")


def _cell(ctx: Ctx, m: _Math, kind: str, xw: str, h: str, c: str | None, r: _Param,
          b: _Param, hidden: int, clip: float | None,
          activation: Callable[[int, int], Act], d: int,
          p: _Param, linear_before_reset: int) -> tuple[str, str | None]:
    """One step: (H_t, C_t) from the step's X W^T + Wb (``xw``, [B, G*H]) and the state
    (R's rows, B's second half Rb and P read from ``r``, ``b``, ``p``)."""
    def f(x: str) -> str:
        return m.act(*activation(d, 0), x=x)

    def g(x: str) -> str:
        return m.act(*activation(d, 1), x=x)

    def clipped(v: str) -> str:
        if clip is None:
            return v
        return m.op("Minimum", m.op("Maximum", v, m.f(-clip)), m.f(clip))

    def split(v: str, n: int) -> list[str]:
        return ctx.op_n("Split", [ctx.i32(1, "axis"), v], {"num_split": a_int(n)}, n,
                        hint="gates") if n > 1 else [v]

    gh = GATES[kind] * hidden

    def matmul(a: str, lo: int, hi: int, hint: str) -> str:  # a x R[lo:hi]^T
        return ctx.op("MatMul", [a, r.rows(ctx, lo, hi, hint, t=True)],
                      {"transpose_a": a_bool(False), "transpose_b": a_bool(False)})

    def rb(lo: int, hi: int, hint: str) -> str:  # Rb[lo:hi]: B's second half
        return b.rows(ctx, gh + lo, gh + hi, hint)

    if kind == "RNN":
        pre = m.add(m.add(xw, matmul(h, 0, gh, "R_t")), rb(0, gh, "Rb"))
        return f(clipped(pre)), None
    if kind == "LSTM":
        assert c is not None
        pre = m.add(m.add(xw, matmul(h, 0, gh, "R_t")), rb(0, gh, "Rb"))
        i_, o_, f_, c_ = split(pre, 4)
        if p:
            pi, po, pf = (p.rows(ctx, k * hidden, (k + 1) * hidden, "P") for k in range(3))
            i_ = m.add(i_, m.mul(pi, c))
            f_ = m.add(f_, m.mul(pf, c))
        it, ft, ct = f(clipped(i_)), f(clipped(f_)), g(clipped(c_))
        c_new = m.add(m.mul(ft, c), m.mul(it, ct))
        if p:
            o_ = m.add(o_, m.mul(po, c_new))
        ot = f(clipped(o_))
        return m.mul(ot, m.act(*activation(d, 2), x=c_new)), c_new
    # GRU: gates z, r, h
    xz, xr, xh = split(xw, 3)
    rz_rr = matmul(h, 0, 2 * hidden, "R_zr_t")
    hz, hr = split(m.add(rz_rr, rb(0, 2 * hidden, "Rb_zr")), 2)
    zt = f(clipped(m.add(xz, hz)))
    rt = f(clipped(m.add(xr, hr)))
    rbh = rb(2 * hidden, gh, "Rb_h")
    if linear_before_reset:
        hh = m.mul(rt, m.add(matmul(h, 2 * hidden, gh, "R_h_t"), rbh))
    else:
        hh = m.add(matmul(m.mul(rt, h), 2 * hidden, gh, "R_h_t"), rbh)
    ht = g(clipped(m.add(xh, hh)))
    # H = (1 - z) * h~ + z * H_prev
    return m.add(m.mul(m.op("Sub", m.f(1.0), zt), ht), m.mul(zt, h)), None


# --- ReverseSequence ------------------------------------------------------------------------------

def _full_lengths(ctx: Ctx, node: ir.Node) -> bool:
    """Whether every sequence length is the whole time axis: a constant, or (tf2onnx's form of
    a Keras ``go_backwards``) an ``Expand`` over the run-time batch of a constant or of the
    input's own time dimension."""
    x = ctx.inp(node, 0)
    time_axis = int(attr(node, "time_axis", 0))
    lens = ctx.inp(node, 1)
    expand = lens.producer()
    if expand is not None and expand.op_type == "Expand" and \
            _is_dim_of(ctx, ctx.inp(expand, 0), x, time_axis):
        return True  # the length is read from the input's own time axis, at run time too
    shape = ctx.shape(x)
    steps = None if shape is None or time_axis >= len(shape) else shape[time_axis]
    if steps is None:
        return False
    const = ctx.value(lens)
    if const is None and expand is not None and expand.op_type == "Expand":
        const = _static(ctx, ctx.inp(expand, 0))
    return const is not None and bool(np.all(np.asarray(const) == steps))


def _is_dim_of(ctx: Ctx, v: ir.Value, x: ir.Value, axis: int) -> bool:
    """Whether ``v`` is ``Gather(Shape(x), axis)`` (a scalar or one-element index)."""
    gather = v.producer()
    if gather is None or gather.op_type != "Gather":
        return False
    shape_node = ctx.inp(gather, 0).producer()
    index = ctx.value(ctx.inp(gather, 1))
    return shape_node is not None and shape_node.op_type == "Shape" \
        and shape_node.attributes.get("start") is None and ctx.inp(shape_node, 0) is x \
        and index is not None and np.asarray(index).size == 1 \
        and int(np.asarray(index).reshape(-1)[0]) == axis


def _static(ctx: Ctx, v: ir.Value) -> np.ndarray | None:
    """``v``'s value where it is a constant or ``Gather(Shape(t), k)`` of static dims of t."""
    const = ctx.value(v)
    gather = v.producer()
    if const is not None or gather is None or gather.op_type != "Gather":
        return const
    shape_node = ctx.inp(gather, 0).producer()
    index = ctx.value(ctx.inp(gather, 1))
    if shape_node is None or shape_node.op_type != "Shape" or index is None \
            or shape_node.attributes.get("start") is not None:
        return None
    dims = ctx.shape(ctx.inp(shape_node, 0))
    if dims is None:
        return None
    picked = [dims[int(k)] for k in np.asarray(index).reshape(-1)]
    if any(d is None for d in picked):
        return None
    return np.asarray(picked).reshape(np.shape(index))


def _reverse_check(ctx: Ctx, node: ir.Node) -> str | None:
    axes = {int(attr(node, "time_axis", 0)), int(attr(node, "batch_axis", 1))}
    if axes != {0, 1}:
        return f"time_axis/batch_axis {sorted(axes)} (ONNX allows only 0 and 1)"
    if ctx.shape(ctx.inp(node, 0)) is None:
        return "the rank of its input is unknown"
    return None


@rule("ReverseSequence", check=_reverse_check)
def _reverse_sequence(ctx: Ctx, node: ir.Node) -> list[str]:
    """ReverseSequence -> ReverseV2 on the time axis where every length is the whole axis (a
    Keras ``go_backwards`` as tf2onnx writes it); otherwise a GatherNd of the positions
    ``len - 1 - t`` (for ``t < len``, else ``t``) for each batch entry."""
    x_v = ctx.inp(node, 0)
    x = ctx.x(x_v)
    time_axis = int(attr(node, "time_axis", 0))
    if _full_lengths(ctx, node):
        return [ctx.op("ReverseV2", [x, ctx.i32([time_axis], "axis")], hint="ReverseSequence")]
    lens_v = ctx.inp(node, 1)
    lens = ctx.x(lens_v)
    if ctx.tf_dtype(lens_v) != "int32":
        lens = ctx.op("Cast", [lens], {"DstT": a_type("int32")}, hint="lens")
    steps = ctx.op("Reshape", [ctx.dim_of(x, time_axis), ctx.i32([], "scalar")], hint="steps")
    batch = ctx.op("Reshape", [ctx.dim_of(x, 1 - time_axis), ctx.i32([], "scalar")],
                   hint="batch")
    one, zero = ctx.i32(1, "one"), ctx.i32(0, "zero")
    t = ctx.op("ExpandDims", [ctx.op("Range", [zero, steps, one], {"Tidx": a_type("int32")},
                                     hint="t"), one], hint="t_col")            # [T, 1]
    b = ctx.op("ExpandDims", [ctx.op("Range", [zero, batch, one], {"Tidx": a_type("int32")},
                                     hint="b"), zero], hint="b_row")           # [1, B]
    lens_row = ctx.op("ExpandDims", [lens, zero], hint="lens_row")          # [1, B]
    back = ctx.op("Sub", [ctx.op("Sub", [lens_row, one]), t], hint="back")  # [T, B]
    inside = ctx.op("Less", [t, lens_row], hint="inside")
    where = ctx.op("SelectV2", [inside, back, ctx.op("BroadcastTo", [t, ctx.shape_of(back)])],
                   hint="source_t")
    b_grid = ctx.op("BroadcastTo", [b, ctx.shape_of(back)], hint="b_grid")
    pair = [where, b_grid] if time_axis == 0 else [b_grid, where]
    indices = ctx.op("Pack", pair, {"axis": a_int(2), "N": a_int(2)}, hint="indices")
    if time_axis == 1:  # batch-major: indices [B, T, 2]
        indices = ctx.op("Transpose", [indices, ctx.i32([1, 0, 2], "perm")], hint="indices_bm")
    return [ctx.op("GatherNd", [x, indices], hint="ReverseSequence")]


def _loop(ctx: Ctx, kind: str, xw: str, init_h: str, init_c: str | None, r: _Param,
          b: _Param, hidden: int, clip: float | None,
          activation: Callable[[int, int], Act], d: int,
          p: _Param, linear_before_reset: int, lens: str | None, direction: str
          ) -> tuple[str, str, str | None]:
    """One direction over a run-time sequence length: a StatelessWhile whose body is one step
    on element t (T-1-t in reverse) of ``xw`` ([T, B, G*H]); (Y [T, B, H], H_T, C_T)."""
    lstm = kind == "LSTM"
    count = ctx.op("Reshape", [ctx.dim_of(xw, 0), ctx.i32([], "scalar")], hint="steps")
    acc = ctx.const(np.zeros((0, 1, hidden), np.float32), "Y_start")
    starts = [ctx.i32(0, "t"), count, init_h, *([init_c] if lstm and init_c else []), acc, xw,
              *([lens] if lens is not None else [])]
    dtypes = ["int32", "int32", "float32", *(["float32"] if lstm else []), "float32",
              "float32", *(["int32"] if lens is not None else [])]
    names = ["t", "n", "h", *(["c"] if lstm else []), "Y", "xw", *(["lens"] if lens else [])]

    def body(sub: Ctx, refs: list[str]) -> list[str]:
        t, n, h = refs[:3]
        c = refs[3] if lstm else None
        y, seq = refs[3 + lstm:5 + lstm]
        lengths = refs[5 + lstm] if lens is not None else None
        index = t if direction == "forward" else \
            sub.op("Sub", [sub.op("Sub", [n, sub.i32(1, "one")]), t], hint="back_t")
        x_t = sub.op("GatherV2", [seq, index, sub.i32(0, "axis")], {"batch_dims": a_int(0)},
                     hint="xw_t")
        m = _Math(sub)
        h_new, c_new = _cell(sub, m, kind, x_t, h, c, r, b, hidden, clip, activation, d, p,
                             linear_before_reset)
        out = h_new
        if lengths is not None:
            keep = sub.op("ExpandDims", [sub.op("Less", [index, lengths]), sub.i32(1, "axis")],
                          hint="in_sequence")
            zeros = sub.op("Fill", [sub.shape_of(h_new), sub.scalar(0.0)],
                           {"T": a_type("float32")}, hint="zeros")
            out = m.op("SelectV2", keep, h_new, zeros)
            h_new = m.op("SelectV2", keep, h_new, h)
            if c is not None and c_new is not None:
                c_new = m.op("SelectV2", keep, c_new, c)
        grown = append_item(sub, y, out, True)
        return [sub.op("AddV2", [t, sub.i32(1, "one")], hint="next_t"), n, h_new,
                *([c_new] if lstm and c_new is not None else []), grown, seq,
                *([lengths] if lengths is not None else [])]

    refs = steps_loop(ctx, starts, names, dtypes, body)
    y = refs[3 + lstm]
    if direction != "forward":  # gathered from the end: back in time order
        y = ctx.op("ReverseV2", [y, ctx.i32([0], "axis")], hint="Y_in_order")
    return y, refs[2], refs[3] if lstm else None


def steps_loop(ctx: Ctx, starts: list[str], names: list[str], dtypes: list[str],
               body: Callable[[Ctx, list[str]], list[str]]) -> list[str]:
    """A StatelessWhile over ``starts`` (named ``names``, of ``dtypes``) whose first two are the
    step t and the step count n: it runs ``body`` while t < n; its results.

    The condition and the body become library functions of the model (``emit_function``) named
    after the current scope, which emitting them leaves as it was.
    """
    args = list(zip(names, dtypes))

    def cond(sub: Ctx, refs: list[str]) -> list[str]:
        return [sub.op("Less", [refs[0], refs[1]], hint="below_length")]

    scope = ctx.scope
    cond_fn = emit_function(ctx, f"{scope}_cond", args, ctx.graph, cond, ["bool"])
    body_fn = emit_function(ctx, f"{scope}_body", args, ctx.graph, body, dtypes)
    ctx.scope = scope
    return ctx.op_n("StatelessWhile", starts, {"cond": {"func": {"name": cond_fn}},
                                               "body": {"func": {"name": body_fn}}},
                    len(starts), hint="steps_loop")
