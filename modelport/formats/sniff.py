"""Which format a path holds (from its content), and which format a destination asks for."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from ..errors import FormatError, UnsupportedError
from ..fsutil import read_json_file
from . import tfjs_graph_v0, weights_only

KERAS_H5 = "keras-h5"
KERAS_V3 = "keras-v3"
TFJS_LAYERS = "tfjs-layers"
TFJS_GRAPH = "tfjs-graph"
ONNX = "onnx"

# --to names (CLI) and the format each one means.
TARGETS = {"h5": KERAS_H5, "keras": KERAS_V3, "tfjs-layers": TFJS_LAYERS,
           "tfjs-graph": TFJS_GRAPH, "onnx": ONNX}

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def sniff(path: str | os.PathLike) -> str:
    """The format stored at ``path``, judged by content, not by name."""
    path = Path(path)
    if not path.exists():
        raise FormatError("no such file or folder", file=path)
    if path.is_dir():
        if (path / "model.json").is_file():
            return _sniff_model_json(path / "model.json")
        if (path / "config.json").is_file():
            return KERAS_V3
        if tfjs_graph_v0.pb_path(path) is not None:
            return TFJS_GRAPH
        weights = weights_only.folder_refusal(path)
        if weights is not None:
            raise weights
        raise FormatError("folder holds neither model.json (TF.js) nor config.json (unzipped "
                          ".keras)", file=path)
    if not path.is_file():
        raise FormatError("not a regular file or folder", file=path)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if _is_hdf5(fh, head):
            return KERAS_H5
    if head.startswith(b"PK\x03\x04") or zipfile.is_zipfile(path):
        return KERAS_V3
    if head.lstrip()[:1] in (b"{", b"["):
        return _sniff_model_json(path)
    if tfjs_graph_v0.pb_path(path) is not None:  # a TF.js 0.x GraphDef
        return TFJS_GRAPH
    if path.name == tfjs_graph_v0.GRAPH_PB:  # its name says what it is; its manifest is missing
        missing = weights_only.folder_refusal(path.parent)
        if missing is not None:
            raise missing
    other = _other_format(path, head)
    if other is not None:
        raise other
    if path.suffix == ".onnx" or head[:1] == b"\x08":
        return ONNX
    raise FormatError("unrecognised file: not HDF5, a .keras zip, TF.js model.json or ONNX",
                      file=path)


def _other_format(path: Path, head: bytes) -> UnsupportedError | None:
    """The refusal of a valid model file of a format modelport does not read (exit 4, saying
    which and how to reach one it reads), told by its signature; None for anything else."""
    if head[4:8] == b"TFL3":
        what = "a TensorFlow Lite flatbuffer (.tflite)"
        hint = ("modelport reads Keras, ONNX and TF.js files: convert the model this .tflite "
                "was made from, or this file with tflite2onnx")
    elif path.suffix == ".pb":
        what = "a TensorFlow protobuf (a frozen GraphDef or a SavedModel's saved_model.pb)"
        hint = ("modelport reads Keras, ONNX and TF.js files: convert it to a TF.js graph-model "
                "with tensorflowjs_converter (or to ONNX with tf2onnx) and convert that")
    else:
        return None
    return UnsupportedError(f"{what}: not a format modelport reads", file=path, hint=hint)


def _is_hdf5(fh, head: bytes) -> bool:
    if head == _HDF5_MAGIC:
        return True
    # HDF5 allows a user block: the signature may sit at 512, 1024, 2048, ...
    offset = 512
    while offset < (1 << 20):
        fh.seek(offset)
        if fh.read(8) == _HDF5_MAGIC:
            return True
        offset *= 2
    return False


def _sniff_model_json(path: Path) -> str:
    data = read_json_file(path)
    if weights_only.is_manifest(data):
        raise weights_only.manifest_refusal(path, data)
    if not isinstance(data, dict):
        raise FormatError("model.json is not a JSON object", file=path)
    fmt = data.get("format")
    if fmt == "graph-model":
        return TFJS_GRAPH
    topology = data.get("modelTopology")
    if fmt == "layers-model" or (isinstance(topology, dict) and (
            "model_config" in topology or "class_name" in topology)):
        return TFJS_LAYERS
    if isinstance(topology, dict) and "node" in topology:
        return TFJS_GRAPH
    if topology is None and "weightsManifest" in data:
        raise weights_only.manifest_refusal(path, data["weightsManifest"])
    raise FormatError("JSON file is not a TF.js model (no modelTopology)", file=path)


def target_format(dst: str | os.PathLike, to: str | None = None) -> str:
    """The format a destination asks for: ``to`` if given, else from the name."""
    if to:
        if to not in TARGETS:
            raise UnsupportedError(f"unknown target {to!r}; choose one of {', '.join(TARGETS)}")
        return TARGETS[to]
    dst = Path(dst)
    suffix = dst.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return KERAS_H5
    if suffix == ".keras":
        return KERAS_V3
    if suffix == ".onnx":
        return ONNX
    if suffix == ".json" or suffix == "" or dst.is_dir():
        return TFJS_LAYERS
    raise UnsupportedError(f"cannot tell the target format from {dst.name!r}",
                           hint="use a .h5, .keras, .onnx or folder name, or pass --to")
