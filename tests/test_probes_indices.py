"""A float input read as indices (a Keras 2 Embedding's default float32 input) gets whole
numbers inside the vocabulary in every probe: a normal draw gave negative and fractional
indices, which the Keras reference turned into NaN and the check into a false mismatch
(ethnicolr's char-LSTM models from PyPI)."""

import numpy as np

from modelport.check.probes import seeded_probes
from modelport.runtime.engines import InputSpec


def test_float_input_with_a_vocabulary_gets_whole_indices_in_range():
    specs = [InputSpec("chars", [None, 20], "float32", high=37)]
    for probe in seeded_probes(specs, batch=4, seed=0):
        (values,) = probe.arrays
        assert values.dtype == np.float32
        assert np.array_equal(values, np.round(values))
        assert values.min() >= 0 and values.max() < 37


def test_float_input_without_a_vocabulary_still_gets_each_kind():
    specs = [InputSpec("x", [None, 8], "float32")]
    probes = seeded_probes(specs, batch=4, seed=0)
    assert [p.name for p in probes] == ["normal", "unit"]
    assert probes[0].arrays[0].min() < 0  # normal: signed, not indices
