"""The light models again, with random weights: ONNX -> TF.js graph -> ONNX in onnxruntime.

The light models ONNX ships have every weight equal to 0.02, so their outputs are uniform and
cannot see a permuted channel axis, a transposed kernel or a swapped pair of inputs. Here every
weight the model generates with ConstantOfShape becomes a seeded random tensor of the same
shape, scaled so activations stay O(1) through 20-170 layers (He scaling for convolution and
dense kernels; batch-norm scales and variances in [0.5, 1.5]), and the round trip through both
converters must reproduce onnxruntime's outputs of the randomized source, and its pre-softmax
logits (a saturated softmax would hide differences), on the inputs ONNX's runner generates.

Tolerance: atol 1e-4 + rtol 1e-3 on every output, and on the logits 1e-4 of the largest logit
(float32 sums over up to 25088 terms in another order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tests.interop.test_onnx_roundtrip_light import _run, _softmax_producing
from tests.onnx_suite.cases import SuiteCase, discover

ATOL, RTOL = 1e-4, 1e-3
LOGIT_TOL = 1e-4  # of the largest |logit|

LIGHT = discover("light")


def _role(model: onnx.ModelProto, value: str) -> tuple[str, int] | None:
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            if name == value:
                return node.op_type, index
    return None


def _random_weight(shape: list[int], role: tuple[str, int] | None, node_attrs: dict,
                   rng: np.random.Generator) -> np.ndarray:
    op, index = role or ("", -1)
    if op == "BatchNormalization":
        if index in (1, 4):  # scale, variance: positive, near 1
            return rng.uniform(0.5, 1.5, shape).astype(np.float32)
        return rng.normal(0.0, 0.1, shape).astype(np.float32)
    if len(shape) >= 2:
        if op == "Gemm" and not node_attrs.get("transB", 0):
            fan_in = shape[0]
        else:
            fan_in = int(np.prod(shape[1:]))
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / max(fan_in, 1)))
    return rng.normal(0.0, 0.1, shape).astype(np.float32)


def randomized(case: SuiteCase, seed: int = 0) -> onnx.ModelProto:
    """``case``'s model with each ConstantOfShape weight replaced by a random initializer."""
    model = onnx.ModelProto.FromString(case.proto.SerializeToString())
    rng = np.random.default_rng(seed)
    inits = {i.name: i for i in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in inits:
            keep.append(node)
            continue
        shape = [int(d) for d in numpy_helper.to_array(inits[node.input[0]])]
        role = _role(model, node.output[0])
        attrs = {}
        if role is not None:
            consumer = next(n for n in model.graph.node if node.output[0] in n.input)
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in consumer.attribute}
        array = _random_weight(shape, role, attrs, rng)
        model.graph.initializer.append(numpy_helper.from_array(array, node.output[0]))
    del model.graph.node[:]
    model.graph.node.extend(keep)
    if model.ir_version < 4:  # IR 3 wants every initializer listed as a graph input
        known = {v.name for v in model.graph.input}
        for init in model.graph.initializer:
            if init.name not in known:
                model.graph.input.append(onnx.helper.make_tensor_value_info(
                    init.name, init.data_type, list(init.dims)))
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("case", LIGHT, ids=[c.name for c in LIGHT])
def test_light_model_random_weights_round_trip(case: SuiteCase, tmp_path: Path) -> None:
    import modelport

    source = randomized(case)
    src = tmp_path / "random.onnx"
    onnx.save(source, src)
    inputs, _ = case.io()
    feeds = dict(inputs)
    softmax = _softmax_producing(source, source.graph.output[0].name)
    extra = [softmax.input[0]] if softmax is not None else []
    want = _run(source, feeds, extra)
    assert all(np.all(np.isfinite(w)) for w in want), "randomized source overflows"

    web = modelport.convert(src, tmp_path / "web", to="tfjs-graph", validate=False)
    back = modelport.convert(web.destination, tmp_path / "back.onnx", validate=False)
    model = onnx.load(back.destination)
    back_softmax = _softmax_producing(model, model.graph.output[0].name)
    assert (back_softmax is None) == (softmax is None), "the round trip lost the Softmax"
    got = _run(model, feeds, [back_softmax.input[0]] if back_softmax is not None else [])
    for k, (actual, expected) in enumerate(zip(got[:len(source.graph.output)], want)):
        name = source.graph.output[k].name
        assert actual.shape == expected.shape, f"{name}: {actual.shape} != {expected.shape}"
        np.testing.assert_allclose(actual, expected, atol=ATOL, rtol=RTOL, err_msg=name)
    if softmax is not None:
        z, z_want = got[-1].reshape(-1), want[-1].reshape(-1)
        scale = float(np.max(np.abs(z_want)))
        assert scale > 1e-3, "degenerate logits: the test would prove nothing"
        np.testing.assert_allclose(z, z_want, rtol=0, atol=LOGIT_TOL * scale,
                                   err_msg=f"pre-softmax logits (largest {scale:.3g})")
