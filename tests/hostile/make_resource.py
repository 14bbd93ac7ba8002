"""Hostile files that attack memory, time and the exit path (issue 19), made like the rest of
the corpus (``make_hostile``): each is a small file (under 1 MB) that declares or implies far
more memory than it holds, or drives a library into an error modelport must name.

Targets and extra arguments may hold ``{src}`` (the made model) and ``{folder}`` (its folder).
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np

from .make_hostile import (
    K3_H5,
    Case,
    _copy,
    _graph,
    _h5_config,
    _keras_members,
    _keras_with_weights,
    _keras_zip,
    _tfjs,
    _tfjs_doc,
    _tfjs_save,
)

FORMAT, UNSAFE, UNSUPPORTED = "format", "unsafe", "unsupported"
BUDGET = r"memory budget"  # the refusal's words (modelport.budget)


# --- ONNX graphs whose values, not weights, are huge --------------------------------------------

def _onnx(nodes, inputs, outputs, inits=(), path: Path | None = None, opset: int = 17,
          **extra) -> Path:
    from onnx import helper

    graph = helper.make_graph(nodes, "hostile", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], **extra)
    model.ir_version = 8
    assert path is not None
    path.write_bytes(model.SerializeToString())
    return path


def _expand(folder: Path, shape: list[int], dtype=np.float32, copies: int = 1) -> Path:
    """y = x (one element) expanded to ``shape`` (``copies`` times, added up)."""
    from onnx import helper, numpy_helper

    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    shape_init = numpy_helper.from_array(np.array(shape, np.int64), "shape")
    nodes = [helper.make_node("Expand", ["x", "shape"], [f"e{i}"]) for i in range(copies)]
    last = "e0"
    for i in range(1, copies):
        nodes.append(helper.make_node("Add", [last, f"e{i}"], [f"s{i}"]))
        last = f"s{i}"
    nodes.append(helper.make_node("Identity", [last], ["y"]))
    return _onnx(nodes, [helper.make_tensor_value_info("x", elem, [1])],
                 [helper.make_tensor_value_info("y", elem, [f"d{i}" for i in range(len(shape))])],
                 [shape_init],
                 path=folder / "model.onnx")


def expand_8192sq(folder: Path) -> Path:
    return _expand(folder, [8192, 8192])


def expand_2_25(folder: Path) -> Path:
    return _expand(folder, [1 << 25])


def expand_f64_2_15sq(folder: Path) -> Path:
    return _expand(folder, [1 << 15, 1 << 15], np.float64)


def expand_data_prop(folder: Path) -> Path:
    """Four Expand-to-[2**24] + Add: shape inference's data propagation made them proto dims."""
    return _expand(folder, [1 << 24], copies=4)


def expand_2_40(folder: Path) -> Path:
    return _expand(folder, [1 << 20, 1 << 20])


def _shape_op(folder: Path, op: str, count: int) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])
    if op == "ConstantOfShape":
        inits = [numpy_helper.from_array(np.array([count], np.int64), "shape")]
        nodes = [helper.make_node("ConstantOfShape", ["shape"], ["c"],
                                  value=numpy_helper.from_array(np.array([1.0], np.float32))),
                 helper.make_node("Add", ["c", "x"], ["y"])]
    elif op == "Range":
        inits = [numpy_helper.from_array(np.array(v, np.float32), n)
                 for n, v in (("start", 0.0), ("limit", float(count)), ("delta", 1.0))]
        nodes = [helper.make_node("Range", ["start", "limit", "delta"], ["r"]),
                 helper.make_node("Add", ["r", "x"], ["y"])]
    else:  # Tile
        inits = [numpy_helper.from_array(np.array([count], np.int64), "reps")]
        nodes = [helper.make_node("Tile", ["x", "reps"], ["y"])]
    return _onnx(nodes, [x], [y], inits, path=folder / "model.onnx")


def constant_of_shape(folder: Path) -> Path:
    return _shape_op(folder, "ConstantOfShape", 1 << 31)


def range_huge(folder: Path) -> Path:
    return _shape_op(folder, "Range", 1 << 31)


def tile_huge(folder: Path) -> Path:
    return _shape_op(folder, "Tile", 1 << 31)


def onnx_run_failure(folder: Path) -> Path:
    """A Gather whose constant index is out of range: onnxruntime fails when it runs."""
    from onnx import TensorProto, helper, numpy_helper

    return _onnx([helper.make_node("Gather", ["x", "i"], ["y"])],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
                 [numpy_helper.from_array(np.array([1000], np.int64), "i")],
                 path=folder / "model.onnx")


def _external_tensor(name: str, location: str):
    from onnx import TensorProto, helper

    t = helper.make_tensor(name, TensorProto.FLOAT, [2], [0.0, 0.0])
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "8")):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def onnx_function_external(folder: Path) -> Path:
    """A model-local function whose Constant reads ``../outside/secret.bin``."""
    from onnx import helper

    fn = helper.make_function(
        "hostile", "Leak", ["a"], ["b"],
        [helper.make_node("Constant", [], ["c"],
                          value=_external_tensor("c", "../outside/secret.bin")),
         helper.make_node("Add", ["a", "c"], ["b"])],
        [helper.make_opsetid("", 17)])
    return _function_model(folder, fn)


def _function_model(folder: Path, fn) -> Path:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Leak", ["x"], ["y"], domain="hostile")], "hostile",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, functions=[fn], opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("hostile", 1)])
    model.ir_version = 8
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def onnx_sparse_attr_external(folder: Path) -> Path:
    """A Constant's sparse_value whose values live in ``../outside/secret.bin``."""
    from onnx import TensorProto, helper

    sparse = helper.make_sparse_tensor(_external_tensor("v", "../outside/secret.bin"),
                                       helper.make_tensor("i", TensorProto.INT64, [2], [0, 1]),
                                       [4])
    return _onnx([helper.make_node("Constant", [], ["c"], sparse_value=sparse),
                  helper.make_node("Add", ["x", "c"], ["y"])],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
                 path=folder / "model.onnx")


def onnx_training_info_external(folder: Path) -> Path:
    """training_info's initializer reads ``../outside/secret.bin``."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "hostile",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    info = onnx.TrainingInfoProto()
    info.initialization.name = "init"
    info.initialization.initializer.append(_external_tensor("t", "../outside/secret.bin"))
    model.training_info.append(info)
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


# --- TF.js: a string weight's length prefix -----------------------------------------------------

def _string_prefix(web: Path, prefix: int) -> Path:
    doc = _tfjs_doc(web)
    entry = doc["weightsManifest"][0]["weights"][0]
    entry["dtype"], entry["shape"] = "string", [1]
    shard = web / doc["weightsManifest"][0]["paths"][0]
    data = bytearray(shard.read_bytes())
    data[:4] = struct.pack("<I", prefix)
    shard.write_bytes(bytes(data))
    return _tfjs_save(web, doc)


def tfjs_string_ffffffff(folder: Path) -> Path:
    return _string_prefix(_tfjs(folder), 0xFFFFFFFF)


def tfjs_string_80000000(folder: Path) -> Path:
    return _string_prefix(_tfjs(folder), 0x80000000)


def graph_string_ffffffff(folder: Path) -> Path:
    return _string_prefix(_graph(folder), 0xFFFFFFFF)


def graph_string_80000000(folder: Path) -> Path:
    return _string_prefix(_graph(folder), 0x80000000)


# --- Keras: configs that inflate, NaN, encryption, float128 ------------------------------------

def _keras_config(folder: Path, config: bytes, compression=zipfile.ZIP_DEFLATED) -> Path:
    members = [(n, config if n == "config.json" else d) for n, d in _keras_members()]
    return _keras_zip(folder, "model.keras", members, compression)


def _noisy(unit: bytes, count: int, every: int = 16) -> bytes:
    """A JSON list of ``count`` ``unit``s with random whitespace after every ``every``: it
    deflates about 40:1 (under every ratio limit) instead of 1000:1."""
    import random

    rnd = random.Random(19)
    chunk = unit * every
    parts = [b"["]
    for _ in range(count // every):
        parts += [chunk, rnd.choice([b" ", b"\n", b"\t", b"\r"]) * rnd.randint(1, 4)]
    return b"".join(parts) + b"0]"


def keras_config_bomb(folder: Path) -> Path:
    """config.json of 24 MB of empty lists, deflated 1000:1 to 24 kB."""
    return _keras_config(folder, b"[" + b"[]," * (8 << 20) + b"[]]")


def keras_config_ratio_100(folder: Path) -> Path:
    """config.json of 25 MB deflated ~100:1: under the zip-bomb ratio, over a config's."""
    return _keras_config(folder, _noisy(b"[],", 8 << 20, 64))


def keras_config_wide(folder: Path) -> Path:
    """config.json of 26 MB of empty lists (8 M arrays), deflated ~40:1 to ~660 kB."""
    return _keras_config(folder, _noisy(b"[],", 8 << 20))


def keras_config_wide_numbers(folder: Path) -> Path:
    """config.json of 26 MB of one-digit floats (6 M values), deflated ~40:1."""
    return _keras_config(folder, _noisy(b"1.5,", 6 << 20, 12))


def keras_config_nested_wide(folder: Path) -> Path:
    """Lists of empty dicts: 10 M containers in a shallow tree, deflated ~40:1."""
    return _keras_config(folder, _noisy(b"[{},{},{},{}],", 2 << 20, 3))


def _config_value(value: str):
    def make(folder: Path) -> Path:
        members = dict(_keras_members())
        text = members["config.json"].decode()
        doc = json.loads(text)
        doc["config"]["layers"][1]["config"]["units"] = "@@"
        members["config.json"] = json.dumps(doc).replace('"@@"', value).encode()
        return _keras_zip(folder, "model.keras", list(members.items()))
    return make


def _h5_value(value: str):
    def make(folder: Path) -> Path:
        def edit(config):
            config["config"]["layers"][1]["config"]["units"] = "@@"
            return json.dumps(config).replace('"@@"', value)
        return _h5_config(_copy(K3_H5, folder, "model.h5"), edit)
    return make


def _tfjs_value(value: str):
    def make(folder: Path) -> Path:
        web = _tfjs(folder)
        doc = _tfjs_doc(web)
        layers = doc["modelTopology"]["config"]["layers"]
        layers[-1]["config"]["units"] = "@@"
        (web / "model.json").write_text(json.dumps(doc).replace('"@@"', value))
        return web
    return make


def keras_encrypted_member(folder: Path) -> Path:
    """config.json flagged as encrypted (general purpose bit 0): zipfile raises RuntimeError."""
    path = _keras_config(folder, dict(_keras_members())["config.json"], zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("config.json")
    data[info.header_offset + 6] |= 1  # local header's flag bits
    start = 0
    while True:  # the central directory entry for config.json
        start = data.find(b"PK\x01\x02", start)
        name_len = int.from_bytes(data[start + 28:start + 30], "little")
        if data[start + 46:start + 46 + name_len] == b"config.json":
            data[start + 8] |= 1
            break
        start += 4
    path.write_bytes(bytes(data))
    return path


def keras_float128_kernel(folder: Path) -> Path:
    def edit(f):
        def visit(name, obj):
            import h5py

            if isinstance(obj, h5py.Dataset) and found == [] and obj.ndim == 2:
                found.append(name)
        found: list[str] = []
        f.visititems(visit)
        data = f[found[0]][()]
        del f[found[0]]
        f.create_dataset(found[0], data=data.astype(np.longdouble))
    return _keras_with_weights(folder, "model.keras", edit)


def h5_float128_kernel(folder: Path) -> Path:
    import h5py

    path = _copy(K3_H5, folder, "model.h5")
    with h5py.File(path, "a") as f:
        found: list[str] = []
        f["model_weights"].visititems(
            lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) and o.ndim == 2
            and not found else None)
        group = f["model_weights"]
        data = group[found[0]][()]
        del group[found[0]]
        group.create_dataset(found[0], data=data.astype(np.longdouble))
    return path


def h5_fill_value_kernels(folder: Path) -> Path:
    """220 Dense(512) layers whose kernels (1 MB each) are chunked datasets never written:
    HDF5 stores no bytes for them (fill values), each passes the per-dataset expansion check
    with its slack, and together they declare 220 MB in a file of ~0.95 MB."""
    import h5py

    src = K3_H5
    with h5py.File(src) as f:
        config = json.loads(f.attrs["model_config"])
        keras_version, backend = f.attrs["keras_version"], f.attrs["backend"]
    layers = config["config"]["layers"]
    template = next(layer for layer in layers if layer["class_name"] == "Dense")
    first = layers[0]
    first["config"]["batch_shape"] = [None, 512]
    dense = []
    for i in range(220):
        layer = json.loads(json.dumps(template))
        layer["config"].update(name=f"d{i}", units=512, use_bias=False, activation="linear")
        dense.append(layer)
    config["config"]["layers"] = [first, *dense]
    path = folder / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"], f.attrs["backend"] = keras_version, backend
        weights = f.create_group("model_weights")
        weights.attrs["layer_names"] = np.array([f"d{i}".encode() for i in range(220)])
        for i in range(220):
            group = weights.create_group(f"d{i}")
            name = f"{config['config']['name']}/d{i}/kernel"
            group.attrs["weight_names"] = np.array([name.encode()])
            group.create_dataset(name, shape=(512, 512), dtype="f4", chunks=(512, 512))
    return path


# --- the Keras reference executor: a layer whose output is huge ---------------------------------

def _repeat_vector(n: int):
    def make(folder: Path) -> Path:
        members = dict(_keras_members())
        doc = json.loads(members["config.json"])
        layers = doc["config"]["layers"]
        last = layers[-1]
        layers.append({"module": "keras.layers", "class_name": "RepeatVector",
                       "config": {"name": "repeat", "trainable": True, "dtype": last["config"]
                                  .get("dtype", "float32"), "n": n},
                       "registered_name": None})
        members["config.json"] = json.dumps(doc).encode()
        return _keras_zip(folder, "model.keras", list(members.items()))
    return make


# --- --inputs: an .npz whose header declares a huge array ---------------------------------------

def npz_huge_header(folder: Path) -> Path:
    """A (2**28, 7) float32 member declared in 1.2 kB; next to a valid model."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (1 << 28, 7)}
    text = repr(header).encode()
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + b"\x00" * 64
    with zipfile.ZipFile(folder / "inputs.npz", "w") as zf:
        zf.writestr("input.npy", member)
    return _copy(K3_H5, folder, "model.h5")


def npz_huge_deflated(folder: Path) -> Path:
    """A member that really holds (2**26,) float32 zeros, deflated to ~250 kB."""
    import io

    buf = io.BytesIO()
    np.save(buf, np.zeros(1 << 26, np.float32))
    with zipfile.ZipFile(folder / "inputs.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("input.npy", buf.getvalue())
    return _copy(K3_H5, folder, "model.h5")


# --- the table ----------------------------------------------------------------------------------

def _cases() -> list[Case]:
    cases: list[Case] = []
    onnx_budget = [("expand-8192x8192", expand_8192sq), ("expand-2p25", expand_2_25),
                   ("expand-f64-2p15x2p15", expand_f64_2_15sq),
                   ("expand-data-prop", expand_data_prop), ("expand-2p40", expand_2_40),
                   ("constant-of-shape-2p31", constant_of_shape), ("range-2p31", range_huge),
                   ("tile-2p31", tile_huge)]
    for name, make in onnx_budget:
        cases += [
            # TF.js holds no float64 and no int64 past int32: refused by the mapping or the
            # budget, whichever comes first
            Case(f"onnx-{name}-to-graph", "onnx", make, "convert", 4, UNSUPPORTED,
                 BUDGET + r"|cannot be mapped to TF\.js|outside int32", target="web",
                 extra=("--to", "tfjs-graph")),
            Case(f"onnx-{name}-to-onnx", "onnx", make, "convert", 4, UNSUPPORTED, BUDGET,
                 target="out.onnx"),
            Case(f"onnx-{name}-validate", "onnx", make, "validate", 4, UNSUPPORTED, BUDGET,
                 target="{src}"),
            Case(f"onnx-{name}-inspect", "onnx", make, "inspect", 0, None, r"Expand|Constant"
                 r"OfShape|Range|Tile"),
        ]
    cases += [
        Case("onnx-run-failure-validate", "onnx", onnx_run_failure, "validate", 4, UNSUPPORTED,
             r"onnxruntime failed to run the model: .*Gather", target="{src}"),
        Case("onnx-function-external", "onnx", onnx_function_external, "inspect", 3, UNSAFE,
             r"model\.onnx: external data location of 'c' climbs out"),
        Case("onnx-function-external-convert", "onnx", onnx_function_external, "convert", 3,
             UNSAFE, r"model\.onnx: external data location of 'c' climbs out", target="web"),
        Case("onnx-sparse-attribute-external", "onnx", onnx_sparse_attr_external, "inspect", 3,
             UNSAFE, r"model\.onnx: external data location of 'v' climbs out"),
        Case("onnx-training-info-external", "onnx", onnx_training_info_external, "inspect", 3,
             UNSAFE, r"model\.onnx: external data location of 't' climbs out"),
    ]
    end = r"model\.json: the shards of group 0 end before weight"
    for name, make, fmt in (("tfjs-string-ffffffff", tfjs_string_ffffffff, "tfjs-layers"),
                            ("tfjs-string-80000000", tfjs_string_80000000, "tfjs-layers"),
                            ("graph-string-ffffffff", graph_string_ffffffff, "tfjs-graph"),
                            ("graph-string-80000000", graph_string_80000000, "tfjs-graph")):
        cases += [Case(f"{name}-inspect", fmt, make, "inspect", 3, FORMAT, end),
                  Case(f"{name}-convert", fmt, make, "convert", 3, FORMAT, end,
                       target="out.onnx" if fmt == "tfjs-graph" else "out.keras")]
    many = r"config\.json (holds more than \d+ (objects and arrays|values)|expands)"
    bomb = r"config\.json expands \d+ bytes from \d+: refused as a zip bomb"
    cases += [Case(f"keras-config-bomb-{c}", "keras-v3", keras_config_bomb, c, 3, UNSAFE, bomb,
                   target="out.h5") for c in ("inspect", "convert")]
    for name, make in (("keras-config-ratio-100", keras_config_ratio_100),
                       ("keras-config-wide", keras_config_wide),
                       ("keras-config-wide-numbers", keras_config_wide_numbers),
                       ("keras-config-nested-wide", keras_config_nested_wide)):
        cases += [Case(f"{name}-inspect", "keras-v3", make, "inspect", 3, FORMAT, many),
                  Case(f"{name}-convert", "keras-v3", make, "convert", 3, FORMAT, many,
                       target="out.h5")]
    nan = r"(config\.json|model_config|model\.json):? holds (NaN|Infinity|-Infinity), which"
    for value in ("NaN", "Infinity", "-Infinity"):
        low = value.lower().lstrip("-")
        sign = "neg-" if value.startswith("-") else ""
        cases += [
            Case(f"keras-config-{sign}{low}-to-h5", "keras-v3", _config_value(value),
                 "convert", 3, FORMAT, nan, target="out.h5"),
            Case(f"keras-config-{sign}{low}-to-keras", "keras-v3", _config_value(value),
                 "convert", 3, FORMAT, nan, target="out.keras"),
            Case(f"keras-config-{sign}{low}-to-tfjs", "keras-v3", _config_value(value),
                 "convert", 3, FORMAT, nan, target="web"),
            Case(f"h5-config-{sign}{low}", "keras-h5", _h5_value(value), "convert", 3,
                 FORMAT, nan, target="out.keras"),
            Case(f"tfjs-config-{sign}{low}", "tfjs-layers", _tfjs_value(value), "convert", 3,
                 FORMAT, nan, target="out.h5"),
        ]
    encrypted = r"model\.keras: zip member 'config\.json' is encrypted"
    float128 = r"model\.(keras|h5): .*(float128|longdouble|dtype)"
    cases += [
        Case("keras-encrypted-member-inspect", "keras-v3", keras_encrypted_member, "inspect", 3,
             FORMAT, encrypted),
        Case("keras-encrypted-member-convert", "keras-v3", keras_encrypted_member, "convert", 3,
             FORMAT, encrypted, target="out.h5"),
        Case("keras-float128-kernel", "keras-v3", keras_float128_kernel, "convert", 3, FORMAT,
             float128, target="out.h5"),
        Case("h5-float128-kernel", "keras-h5", h5_float128_kernel, "convert", 3, FORMAT,
             float128, target="out.keras"),
        Case("h5-float128-kernel-inspect", "keras-h5", h5_float128_kernel, "inspect", 3, FORMAT,
             float128),
    ]
    declared = r"model\.h5: its datasets declare \d+ bytes in all but the file stores"
    cases += [Case("h5-fill-value-kernels-inspect", "keras-h5", h5_fill_value_kernels,
                   "inspect", 3, FORMAT, declared),
              Case("h5-fill-value-kernels-convert", "keras-h5", h5_fill_value_kernels,
                   "convert", 3, FORMAT, declared, target="out.onnx")]
    for n, label in ((1 << 30, "2p30"), (1 << 24, "2p24")):
        make = _repeat_vector(n)
        cases += [
            Case(f"keras-repeat-vector-{label}-validate", "keras-v3", make, "validate", 4,
                 UNSUPPORTED, BUDGET, target="{src}"),
            Case(f"keras-repeat-vector-{label}-to-onnx", "keras-v3", make, "convert", 4,
                 UNSUPPORTED, BUDGET, target="out.onnx"),
        ]
    npz = r"inputs\.npz: .*(declares|expands)"
    cases += [
        Case("npz-huge-header-validate", "keras-h5", npz_huge_header, "validate", 3, FORMAT,
             npz, target="{src}", extra=("--inputs", "{folder}/inputs.npz")),
        Case("npz-huge-header-convert", "keras-h5", npz_huge_header, "convert", 3, FORMAT,
             npz, target="out.onnx", extra=("--inputs", "{folder}/inputs.npz")),
        Case("npz-huge-deflated-validate", "keras-h5", npz_huge_deflated, "validate", 3,
             FORMAT, npz, target="{src}", extra=("--inputs", "{folder}/inputs.npz")),
    ]
    return cases


CASES: list[Case] = _cases()
