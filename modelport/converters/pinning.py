"""Pinned input shapes and cut outputs: the source model made what the user asked for, before
any route runs (``--input-shape``, ``--batch``, ``--outputs``; tf2onnx's ``--inputs
name[1,3,640,640]`` and ``--outputs``, onnx2tf's ``-ois``, tensorflowjs_converter's
``--output_node_names``).

* ``parse_input_shapes`` reads the specs (``NAME=D0,D1,...``, ``NAME[D0,D1,...]``, or the dims
  alone for a model with one input); ``resolve`` checks them against the model's inputs (an
  unknown name, a wrong rank, a conflict with a static dim, a size below 1 is a ``UsageError``
  naming the input and its known shape) and adds ``--batch`` for every input whose first dim is
  dynamic.
* ``pin_onnx`` writes the dims into the graph inputs, forgets the stale symbolic shapes inside
  the graph, runs ONNX shape inference (with data propagation) and folds constants, so that what
  was computed from ``Shape`` at run time (Shape -> Gather -> Concat -> Reshape, ConstantOfShape,
  Range, Expand, ...) becomes constants. ``pin_graph`` writes them into a TF.js graph-model's
  signature and Placeholders; its route to ONNX then folds the same way.
* ``cut_onnx`` / ``cut_graph`` make chosen values the outputs and drop what no longer feeds
  them.

Both record what they did in the model (``PINNED_KEY``, ``CUT_KEY``: ONNX metadata_props, a
graph-model's userDefinedMetadata), so the written file says which shapes it was made for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ..errors import UsageError
from ..models.tfjs_graph import TensorInfo, TfjsGraph, a_shape, input_name

PINNED_KEY = "modelport.input_shapes"
CUT_KEY = "modelport.outputs"
LISTED = 8  # value names an unknown --outputs name lists
_SPEC = re.compile(r"^(?:(?P<name>.+?)(?:=|\[))?(?P<dims>[^=\[\]]*)\]?$")

Pinned = tuple[int | None, ...]  # None: a dim left free (``--batch`` pins the first dim only)


@dataclass(frozen=True)
class InputShape:
    """One ``--input-shape`` spec as given: the input's name (None: the model's only input)
    and its dims."""

    name: str | None
    dims: Pinned  # None only where a conversion hands its check a dim it left free

    def __str__(self) -> str:
        dims = ",".join("?" if d is None else str(d) for d in self.dims)
        return dims if self.name is None else f"{self.name}={dims}"


def parse_input_shapes(specs: Iterable[str | InputShape | tuple[str, Sequence[int]]]
                       ) -> tuple[InputShape, ...]:
    """Specs as ``InputShape``s: ``NAME=D0,D1,...``, ``NAME[D0,D1,...]`` (tf2onnx's form),
    ``D0,D1,...`` (a model with one input), or ``(name, dims)`` pairs from the library; a
    malformed one is a ``UsageError``."""
    out = []
    for spec in specs:
        if isinstance(spec, InputShape):
            out.append(spec)
            continue
        if isinstance(spec, tuple):
            name, dims = spec
            out.append(InputShape(name, _checked_dims(str(spec), list(dims))))
            continue
        text = str(spec).strip()
        m = _SPEC.match(text)
        if not m or ("[" in text) != text.endswith("]"):
            raise UsageError(f"--input-shape {text!r} is not NAME=D0,D1,... (e.g. "
                             "images=1,3,640,640)")
        items = [d.strip() for d in m.group("dims").replace("x", ",").split(",") if d.strip()]
        try:
            dims = [int(d) for d in items]
        except ValueError:
            raise UsageError(f"--input-shape {text!r}: the dims must be integers (e.g. "
                             "images=1,3,640,640)") from None
        name = m.group("name")
        out.append(InputShape(name.strip() if name else None, _checked_dims(text, dims)))
    return tuple(out)


def _checked_dims(text: str, dims: list[int]) -> Pinned:
    if not dims:
        raise UsageError(f"--input-shape {text!r} gives no dims (e.g. images=1,3,640,640)")
    if any(d < 1 for d in dims):
        raise UsageError(f"--input-shape {text!r}: every dim must be at least 1")
    return tuple(int(d) for d in dims)


def show(shape: Sequence[int | str | None] | None) -> str:
    """A known shape as the messages print it: ``[N, 3, H, W]`` (``?`` for an unnamed free dim)."""
    if shape is None:
        return "[unknown rank]"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def resolve(specs: Sequence[InputShape], batch: int | None,
            inputs: Sequence[tuple[str, Sequence[int | str | None] | None]], *,
            aliases: dict[str, str] | None = None, flag: str = "--input-shape"
            ) -> dict[str, Pinned]:
    """The pinned dims by input name, from ``specs`` and ``batch`` against the model's
    ``inputs`` (name, shape with a str or None for a free dim); ``aliases`` maps other names
    of an input (a TF.js tensor ``x:0`` or its signature key) to the name used here.

    An input not named keeps its shape, but for ``batch``, which pins its first dim where that
    is free. A spec may repeat a static dim, never change it."""
    known = dict(inputs)
    listing = "; ".join(f"{name} {show(shape)}" for name, shape in inputs)
    out: dict[str, Pinned] = {}
    for spec in specs:
        name = spec.name
        if name is None:
            if len(inputs) != 1:
                raise UsageError(f"{flag} {spec} names no input, and the model has "
                                 f"{len(inputs)}: {listing}", hint=f"write {flag} NAME=D0,D1,...")
            name = inputs[0][0]
        name = (aliases or {}).get(name, name)
        if name not in known:
            raise UsageError(f"{flag} {spec}: the model has no input {spec.name!r}; its "
                             f"inputs: {listing}")
        shape = known[name]
        if shape is not None and len(shape) != len(spec.dims):
            raise UsageError(f"{flag} {spec}: input {name!r} has rank {len(shape)} "
                             f"{show(shape)}, not {len(spec.dims)}")
        for i, (d, want) in enumerate(zip(shape or (), spec.dims)):
            if isinstance(d, int) and want is not None and d != want:
                raise UsageError(f"{flag} {spec}: dim {i} of input {name!r} is {d} in the model "
                                 f"{show(shape)}, not {want}")
        if name in out and out[name] != spec.dims:
            raise UsageError(f"{flag} gives input {name!r} two shapes: "
                             f"{show(out[name])} and {show(spec.dims)}")
        out[name] = spec.dims
    if batch is not None:
        for name, shape in inputs:
            if name in out:
                if shape and not isinstance(shape[0], int) and out[name][0] != batch:
                    raise UsageError(f"--batch {batch} and {flag} {name}={show(out[name])} "
                                     f"disagree on the batch of input {name!r}")
                continue
            if shape and not isinstance(shape[0], int):
                out[name] = tuple(batch if i == 0 else (d if isinstance(d, int) else None)
                                  for i, d in enumerate(shape))
    return out


def free_dims(shape: Sequence[int | str | None] | None) -> list[int]:
    """The positions of the dims that are not a known size."""
    return [i for i, d in enumerate(shape or ()) if not isinstance(d, int)]


# --- ONNX ---------------------------------------------------------------------------------------

def onnx_inputs(model) -> list[tuple[str, list[int | str | None] | None]]:
    """An ``onnx_ir.Model``'s graph inputs (initializers listed as inputs are not) with their
    shapes: a str for a named free dim, None for an unnamed one."""
    out = []
    for v in model.graph.inputs:
        if v.const_value is not None:
            continue
        # a dim_value of -1 (exporters write it) is as free as a named one
        shape = None if v.shape is None else [
            (d if d >= 0 else None) if isinstance(d, int) else getattr(d, "value", None)
            for d in v.shape]
        out.append((v.name or "", shape))
    return out


def pin_onnx(model, pinned: dict[str, Pinned]):
    """``model`` (an ``onnx_ir.Model``) with its inputs' dims pinned, shapes inferred again and
    constants folded (see the module); returns the new model (``model`` is left as it was)."""
    import onnx_ir as ir

    from .onnx_normalize import fold_constants, normalize

    # ``normalize`` builds a new model (sharing the weights); the shapes changed here for it
    # are put back afterwards: the check runs the source as it was read
    graph = model.graph
    saved = [(v, v.shape) for v in graph.inputs]
    for v in graph.inputs:
        if v.name in pinned:
            old = list(v.shape) if v.shape is not None else [None] * len(pinned[v.name])
            v.shape = ir.Shape([(None if isinstance(o, int) and o < 0 else o) if d is None
                                else d for d, o in zip(pinned[v.name], old)])
    # a symbolic dim inferred from the free input would survive inference unchanged
    inner = {id(v) for v in graph.inputs}
    for v in [*(out for node in graph for out in node.outputs), *graph.outputs]:
        if id(v) not in inner and v.shape is not None and not all(
                isinstance(d, int) for d in v.shape):
            saved.append((v, v.shape))
            v.shape = None
    try:
        result = normalize(model)
    finally:
        for v, shape in saved:
            v.shape = shape
    _check_sizes(result, pinned)
    fold_constants(result)
    _settle(result)
    record(result, PINNED_KEY, {name: list(dims) for name, dims in pinned.items()})
    return result


def _settle(model, rounds: int = 3) -> None:
    """Infer and fold again while folding reveals more: an ``If`` on a shape that the first
    fold made constant (PyTorch's ``if x.dim() == 3: x = x.squeeze(0)``) is inlined only then,
    and the values after it still carry the symbolic dims inferred before."""
    from .onnx_normalize import fold_constants, reinfer

    for _ in range(rounds):
        stale = [v for node in model.graph for v in node.outputs
                 if v.shape is not None and not all(isinstance(d, int) for d in v.shape)]
        if not stale:
            return
        for v in stale:
            v.shape = None
        reinfer(model)
        if not fold_constants(model):
            return


_WINDOWED = {"Conv", "ConvInteger", "MaxPool", "AveragePool", "LpPool"}


def _check_sizes(model, pinned: dict[str, Pinned]) -> None:
    """Refuse a pin that gives a convolution or pool a window larger than its (padded) input:
    ONNX's inference and onnxruntime still give it an output, TF and Keras none, so the sizes
    cannot be the model's."""
    problem = window_problem(model)
    if problem is not None:
        given = "; ".join(f"{n}={','.join('?' if d is None else str(d) for d in v)}"
                          for n, v in pinned.items())
        raise UsageError(f"--input-shape {given}: the model cannot run at these sizes: "
                         f"{problem}", hint="pin larger sizes (the model's documentation or "
                                            "metadata names the size it was made for)")


def window_problem(model) -> str | None:
    """Where an ONNX model's (``onnx_ir``, shapes inferred) convolution or pool has a window
    larger than its padded input, which node and sizes; else None."""
    for node in model.graph:
        if node.op_type not in _WINDOWED or not node.inputs or node.inputs[0] is None:
            continue
        x = node.inputs[0].shape
        window = _window(node)
        if x is None or window is None or ("auto_pad" in node.attributes and
                                           node.attributes["auto_pad"].value
                                           not in ("NOTSET", "VALID")):
            continue
        spatial = list(x)[2:]
        pads = list(node.attributes["pads"].value) if "pads" in node.attributes else \
            [0] * (2 * len(spatial))
        for i, (size, k) in enumerate(zip(spatial, window)):
            if not isinstance(size, int) or i + len(spatial) >= len(pads):
                continue
            if size + pads[i] + pads[i + len(spatial)] < k:
                return (f"{node.op_type} node {node.name!r} has a window of {k} on an axis of "
                        f"{size} (input {show(list(x))})")
    return None


def _window(node) -> list[int] | None:
    """A convolution's or pool's dilated window per spatial axis, where it is known."""
    attrs = node.attributes
    kernel = list(attrs["kernel_shape"].value) if "kernel_shape" in attrs else None
    if kernel is None and len(node.inputs) > 1 and node.inputs[1] is not None \
            and node.inputs[1].shape is not None:
        kernel = list(node.inputs[1].shape)[2:]
    if not kernel or not all(isinstance(k, int) for k in kernel):
        return None
    dilations = list(attrs["dilations"].value) if "dilations" in attrs else [1] * len(kernel)
    return [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]


def record(model, key: str, value: object) -> None:
    """Note ``value`` (as JSON) in an ONNX model's metadata_props under ``key``."""
    model.metadata_props[key] = json.dumps(value, separators=(",", ":"))


def onnx_values(model) -> list[str]:
    """The names of the values an ONNX model computes, in graph order (what --outputs takes)."""
    names = [v.name for v in model.graph.inputs if v.name]
    names += [out.name for node in model.graph for out in node.outputs if out.name]
    return names


def cut_onnx(model, names: Sequence[str]):
    """``model`` (an ``onnx_ir.Model``, changed in place and returned) whose outputs are the
    values ``names``, in that order, without the nodes and initializers nothing needs then.
    The graph inputs stay (a model's interface keeps its inputs, as tf2onnx keeps them)."""
    graph = model.graph
    by_name = {v.name: v for v in graph.inputs if v.name}
    by_name.update({out.name: out for node in graph for out in node.outputs if out.name})
    missing = [n for n in names if n not in by_name]
    if missing:
        _unknown_outputs(missing, onnx_values(model))
    wanted = [by_name[n] for n in names]
    needed: set[int] = set()
    stack = [v.producer() for v in wanted if v.producer() is not None]
    while stack:
        node = stack.pop()
        if node is None or id(node) in needed:
            continue
        needed.add(id(node))
        stack.extend(v.producer() for v in node.inputs if v is not None)
        for attr in node.attributes.values():  # values a subgraph reads from outside
            for sub in _subgraphs(attr):
                stack.extend(v.producer() for n in sub for v in n.inputs if v is not None)
    graph.outputs.clear()
    graph.outputs.extend(wanted)
    for node in reversed(list(graph)):
        if id(node) not in needed:
            graph.remove(node, safe=False)
    for name, v in list(graph.initializers.items()):
        if not v.uses() and not v.is_graph_output():
            graph.initializers.pop(name)
    if any(v.type is None for v in wanted):  # an output must be typed: ONNX's inference
        from .onnx_normalize import reinfer

        reinfer(model)
    record(model, CUT_KEY, list(names))
    return model


def _subgraphs(attr) -> list:
    import onnx_ir as ir

    if attr.type == ir.AttributeType.GRAPH:
        return [attr.value]
    if attr.type == ir.AttributeType.GRAPHS:
        return list(attr.value)
    return []


def _unknown_outputs(missing: list[str], available: list[str]) -> None:
    shown = ", ".join(available[-LISTED:])
    more = f" (the last {LISTED} of {len(available)})" if len(available) > LISTED else ""
    raise UsageError(f"--outputs: the model computes no value "
                     f"{', '.join(repr(m) for m in missing)}; values it computes{more}: {shown}",
                     hint="`modelport inspect MODEL --values` lists them all")


# --- TF.js graph-models -------------------------------------------------------------------------

def graph_inputs(graph: TfjsGraph) -> tuple[list[tuple[str, list[int | None] | None]],
                                            dict[str, str]]:
    """A graph-model's signature inputs by key with their shapes, and every other name the
    user may give one by (its tensor ``x:0``, its node ``x``) mapped to the key."""
    inputs, aliases = [], {}
    for info in graph.inputs:
        inputs.append((info.key, info.shape))
        aliases[info.tensor] = info.key
        aliases[input_name(info.tensor)[0]] = info.key
    return inputs, aliases


def pin_graph(graph: TfjsGraph, pinned: dict[str, Pinned]) -> TfjsGraph:
    """A copy of ``graph`` whose signature inputs (by key) and their Placeholders carry the
    pinned dims; the constant folding happens where the graph is mapped to ONNX."""
    nodes = list(graph.nodes)
    inputs = []
    for info in graph.inputs:
        dims = pinned.get(info.key)
        if dims is None:
            inputs.append(info)
            continue
        inputs.append(TensorInfo(info.key, info.tensor, info.dtype, list(dims)))
        name = input_name(info.tensor)[0]
        for k, node in enumerate(nodes):
            if node.name == name and node.op in ("Placeholder", "PlaceholderWithDefault"):
                nodes[k] = replace(node, attrs={**node.attrs, "shape": a_shape(list(dims))})
    extra = _noted(graph.extra, PINNED_KEY, {k: list(v) for k, v in pinned.items()})
    return replace(graph, nodes=nodes, inputs=inputs, extra=extra)


def _noted(extra: dict, key: str, value: object) -> dict:
    meta = dict(extra.get("userDefinedMetadata") or {})
    meta[key] = value
    return {**extra, "userDefinedMetadata": meta}


def graph_values(graph: TfjsGraph) -> list[str]:
    """The tensors a graph-model's nodes compute (``name:0``; what --outputs takes)."""
    return [f"{n.name}:0" for n in graph.nodes if n.op not in ("Const", "NoOp")]


def cut_graph(graph: TfjsGraph, names: Sequence[str]) -> TfjsGraph:
    """A copy of ``graph`` whose outputs are ``names`` (a signature key, a tensor ``x:k`` or a
    node name for its output 0), without the nodes and weights nothing needs then."""
    keys = {o.key: o for o in graph.outputs}
    by_node = {n.name: n for n in graph.nodes}
    outputs: list[TensorInfo] = []
    missing = []
    for name in names:
        if name in keys:
            outputs.append(keys[name])
            continue
        node_name, k = input_name(name)
        node = by_node.get(node_name)
        if node is None:
            missing.append(name)
            continue
        from ..models.tfjs_graph import attr_type

        tensor = f"{node_name}:{k}"
        outputs.append(TensorInfo(name, tensor, attr_type(node, "T", "float32") or "float32",
                                  None))
    if missing:
        _unknown_outputs(missing, graph_values(graph))
    needed: set[str] = set()
    stack = [input_name(o.tensor)[0] for o in outputs]
    while stack:
        name = stack.pop()
        if name in needed or name not in by_node:
            continue
        needed.add(name)
        stack.extend(input_name(i.lstrip("^"))[0] for i in by_node[name].inputs)
    nodes = [n for n in graph.nodes if n.name in needed or n.op == "Placeholder"]
    weights = {k: v for k, v in graph.weights.items() if k in needed}
    quantization = {k: v for k, v in graph.quantization.items() if k in needed}
    extra = _noted(graph.extra, CUT_KEY, list(names))
    return replace(graph, nodes=nodes, outputs=outputs, weights=weights,
                   quantization=quantization, extra=extra)
