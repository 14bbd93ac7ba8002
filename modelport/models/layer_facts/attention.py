"""Attention layers (MultiHeadAttention, GroupQueryAttention, Attention, AdditiveAttention),
and the EinsumDense projections MultiHeadAttention is made of."""

from __future__ import annotations

from ...errors import FormatError
from .base import TensorSpec, declarer
from .helpers import leaf, out

declare = declarer(__name__)


def _multi_head_attention(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    positional = list(inputs)
    query = kwargs["query"] if "query" in kwargs else positional.pop(0)
    value = kwargs["value"] if "value" in kwargs else positional.pop(0)
    key = kwargs.get("key") or (positional.pop(0) if positional else value)
    if value.shape[1:-1] != key.shape[1:-1]:
        raise FormatError(f"value {value.shape} and key {key.shape} differ in more than the "
                          "last dimension")
    tail = cfg.get("output_shape")
    tail = query.shape[-1:] if tail is None else [tail] if isinstance(tail, int) else tail
    outs = out(cfg, query.shape[:-1] + tuple(int(d) for d in tail))
    if not kwargs.get("return_attention_scores"):
        return outs
    # Not Keras's symbolic (batch, heads, Tq, Tq) (see keras_shapes) but what it returns.
    rank = len(query.shape)
    axes = cfg.get("attention_axes")
    axes = range(1, rank - 1) if axes is None else [axes] if isinstance(axes, int) else axes
    axes = [a + rank if a < 0 else a for a in axes]
    others = [query.shape[i] for i in range(1, rank - 1) if i not in axes]
    scores = (query.shape[0], *others, int(cfg["num_heads"]), *(query.shape[a] for a in axes),
              *(key.shape[a] for a in axes))
    return outs + out(cfg, scores)


def _multi_head_attention_variables(config: dict) -> list[tuple[str, bool]]:
    """MultiHeadAttention owns EinsumDense sub-layers, each a kernel and (use_bias) a bias.

    Paths are the attribute names ``.keras`` files key them by (``query_dense/vars/0``), in
    the order Keras creates them, which is also its legacy HDF5 order (weight_names
    ``mha/query/kernel``, ``mha/key/kernel``, ``mha/gate/kernel``, ``mha/value/kernel``,
    ``mha/attention_output/kernel``: the sub-layers' *names*, checked against Keras 3.15.1).
    The gate (``use_gate=True``) has no public attribute, so its folder is ``_gate_dense``.
    """
    subs = ["query_dense", "key_dense"] + (["_gate_dense"] if config.get("use_gate") else []) \
        + ["value_dense", "output_dense"]
    names = ["kernel"] + (["bias"] if config.get("use_bias", True) else [])
    return [(f"{sub}/{name}", True) for sub in subs for name in names]


declare("MultiHeadAttention", shape=_multi_head_attention,
        variables=_multi_head_attention_variables)

# Read and written (its variables are known), not converted: no shape rule. A bias only where
# bias_axes is set (Keras 3 also names it "bias").
declare("EinsumDense", variables=leaf(
    lambda c: ["kernel"] + (["bias"] if c.get("bias_axes") else [])))


# --- Attention, AdditiveAttention --------------------------------------------------------------
# Called on [query, value(, key)]. Attention's use_scale (default False) makes a scalar "scale",
# score_mode "concat" a scalar "concat_score_weight" after it; AdditiveAttention's use_scale
# (default True) a "scale" per query feature.

def _attention(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    """``(*query[:-1], value[-1])``; with ``return_attention_scores`` also the scores
    ``(*query[:-1], key[-2])``."""
    if len(inputs) not in (2, 3):
        raise FormatError(f"called on {len(inputs)} tensors, not [query, value(, key)]")
    query, value = inputs[0], inputs[1]
    key = inputs[2] if len(inputs) > 2 else value
    outs = out(cfg, query.shape[:-1] + value.shape[-1:])
    if kwargs.get("return_attention_scores"):
        outs += out(cfg, query.shape[:-1] + key.shape[-2:-1])
    return outs


declare("Attention", shape=_attention,
        variables=leaf(lambda c: (["scale"] if c.get("use_scale") else []) + (
            ["concat_score_weight"] if c.get("score_mode", "dot") == "concat" else [])),
        variable_shapes=lambda c, spec: {"scale": (), "concat_score_weight": ()},
        config_defaults={"score_mode": "dot"})
declare("AdditiveAttention", shape=_attention,
        variables=leaf(lambda c: ["scale"] if c.get("use_scale", True) else []),
        variable_shapes=lambda c, spec: {"scale": (spec.shape[-1],)})


# --- GroupQueryAttention ------------------------------------------------------------------------

def _group_query_attention(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    """The query's shape; with ``return_attention_scores`` also ``(batch, query heads, Tq,
    Tk)``."""
    positional = list(inputs)
    query = kwargs["query"] if "query" in kwargs else positional.pop(0)
    value = kwargs["value"] if "value" in kwargs else positional.pop(0)
    key = kwargs.get("key") or (positional.pop(0) if positional else value)
    if query.shape[-1] != value.shape[-1] or value.shape[1:-1] != key.shape[1:-1]:
        raise FormatError(f"query {query.shape}, value {value.shape} and key {key.shape} do "
                          "not fit (query and value share the feature size; value and key all "
                          "but the last dimension)")
    outs = out(cfg, query.shape)
    if kwargs.get("return_attention_scores"):
        outs += out(cfg, (query.shape[0], int(cfg["num_query_heads"]), query.shape[1],
                          key.shape[1]))
    return outs


def _group_query_attention_variables(config: dict) -> list[tuple[str, bool]]:
    """EinsumDense sub-layers held in private attributes (``_query_dense``), created query, key,
    gate, value, output (HDF5 names ``query``, ``key``, ``gate``, ``value``,
    ``attention_output``; checked against Keras 3.15.1)."""
    subs = ["_query_dense", "_key_dense"] + (["_gate_dense"] if config.get("use_gate") else []) \
        + ["_value_dense", "_output_dense"]
    names = ["kernel"] + (["bias"] if config.get("use_bias", True) else [])
    return [(f"{sub}/{name}", True) for sub in subs for name in names]


# Keras 3 registers the class GroupedQueryAttention as keras.layers.GroupQueryAttention.
declare("GroupQueryAttention", shape=_group_query_attention,
        variables=_group_query_attention_variables, python_class="GroupedQueryAttention")
