"""ONNX -> TF.js: normalizations over axes other than the channel axis (LayerNormalization,
RMSNormalization, LpNormalization, MeanVarianceNormalization) and their shared pieces.

The channel-axis ones (BatchNormalization, InstanceNormalization, GroupNormalization, LRN)
are layout-sensitive and live in ``nn``.
"""

from __future__ import annotations

import onnx_ir as ir

from .core import Ctx, attr, rule
from .math_ops import binary, fconst, reduce, unary

# --- normalizations that are not about the channel axis -----------------------------------------

def normalize_over(ctx: Ctx, x: str, axes: list[int], eps: float, scale: str | None,
                   bias: str | None) -> str:
    """(x - mean) / sqrt(var + eps) over ``axes``, then times ``scale`` plus ``bias``."""
    mean = reduce(ctx, "Mean", x, axes, True)
    d = binary(ctx, "Sub", x, mean)
    var = reduce(ctx, "Mean", unary(ctx, "Square", d), axes, True)
    y = binary(ctx, "Mul", d, unary(ctx, "Rsqrt", binary(ctx, "AddV2", var, fconst(ctx, eps))))
    if scale is not None:
        y = binary(ctx, "Mul", y, scale)
    if bias is not None:
        y = binary(ctx, "AddV2", y, bias)
    return y


def extra_outputs_unused(node: ir.Node) -> str | None:
    """Why not, when an output after the first (training statistics) is read."""
    for out in node.outputs[1:]:
        if out.uses() or out.is_graph_output():
            return f"output {out.name!r} (training statistics) is used"
    return None


def _rank_known(ctx: Ctx, node: ir.Node) -> str | None:
    return None if ctx.rank(node.inputs[0]) is not None else "the input's rank is unknown"


def _layer_norm_check(ctx: Ctx, node: ir.Node) -> str | None:
    return _rank_known(ctx, node) or extra_outputs_unused(node)


@rule("LayerNormalization", check=_rank_known)
def layer_norm(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX LayerNormalization -> TF normalisation over the axes from ``axis`` on, times scale
    plus bias; its Mean and InvStdDev outputs too (normalised axes kept as size 1)."""
    xv = ctx.inp(node, 0)
    rank = ctx.need_rank(xv, node)
    axes = list(range(attr(node, "axis", -1) % rank, rank))
    bias = ctx.opt(node, 2)
    x = ctx.x(xv)
    # Outputs: Y, and (optional) Mean and InvStdDev over the normalized axes, kept as size 1.
    mean = reduce(ctx, "Mean", x, axes, True)
    d = binary(ctx, "Sub", x, mean)
    var = reduce(ctx, "Mean", unary(ctx, "Square", d), axes, True)
    inv = unary(ctx, "Rsqrt", binary(ctx, "AddV2", var, fconst(ctx, attr(node, "epsilon",
                                                                          1e-5))))
    y = binary(ctx, "Mul", binary(ctx, "Mul", d, inv), ctx.x(ctx.inp(node, 1)))
    if bias is not None:
        y = binary(ctx, "AddV2", y, ctx.x(bias))
    return [y, mean, inv]


@rule("RMSNormalization", check=_layer_norm_check)
def rms_norm(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX RMSNormalization -> TF x * rsqrt(mean(x ** 2) + epsilon) * scale over the axes
    from ``axis`` on."""
    xv = ctx.inp(node, 0)
    rank = ctx.need_rank(xv, node)
    axis = attr(node, "axis", -1) % rank
    x = ctx.x(xv)
    ms = reduce(ctx, "Mean", unary(ctx, "Square", x), list(range(axis, rank)), True)
    inv = unary(ctx, "Rsqrt", binary(ctx, "AddV2", ms, fconst(ctx, attr(node, "epsilon",
                                                                         1e-5))))
    return [binary(ctx, "Mul", binary(ctx, "Mul", x, inv), ctx.x(ctx.inp(node, 1)))]


@rule("LpNormalization", check=lambda ctx, n: None if attr(n, "p", 2) in (1, 2)
      else f"p={attr(n, 'p')}")
def lp_norm(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX LpNormalization (p 1 or 2) -> TF x / its L1 or L2 norm along ``axis``, 0 where the
    norm is 0."""
    xv = ctx.inp(node, 0)
    rank = ctx.need_rank(xv, node)
    axis = attr(node, "axis", -1) % rank
    x = ctx.x(xv)
    if attr(node, "p", 2) == 1:
        norm = reduce(ctx, "Sum", unary(ctx, "Abs", x), [axis], True)
    else:
        norm = unary(ctx, "Sqrt", reduce(ctx, "Sum", unary(ctx, "Square", x), [axis], True))
    # ONNX: where the norm is 0 the result is 0 (not 0/0)
    zero = binary(ctx, "Equal", norm, fconst(ctx, 0))
    return [ctx.op("SelectV2", [zero, fconst(ctx, 0), binary(ctx, "RealDiv", x, norm)])]


@rule("MeanVarianceNormalization")
def mvn(ctx: Ctx, node: ir.Node) -> list[str]:
    """ONNX MeanVarianceNormalization -> TF (x - mean) / (sqrt(var) + 1e-9) over ``axes``
    (default 0, 2, 3), as ONNX's function body computes it."""
    xv = ctx.inp(node, 0)
    rank = ctx.need_rank(xv, node)
    axes = sorted(a % rank for a in attr(node, "axes", [0, 2, 3]))
    x = ctx.x(xv)
    mean = reduce(ctx, "Mean", x, axes, True)
    d = binary(ctx, "Sub", x, mean)
    var = reduce(ctx, "Mean", unary(ctx, "Square", d), axes, True)
    # The ONNX function body: (x - mean) / (sqrt(var) + 1e-9).
    return [binary(ctx, "RealDiv", d, binary(ctx, "AddV2", unary(ctx, "Sqrt", var),
                                             fconst(ctx, 1e-9)))]
