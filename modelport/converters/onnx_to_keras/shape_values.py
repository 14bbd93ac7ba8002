"""Shape arithmetic evaluated symbolically, and folded where static shapes make it constant.

Exporters compute target shapes at run time from ``Shape`` (tf2onnx's ``Tensordot``:
``Concat(Gather(Shape(x), [0, 1]), [N])``; PyTorch's ``x.size(1)``). Keras shapes are static
but for the batch, so such a computation is a list of integers and at most the batch size of
some tensor. ``symbolic`` evaluates a 1-D (or scalar) integer value to that list: each item an
``int`` or a ``Dim`` (axis ``axis`` of value ``value``, unknown until run time).
``fold_static_shapes`` replaces the values whose items are all integers by initializers before
raising, so the rules downstream (Reshape's target, Expand's shape, ConstantOfShape, Range)
see constants, as ONNX's own constant folding would with the shapes pinned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import const_array, optional_input

STANDARD = ("", "ai.onnx")
INTS = {ir.DataType.INT64, ir.DataType.INT32}
# Ops through which symbolic evaluation goes (others stop it: their result is not a shape).
SHAPE_OPS = {"Shape", "Cast", "Identity", "Gather", "Concat", "Slice", "Unsqueeze", "Squeeze",
             "Add", "Sub", "Mul", "Div"}
MAX_ITEMS = 64  # a longer value is not a shape


@dataclass(frozen=True)
class Dim:
    """Axis ``axis`` of ``value``: a size known only at run time."""

    value: ir.Value
    axis: int

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dim) and other.value is self.value and other.axis == self.axis

    def __hash__(self) -> int:
        return hash((id(self.value), self.axis))


Item = int | Dim


@dataclass(frozen=True)
class Symbolic:
    """A symbolically evaluated integer value: its items, and whether it is a scalar."""

    items: tuple[Item, ...]
    scalar: bool = False

    @property
    def static(self) -> list[int] | None:
        """The items when every one is an integer, else None."""
        if all(isinstance(i, int) for i in self.items):
            return [int(i) for i in self.items]  # type: ignore[arg-type]
        return None


def symbolic(v: ir.Value | None, _depth: int = 0) -> Symbolic | None:
    """``v`` as items (integers or run-time dims), or None where it is not shape arithmetic."""
    if v is None or _depth > 64:
        return None
    c = const_array(v)
    if c is not None:
        if c.dtype.kind not in "iu" or c.ndim > 1 or c.size > MAX_ITEMS:
            return None
        return Symbolic(tuple(int(i) for i in c.reshape(-1)), c.ndim == 0)
    node = v.producer()
    if node is None or node.domain not in STANDARD or node.op_type not in SHAPE_OPS or \
            v.dtype not in INTS:
        return None
    return _evaluate(node, _depth + 1)


def _evaluate(node: ir.Node, depth: int) -> Symbolic | None:
    op = node.op_type
    if op == "Shape":
        return _shape(node)
    args = [symbolic(x, depth) for x in node.inputs]
    first = args[0] if args else None
    if first is None:
        return None
    if op in ("Cast", "Identity"):
        return first
    if op == "Gather":
        return _gather(node, first, args)
    if op == "Concat":
        if any(a is None or a.scalar for a in args):
            return None
        return Symbolic(tuple(i for a in args if a is not None for i in a.items))
    if op == "Slice":
        return _slice(first, args)
    if op == "Unsqueeze":
        return Symbolic(first.items) if first.scalar else None
    if op == "Squeeze":
        return Symbolic(first.items, True) if len(first.items) == 1 else None
    return _arithmetic(op, args)


def _shape(node: ir.Node) -> Symbolic | None:
    x = optional_input(node, 0)
    if x is None or x.shape is None:
        return None
    dims: list[Item] = [d if isinstance(d, int) else Dim(x, i) for i, d in enumerate(x.shape)]
    start = node.attributes.get("start")
    end = node.attributes.get("end")
    lo = int(start.value) if start is not None else 0
    hi = int(end.value) if end is not None else len(dims)
    return Symbolic(tuple(dims[slice(lo, hi)]))


def _gather(node: ir.Node, data: Symbolic, args: list[Symbolic | None]) -> Symbolic | None:
    axis = node.attributes.get("axis")
    index = args[1] if len(args) > 1 else None
    if (axis is not None and int(axis.value) != 0) or data.scalar or index is None or \
            index.static is None:
        return None
    n = len(data.items)
    if any(not -n <= i < n for i in index.static):
        return None
    return Symbolic(tuple(data.items[i] for i in index.static), index.scalar)


def _slice(data: Symbolic, args: list[Symbolic | None]) -> Symbolic | None:
    given = [a.static if a is not None else None for a in args[1:5]]
    starts, ends = given[0], given[1]
    axes = given[2] if len(given) > 2 and args[3] is not None else [0]
    steps = given[3] if len(given) > 3 and args[4] is not None else [1]
    if data.scalar or starts is None or ends is None or axes not in ([0], [-1]) or \
            steps != [1]:
        return None
    n = len(data.items)
    lo, hi = (min(max(b + n if b < 0 else b, 0), n) for b in (starts[0], ends[0]))
    return Symbolic(tuple(data.items[lo:hi]))


def _arithmetic(op: str, args: list[Symbolic | None]) -> Symbolic | None:
    """Integer Add/Sub/Mul/Div of static operands (run-time dims stay unknown: None)."""
    if len(args) != 2 or args[0] is None or args[1] is None:
        return None
    a, b = args[0].static, args[1].static
    if a is None or b is None or (len(a) != len(b) and 1 not in (len(a), len(b))):
        return None
    x, y = np.array(a, np.int64), np.array(b, np.int64)
    if op == "Div" and np.any(y == 0):
        return None
    if op == "Div":
        out = np.trunc(x / y).astype(np.int64)
    else:
        out = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op](x, y)
    return Symbolic(tuple(int(i) for i in np.atleast_1d(out)),
                    args[0].scalar and args[1].scalar)


def fold_static_shapes(graph: ir.Graph) -> int:
    """Replace integer values computed from static shapes by initializers; how many."""
    folded = 0
    for node in list(graph):
        if node.domain not in STANDARD or node.op_type not in SHAPE_OPS or \
                len(node.outputs) != 1:
            continue
        out = node.outputs[0]
        if out.dtype not in INTS or (not out.uses() and not out.is_graph_output()):
            continue
        value = symbolic(out)
        items = value.static if value is not None else None
        if value is None or items is None:
            continue
        array = np.array(items, dtype=out.dtype.numpy())
        if value.scalar:
            array = array.reshape(())
        name = out.name or f"{node.name}_folded"
        out.name = None
        const = ir.Value(name=name, shape=ir.Shape(array.shape), type=ir.TensorType(out.dtype),
                         const_value=ir.Tensor(array))
        out.replace_all_uses_with(const, replace_graph_outputs=True)
        graph.register_initializer(const)
        folded += 1
    for node in reversed(list(graph)):  # the Shapes and Gathers nothing reads any more
        if node.domain in STANDARD and node.op_type in SHAPE_OPS and \
                all(not o.uses() and not o.is_graph_output() for o in node.outputs):
            graph.remove(node, safe=True)
    return folded
