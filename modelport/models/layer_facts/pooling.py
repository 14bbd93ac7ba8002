"""Pooling: windowed (max, average) and global, in 1 to 3 spatial dimensions."""

from __future__ import annotations

from functools import partial

from .base import TensorSpec, TfjsRule, declarer
from .helpers import channels_first, ints, no_variables, one, out, per_axis, window

declare = declarer(__name__)


def _pooling(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    pool = ints(cfg.get("pool_size", 2), n)
    strides = pool if cfg.get("strides") is None else ints(cfg["strides"], n)
    return per_axis(cfg, inputs, n, window(cfg, pool, strides, (1,) * n))


def _global_pooling(cfg: dict, inputs: list, kwargs: dict, *, n: int) -> list[TensorSpec]:
    x = one(inputs, n + 2)
    c = x.shape[1] if channels_first(cfg) else x.shape[-1]
    if not cfg.get("keepdims"):
        return out(cfg, (x.shape[0], c))
    return out(cfg, (x.shape[0], c, *(1,) * n) if channels_first(cfg) else
               (x.shape[0], *(1,) * n, c))  # 1 even where the input size is unknown


_KEEPDIMS = TfjsRule(lambda c: bool(c.get("keepdims")),
                     "tfjs-layers 4.22 ignores keepdims=True on global pooling (modelport "
                     "rewrites it where the number of channels is static)")

for _name, _n in [("MaxPooling1D", 1), ("AveragePooling1D", 1), ("MaxPooling2D", 2),
                  ("AveragePooling2D", 2), ("MaxPooling3D", 3), ("AveragePooling3D", 3)]:
    declare(_name, shape=partial(_pooling, n=_n), variables=no_variables, tfjs=True)

for _name, _n, _tfjs in [("GlobalMaxPooling1D", 1, True), ("GlobalAveragePooling1D", 1, True),
                         ("GlobalMaxPooling2D", 2, True), ("GlobalAveragePooling2D", 2, True),
                         ("GlobalMaxPooling3D", 3, False), ("GlobalAveragePooling3D", 3, False)]:
    declare(_name, shape=partial(_global_pooling, n=_n), variables=no_variables, tfjs=_tfjs,
            tfjs_blockers=(_KEEPDIMS,) if _tfjs else ())
