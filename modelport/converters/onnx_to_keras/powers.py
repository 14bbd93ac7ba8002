"""``Pow(x, 2)`` and ``Pow(x, 3)``: ``Multiply([x, x])`` and ``Multiply([x, x, x])``.

tf2onnx writes the cube in TF's tanh GELU (``gelu(approximate=True)``: ``0.5 x (1 + tanh(
sqrt(2 / pi) (x + 0.044715 x^3)))``) as ``Pow(x, 3)``; Keras's ``Activation('gelu')`` is the
exact (erf) GELU and its layer config cannot ask for the tanh one, so that GELU raises op by
op, and the cube needs a layer. Keras's ``Multiply`` computes ``(x * x) * x`` left to right,
which is what onnxruntime's ``Pow`` computes for the exponents 2 and 3 (it multiplies rather
than calling ``powf`` for them; bit-identical on 10^5 normal draws). Higher powers go through
``powf`` there, which rounds differently, and other exponents have no exact layer: both are
refused.

For TF.js, tfjs_rewrites gives each copy after the first a layer of its own (tfjs-layers 4.22
disposes a tensor one layer reads twice while others still need it).
"""

from __future__ import annotations

import onnx_ir as ir

from .core import Ctx, rule

EXPONENTS = (2, 3)


@rule("Pow")
def power(ctx: Ctx, node: ir.Node) -> None:
    """``x ** n`` for a constant n of 2 or 3: a Multiply of n copies of x."""
    x, exponent = ctx.input(node, 0), ctx.const(ctx.input(node, 1))
    n = float(exponent.reshape(-1)[0]) if exponent is not None and exponent.size == 1 else None
    if n is None or n not in EXPONENTS or not ctx.is_tensor(x):
        raise ctx.refuse("only a tensor raised to a constant power of 2 or 3 (a Multiply of "
                         "its copies) has an exact Keras form")
    ref = ctx.ref(x)
    ctx.output(ctx.layer("Multiply", {}, [ref] * int(n)))
