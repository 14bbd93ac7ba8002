"""ONNX's quantized ops -> the standard float ops that compute the same numbers.

What ``onnxruntime.quantization.quantize_dynamic`` writes (``DynamicQuantizeLinear`` feeding
``ConvInteger`` / ``MatMulInteger``), and ``QuantizeLinear`` / ``DequantizeLinear``, have no TF op,
but each is an exact composition of ops that have a TF.js mapping: ``decompose`` replaces them in
the ONNX graph (after ``normalize``, so at opset 13 or newer) before the rules run, one builder
per op in ``BUILDERS``. The compositions follow onnxruntime's CPU kernels, which the parity check
runs on the source:

* ``DynamicQuantizeLinear``: ``min = min(0, min x)``, ``max = max(0, max x)``,
  ``scale = (max - min) / 255`` (1 where max == min, as onnxruntime's ``GetQuantizationParameter``
  has it: all zeros), ``zp = round(clip(-min / scale, 0, 255))``,
  ``y = clip(round(x / scale) + zp, 0, 255)``; ``Round`` is half-to-even in ONNX, TF and MLAS.
  (MLAS clamps ``x / scale`` to ``[-zp, 255 - zp]`` before rounding: with integer bounds that
  equals clipping after.)
* ``ConvInteger`` / ``MatMulInteger``: ``Conv`` / ``MatMul`` in float32 on ``x - x_zp`` and
  ``w - w_zp``, cast to int32. Every product and partial sum is a whole number, and float32 holds
  every whole number up to 2**24 exactly, so the result equals onnxruntime's int32 arithmetic
  while each partial sum stays below 2**24 in magnitude. With a constant weight the bound is
  known: ``255 * sum |w - w_zp|`` over one output's reduction (``|x - x_zp| <= 255`` for 8-bit
  inputs); where it reaches 2**24 the conversion logs a warning naming the node (the check
  then measures what it costs).
* ``QuantizeLinear``: ``clip(round(x / scale) + zp, qmin, qmax)``; ``DequantizeLinear``:
  ``(x - zp) * scale``; per tensor or per axis, 8- and 16-bit integers. Blocked quantization
  (``block_size``) and float8/4-bit types are left in place, so the converter refuses them by name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import onnx_ir as ir

from ...models import TfjsGraph
from ..onnx_normalize import const_array, optional_input
from ..rewire import replace_value
from .core import Ctx, rule, unsupported

log = logging.getLogger(__name__)

EXACT_LIMIT = 2 ** 24  # float32 holds every integer up to here
# integer types tfjs holds as int32, with their ranges
_INT_RANGES = {ir.DataType.UINT8: (0, 255), ir.DataType.INT8: (-128, 127),
               ir.DataType.UINT16: (0, 65535), ir.DataType.INT16: (-32768, 32767)}


class _Builder:
    """Standard ONNX nodes inserted before ``anchor`` (in order), replacing it."""

    def __init__(self, graph: ir.Graph, anchor: ir.Node, index: int) -> None:
        self.graph = graph
        self.anchor = anchor
        self.prefix = f"{anchor.name or anchor.op_type}_{index}"
        self.count = 0

    def _name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}/{hint}_{self.count}"

    def const(self, array: np.ndarray, hint: str = "const") -> ir.Value:
        """An initializer holding ``array``."""
        # (not np.ascontiguousarray: it makes a 0-d array 1-d)
        array = array if array.flags.c_contiguous else array.copy(order="C")
        v = ir.Value(name=self._name(hint), shape=ir.Shape(array.shape),
                     type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
                     const_value=ir.tensor(array))
        self.graph.register_initializer(v)
        return v

    def f32(self, value: float) -> ir.Value:
        """A float32 scalar constant."""
        return self.const(np.asarray(value, np.float32), "scalar")

    def op(self, op_type: str, inputs: list[ir.Value | None], dtype: ir.DataType,
           shape: ir.Shape | list | None, **attrs: int) -> ir.Value:
        """One node; its output, typed ``dtype`` with ``shape`` (None: unknown)."""
        node = ir.node(op_type, inputs, attrs or None, name=self._name(op_type))
        out = node.outputs[0]
        out.type = ir.TensorType(dtype)
        if shape is not None:
            out.shape = shape if isinstance(shape, ir.Shape) else ir.Shape(shape)
        self.graph.insert_before(self.anchor, node)
        return out

    def to_float(self, v: ir.Value) -> ir.Value:
        """``v`` cast to float32 (as it is when it already is)."""
        if v.dtype == ir.DataType.FLOAT:
            return v
        return self.op("Cast", [v], ir.DataType.FLOAT, v.shape, to=ir.DataType.FLOAT)

    def replace(self, outputs: list[ir.Value | None]) -> None:
        """Hand the anchor's outputs over to ``outputs`` and remove it."""
        for old, new in zip(self.anchor.outputs, outputs):
            if new is None:
                continue
            if new.shape is None and old.shape is not None:
                new.shape = old.shape
            replace_value(old, new)
        self.graph.remove(self.anchor, safe=True)


# --- DynamicQuantizeLinear -----------------------------------------------------------------------

def _dynamic_quantize_linear(b: _Builder, node: ir.Node) -> str | None:
    x = node.inputs[0]
    if x is None or x.dtype not in (None, ir.DataType.FLOAT):
        return f"input of type {_type(x)} (onnxruntime's kernel takes float32)"
    f, scalar = ir.DataType.FLOAT, ir.Shape([])
    zero, top = b.f32(0.0), b.f32(255.0)
    lo = b.op("Min", [b.op("ReduceMin", [x], f, scalar, keepdims=0), zero], f, scalar)
    hi = b.op("Max", [b.op("ReduceMax", [x], f, scalar, keepdims=0), zero], f, scalar)
    step = b.op("Div", [b.op("Sub", [hi, lo], f, scalar), top], f, scalar)
    same = b.op("Equal", [hi, lo], ir.DataType.BOOL, scalar)
    scale = b.op("Where", [same, b.f32(1.0), step], f, scalar)
    zp = b.op("Round", [b.op("Clip", [b.op("Neg", [b.op("Div", [lo, scale], f, scalar)], f,
                                              scalar), zero, top], f, scalar)], f, scalar)
    q = b.op("Round", [b.op("Div", [x, scale], f, x.shape)], f, x.shape)
    y = b.op("Clip", [b.op("Add", [q, zp], f, x.shape), zero, top], f, x.shape)
    u8 = ir.DataType.UINT8
    b.replace([b.op("Cast", [y], u8, x.shape, to=u8), scale,
               b.op("Cast", [zp], u8, scalar, to=u8)])
    return None


# --- ConvInteger, MatMulInteger ------------------------------------------------------------------

def _centered(b: _Builder, v: ir.Value, zp: ir.Value | None, zp_axis: int | None) -> ir.Value:
    """``v - zp`` in float32: a constant when both are; ``zp_axis``: the axis a 1-D zero point
    of more than one element runs along (None: it broadcasts as it is)."""
    array, zp_array = const_array(v), None if zp is None else const_array(zp)
    if array is not None and (zp is None or zp_array is not None):
        out = array.astype(np.float32)
        if zp_array is not None:
            out = out - _along(zp_array.astype(np.float32), array.ndim, zp_axis)
        return b.const(out.astype(np.float32), "centered")
    y = b.to_float(v)
    if zp is None:
        return y
    z = b.to_float(zp)
    zshape = zp.shape
    if zp_axis is not None and zshape is not None and len(zshape) == 1 and zshape[0] != 1 \
            and v.shape is not None:
        rank = len(v.shape)
        target = [1] * rank
        target[zp_axis % rank] = -1
        z = b.op("Reshape", [z, b.const(np.asarray(target, np.int64), "shape")],
                 ir.DataType.FLOAT, None)
    return b.op("Sub", [y, z], ir.DataType.FLOAT, v.shape)


def _along(zp: np.ndarray, rank: int, axis: int | None) -> np.ndarray:
    """A zero point shaped to broadcast against a rank-``rank`` tensor along ``axis``."""
    if zp.ndim != 1 or zp.size == 1 or axis is None:
        return zp.reshape(()) if zp.size == 1 else zp
    shape = [1] * rank
    shape[axis % rank] = zp.size
    return zp.reshape(shape)


def _warn_bound(node: ir.Node, weight: ir.Value, axes: tuple[int, ...]) -> None:
    """Log where a constant weight lets a partial sum reach 2**24 (see the module)."""
    centered = const_array(weight)
    if centered is None:
        return
    bound = 255.0 * float(np.abs(centered.astype(np.float64)).sum(axis=axes).max(initial=0.0))
    if bound >= EXACT_LIMIT:
        log.warning("%s node %r: its sums can reach %.3g, past 2**24, where float32 stops "
                    "holding every integer: the int32 result may differ from onnxruntime's "
                    "by rounding on some inputs", node.op_type, node.name, bound)


def _conv_integer(b: _Builder, node: ir.Node) -> str | None:
    x, w = node.inputs[0], node.inputs[1]
    if x is None or w is None or w.shape is None:
        return "the rank of its weight is unknown"
    xc = _centered(b, x, optional_input(node, 2), None)
    wc = _centered(b, w, optional_input(node, 3), 0)
    _warn_bound(node, wc, tuple(range(1, len(w.shape))))
    conv = ir.Node("", "Conv", [xc, wc], attributes=list(node.attributes.values()),
                   name=b._name("Conv"))
    conv.outputs[0].type = ir.TensorType(ir.DataType.FLOAT)
    conv.outputs[0].shape = node.outputs[0].shape
    b.graph.insert_before(node, conv)
    i32 = ir.DataType.INT32
    b.replace([b.op("Cast", [conv.outputs[0]], i32, node.outputs[0].shape, to=i32)])
    return None


def _matmul_integer(b: _Builder, node: ir.Node) -> str | None:
    a, w = node.inputs[0], node.inputs[1]
    if a is None or w is None:
        return "an input is missing"
    ac = _centered(b, a, optional_input(node, 2), -2)   # a 1-D zero point: one per row
    wc = _centered(b, w, optional_input(node, 3), -1)   # one per column
    _warn_bound(node, wc, (-2,))
    f, i32 = ir.DataType.FLOAT, ir.DataType.INT32
    y = b.op("MatMul", [ac, wc], f, node.outputs[0].shape)
    b.replace([b.op("Cast", [y], i32, node.outputs[0].shape, to=i32)])
    return None


# --- QuantizeLinear, DequantizeLinear ------------------------------------------------------------

def _per_axis(b: _Builder, node: ir.Node, v: ir.Value | None, x: ir.Value) -> ir.Value | None:
    """A scale or zero point as float32, shaped to broadcast along the node's ``axis``."""
    if v is None:
        return None
    f = b.to_float(v)
    if v.shape is not None and len(v.shape) == 1 and v.shape[0] != 1 and x.shape is not None:
        rank = len(x.shape)
        axis = node.attributes["axis"].value if "axis" in node.attributes else 1
        target = [1] * rank
        target[axis % rank] = -1
        f = b.op("Reshape", [f, b.const(np.asarray(target, np.int64), "shape")],
                 ir.DataType.FLOAT, None)
    return f


def _unmapped_form(node: ir.Node, x: ir.Value | None, scale: ir.Value | None) -> str | None:
    """Why a (De)QuantizeLinear is not composed, for what both ops share; None if it is."""
    size = node.attributes.get("block_size")
    if size is not None and size.value != 0:
        return f"blocked quantization (block_size {size.value}) is not mapped"
    if x is None or scale is None:
        return "an input is missing"
    return None


def _type(v: ir.Value | None) -> str:
    return "unknown" if v is None or v.dtype is None else _name(v.dtype)


def _name(dtype: ir.DataType | None) -> str:
    return "an unknown type" if dtype is None else dtype.name.lower()


def _quantize_linear(b: _Builder, node: ir.Node) -> str | None:
    x, scale = node.inputs[0], node.inputs[1]
    zp = optional_input(node, 2)
    declared = node.attributes.get("output_dtype")
    out_type = zp.dtype if zp is not None else \
        ir.DataType(declared.value) if declared is not None and declared.value else \
        ir.DataType.UINT8
    why = _unmapped_form(node, x, scale)
    if why is None and (out_type is None or out_type not in _INT_RANGES):
        why = f"quantization to {_name(out_type)} (mapped: 8- and 16-bit integers)"
    if why is None and x is not None and x.dtype not in (None, ir.DataType.FLOAT):
        why = f"input of type {_type(x)} (mapped: float32)"
    if why is not None or x is None or scale is None or out_type is None:
        return why or "an input is missing"
    lo, hi = _INT_RANGES[out_type]
    f = ir.DataType.FLOAT
    q = b.op("Round", [b.op("Div", [x, _per_axis(b, node, scale, x)], f, x.shape)], f, x.shape)
    z = _per_axis(b, node, zp, x)
    if z is not None:
        q = b.op("Add", [q, z], f, x.shape)
    y = b.op("Clip", [q, b.f32(lo), b.f32(hi)], f, x.shape)
    b.replace([b.op("Cast", [y], out_type, x.shape, to=out_type)])
    return None


def _dequantize_linear(b: _Builder, node: ir.Node) -> str | None:
    x, scale = node.inputs[0], node.inputs[1]
    why = _unmapped_form(node, x, scale)
    if why is None and x is not None and x.dtype not in (*_INT_RANGES, ir.DataType.INT32):
        why = f"dequantization of {_type(x)} (mapped: 8- and 16-bit integers, int32)"
    if why is None and scale is not None and scale.dtype not in (None, ir.DataType.FLOAT):
        why = f"a scale of type {_type(scale)} (mapped: float32)"
    if why is not None or x is None or scale is None:
        return why or "an input is missing"
    f = ir.DataType.FLOAT
    y = b.to_float(x)
    z = _per_axis(b, node, optional_input(node, 2), x)
    if z is not None:
        y = b.op("Sub", [y, z], f, x.shape)
    b.replace([b.op("Mul", [y, _per_axis(b, node, scale, x)], f, x.shape)])
    return None


# op type -> builder: None when it replaced the node, else why it left it (``_left`` refuses
# it with that reason)
BUILDERS: dict[str, Callable[[_Builder, ir.Node], str | None]] = {
    "DynamicQuantizeLinear": _dynamic_quantize_linear,
    "ConvInteger": _conv_integer,
    "MatMulInteger": _matmul_integer,
    "QuantizeLinear": _quantize_linear,
    "DequantizeLinear": _dequantize_linear,
}


def decompose(model: ir.Model) -> int:
    """Replace the quantized ops of ``model``'s main graph by their float compositions (see the
    module); how many it replaced."""
    graph = model.graph
    done = 0
    for index, node in enumerate(list(graph)):
        build = BUILDERS.get(node.op_type)
        if build is None or node.domain not in ("", "ai.onnx"):
            continue
        why = build(_Builder(graph, node, index), node)
        if why is None:
            done += 1
        else:
            node.meta[LEFT] = why
    return done


LEFT = "modelport.quantized.left"  # node.meta key: why ``decompose`` left the node


def _left(ctx: Ctx, node: ir.Node) -> str | None:
    # (no reason recorded: the node is in a control-flow body, which ``decompose`` leaves)
    return node.meta.get(LEFT) or "inside a control-flow body, where it is not mapped"


@rule(*BUILDERS, check=_left)
def left(ctx: Ctx, node: ir.Node) -> list[str]:
    """A quantized op ``decompose`` left in place: its check always refuses it."""
    raise unsupported(node, _left(ctx, node) or "")


# --- storage -------------------------------------------------------------------------------------

STORED_MIN_SIZE = 256  # smaller constants are not worth a manifest entry


def keep_integer_weights(graph: TfjsGraph) -> int:
    """Store the whole-number float32 weights of a quantized model (its centered 8-bit weights:
    ``w - w_zp``) as uint8 with scale 1 and their minimum as ``min``, which tfjs dequantizes
    (``q * 1 + min``) to the very same floats: the file keeps the source's size instead of
    four times it. How many weights it marked."""
    marked = 0
    for name, array in graph.weights.items():
        if array.dtype != np.float32 or array.size < STORED_MIN_SIZE or name in graph.quantization:
            continue
        lo, hi = float(array.min()), float(array.max())
        if hi - lo > 255 or not np.array_equal(array, np.round(array)):
            continue
        graph.quantization[name] = {"dtype": "uint8", "scale": 1.0, "min": lo,
                                    "original_dtype": "float32"}
        marked += 1
    return marked
