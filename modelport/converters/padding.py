"""TF's "SAME" padding, written once for every converter.

Along one spatial axis of static size ``n``, a window of ``k`` taps ``d`` apart moved by
stride ``s`` gives ``ceil(n / s)`` outputs; SAME pads
``max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)`` in total, the smaller half before (TF,
Keras and ONNX's ``SAME_UPPER`` put the odd one at the end, ONNX's ``SAME_LOWER`` at the
start). The NumPy references in ``runtime/`` keep their own copy on purpose: they are an
independent statement of the semantics the converters are checked against.
"""

from __future__ import annotations

from collections.abc import Sequence


def split_pads(total: int, *, lower: bool = False) -> tuple[int, int]:
    """``total`` padding as (before, after): the odd one after, or before when ``lower``."""
    small = total // 2
    return (total - small, small) if lower else (small, total - small)


def same_pads(size: int, kernel: int, stride: int = 1, dilation: int = 1, *,
              lower: bool = False) -> tuple[int, int]:
    """(before, after) SAME padding of one axis of static ``size`` (``lower``: SAME_LOWER)."""
    effective = (kernel - 1) * dilation + 1
    total = max((-(-size // stride) - 1) * stride + effective - size, 0)
    return split_pads(total, lower=lower)


def same_for_any_size(pad: tuple[int, int], kernel: int, stride: int = 1,
                      dilation: int = 1) -> bool:
    """Whether (before, after) pads are SAME_UPPER's for every size of the axis: at stride 1
    SAME pads ``(k - 1) * d`` in total whatever the size (``ceil(n / 1) - 1 - n`` is -1);
    past it the total depends on ``n mod s`` (a 1-tap window is never padded)."""
    effective = (kernel - 1) * dilation + 1
    if stride != 1 and effective != 1:
        return False
    return tuple(pad) == split_pads(effective - 1)


def are_same_pads(pads: Sequence[tuple[int, int]], sizes: Sequence[int | None] | None,
                  kernel: Sequence[int], strides: Sequence[int],
                  dilations: Sequence[int] | None = None) -> bool:
    """Whether explicit (before, after) pads per axis are exactly SAME for these sizes
    (SAME_UPPER's split); on an axis of unknown size only where they are for every size
    (``same_for_any_size``)."""
    n = len(pads)
    sizes = sizes if sizes is not None else [None] * n
    dilations = dilations if dilations is not None else [1] * n
    return all(tuple(pad) == same_pads(size, k, s, d) if size is not None
               else same_for_any_size(pad, k, s, d)
               for pad, size, k, s, d in zip(pads, sizes, kernel, strides, dilations))


def explicit_same_pads(sizes: Sequence[int | None], kernel: Sequence[int],
                       strides: Sequence[int], dilations: Sequence[int]) -> list[int] | None:
    """SAME as ONNX's explicit [begin..., end...] pads, or None where an axis of unknown size
    has a stride past 1 (its pads then depend on the size: only ``auto_pad`` SAME_UPPER says
    them). An unknown axis at stride 1 pads ``(k - 1) * d`` whatever its size, and explicit pads
    are what onnxruntime needs there: it refuses SAME_UPPER with a dilation past 1."""
    split = []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        if size is not None:
            split.append(same_pads(size, k, s, d))
        elif s == 1 or k == 1:
            split.append(split_pads((k - 1) * d))
        else:
            return None
    return [before for before, _ in split] + [after for _, after in split]
