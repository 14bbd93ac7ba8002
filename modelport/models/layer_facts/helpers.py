"""What the family modules' rules share: spec arithmetic for shape rules, config readers for
variable rules. The behaviour each one mirrors is Keras 3's, named where it is not obvious."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import FormatError
from .base import TensorSpec

# --- shape rules ----------------------------------------------------------------------------

# What ONNX (int64 dims) and every array library can hold; a config that asks for more (or for a
# negative size) is refused here, not by the writer of the converted file.
MAX_DIM = 2**63 - 1


def sized(specs: list[TensorSpec], what: str) -> list[TensorSpec]:
    """``specs`` unchanged, or a FormatError where a dimension is negative or past int64."""
    for spec in specs:
        for d in spec.shape:
            if d is not None and not 0 <= d <= MAX_DIM:
                raise FormatError(f"{what}: a dimension of {d} in shape {list(spec.shape)} "
                                  "(sizes are 0 to 2**63-1)")
    return specs


def compute_dtype(cfg: dict) -> str:
    """The dtype a layer computes in: its dtype policy's compute dtype."""
    name = cfg.get("dtype") or "float32"
    if isinstance(name, dict):  # a policy object that escaped canonicalisation
        name = (name.get("config") or {}).get("name", "float32")
    if not isinstance(name, str):
        raise FormatError(f"dtype {name!r} is not a dtype name")
    if "_from_" in name:  # quantized policies ("int8_from_mixed_bfloat16") compute in their source
        name = name.split("_from_", 1)[1]
    return {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}.get(name, name)


def out(cfg: dict, shape: tuple | list) -> list[TensorSpec]:
    """One output of ``shape`` in the layer's compute dtype."""
    return [TensorSpec(tuple(shape), compute_dtype(cfg))]


def same_shape(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    """The shape rule of a layer whose output is shaped like its input, in its compute dtype."""
    return out(cfg, one(inputs).shape)


def moved(cfg: dict, x: TensorSpec, shape: tuple) -> list[TensorSpec]:
    """One output of ``shape`` for a data-movement layer: only floats are autocast on the way
    in, so these layers hand back what they were given."""
    return [TensorSpec(tuple(shape), compute_dtype(cfg) if "float" in x.dtype else x.dtype)]


def one(inputs: list[TensorSpec], rank: int | None = None, *, min_rank: int = 0) -> TensorSpec:
    """The first input, checked to have ``rank`` (or at least ``min_rank``) dimensions."""
    if not inputs:
        raise FormatError("the layer is called on no tensor")
    x = inputs[0]
    if (rank is not None and len(x.shape) != rank) or len(x.shape) < min_rank:
        want = f"rank {rank}" if rank is not None else f"rank >= {min_rank}"
        raise FormatError(f"expects an input of {want}, got shape {x.shape}")
    return x


def ints(value: Any, n: int) -> tuple[int, ...]:
    """Keras's ``standardize_tuple``: an int, or a list of ``n`` ints."""
    found = (int(value),) * n if isinstance(value, int) else tuple(int(v) for v in value)
    if len(found) != n:
        raise FormatError(f"expected {n} values, got {value}")
    return found


def pairs(value: Any, n: int) -> tuple[tuple[int, int], ...]:
    """Padding or cropping amounts: int, ``n`` ints (symmetric), or ``n`` (before, after) pairs."""
    if isinstance(value, int):
        return ((value, value),) * n
    value = list(value)
    if n == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
        return ((value[0], value[1]),)  # the 1D form is a single (before, after) pair
    if len(value) != n:
        raise FormatError(f"expected {n} (before, after) amounts, got {value}")
    return tuple((v, v) if isinstance(v, int) else (int(v[0]), int(v[1])) for v in value)


def channels_first(cfg: dict) -> bool:
    """Whether the layer's ``data_format`` puts channels before the spatial axes."""
    return cfg.get("data_format") == "channels_first"


def positive(d: int, what: str) -> int:
    """``d``, or a FormatError saying that ``what`` leaves nothing of an axis."""
    if d <= 0:
        raise FormatError(f"{what} would leave a dimension of size {d}")
    return d


def per_axis(cfg: dict, inputs: list, n: int, size: Callable[[int, int], int],
             channels: Callable[[Any], Any] = lambda c: c) -> list[TensorSpec]:
    """Spatial layers: ``size(d, axis)`` for each known spatial size, ``channels(c)``."""
    x = one(inputs, n + 2)
    cf = channels_first(cfg)
    spatial = x.shape[2:] if cf else x.shape[1:-1]
    c = channels(x.shape[1] if cf else x.shape[-1])
    sizes = tuple(None if d is None else size(d, i) for i, d in enumerate(spatial))
    return out(cfg, (x.shape[0], c, *sizes) if cf else (x.shape[0], *sizes, c))


def window(cfg: dict, kernel: tuple, strides: tuple,
           dilation: tuple) -> Callable[[int, int], int]:
    """``size(d, axis)`` of a sliding window (convolution or pooling)."""
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same", "causal"):
        raise FormatError(f"padding {padding!r} is not valid, same or causal")

    def size(d: int, i: int) -> int:
        if padding == "valid":
            span = dilation[i] * (kernel[i] - 1) + 1
            return positive((d - span) // strides[i] + 1, "the window")
        return (d - 1) // strides[i] + 1  # causal pads on the left only, by as much as same
    return size


def broadcast(a: tuple, b: tuple) -> tuple:
    """NumPy broadcasting of two shapes with unknown (``None``) sizes."""
    if len(a) < len(b):
        a, b = b, a
    shape = list(a[:len(a) - len(b)])
    for i, j in zip(a[len(a) - len(b):], b):
        if i is not None and j is not None and 1 not in (i, j) and i != j:
            raise FormatError(f"inputs of shapes {a} and {b} do not broadcast")
        shape.append(None if None in (i, j) else j if i == 1 else i)
    return tuple(shape)


# --- variables ------------------------------------------------------------------------------

# Statistics and adapt() state: variables Keras never trains.
NON_TRAINABLE = frozenset({"moving_mean", "moving_variance", "mean", "variance", "count"})


def leaf(names: Callable[[dict], list[str]]) -> Callable[[dict], list[tuple[str, bool]]]:
    """The variables of a layer that owns them directly, from their names in creation order."""
    def variables(config: dict) -> list[tuple[str, bool]]:
        return [(n, n not in NON_TRAINABLE) for n in names(config)]
    return variables


def no_variables(config: dict) -> list[tuple[str, bool]]:
    """The variables of a layer that owns none."""
    return []


def bias(config: dict) -> list[str]:
    """``bias`` where the layer has one (``use_bias``, default True)."""
    return ["bias"] if config.get("use_bias", True) else []


def kernel_dims(value: Any, rank: int) -> tuple[int, ...]:
    """``kernel_size`` and friends: an int or a list, as Keras accepts them."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * rank
    values = tuple(int(v) for v in value)
    if len(values) != rank:
        raise ValueError(f"{values} for rank {rank}")
    return values


def channels(config: dict, spec: TensorSpec) -> int | None:
    """The input's channel count, where ``data_format`` says it is."""
    first = config.get("data_format") == "channels_first"
    return spec.shape[1] if first else spec.shape[-1]


def axes(config: dict, spec: TensorSpec, default: int = -1) -> tuple[int, ...]:
    """A normalization's ``axis`` (an int or a list) as non-negative axes of ``spec``."""
    axis = config.get("axis", default)
    found = axis if isinstance(axis, (list, tuple)) else [axis]
    rank = len(spec.shape)
    return tuple(int(a) % rank for a in found)
