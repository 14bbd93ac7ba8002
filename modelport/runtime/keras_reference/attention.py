"""MultiHeadAttention (Keras 3).

Weights (EinsumDense sub-layers, by their .keras folders): ``query_dense/kernel (dim, heads,
key_dim)``, ``query_dense/bias (heads, key_dim)``, likewise ``key_dense/`` and ``value_dense/``
(``value_dim``), optional ``_gate_dense/`` (sigmoid, like the value projection but on the
query), and ``output_dense/kernel (heads, value_dim, *out)`` with ``output_dense/bias (*out,)``,
``out`` = ``output_shape`` or the query's last dimension.

Attention runs over ``attention_axes`` (default: every axis between batch and features); the
other axes and the heads are batch axes. Scores have the layout ``(batch, <other axes>, heads,
<query attention axes>, <key attention axes>)``; ``query`` is scaled by ``1/sqrt(key_dim)``
before the product, softmax runs over the key attention axes.

Masks: the query's Keras mask (never an explicit ``query_mask``), ``value_mask``/``key_mask``
(explicit, else the tensors' Keras masks), ``use_causal_mask``, ``sliding_window`` and
``attention_mask`` are ANDed into a ``(B, T, S)`` mask, expanded for the heads. Keras then has
two paths that differ only on rows where every key is masked: the explicit one (attention
scores returned, dropout > 0, or inputs of rank != 3) zeroes masked probabilities, so such a
row attends to nothing; the fused ``dot_product_attention`` one does not, so it attends
uniformly to every key. The output carries the query's mask.
"""

from __future__ import annotations

import math

import numpy as np

from ._base import Call, Masked, as_float, flatten, flatten_like, register, unsupported
from .activations import activation

_PARAMS = ["query", "value", "key", "query_mask", "value_mask", "key_mask", "attention_mask",
           "return_attention_scores", "training", "use_causal_mask"]


def _bind(call: Call) -> tuple[dict, dict]:
    values = dict(zip(_PARAMS, call.args))
    masks = dict(zip(_PARAMS, call.arg_masks))
    values.update(call.kwargs)
    masks.update(call.kwarg_masks)
    return values, masks


def _heads_inputs(call: Call) -> tuple[dict, dict, np.ndarray, np.ndarray, np.ndarray, bool]:
    """What MultiHeadAttention and GroupQueryAttention are called with: (arguments, Keras masks,
    query, value, key — the value when none is given —, whether a key was given)."""
    cfg = call.cfg
    if cfg.get("flash_attention"):
        raise unsupported(call, "flash_attention=True is not implemented")
    bound, kmasks = _bind(call)
    query = as_float(bound["query"], cfg)
    value = as_float(bound["value"], cfg)
    key_given = bound.get("key") is not None
    key = as_float(bound["key"], cfg) if key_given else value
    return bound, kmasks, query, value, key, key_given


# Variable folders, as Keras 3's .keras files name the EinsumDense sub-layers.
_FOLDER = {"query": "query_dense", "key": "key_dense", "value": "value_dense",
           "gate": "_gate_dense", "attention_output": "output_dense"}


def _project(call: Call, name: str, x: np.ndarray) -> np.ndarray:
    """EinsumDense ``...d,d<out>-><...><out>`` plus bias."""
    kernel = call.w[f"{_FOLDER[name]}/kernel"].astype(x.dtype)
    y = np.tensordot(x, kernel, axes=([-1], [0]))
    bias = call.w.get(f"{_FOLDER[name]}/bias")
    return y if bias is None else y + bias.astype(x.dtype)


@register("MultiHeadAttention")
def _multi_head_attention(call: Call) -> Masked:
    cfg = call.cfg
    bound, kmasks, query, value, key, key_given = _heads_inputs(call)
    query_mask = kmasks.get("query")
    value_mask = bound.get("value_mask")
    if value_mask is None:
        value_mask = kmasks.get("value")
    key_mask = bound.get("key_mask")
    if key_mask is None and key_given:
        key_mask = kmasks.get("key")
    scores_wanted = bool(bound.get("return_attention_scores"))

    key_dim = int(cfg["key_dim"])
    q = _project(call, "query", query)  # (B, *Tq, H, K)
    k = _project(call, "key", key)
    v = _project(call, "value", value)
    gate = activation("sigmoid")(_project(call, "gate", query)) if cfg.get("use_gate") else None
    rank = q.ndim
    axes = cfg.get("attention_axes")
    if axes is None:
        axes = tuple(range(1, rank - 2))
    else:
        axes = (axes,) if isinstance(axes, int) else tuple(axes)
        axes = tuple(a if a >= 0 else (rank - 1) + a for a in axes)
    mask = _attention_mask(cfg, query, value, query_mask, value_mask, key_mask,
                           bound.get("attention_mask"), bool(bound.get("use_causal_mask")))

    # Letters: batch-like axes keep theirs; attention axes get one letter for the query side and
    # another for the key side; the feature axis is contracted (scores) / kept (combine).
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    target = [next(letters) for _ in range(rank)]
    source = [next(letters) if i in axes else target[i] for i in range(rank)]
    batch_axes = [i for i in range(rank) if i not in axes and i != rank - 1]
    scores_sub = ([target[i] for i in batch_axes] + [target[i] for i in axes]
                  + [source[i] for i in axes])
    sq = "".join(target)
    sk = "".join(source)
    ss = "".join(scores_sub)
    scores = np.einsum(f"{sk},{sq}->{ss}", k.astype(np.float64),
                       q.astype(np.float64) * (1.0 / math.sqrt(float(key_dim))))
    n_attn = len(axes)
    soft_axes = tuple(range(scores.ndim - n_attn, scores.ndim))
    if mask is not None:
        while mask.ndim < scores.ndim:  # add the head (and other batch) axes
            mask = np.expand_dims(mask, axis=-2 * n_attn - 1)
        scores = np.where(mask, scores, -1e9)
    probs = np.exp(scores - scores.max(axis=soft_axes, keepdims=True))
    probs = probs / probs.sum(axis=soft_axes, keepdims=True)
    fused = not (float(cfg.get("dropout") or 0.0) > 0 or scores_wanted or rank != 4)
    if mask is not None and not fused:
        probs = np.where(mask, probs, 0.0)
    context = np.einsum(f"{ss},{sk}->{sq}", probs, v.astype(np.float64)).astype(query.dtype)
    if gate is not None:
        context = context * gate
    out_kernel = call.w["output_dense/kernel"].astype(query.dtype)  # (H, V, *out)
    output = np.tensordot(context, out_kernel, axes=([-2, -1], [0, 1]))
    bias = call.w.get("output_dense/bias")
    if bias is not None:
        output = output + bias.astype(query.dtype)
    values = [output] + ([probs.astype(query.dtype)] if scores_wanted else [])
    return Masked(values, [query_mask] + [None] * (len(values) - 1))


def _attention_mask(cfg: dict, query, value, query_mask, value_mask, key_mask, attention_mask,
                    causal: bool) -> np.ndarray | None:
    auto = None

    def both(a, b):
        return b if a is None else a & b

    if query_mask is not None:
        auto = np.asarray(query_mask, bool)[..., :, None]
    if value_mask is not None:
        auto = both(auto, np.asarray(value_mask, bool)[..., None, :])
    if key_mask is not None:
        auto = both(auto, np.asarray(key_mask, bool)[..., None, :])
    t, s = query.shape[1], value.shape[1]
    if causal:
        auto = both(auto, np.tril(np.ones((t, s), bool))[None])
    window = cfg.get("sliding_window")
    if window is not None:
        rows, cols = np.arange(t)[:, None], np.arange(s)[None, :]
        auto = both(auto, (np.abs(rows - cols) < int(window))[None])
    if attention_mask is not None:
        attention_mask = np.asarray(attention_mask).astype(bool)
        return attention_mask if auto is None else attention_mask & auto
    return auto


# --- Attention and AdditiveAttention --------------------------------------------------------------
# Keras 3 (``keras/src/layers/attention/attention.py``, ``additive_attention.py``): called on
# ``[query, value(, key)]`` with ``mask=[query_mask, value_mask]`` (Keras fills it in from the
# inputs' Keras masks). Computed in the compute dtype, as Keras does: a masked score is
# ``score - 1e9``, which in float32 rounds every small score to the same number, so a row whose
# keys are all masked attends to all of them alike.

def _list_call(call: Call) -> tuple[list[np.ndarray], list]:
    """The ``[query, value(, key)]`` tensors and the ``[query_mask, value_mask]`` Keras uses."""
    tensors, masks = call.inputs, call.masks
    if not tensors and "inputs" in call.kwargs:  # called as layer(inputs=[q, v])
        tensors = flatten(call.kwargs["inputs"])
        masks = flatten_like(call.kwarg_masks.get("inputs"), call.kwargs["inputs"])
    if len(tensors) not in (2, 3):
        raise unsupported(call, f"called on {len(tensors)} tensors, not [query, value(, key)]")
    explicit = call.kwargs.get("mask")
    if isinstance(explicit, (list, tuple)) and len(explicit) >= 2:
        masks = list(explicit)
    return tensors, (list(masks) + [None, None])[:2]


def _scores(call: Call, q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``(batch, Tq, Tv)`` scores: dot (optionally scaled), concat or additive."""
    cfg = call.cfg
    if call.class_name == "AdditiveAttention":
        scale = call.w["scale"].astype(q.dtype) if cfg.get("use_scale", True) else q.dtype.type(1)
        return np.sum(scale * np.tanh(q[..., :, None, :] + k[..., None, :, :]), axis=-1)
    mode = cfg.get("score_mode", "dot")
    scale = call.w["scale"].astype(q.dtype) if cfg.get("use_scale") else None
    if mode == "dot":
        scores = q @ np.swapaxes(k, -1, -2)
        return scores if scale is None else scores * scale
    if mode == "concat":
        summed = q[..., :, None, :] + k[..., None, :, :]
        if scale is not None:
            summed = scale * summed
        return call.w["concat_score_weight"].astype(q.dtype) * np.sum(np.tanh(summed), axis=-1)
    raise unsupported(call, f"score_mode {mode!r} is not 'dot' or 'concat'")


@register("Attention", "AdditiveAttention")
def _attention(call: Call) -> Masked:
    tensors, (query_mask, value_mask) = _list_call(call)
    q, v = (as_float(t, call.cfg) for t in tensors[:2])
    k = as_float(tensors[2], call.cfg) if len(tensors) > 2 else v
    scores = _scores(call, q, k)
    visible = None if value_mask is None else np.asarray(value_mask, bool)[..., None, :]
    bound = call.kwargs
    if bound.get("use_causal_mask"):
        t, s = scores.shape[-2:]
        causal = np.tril(np.ones((t, s), bool))[None]  # cumsum rows >= cumsum columns
        visible = causal if visible is None else visible & causal
    if visible is not None:
        big = scores.dtype.type(65504.0 if scores.dtype == np.float16 else 1.0e9)
        scores = np.where(visible, scores, scores - big)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights = weights / weights.sum(axis=-1, keepdims=True)
    out = weights @ v
    if query_mask is not None:
        out = np.where(np.asarray(query_mask, bool)[..., None], out, out.dtype.type(0))
    values = [out] + ([weights] if bound.get("return_attention_scores") else [])
    return Masked(values, [query_mask] + [None] * (len(values) - 1))


# --- GroupQueryAttention --------------------------------------------------------------------------
# Keras 3 (``grouped_query_attention.py``): EinsumDense projections ``_query_dense (dim, Hq, D)``,
# ``_key_dense``/``_value_dense (dim, Hkv, D)``, optional ``_gate_dense`` (sigmoid, on the
# query), ``_output_dense (Hq, D, dim)``; key and value heads repeated ``Hq // Hkv`` times
# (``[k0, k0, k1, k1]``). Masks as MultiHeadAttention's (query_mask/value_mask/key_mask, given or
# the inputs' Keras masks, causal, sliding window, attention_mask), with the same two paths:
# the fused kernel (no scores returned, no dropout) lets a fully masked row attend uniformly,
# the explicit one zeroes it. The output carries the query's Keras mask.

_GQA = {"query": "_query_dense", "key": "_key_dense", "value": "_value_dense",
        "gate": "_gate_dense", "attention_output": "_output_dense"}


def _gqa_project(call: Call, name: str, x: np.ndarray) -> np.ndarray:
    kernel = call.w[f"{_GQA[name]}/kernel"].astype(np.float64)
    y = np.tensordot(x.astype(np.float64), kernel, axes=([-1], [0]))
    bias = call.w.get(f"{_GQA[name]}/bias")
    return y if bias is None else y + bias.astype(np.float64)


@register("GroupQueryAttention")
def _group_query_attention(call: Call) -> Masked:
    cfg = call.cfg
    bound, kmasks, query, value, key, key_given = _heads_inputs(call)

    def given_or_keras(name: str, tensor: str):
        explicit = bound.get(name)
        return explicit if explicit is not None else kmasks.get(tensor)

    mask = _attention_mask(cfg, query, value, given_or_keras("query_mask", "query"),
                           given_or_keras("value_mask", "value"),
                           given_or_keras("key_mask", "key") if key_given else None,
                           bound.get("attention_mask"), bool(bound.get("use_causal_mask")))
    repeats = int(cfg["num_query_heads"]) // int(cfg["num_key_value_heads"])
    q = _gqa_project(call, "query", query) * (1.0 / math.sqrt(float(cfg["head_dim"])))
    k = np.repeat(_gqa_project(call, "key", key), repeats, axis=2)
    v = np.repeat(_gqa_project(call, "value", value), repeats, axis=2)
    scores = np.einsum("bquh,bkuh->buqk", q, k)
    if mask is not None:
        while mask.ndim < scores.ndim:
            mask = np.expand_dims(mask, axis=-3)
        scores = np.where(mask, scores, -1e9)
    probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
    probs = probs / probs.sum(axis=-1, keepdims=True)
    wanted = bool(bound.get("return_attention_scores"))
    if mask is not None and (wanted or float(cfg.get("dropout") or 0.0) > 0):
        probs = np.where(mask, probs, 0.0)
    context = np.einsum("buqk,bkuh->bquh", probs, v)
    if cfg.get("use_gate"):
        context = context * activation("sigmoid")(_gqa_project(call, "gate", query))
    out = np.tensordot(context, call.w["_output_dense/kernel"].astype(np.float64),
                       axes=([-2, -1], [0, 1]))
    bias = call.w.get("_output_dense/bias")
    if bias is not None:
        out = out + bias.astype(np.float64)
    values = [out.astype(query.dtype)] + ([probs.astype(query.dtype)] if wanted else [])
    return Masked(values, [kmasks.get("query")] + [None] * (len(values) - 1))
