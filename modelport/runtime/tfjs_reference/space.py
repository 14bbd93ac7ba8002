"""SpaceToBatchND and BatchToSpaceND: how TF writes a dilated convolution (``tf.nn.conv2d``
with ``dilations`` > 1 on CPU graphs, Keras ``Conv1D``/``Conv2D``/``DepthwiseConv2D`` with a
``dilation_rate``): the input is split into ``block`` interleaved phases moved to the batch axis,
convolved without dilation, and put back.

TF's definitions (``tf.space_to_batch_nd``), for an input ``[batch] + spatial (M axes) +
remaining`` with ``block_shape`` [M] and ``paddings``/``crops`` [M, 2]:

* SpaceToBatchND zero-pads the spatial axes, splits each padded axis ``p`` into
  ``[p / b, b]``, moves the M block axes in front of the batch axis and merges them into it:
  output batch index ``(r_0 * b_1 + r_1 ...) * batch + n`` for phase offsets ``r_i``. Every
  padded size must be a multiple of its block.
* BatchToSpaceND is its inverse (the block axes come out of the batch axis, major first,
  and interleave with the spatial axes), then ``crops`` are cut from each spatial axis's start
  and end.
"""

from __future__ import annotations

import math

import numpy as np

from ._base import Op, register


def _block_and_pairs(op: Op, what: str) -> tuple[list[int], np.ndarray]:
    block = [int(v) for v in np.asarray(op.arg(1)).reshape(-1)]
    pairs = np.asarray(op.arg(2)).astype(np.int64)
    if pairs.shape != (len(block), 2):
        raise op.invalid(f"{what} has shape {list(pairs.shape)}, not [{len(block)}, 2]")
    if any(b < 1 for b in block) or (pairs < 0).any():
        raise op.invalid(f"block_shape {block} must be >= 1 and {what} >= 0")
    if np.ndim(op.x) < 1 + len(block):
        raise op.invalid(f"input of rank {np.ndim(op.x)} has fewer than {len(block)} "
                         "spatial axes after the batch axis")
    return block, pairs


@register("SpaceToBatchND")
def _space_to_batch(op: Op) -> np.ndarray:
    block, pads = _block_and_pairs(op, "paddings")
    m = len(block)
    x = np.asarray(op.x)
    width = [(0, 0)] + [(int(a), int(b)) for a, b in pads] + [(0, 0)] * (x.ndim - 1 - m)
    padded = np.pad(x, width)
    spatial = padded.shape[1:1 + m]
    if any(s % b for s, b in zip(spatial, block)):
        raise op.invalid(f"padded spatial sizes {list(spatial)} are not multiples of the "
                         f"block {block}")
    batch, rest = padded.shape[0], list(padded.shape[1 + m:])
    split = [batch] + [v for s, b in zip(spatial, block) for v in (s // b, b)] + rest
    y = padded.reshape(split)
    perm = [2 + 2 * i for i in range(m)] + [0] + [1 + 2 * i for i in range(m)] + \
        list(range(1 + 2 * m, y.ndim))
    y = y.transpose(perm)
    return y.reshape([batch * math.prod(block)] + [s // b for s, b in zip(spatial, block)]
                     + rest)


@register("BatchToSpaceND")
def _batch_to_space(op: Op) -> np.ndarray:
    block, crops = _block_and_pairs(op, "crops")
    m = len(block)
    x = np.asarray(op.x)
    total = math.prod(block)
    if x.shape[0] % total:
        raise op.invalid(f"batch {x.shape[0]} is not a multiple of the block size {total}")
    batch, spatial, rest = x.shape[0] // total, list(x.shape[1:1 + m]), list(x.shape[1 + m:])
    y = x.reshape(block + [batch] + spatial + rest)
    perm = [m] + [v for i in range(m) for v in (m + 1 + i, i)] + \
        list(range(1 + 2 * m, y.ndim))
    y = y.transpose(perm).reshape([batch] + [s * b for s, b in zip(spatial, block)] + rest)
    full = y.shape[1:1 + m]
    if any(int(a) + int(b) > f for (a, b), f in zip(crops, full)):
        raise op.invalid(f"crops {crops.tolist()} exceed the spatial sizes {list(full)}")
    index = (slice(None),) + tuple(slice(int(a), f - int(b)) for (a, b), f in zip(crops, full))
    return np.ascontiguousarray(y[index])
