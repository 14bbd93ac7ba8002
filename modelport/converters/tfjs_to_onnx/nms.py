"""TF non-max suppression -> ONNX ``NonMaxSuppression``.

``NonMaxSuppressionV3(boxes [n, 4], scores [n], max_output_size, iou_threshold,
score_threshold)`` keep, best score first, the boxes whose score is strictly above the
threshold and whose IoU with every box kept before is at most ``iou_threshold`` (tfjs's
``nonMaxSuppressionV3Impl``; corners any diagonal pair). ONNX's op has the same rules
(``center_point_box=0``, strict ``>`` for both thresholds) over ``[batch, n, 4]`` and
``[batch, classes, n]``: one batch and one class here, and the kept indices are column 2 of its
``[k, 3]`` result, in the order kept, cast to TF's int32.

``NonMaxSuppressionV5`` with a constant ``soft_nms_sigma`` of 0 is the same selection, plus the
kept boxes' scores (gathered) and their count. Soft-NMS (sigma not 0, or not a constant: it
decays scores, which ONNX's op does not) and ``pad_to_max_output_size`` are refused by name.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from .core import MAPPINGS, TfOp


def _one(op: TfOp, k: int, to: ir.DataType) -> ir.Value:
    """Input ``k`` as a one-element tensor of ``to`` (ONNX's form of the op's scalars)."""
    value = op.emit("Reshape", op.inputs[k], op.b_.ints([1]))
    return op.emit("Cast", value, to=to)


def _selected(op: TfOp) -> ir.Value:
    """The kept indices (int64, ``[k]``)."""
    boxes = op.emit("Unsqueeze", op.cast_to(op.inputs[0], "float32"), op.b_.ints([0]))
    scores = op.emit("Unsqueeze", op.cast_to(op.inputs[1], "float32"), op.b_.ints([0, 1]))
    chosen = op.emit("NonMaxSuppression", boxes, scores, _one(op, 2, ir.DataType.INT64),
                     _one(op, 3, ir.DataType.FLOAT), _one(op, 4, ir.DataType.FLOAT),
                     center_point_box=0)
    column = op.ctx.builder.const(np.asarray(2, np.int64), f"{op.name}/box_column")
    return op.emit("Gather", chosen, column, axis=1)


@MAPPINGS.register("NonMaxSuppressionV3")
def _nms(op: TfOp) -> ir.Value:
    return op.emit("Cast", _selected(op), to=ir.DataType.INT32)


@MAPPINGS.register("NonMaxSuppressionV5")
def _nms_with_scores(op: TfOp) -> list[ir.Value]:
    sigma = op.const(5)
    if sigma is None or float(np.asarray(sigma).reshape(-1)[0]) != 0.0:
        raise op.fail("soft-NMS (a soft_nms_sigma that is not a constant 0) has no ONNX "
                      "equivalent; only hard NMS is mapped")
    if op.b("pad_to_max_output_size"):
        raise op.fail("pad_to_max_output_size is not mapped")
    kept = _selected(op)
    scores = op.emit("Gather", op.inputs[1], kept, axis=0)
    count = op.emit("Squeeze", op.emit("Shape", kept), op.b_.ints([0]))
    return [op.emit("Cast", kept, to=ir.DataType.INT32), scores,
            op.emit("Cast", count, to=ir.DataType.INT32)]
