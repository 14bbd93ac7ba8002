"""TF -> ONNX mappings for the neural-network ops: convolutions (plain and fused), pooling,
matrix products, batch normalization, bias and the activations TF fuses into them.

TF convolutions and pooling are NHWC with HWIO filters; ONNX's are NCHW with OIHW weights. Each
mapping transposes its input to NCHW, runs the ONNX op and transposes back; constant filters are
re-laid-out in NumPy. The layout pass removes the Transposes that cancel between ops.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir

from ..padding import explicit_same_pads
from .core import MAPPINGS, NodeInputs, TfOp, to_first, to_last

# Activations the TF.js converter fuses into _FusedConv2D / FusedDepthwiseConv2dNative /
# _FusedMatMul (after the bias or the batch norm), and their standalone ops.
FUSABLE = {"Relu", "Relu6", "Elu", "LeakyRelu", "Sigmoid", "Tanh", "Prelu", "Selu",
           "GeluExact", "GeluApproximate", "_FusedHardSwish"}


def activation(op: TfOp, name: str, x: ir.Value, extra: list[ir.Value], dtype: str
               ) -> ir.Value:
    """Apply a fused activation ``name``; ``extra`` holds Prelu's alpha."""
    def scalar(v: float) -> ir.Value:
        return op.scalar(v, dtype)

    if name == "Relu":
        return op.emit("Relu", x)
    if name == "Relu6":
        return op.emit("Clip", x, scalar(0.0), scalar(6.0))
    if name == "Elu":
        return op.emit("Elu", x, alpha=1.0)
    if name == "Selu":
        return op.emit("Selu", x)
    if name == "LeakyRelu":
        return op.emit("LeakyRelu", x, alpha=op.f("leakyrelu_alpha", 0.2)
                       if op.op != "LeakyRelu" else op.f("alpha", 0.2))
    if name == "Sigmoid":
        return op.emit("Sigmoid", x)
    if name == "Tanh":
        return op.emit("Tanh", x)
    if name == "Prelu":
        if not extra:
            raise op.bad("fuses Prelu but has no alpha input")
        return op.emit("PRelu", x, extra[0])
    if name == "_FusedHardSwish":
        # grappler's oneDNN remapper's fusion of Keras's hard_swish: x * relu6(x + 3) / 6
        gate = op.emit("Clip", op.emit("Add", x, scalar(3.0)), scalar(0.0), scalar(6.0))
        return op.emit("Mul", x, op.emit("Div", gate, scalar(6.0)))
    if name == "GeluExact":
        # 0.5 x (1 + erf(x / sqrt 2)), written out: Gelu is an ONNX op only from opset 20.
        inner = op.emit("Erf", op.emit("Mul", x, scalar(1 / np.sqrt(2.0))))
        return op.emit("Mul", op.emit("Mul", x, scalar(0.5)),
                       op.emit("Add", inner, scalar(1.0)))
    if name == "GeluApproximate":
        cube = op.emit("Mul", op.emit("Mul", x, x), x)
        inner = op.emit("Mul", op.emit("Add", x, op.emit("Mul", cube, scalar(0.044715))),
                        scalar(np.sqrt(2 / np.pi)))
        return op.emit("Mul", op.emit("Mul", x, scalar(0.5)),
                       op.emit("Add", op.emit("Tanh", inner), scalar(1.0)))
    raise op.fail(f"fused activation {name!r} is not supported (supported: "
                  f"{', '.join(sorted(FUSABLE))})")


for _name in ("Relu6", "Selu", "Sigmoid", "Tanh", "Relu", "Elu"):
    MAPPINGS.register(_name)(lambda op, _n=_name: activation(op, _n, op.inputs[0], [],
                                                             op.dtype(0)))


@MAPPINGS.register("LeakyRelu")
def _leaky_relu(op: TfOp) -> ir.Value:
    # TF's default alpha is 0.2 (ONNX's is 0.01): always written explicitly.
    return op.emit("LeakyRelu", op.inputs[0], alpha=op.f("alpha", 0.2))


@MAPPINGS.register("Prelu")
def _prelu(op: TfOp) -> ir.Value:
    return op.emit("PRelu", op.inputs[0], op.inputs[1])


@MAPPINGS.register("Softsign")
def _softsign(op: TfOp) -> ir.Value:
    return op.emit("Softsign", op.inputs[0])


@MAPPINGS.register("Softmax", "LogSoftmax")
def _softmax(op: TfOp) -> ir.Value:
    # TF normalises over the last axis; ONNX >= 13 over ``axis`` alone (not the flattened tail).
    return op.emit(op.op, op.inputs[0], axis=-1)


# --- fused-op bookkeeping -------------------------------------------------------------------

def _fused(op: TfOp) -> tuple[list[str], list[ir.Value], list[int]]:
    """(fused ops, their extra inputs, those inputs' indices) of a fused conv / matmul."""
    ops = list(_list_s(op, "fused_ops"))
    # the indices too: a fused op listed without its input is the node's fault, named
    return ops, op.inputs[2:], NodeInputs(range(2, len(op.inputs)), op.node, len(op.inputs))


def _list_s(op: TfOp, name: str) -> list[str]:
    from ...models.tfjs_graph import attr_list

    return attr_list(op.node, name, "s")


def _split_fused(op: TfOp, fused: list[str]) -> tuple[str | None, str | None]:
    """(the bias-like step, the activation) of ``fused_ops``."""
    if not fused:
        return None, None
    first, rest = fused[0], fused[1:]
    if first not in ("BiasAdd", "FusedBatchNorm", "FusedBatchNormV3", "Add"):
        if len(fused) == 1 and first in FUSABLE:
            return None, first
        raise op.fail(f"fused_ops {fused} are not supported")
    if rest and rest[0] == "Add":  # a residual input added after the bias
        rest = rest[1:]
        first = f"{first}+Add"
    if len(rest) > 1 or (rest and rest[0] not in FUSABLE):
        raise op.fail(f"fused_ops {fused} are not supported")
    return first, rest[0] if rest else None


def _bn_fold(op: TfOp, idx: list[int], channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch-norm inputs (scale, offset, mean, variance) as one scale and one shift."""
    if len(idx) < 4:
        raise op.bad("fuses FusedBatchNorm but has fewer than four of its inputs")
    arrays = [op.const(k) for k in idx[:4]]
    if any(a is None for a in arrays):
        raise op.fail("fuses a batch norm with computed statistics; only constants fold")
    scale, offset, mean, var = (np.asarray(a, np.float64).reshape(-1) for a in arrays)
    factor = scale / np.sqrt(var + op.f("epsilon", 1e-4))  # TF's default epsilon
    shift = offset - mean * factor
    if factor.size not in (1, channels):
        raise op.bad(f"batch norm has {factor.size} channels, the op produces {channels}")
    return factor, shift


# --- convolutions ---------------------------------------------------------------------------

def _spatial_pads(op: TfOp, in_dims: Sequence[int | None], kernel: list[int],
                  strides: list[int], dilations: list[int], data_format: str) -> dict:
    """ONNX padding attributes for TF's SAME / VALID / EXPLICIT."""
    padding = op.s("padding")
    n = len(kernel)
    if padding == "VALID":
        return {"pads": [0] * (2 * n)}
    if padding == "EXPLICIT":
        explicit = op.ints("explicit_paddings")
        if len(explicit) != 2 * (n + 2):
            raise op.bad(f"explicit_paddings has {len(explicit)} values, not {2 * (n + 2)}")
        pairs = [explicit[2 * i: 2 * i + 2] for i in range(n + 2)]
        spatial = pairs[1:-1] if data_format.endswith("C") else pairs[2:]
        return {"pads": [p[0] for p in spatial] + [p[1] for p in spatial]}
    if padding != "SAME":
        raise op.bad(f"padding {padding!r} is not SAME, VALID or EXPLICIT")
    pads = explicit_same_pads(list(in_dims), kernel, strides, dilations)
    # None: pads that depend on a size unknown until run time: ONNX's SAME_UPPER is TF's SAME
    # (extra at the end)
    return {"pads": pads} if pads is not None else {"auto_pad": "SAME_UPPER"}


CHANNELS_LAST = ("NHWC", "NDHWC")
CHANNELS_FIRST = ("NCHW", "NCDHW")


def _layout(op: TfOp, rank: int) -> tuple[str, bool]:
    """(data_format, channels_last) for an op over tensors of ``rank`` (4: 2-D, 5: 3-D)."""
    data_format = op.s("data_format", "NHWC" if rank == 4 else "NDHWC")
    if data_format not in CHANNELS_LAST + CHANNELS_FIRST or len(data_format) != rank:
        raise op.fail(f"data_format {data_format!r} on a rank-{rank} input is not supported")
    if op.rank(0 if op.op != "Conv2DBackpropInput" else 2) != rank:
        raise op.fail(f"input of rank {op.rank(0)}; {op.op} takes rank {rank}")
    return data_format, data_format in CHANNELS_LAST


def _spatial_attr(op: TfOp, name: str, last: bool, rank: int) -> list[int]:
    """A per-axis attribute (strides, dilations, ksize) for the spatial axes only."""
    values = op.ints(name, rank, [1] * rank)
    spatial = values[1:-1] if last else values[2:]
    outer = [values[0], values[-1]] if last else values[:2]
    if any(v != 1 for v in outer):
        raise op.fail(f"{name} {values} moves along the batch or channel axis")
    return spatial


def _spatial_dims(op: TfOp, k: int, last: bool) -> list[int | None]:
    shape = op.known_shape(k)
    return shape[1:-1] if last else shape[2:]


def _conv(op: TfOp, depthwise: bool, rank: int = 4) -> ir.Value:
    data_format, last = _layout(op, rank)
    n = rank - 2
    kernel = op.const(1)
    if kernel is None:
        raise op.fail("has a filter computed at run time; only constant filters are supported")
    kernel = np.asarray(kernel)
    if kernel.ndim != rank:
        raise op.bad(f"filter of rank {kernel.ndim}, not {rank}")
    spatial_k, cin, mult = list(kernel.shape[:n]), kernel.shape[n], kernel.shape[n + 1]
    # TF's [*k, in, out] filters -> ONNX's [out, in/group, *k].
    to_oi = (n + 1, n) + tuple(range(n))
    if depthwise:
        weight = kernel.reshape(*spatial_k, 1, cin * mult).transpose(to_oi)
        group, cout = cin, cin * mult
    else:
        weight = kernel.transpose(to_oi)
        cout = mult
        x_channels = op.known_shape(0)[-1 if last else 1]
        group = 1 if x_channels is None or x_channels == cin else x_channels // cin
    strides = _spatial_attr(op, "strides", last, rank)
    dilations = _spatial_attr(op, "dilations", last, rank)
    pads = _spatial_pads(op, _spatial_dims(op, 0, last), spatial_k, strides, dilations,
                         data_format)
    fused, extra, idx = _fused(op) if op.op.startswith(("_Fused", "Fused")) else ([], [], [])
    step, act = _split_fused(op, fused)
    bias = None
    rest = extra
    residual = None
    adds = step is not None and step.endswith("+Add")
    if step is not None and adds:
        step = step[:-4]
    if step in ("BiasAdd", "Add"):
        b = op.const(idx[0])
        if b is None or np.asarray(b).size != cout:
            raise op.fail("has a bias that is not a constant vector of the output channels")
        bias = np.asarray(b, np.float64).reshape(-1)
        rest = extra[1:]
    elif step is not None:  # a folded batch norm: scale the filter, shift the bias
        factor, shift = _bn_fold(op, idx, cout)
        weight = weight * factor.reshape([-1] + [1] * (rank - 1))
        bias = np.broadcast_to(shift, (cout,)).copy()
        rest = extra[4:]
    if adds:
        if not rest:
            raise op.bad("fuses an Add but has no tensor to add")
        residual, rest = rest[0], rest[1:]
    dtype = kernel.dtype if kernel.dtype.kind == "f" else np.float32
    w = op.b_.const(weight.astype(dtype), f"{op.name}/weight")
    inputs = [w] + ([op.b_.const(bias.astype(dtype), f"{op.name}/bias")] if bias is not None
                    else [])
    x = to_first(op, op.inputs[0], rank) if last else op.inputs[0]
    y = op.emit("Conv", x, *inputs, kernel_shape=spatial_k, strides=strides,
                dilations=dilations, group=group, **pads)
    if last:
        y = to_last(op, y, rank)
    if residual is not None:
        y = op.emit("Add", y, residual)
    if act is not None:
        if act == "Prelu" and not rest:
            raise op.bad("fuses Prelu but has no alpha input")
        y = activation(op, act, y, rest, np.dtype(dtype).name)
    return y


@MAPPINGS.register("Conv2D", "_FusedConv2D")
def _conv2d(op: TfOp) -> ir.Value:
    return _conv(op, depthwise=False)


@MAPPINGS.register("Conv3D")
def _conv3d(op: TfOp) -> ir.Value:
    return _conv(op, depthwise=False, rank=5)


@MAPPINGS.register("DepthwiseConv2dNative", "FusedDepthwiseConv2dNative",
                   "_FusedDepthwiseConv2dNative")
def _depthwise(op: TfOp) -> ir.Value:
    return _conv(op, depthwise=True)


@MAPPINGS.register("Conv2DBackpropInput")
def _conv_transpose(op: TfOp) -> ir.Value:
    data_format, last = _layout(op, 4)
    sizes = _transpose_output_size(op)
    kernel = op.const(1)
    spatial = _spatial_dims(op, 2, last)
    in_dims = [d for d in spatial if d is not None]
    if kernel is None or len(sizes) != 4 or len(in_dims) != len(spatial):
        raise op.fail("needs a constant filter, a constant output size and a static input size")
    out_dims = [int(d or 0) for d in (sizes[1:3] if last else sizes[2:4])]  # static here
    kernel = np.asarray(kernel)
    kh, kw = kernel.shape[:2]
    strides = _spatial_attr(op, "strides", last, 4)
    dilations = _spatial_attr(op, "dilations", last, 4)
    # The forward convolution's padding, for an input of the requested output size.
    pads = _spatial_pads(op, out_dims, [kh, kw], strides, dilations, data_format)
    p = pads["pads"]
    extra = []
    for i, (size, k, s, d) in enumerate(zip(out_dims, [kh, kw], strides, dilations)):
        natural = s * (in_dims[i] - 1) + (k - 1) * d + 1 - p[i] - p[2 + i]
        extra.append(size - natural)
    if any(e < 0 or e >= max(s, d) for e, s, d in zip(extra, strides, dilations)):
        raise op.bad(f"output size {sizes} does not fit input {op.shape(2)} with these strides")
    # TF's [h, w, out, in] filter is ONNX ConvTranspose's [in, out, h, w].
    w = op.b_.const(kernel.transpose(3, 2, 0, 1), f"{op.name}/weight")
    x = to_first(op, op.inputs[2], 4) if last else op.inputs[2]
    y = op.emit("ConvTranspose", x, w, kernel_shape=[kh, kw], strides=strides,
                dilations=dilations, pads=p, output_padding=extra if any(extra) else None)
    return to_last(op, y, 4) if last else y


def _transpose_output_size(op: TfOp) -> list[int | None]:
    """Conv2DBackpropInput's output size: the constant input 0, else (Keras computes it at run
    time, packing the batch from ``Shape``) the probed output shape when its spatial sizes are
    static, which ONNX's ConvTranspose needs alone (its batch follows the input's)."""
    if op.const(0) is not None:
        return list(op.const_ints(0, "output size"))
    shape = op.out_shape(0)
    _, last = _layout(op, 4)
    if shape is None or len(shape) != 4 or any(d is None for d in (shape[1:3] if last
                                                                   else shape[2:4])):
        raise op.fail("its output size (input 0) is computed at run time and its spatial "
                      "sizes are not static; pin the input's shape (--input-shape)")
    return list(shape)


# --- pooling --------------------------------------------------------------------------------

@MAPPINGS.register("MaxPool", "AvgPool", "MaxPool3D", "AvgPool3D")
def _pool(op: TfOp) -> ir.Value:
    rank = 5 if op.op.endswith("3D") else 4
    data_format, last = _layout(op, rank)
    kernel = _spatial_attr(op, "ksize", last, rank)
    strides = _spatial_attr(op, "strides", last, rank)
    pads = _spatial_pads(op, _spatial_dims(op, 0, last), kernel, strides, [1] * (rank - 2),
                         data_format)
    x = to_first(op, op.inputs[0], rank) if last else op.inputs[0]
    if op.op.startswith("MaxPool"):
        y = op.emit("MaxPool", x, kernel_shape=kernel, strides=strides, **pads)
    else:
        # TF averages over the window's valid cells only.
        y = op.emit("AveragePool", x, kernel_shape=kernel, strides=strides,
                    count_include_pad=0, **pads)
    return to_last(op, y, rank) if last else y


# --- matrix products ------------------------------------------------------------------------

def _swap_last(op: TfOp, x: ir.Value, k: int) -> ir.Value:
    const = op.const(k)
    if const is not None:
        return op.b_.const(np.swapaxes(np.asarray(const), -1, -2), f"{op.name}/transposed")
    rank = op.rank(k)
    return op.b_.transpose(x, list(range(rank - 2)) + [rank - 1, rank - 2])


@MAPPINGS.register("MatMul", "_FusedMatMul")
def _matmul(op: TfOp) -> ir.Value:
    a, b = op.inputs[0], op.inputs[1]
    if op.b("transpose_a"):
        a = _swap_last(op, a, 0)
    if op.b("transpose_b"):
        b = _swap_last(op, b, 1)
    y = op.emit("MatMul", a, b)
    if op.op == "MatMul":
        return y
    fused, extra, _ = _fused(op)
    step, act = _split_fused(op, fused)
    rest = extra
    if step is not None and step.endswith("+Add"):
        if len(extra) < 2:
            raise op.bad("fuses BiasAdd and Add but lacks their inputs")
        y = op.emit("Add", op.emit("Add", y, extra[0]), extra[1])
        rest = extra[2:]
    elif step in ("BiasAdd", "Add"):
        y = op.emit("Add", y, extra[0])
        rest = extra[1:]
    elif step is not None:
        raise op.fail(f"fused_ops {fused} are not supported on a matmul")
    if act is not None:
        y = activation(op, act, y, rest, op.dtype(0))
    return y


@MAPPINGS.register("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
def _batch_matmul(op: TfOp) -> ir.Value:
    a, b = op.inputs[0], op.inputs[1]
    if op.b("adj_x"):
        a = _swap_last(op, a, 0)
    if op.b("adj_y"):
        b = _swap_last(op, b, 1)
    y = op.emit("MatMul", a, b)
    out = op.out_dtype()
    if out is not None and out != op.dtype(0):  # V3's Tout
        y = op.cast_to(y, out)
    return y


@MAPPINGS.register("Einsum")
def _einsum(op: TfOp) -> ir.Value:
    return op.emit("Einsum", *op.inputs, equation=op.s("equation"))


# --- normalization and bias -----------------------------------------------------------------

@MAPPINGS.register("BiasAdd")
def _bias_add(op: TfOp) -> ir.Value:
    data_format = op.s("data_format", "NHWC")
    bias = op.inputs[1]
    if data_format == "NCHW" or data_format.startswith("NC"):
        rank = op.rank(0)
        bias = op.b_.unsqueeze(bias, list(range(1, rank - 1)))
    return op.emit("Add", op.inputs[0], bias)


@MAPPINGS.register("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
def _batch_norm(op: TfOp) -> list[ir.Value]:
    if op.b("is_training", False):
        return _batch_norm_training(op)
    shape = op.shape(0)
    data_format = op.s("data_format", "NHWC")
    channels = None if shape is None else shape[-1 if data_format.endswith("C") else 1]
    factor, shift = _bn_fold(op, [1, 2, 3, 4], channels if channels is not None else -1) \
        if channels is not None else _bn_fold(op, [1, 2, 3, 4], 1)
    dtype = op.dtype(0)
    scale = factor.astype(dtype)
    offset = shift.astype(dtype)
    if not data_format.endswith("C"):
        rank = op.rank(0)
        scale = scale.reshape([-1] + [1] * (rank - 2))
        offset = offset.reshape([-1] + [1] * (rank - 2))
    y = op.emit("Add", op.emit("Mul", op.inputs[0], op.b_.const(scale, f"{op.name}/scale")),
                op.b_.const(offset, f"{op.name}/offset"))
    # The other outputs (batch statistics) are the moving ones at inference.
    return [y, op.inputs[3], op.inputs[4], op.inputs[3], op.inputs[4], op.inputs[3]]


def _batch_norm_training(op: TfOp) -> list[ir.Value]:
    """FusedBatchNorm with ``is_training=true``: normalized by the input's own moments over
    every axis but the channel (tf_keras ``LayerNormalization`` writes one, on the input
    reshaped to ``[1, rows, features, 1]`` NCHW, to normalize each row). TF normalizes with
    the biased variance and outputs, with ``exponential_avg_factor`` 1, the batch mean and the
    unbiased (n / (n - 1)) variance as outputs 1 and 2."""
    if op.f("exponential_avg_factor", 1.0) != 1.0:
        raise op.fail("is_training=true with exponential_avg_factor != 1 (running averages) is "
                      "not supported")
    rank = op.rank(0)
    data_format = op.s("data_format", "NHWC")
    channel = rank - 1 if data_format.endswith("C") else 1
    axes = [a for a in range(rank) if a != channel]
    x, scale, offset = op.inputs[0], op.inputs[1], op.inputs[2]
    mean = op.b_.reduce("ReduceMean", x, axes, True)
    centered = op.emit("Sub", x, mean)
    var = op.b_.reduce("ReduceMean", op.emit("Mul", centered, centered), axes, True)
    eps = op.scalar(op.f("epsilon", 1e-4))
    y = op.emit("Div", centered, op.emit("Sqrt", op.emit("Add", var, eps)))
    if channel != rank - 1:  # per-channel vectors broadcast along axis 1
        shape = op.b_.ints([-1] + [1] * (rank - 2), f"{op.name}/channel_shape")
        scale, offset = op.emit("Reshape", scale, shape), op.emit("Reshape", offset, shape)
    y = op.emit("Add", op.emit("Mul", y, scale), offset)
    flat = op.b_.ints([-1], f"{op.name}/flat")
    batch_mean = op.emit("Reshape", mean, flat)
    biased = op.emit("Reshape", var, flat)
    # n / (n - 1) with n the elements per channel: Size(x) / Shape(x)[channel]
    size = op.cast_to(op.emit("Size", x), op.dtype(0))
    channels = op.cast_to(op.emit("Gather", op.emit("Shape", x),
                                  op.b_.ints([channel], f"{op.name}/channel")), op.dtype(0))
    n = op.emit("Div", size, channels)
    unbiased = op.emit("Mul", biased, op.emit("Div", n, op.emit("Sub", n, op.scalar(1.0))))
    return [y, batch_mean, unbiased]


@MAPPINGS.register("LRN")
def _lrn(op: TfOp) -> ir.Value:
    # TF sums squares over depth_radius channels each side and scales by alpha; ONNX's LRN
    # takes the window size and divides alpha by it.
    radius = op.i("depth_radius", 5)
    size = 2 * radius + 1
    x = to_first(op, op.inputs[0], 4)
    y = op.emit("LRN", x, size=size, alpha=op.f("alpha", 1.0) * size, beta=op.f("beta", 0.5),
                bias=op.f("bias", 1.0))
    return to_last(op, y, 4)
