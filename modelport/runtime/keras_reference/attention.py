"""MultiHeadAttention (Keras 3).

Weights (EinsumDense sub-layers, by their .keras folders): ``query_dense/kernel (dim, heads,
key_dim)``, ``query_dense/bias (heads, key_dim)``, likewise ``key_dense/`` and ``value_dense/``
(``value_dim``), optional ``_gate_dense/`` (sigmoid, like the value projection but on the
query), and ``output_dense/kernel (heads, value_dim, *out)`` with ``output_dense/bias (*out,)``, ``out`` = ``output_shape`` or the query's last dimension.

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

from ._base import Call, Masked, as_float, register, unsupported
from .activations import activation

_PARAMS = ["query", "value", "key", "query_mask", "value_mask", "key_mask", "attention_mask",
           "return_attention_scores", "training", "use_causal_mask"]


def _bind(call: Call) -> tuple[dict, dict]:
    values = dict(zip(_PARAMS, call.args))
    masks = dict(zip(_PARAMS, call.arg_masks))
    values.update(call.kwargs)
    masks.update(call.kwarg_masks)
    return values, masks


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
    if cfg.get("flash_attention"):
        raise unsupported(call, "flash_attention=True is not implemented")
    bound, kmasks = _bind(call)
    query = as_float(bound["query"], cfg)
    value = as_float(bound["value"], cfg)
    key_given = bound.get("key") is not None
    key = as_float(bound["key"], cfg) if key_given else value
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
