"""Mutants of a faithful conversion, to measure the parity check by mutation (issue 17).

A mutant is a faithful result with exactly one change:

- ``scale``: one float weight tensor times 1.01;
- ``sign``: the sign of one tensor's largest-magnitude element flipped (the element that
  matters most, so a flip is never lost in rounding);
- ``swap``: two output channels of a conv or dense kernel swapped (channel 0 and the channel
  least like it, so the swap is never a no-op between equal channels);
- ``bias``: a non-zero bias set to zero;
- ``transpose``: a square 2-D kernel transposed, or a conv kernel's two spatial axes swapped;
- ``padding``: one spatial axis's padding shifted by one (begin + 1, end - 1, or the reverse),
  which keeps every shape, so only the numbers tell.

Results in four formats can be mutated: ONNX (initializers and attributes, with ``onnx``),
TF.js graph-models and layers-models (the float32 bytes of the shards, located through the
weights manifest, and ``model.json``), and Keras ``.h5`` (``h5py``). A mutant is *effective*
when, on a model's recorded inputs, some output moves by more than ``EFFECTIVE`` of that
output's scale (the RMS of the faithful output): only those must fail the parity check.

Used by tests/test_mutation.py and bench/mutation.py; it holds no tests itself.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

KINDS = ("scale", "sign", "swap", "bias", "transpose", "padding")
SCALE = 1.01
# A mutant counts when an output moves by more than this fraction of the output's RMS on the
# recorded inputs: the float32 noise of a faithful conversion is 1e-8 - 1e-6 of it.
EFFECTIVE = 1e-5


# --- what a store of weights offers ------------------------------------------------------------

@dataclass(frozen=True)
class Weight:
    """A float tensor of a result: its role decides which mutations apply to it."""

    name: str
    shape: tuple[int, ...]
    out_axis: int | None = None  # a conv/dense kernel's output-channel axis
    spatial: tuple[int, ...] = ()  # a conv kernel's spatial axes
    bias: bool = False


@dataclass(frozen=True)
class Padding:
    """One off-by-one padding edit the format allows (an attribute, or an integer tensor)."""

    target: str
    detail: str
    edit: Callable[[Store], None]


class Store(Protocol):
    """A result loaded for editing: one per file format."""

    def weights(self) -> list[Weight]:
        """The float tensors, in the order the model uses them."""

    def read(self, name: str) -> np.ndarray:
        """A tensor's values (a copy)."""

    def write(self, name: str, array: np.ndarray) -> None:
        """Replace a tensor's values (same shape)."""

    def paddings(self) -> list[Padding]:
        """The off-by-one padding edits this result allows."""

    def save(self, dst: Path) -> Path:
        """Write the edited result under ``dst``; the path to give ``modelport.validate``."""


@dataclass(frozen=True)
class Mutant:
    """One change to a faithful result; ``write`` applies it to a fresh copy."""

    kind: str
    target: str
    detail: str
    edit: Callable[[Store], None] = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.target} ({self.detail})"

    def write(self, faithful: Path, dst: Path) -> Path:
        """The mutant of ``faithful`` written under ``dst``; returns what ``validate`` takes."""
        store = open_store(faithful)
        self.edit(store)
        return store.save(dst)


def open_store(path: Path) -> Store:
    """The store for a result: ``.onnx``, ``.h5``, or a TF.js folder / model.json."""
    path = Path(path)
    if path.suffix == ".onnx":
        return OnnxStore(path)
    if path.suffix in (".h5", ".hdf5"):
        return H5Store(path)
    model_json = path / "model.json" if path.is_dir() else path
    if model_json.name == "model.json":
        topology = json.loads(model_json.read_text())
        if topology.get("format") == "graph-model" or "node" in topology.get("modelTopology", {}):
            return TfjsGraphStore(model_json)
        return TfjsLayersStore(model_json)
    raise ValueError(f"no mutant store for {path}")


# --- mutant generation (format independent) ----------------------------------------------------

def spread(items: list, cap: int) -> list:
    """At most ``cap`` of ``items``, evenly spaced from the first to the last (deterministic)."""
    if len(items) <= cap:
        return list(items)
    picks = sorted({round(float(i)) for i in np.linspace(0, len(items) - 1, cap)})
    return [items[i] for i in picks]


def mutants(path: Path, *, cap: int = 4, kinds: tuple[str, ...] = KINDS) -> list[Mutant]:
    """Mutants of the result at ``path``: at most ``cap`` per kind, chosen deterministically
    (evenly over the tensors in the order the model uses them); edits that would change nothing
    (a symmetric kernel, equal channels, a zero bias) are not made."""
    store = open_store(path)
    weights = store.weights()
    out: list[Mutant] = []
    for kind in kinds:
        made = list(GENERATORS[kind](store, weights))
        out.extend(spread(made, cap))
    return out


def _replace(name: str, array: np.ndarray) -> Callable[[Store], None]:
    def edit(store: Store) -> None:
        store.write(name, array)
    return edit


def _scale(store: Store, weights: list[Weight]) -> Iterator[Mutant]:
    for w in weights:
        a = store.read(w.name)
        if a.size >= 2 and np.any(a):
            yield Mutant("scale", w.name, f"x{SCALE}", _replace(w.name, a * a.dtype.type(SCALE)))


def _sign(store: Store, weights: list[Weight]) -> Iterator[Mutant]:
    for w in weights:
        a = store.read(w.name)
        if a.size < 2:
            continue
        i = int(np.argmax(np.abs(a)))
        if a.flat[i] == 0:
            continue
        b = a.copy()
        b.flat[i] = -b.flat[i]
        index = tuple(int(j) for j in np.unravel_index(i, a.shape))
        yield Mutant("sign", w.name, f"element {list(index)} {a.flat[i]:.3g} negated",
                     _replace(w.name, b))


def _swap(store: Store, weights: list[Weight]) -> Iterator[Mutant]:
    for w in weights:
        if w.out_axis is None or w.shape[w.out_axis] < 2:
            continue
        a = store.read(w.name)
        moved = np.moveaxis(a, w.out_axis, 0).reshape(a.shape[w.out_axis], -1)
        distance = np.abs(moved - moved[0]).sum(axis=1)
        other = int(np.argmax(distance))
        if distance[other] == 0:
            continue
        b = np.moveaxis(a.copy(), w.out_axis, 0)
        b[[0, other]] = b[[other, 0]]
        yield Mutant("swap", w.name, f"output channels 0 and {other} (axis {w.out_axis})",
                     _replace(w.name, np.ascontiguousarray(np.moveaxis(b, 0, w.out_axis))))


def _bias(store: Store, weights: list[Weight]) -> Iterator[Mutant]:
    for w in weights:
        if w.bias:
            a = store.read(w.name)
            if np.any(a):
                yield Mutant("bias", w.name, "set to zero", _replace(w.name, np.zeros_like(a)))


def _transpose(store: Store, weights: list[Weight]) -> Iterator[Mutant]:
    for w in weights:
        if len(w.spatial) >= 2 and w.shape[w.spatial[0]] == w.shape[w.spatial[1]] > 1:
            axes, what = w.spatial[:2], "spatial axes swapped"
        elif w.out_axis is not None and not w.spatial and len(w.shape) == 2 and \
                w.shape[0] == w.shape[1] > 1:
            axes, what = (0, 1), "square kernel transposed"
        else:
            continue
        a = store.read(w.name)
        b = np.ascontiguousarray(np.swapaxes(a, *axes))
        if not np.array_equal(a, b):
            yield Mutant("transpose", w.name, f"{what} (axes {axes[0]}, {axes[1]})",
                         _replace(w.name, b))


def _padding(store: Store, weights: list[Weight]) -> Iterator[Mutant]:
    for p in store.paddings():
        yield Mutant("padding", p.target, p.detail, p.edit)


GENERATORS: dict[str, Callable[[Store, list[Weight]], Iterator[Mutant]]] = {
    "scale": _scale, "sign": _sign, "swap": _swap, "bias": _bias, "transpose": _transpose,
    "padding": _padding}


def shifted(pairs: list[tuple[int, int]]) -> tuple[int, list[tuple[int, int]]] | None:
    """The first (begin, end) pair that can move by one keeping its sum and staying >= 0:
    (begin + 1, end - 1) where end >= 1, else (begin - 1, end + 1); its index and all pairs."""
    for i, (b, e) in enumerate(pairs):
        if e >= 1 or b >= 1:
            out = list(pairs)
            out[i] = (b + 1, e - 1) if e >= 1 else (b - 1, e + 1)
            return i, out
    return None


# --- ONNX ----------------------------------------------------------------------------------------

# Per op, the input index of its kernel and that kernel's output-channel axis ("gemm": 0 with
# transB, else 1), and the input index of its bias.
_ONNX_KERNELS: dict[str, tuple[int, int | str]] = {
    "Conv": (1, 0), "ConvTranspose": (1, 1), "MatMul": (1, 1), "Gemm": (1, "gemm"),
    "QLinearConv": (3, 0)}
_ONNX_BIASES = {"Conv": 2, "ConvTranspose": 2, "Gemm": 2, "BatchNormalization": 2,
                "LSTM": 3, "GRU": 3, "RNN": 3}
_ONNX_POOLS = ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool")
# Float inputs that are not weights but geometry: a mutant of them changes shapes or is refused.
_ONNX_NOT_WEIGHTS = {"Resize": (1, 2, 3), "Upsample": (1,)}


class OnnxStore:
    """An ONNX file: weights are float initializers, roles come from the nodes using them."""

    def __init__(self, path: Path) -> None:
        import onnx

        self.model = onnx.load(str(path))
        self.inits = {i.name: i for i in self.model.graph.initializer}

    def _float(self, name: str) -> bool:
        from onnx import TensorProto

        init = self.inits.get(name)
        return init is not None and init.data_type in (
            TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16)

    def weights(self) -> list[Weight]:
        graph = self.model.graph
        producers = {o: n.op_type for n in graph.node for o in n.output}
        roles: dict[str, Weight] = {}
        for node in graph.node:
            for index, name in enumerate(node.input):
                if name in roles or not self._float(name) or \
                        index in _ONNX_NOT_WEIGHTS.get(node.op_type, ()):
                    continue
                shape = tuple(self.inits[name].dims)
                roles[name] = Weight(name, shape, *self._role(node, index, shape, producers))
        return list(roles.values())

    @staticmethod
    def _role(node: Any, index: int, shape: tuple[int, ...], producers: dict[str, str]
              ) -> tuple[int | None, tuple[int, ...], bool]:
        kernel = _ONNX_KERNELS.get(node.op_type)
        if kernel is not None and index == kernel[0] and len(shape) >= 2:
            axis = kernel[1]
            if axis == "gemm":
                trans = any(a.name == "transB" and a.i for a in node.attribute)
                axis = 0 if trans else 1
            if node.op_type == "MatMul" and len(shape) != 2:
                return None, (), False
            spatial = tuple(range(2, len(shape))) if node.op_type.endswith(
                ("Conv", "ConvTranspose")) else ()
            return int(axis), spatial, False
        if _ONNX_BIASES.get(node.op_type) == index:
            return None, (), True
        if node.op_type == "Add" and len(node.input) == 2:
            other = node.input[1 - index]
            if producers.get(other) in ("MatMul", "Conv", "Gemm", "ConvTranspose", "Einsum"):
                return None, (), True
        return None, (), False

    def read(self, name: str) -> np.ndarray:
        from onnx import numpy_helper

        return numpy_helper.to_array(self.inits[name]).copy()

    def write(self, name: str, array: np.ndarray) -> None:
        from onnx import numpy_helper

        old = self.inits[name]
        new = numpy_helper.from_array(np.asarray(array, dtype=self.read(name).dtype), name)
        old.CopyFrom(new)

    def paddings(self) -> list[Padding]:
        out = []
        for position, node in enumerate(self.model.graph.node):
            label = node.name or f"{node.op_type}->{node.output[0]}"
            if node.op_type in _ONNX_POOLS:
                out.extend(self._attribute_padding(node, position, label))
            elif node.op_type == "Pad" and len(node.input) >= 2 and node.input[1] in self.inits:
                padding = self._pad_input(node.input[1], label)
                if padding is not None:
                    out.append(padding)
        return out

    def _attribute_padding(self, node: Any, position: int, label: str) -> list[Padding]:
        attrs = {a.name: a for a in node.attribute}
        auto = attrs["auto_pad"].s.decode() if "auto_pad" in attrs else "NOTSET"
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            other = "SAME_LOWER" if auto == "SAME_UPPER" else "SAME_UPPER"

            def flip(store: Store) -> None:
                target = store.model.graph.node[position]  # type: ignore[attr-defined]
                next(a for a in target.attribute if a.name == "auto_pad").s = other.encode()
            return [Padding(label, f"auto_pad {auto} -> {other}", flip)]
        if "pads" not in attrs:
            return []
        pads = list(attrs["pads"].ints)
        n = len(pads) // 2
        moved = shifted(list(zip(pads[:n], pads[n:])))
        if moved is None:
            return []
        axis, pairs = moved
        new = [b for b, _ in pairs] + [e for _, e in pairs]

        def edit(store: Store) -> None:
            target = store.model.graph.node[position]  # type: ignore[attr-defined]
            attr = next(a for a in target.attribute if a.name == "pads")
            del attr.ints[:]
            attr.ints.extend(new)
        return [Padding(label, f"pads {pads} -> {new} (spatial axis {axis})", edit)]

    def _pad_input(self, name: str, label: str) -> Padding | None:
        pads = [int(v) for v in self.read(name).ravel()]
        n = len(pads) // 2
        pairs = list(zip(pads[:n], pads[n:]))
        # the batch axis is never padded by a conversion; start after it
        moved = shifted(pairs[1:])
        if moved is None:
            return None
        axis, rest = moved
        pairs = pairs[:1] + rest
        new = np.array([b for b, _ in pairs] + [e for _, e in pairs], dtype=np.int64)
        return Padding(label, f"Pad pads {pads} -> {new.tolist()} (axis {axis + 1})",
                       _replace(name, new))

    def save(self, dst: Path) -> Path:
        import onnx

        dst = Path(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(self.model, str(dst))
        return dst


# --- TF.js weights manifests (graph-models and layers-models) -----------------------------------

_TFJS_DTYPES = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4"), "bool": np.dtype("bool")}


class _Shards:
    """A model.json's weight groups as editable bytes: each entry's byte range in its group's
    concatenated shards (quantized and string entries are located, never edited)."""

    def __init__(self, model_json: Path) -> None:
        self.model_json = model_json
        self.topology = json.loads(model_json.read_text())
        self.groups: list[bytearray] = []
        self.sizes: list[list[int]] = []
        self.entries: dict[str, tuple[int, int, np.dtype, tuple[int, ...]]] = {}
        for g, group in enumerate(self.topology.get("weightsManifest", [])):
            shards = [(model_json.parent / p).read_bytes() for p in group["paths"]]
            self.groups.append(bytearray(b"".join(shards)))
            self.sizes.append([len(s) for s in shards])
            offset = 0
            for entry in group["weights"]:
                shape = tuple(int(d) for d in entry["shape"])
                count = int(np.prod(shape, dtype=np.int64))
                quant = entry.get("quantization")
                if entry["dtype"] == "string":
                    for _ in range(count):
                        offset += 4 + int.from_bytes(self.groups[g][offset:offset + 4], "little")
                    continue
                stored = np.dtype({"uint8": "u1", "uint16": "<u2", "float16": "<f2"}[
                    quant["dtype"]]) if quant else _TFJS_DTYPES.get(entry["dtype"])
                if stored is None:
                    raise ValueError(f"{model_json}: dtype {entry['dtype']} of {entry['name']}")
                if not quant:
                    self.entries[entry["name"]] = (g, offset, stored, shape)
                offset += count * stored.itemsize

    def is_float(self, name: str) -> bool:
        entry = self.entries.get(name)
        return entry is not None and entry[2].kind == "f"

    def read(self, name: str) -> np.ndarray:
        g, offset, dtype, shape = self.entries[name]
        count = int(np.prod(shape, dtype=np.int64))
        return np.frombuffer(self.groups[g], dtype, count, offset).reshape(shape).copy()

    def write(self, name: str, array: np.ndarray) -> None:
        g, offset, dtype, shape = self.entries[name]
        data = np.ascontiguousarray(np.asarray(array, dtype=dtype).reshape(shape)).tobytes()
        self.groups[g][offset:offset + len(data)] = data

    def save(self, dst: Path) -> Path:
        """The whole folder copied to ``dst`` with the edited shards and model.json."""
        dst = Path(dst)
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(self.model_json.parent, dst)
        for group, data, sizes in zip(self.topology["weightsManifest"], self.groups, self.sizes):
            start = 0
            for path, size in zip(group["paths"], sizes):
                (dst / path).write_bytes(bytes(data[start:start + size]))
                start += size
        (dst / "model.json").write_text(json.dumps(self.topology))
        return dst / "model.json"


def _unb64(value: str) -> str:
    return base64.b64decode(value).decode(errors="replace")


# Per TF op, the input index of its kernel and the kernel's output-channel axis (TF layouts:
# conv filters [kh, kw, in, out], depthwise [kh, kw, in, multiplier], backprop [kh, kw, out, in]).
_TF_KERNELS: dict[str, tuple[int, int]] = {
    "Conv2D": (1, -1), "_FusedConv2D": (1, -1), "Conv3D": (1, -1), "Conv1D": (1, -1),
    "DepthwiseConv2dNative": (1, 2), "FusedDepthwiseConv2dNative": (1, 2),
    "Conv2DBackpropInput": (1, 2), "MatMul": (1, 1), "_FusedMatMul": (1, 1),
    "BatchMatMul": (1, -1), "BatchMatMulV2": (1, -1)}
_TF_CONVS = ("Conv2D", "_FusedConv2D", "Conv3D", "DepthwiseConv2dNative",
             "FusedDepthwiseConv2dNative", "Conv2DBackpropInput")


def _tensor(ref: str) -> str:
    """A node name from an input reference (``name``, ``name:1``, ``^name``)."""
    return ref.lstrip("^").split(":")[0]


class TfjsGraphStore:
    """A TF.js graph-model: weights are the manifest's float32 Const tensors, roles come from
    the ops reading them; paddings are EXPLICIT convolutions and Pad ops' paddings tensors."""

    def __init__(self, model_json: Path) -> None:
        self.shards = _Shards(model_json)
        self.nodes: list[dict] = self.shards.topology["modelTopology"].get("node", [])

    def weights(self) -> list[Weight]:
        producers = {n["name"]: n["op"] for n in self.nodes}
        roles: dict[str, Weight] = {}
        for node in self.nodes:
            for index, ref in enumerate(node.get("input", [])):
                name = _tensor(ref)
                if name in roles or not self.shards.is_float(name):
                    continue
                shape = self.shards.entries[name][3]
                roles[name] = Weight(name, shape, *self._role(node, index, shape, producers))
        return list(roles.values())

    @staticmethod
    def _role(node: dict, index: int, shape: tuple[int, ...], producers: dict[str, str]
              ) -> tuple[int | None, tuple[int, ...], bool]:
        op, attrs = node["op"], node.get("attr", {})
        kernel = _TF_KERNELS.get(op)
        if kernel is not None and index == kernel[0] and len(shape) >= 2:
            axis = kernel[1] % len(shape)
            if op in ("MatMul", "_FusedMatMul", "BatchMatMul", "BatchMatMulV2"):
                if len(shape) != 2:
                    return None, (), False
                flag = attrs.get("transpose_b", attrs.get("adj_y", {})).get("b", False)
                axis = 0 if flag else 1
            spatial = tuple(range(len(shape) - 2)) if op in _TF_CONVS else ()
            return axis, spatial, False
        if op.startswith("_Fused") or op.startswith("Fused"):
            fused = [_unb64(s) for s in attrs.get("fused_ops", {}).get("list", {}).get("s", [])]
            if index == 2 and fused[:1] == ["BiasAdd"]:
                return None, (), True
        if op == "BiasAdd" and index == 1:
            return None, (), True
        if op in ("Add", "AddV2") and len(node.get("input", [])) == 2:
            other = _tensor(node["input"][1 - index])
            if producers.get(other) in _TF_KERNELS:
                return None, (), True
        return None, (), False

    def read(self, name: str) -> np.ndarray:
        return self.shards.read(name)

    def write(self, name: str, array: np.ndarray) -> None:
        self.shards.write(name, array)

    def paddings(self) -> list[Padding]:
        out = []
        for position, node in enumerate(self.nodes):
            attrs = node.get("attr", {})
            explicit = attrs.get("explicit_paddings", {}).get("list", {}).get("i")
            if explicit and _unb64(attrs.get("padding", {}).get("s", "")) == "EXPLICIT":
                out.extend(self._explicit(position, node["name"], [int(v) for v in explicit]))
            elif node["op"] in ("Pad", "PadV2", "MirrorPad") and len(node.get("input", [])) >= 2:
                name = _tensor(node["input"][1])
                if name in self.shards.entries:
                    pairs = [tuple(int(v) for v in row) for row in self.read(name).reshape(-1, 2)]
                    moved = shifted(pairs[1:])  # never the batch axis
                    if moved is not None:
                        axis, rest = moved
                        new = np.array(pairs[:1] + rest, dtype=np.int32)
                        out.append(Padding(node["name"], f"paddings {pairs} -> {new.tolist()} "
                                           f"(axis {axis + 1})", _replace(name, new)))
        return out

    def _explicit(self, position: int, label: str, values: list[int]) -> list[Padding]:
        pairs = [(values[i], values[i + 1]) for i in range(0, len(values), 2)]
        moved = shifted(pairs[1:])
        if moved is None:
            return []
        axis, rest = moved
        new = [v for pair in pairs[:1] + rest for v in pair]

        def edit(store: Store) -> None:
            node = store.nodes[position]  # type: ignore[attr-defined]
            node["attr"]["explicit_paddings"]["list"]["i"] = [str(v) for v in new]
        return [Padding(label, f"explicit_paddings {values} -> {new} (axis {axis + 1})", edit)]

    def save(self, dst: Path) -> Path:
        return self.shards.save(dst)


# --- Keras layers (TF.js layers-models and .h5) ------------------------------------------------

def _layer_classes(config: Any, out: dict[str, str] | None = None) -> dict[str, str]:
    """Every layer's class by name, nested models included."""
    out = {} if out is None else out
    if isinstance(config, dict):
        name = config.get("config", {}).get("name") if isinstance(config.get("config"),
                                                                   dict) else None
        if "class_name" in config and name:
            out.setdefault(name, config["class_name"])
        for value in config.values():
            _layer_classes(value, out)
    elif isinstance(config, list):
        for value in config:
            _layer_classes(value, out)
    return out


def _keras_role(cls: str, variable: str, shape: tuple[int, ...]
                ) -> tuple[int | None, tuple[int, ...], bool]:
    """A Keras variable's role from its layer class (Keras layouts: conv kernels
    [k..., in, out], transposed convs [k..., out, in], depthwise [k..., in, multiplier])."""
    if variable == "bias":
        return None, (), True
    conv = "Conv" in cls
    if variable == "kernel" and (cls == "Dense" or conv) and len(shape) >= 2:
        axis = len(shape) - 2 if "Transpose" in cls else len(shape) - 1
        return axis, tuple(range(len(shape) - 2)) if conv else (), False
    if variable == "depthwise_kernel" and len(shape) >= 3:
        return len(shape) - 2, tuple(range(len(shape) - 2)), False
    if variable == "pointwise_kernel" and len(shape) >= 3:
        return len(shape) - 1, (), False
    return None, (), False


def _padding_edits(config: Any, classes: tuple[str, ...] = ("ZeroPadding1D", "ZeroPadding2D",
                                                           "ZeroPadding3D")
                   ) -> Iterator[tuple[str, str, Any]]:
    """(layer name, detail, new padding) for each ZeroPadding layer of a Keras config whose
    padding can shift by one."""
    if isinstance(config, dict):
        inner = config.get("config")
        if config.get("class_name") in classes and isinstance(inner, dict):
            rank = int(config["class_name"][-2])
            padding = inner.get("padding")
            if isinstance(padding, int):
                padding = [[padding, padding]] * rank
            elif rank == 1 and isinstance(padding, list) and all(
                    isinstance(v, int) for v in padding):
                padding = [padding]
            elif isinstance(padding, list) and all(isinstance(v, int) for v in padding):
                padding = [[v, v] for v in padding]
            moved = shifted([tuple(p) for p in padding])
            if moved is not None:
                axis, pairs = moved
                new = [list(p) for p in pairs]
                yield inner["name"], f"padding {padding} -> {new} (axis {axis})", \
                    new[0] if rank == 1 else new
        for value in config.values():
            yield from _padding_edits(value, classes)
    elif isinstance(config, list):
        for value in config:
            yield from _padding_edits(value, classes)


def _set_padding(config: Any, layer: str, padding: Any) -> None:
    if isinstance(config, dict):
        inner = config.get("config")
        if isinstance(inner, dict) and inner.get("name") == layer and "padding" in inner \
                and config.get("class_name", "").startswith("ZeroPadding"):
            inner["padding"] = padding
        for value in config.values():
            _set_padding(value, layer, padding)
    elif isinstance(config, list):
        for value in config:
            _set_padding(value, layer, padding)


class TfjsLayersStore:
    """A TF.js layers-model: weights are the manifest's float32 entries (``layer/variable``),
    roles come from the layer classes of ``modelTopology``; paddings are ZeroPadding layers."""

    def __init__(self, model_json: Path) -> None:
        self.shards = _Shards(model_json)
        self.classes = _layer_classes(self.shards.topology["modelTopology"])

    def weights(self) -> list[Weight]:
        out = []
        for name, (_, _, dtype, shape) in self.shards.entries.items():
            if dtype.kind != "f":
                continue
            layer, _, variable = name.rpartition("/")
            cls = self.classes.get(layer.split("/")[-1], "")
            out.append(Weight(name, shape, *_keras_role(cls, variable.split(":")[0], shape)))
        return out

    def read(self, name: str) -> np.ndarray:
        return self.shards.read(name)

    def write(self, name: str, array: np.ndarray) -> None:
        self.shards.write(name, array)

    def paddings(self) -> list[Padding]:
        def edit_for(layer: str, padding: Any) -> Callable[[Store], None]:
            def edit(store: Store) -> None:
                _set_padding(store.shards.topology["modelTopology"],  # type: ignore[attr-defined]
                             layer, padding)
            return edit
        return [Padding(layer, detail, edit_for(layer, padding)) for layer, detail, padding
                in _padding_edits(self.shards.topology["modelTopology"])]

    def save(self, dst: Path) -> Path:
        return self.shards.save(dst)


class H5Store:
    """A Keras ``.h5``: weights are the float datasets under ``model_weights``, roles come from
    the layer classes of ``model_config``; paddings are ZeroPadding layers. Edits are kept in
    memory and written to a copy."""

    def __init__(self, path: Path) -> None:
        import h5py

        self.path = path
        self.edits: dict[str, np.ndarray] = {}
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            self.config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            self.classes = _layer_classes(self.config)
            self.shapes: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
            root = f.get("model_weights", f)

            def visit(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Dataset):
                    self.shapes[f"{root.name.strip('/')}/{name}".lstrip("/")] = (
                        tuple(obj.shape), obj.dtype)
            root.visititems(visit)
        self.config_edited = False

    def weights(self) -> list[Weight]:
        out = []
        for name, (shape, dtype) in self.shapes.items():
            if dtype.kind != "f":
                continue
            parts = name.split("/")
            # the group holding the variable is its layer (nested models and Keras 3's own
            # folders put more groups above it); a cell's variables fall back to their layer
            cls = self.classes.get(parts[-2]) or self.classes.get(parts[1], "")
            variable = parts[-1].split(":")[0]
            out.append(Weight(name, shape, *_keras_role(cls, variable, shape)))
        return out

    def read(self, name: str) -> np.ndarray:
        import h5py

        if name in self.edits:
            return self.edits[name].copy()
        with h5py.File(self.path, "r") as f:
            return np.asarray(f[name])

    def write(self, name: str, array: np.ndarray) -> None:
        self.edits[name] = np.asarray(array, dtype=self.shapes[name][1])

    def paddings(self) -> list[Padding]:
        def edit_for(layer: str, padding: Any) -> Callable[[Store], None]:
            def edit(store: Store) -> None:
                _set_padding(store.config, layer, padding)  # type: ignore[attr-defined]
                store.config_edited = True  # type: ignore[attr-defined]
            return edit
        return [Padding(layer, detail, edit_for(layer, padding))
                for layer, detail, padding in _padding_edits(copy.deepcopy(self.config))]

    def save(self, dst: Path) -> Path:
        import h5py

        dst = Path(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path, dst)
        with h5py.File(dst, "r+") as f:
            for name, array in self.edits.items():
                f[name][...] = array
            if self.config_edited:
                f.attrs["model_config"] = json.dumps(self.config)
        return dst


# --- effectiveness: does the mutant move the output on realistic inputs -------------------------

def recorded_inputs(npz: Path) -> list[np.ndarray]:
    """The inputs a real framework recorded with a fixture (``input:<name>``, in order)."""
    with np.load(npz) as data:
        return [data[k] for k in data.files if k.startswith("input:")]


def run(path: Path, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """A result's outputs on ``arrays`` (in input order, cast to the inputs' dtypes): ONNX in
    onnxruntime (CPU), graph-models in the NumPy TF reference, Keras models in the NumPy Keras
    reference."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 4  # a refused mutant is counted, not logged
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        types = {"tensor(float)": np.float32, "tensor(int64)": np.int64,
                 "tensor(int32)": np.int32, "tensor(double)": np.float64,
                 "tensor(bool)": np.bool_}
        feeds = {i.name: _fit(a, i.shape).astype(types.get(i.type, np.float32))
                 for i, a in zip(session.get_inputs(), arrays)}
        return [np.asarray(y) for y in session.run(None, feeds)]
    import modelport
    from modelport.runtime import engines

    model = modelport.load(path)
    engine: Any
    if isinstance(model, modelport.TfjsGraph):
        engine = engines.TfjsGraphEngine(model, path=path, engine="reference")
    else:
        engine = engines.KerasReference(model)
    specs = engine.inputs()
    return [np.asarray(y) for y in engine.run(
        [_fit(a, s.shape).astype(s.dtype) for a, s in zip(arrays, specs)])]


def _fit(array: np.ndarray, shape: list) -> np.ndarray:
    """``array`` in the layout a model takes: a Keras channels-first model raised from ONNX
    (or lowered to it) may take its channels on the other side; only the shapes tell."""
    array = np.asarray(array)

    def fits(candidate: tuple[int, ...]) -> bool:
        return len(candidate) == len(shape) and all(
            not isinstance(d, int) or d in (-1, c) for d, c in zip(shape, candidate))
    if array.ndim < 3 or fits(array.shape):
        return array
    for moved in (np.moveaxis(array, 1, -1), np.moveaxis(array, -1, 1)):
        if fits(moved.shape):
            return np.ascontiguousarray(moved)
    return array


def movement(faithful: list[np.ndarray], mutant: list[np.ndarray]) -> float:
    """How far the mutant's outputs move, as the largest ``max |mutant - faithful| / RMS
    (faithful)`` over the outputs (infinite for a new NaN/inf or a changed shape)."""
    worst = 0.0
    for f, m in zip(faithful, mutant):
        f64, m64 = np.asarray(f, np.float64), np.asarray(m, np.float64)
        if f64.shape != m64.shape:
            return float("inf")
        if not np.array_equal(np.isfinite(f64), np.isfinite(m64)):
            return float("inf")
        finite = np.isfinite(f64)
        if not finite.any():
            continue
        scale = float(np.sqrt(np.mean(f64[finite] ** 2))) or 1.0
        worst = max(worst, float(np.max(np.abs(m64[finite] - f64[finite]))) / scale)
    return worst


# --- measuring the check ------------------------------------------------------------------------

@dataclass
class Outcome:
    """One mutant, measured: how far it moves the output, and what the check said."""

    model: str
    route: str
    mutant: Mutant
    moved: float | None  # None: the mutant does not run (its edit is invalid for the runtime)
    caught: bool | None = None  # None: not effective, so not checked
    error: str | None = None  # the check raised instead of reporting

    @property
    def effective(self) -> bool:
        return self.moved is not None and self.moved > EFFECTIVE


def measure(model: str, route: str, source: Path, faithful: Path, inputs: list[np.ndarray],
            workdir: Path, *, cap: int = 4, kinds: tuple[str, ...] = KINDS,
            check: Callable[[Path, Path], Any] | None = None) -> list[Outcome]:
    """Every mutant of ``faithful`` (the conversion of ``source``), measured on ``inputs``;
    the effective ones go through ``check(source, mutant)`` (``modelport.validate`` by
    default), which catches a mutant when its report has ``passed`` false."""
    import modelport

    check = check or modelport.validate
    expected = run(faithful, inputs)
    suffix = faithful.suffix if faithful.suffix in (".onnx", ".h5") else ""
    outcomes = []
    for i, mutant in enumerate(mutants(faithful, cap=cap, kinds=kinds)):
        with np.errstate(all="ignore"):  # a mutant may well make NaNs (a negative variance)
            outcomes.append(_measure_one(model, route, source, faithful, inputs, expected,
                                         mutant, workdir / f"{i:03d}-{mutant.kind}{suffix}",
                                         check))
    return outcomes


def _measure_one(model: str, route: str, source: Path, faithful: Path,
                 inputs: list[np.ndarray], expected: list[np.ndarray], mutant: Mutant,
                 dst: Path, check: Callable[[Path, Path], Any]) -> Outcome:
    path = mutant.write(faithful, dst)
    try:
        moved: float | None = movement(expected, run(path, inputs))
    except Exception:  # noqa: BLE001 - a runtime refusing the edit: not a numeric mutant
        moved = None
    outcome = Outcome(model, route, mutant, moved)
    if outcome.effective:
        try:
            outcome.caught = not check(source, path).passed
        except Exception as e:  # noqa: BLE001 - reported, counted as not caught
            outcome.caught, outcome.error = False, f"{type(e).__name__}: {e}"
    # a mutant is a whole copy of the model: hundreds of them would fill the disk
    if dst.is_dir():
        shutil.rmtree(dst)
    else:
        dst.unlink(missing_ok=True)
    return outcome


def scores(outcomes: list[Outcome], key: Callable[[Outcome], str] = lambda o: o.mutant.kind
           ) -> dict[str, dict[str, int]]:
    """Per ``key`` (the mutation kind by default): mutants made, that run, effective, caught."""
    out: dict[str, dict[str, int]] = {}
    for o in outcomes:
        row = out.setdefault(key(o), {"made": 0, "runs": 0, "effective": 0, "caught": 0})
        row["made"] += 1
        row["runs"] += o.moved is not None
        row["effective"] += o.effective
        row["caught"] += bool(o.caught)
    return out


def table(outcomes: list[Outcome], key: Callable[[Outcome], str] = lambda o: o.mutant.kind,
          title: str = "kind") -> str:
    """The mutation score per ``key`` as a text table (caught / effective), with a total."""
    rows = scores(outcomes, key)
    total = {c: sum(r[c] for r in rows.values()) for c in ("made", "runs", "effective", "caught")}
    width = max([len(title), 5, *(len(k) for k in rows)])
    lines = [f"{title:<{width}}  {'made':>5} {'runs':>5} {'effective':>9} {'caught':>6}  score"]
    for name, r in [*sorted(rows.items()), ("total", total)]:
        score = f"{r['caught'] / r['effective']:.0%}" if r["effective"] else "-"
        lines.append(f"{name:<{width}}  {r['made']:>5} {r['runs']:>5} {r['effective']:>9} "
                     f"{r['caught']:>6}  {score}")
    return "\n".join(lines)


# --- faithful conversions, per route ------------------------------------------------------------

# route -> what is mutated; each starts from a Keras fixture (a real framework's file)
ROUTES = ("onnx", "tfjs-graph", "tfjs-layers", "h5")


def faithful(route: str, keras: Path, workdir: Path) -> tuple[Path, Path]:
    """``(check source, faithful result)`` for ``route`` from the Keras file ``keras``:
    ``onnx`` Keras -> ONNX; ``tfjs-graph`` that ONNX -> graph-model; ``tfjs-layers`` Keras ->
    layers-model; ``h5`` that ONNX raised back to a Keras ``.h5``. Converted unchecked
    (``validate=False``): the check's verdict on the faithful result is measured separately."""
    import modelport

    workdir.mkdir(parents=True, exist_ok=True)
    onnx = workdir / "faithful.onnx"
    if route in ("onnx", "tfjs-graph", "h5") and not onnx.exists():
        modelport.convert(keras, onnx, validate=False)
    if route == "onnx":
        return keras, onnx
    if route == "tfjs-graph":
        graph = workdir / "faithful-graph"
        if not graph.exists():
            modelport.convert(onnx, graph, to="tfjs-graph", validate=False)
        return onnx, graph / "model.json"
    if route == "tfjs-layers":
        layers = workdir / "faithful-layers"
        if not layers.exists():
            modelport.convert(keras, layers, to="tfjs-layers", validate=False)
        return keras, layers / "model.json"
    if route == "h5":
        raised = workdir / "faithful-raised.h5"
        if not raised.exists():
            modelport.convert(onnx, raised, validate=False)
        return onnx, raised
    raise ValueError(f"unknown route {route!r} (choose from {', '.join(ROUTES)})")
