"""What every layer function of the Keras reference shares: the call record, weights, registry.

A layer function is ``fn(call: Call) -> list[np.ndarray] | Masked``. It receives the layer's
canonical config, its weights, and the call's arguments with every symbolic tensor replaced by
its value (and, in parallel structures, by its Keras mask). It returns the layer's outputs in
Keras's order. Masks: a function that knows its output masks returns ``Masked(values, masks)``;
otherwise the class's registered mask policy applies (see ``register``), which mirrors Keras 3's
``supports_masking`` / ``compute_mask``:

* ``"propagate"``: the layer supports masking with the default ``compute_mask``; the first
  output carries Keras's ``previous_mask``: an explicit ``mask=`` argument, else the mask of
  the first positional argument.
* ``"drop"``: the layer does not support masking; its outputs carry no mask.

Nothing here imports Keras, TensorFlow, JAX or SciPy: NumPy only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import FormatError, UnsupportedError
from ...registry import Registry
from ..precision import exact_mode

# --- registry -----------------------------------------------------------------------------------

LayerFn = Callable[["Call"], "list[np.ndarray] | Masked"]
REGISTRY: Registry[LayerFn] = Registry("Keras reference")
MASK_POLICY: Registry[str] = Registry("Keras reference mask policy")


def register(*class_names: str, mask: str = "drop") -> Callable[[LayerFn], LayerFn]:
    """Register ``fn`` for ``class_names`` with a mask policy (``"drop"`` or ``"propagate"``)."""
    if mask not in ("drop", "propagate"):
        raise ValueError(f"unknown mask policy {mask!r}")

    def deco(fn: LayerFn) -> LayerFn:
        for name in class_names:
            REGISTRY.add(name, fn)
            MASK_POLICY.add(name, mask)
        return fn
    return deco


@dataclass
class Masked:
    """Outputs of a layer together with their Keras masks (``None`` where unmasked)."""

    values: list
    masks: list


# --- weights ------------------------------------------------------------------------------------

# Other names a variable goes by (Keras 3 names DepthwiseConv's kernel "kernel").
_ALIASES = {"depthwise_kernel": ("kernel",), "kernel": ("depthwise_kernel",)}


class Weights:
    """A layer's variables by path (``kernel``, ``cell/bias``, ``forward_layer/cell/kernel``)."""

    def __init__(self, arrays: dict[str, np.ndarray], layer: str) -> None:
        self.arrays = arrays
        self.layer = layer

    @classmethod
    def of(cls, weights: list, layer: str) -> Weights:
        return cls({w.path: np.asarray(w.array) for w in weights}, layer)

    def has(self, name: str) -> bool:
        return self._find(name) is not None

    def get(self, name: str) -> np.ndarray | None:
        return self._find(name)

    def __getitem__(self, name: str) -> np.ndarray:
        found = self._find(name)
        if found is None:
            raise FormatError(f"the layer has no variable {name!r}; it has "
                              f"{sorted(self.arrays) or 'none'}", layer=self.layer)
        return found

    def _find(self, name: str) -> np.ndarray | None:
        for candidate in (name, *_ALIASES.get(name, ())):
            if candidate in self.arrays:
                return self.arrays[candidate]
        return None

    def sub(self, prefix: str) -> Weights:
        """The variables under ``prefix/`` (a sub-layer's), with the prefix removed."""
        start = prefix.rstrip("/") + "/"
        return Weights({p[len(start):]: a for p, a in self.arrays.items() if p.startswith(start)},
                       self.layer)


# --- the call record ----------------------------------------------------------------------------

@dataclass
class Call:
    """One call of a layer, with values in place of symbolic tensors.

    ``args``/``kwargs`` hold the values in the node's structure; ``arg_masks``/``kwarg_masks``
    the same structure with each tensor's Keras mask (or ``None``). ``inputs`` and ``masks`` are
    the flattened positional tensors, in order.
    """

    name: str
    class_name: str
    cfg: dict
    w: Weights
    args: list
    kwargs: dict = field(default_factory=dict)
    arg_masks: list = field(default_factory=list)
    kwarg_masks: dict = field(default_factory=dict)

    @property
    def inputs(self) -> list[np.ndarray]:
        return flatten(self.args)

    @property
    def masks(self) -> list:
        return flatten_like(self.arg_masks, self.args)

    @property
    def x(self) -> np.ndarray:
        """The first positional tensor (what most layers are called on)."""
        values = self.inputs
        if not values:
            raise FormatError(f"{self.class_name} is called on no tensor", layer=self.name)
        return values[0]

    @property
    def mask(self) -> np.ndarray | None:
        """The mask a single-tensor layer sees: an explicit ``mask=`` argument (Keras 3 records
        the masks it auto-populates in the node), else the first argument's Keras mask."""
        explicit = self.kwargs.get("mask")
        if is_array(explicit):
            return explicit
        masks = self.masks
        return masks[0] if masks else None

    def inner(self, entry: dict, prefix: str, args: list, arg_masks: list,
              kwargs: dict | None = None) -> Call:
        """A call of a wrapped layer given as ``{"class_name", "config"}``, weights under
        ``prefix/``."""
        cfg = entry.get("config") or {}
        return Call(f"{self.name}/{cfg.get('name', prefix)}", entry["class_name"], cfg,
                    self.w.sub(prefix), args, dict(kwargs or {}), arg_masks, {})


def is_array(obj: Any) -> bool:
    return isinstance(obj, np.ndarray)


def flatten(obj: Any) -> list[np.ndarray]:
    if is_array(obj):
        return [obj]
    if isinstance(obj, dict):
        return [a for v in obj.values() for a in flatten(v)]
    if isinstance(obj, (list, tuple)):
        return [a for v in obj for a in flatten(v)]
    return []


def flatten_like(masks: Any, values: Any) -> list:
    """Masks in the order ``flatten(values)`` gives the values (``None`` structure-tolerant)."""
    if is_array(values):
        return [masks if masks is None or is_array(masks) else None]
    if isinstance(values, dict):
        by_key = masks if isinstance(masks, dict) else {}
        return [x for k, v in values.items() for x in flatten_like(by_key.get(k), v)]
    if isinstance(values, (list, tuple)):
        in_order = masks if isinstance(masks, (list, tuple)) else [None] * len(values)
        return [x for mv, v in zip(in_order, values) for x in flatten_like(mv, v)]
    return []


def dispatch(call: Call) -> Masked:
    """Run a layer function and apply its class's mask policy."""
    fn = REGISTRY.get(call.class_name)
    if fn is None:
        raise UnsupportedError(
            f"the Keras reference has no implementation of layer class {call.class_name!r}",
            layer=call.name, hint=f"supported: {', '.join(sorted(REGISTRY))}")
    out = fn(call)
    if isinstance(out, Masked):
        return out
    values = list(out)
    if MASK_POLICY[call.class_name] == "propagate" and values:
        return Masked(values, [call.mask] + [None] * (len(values) - 1))
    return Masked(values, [None] * len(values))


def reserve(call: Call, shape: tuple[int, ...] | list[int], itemsize: int = 8) -> None:
    """Refuse (exit 4), before it is allocated, an output of ``shape`` that alone would pass
    the memory budget (``modelport.budget``): a layer whose config multiplies its input
    (RepeatVector's ``n``, UpSampling's ``size``, ZeroPadding's ``padding``). Counted at
    ``itemsize`` bytes (float64: the noise run) and twice (the run's input and output)."""
    from ...budget import VALUE_FACTOR, require

    count = 1
    for d in shape:
        count *= max(int(d), 0)
    require(count * itemsize * VALUE_FACTOR,
            f"{call.class_name} makes an output of shape {list(shape)}, which", layer=call.name)


# --- config helpers -----------------------------------------------------------------------------

def ints(value: Any, n: int, what: str = "value") -> tuple[int, ...]:
    """An int or ``n`` ints (Keras's ``standardize_tuple``)."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    out = tuple(int(v) for v in value)
    if len(out) != n:
        raise FormatError(f"{what} should have {n} entries, got {value}")
    return out


def pairs(value: Any, n: int) -> tuple[tuple[int, int], ...]:
    """Padding/cropping: an int, ``n`` ints (symmetric), or ``n`` (before, after) pairs."""
    if isinstance(value, (int, np.integer)):
        return ((int(value), int(value)),) * n
    value = list(value)
    if n == 1 and len(value) == 2 and all(isinstance(v, (int, np.integer)) for v in value):
        return ((int(value[0]), int(value[1])),)
    if len(value) != n:
        raise FormatError(f"expected {n} (before, after) amounts, got {value}")
    return tuple((int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))
                 for v in value)


def channels_first(cfg: dict) -> bool:
    return cfg.get("data_format") == "channels_first"


def compute_dtype(cfg: dict) -> np.dtype:
    """The float dtype a layer computes in (its dtype policy's compute dtype; float64 within
    ``exact()``)."""
    if exact_mode():
        return np.dtype(np.float64)
    name = cfg.get("dtype") or "float32"
    if isinstance(name, dict):
        name = (name.get("config") or {}).get("name", "float32")
    if "_from_" in name:
        name = name.split("_from_", 1)[1]
    name = {"mixed_float16": "float16", "mixed_bfloat16": "float32", "bfloat16": "float32"
            }.get(name, name)
    try:
        dtype = np.dtype(name)
    except TypeError:
        return np.dtype(np.float32)
    return dtype if dtype.kind == "f" else np.dtype(np.float32)


def as_float(x: np.ndarray, cfg: dict | None = None) -> np.ndarray:
    """Keras's autocast: float inputs go to the compute dtype; ints are promoted to it."""
    dtype = compute_dtype(cfg or {})
    x = np.asarray(x)
    return x if x.dtype == dtype else x.astype(dtype)


def to_spatial_last(x: np.ndarray, cfg: dict) -> np.ndarray:
    """channels_first -> channels_last (a view); channels_last untouched."""
    if channels_first(cfg):
        return np.moveaxis(x, 1, -1)
    return x


def from_spatial_last(y: np.ndarray, cfg: dict) -> np.ndarray:
    if channels_first(cfg):
        return np.ascontiguousarray(np.moveaxis(y, -1, 1))
    return y


def unsupported(call: Call, what: str) -> UnsupportedError:
    return UnsupportedError(f"{call.class_name}: {what}", layer=call.name)
