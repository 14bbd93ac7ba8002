"""What the TF -> ONNX mappings share: the registry they add to, the op context each mapping
gets (``TfOp``), and layout helpers. The driver (``driver.py``) imports the family modules to
register them; the families import only this module, never the driver."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx_ir as ir

from ...errors import FormatError, UnsupportedError
from ...models import TfjsGraph, TfNode
from ...models import tfjs_graph as tg
from ...registry import Registry
from ..irbuild import tensor
from ..keras_to_onnx.context import ONNX_DTYPES, Builder

MAPPINGS: Registry = Registry("TF -> ONNX mapping")
# Ops with nothing to compute: their node becomes no ONNX node at all.
PASSIVE = {"Placeholder", "PlaceholderWithDefault", "Const", "NoOp"}
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


@dataclass
class Probe:
    """What the dummy runs learnt about each TF tensor (``node:k``)."""

    shapes: dict[str, list[int | None]] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)
    consts: dict[str, np.ndarray] = field(default_factory=dict)


class NodeInputs(list):
    """A TF node's data inputs (values or their refs). A model.json may give any op any
    number of inputs, so reading one the node does not have is a FormatError that names the
    node, wherever a mapping reads it, slices included."""

    def __init__(self, items, node: TfNode, total: int | None = None) -> None:
        super().__init__(items)
        self.node = node
        self.total = len(self) if total is None else total

    def __getitem__(self, k):
        if isinstance(k, slice):
            return NodeInputs(list.__getitem__(self, k), self.node, self.total)
        try:
            return list.__getitem__(self, k)
        except IndexError:
            raise FormatError(f"{self.node.op} node {self.node.name!r} has {self.total} data "
                              f"input(s), too few for {self.node.op}") from None


@dataclass
class TfOp:
    """One TF node being mapped: its data inputs as ONNX values and what is known of them."""

    node: TfNode
    inputs: list[ir.Value]
    refs: list[str]
    probe: Probe
    ctx: Ctx

    # --- node facts ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The TF node's name."""
        return self.node.name

    @property
    def op(self) -> str:
        """The TF node's op."""
        return self.node.op

    def fail(self, message: str) -> UnsupportedError:
        """An UnsupportedError (to raise) that names this node."""
        return UnsupportedError(f"{self.op} node {self.name!r}: {message}")

    def bad(self, message: str) -> FormatError:
        """A FormatError (to raise) that names this node."""
        return FormatError(f"{self.op} node {self.name!r}: {message}")

    def i(self, name: str, default: int | None = None) -> int:
        """Integer attribute ``name``, or ``default``; neither is a FormatError."""
        value = tg.attr_int(self.node, name, default)
        if value is None:
            raise self.bad(f"has no integer attribute {name!r}")
        return value

    def f(self, name: str, default: float | None = None) -> float:
        """Float attribute ``name``, or ``default``; neither is a FormatError."""
        value = tg.attr_float(self.node, name, default)
        if value is None:
            raise self.bad(f"has no float attribute {name!r}")
        return value

    def b(self, name: str, default: bool = False) -> bool:
        """Boolean attribute ``name``, or ``default`` when the node has none."""
        return bool(tg.attr_bool(self.node, name, default))

    def s(self, name: str, default: str | None = None) -> str:
        """String attribute ``name``, or ``default``; neither is a FormatError."""
        value = tg.attr_str(self.node, name, default)
        if value is None:
            raise self.bad(f"has no string attribute {name!r}")
        return value

    def ints(self, name: str, length: int | None = None, default: list[int] | None = None
             ) -> list[int]:
        """Integer-list attribute ``name`` (``default`` when empty or absent); with ``length``, any
        other count is a FormatError."""
        values = tg.attr_list(self.node, name, "i")
        if not values and default is not None:
            return list(default)
        if length is not None and len(values) != length:
            raise self.bad(f"attribute {name!r} has {len(values)} values, not {length}")
        return values

    # --- input facts -----------------------------------------------------------------------
    def dtype(self, k: int) -> str:
        """Input ``k``'s TF dtype: the probed one, else the node's ``T``, else float32."""
        dtype = self.probe.dtypes.get(self.refs[k])
        if dtype is None:
            dtype = tg.attr_type(self.node, "T", "float32") or "float32"
        return dtype

    def out_dtype(self, k: int = 0) -> str | None:
        """Output ``k``'s probed TF dtype, or None when the dummy runs did not see it."""
        return self.probe.dtypes.get(f"{self.name}:{k}")

    def shape(self, k: int) -> list[int | None] | None:
        """Input ``k``'s probed shape, or None when its rank is unknown."""
        return self.probe.shapes.get(self.refs[k])

    def out_shape(self, k: int = 0) -> list[int | None] | None:
        """Output ``k``'s probed shape, or None when its rank is unknown."""
        return self.probe.shapes.get(f"{self.name}:{k}")

    def known_shape(self, k: int) -> list[int | None]:
        """Input ``k``'s shape (dimensions may be unknown); an unknown rank is refused."""
        shape = self.shape(k)
        if shape is None:
            raise self.fail(f"needs the rank of {self.refs[k]!r}, which is unknown")
        return shape

    def rank(self, k: int) -> int:
        """Input ``k``'s rank; an unknown rank is refused."""
        return len(self.known_shape(k))

    def const(self, k: int) -> np.ndarray | None:
        """Input ``k``'s constant value, or None (computed at run time, or no such input)."""
        return self.probe.consts.get(self.refs[k]) if k < len(self.refs) else None

    def const_ints(self, k: int, what: str) -> list[int]:
        """Constant input ``k`` (the node's ``what``) as flat ints; a run-time value is refused."""
        value = self.const(k)
        if value is None:
            raise self.fail(f"its {what} (input {k}) is computed at run time; only constant "
                            f"{what}s are supported")
        return [int(v) for v in np.asarray(value).reshape(-1)]

    def const_int(self, k: int, what: str) -> int:
        """Constant input ``k`` (the node's ``what``) as one int; more or fewer values are a
        FormatError."""
        values = self.const_ints(k, what)
        if len(values) != 1:
            raise self.bad(f"its {what} has {len(values)} values, not one")
        return values[0]

    def is_float(self, k: int = 0) -> bool:
        """Whether input ``k`` holds floats (bfloat included)."""
        return self.dtype(k).startswith(("float", "bfloat"))

    # --- building --------------------------------------------------------------------------
    @property
    def b_(self) -> Builder:
        """The ONNX builder the mapping emits into."""
        return self.ctx.builder

    def emit(self, op_type: str, *inputs: ir.Value | None, **attrs: Any) -> ir.Value:
        """Emit ONNX op ``op_type``; its output."""
        return self.ctx.builder.op(op_type, *inputs, **attrs)

    def emits(self, op_type: str, *inputs: ir.Value | None, outputs: int, **attrs: Any
              ) -> list[ir.Value]:
        """Emit ONNX op ``op_type`` with ``outputs`` outputs; their values."""
        return self.ctx.builder.ops(op_type, *inputs, outputs=outputs, **attrs)

    def scalar(self, value: float, dtype: str | None = None) -> ir.Value:
        """A 0-d constant ``value`` in ``dtype`` (default: input 0's dtype)."""
        return self.ctx.builder.const(np.asarray(value, dtype=dtype or self.dtype(0)),
                                      f"{self.name}/scalar")

    def int64(self, k: int) -> ir.Value:
        """Input ``k`` as int64 (ONNX's type for shapes, axes, pads, repeats, k)."""
        value = self.const(k)
        if value is not None:
            return self.ctx.builder.const(np.asarray(value, dtype=np.int64), f"{self.name}/i64")
        if self.dtype(k) == "int64":
            return self.inputs[k]
        return self.emit("Cast", self.inputs[k], to=ir.DataType.INT64)

    def cast_to(self, x: ir.Value, dtype: str) -> ir.Value:
        """``x`` cast to TF dtype ``dtype``; one ONNX has no equivalent for is refused. A cast
        to float64 is one to float32, as tfjs runs it (it has no double; a graph-model's double
        constants are stored as float32, and a float64 cast would not meet them)."""
        dtype = "float32" if dtype == "float64" else dtype
        if dtype not in ONNX_DTYPES:
            raise self.fail(f"dtype {dtype} has no ONNX equivalent")
        return self.emit("Cast", x, to=ONNX_DTYPES[dtype])

    def axis(self, axis: int, rank: int) -> int:
        """``axis`` in [0, rank); one outside [-rank, rank) is a FormatError."""
        if not -rank <= axis < rank:
            raise self.bad(f"axis {axis} is out of range for rank {rank}")
        return axis % rank


class _Builder(Builder):
    def const(self, array: Any, name: str | None = None, dtype: Any = None) -> ir.Value:
        # np.ascontiguousarray (used by the shared Builder) turns a 0-d array into shape [1];
        # TF scalars must stay scalars (Concat of Unsqueezed scalars, Clip bounds, Pad value).
        # No copy of a weight that is already C-ordered and of the right dtype: the initializer
        # is a read-only view of the source graph's array (nothing may write through it, and
        # the source graph stays as it was for the parity check).
        data = np.asarray(array, dtype=dtype) if dtype is not None else np.asarray(array)
        if data.dtype == np.float64 and dtype is None:
            data = data.astype(np.float32)
        if not data.flags.c_contiguous:
            data = np.array(data, order="C")
        data = data.view()
        data.flags.writeable = False
        label = self.unique(name or f"{self.prefix}const")
        if data.ndim == 0:
            # A Constant node, not an initializer: formats.onnx's streaming writer stores 0-d
            # initializers as shape [1]. const_value still lets passes see the number.
            value = self.tape.op("Constant", [], {"value": tensor(data, name=label)},
                                 name=self.unique(f"{label}/Constant"))
            value.name = label
            value.const_value = tensor(data, name=label)
            return value
        return self.tape.initializer(tensor(data, name=label), name=label)


class Ctx:
    """What the mappings of one conversion share: the target opset and the ONNX builder."""

    def __init__(self, opset: int) -> None:
        self.opset = opset
        self.builder = _Builder(opset)
        self.graph: TfjsGraph | None = None  # the source (control flow reads its library)
        # The driver's own convert, for control flow's functions (set by the driver: the
        # driver imports the mappings, so they cannot import it back).
        self.convert: Callable[[TfjsGraph, int], ir.Model] | None = None


def perm_to_nchw(rank: int) -> list[int]:
    """The permutation from channels-last to channels-first for rank ``rank`` (NHWC -> NCHW)."""
    return [0, rank - 1] + list(range(1, rank - 1))


def perm_to_nhwc(rank: int) -> list[int]:
    """The permutation from channels-first to channels-last for rank ``rank`` (NCHW -> NHWC)."""
    return [0] + list(range(2, rank)) + [1]


def to_first(op: TfOp, x: ir.Value, rank: int) -> ir.Value:
    """``x`` (rank ``rank``) transposed from channels-last to channels-first."""
    return op.b_.transpose(x, perm_to_nchw(rank))


def to_last(op: TfOp, x: ir.Value, rank: int) -> ir.Value:
    """``x`` (rank ``rank``) transposed from channels-first to channels-last."""
    return op.b_.transpose(x, perm_to_nhwc(rank))


def as_list(values: Sequence[int]) -> list[int]:
    """``values`` as a list of Python ints."""
    return [int(v) for v in values]
