"""The executors a parity check runs: the NumPy Keras reference and onnxruntime.

Each engine knows its inputs (names, shapes with None for free dimensions, dtypes) and runs on a
list of arrays in input order. Seeded inputs respect each input's dtype and range: an integer
input that feeds an Embedding gets indices below its vocabulary size.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import FormatError, UnsupportedError
from ..models import LayersModel, keras_graph, keras_shapes, tfjs_semantics


@dataclass
class InputSpec:
    """One model input: name, shape (None for a free dimension), dtype and, for an integer
    input, the exclusive upper bound of the values to generate (if any)."""

    name: str
    shape: list[int | None]
    dtype: str
    high: int | None = None  # exclusive upper bound for integer inputs
    # an integer scalar the graph compares with constants (Equal): those constants, the values
    # a model that switches on it takes (a sample rate: silero-vad's sr == 16000)
    values: tuple[int, ...] = ()


class Engine(Protocol):
    """An executor a parity check runs: its inputs, its output names, and a run on arrays."""

    label: str

    def inputs(self) -> list[InputSpec]:
        """The model's inputs, in order."""

    def output_names(self) -> list[str]:
        """The model's output names, in order."""

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """The model's outputs on ``arrays`` (one per input, in input order)."""


def run_many(engine: Engine, feeds: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """``engine.run`` on each feed, in order (in one go where the engine can batch runs)."""
    batched = getattr(engine, "run_many", None)
    if batched is not None:
        return list(batched(feeds))
    return [engine.run(arrays) for arrays in feeds]


def _tfjs_outputs(results: list) -> list[list[np.ndarray]]:
    """The outputs of a batch of real-tfjs runs (``tfjs_node``'s results), raising the first
    run's error."""
    outs = []
    for result in results:
        if result.error is not None:
            raise result.error
        if result.outputs is None:
            raise UnsupportedError("tfjs gave neither outputs nor an error")
        outs.append(result.outputs)
    return outs


def rounding(engine: Engine, arrays: list[np.ndarray],
             outputs: list[np.ndarray]) -> list[np.ndarray] | None:
    """What float32 rounding alone does to each output of ``engine`` on ``arrays``:
    ``|float32 result - float64 result|`` of a NumPy reference, where the engine has one
    (``outputs``: the engine's own result on ``arrays``); None for an engine without one."""
    exact = getattr(engine, "rounding", None)
    return None if exact is None else list(exact(arrays, outputs))


def deviation(computed: list[np.ndarray], exact: list[np.ndarray]) -> list[np.ndarray]:
    """``|computed - exact|`` per output in float64 (0 where either is not finite, and for
    outputs that are not numbers)."""
    out = []
    for c, e in zip(computed, exact):
        c, e = np.asarray(c), np.asarray(e)
        if c.shape != e.shape or c.dtype.kind not in "fiub" or e.dtype.kind not in "fiub":
            out.append(np.zeros(c.shape))
            continue
        c64, e64 = c.astype(np.float64), e.astype(np.float64)
        finite = np.isfinite(c64) & np.isfinite(e64)
        out.append(np.where(finite, np.abs(c64 - e64), 0.0))
    return out


class KerasReference:
    """modelport's NumPy executor of Keras layer semantics."""

    label = "keras-reference (NumPy)"

    def __init__(self, model: LayersModel) -> None:
        self.model = model

    def inputs(self) -> list[InputSpec]:
        """The model's inputs (as a functional graph); an integer input that feeds an Embedding
        is bounded by the smallest vocabulary it feeds."""
        graph = keras_graph.as_functional(self.model)
        specs = keras_shapes.input_specs(graph)
        out = []
        for ref, spec in zip(graph.inputs, specs):
            out.append(InputSpec(ref.layer, list(spec.shape), spec.dtype,
                                 _vocabulary(graph, ref.layer)))
        return out

    def output_names(self) -> list[str]:
        """The names of the layers whose outputs the model returns, in order."""
        graph = keras_graph.as_functional(self.model)
        return [r.layer for r in graph.outputs]

    def run(self, arrays: list[np.ndarray], *, capture: bool = False):
        """The NumPy reference's outputs on ``arrays``; with ``capture``, its whole result
        (every tensor of the graph)."""
        from .keras_reference import run

        result = run(self.model, list(arrays), capture=capture)
        return result if capture else result.outputs

    def rounding(self, arrays: list[np.ndarray], outputs: list[np.ndarray]
                 ) -> list[np.ndarray]:
        """``|outputs - the same model computed in float64|`` (see ``engines.rounding``)."""
        from .keras_reference import run
        from .precision import exact

        with exact(jitter=True):
            wide = run(self.model, list(arrays)).outputs
        return deviation(outputs, wide)


class TfjsLayersEngine(KerasReference):
    """A TF.js layers-model: real @tensorflow/tfjs under Node (``tf.loadLayersModel``, strict,
    then ``predict``) when ``auto`` finds it or ``tfjs`` asks for it, else the NumPy Keras
    reference; inputs, outputs and the rounding noise come from the reference either way. The
    reference runs the model as tfjs-layers computes it (``tfjs_semantics``): a config tfjs
    reads otherwise than Keras is judged by tfjs's numbers, not Keras's."""

    def __init__(self, model: LayersModel, *, path: str | os.PathLike | None = None,
                 engine: str = "auto") -> None:
        from . import tfjs_node

        if engine not in ("auto", "tfjs", "reference"):
            raise UnsupportedError(f"unknown engine {engine!r}; choose auto, tfjs or reference")
        super().__init__(tfjs_semantics.as_computed(model))
        missing = tfjs_node.available()
        if engine == "tfjs" and missing:
            raise UnsupportedError(f"--engine tfjs was requested but real tfjs cannot run: "
                                   f"{missing}")
        self.path = Path(path) if path is not None else None
        if self.path is not None and self.path.is_dir():
            self.path = self.path / "model.json"
        if engine == "tfjs" and self.path is None:
            raise UnsupportedError("real tfjs runs a layers-model from its model.json; this "
                                   "model has no path (use --engine reference)")
        self.real = engine != "reference" and not missing and self.path is not None
        self.label = ("tfjs (real @tensorflow/tfjs, Node.js, CPU backend)" if self.real
                      else KerasReference.label + (
                          f"; real tfjs did not run ({missing}): `modelport setup web` "
                          "installs it" if missing and engine == "auto" else ""))

    def run(self, arrays: list[np.ndarray], *, capture: bool = False):
        """The model's outputs on ``arrays`` from real tfjs, or the NumPy reference (always
        the reference with ``capture``: tfjs gives no intermediate tensors)."""
        if not self.real or capture:
            return super().run(arrays, capture=capture)
        return self.run_many([arrays])[0]

    def run_many(self, feeds: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
        """``run`` on each feed: real tfjs loads the model once for all of them."""
        if not self.real or self.path is None:
            return [self.run(arrays) for arrays in feeds]
        from . import tfjs_node

        names = [spec.name for spec in self.inputs()]
        results = tfjs_node.run_layers_batch([
            tfjs_node.LayersJob(self.path, list(zip(names, arrays))) for arrays in feeds])
        return _tfjs_outputs(results)

    def rounding(self, arrays: list[np.ndarray], outputs: list[np.ndarray]
                 ) -> list[np.ndarray]:
        """``|float32 - float64|`` of the NumPy reference (see ``engines.rounding``): real
        tfjs's own result is not the float32 side, so that a disagreement between tfjs and
        the reference is never taken for rounding."""
        if self.real:
            outputs = super().run(arrays)
        return super().rounding(arrays, outputs)


def _vocabulary(model: LayersModel, input_name: str) -> int | None:
    """The smallest input_dim of the Embeddings this input feeds, directly."""
    highs = [int(layer.config["input_dim"])
             for layer in model.layers if layer.class_name == "Embedding"
             for node in layer.inbound_nodes
             if any(r.layer == input_name for r in node.inputs())]
    return min(highs) if highs else None


class OnnxRuntime:
    """onnxruntime on a model file or serialized bytes."""

    def __init__(self, model: bytes | str | os.PathLike, *, device: str = "auto") -> None:
        from .onnxruntime import session

        self.session = session(model, device=device)
        self.label = f"onnxruntime {self.session.provider}" + (
            " (use_tf32=0, implicit-GEMM convolutions)"
            if self.session.provider == "CUDAExecutionProvider" else "")
        proto = _read_proto(model)  # (None: unreadable here; the session read it)
        self._bounds = _gather_bounds(proto) if proto is not None else {}
        self._values = compared_values(proto) if proto is not None else {}

    def inputs(self) -> list[InputSpec]:
        """The session's inputs (free dimensions None); an integer input used as Gather indices
        is bounded by the gathered table's first dimension, a type modelport cannot generate
        values for is refused."""
        out = []
        for i in self.session.session.get_inputs():
            shape = [d if isinstance(d, int) else None for d in i.shape]
            dtype = _ORT_TYPES.get(i.type)
            if dtype is None:
                raise UnsupportedError(f"ONNX input {i.name!r} has type {i.type}, which "
                                       "modelport cannot generate inputs for")
            out.append(InputSpec(i.name, shape, dtype, self._bounds.get(i.name),
                                 self._values.get(i.name, ()) if not shape else ()))
        return out

    def output_names(self) -> list[str]:
        """The session's output names, in order."""
        return self.session.output_names

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """The session's outputs on ``arrays`` (in input order)."""
        feeds = {spec.name: a for spec, a in zip(self.inputs(), arrays)}
        return self.session.run(feeds)


_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16",
              "tensor(double)": "float64", "tensor(int32)": "int32", "tensor(int64)": "int64",
              "tensor(bool)": "bool", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}


def _read_proto(model: bytes | str | os.PathLike):
    import onnx

    try:
        return onnx.load_from_string(model) if isinstance(model, bytes) else \
            onnx.load(os.fspath(model), load_external_data=False)
    except Exception:  # noqa: BLE001 - unreadable here means the session already failed
        return None


def compared_values(proto) -> dict[str, tuple[int, ...]]:
    """Integer graph inputs the main graph compares (``Equal``) with constants (an
    initializer or a ``Constant`` node): those constants, in order of use."""
    import onnx
    from onnx import numpy_helper

    consts = {i.name: i for i in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = node.attribute[0].t
    ints = {i.name for i in proto.graph.input if i.type.tensor_type.elem_type in (
        onnx.TensorProto.INT64, onnx.TensorProto.INT32)}
    out: dict[str, tuple[int, ...]] = {}
    for node in proto.graph.node:
        if node.op_type != "Equal" or len(node.input) != 2:
            continue
        for mine, other in (node.input, reversed(node.input)):
            if mine in ints and other in consts:
                try:
                    array = numpy_helper.to_array(consts[other])
                except Exception:  # noqa: BLE001 - (external data, not loaded here)
                    continue
                if array.size == 1 and int(array.reshape(-1)[0]) not in out.get(mine, ()):
                    out[mine] = (*out.get(mine, ()), int(array.reshape(-1)[0]))
    return out


def _gather_bounds(proto) -> dict[str, int]:
    """Graph inputs used as Gather indices (the gathered table's first dimension) or as OneHot
    indices (the depth)."""
    shapes = {i.name: list(i.dims) for i in proto.graph.initializer}
    bounds: dict[str, int] = {}
    inputs = {i.name for i in proto.graph.input}
    for node in proto.graph.node:
        if node.op_type == "Gather" and len(node.input) == 2 and node.input[1] in inputs \
                and node.input[0] in shapes and shapes[node.input[0]]:
            bounds[node.input[1]] = min(bounds.get(node.input[1], 1 << 62),
                                        shapes[node.input[0]][0])
    for name, depth in _one_hot_depths(proto, inputs).items():
        bounds[name] = min(bounds.get(name, 1 << 62), depth)
    return bounds


def _one_hot_depths(proto, inputs: set[str]) -> dict[str, int]:
    """Graph inputs read (directly or through a Cast, as tf2onnx writes ``tf.one_hot`` of a
    float input) as OneHot indices: the depth, from a constant initializer."""
    from onnx import numpy_helper

    consts = {i.name: i for i in proto.graph.initializer}
    casts = {n.output[0]: n.input[0] for n in proto.graph.node
             if n.op_type == "Cast" and n.input and n.input[0] in inputs}
    depths: dict[str, int] = {}
    for node in proto.graph.node:
        if node.op_type != "OneHot" or len(node.input) < 2 or node.input[1] not in consts:
            continue
        source = node.input[0] if node.input[0] in inputs else casts.get(node.input[0])
        depth = numpy_helper.to_array(consts[node.input[1]]).reshape(-1)
        if source is not None and depth.size == 1 and int(depth[0]) > 0:
            depths[source] = min(depths.get(source, 1 << 62), int(depth[0]))
    return depths


def inputs_from_file(path: str | os.PathLike, specs: list[InputSpec]) -> list[np.ndarray]:
    """Arrays from an ``.npz``: by input name (``name`` or ``input:name``), else in order."""
    return arrays_for(read_arrays(path), specs, path)


def read_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, by key (pickled objects refused); each member's declared
    shape is checked against its stored size, and the total against the memory budget,
    before NumPy allocates it (``_check_npz``)."""
    _check_npz(Path(path))
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as e:
        raise FormatError(f"cannot read inputs ({e})", file=Path(path)) from None


NPZ_MAX_RATIO = 200  # a member inflating past this from its compressed size is a bomb
NPZ_SLACK_BYTES = 1 << 20  # members this small are never refused for their ratio


def _check_npz(path: Path) -> None:
    """Refuse an ``.npz`` whose members declare more than they hold: a header's shape past the
    member's own size (np.load allocates the declared shape first), a member inflating more
    than NPZ_MAX_RATIO times, or arrays past the memory budget (``modelport.budget``)."""
    import zipfile

    from ..budget import require

    if not zipfile.is_zipfile(path):
        return  # np.load reports what it is not
    total = 0
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.file_size > NPZ_SLACK_BYTES and \
                        info.file_size > NPZ_MAX_RATIO * max(info.compress_size, 1):
                    raise FormatError(f"member {info.filename} expands {info.file_size} bytes "
                                      f"from {info.compress_size}: refused as a zip bomb",
                                      file=path)
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                            np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(fh, max_header_size=10000)
                    start = fh.tell()
                declared = math.prod(shape) * dtype.itemsize
                if declared > info.file_size - start:
                    raise FormatError(
                        f"member {info.filename} declares shape {list(shape)} of {dtype} "
                        f"({declared} bytes) but holds {info.file_size - start}", file=path)
                total += declared
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError,
            NotImplementedError) as e:
        raise FormatError(f"cannot read inputs ({str(e)[:160]})", file=path) from None
    require(total, f"the inputs in {path.name}")


def arrays_for(files: dict[str, np.ndarray], specs: list[InputSpec],
               path: str | os.PathLike) -> list[np.ndarray]:
    """The arrays of ``files`` for ``specs``: by input name (``name`` or ``input:name``), else
    in order when there are as many as inputs; each must fit its input's shape."""
    arrays = []
    ordered = list(files.values())
    for i, spec in enumerate(specs):
        array = files.get(spec.name, files.get(f"input:{spec.name}"))
        if array is None:
            if len(files) != len(specs):
                raise FormatError(f"no array named {spec.name!r} (found: {', '.join(files)})",
                                  file=Path(path))
            array = ordered[i]
        if array.ndim != len(spec.shape) or any(
                d is not None and d != s for d, s in zip(spec.shape, array.shape)):
            raise FormatError(f"input {spec.name!r} has shape {list(array.shape)}, the model "
                              f"takes {spec.shape}", file=Path(path))
        arrays.append(array.astype(spec.dtype, copy=False))
    return arrays


class TfjsGraphEngine:
    """A TF.js graph-model: real @tensorflow/tfjs under Node (``tfjs``), or modelport's NumPy
    executor of TF op semantics (``reference``); ``auto`` prefers real tfjs when present."""

    def __init__(self, graph, *, path: str | os.PathLike | None = None,
                 engine: str = "auto") -> None:
        from . import tfjs_node

        if engine not in ("auto", "tfjs", "reference"):
            raise UnsupportedError(f"unknown engine {engine!r}; choose auto, tfjs or reference")
        missing = tfjs_node.available()
        if engine == "tfjs" and missing:
            raise UnsupportedError(f"--engine tfjs was requested but real tfjs cannot run: "
                                   f"{missing}")
        self.graph = graph
        # a graph-model is named by its folder or its model.json; Node reads the file
        self.path = Path(path) if path is not None else None
        if self.path is not None and self.path.is_dir():
            self.path = self.path / "model.json"
        self.real = engine == "tfjs" or (engine == "auto" and not missing
                                         and self.path is not None)
        self.label = ("tfjs (real @tensorflow/tfjs, Node.js, CPU backend)" if self.real
                      else "tfjs-reference (NumPy TF ops)" + (
                          f"; real tfjs did not run ({missing}): `modelport setup web` "
                          "installs it" if missing and engine == "auto" else ""))

    def inputs(self) -> list[InputSpec]:
        """The graph's inputs by tensor (int64 ones as int32, an unknown shape as [None]); an
        integer input that GatherV2 reads as indices is bounded by the table's first dimension."""
        return [InputSpec(i.tensor, list(i.shape) if i.shape is not None else [None],
                          "int32" if i.dtype == "int64" else i.dtype,
                          _graph_bound(self.graph, i.tensor))
                for i in self.graph.inputs]

    def output_names(self) -> list[str]:
        """The graph's output signature keys, in order."""
        return [o.key for o in self.graph.outputs]

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """The graph's outputs on ``arrays``: real tfjs under Node on the model.json at ``path``,
        or the NumPy TF reference."""
        if self.real:
            from . import tfjs_node

            if self.path is None:
                raise UnsupportedError("real tfjs runs a graph-model from its model.json; this "
                                       "graph has no path (use --engine reference)")
            return tfjs_node.run_graph(self.path, [(i.tensor, a) for i, a in
                                                   zip(self.graph.inputs, arrays)],
                                       [o.tensor for o in self.graph.outputs])
        from .tfjs_reference import run

        return run(self.graph, list(arrays), [o.tensor for o in self.graph.outputs])

    def run_many(self, feeds: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
        """``run`` on each feed: real tfjs loads the model once for all of them."""
        if not self.real or self.path is None:
            return [self.run(arrays) for arrays in feeds]
        from . import tfjs_node

        tensors = [o.tensor for o in self.graph.outputs]
        results = tfjs_node.run_graph_batch([
            tfjs_node.GraphJob(self.path, [(i.tensor, a) for i, a in
                                           zip(self.graph.inputs, arrays)], tensors)
            for arrays in feeds])
        return _tfjs_outputs(results)

    def rounding(self, arrays: list[np.ndarray], outputs: list[np.ndarray]
                 ) -> list[np.ndarray]:
        """``|float32 - float64|`` of the NumPy TF reference on this graph (see
        ``engines.rounding``): real tfjs's own result is not the float32 side, so that a
        disagreement between tfjs and the reference is never taken for rounding."""
        from .precision import exact
        from .tfjs_reference import run

        tensors = [o.tensor for o in self.graph.outputs]
        narrow = run(self.graph, list(arrays), tensors) if self.real else outputs
        with exact(jitter=True):
            wide = run(self.graph, list(arrays), tensors)
        return deviation(narrow, wide)


def _graph_bound(graph, tensor: str) -> int | None:
    """An integer input read by GatherV2 as indices: the gathered table's first dimension."""
    from ..models.tfjs_graph import input_name

    name = input_name(tensor)[0]
    highs = []
    for node in graph.nodes:
        if node.op in ("GatherV2", "ResourceGather") and len(node.inputs) >= 2 and \
                input_name(node.inputs[1])[0] == name:
            table = graph.weights.get(input_name(node.inputs[0])[0])
            if table is not None and table.ndim:
                highs.append(int(table.shape[0]))
    return min(highs) if highs else None
