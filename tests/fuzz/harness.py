"""Mutation fuzzing of every reader: shared by the bounded hypothesis tests
(``tests/fuzz/test_fuzz.py``) and the long run (``bench/fuzz.py``).

A *target* takes a ``random.Random`` and a scratch folder, writes one mutated model there
(starting from a small valid fixture) and returns its path. ``exercise`` then does with it what
a user would: ``inspect`` it (which reads it) and convert it, checked, to two other formats
(a layers-model to ``.keras`` and ONNX, an op graph to the other op format and to ``.h5``). The only acceptable failure is a
``modelport.errors.ModelportError``: anything else (KeyError, MemoryError, RecursionError, a
NumPy or h5py exception) is a finding, i.e. a reader bug.

Mutations are structural where the format has structure (JSON values replaced by hostile
values, HDF5 attributes and datasets rewritten, ONNX proto fields edited through the ``onnx``
objects, zip members replaced) and byte-level everywhere else (flips, truncation, insertion).
"""

from __future__ import annotations

import json
import random
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..hostile import make_hostile

FIXTURES = make_hostile.FIXTURES
H5_SEEDS = [FIXTURES / "keras3" / "mlp_sequential.h5", FIXTURES / "keras3" / "multi_io.h5",
            FIXTURES / "keras2" / "mlp_sequential.h5"]
KERAS_SEED = FIXTURES / "keras3" / "mlp_sequential.keras"
TFJS_SEED = FIXTURES / "tfjs" / "tfjs_mlp"
GRAPH_SEED = FIXTURES / "tfjs_graph" / "dense"

# Values a hostile config puts where a reader expects something sane.
HOSTILE_VALUES: list[object] = [
    None, True, 0, -1, 1 << 31, 1 << 63, -(1 << 63), 10 ** 40, 1e308, -0.0, float("nan"),
    float("inf"), "", "x", "../../etc/passwd", "/etc/passwd", "a/../../b", "\x00", "\udcff",
    "float64", "string", "complex64", [], [None], [-1], [1 << 40, 1 << 40], [[[[]]]], {},
    {"class_name": "Lambda"}, {"class_name": "Dense", "config": {}}, {"module": "os",
    "class_name": "function", "config": "system"}, "Functional", "Sequential", "InputLayer",
]


# --- generic mutators ---------------------------------------------------------------------------

def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """Flip, overwrite, cut, duplicate or insert bytes."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not data:
            return bytes(rng.randbytes(rng.randint(0, 64)))
        op = rng.randrange(6)
        i = rng.randrange(len(data))
        if op == 0:
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[i] = rng.choice([0, 0xFF, 0x7F, 0x80])
        elif op == 2:
            del data[i:]
        elif op == 3:
            n = rng.randint(1, 64)
            data[i:i] = data[i:i + n]
        elif op == 4:
            data[i:i] = rng.randbytes(rng.randint(1, 16))
        else:
            # a little-endian integer field set to something large
            width = rng.choice([2, 4, 8])
            data[i:i + width] = rng.choice([0xFFFFFFFF, 1 << 31, 0x7FFFFFFFFFFFFFFF]).to_bytes(
                8, "little")[:width]
    return bytes(data)


def _paths(doc: object, prefix: tuple = ()) -> list[tuple]:
    """Every location in a JSON document, as a tuple of keys/indices."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.extend(_paths(v, prefix + (k,)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.extend(_paths(v, prefix + (i,)))
    return out


def _get(doc: object, path: tuple) -> object:
    for key in path:
        doc = doc[key]
    return doc


def mutate_json(rng: random.Random, doc: object) -> object:
    """Replace, delete, duplicate or retype values somewhere in ``doc`` (1-3 edits)."""
    for _ in range(rng.randint(1, 3)):
        paths = _paths(doc)
        path = rng.choice(paths)
        if not path:
            if rng.random() < 0.1:
                return rng.choice(HOSTILE_VALUES)
            continue
        parent = _get(doc, path[:-1])
        key = path[-1]
        value = parent[key]
        op = rng.randrange(7)
        if op == 0 and isinstance(parent, dict):
            del parent[key]
        elif op == 0 and isinstance(parent, list):
            parent.pop(key)
        elif op == 1 and isinstance(parent, list):
            parent.insert(key, json.loads(json.dumps(value)))  # duplicate an element
        elif op == 2 and isinstance(value, list) and len(value) > 1:
            rng.shuffle(value)
        elif op == 3 and isinstance(value, str):
            parent[key] = rng.choice([value + "_x", value[:-1], value.upper(), value * 2, ""])
        elif op == 4 and isinstance(value, (int, float)) and not isinstance(value, bool):
            parent[key] = rng.choice([value + 1, value - 1, -value, value * 1000, 0])
        elif op == 5:
            # a value of the same kind taken from elsewhere in the document
            other = _get(doc, rng.choice(paths))
            parent[key] = json.loads(json.dumps(other, allow_nan=True))
        else:
            parent[key] = rng.choice(HOSTILE_VALUES)
    return doc


def _dump(doc: object) -> str:
    try:
        return json.dumps(doc)
    except (ValueError, TypeError):
        return json.dumps(doc, default=str)


# --- targets ------------------------------------------------------------------------------------

def tfjs_layers(rng: random.Random, folder: Path) -> Path:
    web = shutil.copytree(TFJS_SEED, folder / "web")
    return _mutate_tfjs_folder(rng, web)


def tfjs_graph(rng: random.Random, folder: Path) -> Path:
    web = shutil.copytree(GRAPH_SEED, folder / "web")
    return _mutate_tfjs_folder(rng, web)


def tfjs_graph_fixtures(rng: random.Random, folder: Path) -> Path:
    """The same mutations of the other graph-models the TF.js converter wrote (convolutions,
    attention, LSTM cells, quantized and float16 weights, shape ops)."""
    seeds = sorted(p for p in GRAPH_SEED.parent.iterdir() if (p / "model.json").is_file())
    web = shutil.copytree(rng.choice(seeds), folder / "web")
    return _mutate_tfjs_folder(rng, web)


def _mutate_tfjs_folder(rng: random.Random, web: Path) -> Path:
    doc = json.loads((web / "model.json").read_text())
    choice = rng.random()
    if choice < 0.65:
        # aim at the parts readers interpret: the topology or the manifest, half the time
        section = rng.choice(["modelTopology", "weightsManifest", None])
        if section and section in doc:
            doc[section] = mutate_json(rng, doc[section])
        else:
            doc = mutate_json(rng, doc)
        (web / "model.json").write_text(_dump(doc))
    elif choice < 0.85:
        shard = web / rng.choice(doc["weightsManifest"][0]["paths"])
        shard.write_bytes(mutate_bytes(rng, shard.read_bytes()))
    else:
        (web / "model.json").write_bytes(mutate_bytes(rng, (web / "model.json").read_bytes()))
    return web


def keras_h5(rng: random.Random, folder: Path) -> Path:
    import h5py

    path = folder / "model.h5"
    shutil.copyfile(rng.choice(H5_SEEDS), path)
    op = rng.random()
    if op < 0.15:
        path.write_bytes(mutate_bytes(rng, path.read_bytes()))
        return path
    with h5py.File(path, "a") as f:
        if op < 0.5:
            raw = f.attrs["model_config"]
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            f.attrs["model_config"] = _dump(mutate_json(rng, config))
        elif op < 0.7:
            _mutate_weight_names(rng, f)
        else:
            _mutate_dataset(rng, f)
    return path


def _groups_with(f, attr: str) -> list:
    found = []
    f.visititems(lambda _n, o: found.append(o) if attr in o.attrs else None)
    return found


def _mutate_weight_names(rng: random.Random, f) -> None:
    groups = _groups_with(f, "weight_names") + _groups_with(f, "layer_names")
    group = rng.choice(groups)
    attr = "weight_names" if "weight_names" in group.attrs else "layer_names"
    names = [n if isinstance(n, bytes) else str(n).encode() for n in group.attrs[attr]]
    op = rng.randrange(6)
    if op == 0 and names:
        names.pop(rng.randrange(len(names)))
    elif op == 1 and names:
        names.append(rng.choice(names))
    elif op == 2 and names:
        names[rng.randrange(len(names))] = rng.choice(
            [b"", b"../x", b"/model_weights", b"\xff\xfe", b"a" * 300, b"nope/kernel:0"])
    elif op == 3:
        rng.shuffle(names)
    elif op == 4:
        group.attrs[attr] = np.arange(rng.randint(0, 4))  # numbers, not names
        return
    else:
        del group.attrs[attr]
        return
    group.attrs[attr] = np.asarray(names if names else [], dtype="S" if names else "S1")


def _mutate_dataset(rng: random.Random, f) -> None:
    import h5py

    datasets: list[str] = []
    f.visititems(lambda n, o: datasets.append(n) if hasattr(o, "dtype") else None)
    name = rng.choice(datasets)
    old = f[name]
    shape = list(old.shape)
    op = rng.randrange(7)
    if op == 0 and shape:
        shape[rng.randrange(len(shape))] += rng.choice([-1, 1, 7])
        shape = [max(d, 0) for d in shape]
    elif op == 1:
        shape = shape[:-1] if shape else [3]
    elif op == 2:
        shape = shape + [1]
    # numbers of every width and byte order, and the HDF5 classes that are not numbers at all:
    # fixed and variable-length strings, opaque bytes, compounds, enums, object references
    dtype = rng.choice(["f4", "f2", "f8", "i8", "u1", "?", "c8", "S4", ">f4", ">i2", "V4",
                        "compound", "vlen-str", "enum", "ref", old.dtype.str])
    del f[name]
    if op == 3:
        f.create_group(name)  # a group where a dataset was
        return
    if op == 4:
        f.create_dataset(name, shape=tuple(rng.choice([1 << 20, 3]) for _ in shape or [1]),
                         dtype="f4", chunks=True)  # declared, not stored
        return
    if op == 5:
        f.create_dataset(name, data=h5py.Empty(rng.choice(["f4", "i8", "S4"])))  # no value
        return
    size = int(np.prod(shape)) if shape else 1
    values = np.random.default_rng(rng.randrange(1 << 30)).standard_normal(size)
    if dtype == "S4":
        data = np.asarray([b"ab"] * size, dtype="S4").reshape(shape)
    elif dtype == "vlen-str":
        data = np.asarray(["ab"] * size, dtype=h5py.string_dtype()).reshape(shape)
    elif dtype == "compound":
        data = np.zeros(shape, dtype=[("a", "f4"), ("b", "i4")])
    elif dtype == "enum":
        data = np.zeros(shape, dtype=h5py.enum_dtype({"RED": 0, "GREEN": 1}, basetype="i1"))
    elif dtype == "ref":
        data = np.full(shape, f.ref, dtype=h5py.ref_dtype)
    else:
        data = values.astype(dtype).reshape(shape)
    # stored whole, or chunked and compressed as other writers do
    layout = {"chunks": True, "compression": "gzip"} if op == 6 and data.size else {}
    f.create_dataset(name, data=data, **layout)


def keras_zip(rng: random.Random, folder: Path) -> Path:
    import h5py

    with zipfile.ZipFile(KERAS_SEED) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    op = rng.random()
    path = folder / "model.keras"
    if op < 0.2:
        path.write_bytes(mutate_bytes(rng, KERAS_SEED.read_bytes()))
        return path
    if op < 0.55:
        name = rng.choice(["config.json", "metadata.json"])
        members[name] = _dump(mutate_json(rng, json.loads(members[name]))).encode()
    elif op < 0.85:
        weights = folder / "w.h5"
        weights.write_bytes(members["model.weights.h5"])
        with h5py.File(weights, "a") as f:
            _mutate_dataset(rng, f)
        members["model.weights.h5"] = weights.read_bytes()
        weights.unlink()
    elif op < 0.93:
        name = rng.choice(list(members))
        members[name] = mutate_bytes(rng, members[name])
    else:
        victim = rng.choice(list(members))
        if rng.random() < 0.5:
            del members[victim]
        else:
            members[rng.choice(["../up.txt", "/abs.txt", "a/../../b", "x" * 200])] = b"x"
    with zipfile.ZipFile(path, "w", compression=rng.choice(
            [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def onnx_proto(rng: random.Random, folder: Path) -> Path:
    """Field mutations through the onnx proto objects, or byte flips of the serialized form."""
    return _mutate_onnx(rng, make_hostile._onnx_model(), folder)


def onnx_pytorch(rng: random.Random, folder: Path) -> Path:
    """The same mutations of ONNX files PyTorch's exporter wrote (onnx's own test data):
    convolutions, pooling, batch norm, embeddings, so the conversions meet more ops."""
    import onnx

    return _mutate_onnx(rng, onnx.load(str(rng.choice(_pytorch_seeds()))), folder)


def _pytorch_seeds() -> list[Path]:
    import onnx

    root = Path(onnx.__file__).parent / "backend" / "test" / "data" / "pytorch-converted"
    return [root / name / "model.onnx" for name in PYTORCH_SEEDS]


PYTORCH_SEEDS = ["test_Conv2d", "test_Conv2d_depthwise", "test_Conv1d_groups",
                 "test_ConvTranspose2d", "test_BatchNorm2d_eval", "test_MaxPool2d",
                 "test_AvgPool2d_stride", "test_Linear", "test_Embedding", "test_PReLU_2d",
                 "test_Softmax", "test_PixelShuffle", "test_ZeroPad2d"]


def _mutate_onnx(rng: random.Random, model, folder: Path) -> Path:
    from onnx import TensorProto

    path = folder / "model.onnx"
    if rng.random() < 0.3:
        path.write_bytes(mutate_bytes(rng, model.SerializeToString()))
        return path
    g = model.graph
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(12)
        node = rng.choice(g.node)
        if op in (3, 4, 5, 6, 10) and not g.initializer:
            op = 11
        tensor = rng.choice(g.initializer) if g.initializer else None
        if op == 0:
            node.op_type = rng.choice(["Conv", "Gemm", "Nope", "", "Reshape", "If", "Loop"])
        elif op == 1 and node.input:
            node.input[rng.randrange(len(node.input))] = rng.choice(
                ["x", "W", "b", "h", "z", "y", "", "missing"])
        elif op == 2 and node.output:
            node.output[0] = rng.choice(["x", "W", "h", "z", "y", ""])
        elif op == 3:
            tensor.dims.append(rng.choice([0, 1, 7, 1 << 40]))
        elif op == 4 and tensor.dims:
            tensor.dims[rng.randrange(len(tensor.dims))] = rng.choice([0, -1, 2, 1 << 62])
        elif op == 5:
            tensor.data_type = rng.choice(list(TensorProto.DataType.values()) + [99, -3])
        elif op == 6:
            tensor.raw_data = tensor.raw_data[: rng.randrange(len(tensor.raw_data) + 1)]
        elif op == 7:
            model.opset_import[0].version = rng.choice([1, 7, 13, 17, 21, 99, -1])
        elif op == 8:
            model.ir_version = rng.choice([0, 1, 3, 7, 10, 13, 99])
        elif op == 9:
            node.attribute.add().name = rng.choice(["axis", "", "perm"])
        elif op == 10:
            tensor.data_location = TensorProto.EXTERNAL
            entry = tensor.external_data.add()
            entry.key, entry.value = rng.choice(
                [("location", "w.bin"), ("location", "../w.bin"), ("location", "/etc/hosts"),
                 ("offset", "-5"), ("length", "99999999"), ("offset", "abc")])
        else:
            g.node.append(node)  # the same node twice
    path.write_bytes(model.SerializeToString())
    return path


TARGETS: dict[str, Callable[[random.Random, Path], Path]] = {
    "tfjs-layers": tfjs_layers,
    "tfjs-graph": tfjs_graph,
    "keras-h5": keras_h5,
    "keras-v3": keras_zip,
    "onnx": onnx_proto,
    "onnx-pytorch": onnx_pytorch,
    "tfjs-graph-fixtures": tfjs_graph_fixtures,
}


def exercise(path: Path, out: Path) -> None:
    """What a user does with a downloaded model: inspect it, and convert it, checked, to the
    other formats: a layers-model to .keras (written, read back, compared) and to ONNX; an
    ONNX model or a TF.js graph-model to the other of the two and to Keras (raised to layers).
    Each conversion may fail with a ``ModelportError`` (the mutated file is usually not a model
    any more), and the next one is still tried. Raises any other exception."""
    from modelport import api
    from modelport.errors import ModelportError
    from modelport.models import LayersModel

    model = api.load(path)
    api.inspect(path)
    if isinstance(model, LayersModel):
        targets = ["out.keras", "out.onnx"]
    else:
        targets = ["out.onnx" if path.suffix != ".onnx" else "graph", "out.h5"]
    for target in targets:
        try:
            api.convert(path, out / target)
        except ModelportError:
            continue


def run_one(target: str, seed: int, scratch: Path) -> BaseException | None:
    """Mutate and exercise once; return the exception if it is a finding, else None."""
    from modelport.errors import ModelportError

    folder = scratch / f"{target}-{seed}"
    folder.mkdir(parents=True)
    try:
        rng = random.Random(seed)
        try:
            path = TARGETS[target](rng, folder)
        except Exception:  # noqa: BLE001 - a mutation the writing library refused: no input
            return None
        out = folder / "out"
        out.mkdir()
        try:
            exercise(path, out)
        except ModelportError:
            return None
        except BaseException as e:  # every other exception, MemoryError included, is a finding
            if isinstance(e, KeyboardInterrupt):
                raise
            return e
        return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
