"""What every op function of the TF reference shares: the registry, the op record, helpers.

An op function is ``fn(op: Op) -> np.ndarray | list[np.ndarray]``: it receives the node (typed
attribute access through ``Op``) and the values of its data inputs (control inputs ``^name``
are not values), and returns the node's outputs in TensorFlow's order (output ``k`` becomes
tensor ``name:k``). Nothing here imports TensorFlow, TF.js or modelport's converters: NumPy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import overload

import numpy as np

from ...errors import FormatError, UnsupportedError
from ...limits import MAX_CHECK_TENSOR_ELEMENTS
from ...models import TfNode
from ...models import tfjs_graph as tg
from ...registry import Registry
from ..precision import widened

OpFn = Callable[["Op"], "np.ndarray | list[np.ndarray]"]
REGISTRY: Registry[OpFn] = Registry("TF reference")


def register(*ops: str) -> Callable[[OpFn], OpFn]:
    """Register ``fn`` as the implementation of the TF ops ``ops``."""
    def deco(fn: OpFn) -> OpFn:
        for name in ops:
            REGISTRY.add(name, fn)
        return fn
    return deco


# TF dtypes as NumPy dtypes (bfloat16, strings, resources: not computed here).
MAX_OUTPUT_ELEMENTS = MAX_CHECK_TENSOR_ELEMENTS  # refused before it is allocated

NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16, "float64": np.float64,
                "int32": np.int32, "int64": np.int64, "int16": np.int16, "int8": np.int8,
                "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
                "bool": np.bool_, "complex64": np.complex64}


@dataclass
class Op:
    """One node's evaluation: the node, its data inputs' values and, for Placeholder/Const, the
    value the graph gives it (the feed, the weight)."""

    node: TfNode
    inputs: list[np.ndarray]
    value: np.ndarray | None = None

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def type(self) -> str:
        return self.node.op

    # --- inputs ---

    @property
    def x(self) -> np.ndarray:
        return self.arg(0)

    def arg(self, k: int) -> np.ndarray:
        if k >= len(self.inputs):
            raise FormatError(f"{self.type} node {self.name!r} needs input {k}, it has "
                              f"{len(self.inputs)}")
        return self.inputs[k]

    def int_arg(self, k: int) -> int:
        """A scalar (or one-element) integer input: an axis, a count."""
        v = np.asarray(self.arg(k))
        if v.size != 1:
            raise FormatError(f"{self.type} node {self.name!r}: input {k} should be a scalar, "
                              f"got shape {list(v.shape)}")
        return int(v.reshape(()))

    def ints_arg(self, k: int) -> list[int]:
        return [int(v) for v in np.asarray(self.arg(k)).reshape(-1)]

    # --- attributes ---

    # An attribute read with a default is never None: the overloads say so.
    @overload
    def i(self, name: str, default: int) -> int: ...
    @overload
    def i(self, name: str, default: None = None) -> int | None: ...

    def i(self, name: str, default: int | None = None) -> int | None:
        """Integer attribute ``name``, else ``default``."""
        return tg.attr_int(self.node, name, default)

    @overload
    def f(self, name: str, default: float) -> float: ...
    @overload
    def f(self, name: str, default: None = None) -> float | None: ...

    def f(self, name: str, default: float | None = None) -> float | None:
        """Float attribute ``name``, else ``default``."""
        return tg.attr_float(self.node, name, default)

    def b(self, name: str, default: bool = False) -> bool:
        return bool(tg.attr_bool(self.node, name, default))

    @overload
    def s(self, name: str, default: str) -> str: ...
    @overload
    def s(self, name: str, default: None = None) -> str | None: ...

    def s(self, name: str, default: str | None = None) -> str | None:
        """String attribute ``name``, else ``default``."""
        return tg.attr_str(self.node, name, default)

    def dtype(self, name: str, default: str = "float32") -> np.dtype:
        tf_name = tg.attr_type(self.node, name, default)
        if tf_name not in NUMPY_DTYPES:
            raise self.unsupported(f"dtype {tf_name!r} (attribute {name})")
        return widened(np.dtype(NUMPY_DTYPES[tf_name]))

    def ints(self, name: str) -> list[int]:
        return tg.attr_list(self.node, name, "i")

    def strs(self, name: str) -> list[str]:
        return tg.attr_list(self.node, name, "s")

    def data_format(self, default: str = "NHWC") -> str:
        return self.s("data_format", default) or default

    def channels_first(self) -> bool:
        fmt = self.data_format()
        if fmt not in ("NHWC", "NCHW", "NDHWC", "NCDHW", "NWC", "NCW"):
            raise self.unsupported(f"data_format {fmt!r}")
        return fmt.startswith("NC")

    # --- errors ---

    def sized(self, shape) -> list[int]:
        """``shape``, checked before an output of that shape is allocated: a size taken from a
        constant (paddings, multiples, fill dims) can ask for any amount of memory, and an
        allocation that succeeds on an overcommitting system is only killed when filled."""
        dims = [int(d) for d in shape]
        count = 1
        for d in dims:
            if d < 0:
                raise self.invalid(f"a negative size in {dims}")
            count *= d
        if count > MAX_OUTPUT_ELEMENTS:
            raise UnsupportedError(f"{self.type} node {self.name!r}: an output of shape {dims} "
                                   f"({count} elements) is past what a check allocates "
                                   f"({MAX_OUTPUT_ELEMENTS})")
        from ...budget import VALUE_FACTOR, require

        # in bytes against the memory budget (float64: the noise run), before it is allocated
        require(count * 8 * VALUE_FACTOR,
                f"{self.type} node {self.name!r}: an output of shape {dims}, which")
        return dims

    def unsupported(self, what: str) -> UnsupportedError:
        return UnsupportedError(f"{self.type} node {self.name!r}: {what} is not supported by "
                                "the TF reference")

    def invalid(self, what: str) -> FormatError:
        return FormatError(f"{self.type} node {self.name!r}: {what}")


# --- layout -------------------------------------------------------------------------------------

def to_last(x: np.ndarray, channels_first: bool) -> np.ndarray:
    """Channels-first -> channels-last (a view); channels-last untouched."""
    return np.moveaxis(x, 1, -1) if channels_first else x


def from_last(y: np.ndarray, channels_first: bool) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(y, -1, 1)) if channels_first else y


def spatial(values: list[int], channels_first: bool, what: str, op: Op) -> list[int]:
    """The spatial entries of a per-dimension attribute (strides, ksize, dilations) given in
    data_format order; the batch and channel entries must be 1."""
    if channels_first:
        outer, inner = [values[0], values[1]], values[2:]
    else:
        outer, inner = [values[0], values[-1]], values[1:-1]
    if any(v != 1 for v in outer):
        raise op.unsupported(f"{what} {values} (batch and channel entries must be 1)")
    return inner


# --- padding of receptive fields (the fields themselves: runtime.windows) -----------------------

def padding_amounts(op: Op, sizes: tuple, k_eff: tuple, strides: tuple,
                    channels_first: bool) -> list[tuple[int, int]]:
    """TF's padding: VALID none; SAME ``max((ceil(n/s) - 1) s + k - n, 0)`` in total, the
    smaller half before; EXPLICIT from ``explicit_paddings`` (pairs in data_format order)."""
    padding = op.s("padding", "VALID")
    if padding == "VALID":
        return [(0, 0)] * len(sizes)
    if padding == "SAME":
        out = []
        for n, k, s in zip(sizes, k_eff, strides):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            out.append((total // 2, total - total // 2))
        return out
    if padding == "EXPLICIT":
        flat = op.ints("explicit_paddings")
        rank = len(sizes) + 2
        if len(flat) != 2 * rank:
            raise op.invalid(f"explicit_paddings has {len(flat)} entries for a rank-{rank} input")
        pairs = [(flat[2 * i], flat[2 * i + 1]) for i in range(rank)]
        pairs = pairs[2:] if channels_first else pairs[1:-1]
        return pairs
    raise op.unsupported(f"padding {padding!r}")
