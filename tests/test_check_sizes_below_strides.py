"""The check's free-dim sizes end with one below the strides' product (issue 18: PaddleOCR's
PP-OCRv3 recogniser, ``ch_PP-OCRv3_rec_infer.onnx`` in rapidocr-onnxruntime 1.2.3).

``candidates`` rounds each rung up to a multiple of the product of the convolutions' strides;
a recogniser halves its height only (strides [2, 1]) six times, so every rung became 64, 128 or
256 — and PP-OCRv3's recogniser runs at heights up to 48 only (its SVTR neck concatenates a
height of 1 with the convolution's), so ``--to tfjs-graph`` was refused ("the parity check
found no size the source runs at") while ``inspect`` said yes. The largest rung below the
rounded ones (32 here) is now the last try; at 32 x 32 the model runs and the conversion
passes its check against real tfjs.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from modelport.check import sizes


def height_halving_model(convs: int = 6) -> ir.Model:
    """x [N, 1, H, W] through ``convs`` 3x3 convolutions of stride [2, 1]."""
    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for i in range(convs):
        inits.append(nh.from_array(rng.standard_normal((1, 1, 3, 3)).astype(np.float32),
                                   f"w{i}"))
        nodes.append(h.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], kernel_shape=[3, 3],
                                 strides=[2, 1], pads=[1, 1, 1, 1]))
        prev = f"c{i}"
    graph = h.make_graph(nodes, "halving",
                         [h.make_tensor_value_info("x", T.FLOAT, ["N", 1, "H", "W"])],
                         [h.make_tensor_value_info(prev, T.FLOAT, None)], initializer=inits)
    return ir.from_proto(h.make_model(graph, opset_imports=[h.make_opsetid("", 13)]))


def test_a_size_below_the_strides_product_is_the_last_try():
    got = sizes.candidates(height_halving_model())
    assert got[:3] == [64, 128, 256]  # multiples of 2**6, as before
    assert got[-1] == 32 and len(got) <= sizes.TRIES


def test_no_smaller_size_than_the_windows():
    # a stride product of 8 rounds nothing away: 8, 16, 32, 64 as the ladder gives them
    assert sizes.candidates(height_halving_model(3)) == [8, 16, 32, 64]
