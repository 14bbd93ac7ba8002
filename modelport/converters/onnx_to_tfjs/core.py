"""The machinery of ONNX -> TF.js graph-model mapping: rules, the emission context, dtypes.

A rule maps one ONNX node (standard domain, or its channels-last twin in ``ai.modelport.nhwc``
for ``layout=True`` rules) to TF nodes through a ``Ctx``, and may have a ``check`` that says up
front why a node cannot be mapped (the converter lists every such node in one error before it
writes anything). Every TF op and attribute a rule may write is declared in ``EMITS``; ``Ctx.op``
refuses anything else, and a test checks ``EMITS`` against the op list of the tfjs-converter
that ships in the npm package, so the mapping only ever writes what tfjs executes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx_ir as ir

from ...errors import FormatError, ModelportError, UnsupportedError
from ...models import TfNode
from ...models.tfjs_graph import TfFunction, a_int, a_type, const_node
from ...registry import Registry
from ..onnx_normalize import const_array, input_of, inputs_of, optional_input

# TF op -> the attributes the mapping may write on it (each must be in tfjs's op list).
EMITS: dict[str, frozenset[str]] = {}


def emits(op: str, *attrs: str) -> None:
    """Declare that the mapping may write TF op ``op`` with ``attrs``."""
    EMITS[op] = EMITS.get(op, frozenset()) | frozenset(attrs)


for _op, _attrs in {
    "Placeholder": ("dtype", "shape"), "Const": ("dtype", "value"), "Identity": (),
    "Fill": ("T",), "Cast": ("DstT",), "Shape": (), "Size": (), "Reshape": (),
    "Transpose": (), "ExpandDims": (), "Squeeze": ("squeeze_dims",), "ConcatV2": ("N",),
    "Pack": ("axis", "N"), "StridedSlice": ("begin_mask", "end_mask", "ellipsis_mask",
                                             "new_axis_mask", "shrink_axis_mask"),
    "SplitV": (), "Split": ("num_split",), "GatherV2": ("batch_dims",), "GatherNd": (),
    "TensorScatterUpdate": (), "PadV2": (), "MirrorPad": ("mode",), "BroadcastTo": (),
    "BroadcastArgs": (), "Range": ("Tidx",), "Where": (), "ReverseV2": (), "Tile": (),
    "OneHot": ("T",), "TopKV2": ("sorted",), "ArgMax": (), "ArgMin": (),
    "Mean": ("keep_dims",), "Sum": ("keep_dims",), "Max": ("keep_dims",),
    "Min": ("keep_dims",), "Prod": ("keep_dims",), "All": ("keep_dims",),
    "Any": ("keep_dims",), "Cumsum": ("exclusive", "reverse"),
    "MatMul": ("transpose_a", "transpose_b"), "BatchMatMulV2": ("adj_x", "adj_y"),
    "Einsum": ("equation", "N"), "Softmax": (), "LogSoftmax": (),
    "Square": (), "Rsqrt": (), "FloorDiv": (), "FloorMod": (), "NotEqual": (),
    "SelectV2": (), "LogicalAnd": (), "LogicalOr": (), "LogicalNot": (),
    "Conv2D": ("strides", "padding", "explicit_paddings", "dilations", "data_format"),
    "DepthwiseConv2dNative": ("strides", "padding", "explicit_paddings", "dilations",
                              "data_format"),
    "Conv3D": ("strides", "padding", "dilations", "data_format"),
    "Conv2DBackpropInput": ("strides", "padding"),
    "MaxPool": ("ksize", "strides", "padding"), "AvgPool": ("ksize", "strides", "padding"),
    "MaxPool3D": ("ksize", "strides", "padding"), "AvgPool3D": ("ksize", "strides", "padding"),
    "LRN": ("depth_radius", "bias", "alpha", "beta"),
    "ResizeBilinear": ("align_corners", "half_pixel_centers"),
    "ResizeNearestNeighbor": ("align_corners", "half_pixel_centers"),
    "DepthToSpace": ("block_size", "data_format"),
}.items():
    emits(_op, *_attrs)


# A rule's emitter: the TF tensor references of the node's outputs, in order.
RuleFn = Callable[["Ctx", ir.Node], list[str]]
# A rule's up-front check: why the node cannot be mapped, or None.
CheckFn = Callable[["Ctx", ir.Node], "str | None"]


@dataclass
class Rule:
    """How one ONNX op maps to TF ops."""

    op: str
    fn: RuleFn
    check: CheckFn | None = None
    layout: bool = False  # mapped from its channels-last twin (see onnx_normalize)


RULES: Registry[Rule] = Registry("ONNX -> TF.js mapping")


def rule(*ops: str, check: CheckFn | None = None, layout: bool = False,
         replace: bool = False) -> Callable[[RuleFn], RuleFn]:
    """Register ``fn`` for ``ops``; ``replace``: it takes over the generic rename row of the op."""
    def deco(fn: RuleFn) -> RuleFn:
        for op in ops:
            RULES.add(op, Rule(op, fn, check, layout), replace=replace)
        return fn
    return deco


# --- dtypes -------------------------------------------------------------------------------------

def tfjs_dtype(dtype: np.dtype | None) -> str:
    """What tfjs holds an ONNX/NumPy dtype as: float32, int32, bool or string."""
    if dtype is None:
        return "float32"
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return "bool"
    if dtype.kind in "iu":
        return "int32"
    if dtype.kind in "OSU":
        return "string"
    return "float32"


def onnx_enum_dtype(enum: int) -> str:
    """What tfjs holds an ONNX TensorProto data type (by its enum) as."""
    return tfjs_dtype(ir.DataType(int(enum)).numpy())


def to_tfjs_array(array: np.ndarray, what: str) -> np.ndarray:
    """``array`` in the dtype tfjs holds it as; integers outside int32 are refused."""
    array = np.asarray(array)
    kind = tfjs_dtype(array.dtype)
    if kind == "int32" and array.dtype != np.int32:
        if array.size and (int(array.max()) > np.iinfo(np.int32).max or
                           int(array.min()) < np.iinfo(np.int32).min):
            raise UnsupportedError(f"{what}: integer constant outside int32, which is all "
                                   "TF.js holds")
        return array.astype(np.int32)
    if kind == "float32" and array.dtype != np.float32:
        return array.astype(np.float32)
    return array


_NAME_OK = re.compile(r"[^A-Za-z0-9_.\-/]")


def sanitize(name: str | None) -> str:
    """A TF node name from an ONNX name (TF's name characters; never empty)."""
    name = _NAME_OK.sub("_", name or "")
    name = name.strip("/")
    if not name or not re.match(r"[A-Za-z0-9.]", name[0]):
        name = "n" + name
    return name


# --- context ------------------------------------------------------------------------------------

class Ctx:
    """Emits TF nodes; knows ONNX values' constants, shapes and dtypes."""

    def __init__(self, graph: ir.Graph) -> None:
        self.graph = graph
        self.nodes: list[TfNode] = []
        self.weights: dict[str, np.ndarray] = {}
        self.refs: dict[int, str] = {}  # id(ir.Value) -> TF tensor reference
        self.used: set[str] = set()
        self.reserved: set[str] = set()
        self.scope = "graph"
        self.node: ir.Node | None = None  # the ONNX node being emitted, for messages
        self.functions: dict[str, TfFunction] = {}  # library functions (control flow bodies)
        self._shape_cache: dict[str, str] = {}

    def where(self) -> str:
        """The node being emitted, for messages."""
        node = self.node
        return f"{node.op_type} node {node.name!r}" if node is not None else self.scope

    # names
    def unique(self, base: str) -> str:
        """A node name not used yet, from ``base``."""
        base = sanitize(base)
        name, i = base, 0
        while name in self.used or name in self.reserved:
            i += 1
            name = f"{base}_{i}"
        self.used.add(name)
        return name

    def reserve(self, name: str) -> str:
        """Set ``name`` aside (made unique) for a graph input or output."""
        name = sanitize(name)
        base, i = name, 0
        while name in self.reserved:
            i += 1
            name = f"{base}_{i}"
        self.reserved.add(name)
        return name

    # emission
    def op(self, op: str, inputs: Sequence[str], attrs: dict[str, Any] | None = None, *,
           name: str | None = None, hint: str | None = None) -> str:
        """Emit TF op ``op``; the reference of its (first) output."""
        return self.op_n(op, inputs, attrs, 1, name=name, hint=hint)[0]

    def op_n(self, op: str, inputs: Sequence[str], attrs: dict[str, Any] | None, n_out: int,
             *, name: str | None = None, hint: str | None = None) -> list[str]:
        """Emit TF op ``op``; the references of its ``n_out`` outputs."""
        attrs = attrs or {}
        allowed = EMITS.get(op)
        if allowed is None or not set(attrs) <= allowed:
            raise ModelportError(f"internal error: the ONNX -> TF.js mapping writes {op} "
                                 f"with {sorted(attrs)}, not declared in EMITS")
        if name is None:
            name = self.unique(f"{self.scope}/{hint or op}")
        self.nodes.append(TfNode(name, op, list(inputs), dict(attrs)))
        return [name if k == 0 else f"{name}:{k}" for k in range(n_out)]

    def const(self, array: Any, hint: str = "const", *, name: str | None = None) -> str:
        """A Const node (or a Fill, for empty and uniform arrays) holding ``array``."""
        array = to_tfjs_array(np.asarray(array), f"constant {hint}")
        if array.size == 0 and array.ndim and array.dtype != object:  # no bytes to store
            shape = self.const(np.asarray(array.shape, np.int32), f"{hint}_shape")
            value = self.const(np.zeros((), array.dtype), f"{hint}_value")
            return self.op("Fill", [shape, value], {"T": a_type(tfjs_dtype(array.dtype))},
                           name=name, hint=hint)
        if array.size >= 256 and array.dtype != object and _uniform(array):
            shape = self.const(np.asarray(array.shape, np.int32), f"{hint}_shape")
            value = self.const(array.reshape(-1)[:1].reshape(()), f"{hint}_value")
            return self.op("Fill", [shape, value], {"T": a_type(tfjs_dtype(array.dtype))},
                           name=name, hint=hint)
        name = name or self.unique(f"{self.scope}/{hint}")
        dtype = tfjs_dtype(array.dtype)
        self.nodes.append(const_node(name, dtype, list(array.shape)))
        # (not np.ascontiguousarray: it turns a 0-d array into a 1-d one)
        self.weights[name] = array if array.flags.c_contiguous else array.copy(order="C")
        return name

    def i32(self, values: Any, hint: str = "const") -> str:
        """An int32 constant; values outside int32 are refused, naming the node."""
        flat = np.asarray(values, dtype=object).reshape(-1)  # Python ints: no wrap-around
        if any(not -2**31 <= int(v) < 2**31 for v in flat):
            raise UnsupportedError(f"{self.where()}: {hint} {flat.tolist()} does not fit the "
                                   "int32 TF.js computes shapes and indices in")
        return self.const(np.asarray(values, np.int32), hint)

    def scalar(self, value: Any, dtype: str = "float32", hint: str = "const") -> str:
        """A 0-d constant of ``dtype``."""
        return self.const(np.asarray(value, dtype=dtype), hint)

    # ONNX inputs
    @staticmethod
    def inp(node: ir.Node, index: int) -> ir.Value:
        """Input ``index`` of ``node``, which its op requires (a FormatError if omitted)."""
        return input_of(node, index)

    @staticmethod
    def opt(node: ir.Node, index: int) -> ir.Value | None:
        """Optional input ``index`` of ``node``: None where the model omits it."""
        return optional_input(node, index)

    @staticmethod
    def inputs(node: ir.Node, count: int) -> list[ir.Value]:
        """The inputs of an op that takes exactly ``count``, all required."""
        return inputs_of(node, count)

    # ONNX values
    def x(self, v: ir.Value) -> str:
        """The TF tensor reference of ONNX value ``v`` (a Const the first time for constants)."""
        ref = self.refs.get(id(v))
        if ref is not None:
            return ref
        array = const_array(v)
        if array is not None:
            ref = self.const(array, name=self.unique(v.name or "const"))
            self.refs[id(v)] = ref
            return ref
        raise ModelportError(f"internal error: value {v.name!r} has no TF tensor yet")

    def bind(self, v: ir.Value, ref: str) -> None:
        """Record that TF tensor ``ref`` computes ONNX value ``v``."""
        self.refs[id(v)] = ref

    @staticmethod
    def value(v: ir.Value | None) -> np.ndarray | None:
        """``v``'s constant as an array, or None when it is computed (or absent)."""
        return const_array(v)

    @staticmethod
    def shape(v: ir.Value | None) -> list[int | None] | None:
        """``v``'s shape (None per unknown dimension), or None when its rank is unknown."""
        if v is None or v.shape is None:
            return None
        return [d if isinstance(d, int) and d >= 0 else None for d in v.shape]

    def rank(self, v: ir.Value | None) -> int | None:
        """``v``'s rank, or None when unknown (or ``v`` is absent)."""
        s = self.shape(v)
        return None if s is None else len(s)

    def need_rank(self, v: ir.Value, node: ir.Node) -> int:
        """``v``'s rank; an UnsupportedError naming ``node`` when unknown."""
        return len(self.need_shape(v, node))

    def need_shape(self, v: ir.Value, node: ir.Node) -> list[int | None]:
        """``v``'s shape (dimensions may be None); an UnsupportedError naming ``node`` when
        even its rank is unknown."""
        s = self.shape(v)
        if s is None:
            raise UnsupportedError(f"{node.op_type} node {node.name!r}: the rank of "
                                   f"{v.name!r} is unknown (ONNX shape inference found none)",
                                   layer=node.name)
        return s

    def static_shape(self, v: ir.Value, node: ir.Node) -> list[int]:
        """``v``'s shape with every dimension known; an UnsupportedError naming ``node``
        otherwise (for rules whose check has already asked for static sizes)."""
        return known(self.need_shape(v, node), node, f"the shape of {v.name!r}")

    def need_dim(self, v: ir.Value, axis: int, node: ir.Node) -> int:
        """Dimension ``axis`` of ``v``, known; an UnsupportedError naming ``node`` otherwise
        (for rules whose check has already asked for it)."""
        dims = self.need_shape(v, node)
        dim = dims[axis] if -len(dims) <= axis < len(dims) else None
        if dim is None:
            raise unsupported(node, f"dimension {axis} of {v.name!r} is unknown")
        return dim

    @staticmethod
    def np_dtype(v: ir.Value | None) -> np.dtype | None:
        """``v``'s NumPy dtype, or None when unknown."""
        return None if v is None or v.dtype is None else np.dtype(v.dtype.numpy())

    def tf_dtype(self, v: ir.Value | None) -> str:
        """What tfjs holds ``v`` as (float32 when its type is unknown)."""
        return tfjs_dtype(self.np_dtype(v))

    def is_float(self, v: ir.Value | None) -> bool:
        """Whether tfjs holds ``v`` as float32."""
        return self.tf_dtype(v) == "float32"

    # shapes at run time
    def shape_of(self, ref: str) -> str:
        """A Shape op of ``ref`` (one per tensor)."""
        if ref not in self._shape_cache:
            self._shape_cache[ref] = self.op("Shape", [ref], hint="shape")
        return self._shape_cache[ref]

    def dim_of(self, ref: str, axis: int) -> str:
        """A 1-element int32 tensor: dimension ``axis`` (>= 0) of ``ref`` at run time."""
        return self.slice1(self.shape_of(ref), axis, axis + 1)

    def slice1(self, ref: str, begin: int, end: int | None) -> str:
        """ref[begin:end] of a 1-D tensor (end None = to the end)."""
        return self.op("StridedSlice", [ref, self.i32([begin]), self.i32([end or 0]),
                                        self.i32([1])],
                       strided_attrs(end_mask=1 if end is None else 0), hint="slice")

    def shape_vector(self, parts: Sequence[int | np.integer | str]) -> str:
        """An int32 shape tensor from ints and 1-element int32 refs (run-time dims)."""
        if all(isinstance(p, (int, np.integer)) for p in parts):
            return self.i32(parts, "shape")
        pieces: list[str] = []
        run: list[int] = []
        for p in parts:
            if isinstance(p, (int, np.integer)):
                run.append(int(p))
            else:
                if run:
                    pieces.append(self.i32(run, "shape"))
                    run = []
                pieces.append(p)
        if run:
            pieces.append(self.i32(run, "shape"))
        return concat(self, pieces, 0)


def _uniform(array: np.ndarray) -> bool:
    """Every element has the first one's bits (so a Fill of it is exact, -0.0 and NaN
    payloads included). Read in slices that stop at the first difference: a trained weight
    differs within its first few elements, and a whole-array comparison would cost a pass over
    it and a temporary as big as its element count."""
    if all(s == 0 for s in array.strides):
        return True
    flat = array.reshape(-1)
    as_uint = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}.get(flat.dtype.itemsize)
    if as_uint is not None and flat.dtype.fields is None and flat.dtype.kind in "biuf":
        flat = flat.view(as_uint)
    first = flat[0]
    step = 1 << 12
    for start in range(0, flat.size, step):
        if not np.all(flat[start:start + step] == first):
            return False
        step = min(step * 4, 1 << 18)
    return True


def strided_attrs(begin_mask: int = 0, end_mask: int = 0, shrink_axis_mask: int = 0,
                  new_axis_mask: int = 0, ellipsis_mask: int = 0) -> dict[str, Any]:
    """A StridedSlice's mask attributes."""
    return {"begin_mask": a_int(begin_mask), "end_mask": a_int(end_mask),
            "ellipsis_mask": a_int(ellipsis_mask), "new_axis_mask": a_int(new_axis_mask),
            "shrink_axis_mask": a_int(shrink_axis_mask)}


def concat(ctx: Ctx, refs: list[str], axis: int) -> str:
    """``refs`` joined along ``axis`` (the one tensor itself when there is one)."""
    if len(refs) == 1:
        return refs[0]
    return ctx.op("ConcatV2", [*refs, ctx.i32(axis, "axis")], {"N": a_int(len(refs))})


def attr(node: ir.Node, name: str, default: Any = None) -> Any:
    """An ONNX attribute as a Python value (ints, floats, strings, lists, arrays)."""
    a = node.attributes.get(name)
    if a is None:
        return default
    value = a.value
    if a.type in (ir.AttributeType.INTS, ir.AttributeType.FLOATS):
        return list(value)
    try:  # ONNX keeps string attributes as bytes, and any bytes parse
        if a.type == ir.AttributeType.STRINGS:
            return [s.decode() if isinstance(s, bytes) else s for s in value]
        if a.type == ir.AttributeType.STRING:
            return value.decode() if isinstance(value, bytes) else value
    except UnicodeDecodeError:
        raise FormatError(f"{node.op_type} node {node.name!r}: attribute {name!r} is not UTF-8 "
                          "text") from None
    if a.type == ir.AttributeType.TENSOR:
        return value.numpy()
    return value


def unsupported(node: ir.Node, why: str) -> UnsupportedError:
    """An UnsupportedError naming ``node``."""
    return UnsupportedError(f"{node.op_type} node {node.name!r}: {why}", layer=node.name)


def known(dims: Sequence[int | None], node: ir.Node, what: str) -> list[int]:
    """``dims`` with every entry known; an UnsupportedError naming ``node`` otherwise (where a
    rule's check has already asked for static sizes, this only tells the type checker so)."""
    out = [d for d in dims if d is not None]
    if len(out) != len(dims):
        raise unsupported(node, f"{what} {list(dims)} is not static")
    return out


def all_known(dims: Sequence[int | None]) -> list[int] | None:
    """``dims`` when every entry is known, else None."""
    out = [d for d in dims if d is not None]
    return out if len(out) == len(dims) else None
