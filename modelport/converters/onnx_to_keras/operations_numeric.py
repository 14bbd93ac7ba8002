"""ONNX rounding and casting ops raised to the Keras 3 operations that compute them exactly.

Run-time activation quantization (onnxruntime's dynamic quantization, TF's ``round`` /
``floor`` post-processing) is made of these: ``Round`` -> ``Round`` (``decimals=0``; ONNX and
every Keras 3 backend round halves to even: NumPy's ``round``, ``jnp.round``, ``tf.round``,
``torch.round``); ``Floor`` -> ``Floor``; ``Ceil`` -> ``Ceil``; ``Cast`` between a float,
an integer and bool -> ``Cast`` (``keras.src.ops.core``): a float becomes an integer by
truncation toward zero in ONNX (onnxruntime's ``static_cast``) and in Keras (XLA's and TF's
convert, NumPy's ``astype``), a number becomes bool by being nonzero (a float outside the
integer type's range, or NaN, has no defined result in ONNX, and backends differ on it: the
quantizing graphs clip before they cast). Integer tensors of the
raised model are int32 whatever ONNX's width (as its inputs and ``Argmax`` are), so a cast to
int64 is a cast to int32, and a cast between int32 and int64 stays the input itself (the
``Cast`` rule of ``shape.py`` keeps those and hands the others here).

Like the other operation nodes (``operations.py``) they load from ``.keras`` files only.
"""

from __future__ import annotations

import onnx_ir as ir

from ...models import TensorRef
from .core import Ctx, rule
from .operations import FLOATS, operand, operation

CORE = "keras.src.ops.core"

# ONNX element type -> the Keras dtype its values have in the raised model
KERAS_DTYPE = {
    ir.DataType.FLOAT: "float32",
    ir.DataType.INT32: "int32",
    ir.DataType.INT64: "int32",
    ir.DataType.INT16: "int16",
    ir.DataType.INT8: "int8",
    ir.DataType.UINT8: "uint8",
    ir.DataType.UINT16: "uint16",
    ir.DataType.BOOL: "bool",
}


def cast(ctx: Ctx, x: ir.Value, to: ir.DataType | None) -> TensorRef:
    """``x`` cast to ``to``: the Keras operation ``Cast`` (``shape.cast`` hands over every
    cast that changes the values' kind or width)."""
    if x.dtype not in KERAS_DTYPE or to is None or to not in KERAS_DTYPE:
        kinds = ", ".join(sorted({t.name for t in KERAS_DTYPE}))
        raise ctx.refuse(f"a cast from {x.dtype} to {to}: the raised model holds {kinds} "
                         "values only")
    op = operation(ctx, "Cast", {"dtype": KERAS_DTYPE[to]}, [ctx.ref(x)])
    ctx.layers[-1].module = CORE  # ops.cast lives in keras.src.ops.core, not numpy
    return op




def integer_divide(ctx: Ctx, node: ir.Node) -> None:
    """Integer Div by a constant, which ONNX truncates toward zero (7 / 2 = 3, -7 / 2 = -3):
    the Keras operations ``Divide`` (true division, correctly rounded: below 2**24 a
    quotient's rounding cannot reach the next integer), ``Cast`` to int32 (truncation toward
    zero, as ONNX) and ``Cast`` back to float32, as the raised model carries integer
    arithmetic."""
    a, b = ctx.input(node, 0), ctx.input(node, 1)
    if a.dtype not in KERAS_DTYPE:
        raise ctx.refuse(f"Div of {a.dtype} values: the raised model holds no such type")
    divisor = None if ctx.is_tensor(b) else ctx.const(b)
    if divisor is None or divisor.size != 1 or int(divisor.reshape(-1)[0]) == 0:
        # a divisor computed at run time may be 0, which integer division leaves undefined
        raise ctx.refuse(f"Div of {a.dtype} values truncates; it is raised for a constant "
                         "nonzero divisor only")
    quotient = operation(ctx, "Divide", {}, [operand(ctx, a), operand(ctx, b)])
    whole = operation(ctx, "Cast", {"dtype": "int32"}, [quotient])
    ctx.layers[-1].module = CORE
    ctx.output(operation(ctx, "Cast", {"dtype": "float32"}, [whole]))
    ctx.layers[-1].module = CORE


@rule("Round", "Floor", "Ceil")
def rounding(ctx: Ctx, node: ir.Node) -> None:
    """Round (halves to even), Floor, Ceil of floats: the Keras operations of those names."""
    x = ctx.input(node, 0)
    if x.dtype not in FLOATS:
        raise ctx.refuse(f"{node.op_type} of {x.dtype} values")
    name = {"Round": "Round", "Floor": "Floor", "Ceil": "Ceil"}[node.op_type]
    config = {"decimals": 0} if name == "Round" else {}
    ctx.output(operation(ctx, name, config, [ctx.ref(x)]))
