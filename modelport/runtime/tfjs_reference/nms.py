"""Non-max suppression: ``NonMaxSuppressionV3`` (hard NMS; the selected box indices, as many
as are kept, int32) and ``NonMaxSuppressionV5`` with ``soft_nms_sigma`` 0 (the same, with the
kept boxes' scores and their count), as tfjs's ``nonMaxSuppressionV3Impl``/``V5Impl`` compute
them:

* candidates are the boxes whose score is strictly above ``score_threshold``, taken best
  score first, a tie going to the lower box index;
* a candidate is kept unless its IoU with a box kept before it is strictly above
  ``iou_threshold``, until ``min(max_output_size, n)`` are kept;
* a box's corners are any diagonal pair (min/max per axis); a box of zero or negative area
  overlaps nothing (IoU 0).

Soft-NMS (a non-zero sigma, which decays scores instead of dropping boxes) and V5's
``pad_to_max_output_size`` are refused by name.
"""

from __future__ import annotations

import numpy as np

from ...errors import UnsupportedError
from ._base import Op, register


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``[y1, x1, y2, x2]`` boxes (any diagonal corners), in double as tfjs."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    a_lo, a_hi = np.minimum(a[:2], a[2:]), np.maximum(a[:2], a[2:])
    b_lo, b_hi = np.minimum(b[:2], b[2:]), np.maximum(b[:2], b[2:])
    area_a, area_b = float(np.prod(a_hi - a_lo)), float(np.prod(b_hi - b_lo))
    if area_a <= 0 or area_b <= 0:
        return 0.0
    inter = float(np.prod(np.maximum(np.minimum(a_hi, b_hi) - np.maximum(a_lo, b_lo), 0.0)))
    return inter / (area_a + area_b - inter)


def select(boxes: np.ndarray, scores: np.ndarray, max_output: int, iou_threshold: float,
           score_threshold: float) -> np.ndarray:
    """The indices hard NMS keeps, in the order it keeps them (int32)."""
    n = boxes.shape[0]
    order = sorted((i for i in range(n) if float(scores[i]) > score_threshold),
                   key=lambda i: (-float(scores[i]), i))
    kept: list[int] = []
    for i in order:
        if len(kept) >= min(max_output, n):
            break
        if all(_iou(boxes[i], boxes[j]) <= iou_threshold for j in kept):
            kept.append(i)
    return np.asarray(kept, np.int32)


def _kept(op: Op) -> np.ndarray:
    boxes, scores = np.asarray(op.arg(0)), np.asarray(op.arg(1))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise op.invalid(f"boxes of shape {list(boxes.shape)} (must be [n, 4])")
    if scores.shape != (boxes.shape[0],):
        raise op.invalid(f"scores of shape {list(scores.shape)} (must be [{boxes.shape[0]}])")
    iou = float(np.asarray(op.arg(3)).reshape(()))
    if not 0.0 <= iou <= 1.0:
        raise op.invalid(f"iou_threshold {iou} (must be in [0, 1])")
    return select(boxes, scores, op.int_arg(2), iou, float(np.asarray(op.arg(4)).reshape(())))


@register("NonMaxSuppressionV3")
def non_max_suppression(op: Op) -> np.ndarray:
    """Hard NMS over ``boxes [n, 4]`` and ``scores [n]``: the kept indices."""
    return _kept(op)


@register("NonMaxSuppressionV5")
def non_max_suppression_with_scores(op: Op) -> list[np.ndarray]:
    """V5 with ``soft_nms_sigma`` 0: the kept indices, their scores and how many."""
    sigma = float(np.asarray(op.arg(5)).reshape(()))
    if sigma != 0.0:
        raise UnsupportedError(f"NonMaxSuppressionV5 node {op.name!r}: soft-NMS (soft_nms_sigma "
                               f"{sigma}) is not supported, only hard NMS (sigma 0)")
    if op.b("pad_to_max_output_size"):
        raise UnsupportedError(f"NonMaxSuppressionV5 node {op.name!r}: pad_to_max_output_size "
                               "is not supported")
    kept = _kept(op)
    scores = np.asarray(op.arg(1))[kept]
    return [kept, scores, np.asarray(kept.size, np.int32)]
