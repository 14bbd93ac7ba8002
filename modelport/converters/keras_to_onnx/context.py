"""What every lowering function works with: the call being lowered and a graph builder.

A lowering is ``fn(ctx: Builder, call: Call) -> list[ir.Value]`` registered in ``LOWERINGS``.
Values are in the Keras layout (channels last) on the way in and on the way out; a lowering that
needs ONNX's channels-first ops wraps them in Transposes (``ctx.to_channels_first`` and back)
and the layout pass removes the pairs that cancel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import onnx_ir as ir
from onnx_ir import tape

from ...errors import UnsupportedError
from ...models import Layer
from ...models.keras_shapes import TensorSpec
from ...registry import Registry
from ..irbuild import tensor, typed

ONNX_DTYPES = {"float32": ir.DataType.FLOAT, "float16": ir.DataType.FLOAT16,
               "float64": ir.DataType.DOUBLE, "int32": ir.DataType.INT32,
               "int64": ir.DataType.INT64, "bool": ir.DataType.BOOL, "uint8": ir.DataType.UINT8,
               "int8": ir.DataType.INT8, "bfloat16": ir.DataType.BFLOAT16}


@dataclass
class Call:
    """One call of a layer: its inputs as ONNX values with their static specs."""

    layer: Layer
    node: int
    inputs: list[ir.Value]
    in_specs: list[TensorSpec]
    out_specs: list[TensorSpec]
    kwargs: dict = field(default_factory=dict)  # tensor-valued kwargs are ir.Values
    masks: list[ir.Value | None] = field(default_factory=list)  # bool (batch, time) per input
    args: list = field(default_factory=list)  # positional args as called: Values and constants
    kwarg_masks: dict = field(default_factory=dict)  # Keras masks of tensor kwargs, by name

    @property
    def config(self) -> dict:
        """The layer's canonical config."""
        return self.layer.config

    @property
    def name(self) -> str:
        """The layer's name."""
        return self.layer.name

    @property
    def x(self) -> ir.Value:
        """The first input."""
        return self.inputs[0]

    @property
    def spec(self) -> TensorSpec:
        """The first input's static spec."""
        return self.in_specs[0]

    @property
    def rank(self) -> int:
        """The first input's rank."""
        return len(self.in_specs[0].shape)

    def dim(self, axis: int) -> int:
        """The static size of the first input's ``axis``, which a per-axis weight needs."""
        size = self.spec.shape[axis]
        if size is None:
            raise UnsupportedError(f"axis {axis} of the input has no static size, which this "
                                   "layer needs", layer=self.name)
        return int(size)

    def weight(self, path: str) -> np.ndarray:
        """The layer variable at ``path``; a layer without one is refused."""
        for w in self.layer.weights:
            if w.path == path:
                return w.array
        raise UnsupportedError(f"the layer has no variable {path!r}", layer=self.name)

    def has_weight(self, path: str) -> bool:
        """Whether the layer has a variable at ``path``."""
        return any(w.path == path for w in self.layer.weights)


def static_dims(dims: Sequence[int | None]) -> list[int] | None:
    """``dims`` when every one is known, else None."""
    known = [d for d in dims if d is not None]
    return known if len(known) == len(dims) else None


@dataclass
class Lowered:
    """Outputs of a call, and the Keras masks they carry (None where there is none)."""

    outputs: list[ir.Value]
    masks: list[ir.Value | None] | None = None


F = TypeVar("F", bound=Callable[..., Any])


class Lowerings(Registry[Callable[..., Any]]):
    """The lowering of each Keras class, and how its lowered call behaves, given where it is
    registered: ``@LOWERINGS.register("LSTM", relowered=True)``.

    ``relowered``: no op-by-op rule can read the lowered ONNX back (a recurrent cell as a Scan
    loop, ...); the call is recorded in the model's metadata (``HINT_KEY``) and raising takes
    the record only as a hypothesis, proved by lowering it again (``onnx_to_keras.relower``).
    ``mask``: ``"propagate"`` where the output carries the input's Keras mask unchanged (a
    lowering that computes masks returns ``Lowered(outputs, masks)``), ``"drop"`` otherwise.
    """

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.relowered: set[str] = set()
        self.propagates_mask: set[str] = set()

    def register(self, *names: str, relowered: bool = False, mask: str = "drop",
                 **bound: Any) -> Callable[[F], F]:
        """Decorator entering a lowering under ``names`` with its behaviour (see the class)."""
        if mask not in ("drop", "propagate"):
            raise ValueError(f"unknown mask policy {mask!r}")
        enter = super().register(*names, **bound)

        def deco(fn: F) -> F:
            enter(fn)  # refuses a name registered twice before any flag is set
            if relowered:
                self.relowered.update(names)
            if mask == "propagate":
                self.propagates_mask.update(names)
            return fn
        return deco

    def remove(self, name: str) -> None:
        """Take ``name`` out again, with its flags."""
        super().remove(name)
        self.relowered.discard(name)
        self.propagates_mask.discard(name)


LOWERINGS = Lowerings("Keras -> ONNX lowering")
# keras.ops nodes (operations, not layers; some share a layer's class name).
OPERATIONS: Registry = Registry("Keras -> ONNX lowering of keras.ops")


class Builder:
    """Builds ONNX nodes and initializers for one model; knows the target opset."""

    def __init__(self, opset: int) -> None:
        self.opset = opset
        self.tape = tape.Tape()
        self._names: set[str] = set()
        self.prefix = ""

    # --- values ---------------------------------------------------------------------------------

    def unique(self, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``, ... where taken; reserved from then on."""
        base, i = name, 1
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    def const(self, array: Any, name: str | None = None, dtype: Any = None) -> ir.Value:
        """An initializer holding ``array`` (numpy dtype kept unless ``dtype`` is given)."""
        data = np.asarray(array, dtype=dtype) if dtype is not None else np.asarray(array)
        if data.dtype == np.float64 and dtype is None:
            data = data.astype(np.float32)
        label = self.unique(name or f"{self.prefix}const")
        return self.tape.initializer(tensor(np.ascontiguousarray(data), name=label), name=label)

    def ints(self, values: Sequence[int] | np.ndarray, name: str | None = None) -> ir.Value:
        """An int64 initializer holding ``values``."""
        return self.const(np.asarray(list(values), dtype=np.int64), name)

    def scalar(self, value: float, like: TensorSpec | None = None) -> ir.Value:
        """A 0-d initializer ``value`` in ``like``'s dtype where ONNX has that dtype, else float32
        (float64 narrowed to float32, as ``const`` does)."""
        dtype = (np.dtype(like.dtype) if like is not None and like.dtype in ONNX_DTYPES
                 else np.float32)
        return self.const(np.asarray(value, dtype=dtype), f"{self.prefix}scalar")

    def weight(self, call: Call, path: str, array: np.ndarray | None = None,
               suffix: str = "") -> ir.Value:
        """A layer variable as an initializer named ``<layer>/<path>``; ``array`` may replace
        its value with a re-laid-out copy (e.g. a conv kernel in ONNX's OIHW order)."""
        data = call.weight(path) if array is None else array
        return self.const(data, f"{call.name}/{path}{suffix}")

    # --- nodes ----------------------------------------------------------------------------------

    def op(self, op_type: str, *inputs: ir.Value | None, **attrs: Any) -> ir.Value:
        """Emit ONNX op ``op_type`` (a unique node name under ``prefix``); its output."""
        return self.tape.op(op_type, list(inputs), typed(attrs),
                            name=self.unique(f"{self.prefix}{op_type}"))

    def ops(self, op_type: str, *inputs: ir.Value | None, outputs: int, **attrs: Any
            ) -> list[ir.Value]:
        """Emit ONNX op ``op_type`` with ``outputs`` outputs; their values."""
        return list(self.tape.op_multi_out(op_type, list(inputs), typed(attrs),
                                           num_outputs=outputs,
                                           name=self.unique(f"{self.prefix}{op_type}")))

    # --- helpers shared by many lowerings -------------------------------------------------------

    def transpose(self, x: ir.Value, perm: Sequence[int]) -> ir.Value:
        """``x`` transposed by ``perm``; the identity permutation emits nothing."""
        perm = [int(p) for p in perm]
        if perm == sorted(perm):
            return x
        return self.op("Transpose", x, perm=perm)

    def to_channels_first(self, x: ir.Value, rank: int) -> ir.Value:
        """``x`` of rank ``rank`` from (N, ..., C) to (N, C, ...)."""
        return self.transpose(x, [0, rank - 1] + list(range(1, rank - 1)))

    def to_channels_last(self, x: ir.Value, rank: int) -> ir.Value:
        """``x`` of rank ``rank`` from (N, C, ...) to (N, ..., C)."""
        return self.transpose(x, [0] + list(range(2, rank)) + [1])

    def reshape(self, x: ir.Value, shape: Sequence[int]) -> ir.Value:
        """Reshape with 0 = keep that input dimension (the batch) and -1 = infer."""
        return self.op("Reshape", x, self.ints(shape, f"{self.prefix}shape"))

    def reduce(self, op_type: str, x: ir.Value, axes: Sequence[int], keepdims: bool) -> ir.Value:
        """ONNX reduction ``op_type`` of ``x`` over ``axes``, the axes an input or an attribute as
        ``opset`` requires."""
        # ReduceSum takes axes as an input since opset 13, the other reductions since 18.
        axes = [int(a) for a in axes]
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, x, self.ints(axes, f"{self.prefix}axes"),
                           keepdims=int(keepdims))
        return self.op(op_type, x, axes=axes, keepdims=int(keepdims))

    def squeeze(self, x: ir.Value, axes: Sequence[int]) -> ir.Value:
        """``x`` without its size-1 ``axes``."""
        return self.op("Squeeze", x, self.ints(axes, f"{self.prefix}axes"))

    def unsqueeze(self, x: ir.Value, axes: Sequence[int]) -> ir.Value:
        """``x`` with size-1 axes inserted at ``axes``."""
        return self.op("Unsqueeze", x, self.ints(axes, f"{self.prefix}axes"))

    def split(self, x: ir.Value, sizes: Sequence[int], axis: int) -> list[ir.Value]:
        """``x`` split along ``axis`` into pieces of ``sizes``."""
        # Opset 18 added num_outputs; giving it together with the split input is an error.
        return self.ops("Split", x, self.ints(sizes, f"{self.prefix}split"),
                        outputs=len(sizes), axis=axis)

    def slice(self, x: ir.Value, starts: Sequence[int], ends: Sequence[int],
              axes: Sequence[int], steps: Sequence[int] | None = None) -> ir.Value:
        """ONNX Slice of ``x``: ``starts`` to ``ends`` (exclusive) on ``axes``, with optional
        ``steps``."""
        inputs = [x, self.ints(starts, f"{self.prefix}starts"),
                  self.ints(ends, f"{self.prefix}ends"), self.ints(axes, f"{self.prefix}axes")]
        if steps is not None:
            inputs.append(self.ints(steps, f"{self.prefix}steps"))
        return self.op("Slice", *inputs)

    def cast(self, x: ir.Value, dtype: str) -> ir.Value:
        """``x`` cast to ``dtype``, a dtype name of ``ONNX_DTYPES``."""
        return self.op("Cast", x, to=ONNX_DTYPES[dtype])
