"""TF.js weight manifests: sharding, quantization and dequantization semantics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelport.errors import FormatError, UnsupportedError
from modelport.formats import tfjs_manifest as tm


def _roundtrip(tmp_path, weights, **kw):
    group = tm.write_group(tmp_path, 0, weights, **kw)
    return group, tm.read_manifest(tmp_path, [group], file=tmp_path / "model.json")


@pytest.mark.parametrize("shard_size", [1, 3, 7, 64, 4096, 1 << 22])
def test_weights_straddle_shards_losslessly(tmp_path, shard_size):
    rng = np.random.default_rng(0)
    weights = [("a/kernel", rng.normal(size=(5, 7)).astype(np.float32)),
               ("a/bias", rng.normal(size=(7,)).astype(np.float32)),
               ("b/ids", rng.integers(-5, 5, size=(3, 2)).astype(np.int32)),
               ("c/flag", np.array([True, False, True]))]
    group, back = _roundtrip(tmp_path, weights, shard_size=shard_size)
    total = sum(w.nbytes for _, w in weights)
    assert len(group["paths"]) == -(-total // shard_size)
    assert group["paths"][0] == f"group1-shard1of{len(group['paths'])}.bin"
    sizes = [(tmp_path / p).stat().st_size for p in group["paths"]]
    assert all(s == shard_size for s in sizes[:-1]) and sum(sizes) == total
    for (name, array), stored in zip(weights, back):
        assert stored.name == name and stored.array.dtype == array.dtype
        assert stored.array.tobytes() == array.tobytes()
    assert [e["dtype"] for e in group["weights"]] == ["float32", "float32", "int32", "bool"]


@pytest.mark.parametrize("shard_size", [1, 7, 64, 1 << 22])
def test_shards_written_at_once_hold_the_same_bytes(tmp_path, monkeypatch, shard_size):
    rng = np.random.default_rng(4)
    weights = [(f"w{i}", rng.normal(size=(13, 3 + i)).astype(np.float32)) for i in range(6)]
    weights.insert(2, ("empty", np.zeros((0, 4), np.float32)))
    stream = b"".join(w.tobytes() for _, w in weights)
    for writers in (1, 3):
        monkeypatch.setattr(tm, "WRITERS", writers)
        folder = tmp_path / str(writers)
        folder.mkdir()
        group = tm.write_group(folder, 0, weights, shard_size=shard_size)
        assert b"".join((folder / p).read_bytes() for p in group["paths"]) == stream
        assert len(group["paths"]) == -(-len(stream) // shard_size)


def test_a_shard_that_cannot_be_written_fails_the_group(tmp_path, monkeypatch):
    monkeypatch.setattr(tm, "WRITERS", 3)
    weights = [("w", np.arange(100, dtype=np.float32))]
    (tmp_path / "group1-shard3of4.bin").mkdir()  # a folder where a shard goes
    with pytest.raises(IsADirectoryError):
        tm.write_group(tmp_path, 0, weights, shard_size=100)


def test_string_weights_use_length_prefixes(tmp_path):
    strings = np.array([["a", "héllo"], ["", "x" * 300]], dtype=object)
    group, back = _roundtrip(tmp_path, [("vocab", strings)])
    raw = (tmp_path / group["paths"][0]).read_bytes()
    assert raw[:5] == b"\x01\x00\x00\x00a" and group["weights"][0]["dtype"] == "string"
    assert [s.decode() for s in back[0].array.reshape(-1)] == ["a", "héllo", "", "x" * 300]


@pytest.mark.parametrize("qdtype,bits", [("uint8", 8), ("uint16", 16)])
def test_affine_quantization_keeps_zero_exact(tmp_path, qdtype, bits):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(64, 32)).astype(np.float32)
    w[0, :5] = 0.0
    group, back = _roundtrip(tmp_path, [("k", w)], quantization={"k": qdtype})
    meta = group["weights"][0]["quantization"]
    assert set(meta) == {"dtype", "min", "scale", "original_dtype"}
    assert meta["dtype"] == qdtype and meta["original_dtype"] == "float32"
    assert group["weights"][0]["dtype"] == "float32"
    assert (tmp_path / group["paths"][0]).stat().st_size == w.size * bits // 8
    deq = back[0].array
    assert deq.dtype == np.float32 and np.all(deq[0, :5] == 0.0)
    assert np.max(np.abs(deq - w)) <= meta["scale"] / 2 + 1e-6
    assert meta["min"] <= w.min() + meta["scale"] and back[0].quantization == meta


def test_constant_weight_quantizes_exactly(tmp_path):
    w = np.full((4,), 0.25, np.float32)
    group, back = _roundtrip(tmp_path, [("c", w)], quantization={"c": "uint8"})
    assert group["weights"][0]["quantization"]["scale"] == 1.0
    assert np.array_equal(back[0].array, w)


def test_float16_quantization(tmp_path):
    w = np.linspace(-3, 3, 50, dtype=np.float32)
    group, back = _roundtrip(tmp_path, [("h", w)], quantization={"h": "float16"})
    assert group["weights"][0]["quantization"] == {"dtype": "float16", "original_dtype": "float32"}
    assert np.array_equal(back[0].array, w.astype(np.float16).astype(np.float32))


def test_int32_weights_quantize_with_rounding(tmp_path):
    w = np.arange(-10, 246, dtype=np.int32)
    _, back = _roundtrip(tmp_path, [("i", w)], quantization={"i": "uint8"})
    assert back[0].array.dtype == np.int32 and np.array_equal(back[0].array, w)


def test_quantize_rules_follow_tfjs_semantics():
    names = ["conv/kernel", "conv/bias", "dense/kernel", "dense/bias"]
    rules = tm.parse_quantize(["uint8:*/kernel", "float16"])
    assert tm.choose_quantization(names, rules) == {
        "conv/kernel": "uint8", "dense/kernel": "uint8", "conv/bias": "float16",
        "dense/bias": "float16"}
    with pytest.raises(UnsupportedError, match="matches both"):
        tm.choose_quantization(names, tm.parse_quantize(["uint8:conv/*", "uint16:*/kernel"]))
    with pytest.raises(UnsupportedError, match="unknown quantization 'int4'"):
        tm.parse_quantize(["int4"])
    with pytest.raises(UnsupportedError, match="more than one"):
        tm.parse_quantize(["uint8", "float16"])


def test_unsupported_weight_dtype_is_refused(tmp_path):
    with pytest.raises(UnsupportedError, match="float64"):
        tm.write_group(tmp_path, 0, [("d", np.zeros(3, np.float64))])


@pytest.mark.parametrize("mutate,pattern", [
    (lambda g: g["weights"][0].update(shape=[-1]), "invalid shape"),
    (lambda g: g["weights"][0].update(shape=[1 << 20, 1 << 20]), "declares"),
    (lambda g: g["weights"][0].update(dtype="float64"), "unsupported dtype"),
    (lambda g: g["weights"][0].update(quantization={"dtype": "uint8"}), "without scale and min"),
    (lambda g: g["weights"][0].update(quantization={"dtype": "int4"}), "unknown quantization"),
    (lambda g: g["weights"].append(dict(g["weights"][0])), "(appears twice|end before)"),
    (lambda g: g.update(paths="x.bin"), "lacks 'paths'"),
    (lambda g: g["paths"].__setitem__(0, "/etc/passwd"), "absolute path"),
])
def test_malformed_manifest_entries(tmp_path, mutate, pattern):
    group = tm.write_group(tmp_path, 0, [("w", np.ones((2, 3), np.float32))])
    group = json.loads(json.dumps(group))
    mutate(group)
    with pytest.raises(FormatError, match=pattern):
        tm.read_manifest(tmp_path, [group], file=tmp_path / "model.json")
