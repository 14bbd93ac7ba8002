"""TF.js 0.x graph-models (tensorflowjs_model.pb + weights_manifest.json) are read as graph-models.

npm packages still ship this pre-1.0 pair (handtrackjs 0.1.5); it used to be "unrecognised file"
(exit 3). One GraphDef is encoded here by hand from the public protobuf wire format (so the field
numbers are checked independently of modelport's schema table), and real tensorflowjs fixtures
are re-stored as a 0.x pair, which must read back as the same graph and convert.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from modelport.cli import main
from modelport.formats import sniff, tfjs_graph, tfjs_graph_v0
from modelport.models.tfjs_graph import attr_type

from .conftest import FIXTURES


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def _field(number: int, payload: bytes | int) -> bytes:
    """A length-delimited field (bytes) or a varint field (int)."""
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _attr(key: str, value: bytes) -> bytes:  # NodeDef.attr (5): map entry {key 1, value 2}
    return _field(5, _field(1, key.encode()) + _field(2, value))


def _hand_graph() -> bytes:
    """x (Placeholder float [-1, 3]) -> Mul by a 3-float Const -> Sum over axis 0 (int
    AttrValue 0 and bool false must survive: AttrValue's fields are a oneof)."""
    dt_float, dt_int32 = 1, 3
    shape = _field(2, _field(1, -1)) + _field(2, _field(1, 3))  # dim {size}
    scale = _field(1, dt_float) + _field(2, _field(2, _field(1, 3))) + _field(
        4, struct.pack("<3f", 1.0, 2.0, -3.0))  # dtype, tensor_shape, tensor_content
    axis = _field(1, dt_int32) + _field(2, b"") + _field(7, 0)  # int_val 0 (a scalar)
    nodes = [
        _field(1, b"x") + _field(2, b"Placeholder") + _attr("dtype", _field(6, dt_float))
        + _attr("shape", _field(7, shape)),
        _field(1, b"scale") + _field(2, b"Const") + _attr("dtype", _field(6, dt_float))
        + _attr("value", _field(8, scale)),
        _field(1, b"axis") + _field(2, b"Const") + _attr("dtype", _field(6, dt_int32))
        + _attr("value", _field(8, axis)),
        _field(1, b"y") + _field(2, b"Mul") + _field(3, b"x") + _field(3, b"scale")
        + _attr("T", _field(6, dt_float)),
        _field(1, b"z") + _field(2, b"Sum") + _field(3, b"y") + _field(3, b"axis")
        + _attr("T", _field(6, dt_float)) + _attr("Tidx", _field(6, dt_int32))
        + _attr("keep_dims", _field(5, 0)),
    ]
    return b"".join(_field(1, n) for n in nodes) + _field(4, _field(1, 27))  # versions


def test_hand_encoded_graph_reads_and_runs(tmp_path):
    from modelport.runtime import tfjs_reference

    (tmp_path / tfjs_graph_v0.GRAPH_PB).write_bytes(_hand_graph())
    (tmp_path / tfjs_graph_v0.MANIFEST).write_text("[]")
    for where in (tmp_path, tmp_path / tfjs_graph_v0.GRAPH_PB):
        assert sniff.sniff(where) == sniff.TFJS_GRAPH
    graph = tfjs_graph.read(tmp_path)
    nodes = {n.name: n for n in graph.nodes}
    assert nodes["z"].attrs["keep_dims"] == {"b": False}
    assert attr_type(nodes["z"], "Tidx") == "int32"
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (z,) = tfjs_reference.run(graph, [x])
    np.testing.assert_array_equal(z, (x * [1.0, 2.0, -3.0]).sum(0))


def _as_v0(src: Path, dst: Path) -> Path:
    """A real tensorflowjs graph-model re-stored as the 0.x pair: the GraphDef as binary
    protobuf, the manifest in its own file, the shards beside them."""
    from google.protobuf import json_format

    doc = json.loads((src / "model.json").read_text())
    dst.mkdir()
    message = json_format.ParseDict(doc["modelTopology"], tfjs_graph_v0._graph_def_class()())
    (dst / tfjs_graph_v0.GRAPH_PB).write_bytes(message.SerializeToString())
    (dst / tfjs_graph_v0.MANIFEST).write_text(json.dumps(doc["weightsManifest"]))
    for group in doc["weightsManifest"]:
        for shard in group["paths"]:
            shutil.copy(src / shard, dst / shard)
    return dst


@pytest.mark.parametrize("case", ["cnn_uint8", "lstm_cell"])
def test_real_graph_restored_as_v0_reads_the_same(case, tmp_path):
    src = FIXTURES / "tfjs_graph" / case
    old = tfjs_graph.read(_as_v0(src, tmp_path / "v0"))
    new = tfjs_graph.read(src)
    assert [(n.name, n.op, n.inputs, n.attrs) for n in old.nodes] == \
        [(n.name, n.op, n.inputs, n.attrs) for n in new.nodes]
    assert old.weights.keys() == new.weights.keys()
    for name, array in new.weights.items():
        np.testing.assert_array_equal(old.weights[name], array)


def test_v0_pair_converts_to_onnx(tmp_path):
    v0 = _as_v0(FIXTURES / "tfjs_graph" / "cnn_uint8", tmp_path / "v0")
    result = CliRunner().invoke(main, ["convert", str(v0 / tfjs_graph_v0.GRAPH_PB),
                                       str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output


def test_a_pb_without_its_manifest_is_named_with_what_is_missing(tmp_path):
    """A valid file that lacks its other half: unsupported (4), naming the manifest."""
    pb = tmp_path / tfjs_graph_v0.GRAPH_PB
    pb.write_bytes(_hand_graph())
    result = CliRunner().invoke(main, ["inspect", str(pb)])
    assert result.exit_code == 4, result.output
    assert "pre-1.0 format without its weights_manifest.json" in result.output


def test_a_corrupt_pb_beside_a_manifest_is_a_bad_file(tmp_path):
    (tmp_path / tfjs_graph_v0.GRAPH_PB).write_bytes(b"\x0a\xff\xff\xff\x0f" + b"\x00" * 16)
    (tmp_path / tfjs_graph_v0.MANIFEST).write_text("[]")
    result = CliRunner().invoke(main, ["inspect", str(tmp_path)])
    assert result.exit_code == 3
    assert "not a TF.js 0.x GraphDef" in result.output
