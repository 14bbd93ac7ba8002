"""ONNX ops that break the batch-axis rule, raised as Keras 3 operations on literal shapes.

The layer rules refuse a Reshape that moves elements across axis 0 (``[1, 34] -> [17, 2]``),
a Concat with a constant input, an elementwise op with a constant that no layer folds or
between tensors of different ranks, and GatherND with ``batch_dims=0``: a Keras layer treats
axis 0 as the batch. A detector's post-processing (MoveNet's keypoint decoding) is made of
them, on values of a batch of one that have no batch axis at all. ``keras.ops`` calls recorded
as operation nodes of a functional graph have no such rule (Keras 3 builds, saves to ``.keras``,
loads and runs a graph whose tensors have shapes like ``(17, 2)``), so where every shape
involved is static and every model input has a static batch of one (the model computes one
sample; a static batch of several keeps the layer rules' refusals) these nodes are raised to
them, taking ONNX's shapes literally:
Reshape/Squeeze/Unsqueeze -> ``Reshape`` (``newshape`` the whole output shape, batch included);
Concat -> ``Concatenate`` (constants as NumPy operands); Add/Sub/Mul/Div/Max/Min of two
operands -> ``Add``/``Subtract``/``Multiply``/``Divide``/``Maximum``/``Minimum`` (Keras's
broadcasting is NumPy's, ONNX's multidirectional one; a constant is a NumPy operand, which
Keras 3 writes as ``__numpy__`` and restores on load); GatherND ``batch_dims=0`` -> the data
reshaped to ``[cells, rest...]`` and ``Take`` along axis 0 by the linear index
``sum(mod(i_j, d_j) * stride_j)`` (int32, exact below 2**31 cells).

Each operation computes what the ONNX op computes on the same shapes; only ``Reshape`` (here
and in GatherND's form) takes the exported shape literally, so a model so raised runs at the
batch of one it was exported with, and another batch fails there (the element counts disagree)
rather than computing other values. The check feeds such a model one sample at a time (its
source's batch is static).
tfjs-layers has no operation nodes (its refusal stays the layer rule's), and Keras 3's legacy
``.h5`` writer refuses them naming ``--to keras``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx_ir as ir

from ...errors import UnsupportedError
from ...models import TensorRef
from ...models.keras_constants import numpy_arg
from .core import Ctx, attr, static
from .operations import FLOATS, operation
from .operations_numeric import CORE, KERAS_DTYPE

_BINARY = {"Add": "Add", "Sum": "Add", "Sub": "Subtract", "Mul": "Multiply", "Div": "Divide",
           "Max": "Maximum", "Min": "Minimum"}
_INT32 = np.iinfo(np.int32)


def instead(ctx: Ctx, node: ir.Node, refusal: UnsupportedError) -> None:
    """Raise ``node`` as Keras operations on its static shapes; else raise ``refusal`` (the
    layer rule's reason), unchanged."""
    form = _FORMS.get(node.op_type)
    if ctx.for_tfjs or form is None or not _one_sample(ctx) or not _all_static(node):
        raise refusal
    form(ctx, node)
    ctx.literal_batch = True


def _one_sample(ctx: Ctx) -> bool:
    """Whether the model computes one sample: every input's shape is static, the first has a
    batch of one, and no other has a first axis it could be a batch of several on (a state
    ``[2, 1, H]`` beside an input ``[1, T]`` keeps its batch on axis 1; a static batch of
    several is a batch, whose axis the layer rules keep)."""
    shapes = []
    for v in ctx.graph.inputs:
        dims = static([d if isinstance(d, int) else None for d in (v.shape or ())])
        if not dims:
            return False
        shapes.append(dims)
    return bool(shapes) and shapes[0][0] == 1 and all(s[0] == 1 or 1 in s[1:] for s in shapes[1:])


def _all_static(node: ir.Node) -> bool:
    """Whether every input and output of ``node`` has a known shape of known sizes."""
    values = [v for v in [*node.inputs, *node.outputs] if v is not None]
    return all(v.shape is not None and
               static([d if isinstance(d, int) else None for d in v.shape]) is not None
               for v in values)


def _dims(v: ir.Value) -> list[int]:
    assert v.shape is not None  # _all_static
    return [int(d) for d in v.shape if isinstance(d, int)]


def _constant(ctx: Ctx, v: ir.Value, dtype: ir.DataType | None) -> dict:
    """Constant ``v`` as a NumPy operand in the raised model's dtype for ``dtype``."""
    c = ctx.const(v)
    if c is None:
        raise ctx.refuse(f"{v.name!r} is neither a constant nor computed from the inputs")
    keras = KERAS_DTYPE.get(dtype) if dtype is not None else None
    if keras is None:
        raise ctx.refuse(f"a constant of {dtype} values")
    if c.dtype.kind in "iu" and c.size and (c.min() < _INT32.min or c.max() > _INT32.max):
        raise ctx.refuse(f"the constant {v.name!r} holds integers beyond int32")
    return numpy_arg(np.asarray(c).astype(keras))


def _operand(ctx: Ctx, v: ir.Value, dtype: ir.DataType | None) -> TensorRef | dict:
    return ctx.ref(v) if ctx.is_tensor(v) else _constant(ctx, v, dtype)


def _reshape(ctx: Ctx, node: ir.Node) -> None:
    """Reshape / Squeeze / Unsqueeze: ``Reshape`` to the whole static output shape."""
    x = ctx.input(node, 0)
    ctx.output(operation(ctx, "Reshape", {"newshape": _dims(node.outputs[0])}, [ctx.ref(x)]))


def _concat(ctx: Ctx, node: ir.Node) -> None:
    """Concat of tensors and constants: ``Concatenate`` along the axis counted from the
    front."""
    values = [v for v in node.inputs if v is not None]
    if not any(ctx.is_tensor(v) for v in values):
        raise ctx.refuse("every input is a constant")
    out = node.outputs[0]
    axis = int(attr(node, "axis")) % len(_dims(out))
    ctx.output(operation(ctx, "Concatenate", {"axis": axis},
                         [[_operand(ctx, v, out.dtype) for v in values]]))


def _binary(ctx: Ctx, node: ir.Node) -> None:
    """Two operands, tensors or one constant: the Keras operation of the op's name."""
    values = [v for v in node.inputs if v is not None]
    if len(values) != 2 or node.op_type not in _BINARY:
        raise ctx.refuse(f"{node.op_type} of {len(values)} operands")
    if node.op_type == "Div" and values[0].dtype not in FLOATS:
        raise ctx.refuse(f"Div of {values[0].dtype} values truncates; Keras's Divide is true "
                         "division")
    dtype = node.outputs[0].dtype
    ctx.output(operation(ctx, _BINARY[node.op_type], {},
                         [_operand(ctx, v, dtype) for v in values]))


def _gather_nd(ctx: Ctx, node: ir.Node) -> None:
    """GatherND with ``batch_dims=0``: ``Take`` along axis 0 of the data reshaped to
    ``[cells, rest...]`` by the linear index of each index row."""
    if int(attr(node, "batch_dims", 0)) != 0:
        raise ctx.refuse(f"batch_dims={int(attr(node, 'batch_dims', 0))}")
    data, indices = ctx.input(node, 0), ctx.input(node, 1)
    dims, idx = _dims(data), _dims(indices)
    m = idx[-1] if idx else 0
    if not 1 <= m <= len(dims):
        raise ctx.malformed(f"indices of shape {idx} into data of shape {dims}")
    cells, rest = dims[:m], dims[m:]
    count = int(np.prod(cells))
    if count * int(np.prod(rest)) > _INT32.max:
        raise ctx.refuse(f"data of {dims} cells: int32 indices reach 2**31 - 1")
    strides = [int(np.prod(cells[j + 1:])) for j in range(m)]
    rows = operation(ctx, "Reshape", {"newshape": [count, *rest]}, [ctx.ref(data)])
    if not ctx.is_tensor(indices):
        c = ctx.const(indices)
        if c is None:
            raise ctx.refuse(f"{indices.name!r} is neither a constant nor computed from the "
                             "inputs")
        linear: TensorRef | dict = numpy_arg(
            (np.mod(c.astype(np.int64), cells) * strides).sum(-1).astype(np.int32))
    else:
        # integer ONNX arithmetic on the indices may have been raised to float32 layers
        whole = operation(ctx, "Cast", {"dtype": "int32"}, [ctx.ref(indices)])
        ctx.layers[-1].module = CORE
        total: TensorRef | None = None
        for j, (size, stride) in enumerate(zip(cells, strides)):
            column = operation(ctx, "Take", {"axis": -1}, [whole, j])
            column = operation(ctx, "Mod", {}, [column, size])  # negatives count from the end
            if stride != 1:
                column = operation(ctx, "Multiply", {}, [column, stride])
            total = column if total is None else operation(ctx, "Add", {}, [total, column])
        assert total is not None  # m >= 1
        linear = total
    ctx.output(operation(ctx, "Take", {"axis": 0}, [rows, linear]))


def _gather(ctx: Ctx, node: ir.Node) -> None:
    """Gather of a tensor by constant indices along any axis (the batch's among them: a
    state ``[2, B, H]`` picked apart): ``Take`` by the indices, negatives counted from the
    end as ONNX counts them."""
    data, indices = ctx.input(node, 0), ctx.input(node, 1)
    c = ctx.const(indices)
    if not ctx.is_tensor(data) or c is None:
        raise ctx.refuse("only a tensor picked by constant indices is raised")
    dims = _dims(data)
    axis = int(attr(node, "axis", 0)) % len(dims)
    picked = np.mod(np.asarray(c, np.int64), dims[axis]).astype(np.int32)
    ctx.output(operation(ctx, "Take", {"axis": axis}, [ctx.ref(data), numpy_arg(picked)]))


def _slice(ctx: Ctx, node: ir.Node) -> None:
    """Slice by constant starts/ends/axes/steps, negative steps and the batch axis included:
    ``Take`` of the kept indices along each cut axis (ONNX clamps as Python's slices do)."""
    x = ctx.input(node, 0)
    dims = _dims(x)
    parts = [node.inputs[i] if len(node.inputs) > i else None for i in range(1, 5)]
    consts = [ctx.const(v) if v is not None else None for v in parts]
    if consts[0] is None or consts[1] is None or any(
            v is not None and c is None for v, c in zip(parts[2:], consts[2:])):
        raise ctx.refuse("its starts/ends/axes/steps are computed at run time")
    starts, ends = consts[0].reshape(-1), consts[1].reshape(-1)
    axes = consts[2].reshape(-1) if consts[2] is not None else np.arange(len(starts))
    steps = consts[3].reshape(-1) if consts[3] is not None else np.ones(len(starts), np.int64)
    y: TensorRef = ctx.ref(x)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = int(axis) % len(dims)
        if int(step) == 0:
            raise ctx.malformed(f"a step of 0 along axis {axis}")
        clamp = np.iinfo(np.int64)
        kept = np.arange(*slice(int(np.clip(start, clamp.min + 1, clamp.max)),
                                int(np.clip(end, clamp.min + 1, clamp.max)),
                                int(step)).indices(dims[axis]))
        if kept.size == 0:
            raise ctx.refuse(f"the slice of axis {axis} is empty")
        if kept.size == dims[axis] and np.array_equal(kept, np.arange(dims[axis])):
            continue
        y = operation(ctx, "Take", {"axis": axis}, [y, numpy_arg(kept.astype(np.int32))])
    ctx.output(y)


_FORMS: dict[str, Callable[[Ctx, ir.Node], None]] = {
    "Reshape": _reshape, "Squeeze": _reshape, "Unsqueeze": _reshape,
    "Concat": _concat, "GatherND": _gather_nd, "Gather": _gather, "Slice": _slice,
    **dict.fromkeys(_BINARY, _binary),
}
