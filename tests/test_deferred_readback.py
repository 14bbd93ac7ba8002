"""The read-back check reads large weights one at a time (deferred), still bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import modelport
from modelport.check.readback import compare
from modelport.formats import deferred, keras_h5, keras_v3, tfjs_layers
from modelport.formats import tfjs_manifest as tm
from modelport.models.arrays import same_bits
from tests.conftest import FIXTURES


@pytest.fixture
def defer_all(monkeypatch):
    """Defer every weight, however small (the fixtures are far below DEFER_MIN_BYTES)."""
    for module in (tm, keras_h5):
        monkeypatch.setattr(module, "DEFER_MIN_BYTES", 0)


@pytest.mark.parametrize("shard_size", [1, 7, 4096])
def test_deferred_manifest_reads_the_same_bits(tmp_path, defer_all, shard_size):
    rng = np.random.default_rng(0)
    weights = [("a/kernel", rng.normal(size=(5, 7)).astype(np.float32)),
               ("a/bias", rng.normal(size=(7,)).astype(np.float32)),
               ("b/ids", rng.integers(-5, 5, size=(3, 2)).astype(np.int32)),
               ("c/flag", np.array([True, False, True])),
               ("d/scalar", np.array(2.5, np.float32)),
               ("e/empty", np.zeros((0, 3), np.float32))]
    group = tm.write_group(tmp_path, 0, weights, shard_size=shard_size)
    back = tm.read_manifest(tmp_path, [group], file=tmp_path / "model.json", deferred=True)
    for (name, array), stored in zip(weights, back):
        assert isinstance(stored.array, deferred.Deferred)
        assert stored.array.shape == array.shape and stored.array.dtype == array.dtype
        loaded = deferred.materialize(stored.array)
        assert not isinstance(loaded, deferred.Deferred) and loaded.flags.writeable
        assert loaded.tobytes() == array.tobytes()
    # out of order, twice: each load reads its own byte range
    assert deferred.materialize(back[2].array).tobytes() == weights[2][1].tobytes()
    assert deferred.materialize(back[0].array).tobytes() == weights[0][1].tobytes()


def test_deferred_manifest_keeps_the_byte_count_checks(tmp_path, defer_all):
    weights = [("a", np.arange(10, dtype=np.float32))]
    group = tm.write_group(tmp_path, 0, weights, shard_size=16)
    shard = tmp_path / group["paths"][-1]
    shard.write_bytes(shard.read_bytes()[:-4])
    with pytest.raises(Exception, match="end before weight 'a'"):
        tm.read_manifest(tmp_path, [group], file=tmp_path / "model.json", deferred=True)


def test_same_bits():
    a = np.array([0.0, 1.0, np.nan], np.float32)
    assert same_bits(a, a.copy())
    assert not same_bits(a, np.array([-0.0, 1.0, np.nan], np.float32))
    other_nan = a.copy()
    other_nan.view(np.uint32)[2] ^= 1
    assert not same_bits(a, other_nan)
    assert not same_bits(a, a.astype(np.float64))
    assert not same_bits(a, a.reshape(3, 1))
    assert same_bits(np.array(3, np.int32), np.array(3, np.int32))
    assert same_bits(a[::2], np.ascontiguousarray(a[::2]))
    c = np.array([1 + 2j, 3 - 1j], np.complex128)
    assert same_bits(c, c.copy()) and not same_bits(c, c.conj())
    big = np.arange(3 * (1 << 18) + 5, dtype=np.float32)  # compared in slices
    changed = big.copy()
    changed[-1] = -changed[-1]
    assert same_bits(big, big.copy()) and not same_bits(big, changed)
    s = np.array([b"x", b"yz"], dtype=object)
    assert same_bits(s, np.array([b"x", b"yz"], dtype=object))
    assert not same_bits(s, np.array([b"x", b"y"], dtype=object))


@pytest.mark.parametrize("suffix", ["_tfjs", ".h5", ".keras"])
def test_convert_checks_deferred_weights(tmp_path, defer_all, suffix):
    src = FIXTURES / "keras2" / "advanced_activations.h5"
    report = modelport.convert(src, tmp_path / f"out{suffix}")
    assert report.check.weights_compared > 0
    assert report.check.weights_differing == 0 and report.check.structure_equal


@pytest.mark.parametrize("suffix", ["_tfjs", ".h5", ".keras"])
def test_deferred_read_back_sees_a_changed_weight(tmp_path, defer_all, suffix):
    src = FIXTURES / "keras2" / "advanced_activations.h5"
    model = modelport.load(src)
    written = modelport.save(model, tmp_path / f"out{suffix}")
    reader = {"_tfjs": tfjs_layers.read, ".h5": keras_h5.read, ".keras": keras_v3.read}[suffix]
    back = reader(written, deferred=True)
    assert all(isinstance(w.array, deferred.Deferred) for _, w in back.all_weights())
    assert compare(model, back).weights_differing == 0
    # the same read-back against an expectation that differs in one bit of one weight
    owner, weight = next((o, w) for o, w in model.all_weights() if w.array.size)
    changed = weight.array.copy()
    changed.reshape(-1).view(np.uint8)[0] ^= 1
    weight.array = changed
    check = compare(model, reader(written, deferred=True))
    assert check.weights_differing == 1
    assert check.first_difference == f"weight {owner}/{weight.path} differs"


@pytest.mark.parametrize("shard_size,piece", [(1, 3), (7, 3), (64, 8), (4096, 1 << 20)])
def test_streamed_comparison_reads_pieces_across_shards(tmp_path, defer_all, monkeypatch,
                                                        shard_size, piece):
    monkeypatch.setattr(deferred, "PIECE_BYTES", piece)  # pieces that straddle shard ends
    rng = np.random.default_rng(2)
    weights = [("a/kernel", rng.normal(size=(9, 7)).astype(np.float32)),
               ("b/ids", rng.integers(-5, 5, size=(11,)).astype(np.int32)),
               ("c/flag", np.array([True, False, True])),
               ("d/scalar", np.array(2.5, np.float32))]
    group = tm.write_group(tmp_path, 0, weights, shard_size=shard_size)
    back = tm.read_manifest(tmp_path, [group], file=tmp_path / "model.json", deferred=True)
    for (_, array), stored in zip(weights, back):
        assert deferred.streamed_same_bits(array, stored.array) is True
        changed = array.copy()
        changed.reshape(-1).view(np.uint8)[-1] ^= 1  # the very last byte
        assert deferred.streamed_same_bits(changed, stored.array) is False
        # what it cannot tell piece by piece it leaves to the caller
        assert deferred.streamed_same_bits(array.astype(np.float64), stored.array) is None
        assert deferred.streamed_same_bits(array, array) is None
    # the same values in Fortran order: not compared piece by piece
    assert deferred.streamed_same_bits(np.asfortranarray(weights[0][1]), back[0].array) is None


def test_streamed_verdicts_compare_several_weights_at_once(tmp_path, defer_all, monkeypatch):
    import threading
    import time

    monkeypatch.setattr(deferred, "WORKERS", 3)
    rng = np.random.default_rng(3)
    weights = [(f"w{i}", rng.normal(size=(17, 5)).astype(np.float32)) for i in range(8)]
    group = tm.write_group(tmp_path, 0, weights, shard_size=100)
    back = tm.read_manifest(tmp_path, [group], file=tmp_path / "model.json", deferred=True)
    expected = [array.copy() for _, array in weights]
    expected[5].reshape(-1)[-1] += 1  # one weight differs
    threads, real = set(), deferred.streamed_same_bits

    def slow(x, y):
        threads.add(threading.current_thread().name)
        time.sleep(0.05)  # long enough for the others to start meanwhile
        return real(x, y)

    monkeypatch.setattr(deferred, "streamed_same_bits", slow)
    pairs = [(e, s.array) for e, s in zip(expected, back)] + [(expected[0], expected[0])]
    assert deferred.streamed_verdicts(pairs) == [True] * 5 + [False] + [True] * 2 + [None]
    assert len(threads) == 3 and all(t.startswith("modelport-read-back") for t in threads)


def test_convert_read_back_streams_instead_of_loading(tmp_path, defer_all, monkeypatch):
    """The layers-model check compares each stored weight piece by piece: no weight is loaded
    whole (a loader that fails proves it), and the check still sees a changed byte."""
    made = []
    real = tm._deferred

    def no_whole_loads(*args, **kwargs):
        stood = real(*args, **kwargs)
        made.append(stood)

        def refuse(out=None):
            raise AssertionError("a weight was loaded whole")
        stood.load = refuse
        return stood

    monkeypatch.setattr(tm, "_deferred", no_whole_loads)
    src = FIXTURES / "keras2" / "advanced_activations.h5"
    report = modelport.convert(src, tmp_path / "out_tfjs")
    assert made and report.check.weights_compared == len(made)
    assert report.check.weights_differing == 0


@pytest.mark.parametrize("layout", ["contiguous", "chunked"])
def test_h5_datasets_stream_from_a_map_or_by_rows(tmp_path, layout):
    import h5py

    rng = np.random.default_rng(5)
    arrays = {"k": rng.normal(size=(37, 11)).astype(np.float32),
              "ids": rng.integers(0, 9, size=(5,)).astype(np.int32),
              "s": np.array(1.5, np.float32), "e": np.zeros((0, 3), np.float32)}
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        for name, a in arrays.items():
            chunked = layout == "chunked" and a.ndim and a.size
            f.create_dataset(name, data=a, **({"chunks": True, "compression": "gzip"}
                                              if chunked else {}))
    reopen = keras_h5._Reopening(path)
    for name, a in arrays.items():
        for n in (1, 7, 1 << 20):
            pieces = [bytes(p) for p in reopen.stream(f"/{name}", n)]
            assert b"".join(pieces) == a.tobytes(), (name, n)
            if layout == "chunked" and a.ndim and n == 7:  # by rows: one row at least
                assert len(pieces) == a.shape[0]


def test_h5_read_back_streams_instead_of_loading(tmp_path, defer_all, monkeypatch):
    def refuse(self, name, out):
        raise AssertionError(f"{name} was loaded whole")

    monkeypatch.setattr(keras_h5._Reopening, "load", refuse)
    src = FIXTURES / "keras2" / "advanced_activations.h5"
    report = modelport.convert(src, tmp_path / "out.h5")
    assert report.check.weights_compared > 0 and report.check.weights_differing == 0


def test_scratch_reads_each_weight_in_turn(tmp_path, defer_all):
    rng = np.random.default_rng(1)
    weights = [("small", rng.normal(size=(3,)).astype(np.float32)),
               ("big", rng.normal(size=(40, 9)).astype(np.float32)),
               ("ids", rng.integers(0, 9, size=(5,)).astype(np.int32))]
    group = tm.write_group(tmp_path, 0, weights, shard_size=64)
    back = tm.read_manifest(tmp_path, [group], file=tmp_path / "model.json", deferred=True)
    scratch = deferred.Scratch()
    for (_, array), stored in zip(weights, back):
        loaded = deferred.materialize(stored.array, scratch)
        assert loaded.shape == array.shape and loaded.dtype == array.dtype
        assert loaded.tobytes() == array.tobytes()


def test_large_h5_datasets_are_mapped_copy_on_write(tmp_path, monkeypatch):
    from modelport.formats import memory

    src = FIXTURES / "keras2" / "advanced_activations.h5"
    plain = modelport.load(src)
    copy = tmp_path / "model.h5"
    copy.write_bytes(src.read_bytes())
    before = copy.read_bytes()
    monkeypatch.setattr(memory, "POPULATE_MIN_BYTES", 0)  # map every dataset, however small
    mapped = modelport.load(copy)
    pairs = [(a.array, b.array) for (_, a), (_, b) in zip(plain.all_weights(),
                                                           mapped.all_weights())]
    assert pairs and all(same_bits(a, b) for a, b in pairs)
    assert any(isinstance(b.base, np.memmap) for _, b in pairs if b.size)
    for _, b in pairs:
        b[...] = 0  # private to this process: the file is unchanged
    assert copy.read_bytes() == before
    assert compare(plain, modelport.load(copy)).weights_differing == 0


@pytest.mark.parametrize("shard_size", [5, 64, 1 << 20])
def test_tfjs_weights_within_one_shard_are_mapped_copy_on_write(tmp_path, monkeypatch,
                                                                shard_size):
    from modelport.formats import memory

    monkeypatch.setattr(memory, "POPULATE_MIN_BYTES", 0)  # map every weight, however small
    rng = np.random.default_rng(2)
    weights = [("a", rng.normal(size=(4, 3)).astype(np.float32)),
               ("b", rng.integers(0, 9, size=(7,)).astype(np.int32)),
               ("c", rng.normal(size=(2,)).astype(np.float32))]
    group = tm.write_group(tmp_path, 0, weights, shard_size=shard_size)
    files = {p: (tmp_path / p).read_bytes() for p in group["paths"]}
    back = tm.read_manifest(tmp_path, [group], file=tmp_path / "model.json")
    mapped = [isinstance(w.array.base, np.memmap) for w in back]
    assert all(mapped) if shard_size == 1 << 20 else not all(mapped)
    for (_, array), stored in zip(weights, back):
        assert same_bits(array, stored.array) and stored.array.flags.writeable
        stored.array[...] = 0  # private: the shards are unchanged
    assert files == {p: (tmp_path / p).read_bytes() for p in group["paths"]}


@pytest.mark.parametrize("case", ["cnn", "cnn_uint8", "prelu", "shapes"])
def test_graph_to_onnx_release_drops_source_weights_same_model(monkeypatch, case):
    import onnx_ir as ir

    from modelport.converters.tfjs_to_onnx import driver as from_tfjs
    from modelport.formats import tfjs_graph

    monkeypatch.setattr(from_tfjs, "RELEASE_MIN_BYTES", 0)
    path = FIXTURES / "tfjs_graph" / case
    plain = from_tfjs.convert(tfjs_graph.read(path))
    graph = tfjs_graph.read(path)
    before = len(graph.weights)
    released = from_tfjs.convert(graph, release=True)
    assert ir.serde.serialize_model(plain).SerializeToString() == \
        ir.serde.serialize_model(released).SerializeToString()
    if case.startswith("cnn"):
        assert len(graph.weights) < before  # the filters, transposed for ONNX, went
