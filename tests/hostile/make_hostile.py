"""Craft the hostile-input corpus: broken and malicious models of every format, made from the
small valid fixtures in ``fixtures/``.

    python tests/hostile/make_hostile.py OUTDIR

Each case is one function that writes its model under ``OUTDIR/<case id>/`` and returns the path
to hand to modelport, together with what modelport must answer (``CASES``: the command, the exit
code, the error kind and a pattern of the one-line message). The corpus is made afresh by the
tests (``tests/test_hostile.py``), so no crafted binary is committed.

Cases that point outside their folder (symlinks, hard links, ``..``) point at
``OUTDIR/outside/secret.bin``: a file modelport must never read.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
K3_H5 = FIXTURES / "keras3" / "mlp_sequential.h5"
K3_FUNCTIONAL_H5 = FIXTURES / "keras3" / "multi_io.h5"
K3_KERAS = FIXTURES / "keras3" / "mlp_sequential.keras"
K3_LAMBDA_H5 = FIXTURES / "keras3" / "lambda_layer.h5"
TFJS_MLP = FIXTURES / "tfjs" / "tfjs_mlp"
TFJS_GRAPH = FIXTURES / "tfjs_graph" / "dense"
SECRET = b"secret bytes that must never be read by modelport\n" * 4


@dataclass(frozen=True)
class Case:
    """One hostile input and the answer modelport owes it."""

    id: str
    format: str  # keras-h5 | keras-v3 | tfjs-layers | tfjs-graph | onnx
    make: Callable[[Path], Path]
    command: str  # convert | inspect | validate
    exit_code: int
    kind: str | None  # ModelportError.kind; None when the command succeeds; "parity" when
    # validate runs and reports a mismatch
    pattern: str  # regular expression the one-line error (or, if accepted, the output or a
    # logged warning) must match
    target: str = "out.keras"  # convert's destination (inside the test's own folder), or
    # validate's second model (an absolute path)
    extra: tuple[str, ...] = field(default_factory=tuple)


# --- helpers ------------------------------------------------------------------------------------

def _copy(src: Path, folder: Path, name: str | None = None) -> Path:
    dst = folder / (name or src.name)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copyfile(src, dst)
    return dst


def _outside(folder: Path) -> Path:
    """The file every escape points at (one per corpus)."""
    secret = folder.parent / "outside" / "secret.bin"
    if not secret.exists():
        secret.parent.mkdir(exist_ok=True)
        secret.write_bytes(SECRET)
    return secret


def _h5_config(path: Path, edit: Callable[[dict], object]) -> Path:
    import h5py

    with h5py.File(path, "a") as f:
        raw = f.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        result = edit(config)
        f.attrs["model_config"] = result if isinstance(result, str) else json.dumps(config)
    return path


def _functional_layers(config: dict) -> list[dict]:
    return config["config"]["layers"]


def _history_refs(layer: dict) -> list[list]:
    """The ``keras_history`` triples of a Keras 3 layer's inbound nodes."""
    found: list[list] = []

    def walk(obj):
        if isinstance(obj, dict):
            if "keras_history" in obj:
                found.append(obj["keras_history"])
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)
    walk(layer.get("inbound_nodes", []))
    return found


def _tfjs(folder: Path) -> Path:
    return _copy(TFJS_MLP, folder, "web")


def _tfjs_doc(web: Path) -> dict:
    return json.loads((web / "model.json").read_text())


def _tfjs_save(web: Path, doc: dict) -> Path:
    (web / "model.json").write_text(json.dumps(doc))
    return web


def _keras_zip(folder: Path, name: str, members: list[tuple[str, bytes]],
               compression: int = zipfile.ZIP_STORED) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for member, data in members:
            zf.writestr(zipfile.ZipInfo(member, (1980, 1, 1, 0, 0, 0)), data,
                        compress_type=compression)
    return path


def _keras_members() -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(K3_KERAS) as zf:
        return [(n, zf.read(n)) for n in zf.namelist()]


def _keras_with_weights(folder: Path, name: str, edit: Callable) -> Path:
    """A copy of the .keras fixture whose model.weights.h5 is edited with h5py."""
    import h5py

    members = dict(_keras_members())
    weights = folder / "weights.h5"
    weights.write_bytes(members["model.weights.h5"])
    with h5py.File(weights, "a") as f:
        edit(f)
    members["model.weights.h5"] = weights.read_bytes()
    weights.unlink()
    return _keras_zip(folder, name, list(members.items()))


def _onnx_model(weights: np.ndarray | None = None):
    """x[1,4] @ W[4,3] + b -> Relu -> y: the smallest model with initializers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = weights if weights is not None else np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    b = np.array([0.1, -0.2, 0.3], np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"], name="matmul"),
         helper.make_node("Add", ["h", "b"], ["z"], name="add"),
         helper.make_node("Relu", ["z"], ["y"], name="relu")],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _onnx_save(model, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _onnx_external(folder: Path, location: str, *, data: bytes | None = None,
                   offset: int = 0, length: int | None = None) -> Path:
    """The tiny model with W stored externally at ``location`` (relative to the model)."""
    from onnx import TensorProto

    model = _onnx_model()
    w = model.graph.initializer[0]
    raw = w.raw_data
    if data is not None:
        (folder / "w.data").write_bytes(data)
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)),
                       ("length", str(len(raw) if length is None else length))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    return _onnx_save(model, folder / "model.onnx")


def _graph(folder: Path) -> Path:
    return _copy(TFJS_GRAPH, folder, "web")


# --- Keras HDF5 ---------------------------------------------------------------------------------

def h5_truncated(folder: Path) -> Path:
    data = K3_H5.read_bytes()
    path = folder / "truncated.h5"
    path.write_bytes(data[: len(data) // 3])
    return path


def h5_wrong_magic(folder: Path) -> Path:
    data = bytearray(K3_H5.read_bytes())
    data[:8] = b"NOTHDF5!"
    path = folder / "model.h5"
    path.write_bytes(bytes(data))
    return path


def h5_external_link(folder: Path) -> Path:
    import h5py

    path = _copy(K3_H5, folder, "model.h5")
    secret = _outside(folder)
    with h5py.File(path, "a") as f:
        f["model_weights"]["stolen"] = h5py.ExternalLink(str(secret), "/")
    return path


def h5_soft_link(folder: Path) -> Path:
    import h5py

    path = _copy(K3_H5, folder, "model.h5")
    with h5py.File(path, "a") as f:
        f["model_weights"]["alias"] = h5py.SoftLink("/model_weights")
    return path


def h5_hard_link_cycle(folder: Path) -> Path:
    """A group hard-linked into itself: legal HDF5, an endless walk for a naive reader."""
    import h5py

    path = _copy(K3_H5, folder, "model.h5")
    with h5py.File(path, "a") as f:
        f["model_weights"]["loop"] = f["model_weights"]
    return path


def _replace_first_weight(path: Path, make) -> Path:
    import h5py

    with h5py.File(path, "a") as f:
        group = _first_weight_group(f)
        name = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]][0]
        shape = group[name].shape
        del group[name]
        make(group, name, shape)
    return path


def h5_external_storage(folder: Path) -> Path:
    """A dataset whose bytes live in another file (HDF5 external storage)."""
    secret = _outside(folder)
    return _replace_first_weight(_copy(K3_H5, folder, "model.h5"), lambda g, n, shape: (
        g.create_dataset(n, shape=(len(SECRET) // 4,), dtype="f4",
                         external=[(str(secret), 0, len(SECRET))])))


def h5_virtual_dataset(folder: Path) -> Path:
    """A virtual dataset mapped from another HDF5 file outside the folder."""
    import h5py

    other = folder.parent / "outside" / "weights.h5"
    _outside(folder)
    if not other.exists():
        with h5py.File(other, "w") as f:
            f["data"] = np.arange(112, dtype="f4")

    def make(group, name, shape):
        layout = h5py.VirtualLayout(shape=(112,), dtype="f4")
        layout[:] = h5py.VirtualSource(str(other), "data", shape=(112,))
        group.create_virtual_dataset(name, layout)
    return _replace_first_weight(_copy(K3_H5, folder, "model.h5"), make)


def h5_config_not_json(folder: Path) -> Path:
    return _h5_config(_copy(K3_H5, folder, "model.h5"), lambda c: '{"class_name": "Seq')


def h5_config_deep(folder: Path) -> Path:
    return _h5_config(_copy(K3_H5, folder, "model.h5"), lambda c: "[" * 100_000 + "]" * 100_000)


def h5_unknown_class(folder: Path) -> Path:
    def edit(config):
        layer = config["config"]["layers"][1]
        layer["class_name"] = "EvilLayer"
        layer["module"] = "os"
        layer["registered_name"] = "os>system"
    return _h5_config(_copy(K3_H5, folder, "model.h5"), edit)


def h5_module_strings(folder: Path) -> Path:
    """``module``/``function`` strings naming code: data only, the model converts."""
    def edit(config):
        layer = config["config"]["layers"][1]
        layer["module"] = "os"
        layer["config"]["activation"] = {"module": "os", "class_name": "function",
                                         "config": "system", "registered_name": "function"}
    return _h5_config(_copy(K3_H5, folder, "model.h5"), edit)


def h5_duplicate_layer_names(folder: Path) -> Path:
    def edit(config):
        layers = _functional_layers(config)
        layers[3]["name"] = layers[2]["name"]
        layers[3]["config"]["name"] = layers[2]["name"]
    return _h5_config(_copy(K3_FUNCTIONAL_H5, folder, "model.h5"), edit)


def h5_cycle(folder: Path) -> Path:
    def edit(config):
        layers = _functional_layers(config)
        by_name = {layer["name"]: layer for layer in layers}
        # dense_8 now reads the output of add, which reads dense_8: a cycle
        _history_refs(by_name["dense_8"])[0][0] = "add"
    return _h5_config(_copy(K3_FUNCTIONAL_H5, folder, "model.h5"), edit)


def h5_dangling_input(folder: Path) -> Path:
    def edit(config):
        by_name = {layer["name"]: layer for layer in _functional_layers(config)}
        _history_refs(by_name["dense_8"])[0][0] = "no_such_layer"
    return _h5_config(_copy(K3_FUNCTIONAL_H5, folder, "model.h5"), edit)


def h5_weight_string_dtype(folder: Path) -> Path:
    import h5py

    path = _copy(K3_H5, folder, "model.h5")
    with h5py.File(path, "a") as f:
        group = _first_weight_group(f)
        name = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]][0]
        del group[name]
        group[name] = np.array([b"not", b"numbers"])
    return path


def h5_weight_without_value(folder: Path) -> Path:
    """A weight stored with a null dataspace (h5py.Empty): a dataset that holds no value at all."""
    import h5py

    return _replace_first_weight(_copy(K3_H5, folder, "model.h5"), lambda g, n, shape: (
        g.create_dataset(n, data=h5py.Empty("f4"))))


def _one_more_unit(layers: list[dict]) -> None:
    """The first Dense layer's units, one more than its stored kernel has columns."""
    dense = next(layer for layer in layers if layer["class_name"] == "Dense")
    dense["config"]["units"] += 1


def h5_config_contradicts_weights(folder: Path) -> Path:
    """units edited in the config: Keras refuses to load it ("Shape mismatch ... Weight expects
    shape (7, 17). Received saved weight with shape (7, 16)")."""
    return _h5_config(_copy(K3_H5, folder, "model.h5"),
                      lambda c: _one_more_unit(c["config"]["layers"]))


def keras_config_contradicts_weights(folder: Path) -> Path:
    members = dict(_keras_members())
    config = json.loads(members["config.json"])
    _one_more_unit(config["config"]["layers"])
    members["config.json"] = json.dumps(config).encode()
    return _keras_zip(folder, "model.keras", list(members.items()))


def tfjs_config_contradicts_weights(folder: Path) -> Path:
    web = _tfjs(folder)
    doc = _tfjs_doc(web)
    _one_more_unit(doc["modelTopology"]["config"]["layers"])
    return _tfjs_save(web, doc)


def h5_huge_declared_shape(folder: Path) -> Path:
    """A chunked dataset that declares 32 GiB but stores nothing: reading it must not allocate."""
    import h5py

    path = _copy(K3_H5, folder, "model.h5")
    with h5py.File(path, "a") as f:
        group = _first_weight_group(f)
        name = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]][0]
        del group[name]
        group.create_dataset(name, shape=(1 << 17, 1 << 16), dtype="f4", chunks=(1, 1024))
    return path


def h5_weight_count_mismatch(folder: Path) -> Path:
    import h5py

    path = _copy(K3_H5, folder, "model.h5")
    with h5py.File(path, "a") as f:
        group = _first_weight_group(f)
        names = [n if isinstance(n, bytes) else str(n).encode() for n in group.attrs["weight_names"]]
        group.attrs["weight_names"] = np.asarray(names + names[:1])
    return path


def h5_nan_weights(folder: Path) -> Path:
    import h5py

    path = _copy(K3_H5, folder, "model.h5")
    with h5py.File(path, "a") as f:
        group = _first_weight_group(f)
        name = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]][0]
        data = group[name][()]
        data.flat[0] = np.nan
        data.flat[1] = np.inf
        group[name][...] = data
    return path


def _first_weight_group(f):
    """The ``model_weights/<layer>`` group that actually stores the first variables."""
    found = []

    def visit(name, obj):
        if not found and "weight_names" in obj.attrs and len(obj.attrs["weight_names"]):
            found.append(obj)
    f["model_weights"].visititems(visit)
    return found[0]


def h5_lambda_to_tfjs(folder: Path) -> Path:
    return _copy(K3_LAMBDA_H5, folder, "lambda.h5")


# --- Keras .keras -------------------------------------------------------------------------------

def keras_truncated(folder: Path) -> Path:
    data = K3_KERAS.read_bytes()
    path = folder / "model.keras"
    path.write_bytes(data[: len(data) // 2])
    return path


def keras_wrong_magic(folder: Path) -> Path:
    data = bytearray(K3_KERAS.read_bytes())
    data[:4] = b"QK\x03\x04"
    path = folder / "model.keras"
    path.write_bytes(bytes(data))
    return path


def keras_member_dotdot(folder: Path) -> Path:
    return _keras_zip(folder, "model.keras", _keras_members() + [("../../evil.sh", b"#!/bin/sh\n")])


def keras_member_absolute(folder: Path) -> Path:
    return _keras_zip(folder, "model.keras", _keras_members() + [("/etc/cron.d/evil", b"* * *\n")])


def keras_duplicate_member(folder: Path) -> Path:
    members = _keras_members()
    config = dict(members)["config.json"]
    return _keras_zip(folder, "model.keras", members + [("config.json", config)])


def keras_zip_bomb(folder: Path) -> Path:
    """metadata.json inflates from ~60 kB to 64 MB (1000x): refused before it is inflated."""
    members = [(n, d) for n, d in _keras_members() if n != "metadata.json"]
    members.append(("metadata.json", b"{" + b" " * (64 << 20) + b"}"))
    return _keras_zip(folder, "model.keras", members, zipfile.ZIP_DEFLATED)


def keras_config_not_json(folder: Path) -> Path:
    members = [(n, b"{\"class_name\": " if n == "config.json" else d)
               for n, d in _keras_members()]
    return _keras_zip(folder, "model.keras", members)


def keras_unknown_class(folder: Path) -> Path:
    members = dict(_keras_members())
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["class_name"] = "SubprocessLayer"
    config["config"]["layers"][1]["module"] = "subprocess"
    members["config.json"] = json.dumps(config).encode()
    return _keras_zip(folder, "model.keras", list(members.items()))


def keras_weights_external_link(folder: Path) -> Path:
    import h5py

    secret = _outside(folder)

    def edit(f):
        f["stolen"] = h5py.ExternalLink(str(secret), "/")
    return _keras_with_weights(folder, "model.keras", edit)


def keras_weights_huge_shape(folder: Path) -> Path:
    def edit(f):
        found = []
        f.visititems(lambda n, o: found.append(n) if n.endswith("vars/0") else None)
        del f[found[0]]
        f.create_dataset(found[0], shape=(1 << 21, 1 << 20), dtype="f4", chunks=(1, 4096))
    return _keras_with_weights(folder, "model.keras", edit)


def _unzipped(folder: Path) -> Path:
    target = folder / "model_unzipped"
    target.mkdir()
    for name, data in _keras_members():
        (target / name).write_bytes(data)
    return target


def keras_folder_symlink_out(folder: Path) -> Path:
    target = _unzipped(folder)
    (target / "model.weights.h5").unlink()
    os.symlink(_outside(folder), target / "model.weights.h5")
    return target


def keras_folder_hard_link(folder: Path) -> Path:
    target = _unzipped(folder)
    (target / "metadata.json").unlink()
    os.link(_outside(folder), target / "metadata.json")
    return target


def keras_folder_config_symlink(folder: Path) -> Path:
    target = _unzipped(folder)
    (target / "config.json").unlink()
    os.symlink(_outside(folder), target / "config.json")
    return target


# --- TF.js layers-models ------------------------------------------------------------------------

def tfjs_shard_short(folder: Path) -> Path:
    web = _tfjs(folder)
    shard = web / _tfjs_doc(web)["weightsManifest"][0]["paths"][0]
    shard.write_bytes(shard.read_bytes()[:-12])
    return web


def tfjs_shard_long(folder: Path) -> Path:
    web = _tfjs(folder)
    shard = web / _tfjs_doc(web)["weightsManifest"][0]["paths"][0]
    shard.write_bytes(shard.read_bytes() + b"\x00" * 16)
    return web


def tfjs_manifest_mismatch(folder: Path) -> Path:
    """The manifest lists the one shard twice: it accounts for half the bytes it claims."""
    web = _tfjs(folder)
    doc = _tfjs_doc(web)
    doc["weightsManifest"][0]["paths"] *= 2
    return _tfjs_save(web, doc)


def tfjs_duplicate_weight(folder: Path) -> Path:
    web = _tfjs(folder)
    doc = _tfjs_doc(web)
    weights = doc["weightsManifest"][0]["weights"]
    weights[1]["name"] = weights[0]["name"]
    return _tfjs_save(web, doc)


def tfjs_path_absolute(folder: Path) -> Path:
    web = _tfjs(folder)
    doc = _tfjs_doc(web)
    doc["weightsManifest"][0]["paths"] = [str(_outside(folder))]
    return _tfjs_save(web, doc)


def tfjs_path_dotdot(folder: Path) -> Path:
    web = _tfjs(folder)
    _outside(folder)
    doc = _tfjs_doc(web)
    doc["weightsManifest"][0]["paths"] = ["../../outside/secret.bin"]
    return _tfjs_save(web, doc)


def tfjs_path_symlink_out(folder: Path) -> Path:
    web = _tfjs(folder)
    os.symlink(_outside(folder), web / "stolen.bin")
    doc = _tfjs_doc(web)
    doc["weightsManifest"][0]["paths"] = ["stolen.bin"]
    return _tfjs_save(web, doc)


def tfjs_path_symlinked_folder(folder: Path) -> Path:
    web = _tfjs(folder)
    os.symlink(_outside(folder).parent, web / "sub")
    doc = _tfjs_doc(web)
    doc["weightsManifest"][0]["paths"] = ["sub/secret.bin"]
    return _tfjs_save(web, doc)


def tfjs_path_hard_link(folder: Path) -> Path:
    web = _tfjs(folder)
    os.link(_outside(folder), web / "linked.bin")
    doc = _tfjs_doc(web)
    doc["weightsManifest"][0]["paths"] = ["linked.bin"]
    return _tfjs_save(web, doc)


def tfjs_path_folder(folder: Path) -> Path:
    web = _tfjs(folder)
    (web / "shards").mkdir()
    doc = _tfjs_doc(web)
    doc["weightsManifest"][0]["paths"] = ["shards"]
    return _tfjs_save(web, doc)


def tfjs_huge_shape(folder: Path) -> Path:
    web = _tfjs(folder)
    doc = _tfjs_doc(web)
    doc["weightsManifest"][0]["weights"][0]["shape"] = [1 << 30, 1 << 30]
    return _tfjs_save(web, doc)


def tfjs_shape_exceeds_shards(folder: Path) -> Path:
    """A plausible 16 GiB shape over a few kB of shards: refused before anything is allocated."""
    web = _tfjs(folder)
    doc = _tfjs_doc(web)
    doc["weightsManifest"][0]["weights"][0]["shape"] = [1 << 16, 1 << 16]
    return _tfjs_save(web, doc)


def tfjs_wrong_dtype(folder: Path) -> Path:
    web = _tfjs(folder)
    doc = _tfjs_doc(web)
    doc["weightsManifest"][0]["weights"][0]["dtype"] = "float64"
    return _tfjs_save(web, doc)


def tfjs_json_truncated(folder: Path) -> Path:
    web = _tfjs(folder)
    text = (web / "model.json").read_text()
    (web / "model.json").write_text(text[: len(text) // 2])
    return web


def tfjs_json_deep(folder: Path) -> Path:
    web = _tfjs(folder)
    doc = _tfjs_doc(web)
    (web / "model.json").write_text(json.dumps(doc)[:-1] + ', "x": ' + "[" * 50_000
                                    + "]" * 50_000 + "}")
    return web


def tfjs_unknown_class(folder: Path) -> Path:
    web = _tfjs(folder)
    doc = _tfjs_doc(web)
    doc["modelTopology"]["config"]["layers"][2]["class_name"] = "EvalLayer"
    return _tfjs_save(web, doc)


def tfjs_inf_weights(folder: Path) -> Path:
    web = _tfjs(folder)
    doc = _tfjs_doc(web)
    shard = web / doc["weightsManifest"][0]["paths"][0]
    data = bytearray(shard.read_bytes())
    data[0:4] = struct.pack("<f", float("inf"))
    data[4:8] = struct.pack("<f", float("nan"))
    shard.write_bytes(bytes(data))
    return web


# --- ONNX ---------------------------------------------------------------------------------------

def onnx_truncated(folder: Path) -> Path:
    data = _onnx_model().SerializeToString()
    path = folder / "model.onnx"
    path.write_bytes(data[: len(data) // 2])
    return path


def onnx_garbage(folder: Path) -> Path:
    path = folder / "model.onnx"
    path.write_bytes(bytes(range(256)) * 4)
    return path


def onnx_external_absolute(folder: Path) -> Path:
    return _onnx_external(folder, str(_outside(folder)))


def onnx_external_dotdot(folder: Path) -> Path:
    _outside(folder)
    return _onnx_external(folder, "../../outside/secret.bin")


def onnx_external_symlink(folder: Path) -> Path:
    os.symlink(_outside(folder), folder / "w.data")
    return _onnx_external(folder, "w.data")


def onnx_external_hard_link(folder: Path) -> Path:
    os.link(_outside(folder), folder / "w.data")
    return _onnx_external(folder, "w.data")


def onnx_external_range(folder: Path) -> Path:
    return _onnx_external(folder, "w.data", data=b"\x00" * 48, offset=40)


def onnx_external_missing(folder: Path) -> Path:
    return _onnx_external(folder, "w.data")


def onnx_subgraph_external(folder: Path) -> Path:
    """External data hidden in an If branch's Constant: subgraphs are models too."""
    import onnx
    from onnx import TensorProto, helper

    _outside(folder)
    value = helper.make_tensor("c", TensorProto.FLOAT, [4], [0.0] * 4)
    value.ClearField("float_data")
    value.data_location = TensorProto.EXTERNAL
    for key, val in (("location", "../../outside/secret.bin"), ("offset", "0"), ("length", "16")):
        entry = value.external_data.add()
        entry.key, entry.value = key, val
    branch = helper.make_graph([helper.make_node("Constant", [], ["c_out"], value=value)],
                               "branch", [], [helper.make_tensor_value_info(
                                   "c_out", TensorProto.FLOAT, [4])])
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)],
        "with_if", [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "model.onnx"
    path.write_bytes(onnx.ModelProto.SerializeToString(model))
    return path


def onnx_huge_dims(folder: Path) -> Path:
    model = _onnx_model()
    w = model.graph.initializer[0]
    del w.dims[:]
    w.dims.extend([1 << 31, 1 << 31])
    return _onnx_save(model, folder / "model.onnx")


def onnx_raw_size_mismatch(folder: Path) -> Path:
    model = _onnx_model()
    model.graph.initializer[0].raw_data = model.graph.initializer[0].raw_data[:20]
    return _onnx_save(model, folder / "model.onnx")


def onnx_unknown_op(folder: Path) -> Path:
    model = _onnx_model()
    model.graph.node[2].op_type = "RunShellCommand"
    return _onnx_save(model, folder / "model.onnx")


def onnx_cycle(folder: Path) -> Path:
    model = _onnx_model()
    model.graph.node[0].input[0] = "z"  # matmul reads add's output, add reads matmul's
    return _onnx_save(model, folder / "model.onnx")


def onnx_dangling_input(folder: Path) -> Path:
    model = _onnx_model()
    model.graph.node[1].input[1] = "nowhere"
    return _onnx_save(model, folder / "model.onnx")


def onnx_duplicate_names(folder: Path) -> Path:
    model = _onnx_model()
    model.graph.node[1].output[0] = "h"  # two nodes produce 'h'
    model.graph.node[2].input[0] = "h"
    return _onnx_save(model, folder / "model.onnx")


def onnx_wrong_dtype(folder: Path) -> Path:
    from onnx import TensorProto

    model = _onnx_model()
    model.graph.initializer[1].data_type = TensorProto.STRING
    return _onnx_save(model, folder / "model.onnx")


def onnx_name_not_utf8(folder: Path) -> Path:
    """A node name whose bytes are not UTF-8: proto2 parses it as bytes, and the checker
    passes it."""
    data = _onnx_model().SerializeToString().replace(b"matmul", b"\xedatmul")
    (folder / "model.onnx").write_bytes(data)
    return folder / "model.onnx"


def onnx_nan_weights(folder: Path) -> Path:
    w = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    w[0, 0], w[1, 1] = np.nan, np.inf
    return _onnx_save(_onnx_model(w), folder / "model.onnx")


# --- TF.js graph-models -------------------------------------------------------------------------

def graph_path_dotdot(folder: Path) -> Path:
    web = _graph(folder)
    _outside(folder)
    doc = _tfjs_doc(web)
    doc["weightsManifest"][0]["paths"] = ["../../outside/secret.bin"]
    return _tfjs_save(web, doc)


def graph_path_symlink_out(folder: Path) -> Path:
    web = _graph(folder)
    os.symlink(_outside(folder), web / "stolen.bin")
    doc = _tfjs_doc(web)
    doc["weightsManifest"][0]["paths"] = ["stolen.bin"]
    return _tfjs_save(web, doc)


def graph_shard_short(folder: Path) -> Path:
    web = _graph(folder)
    shard = web / _tfjs_doc(web)["weightsManifest"][0]["paths"][0]
    shard.write_bytes(shard.read_bytes()[:-8])
    return web


def graph_unknown_op(folder: Path) -> Path:
    web = _graph(folder)
    doc = _tfjs_doc(web)
    nodes = doc["modelTopology"]["node"]
    victim = next(n for n in nodes if n["op"] not in ("Const", "Placeholder"))
    victim["op"] = "PyFunc"
    return _tfjs_save(web, doc)


def graph_huge_shape(folder: Path) -> Path:
    web = _graph(folder)
    doc = _tfjs_doc(web)
    doc["weightsManifest"][0]["weights"][0]["shape"] = [1 << 30, 1 << 30]
    return _tfjs_save(web, doc)


def graph_json_truncated(folder: Path) -> Path:
    web = _graph(folder)
    text = (web / "model.json").read_text()
    (web / "model.json").write_text(text[: len(text) // 2])
    return web


def graph_dangling_input(folder: Path) -> Path:
    web = _graph(folder)
    doc = _tfjs_doc(web)
    victim = next(n for n in doc["modelTopology"]["node"] if n.get("input"))
    victim["input"][0] = "no_such_node"
    return _tfjs_save(web, doc)


# --- the table ----------------------------------------------------------------------------------

UNSAFE, FORMAT, UNSUPPORTED = "unsafe", "format", "unsupported"

CASES: list[Case] = [
    # Keras HDF5
    Case("h5-truncated", "keras-h5", h5_truncated, "convert", 3, FORMAT, r"truncated\.h5: .*HDF5"),
    Case("h5-wrong-magic", "keras-h5", h5_wrong_magic, "inspect", 3, FORMAT,
         r"model\.h5: unrecognised file"),
    Case("h5-external-link", "keras-h5", h5_external_link, "convert", 3, UNSAFE,
         r"model\.h5: HDF5 ExternalLink at /model_weights/stolen is refused"),
    Case("h5-soft-link", "keras-h5", h5_soft_link, "convert", 3, UNSAFE,
         r"model\.h5: HDF5 SoftLink at /model_weights/alias is refused"),
    Case("h5-hard-link-cycle", "keras-h5", h5_hard_link_cycle, "inspect", 0, None,
         r"mlp_sequential"),
    Case("h5-external-storage", "keras-h5", h5_external_storage, "convert", 3, UNSAFE,
         r"model\.h5: .*stores its data in external files .*secret\.bin.*refused"),
    Case("h5-virtual-dataset", "keras-h5", h5_virtual_dataset, "convert", 3, UNSAFE,
         r"model\.h5: .*is a virtual dataset mapped from other files: refused"),
    Case("h5-config-not-json", "keras-h5", h5_config_not_json, "convert", 3, FORMAT,
         r"model\.h5: model_config is not valid JSON"),
    Case("h5-config-deeply-nested", "keras-h5", h5_config_deep, "inspect", 3, FORMAT,
         r"model\.h5: model_config is nested more than \d+ levels deep"),
    Case("h5-unknown-class", "keras-h5", h5_unknown_class, "convert", 4, UNSUPPORTED,
         r"model\.h5: layer '[^']+'.*'EvilLayer'.* unknown"),
    Case("h5-module-strings-are-data", "keras-h5", h5_module_strings, "inspect", 0, None,
         r"mlp"),
    Case("h5-duplicate-layer-names", "keras-h5", h5_duplicate_layer_names, "convert", 3, FORMAT,
         r"model\.h5: .*dense_8.*(twice|duplicate|more than once)"),
    Case("h5-cycle", "keras-h5", h5_cycle, "convert", 3, FORMAT, r"model\.h5: .*cycle"),
    Case("h5-dangling-input", "keras-h5", h5_dangling_input, "convert", 3, FORMAT,
         r"model\.h5: .*no_such_layer"),
    Case("h5-weight-string-dtype", "keras-h5", h5_weight_string_dtype, "convert", 3, FORMAT,
         r"model\.h5: .*dtype .*not a number type"),
    Case("h5-weight-without-value", "keras-h5", h5_weight_without_value, "convert", 3, FORMAT,
         r"model\.h5: .*dataset \S+ holds no value \(a null dataspace\)"),
    Case("h5-config-contradicts-weights", "keras-h5", h5_config_contradicts_weights, "convert", 3, FORMAT,
         r"model\.h5: layer '\w+': variable 'kernel' is stored with shape \[\d+, 16\], but the layer's config and its input \[None, \d+\] imply \[\d+, 17\]"),
    Case("keras-config-contradicts-weights", "keras-v3", keras_config_contradicts_weights, "convert", 3, FORMAT,
         r"model\.keras: layer '\w+': variable 'kernel' is stored with shape \[\d+, 16\], but the layer's config and its input \[None, \d+\] imply \[\d+, 17\]"),
    Case("tfjs-config-contradicts-weights", "tfjs-layers", tfjs_config_contradicts_weights, "convert", 3, FORMAT,
         r"model\.json: layer '\w+': variable 'kernel' is stored with shape \[\d+, 16\], but the layer's config and its input \[None, \d+\] imply \[\d+, 17\]"),
    Case("h5-huge-declared-shape", "keras-h5", h5_huge_declared_shape, "convert", 3, FORMAT,
         r"model\.h5: .*declares \d+ bytes"),
    Case("h5-weight-count-mismatch", "keras-h5", h5_weight_count_mismatch, "convert", 3, FORMAT,
         r"model\.h5: layer '[^']+': the file stores 3 variables"),
    Case("h5-nan-weights", "keras-h5", h5_nan_weights, "convert", 0, None,
         r"model\.h5: layer 'dense' weight 'kernel' holds 1 NaN and 1 Inf"),
    Case("h5-lambda-to-tfjs", "keras-h5", h5_lambda_to_tfjs, "convert", 4, UNSUPPORTED,
         r"lambda\.h5: layer 'lambda': Lambda", target="web"),
    Case("h5-nan-weights-validate", "keras-h5", h5_nan_weights, "validate", 6, "parity",
         r"NaN", target=str(K3_H5)),
    # Keras .keras
    Case("keras-truncated", "keras-v3", keras_truncated, "convert", 3, FORMAT,
         r"model\.keras: .*(zip|unrecognised)"),
    Case("keras-wrong-magic", "keras-v3", keras_wrong_magic, "inspect", 3, FORMAT,
         r"model\.keras: .*(zip|unrecognised)"),
    Case("keras-member-dotdot", "keras-v3", keras_member_dotdot, "convert", 3, UNSAFE,
         r"model\.keras: zip member '\.\./\.\./evil\.sh' climbs out"),
    Case("keras-member-absolute", "keras-v3", keras_member_absolute, "convert", 3, UNSAFE,
         r"model\.keras: zip member '/etc/cron\.d/evil' is an absolute path"),
    Case("keras-duplicate-member", "keras-v3", keras_duplicate_member, "convert", 3, FORMAT,
         r"model\.keras: zip member 'config\.json' appears twice"),
    Case("keras-zip-bomb", "keras-v3", keras_zip_bomb, "convert", 3, UNSAFE,
         r"model\.keras: zip member metadata\.json expands .*zip bomb"),
    Case("keras-config-not-json", "keras-v3", keras_config_not_json, "convert", 3, FORMAT,
         r"model\.keras: config\.json is not valid JSON"),
    Case("keras-unknown-class", "keras-v3", keras_unknown_class, "convert", 4, UNSUPPORTED,
         r"model\.keras: layer '[^']+'.*'SubprocessLayer'.* unknown"),
    Case("keras-weights-external-link", "keras-v3", keras_weights_external_link, "convert", 3,
         UNSAFE, r"model\.keras: HDF5 ExternalLink at /stolen is refused"),
    Case("keras-weights-huge-shape", "keras-v3", keras_weights_huge_shape, "convert", 3, FORMAT,
         r"model\.keras: .*declares \d+ elements"),
    Case("keras-folder-symlink-out", "keras-v3", keras_folder_symlink_out, "convert", 3, UNSAFE,
         r"model_unzipped: member resolves outside the model's folder: 'model\.weights\.h5'"),
    Case("keras-folder-config-symlink", "keras-v3", keras_folder_config_symlink, "inspect", 3,
         UNSAFE, r"model_unzipped: member resolves outside the model's folder: 'config\.json'"),
    Case("keras-folder-hard-link", "keras-v3", keras_folder_hard_link, "convert", 3, UNSAFE,
         r"model_unzipped: member 'metadata\.json' is a hard link"),
    # TF.js layers-models
    Case("tfjs-shard-short", "tfjs-layers", tfjs_shard_short, "convert", 3, FORMAT,
         r"model\.json: the shards of group 0 end before weight"),
    Case("tfjs-shard-long", "tfjs-layers", tfjs_shard_long, "convert", 3, FORMAT,
         r"model\.json: the shards of group 0 hold \d+ bytes .* 16 bytes are unaccounted"),
    Case("tfjs-manifest-mismatch", "tfjs-layers", tfjs_manifest_mismatch, "convert", 3, FORMAT,
         r"model\.json: the shards of group 0 hold \d+ bytes but the manifest accounts for"),
    Case("tfjs-duplicate-weight", "tfjs-layers", tfjs_duplicate_weight, "convert", 3, FORMAT,
         r"model\.json: weight 'hidden1/kernel' appears twice in the manifest"),
    Case("tfjs-path-absolute", "tfjs-layers", tfjs_path_absolute, "convert", 3, UNSAFE,
         r"model\.json: shard path of group 0 is an absolute path"),
    Case("tfjs-path-dotdot", "tfjs-layers", tfjs_path_dotdot, "convert", 3, UNSAFE,
         r"model\.json: shard path of group 0 climbs out of the model's folder"),
    Case("tfjs-path-symlink-out", "tfjs-layers", tfjs_path_symlink_out, "convert", 3, UNSAFE,
         r"model\.json: shard path of group 0 resolves outside the model's folder: 'stolen\.bin'"),
    Case("tfjs-path-symlinked-folder", "tfjs-layers", tfjs_path_symlinked_folder, "inspect", 3,
         UNSAFE, r"model\.json: shard path of group 0 resolves outside .*'sub/secret\.bin'"),
    Case("tfjs-path-hard-link", "tfjs-layers", tfjs_path_hard_link, "convert", 3, UNSAFE,
         r"model\.json: shard path of group 0 'linked\.bin' is a hard link"),
    Case("tfjs-path-is-folder", "tfjs-layers", tfjs_path_folder, "convert", 3, UNSAFE,
         r"model\.json: shard path of group 0 'shards' is not a regular file"),
    Case("tfjs-huge-shape", "tfjs-layers", tfjs_huge_shape, "convert", 3, FORMAT,
         r"model\.json: weight 'hidden1/kernel' declares \d+ elements"),
    Case("tfjs-shape-exceeds-shards", "tfjs-layers", tfjs_shape_exceeds_shards, "inspect", 3,
         FORMAT, r"model\.json: the shards of group 0 end before weight 'hidden1/kernel'"),
    Case("tfjs-wrong-dtype", "tfjs-layers", tfjs_wrong_dtype, "convert", 3, FORMAT,
         r"model\.json: weight 'hidden1/kernel' has unsupported dtype 'float64'"),
    Case("tfjs-json-truncated", "tfjs-layers", tfjs_json_truncated, "convert", 3, FORMAT,
         r"model\.json: not valid JSON"),
    Case("tfjs-json-deeply-nested", "tfjs-layers", tfjs_json_deep, "convert", 3, FORMAT,
         r"model\.json: .*nested more than \d+ levels deep"),
    Case("tfjs-unknown-class", "tfjs-layers", tfjs_unknown_class, "convert", 4, UNSUPPORTED,
         r"model\.json: layer '[^']+'.*'EvalLayer'.* unknown"),
    Case("tfjs-inf-weights", "tfjs-layers", tfjs_inf_weights, "convert", 0, None,
         r"model\.json: layer 'hidden1' weight 'kernel' holds 1 NaN and 1 Inf"),
    Case("tfjs-path-dotdot-validate", "tfjs-layers", tfjs_path_dotdot, "validate", 3, UNSAFE,
         r"model\.json: shard path of group 0 climbs out of the model's folder",
         target=str(K3_H5)),
    # ONNX
    Case("onnx-truncated", "onnx", onnx_truncated, "inspect", 3, FORMAT,
         r"model\.onnx: not a readable ONNX model"),
    Case("onnx-garbage", "onnx", onnx_garbage, "inspect", 3, FORMAT,
         r"model\.onnx: not a readable ONNX model"),
    Case("onnx-external-absolute", "onnx", onnx_external_absolute, "inspect", 3, UNSAFE,
         r"model\.onnx: external data location of 'W' is an absolute path"),
    Case("onnx-external-dotdot", "onnx", onnx_external_dotdot, "convert", 3, UNSAFE,
         r"model\.onnx: external data location of 'W' climbs out", target="out.onnx",
         extra=("--no-validate",)),
    Case("onnx-external-symlink-out", "onnx", onnx_external_symlink, "inspect", 3, UNSAFE,
         r"model\.onnx: external data location of 'W' resolves outside .*'w\.data'"),
    Case("onnx-external-hard-link", "onnx", onnx_external_hard_link, "inspect", 3, UNSAFE,
         r"model\.onnx: external data location of 'W' 'w\.data' is a hard link"),
    Case("onnx-external-range", "onnx", onnx_external_range, "inspect", 3, FORMAT,
         r"model\.onnx: external data of 'W' claims bytes 40\.\.88 of 'w\.data', which has 48"),
    Case("onnx-external-missing", "onnx", onnx_external_missing, "inspect", 3, FORMAT,
         r"model\.onnx: external data 'w\.data' of 'W' is missing"),
    Case("onnx-subgraph-external", "onnx", onnx_subgraph_external, "inspect", 3, UNSAFE,
         r"model\.onnx: external data location of 'c' climbs out of the model's folder"),
    Case("onnx-huge-dims", "onnx", onnx_huge_dims, "convert", 3, FORMAT,
         r"model\.onnx: initializer 'W' declares \d+ elements", target="out.onnx",
         extra=("--no-validate",)),
    Case("onnx-raw-size-mismatch", "onnx", onnx_raw_size_mismatch, "inspect", 3, FORMAT,
         r"model\.onnx: initializer 'W' .*20 bytes"),
    Case("onnx-unknown-op", "onnx", onnx_unknown_op, "convert", 3, FORMAT,
         r"model\.onnx: .*RunShellCommand", target="out.onnx", extra=("--no-validate",)),
    Case("onnx-cycle", "onnx", onnx_cycle, "inspect", 3, FORMAT,
         r"model\.onnx: .*(topologically|cycle)"),
    Case("onnx-dangling-input", "onnx", onnx_dangling_input, "inspect", 3, FORMAT,
         r"model\.onnx: .*nowhere"),
    Case("onnx-duplicate-names", "onnx", onnx_duplicate_names, "inspect", 3, FORMAT,
         r"model\.onnx: .*'h'"),
    Case("onnx-wrong-dtype", "onnx", onnx_wrong_dtype, "inspect", 3, FORMAT,
         r"model\.onnx: initializer 'b'"),
    Case("onnx-name-not-utf8", "onnx", onnx_name_not_utf8, "convert", 3, FORMAT,
         r"model\.onnx: NodeProto\.name holds b'\\xedatmul', which is not UTF-8 text",
         target="web"),
    Case("onnx-nan-weights", "onnx", onnx_nan_weights, "convert", 0, None,
         r"model\.onnx: initializer 'W' holds 1 NaN and 1 Inf",
         target="out.onnx", extra=("--no-validate",)),
    # TF.js graph-models
    Case("graph-path-dotdot", "tfjs-graph", graph_path_dotdot, "inspect", 3, UNSAFE,
         r"model\.json: .*climbs out of the model's folder"),
    Case("graph-path-symlink-out", "tfjs-graph", graph_path_symlink_out, "inspect", 3, UNSAFE,
         r"model\.json: .*resolves outside the model's folder"),
    Case("graph-shard-short", "tfjs-graph", graph_shard_short, "inspect", 3, FORMAT,
         r"model\.json: the shards of group 0 end before weight"),
    Case("graph-unknown-op", "tfjs-graph", graph_unknown_op, "convert", 4, UNSUPPORTED,
         r"web(/model\.json)?: .*PyFunc", target="out.onnx", extra=("--no-validate",)),
    Case("graph-huge-shape", "tfjs-graph", graph_huge_shape, "inspect", 3, FORMAT,
         r"model\.json: weight '[^']+' declares \d+ elements"),
    Case("graph-json-truncated", "tfjs-graph", graph_json_truncated, "inspect", 3, FORMAT,
         r"model\.json: not valid JSON"),
    Case("graph-dangling-input", "tfjs-graph", graph_dangling_input, "convert", 3, FORMAT,
         r"model\.json: .*no_such_node", target="out.onnx", extra=("--no-validate",)),
]


def build(out: Path, cases: list[Case] | None = None) -> dict[str, Path]:
    """Make every case (of ``cases``, default ``CASES``) under ``out``; return {case id: path
    to hand to modelport}."""
    out.mkdir(parents=True, exist_ok=True)
    _outside(out / "x")
    made = {}
    for case in CASES if cases is None else cases:
        folder = out / case.id
        folder.mkdir()
        made[case.id] = case.make(folder)
    return made


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_hostile.py OUTDIR")
    for case_id, path in build(Path(sys.argv[1])).items():
        print(f"{case_id}\t{path}")
