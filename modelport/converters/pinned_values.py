"""Inputs fixed to a value before converting (``--input-value NAME=V``): the input becomes a
constant, so what the graph decides from it folds away.

A model that switches on a scalar (Silero VAD's ``sr``: ``If(sr == 16000)`` picks the 16 kHz or
the 8 kHz network) cannot become a Keras model as it is: a Keras input has a batch axis and no
layer branches. With the value fixed, the ``If`` folds to the branch taken and the graph left is
an ordinary one. The result has no such input; the report and the written file record the value
(``VALUES_KEY``), and the check feeds the source that value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError

VALUES_KEY = "modelport.input_values"


@dataclass(frozen=True)
class InputValue:
    """One ``--input-value`` spec: the input's name and its value (a number, or a 1-D list)."""

    name: str
    values: tuple[float, ...]
    scalar: bool  # given as one number (a scalar input) rather than a list

    def __str__(self) -> str:
        return f"{self.name}={','.join(_number(v) for v in self.values)}"


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def parse_input_values(specs: Iterable[str | InputValue | tuple[str, object]]
                       ) -> tuple[InputValue, ...]:
    """Specs as ``InputValue``s: ``NAME=V`` or ``NAME=V0,V1,...`` strings, or ``(name,
    value)`` pairs from the library; a malformed one is a ``UsageError``."""
    out = []
    for spec in specs:
        if isinstance(spec, InputValue):
            out.append(spec)
            continue
        if isinstance(spec, tuple):
            name, value = spec
            array = np.asarray(value, np.float64)
            if array.ndim > 1:
                raise UsageError(f"--input-value {name}: give a number or a list of numbers")
            out.append(InputValue(str(name), tuple(array.reshape(-1).tolist()), array.ndim == 0))
            continue
        text = str(spec).strip()
        name, sep, rest = text.partition("=")
        items = [t.strip() for t in rest.split(",") if t.strip()]
        if not sep or not name.strip() or not items:
            raise UsageError(f"--input-value {text!r} is not NAME=VALUE (e.g. sr=16000)")
        try:
            values = tuple(float(t) for t in items)
        except ValueError:
            raise UsageError(f"--input-value {text!r}: the value must be numbers (e.g. "
                             "sr=16000)") from None
        out.append(InputValue(name.strip(), values, len(items) == 1 and "," not in rest))
    names = [v.name for v in out]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(f"--input-value gives input {name!r} twice")
    return tuple(out)


def fix_onnx_inputs(model, values: Sequence[InputValue]):
    """A copy of the ``onnx_ir.Model`` with each input named in ``values`` replaced by an
    initializer holding its value (in the input's dtype and shape); an unknown name, a shape
    the value does not fill or a value the dtype cannot hold is a ``UsageError``."""
    import onnx_ir as ir

    model = ir.from_proto(ir.to_proto(model))
    graph = model.graph
    inputs = {v.name: v for v in graph.inputs if v.name not in graph.initializers}
    listing = ", ".join(sorted(inputs))
    for spec in values:
        v = inputs.get(spec.name)
        if v is None:
            raise UsageError(f"--input-value {spec}: the model has no input {spec.name!r}; its "
                             f"inputs: {listing}")
        array = _array(spec, v)
        graph.inputs.remove(v)
        v.const_value = ir.Tensor(array, name=v.name)
        v.shape = ir.Shape(array.shape)
        graph.register_initializer(v)
    return model


def _array(spec: InputValue, v) -> np.ndarray:
    """``spec``'s value shaped as input ``v`` (scalar, or 1-D of the given length)."""
    dtype = v.dtype.numpy() if v.dtype is not None else np.dtype(np.float32)
    shape = None if v.shape is None else list(v.shape)
    if shape is not None and len(shape) > 1:
        raise UsageError(f"--input-value {spec}: input {spec.name!r} has rank {len(shape)}; "
                         "only scalar and 1-D inputs take a value")
    if shape == [] or (shape is None and spec.scalar):
        if len(spec.values) != 1:
            raise UsageError(f"--input-value {spec}: input {spec.name!r} is a scalar")
        array = np.asarray(spec.values[0])
    else:
        size = shape[0] if shape else None
        if isinstance(size, int) and size != len(spec.values):
            raise UsageError(f"--input-value {spec}: input {spec.name!r} holds {size} values, "
                             f"not {len(spec.values)}")
        array = np.asarray(spec.values)
    if np.dtype(dtype).kind in "iub" and not np.all(np.asarray(spec.values) ==
                                                     np.round(spec.values)):
        raise UsageError(f"--input-value {spec}: input {spec.name!r} holds {np.dtype(dtype)} "
                         "values, so the value must be whole")
    return array.astype(dtype)
