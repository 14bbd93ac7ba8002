"""The NumPy Keras reference frees each tensor after its last reader (a long chain holds O(1)
tensors, not O(n)), its results are unchanged by it, and the check's sizing of a run
(``check.keras_sizes``, by the same liveness) stays above what a run really holds."""

from __future__ import annotations

import tracemalloc

import numpy as np

from modelport.check.keras_sizes import REFERENCE_BYTES, TEMPORARIES, keras_values
from modelport.models import Layer, LayersModel, Node, TensorRef, Weight
from modelport.runtime.keras_reference import run
from modelport.runtime.precision import exact

ROWS, COLS = 64, 1024  # 256 KiB a float32 tensor, 512 KiB in float64
BOOKKEEPING = 64 << 10


def _chain(n: int, *, skip: bool = False) -> LayersModel:
    """x -> relu -> relu ... (n layers); with ``skip``, x is added to the last one."""
    layers = [Layer("InputLayer", "x", {"batch_shape": [None, COLS], "dtype": "float32"})]
    prev = "x"
    for i in range(n):
        layers.append(Layer("Activation", f"a{i}", {"activation": "relu"},
                            [Node([TensorRef(prev)])]))
        prev = f"a{i}"
    if skip:
        layers.append(Layer("Add", "add", {"dtype": "float32", "trainable": True},
                            [Node([[TensorRef("x"), TensorRef(prev)]])]))
        prev = "add"
    return LayersModel("m", "Functional", layers, inputs=[TensorRef("x")],
                       outputs=[TensorRef(prev)])


def _feed() -> list[np.ndarray]:
    return [np.random.default_rng(0).standard_normal((ROWS, COLS)).astype(np.float32)]


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_long_chain_holds_a_few_tensors_not_all():
    model, feed = _chain(200), _feed()
    tensor = ROWS * COLS * 4
    held = _peak(lambda: run(model, feed))
    assert held < 8 * tensor  # O(1): every tensor kept would be 200 of them
    kept = _peak(lambda: run(model, feed, capture=True))
    assert kept > 150 * tensor  # capture still keeps every tensor, for the walks that need it


def test_results_are_unchanged_and_keep_returns_only_what_it_names():
    model, feed = _chain(20, skip=True), _feed()
    freed = run(model, feed)
    everything = run(model, feed, capture=True)
    np.testing.assert_array_equal(freed.outputs[0], everything.outputs[0])
    np.testing.assert_array_equal(freed.outputs[0], np.maximum(feed[0], 0) + feed[0])
    assert freed.tensors == {}
    assert len(everything.tensors) == 22  # input, 20 activations, add
    some = run(model, feed, keep={("a3", 0), ("a7", 0, 0)})
    assert set(some.tensors) == {("a3", 0, 0), ("a7", 0, 0)}
    for key, value in some.tensors.items():
        np.testing.assert_array_equal(value, everything.tensors[key])


def test_a_skip_connection_keeps_its_input_alive_and_is_sized_so():
    found = keras_values(_chain(10, skip=True), _feed())
    assert found is not None
    one = ROWS * COLS
    assert found.elements == 12 * one
    assert found.peak == 3 * one  # x lives to the Add, beside the chain's two
    chain = keras_values(_chain(10), _feed())
    assert chain is not None and chain.peak == 2 * one


def test_the_sizing_is_above_what_a_float64_run_holds():
    for model in (_chain(100), _chain(30, skip=True)):
        feed = _feed()
        found = keras_values(model, feed)
        assert found is not None
        sized = (found.peak + TEMPORARIES * ROWS * COLS) * REFERENCE_BYTES

        def wide(model=model, feed=feed):
            with exact(jitter=True):
                return run(model, feed)

        # tracemalloc counts every allocation of the run: the arrays, and some KiB of Python
        # bookkeeping (dicts, small objects) that the sizing leaves to the budget's base
        measured = _peak(wide)
        assert measured <= sized + BOOKKEEPING, (measured, sized)
        assert sized < 8 * measured  # and not the sum of every tensor


def _convs() -> LayersModel:
    """x (32x32x16) -> Conv2D 3x3 (32 filters) -> DepthwiseConv2D 5x5 -> Conv2DTranspose 3x3
    stride 2: layers whose own computation (im2col, every tap) is larger than any tensor."""
    rng = np.random.default_rng(1)
    base = {"dtype": "float32", "trainable": True, "padding": "same", "use_bias": False,
            "strides": [1, 1], "dilation_rate": [1, 1], "data_format": "channels_last"}
    return LayersModel("c", "Functional", [
        Layer("InputLayer", "x", {"batch_shape": [None, 32, 32, 16], "dtype": "float32"}),
        Layer("Conv2D", "conv", {**base, "filters": 32, "kernel_size": [3, 3]},
              [Node([TensorRef("x")])],
              [Weight("kernel", rng.standard_normal((3, 3, 16, 32)).astype(np.float32))]),
        Layer("DepthwiseConv2D", "dw", {**base, "kernel_size": [5, 5], "depth_multiplier": 1},
              [Node([TensorRef("conv")])],
              [Weight("kernel", rng.standard_normal((5, 5, 32, 1)).astype(np.float32))]),
        Layer("Conv2DTranspose", "up", {**base, "filters": 8, "kernel_size": [3, 3],
                                         "strides": [2, 2]},
              [Node([TensorRef("dw")])],
              [Weight("kernel", rng.standard_normal((3, 3, 8, 32)).astype(np.float32))]),
    ], inputs=[TensorRef("x")], outputs=[TensorRef("up")])


def test_the_sizing_counts_what_a_convolution_computes_within_its_call():
    model = _convs()
    feed = [np.random.default_rng(0).standard_normal((8, 32, 32, 16)).astype(np.float32)]
    assert run(model, feed).outputs[0].shape == (8, 64, 64, 8)
    found = keras_values(model, feed)
    assert found is not None
    largest = max(8 * 64 * 64 * 8, 8 * 32 * 32 * 32)
    sized = (found.peak + TEMPORARIES * largest) * REFERENCE_BYTES

    def wide():
        with exact(jitter=True):
            return run(model, feed)

    measured = _peak(wide)
    assert measured <= sized + BOOKKEEPING, (measured, sized)


def test_the_first_divergence_search_which_keeps_every_tensor_is_skipped_past_the_budget():
    from modelport import budget
    from modelport.check.options import CheckOptions
    from modelport.check.validate import Pairing, _localise_skipped

    model, feed = _chain(100), _feed()
    feeds = (feed, feed)
    options = CheckOptions(per_layer=True)
    # the search keeps every tensor: 101 of them with their float64 runs and noise
    with budget.max_memory("64M"):
        note = _localise_skipped(model, model, feeds, options, Pairing())
    assert note is not None and "first diverging layer was not searched" in note
    with budget.max_memory("2G"):
        assert _localise_skipped(model, model, feeds, options, Pairing()) is None
    # no search without per_layer (and no raising): nothing to size
    with budget.max_memory("64M"):
        assert _localise_skipped(model, model, feeds, CheckOptions(), Pairing()) is None
