"""Attention layers: MultiHeadAttention, GroupQueryAttention, Attention, AdditiveAttention.

Keras 3's MultiHeadAttention, step by step (``keras/src/layers/attention/
multi_head_attention.py``):

1. Project query, key and value with EinsumDense sub-layers: kernel ``(features, heads, dim)``,
   bias ``(heads, dim)``. Here: one MatMul against the kernel flattened to ``(features,
   heads * dim)``, then a Reshape that splits the heads (batch and other axes copied with 0).
2. Scale the projected query by ``1/sqrt(key_dim)`` and take the dot product with the key over
   ``attention_axes`` (default: every axis between the batch and the features). Scores have
   the layout ``(batch, <other axes>, heads, <query attention axes>, <key attention axes>)``.
   One attention axis (the usual case): Transposes + MatMul; several: ONNX Einsum with Keras's
   own equations.
3. Softmax over the key attention axes, masked: the query's Keras mask ``(B, T, 1)``, the
   value's and key's ``(B, 1, S)``, ``use_causal_mask`` ``(1, T, S)``, ``sliding_window`` and
   ``attention_mask`` are ANDed, expanded for the heads, and masked logits replaced by a large
   negative number. Keras has two paths that differ only on a row where every key is masked:
   the explicit one (scores returned, dropout > 0, or inputs of rank != 3) zeroes masked
   probabilities, so the row attends to nothing; the fused ``dot_product_attention`` one
   attends uniformly to every key. Both are followed.
4. Combine with the value, apply the optional sigmoid gate, project with the output EinsumDense
   to ``output_shape`` (default: the query's feature size).

Dropout is the identity at inference. The output carries the query's Keras mask.

The call's tensors arrive positionally (``call.inputs``, with Keras masks in ``call.masks``) or
as keywords (``call.kwargs``); Keras 3 records ``mha(query=q, value=v)`` with no positional
argument at all, and Keras 2 ``mha(q, v)`` as ``args=[q], kwargs={value: v}``. The Keras masks
of keyword tensors are read from ``call.kwarg_masks`` where the driver provides it; without it
a Keras mask reaching MultiHeadAttention through a keyword is not seen.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence

import numpy as np
import onnx_ir as ir

from ...errors import UnsupportedError
from ...models import TensorRef
from .context import LOWERINGS, Builder, Call, Lowered

# Keras 3's MultiHeadAttention.call parameters, in positional order.
PARAMS = ["query", "value", "key", "query_mask", "value_mask", "key_mask", "attention_mask",
          "return_attention_scores", "training", "use_causal_mask"]


def _bind(call: Call) -> tuple[dict, dict]:
    """Arguments by parameter name, and the Keras masks of the tensor ones (None if unknown)."""
    nodes = call.layer.inbound_nodes
    # A call made up by a wrapper (no recorded node) passes its tensors positionally.
    args = nodes[call.node].args if call.node < len(nodes) else \
        [TensorRef(call.name)] * len(call.inputs)
    values: dict = {}
    masks: dict = {}
    positional = iter(zip(call.inputs, call.masks or [None] * len(call.inputs)))
    for name, arg in zip(PARAMS, args):
        if isinstance(arg, TensorRef):
            values[name], masks[name] = next(positional)
        else:
            values[name] = arg
    values.update({k: v for k, v in call.kwargs.items() if k in PARAMS})
    # Keyword tensors' Keras masks, where the driver provides them.
    for name, mask in (call.kwarg_masks).items():
        if name in PARAMS and masks.get(name) is None:
            masks[name] = mask
    return values, masks


def _variable(call: Call, sub: str, name: str) -> np.ndarray | None:
    """A sub-layer variable: ``query_dense/kernel`` (.keras attribute path) or, as older
    readers named it, ``query/kernel`` (the sub-layer's name)."""
    alias = {"query_dense": "query", "key_dense": "key", "value_dense": "value",
             "output_dense": "attention_output", "_gate_dense": "gate"}[sub]
    for path in (f"{sub}/{name}", f"{alias}/{name}"):
        if call.has_weight(path):
            return call.weight(path)
    return None


def _project(ctx: Builder, call: Call, sub: str, x: ir.Value, rank: int) -> ir.Value:
    """EinsumDense ``...f,fnd->...nd`` (+ bias): (batch, ..., features) -> (..., heads, dim)."""
    kernel = _variable(call, sub, "kernel")
    if kernel is None:
        raise UnsupportedError(f"MultiHeadAttention has no {sub} kernel", layer=call.name)
    features, heads, dim = kernel.shape
    y = ctx.op("MatMul", x, ctx.const(kernel.reshape(features, heads * dim),
                                      f"{call.name}/{sub}/kernel"))
    bias = _variable(call, sub, "bias")
    if bias is not None:
        y = ctx.op("Add", y, ctx.const(bias.reshape(-1), f"{call.name}/{sub}/bias"))
    return ctx.reshape(y, [0] * (rank - 1) + [heads, dim])


def _output(ctx: Builder, call: Call, x: ir.Value, rank: int) -> ir.Value:
    """EinsumDense ``...nd,nd<out>-><out>`` (+ bias) to the output shape."""
    kernel = _variable(call, "output_dense", "kernel")
    if kernel is None:
        raise UnsupportedError("MultiHeadAttention has no output kernel", layer=call.name)
    heads, dim, *out = kernel.shape
    flat_out = int(np.prod(out))
    y = ctx.reshape(x, [0] * (rank - 1) + [heads * dim])
    y = ctx.op("MatMul", y, ctx.const(kernel.reshape(heads * dim, flat_out),
                                      f"{call.name}/output_dense/kernel"))
    bias = _variable(call, "output_dense", "bias")
    if bias is not None:
        y = ctx.op("Add", y, ctx.const(bias.reshape(-1), f"{call.name}/output_dense/bias"))
    return ctx.reshape(y, [0] * (rank - 1) + out) if len(out) > 1 else y

def _heads_inputs(call: Call) -> tuple[dict, dict, ir.Value, ir.Value]:
    """What MultiHeadAttention and GroupQueryAttention are called with: (arguments, Keras
    masks, query, value); flash_attention is refused."""
    if call.config.get("flash_attention"):
        raise UnsupportedError("flash_attention=True (supported: the default attention)",
                               layer=call.name)
    args, kmasks = _bind(call)
    query, value = args.get("query"), args.get("value")
    if not isinstance(query, ir.Value) or not isinstance(value, ir.Value):
        raise UnsupportedError(f"{call.layer.class_name} called without query and value tensors",
                               layer=call.name)
    return args, kmasks, query, value


@LOWERINGS.register("MultiHeadAttention", relowered=True)
def lower_multi_head_attention(ctx: Builder, call: Call) -> Lowered:
    """Keras MultiHeadAttention -> the steps of the module docstring: MatMul projections, scaled
    scores (MatMul or Einsum), masked Softmax, the value combined and projected out (the scores too
    with return_attention_scores); flash_attention is refused."""
    cfg = call.config
    args, kmasks, query, value = _heads_inputs(call)
    key_given = isinstance(args.get("key"), ir.Value)
    key = args["key"] if key_given else value
    rank = len(call.out_specs[0].shape)  # the query's rank (the output's shape otherwise)
    if cfg.get("output_shape"):
        out_shape = cfg["output_shape"]
        rank -= (len(out_shape) if isinstance(out_shape, (list, tuple)) else 1) - 1
    want_scores = bool(args.get("return_attention_scores"))

    q = _project(ctx, call, "query_dense", query, rank)
    k = _project(ctx, call, "key_dense", key, rank)
    v = _project(ctx, call, "value_dense", value, rank)
    projected = rank + 1
    axes = _attention_axes(cfg.get("attention_axes"), projected)
    dtype = call.out_specs[0].dtype
    key_dim = int(cfg["key_dim"])
    scale = np.asarray(1.0 / math.sqrt(float(key_dim)), dtype=np.dtype(dtype))
    q = ctx.op("Mul", q, ctx.const(scale, f"{call.name}/scale"))
    scores = _dot(ctx, k, q, axes, projected)
    scores_rank = projected - 1 + len(axes)

    mask = _mask(ctx, call, args, kmasks, query, value, key_given, scores_rank, len(axes))
    # Keras's fused path (JAX dot_product_attention) is taken when nothing needs the
    # explicit scores; it differs only on fully masked rows (see the module docstring).
    explicit = want_scores or float(cfg.get("dropout") or 0.0) > 0.0 or projected != 4
    probs = _masked_softmax(ctx, scores, mask, len(axes), dtype, zero_masked=explicit)
    attended = _combine(ctx, probs, v, axes, projected)
    if cfg.get("use_gate"):
        gate = ctx.op("Sigmoid", _project(ctx, call, "_gate_dense", query, rank))
        attended = ctx.op("Mul", attended, gate)
    out = _output(ctx, call, attended, rank)
    query_mask = kmasks.get("query")
    outputs = [out, probs] if want_scores else [out]
    return Lowered(outputs, [query_mask] + [None] * (len(outputs) - 1))


def _attention_axes(axes: int | Sequence[int] | None, projected: int) -> list[int]:
    if axes is None:
        return list(range(1, projected - 2))
    listed = [axes] if isinstance(axes, int) else list(axes)
    return [a if a >= 0 else (projected - 1) + a for a in listed]


def _batch_dims(axes: list[int], projected: int) -> list[int]:
    return [i for i in range(projected) if i not in axes and i != projected - 1]


def _dot(ctx: Builder, k: ir.Value, q: ir.Value, axes: list[int], projected: int) -> ir.Value:
    """Scores ``(batch dims, <query attention axes>, <key attention axes>)``."""
    if len(axes) == 1:
        batch = _batch_dims(axes, projected)
        q_t = ctx.transpose(q, batch + [axes[0], projected - 1])  # (..., T, key_dim)
        k_t = ctx.transpose(k, batch + [projected - 1, axes[0]])  # (..., key_dim, S)
        return ctx.op("MatMul", q_t, k_t)
    dot_equation, _ = _equations(projected, axes)
    return ctx.op("Einsum", k, q, equation=dot_equation)


def _combine(ctx: Builder, probs: ir.Value, v: ir.Value, axes: list[int], projected: int
             ) -> ir.Value:
    """Attention-weighted values, back in the projected query's layout."""
    if len(axes) == 1:
        batch = _batch_dims(axes, projected)
        perm = batch + [axes[0], projected - 1]
        out = ctx.op("MatMul", probs, ctx.transpose(v, perm))  # (..., T, value_dim)
        return ctx.transpose(out, list(np.argsort(perm)))
    _, combine_equation = _equations(projected, axes)
    return ctx.op("Einsum", probs, v, equation=combine_equation)


def _equations(rank: int, axes: list[int]) -> tuple[str, str]:
    """Keras's ``_build_attention_equation``: (key, query -> scores), (scores, value -> out)."""
    letters = string.ascii_lowercase
    target = letters[:rank]
    batch = [i for i in range(rank) if i not in axes and i != rank - 1]
    source, offset = "", rank
    for i in range(rank):
        if i in batch or i == rank - 1:
            source += target[i]
        else:
            source += letters[offset]
            offset += 1
    product = "".join([target[i] for i in batch] + [target[i] for i in axes]
                      + [source[i] for i in axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}"


def _mask(ctx: Builder, call: Call, args: dict, kmasks: dict, query: ir.Value, value: ir.Value,
          key_given: bool, scores_rank: int, n_axes: int) -> ir.Value | None:
    """Keras's ``_compute_attention_mask``, expanded to the scores' rank (or None)."""
    parts = _input_masks(ctx, args, kmasks, key_given)  # (bool mask, its rank)
    causal = bool(args.get("use_causal_mask"))
    window = call.config.get("sliding_window")
    if causal or window:
        rows, cols = _positions(ctx, query, value)
        if causal:
            parts.append((ctx.unsqueeze(ctx.op("GreaterOrEqual", rows, cols), [0]), 3))
        if window:
            distance = ctx.op("Abs", ctx.op("Sub", rows, cols))
            near = ctx.op("Less", distance, ctx.const(np.asarray(int(window), np.int64),
                                                      f"{call.name}/sliding_window"))
            parts.append((ctx.unsqueeze(near, [0]), 3))
    attention_mask = args.get("attention_mask")
    if isinstance(attention_mask, ir.Value):
        known = attention_mask.shape
        parts.append((ctx.cast(attention_mask, "bool"),
                      len(known) if known is not None else 1 + 2 * n_axes))
    if not parts:
        return None
    mask, mask_rank = parts[0]
    for m, r in parts[1:]:
        mask, mask_rank = ctx.op("And", mask, m), max(mask_rank, r)
    missing = scores_rank - mask_rank
    if missing > 0:
        # Keras expands at axis -2 * len(attention_axes) - 1 (before the query/key axes).
        first = mask_rank - 2 * n_axes
        mask = ctx.unsqueeze(mask, list(range(first, first + missing)))
    return mask


def _input_masks(ctx: Builder, args: dict, kmasks: dict, key_given: bool
                 ) -> list[tuple[ir.Value, int]]:
    """The inputs' masks as (B, T, 1) and (B, 1, S): the query's Keras mask (Keras 3 ignores a
    query_mask argument), value_mask/key_mask arguments, else the value's and key's Keras
    masks."""
    def given(name: str) -> ir.Value | None:
        return args[name] if isinstance(args.get(name), ir.Value) else None

    query_mask = kmasks.get("query")
    value_mask = given("value_mask") if given("value_mask") is not None else kmasks.get("value")
    key_mask = given("key_mask") if given("key_mask") is not None else \
        (kmasks.get("key") if key_given else None)
    parts = []
    if query_mask is not None:
        parts.append((ctx.unsqueeze(ctx.cast(query_mask, "bool"), [-1]), 3))
    parts.extend((ctx.unsqueeze(ctx.cast(m, "bool"), [-2]), 3)
                 for m in (value_mask, key_mask) if m is not None)
    return parts


def _positions(ctx: Builder, query: ir.Value, value: ir.Value) -> tuple[ir.Value, ir.Value]:
    """Query positions ``(T, 1)`` and key positions ``(S,)`` along axis 1 (dynamic lengths)."""
    def length(x: ir.Value) -> ir.Value:
        return ctx.squeeze(ctx.slice(ctx.op("Shape", x), [1], [2], [0]), [0])

    zero = ctx.const(np.asarray(0, np.int64), f"{ctx.prefix}zero")
    one = ctx.const(np.asarray(1, np.int64), f"{ctx.prefix}one")
    rows = ctx.unsqueeze(ctx.op("Range", zero, length(query), one), [-1])
    cols = ctx.op("Range", zero, length(value), one)
    return rows, cols


def _masked_softmax(ctx: Builder, scores: ir.Value, mask: ir.Value | None, n_axes: int,
                    dtype: str, *, zero_masked: bool) -> ir.Value:
    """Softmax over the last ``n_axes`` axes; masked logits become a large negative number,
    and (``zero_masked``) masked probabilities zero."""
    if mask is not None:
        large = -3e4 if dtype == "float16" else -1e9  # Keras's _large_negative_number
        scores = ctx.op("Where", mask, scores,
                        ctx.const(np.asarray(large, np.dtype(dtype)), f"{ctx.prefix}masked"))
    if n_axes == 1:
        probs = ctx.op("Softmax", scores, axis=-1)
    else:
        axes = list(range(-n_axes, 0))
        shifted = ctx.op("Sub", scores, ctx.reduce("ReduceMax", scores, axes, keepdims=True))
        e = ctx.op("Exp", shifted)
        probs = ctx.op("Div", e, ctx.reduce("ReduceSum", e, axes, keepdims=True))
    if mask is not None and zero_masked:
        probs = ctx.op("Where", mask, probs,
                       ctx.const(np.asarray(0.0, np.dtype(dtype)), f"{ctx.prefix}zero_prob"))
    return probs


# --- Attention and AdditiveAttention --------------------------------------------------------------
# Keras 3 (``keras/src/layers/attention/attention.py``, ``additive_attention.py``): called on
# ``[query, value(, key)]`` (key defaults to value) with ``mask=[query_mask, value_mask]``, which
# Keras fills in from the inputs' Keras masks. Scores ``(batch, Tq, Tv)``:
#   Attention "dot":     q @ k^T, times the scalar ``scale`` with use_scale;
#   Attention "concat":  concat_score_weight * sum(tanh([scale *] (q + k)), -1), broadcast
#                        as (batch, Tq, 1, dim) + (batch, 1, Tv, dim);
#   AdditiveAttention:   sum(scale * tanh(q + k), -1), ``scale`` per feature with use_scale.
# The value mask (batch, 1, Tv) and use_causal_mask's lower triangle are ANDed; a masked score is
# ``score - 1e9`` (not replaced), then softmax over Tv, a matmul with the value, and masked query
# rows set to 0. The output carries the query's mask; the scores returned are the softmax.

def _attention_inputs(call: Call) -> tuple[list[ir.Value], list[ir.Value | None]]:
    """``[query, value(, key)]`` and ``[query_mask, value_mask]`` (explicit ``mask=`` first)."""
    tensors = list(call.inputs)
    if not tensors and isinstance(call.kwargs.get("inputs"), list):  # layer(inputs=[q, v])
        tensors = [v for v in call.kwargs["inputs"] if isinstance(v, ir.Value)]
    if len(tensors) not in (2, 3):
        raise UnsupportedError(f"{call.layer.class_name} called on {len(tensors)} tensors, not "
                               "[query, value(, key)]", layer=call.name)
    masks: list = list(call.masks or [])
    explicit = call.kwargs.get("mask")
    if isinstance(explicit, list) and len(explicit) >= 2:
        masks = [m if isinstance(m, ir.Value) else None for m in explicit]
    return tensors, (masks + [None, None])[:2]


def _length(ctx: Builder, x: ir.Value, axis: int) -> ir.Value:
    """``x.shape[axis]`` as an int64 scalar (dynamic)."""
    return ctx.squeeze(ctx.slice(ctx.op("Shape", x), [axis], [axis + 1 if axis != -1 else
                                                               2**62], [0]), [0])


def _causal(ctx: Builder, query: ir.Value, key: ir.Value) -> ir.Value:
    """Keras's ``cumsum(rows) >= cumsum(columns)``: (Tq, Tv) bool, lower triangle."""
    zero = ctx.const(np.asarray(0, np.int64), f"{ctx.prefix}zero")
    one = ctx.const(np.asarray(1, np.int64), f"{ctx.prefix}one")
    rows = ctx.unsqueeze(ctx.op("Range", zero, _length(ctx, query, -2), one), [-1])
    cols = ctx.op("Range", zero, _length(ctx, key, -2), one)
    return ctx.op("GreaterOrEqual", rows, cols)


def _attention_scores(ctx: Builder, call: Call, q: ir.Value, k: ir.Value, rank: int
                      ) -> ir.Value:
    cfg = call.config
    additive = call.layer.class_name == "AdditiveAttention"
    mode = "additive" if additive else cfg.get("score_mode", "dot")
    use_scale = bool(cfg.get("use_scale", additive))
    scale = ctx.weight(call, "scale") if use_scale else None
    if mode == "dot":
        perm = list(range(rank - 2)) + [rank - 1, rank - 2]
        scores = ctx.op("MatMul", q, ctx.transpose(k, perm))
        return ctx.op("Mul", scores, scale) if scale is not None else scores
    if mode not in ("concat", "additive"):
        raise UnsupportedError(f"score_mode {mode!r} (supported: 'dot', 'concat')",
                               layer=call.name)
    summed = ctx.op("Add", ctx.unsqueeze(q, [-2]), ctx.unsqueeze(k, [-3]))
    if mode == "additive":
        tanh = ctx.op("Tanh", summed)
        weighted = ctx.op("Mul", scale, tanh) if scale is not None else tanh
        return ctx.reduce("ReduceSum", weighted, [-1], keepdims=False)
    if scale is not None:
        summed = ctx.op("Mul", scale, summed)
    total = ctx.reduce("ReduceSum", ctx.op("Tanh", summed), [-1], keepdims=False)
    return ctx.op("Mul", ctx.weight(call, "concat_score_weight"), total)


@LOWERINGS.register("Attention", "AdditiveAttention", relowered=True)
def lower_attention(ctx: Builder, call: Call) -> Lowered:
    """Keras Attention/AdditiveAttention -> scores (see above) lowered by a large number where
    masked, Softmax over the value steps, MatMul with the value, masked query rows zeroed; the
    scores output is the Softmax."""
    tensors, (query_mask, value_mask) = _attention_inputs(call)
    query, value = tensors[0], tensors[1]
    key = tensors[2] if len(tensors) > 2 else value
    rank = len(call.out_specs[0].shape)
    dtype = call.out_specs[0].dtype
    scores = _attention_scores(ctx, call, query, key, rank)
    visible = None
    if value_mask is not None:
        visible = ctx.unsqueeze(ctx.cast(value_mask, "bool"), [-2])
    if call.kwargs.get("use_causal_mask"):
        causal = _causal(ctx, query, key)
        visible = causal if visible is None else ctx.op("And", visible, causal)
    if visible is not None:
        big = ctx.const(np.asarray(65504.0 if dtype == "float16" else 1.0e9, np.dtype(dtype)),
                        f"{call.name}/max_value")
        scores = ctx.op("Where", visible, scores, ctx.op("Sub", scores, big))
    weights = ctx.op("Softmax", scores, axis=-1)
    out = ctx.op("MatMul", weights, value)
    if query_mask is not None:
        zero = ctx.const(np.asarray(0.0, np.dtype(dtype)), f"{call.name}/zero")
        out = ctx.op("Where", ctx.unsqueeze(ctx.cast(query_mask, "bool"), [-1]), out, zero)
    outputs = [out, weights] if call.kwargs.get("return_attention_scores") else [out]
    return Lowered(outputs, [query_mask] + [None] * (len(outputs) - 1))


# --- GroupQueryAttention --------------------------------------------------------------------------
# Keras 3 (``grouped_query_attention.py``), inputs (batch, T, features): EinsumDense projections
# ``_query_dense`` (features, Hq, D), ``_key_dense``/``_value_dense`` (features, Hkv, D), an
# optional sigmoid ``_gate_dense`` on the query, and ``_output_dense`` (Hq, D, features); the key
# and value heads repeated Hq // Hkv times each ([k0, k0, k1, k1]: Unsqueeze, Tile, Reshape);
# the query scaled by 1/sqrt(D). Masks, their two softmax paths and the output mask as in
# MultiHeadAttention (above), except that an explicit query_mask argument counts.

def _gqa_project(ctx: Builder, call: Call, sub: str, x: ir.Value) -> ir.Value:
    """``(batch, T, features) -> (batch, T, heads, D)``: MatMul, bias, Reshape."""
    kernel = call.weight(f"{sub}/kernel")
    if kernel.ndim != 3:
        raise UnsupportedError(f"{sub}/kernel has shape {list(kernel.shape)}, not (features, "
                               "heads, head_dim)", layer=call.name)
    features, heads, dim = kernel.shape
    y = ctx.op("MatMul", x, ctx.weight(call, f"{sub}/kernel",
                                       kernel.reshape(features, heads * dim)))
    if call.has_weight(f"{sub}/bias"):
        y = ctx.op("Add", y, ctx.weight(call, f"{sub}/bias", call.weight(f"{sub}/bias")
                                        .reshape(-1)))
    return ctx.reshape(y, [0, 0, heads, dim])


def _repeat_heads(ctx: Builder, x: ir.Value, repeats: int, heads: int, dim: int) -> ir.Value:
    if repeats == 1:
        return x
    tiled = ctx.op("Tile", ctx.unsqueeze(x, [3]), ctx.ints([1, 1, 1, repeats, 1],
                                                          f"{ctx.prefix}repeats"))
    return ctx.reshape(tiled, [0, 0, heads, dim])


@LOWERINGS.register("GroupQueryAttention", relowered=True)
def lower_group_query_attention(ctx: Builder, call: Call) -> Lowered:
    """Keras GroupQueryAttention (rank-3 inputs) -> MatMul projections, key/value heads repeated to
    the query heads, scaled MatMul scores, masked Softmax and the output projection (see above);
    flash_attention is refused."""
    cfg = call.config
    args, kmasks, query, value = _heads_inputs(call)
    if len(call.out_specs[0].shape) != 3:
        raise UnsupportedError("GroupQueryAttention on inputs of rank "
                               f"{len(call.out_specs[0].shape)} (Keras's equations are rank 3)",
                               layer=call.name)
    key_given = isinstance(args.get("key"), ir.Value)
    key = args["key"] if key_given else value
    heads, dim = int(cfg["num_query_heads"]), int(cfg["head_dim"])
    repeats = heads // int(cfg["num_key_value_heads"])
    dtype = call.out_specs[0].dtype
    q = _gqa_project(ctx, call, "_query_dense", query)
    q = ctx.op("Mul", q, ctx.const(np.asarray(1.0 / math.sqrt(float(dim)), np.dtype(dtype)),
                                   f"{call.name}/scale"))
    k = _repeat_heads(ctx, _gqa_project(ctx, call, "_key_dense", key), repeats, heads, dim)
    v = _repeat_heads(ctx, _gqa_project(ctx, call, "_value_dense", value), repeats, heads, dim)
    scores = ctx.op("MatMul", ctx.transpose(q, [0, 2, 1, 3]), ctx.transpose(k, [0, 2, 3, 1]))
    masks = dict(kmasks)
    if isinstance(args.get("query_mask"), ir.Value):  # GroupQueryAttention honours it
        masks["query"] = args["query_mask"]
    mask = _mask(ctx, call, args, masks, query, value, key_given, 4, 1)
    want_scores = bool(args.get("return_attention_scores"))
    explicit = want_scores or float(cfg.get("dropout") or 0.0) > 0.0
    probs = _masked_softmax(ctx, scores, mask, 1, dtype, zero_masked=explicit)
    attended = ctx.transpose(ctx.op("MatMul", probs, ctx.transpose(v, [0, 2, 1, 3])),
                             [0, 2, 1, 3])  # (batch, T, heads, D)
    if cfg.get("use_gate"):
        attended = ctx.op("Mul", attended,
                          ctx.op("Sigmoid", _gqa_project(ctx, call, "_gate_dense", query)))
    kernel = call.weight("_output_dense/kernel")
    out = ctx.op("MatMul", ctx.reshape(attended, [0, 0, heads * dim]),
                 ctx.weight(call, "_output_dense/kernel",
                            kernel.reshape(heads * dim, kernel.shape[-1])))
    if call.has_weight("_output_dense/bias"):
        out = ctx.op("Add", out, ctx.weight(call, "_output_dense/bias"))
    outputs = [out, probs] if want_scores else [out]
    return Lowered(outputs, [kmasks.get("query")] + [None] * (len(outputs) - 1))
