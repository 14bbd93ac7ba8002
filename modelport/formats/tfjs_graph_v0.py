"""TF.js 0.x graph-models: ``tensorflowjs_model.pb`` beside ``weights_manifest.json``.

tensorflowjs_converter before 1.0 wrote the frozen GraphDef as binary protobuf (Const nodes
with their values stripped) and the weights manifest as a file of its own; 1.0 moved both into
model.json, the GraphDef in protobuf's JSON mapping. npm packages still ship the old pair
(handtrackjs 0.1.5's ssdlitemobilenetv2). Reading it is reading that JSON: the GraphDef is parsed
with the public field numbers of TensorFlow's graph.proto, node_def.proto, attr_value.proto,
tensor.proto, tensor_shape.proto and versions.proto (the subset a frozen graph uses; unknown
fields are kept by protobuf and ignored) and turned into the same JSON the 1.x converter writes
(``json_format.MessageToDict``), so ``tfjs_graph.read`` checks and reads it as any model.json.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..fsutil import read_json_file

GRAPH_PB = "tensorflowjs_model.pb"
MANIFEST = "weights_manifest.json"
_MAX_BYTES = 2 << 30  # protobuf's own message size limit


def pb_path(path: Path) -> Path | None:
    """The 0.x GraphDef ``path`` names (itself, or the one in the folder), when a
    weights_manifest.json lies beside it; None for anything else."""
    pb = path / GRAPH_PB if path.is_dir() else path
    if pb.suffix == ".pb" and pb.is_file() and (pb.parent / MANIFEST).is_file():
        return pb
    return None


def model_json(pb: Path) -> dict:
    """The model.json a 1.x converter would have written for this 0.x pair."""
    if pb.stat().st_size > _MAX_BYTES:
        raise FormatError("the GraphDef is larger than protobuf reads (2 GiB)", file=pb)
    from google.protobuf.message import DecodeError

    graph = _graph_def_class()()
    try:
        graph.ParseFromString(pb.read_bytes())
    except DecodeError as e:
        raise FormatError(f"not a TF.js 0.x GraphDef (protobuf cannot parse it: {e})",
                          file=pb) from None
    from google.protobuf import json_format

    topology = json_format.MessageToDict(graph)
    if not topology.get("node"):
        raise FormatError("not a TF.js 0.x GraphDef (it has no nodes)", file=pb)
    manifest = read_json_file(pb.parent / MANIFEST)
    if not isinstance(manifest, list):
        raise FormatError(f"{MANIFEST} is not a list of weight groups", file=pb.parent / MANIFEST)
    return {"format": "graph-model", "generatedBy": "tensorflowjs 0.x",
            "modelTopology": topology, "weightsManifest": manifest}


# --- the GraphDef schema ------------------------------------------------------------------------

_INT64, _INT32, _FLOAT, _DOUBLE, _BOOL = "int64", "int32", "float", "double", "bool"
_STRING, _BYTES = "string", "bytes"

# message -> [(field, number, type or message/enum name, repeated)]
_MESSAGES: dict[str, list[tuple[str, int, str, bool]]] = {
    "GraphDef": [("node", 1, "NodeDef", True), ("library", 2, "FunctionDefLibrary", False),
                 ("version", 3, _INT32, False), ("versions", 4, "VersionDef", False)],
    "FunctionDefLibrary": [],  # a frozen graph has none; kept by protobuf as unknown fields
    "VersionDef": [("producer", 1, _INT32, False), ("min_consumer", 2, _INT32, False),
                   ("bad_consumers", 3, _INT32, True)],
    "NodeDef": [("name", 1, _STRING, False), ("op", 2, _STRING, False),
                ("input", 3, _STRING, True), ("device", 4, _STRING, False),
                ("attr", 5, "map:AttrValue", True)],
    "AttrValue": [("list", 1, "ListValue", False), ("s", 2, _BYTES, False),
                  ("i", 3, _INT64, False), ("f", 4, _FLOAT, False), ("b", 5, _BOOL, False),
                  ("type", 6, "enum:DataType", False), ("shape", 7, "TensorShapeProto", False),
                  ("tensor", 8, "TensorProto", False), ("placeholder", 9, _STRING, False),
                  ("func", 10, "NameAttrList", False)],
    "ListValue": [("s", 2, _BYTES, True), ("i", 3, _INT64, True), ("f", 4, _FLOAT, True),
                  ("b", 5, _BOOL, True), ("type", 6, "enum:DataType", True),
                  ("shape", 7, "TensorShapeProto", True), ("tensor", 8, "TensorProto", True),
                  ("func", 9, "NameAttrList", True)],
    "NameAttrList": [("name", 1, _STRING, False), ("attr", 2, "map:AttrValue", True)],
    "TensorShapeProto": [("dim", 2, "Dim", True), ("unknown_rank", 3, _BOOL, False)],
    "Dim": [("size", 1, _INT64, False), ("name", 2, _STRING, False)],
    "TensorProto": [("dtype", 1, "enum:DataType", False),
                    ("tensor_shape", 2, "TensorShapeProto", False),
                    ("version_number", 3, _INT32, False), ("tensor_content", 4, _BYTES, False),
                    ("float_val", 5, _FLOAT, True), ("double_val", 6, _DOUBLE, True),
                    ("int_val", 7, _INT32, True), ("string_val", 8, _BYTES, True),
                    ("int64_val", 10, _INT64, True), ("bool_val", 11, _BOOL, True),
                    ("half_val", 13, _INT32, True), ("uint32_val", 16, "uint32", True),
                    ("uint64_val", 17, "uint64", True)],
}
_DATA_TYPES = ["DT_INVALID", "DT_FLOAT", "DT_DOUBLE", "DT_INT32", "DT_UINT8", "DT_INT16",
               "DT_INT8", "DT_STRING", "DT_COMPLEX64", "DT_INT64", "DT_BOOL", "DT_QINT8",
               "DT_QUINT8", "DT_QINT32", "DT_BFLOAT16", "DT_QINT16", "DT_QUINT16", "DT_UINT16",
               "DT_COMPLEX128", "DT_HALF", "DT_RESOURCE", "DT_VARIANT", "DT_UINT32",
               "DT_UINT64"]


@cache
def _graph_def_class() -> Any:
    """The GraphDef message class, built once from the table above (a private pool: nothing
    clashes with a TensorFlow imported beside modelport)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    scalars = {_INT64: F.TYPE_INT64, _INT32: F.TYPE_INT32, _FLOAT: F.TYPE_FLOAT,
               _DOUBLE: F.TYPE_DOUBLE, _BOOL: F.TYPE_BOOL, _STRING: F.TYPE_STRING,
               _BYTES: F.TYPE_BYTES, "uint32": F.TYPE_UINT32, "uint64": F.TYPE_UINT64}
    file = descriptor_pb2.FileDescriptorProto(name="modelport_tfjs_v0.proto",
                                              package="tensorflow", syntax="proto3")
    enum = file.enum_type.add(name="DataType")
    for number, name in enumerate(_DATA_TYPES):
        enum.value.add(name=name, number=number)
    for number, name in enumerate(_DATA_TYPES[1:], start=101):  # reference types
        enum.value.add(name=name + "_REF", number=number)

    def add_field(message: Any, name: str, number: int, kind: str, repeated: bool) -> None:
        field = message.field.add(name=name, number=number,
                                  label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
        if message.name == "AttrValue":  # AttrValue's fields are one oneof: a value that is
            field.oneof_index = 0        # 0 or false is present (written), as in TF's JSON
        if kind.startswith("map:"):  # map<string, V>: a repeated nested entry message
            entry = message.nested_type.add(name=name.capitalize() + "Entry")
            entry.options.map_entry = True
            add_field(entry, "key", 1, _STRING, False)
            add_field(entry, "value", 2, kind[4:], False)
            field.type = F.TYPE_MESSAGE
            field.type_name = f".tensorflow.{message.name}.{entry.name}"
        elif kind.startswith("enum:"):
            field.type, field.type_name = F.TYPE_ENUM, ".tensorflow." + kind[5:]
        elif kind in scalars:
            field.type = scalars[kind]
        else:
            field.type, field.type_name = F.TYPE_MESSAGE, ".tensorflow." + kind

    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        if name == "AttrValue":
            message.oneof_decl.add(name="value")
        for field in fields:
            add_field(message, *field)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.GraphDef"))
