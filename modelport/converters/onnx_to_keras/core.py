"""The machinery of ONNX -> Keras raising: rules, and the context that builds Keras layers.

A rule maps one ONNX node (standard domain, or its channels-last twin in ``ai.modelport.nhwc``
for ``layout=True`` rules) to Keras layers through a ``Ctx``, and may have a ``check`` that
says up front why the node cannot be raised (the converter lists every such node in one error
before it writes anything).

Every value the rules see is in the layout the Keras model holds it in: the prepare step has put
layout-sensitive ops in channels-last form and left explicit Transposes wherever the layout
changes. Keras tensors always have the batch on axis 0, so a rule that would touch axis 0
(reshape across it, concatenate along it, ...) refuses. A value that depends on no graph input
is a constant (folded by the prepare step); rules fold constants into layer weights or
settings, since Keras layers take no constant inputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard, TypeVar

import numpy as np
import onnx_ir as ir

from ...errors import FormatError, UnsupportedError
from ...models import Layer, Node, TensorRef, Weight
from ...registry import Registry
from ..onnx_normalize import input_of, is_const, optional_input

RuleFn = Callable[["Ctx", ir.Node], None]
Check = Callable[["Ctx", ir.Node], "str | None"]
PatternFn = Callable[["Ctx", ir.Graph], None]
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass
class Rule:
    """How one ONNX op type becomes Keras layers."""

    op: str
    fn: RuleFn
    check: Check | None = None
    layout: bool = False  # raised from its channels-last twin


RULES: Registry[Rule] = Registry("ONNX -> Keras raising")


def rule(*ops: str, check: Check | None = None, layout: bool = False) -> Callable[[_F], _F]:
    """Register the decorated function as the rule of each of ``ops``."""
    def deco(fn: _F) -> _F:
        for op in ops:
            RULES.add(op, Rule(op, fn, check, layout))
        return fn
    return deco


# Pre-passes, run once before emission: ``fn(ctx, graph)`` may claim nodes that a rule raises
# together with a neighbour (``ctx.absorbed``), e.g. the time-major Transposes around an LSTM.
PATTERNS: list[PatternFn] = []
# Ops with no rule of their own that a pattern may take in; left over, they are refused.
PATTERN_OPS: set[str] = set()


def pattern(fn: PatternFn) -> PatternFn:
    """Register the decorated function as a pre-pass (``PATTERNS``)."""
    PATTERNS.append(fn)
    return fn


def attr(node: ir.Node, name: str, default: Any = None) -> Any:
    """Attribute ``name`` of ``node`` (text decoded), or ``default`` when it is absent."""
    a = node.attributes.get(name)
    if a is None:
        return default
    value = a.value
    try:  # ONNX keeps string attributes as bytes, and any bytes parse
        if isinstance(value, (list, tuple)) or type(value).__name__.endswith("Sequence"):
            return [v.decode() if isinstance(v, bytes) else v for v in value]
        return value.decode() if isinstance(value, bytes) else value
    except UnicodeDecodeError:
        raise FormatError(f"{node.op_type} node {node.name!r}: attribute {name!r} is not UTF-8 "
                          "text") from None


_NAME_OK = re.compile(r"[^A-Za-z0-9_.\-]")


def sanitize(name: str | None) -> str:
    """``name`` as a Keras layer name (letters, digits, ``_.-``; starting with a letter)."""
    name = _NAME_OK.sub("_", name or "").strip("_.")
    if not name or not name[0].isalpha():
        name = "n_" + name
    return name[:120]


class Ctx:
    """Builds the Keras layer graph; knows ONNX values' constants, shapes and Keras tensors."""

    def __init__(self, graph: ir.Graph, *, for_tfjs: bool = False) -> None:
        self.graph = graph
        self.for_tfjs = for_tfjs
        # an operation took the exported shapes literally (operations_static): the model
        # runs at the batch of one it was exported with, and its inputs say so
        self.literal_batch = False
        self.layers: list[Layer] = []
        self.tensors: dict[int, TensorRef] = {}
        # Keras layer name -> (ONNX value name, node name): where first-divergence looks.
        self.origin: dict[str, tuple[str, str]] = {}
        self._names: set[str] = set()
        self.node: ir.Node | None = None
        self.absorbed: set[int] = set()  # nodes a rule has raised together with its own
        # graph input -> its Keras shape (with batch)
        self.input_shapes: dict[int, list[int | None]] = {}
        # node -> what raises it instead of its rule: the last node of a pattern (Gelu, ...)
        self.fused: dict[int, RuleFn] = {}
        self._ones: TensorRef | None = None

    # --- values ---------------------------------------------------------------------------

    def input(self, node: ir.Node, i: int) -> ir.Value:
        """Input ``i`` of ``node``, which its op requires: a FormatError naming the node where
        the model leaves it out."""
        return input_of(node, i)

    def const(self, v: ir.Value | None) -> np.ndarray | None:
        """``v``'s value when it is a constant (not a graph input), else None."""
        if v is None or not is_const(v) or v.const_value is None:
            return None
        return v.const_value.numpy()

    def is_tensor(self, v: ir.Value | None) -> TypeGuard[ir.Value]:
        """Whether ``v`` is bound to a Keras tensor."""
        return v is not None and id(v) in self.tensors

    def ref(self, v: ir.Value) -> TensorRef:
        """The Keras tensor bound to ``v``; a refusal where ``v`` is not computed by layers."""
        try:
            return self.tensors[id(v)]
        except KeyError:
            raise self.refuse(f"input {v.name!r} is not computed from the model's inputs by "
                              "Keras layers (a constant where a layer input is needed)") from None

    def shape(self, v: ir.Value) -> list[int | None]:
        """``v``'s inferred shape (None for a symbolic axis); a refusal where it is unknown."""
        if v.shape is None:
            raise self.refuse(f"the shape of {v.name!r} is unknown (ONNX shape inference found "
                              "none)")
        return [d if isinstance(d, int) else None for d in v.shape]

    def rank(self, v: ir.Value) -> int:
        """``v``'s rank; a refusal where its shape is unknown."""
        return len(self.shape(v))

    def bind(self, v: ir.Value, ref: TensorRef) -> None:
        """Record that ``v`` is the Keras tensor ``ref``."""
        self.tensors[id(v)] = ref

    # --- layers ---------------------------------------------------------------------------

    def unique(self, base: str) -> str:
        """A layer name from ``base`` that no other layer has (and reserve it)."""
        name = sanitize(base)
        if name in self._names:
            k = 1
            while f"{name}_{k}" in self._names:
                k += 1
            name = f"{name}_{k}"
        self._names.add(name)
        return name

    def layer(self, class_name: str, config: dict, inputs: list[TensorRef] | TensorRef, *,
              weights: Sequence[tuple[str, np.ndarray]] = (), suffix: str = "",
              out: ir.Value | None = None, call: Node | None = None,
              base: str | None = None) -> TensorRef:
        """Add a layer called once on ``inputs`` (a list means a merge layer's list argument),
        or as ``call`` says when given; bind ``out`` (default: the node's first output) when
        given."""
        node = self.node
        if base is None:
            base = (node.name or node.op_type) if node is not None else class_name
        name = self.unique(base + (f"_{suffix}" if suffix else ""))
        cfg = {"name": name, "trainable": True, "dtype": "float32", **config}
        args = [inputs]  # a merge layer's list is its one positional argument
        weights_ = [Weight(path, np.asarray(a, np.float32, order="C"))  # 0-d stays 0-d
                    for path, a in weights]
        self.layers.append(Layer(class_name, name, cfg, [call or Node(args)], weights_))
        ref = TensorRef(name, 0, 0)
        if node is not None:
            target = out if out is not None else node.outputs[0]
            self.origin[name] = (target.name or "", node.name or node.op_type)
        if out is not None:
            self.bind(out, ref)
        return ref

    def output(self, ref: TensorRef, i: int = 0) -> None:
        """Bind the current node's output ``i`` to ``ref``."""
        node = self._current()
        self.bind(node.outputs[i], ref)
        if ref.layer not in self.origin or self.origin[ref.layer][0] == "":
            self.origin[ref.layer] = (node.outputs[i].name or "", node.name or "")

    def _current(self) -> ir.Node:
        if self.node is None:  # a bug in a rule or pattern, not a problem of the model
            raise RuntimeError("a node's output is bound while no node is being raised")
        return self.node

    def fuse(self, inner: list[ir.Node], last: ir.Node, class_name: str, config: dict,
             inputs: list[ir.Value], weights: Sequence[tuple[str, np.ndarray]] = ()) -> None:
        """Claim a subgraph that is one Keras layer (a pattern's find): the ``inner`` nodes are
        absorbed, and ``last`` is raised as ``class_name`` over ``inputs`` (several: the list
        argument of a merge layer)."""
        self.absorbed.update(id(n) for n in inner)

        def emit(ctx: Ctx, node: ir.Node) -> None:
            refs = [ctx.ref(v) for v in inputs]
            ctx.output(ctx.layer(class_name, config, refs if len(refs) > 1 else refs[0],
                                 weights=weights))

        self.fused[id(last)] = emit

    def constant(self, value: np.ndarray) -> TensorRef:
        """A Keras tensor holding ``value`` (shape without the batch) for every sample.

        Keras layers take no constant inputs, so the constant is computed from the model's
        first float input: global pooling, then Dense layers with zero kernels whose biases are
        1 and then ``value`` (0 * x + b is b exactly for finite x; a NaN or Inf input makes the
        constant NaN too).
        """
        value = np.asarray(value, np.float32)
        if self._ones is None:
            self._ones = self._make_ones()
        ref = self.layer("Dense", {"units": int(value.size), "activation": "linear",
                                   "use_bias": True}, self._ones, suffix="const",
                         weights=[("kernel", np.zeros((1, value.size), np.float32)),
                                  ("bias", value.reshape(-1))])
        if value.ndim != 1:
            ref = self.layer("Reshape", {"target_shape": list(value.shape)}, ref,
                             suffix="const_shape")
        return ref

    def _make_ones(self) -> TensorRef:
        for x in self.graph.inputs:
            if x.dtype != ir.DataType.FLOAT or id(x) not in self.tensors:
                continue
            ref = self.tensors[id(x)]
            shape = self.input_shapes.get(id(x))
            if shape is None:
                continue
            rank = len(shape)
            if rank > 2:
                if rank > 5:
                    continue
                ref = self.layer(f"GlobalAveragePooling{rank - 2}D",
                                 {"data_format": "channels_last", "keepdims": False}, ref,
                                 suffix="ones_pool")
            features = shape[-1]
            if features is None:
                continue
            return self.layer("Dense", {"units": 1, "activation": "linear", "use_bias": True},
                              ref, suffix="ones",
                              weights=[("kernel", np.zeros((features, 1), np.float32)),
                                       ("bias", np.ones(1, np.float32))])
        raise self.refuse("a constant operand needs a float model input of known feature size "
                          "to be computed from")

    def refuse(self, why: str) -> UnsupportedError:
        """The error saying why the current node has no Keras form (to raise)."""
        node = self.node
        where = f"{node.op_type} node {node.name!r}" if node is not None else "the graph"
        return UnsupportedError(f"{where}: {why}", layer=node.name if node is not None else None)

    def malformed(self, why: str) -> FormatError:
        """The node breaks its op's own rules (ONNX's checker does not look at shapes)."""
        node = self.node
        where = f"{node.op_type} node {node.name!r}" if node is not None else "the graph"
        return FormatError(f"{where}: {why}")


# --- small shared helpers -----------------------------------------------------------------------

def static(dims: Sequence[int | None]) -> list[int] | None:
    """``dims`` where every one is known, else None."""
    known = [d for d in dims if d is not None]
    return known if len(known) == len(dims) else None


def spatial_pads(pads: list[int] | None, n: int) -> list[tuple[int, int]]:
    """ONNX's ``pads`` (all begins, then all ends) as (begin, end) per spatial axis."""
    pads = list(pads or [0] * (2 * n))
    return [(int(pads[i]), int(pads[i + n])) for i in range(n)]


def crop_axis(ctx: Ctx, ref: TensorRef, dims: list, axis: int, lo: int, hi: int,
              suffix: str = "") -> tuple[TensorRef, list]:
    """Crop ``lo``/``hi`` cells off one non-batch axis of a static-shape tensor (Cropping2D is
    the one cropping layer tfjs-layers also has). Returns (ref, new dims)."""
    return _on_axis(ctx, ref, dims, axis, ("Cropping2D", "cropping", "crop"), lo, hi,
                    dims[axis] - lo - hi, suffix)


def pad_axis(ctx: Ctx, ref: TensorRef, dims: list, axis: int, lo: int, hi: int,
             suffix: str = "") -> tuple[TensorRef, list]:
    """Zero-pad one non-batch axis of a static-shape tensor (tfjs-layers has ZeroPadding2D
    only). Returns (ref, new dims)."""
    return _on_axis(ctx, ref, dims, axis, ("ZeroPadding2D", "padding", "pad"), lo, hi,
                    dims[axis] + lo + hi, suffix)


def _on_axis(ctx: Ctx, ref: TensorRef, dims: list, axis: int, layer: tuple[str, str, str],
             lo: int, hi: int, size: int, suffix: str) -> tuple[TensorRef, list]:
    """A Reshape to [batch, before, axis, after], ``layer`` (class, config key, suffix) acting
    channels-first on axis 2 only, and a Reshape back to the axis's new ``size``."""
    cls, key, tag = layer
    before = int(np.prod(dims[1:axis], dtype=np.int64))
    after = int(np.prod(dims[axis + 1:], dtype=np.int64))
    y = ctx.layer("Reshape", {"target_shape": [before, dims[axis], after]}, ref,
                  suffix=f"{suffix}to4d")
    y = ctx.layer(cls, {key: [[lo, hi], [0, 0]], "data_format": "channels_first"}, y,
                  suffix=f"{suffix}{tag}")
    out = [*dims[:axis], size, *dims[axis + 1:]]
    return ctx.layer("Reshape", {"target_shape": out[1:]}, y, suffix=f"{suffix}back"), out


def reduction_axes(ctx: Ctx, node: ir.Node) -> list[int] | None:
    """A reduction's axes as given: the attribute (opset < 18) or a constant input; None for
    all axes, or axes computed at run time."""
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        c = ctx.const(node.inputs[1])
        return None if c is None else [int(a) for a in np.reshape(c, -1)]
    axes = attr(node, "axes")
    return None if axes is None else [int(a) for a in axes]


def runtime_zeros(v: ir.Value | None) -> bool:
    """Zeros whose shape is only known at run time: ConstantOfShape (value 0) or an Expand of
    a zero constant, as PyTorch exports ``torch.zeros(layers, x.size(0), hidden)``, possibly
    given a direction axis (tf2onnx's ``Unsqueeze`` of Keras's ``zeros``)."""
    node = v.producer() if v is not None else None
    while node is not None and node.op_type in ("Cast", "Identity", "Unsqueeze", "Squeeze"):
        source = optional_input(node, 0)
        node = source.producer() if source is not None else None
    if node is None:
        return False
    if node.op_type == "ConstantOfShape":
        value = node.attributes.get("value")
        return value is None or not np.any(value.value.numpy())
    if node.op_type == "Concat":  # tf2onnx's initial states of two directions
        return bool(node.inputs) and all(runtime_zeros(v) or _zero_const(v) for v in node.inputs)
    if node.op_type == "Expand":
        fill = optional_input(node, 0)
        tensor = fill.const_value if fill is not None and is_const(fill) else None
        return tensor is not None and not np.any(tensor.numpy())
    return False


def _zero_const(v: ir.Value | None) -> bool:
    tensor = v.const_value if v is not None and is_const(v) else None
    return tensor is not None and not np.any(tensor.numpy())


def padding_layer(ctx: Ctx, x: TensorRef, pads: list[tuple[int, int]], *,
                  suffix: str = "pad", shape: list | None = None) -> TensorRef:
    """Zero padding of the spatial axes of a channels-last ``x`` (``shape``: its Keras shape,
    needed for 3-D padding in tfjs-layers, which has no ZeroPadding3D)."""
    n = len(pads)
    if n not in (1, 2, 3):
        raise ctx.refuse(f"{n}-D padding has no Keras layer")
    if n == 3 and ctx.for_tfjs:
        if shape is None or any(d is None for d in shape[1:]):
            raise ctx.refuse("3-D padding of a tensor of unknown shape: tfjs-layers has no "
                             "ZeroPadding3D")
        dims = list(shape)
        for axis, (lo, hi) in enumerate(pads, start=1):
            if (lo, hi) != (0, 0):
                x, dims = pad_axis(ctx, x, dims, axis, lo, hi, suffix=f"{suffix}{axis}_")
        return x
    padding: list[int] | list[list[int]]
    if n == 1:
        padding = list(pads[0])
    else:
        padding = [list(p) for p in pads]
    return ctx.layer(f"ZeroPadding{n}D", {"padding": padding, "data_format": "channels_last"}
                     if n > 1 else {"padding": padding}, x, suffix=suffix)
