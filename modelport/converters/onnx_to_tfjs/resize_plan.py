"""ONNX -> TF.js Resize: what one resized axis reads, as numbers.

ONNX's Resize and tfjs's two resize kernels, each along one axis, as an (out, in) weight
matrix (``onnx_plan``, ``tfjs_plan``), plus the node's settings as one dict. Shared by the
static lowering (``resize``) and the run-time one (``resize_dynamic``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from ..onnx_normalize import to_nhwc_perm
from .core import attr

COORD_MODES = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
               "asymmetric", "tf_half_pixel_for_nn"}


NEAREST_MODES = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}


def _inputs(node: ir.Node) -> tuple[ir.Value | None, ir.Value | None]:
    """(scales value, sizes value) as ONNX inputs (either may be None or empty)."""
    ins = list(node.inputs) + [None] * 4
    if node.op_type == "Upsample" or len(node.inputs) == 2:  # Upsample, Resize-10: X, scales
        return ins[1], None
    return ins[2], ins[3]


def _settings(node: ir.Node) -> dict[str, Any]:
    if node.op_type == "Upsample":
        mode = attr(node, "mode", "nearest")
        return {"mode": "linear" if mode in ("linear", "bilinear") else mode,
                "coord": "asymmetric", "nearest": "floor", "cubic_a": -0.75, "exclude": 0}
    coord = attr(node, "coordinate_transformation_mode", "half_pixel")
    if len(node.inputs) == 2:  # Resize-10 is asymmetric with nearest floor
        coord = attr(node, "coordinate_transformation_mode", "asymmetric")
    return {"mode": attr(node, "mode", "nearest"), "coord": coord,
            "nearest": attr(node, "nearest_mode", "round_prefer_floor" if len(node.inputs) > 2
                            else "floor"),
            "cubic_a": attr(node, "cubic_coeff_a", -0.75),
            "exclude": attr(node, "exclude_outside", 0)}


def _to_nchw(rank: int) -> list[int]:
    """For each NCHW axis, the channels-last axis that holds it."""
    if rank <= 2:
        return list(range(rank))
    nhwc = to_nhwc_perm(rank)  # nhwc axis j holds nchw axis nhwc[j]
    return [nhwc.index(a) for a in range(rank)]


def _original(coord: str, x: np.ndarray, n_in: int, n_out: int, scale: float) -> np.ndarray:
    """ONNX's x_original for output positions ``x`` (the spec's formulas)."""
    if coord == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if coord == "half_pixel_symmetric":
        adjustment = n_out / (scale * n_in)
        center = n_in / 2
        return center * (1 - adjustment) + (x + 0.5) / scale - 0.5
    if coord == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if n_out > 1 else np.zeros_like(x)
    if coord == "align_corners":  # the resized length here is n_in * scale, not floored
        return x * (n_in - 1) / (n_in * scale - 1) if n_out > 1 else np.zeros_like(x)
    if coord == "asymmetric":
        return x / scale
    return (x + 0.5) / scale  # tf_half_pixel_for_nn


def _cubic(d: np.ndarray, a: float) -> np.ndarray:
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def onnx_plan(s: dict, n_in: int, n_out: int, scale: float) -> np.ndarray:
    """The (n_out, n_in) matrix of ONNX's resize along one axis."""
    x = _original(s["coord"], np.arange(n_out, dtype=np.float64), n_in, n_out, scale)
    w = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    if s["mode"] == "nearest":
        mode = s["nearest"]
        if mode == "round_prefer_floor":
            idx = np.ceil(x - 0.5)
        elif mode == "round_prefer_ceil":
            idx = np.floor(x + 0.5)
        elif mode == "floor":
            idx = np.floor(x)
        else:
            idx = np.ceil(x)
        w[rows, np.clip(idx, 0, n_in - 1).astype(int)] = 1.0
        return w
    if s["mode"] == "linear":
        x = np.clip(x, 0, n_in - 1)  # beyond the edges: the edge value
        lo = np.floor(x)
        t = x - lo
        lo = lo.astype(int)
        np.add.at(w, (rows, lo), 1 - t)
        np.add.at(w, (rows, np.minimum(lo + 1, n_in - 1)), t)
        return w
    lo = np.floor(x)
    t = x - lo
    for k in (-1, 0, 1, 2):
        idx = lo.astype(int) + k
        coeff = _cubic(t - k, s["cubic_a"])
        inside = (idx >= 0) & (idx < n_in)
        if s["exclude"]:
            coeff = np.where(inside, coeff, 0.0)
        np.add.at(w, (rows, np.clip(idx, 0, n_in - 1)), coeff)
    if s["exclude"]:
        w /= w.sum(axis=1, keepdims=True)
    return w


def tfjs_plan(kind: str, n_in: int, n_out: int, align: bool, half: bool) -> np.ndarray:
    """The (n_out, n_in) matrix tfjs's ResizeBilinear / ResizeNearestNeighbor compute."""
    eff_in = n_in - 1 if align and n_out > 1 else n_in
    eff_out = n_out - 1 if align and n_out > 1 else n_out
    ratio = eff_in / eff_out
    r = np.arange(n_out, dtype=np.float64)
    w = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    if kind == "nearest":
        src = ratio * (r + 0.5) if half else ratio * r
        idx = np.floor(src + 0.5) if align else np.floor(src)
        idx = np.minimum(n_in - 1, idx)
        if half:
            idx = np.maximum(0, idx)
        w[rows, idx.astype(int)] = 1.0
        return w
    src = ratio * (r + 0.5) - 0.5 if half else ratio * r
    lo = np.maximum(0, np.floor(src))
    frac = src - lo
    hi = np.minimum(n_in - 1, np.ceil(src))
    np.add.at(w, (rows, lo.astype(int)), 1 - frac)
    np.add.at(w, (rows, hi.astype(int)), frac)
    return w


# TF's two flags; TF refuses both at once.
TFJS_SETTINGS = ((False, True), (True, False), (False, False))
