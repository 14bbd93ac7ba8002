"""The cases of ONNX's shipped model suites, with their inputs and expected outputs.

Three collections live in the ``onnx`` package under ``backend/test/data``:

- ``pytorch-converted`` and ``pytorch-operator``: one folder per case with ``model.onnx`` and
  ``test_data_set_<k>/input_<i>.pb`` / ``output_<i>.pb`` (TensorProtos).
- ``light``: ``light_<name>.onnx`` plus ``light_<name>_output_0.pb`` only. Their inputs are not
  stored: ONNX's backend runner makes them with ``Runner.generate_dummy_data(x, seed=0,
  random=False)`` (a ramp ``arange(n)/n``). We call that same function so the recorded outputs
  belong to our inputs; ``tests/onnx_suite/report.py --check-ort`` confirms it with onnxruntime.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

DATA = Path(onnx.__file__).resolve().parent / "backend" / "test" / "data"
COLLECTIONS = ("light", "pytorch-converted", "pytorch-operator")


@dataclass
class SuiteCase:
    """One model of a suite: where it is and how to get its data (loaded on demand)."""

    id: str  # "<collection>/<name>"
    collection: str
    name: str
    model_path: Path
    data_dir: Path | None  # test_data_set_0 for folder cases; None for light models
    expected_path: Path | None = None  # light models: the stored output_0
    _io: tuple | None = field(default=None, repr=False)

    @functools.cached_property
    def proto(self) -> onnx.ModelProto:
        return onnx.load(str(self.model_path))

    @functools.cached_property
    def ops(self) -> list[str]:
        """Op types of the model (subgraphs included), domain-qualified outside ai.onnx."""
        return sorted(_ops(self.proto.graph))

    @property
    def opset(self) -> int:
        return next((o.version for o in self.proto.opset_import if o.domain in ("", "ai.onnx")),
                    0)

    def graph_inputs(self) -> list[onnx.ValueInfoProto]:
        """Graph inputs that are fed (IR < 4 also lists initializers as inputs)."""
        inits = {i.name for i in self.proto.graph.initializer}
        return [v for v in self.proto.graph.input if v.name not in inits]

    def io(self) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
        """(inputs, expected outputs), each as (ONNX tensor name, array) in graph order."""
        if self._io is None:
            self._io = self._load_io()
        return self._io

    def _load_io(self):
        fed = self.graph_inputs()
        outs = list(self.proto.graph.output)
        if self.data_dir is None:
            runner = _runner_class()
            inputs = [(v.name, runner.generate_dummy_data(v, seed=0, name=self.name,
                                                          random=False)) for v in fed]
            expected = [(outs[0].name, _read_tensor(self.expected_path))]
            return inputs, expected
        n_in = len(list(self.data_dir.glob("input_*.pb")))
        n_out = len(list(self.data_dir.glob("output_*.pb")))
        if n_in != len(fed) or n_out != len(outs):
            raise ValueError(f"{self.id}: {n_in} inputs / {n_out} outputs stored for a graph "
                             f"with {len(fed)} inputs / {len(outs)} outputs")
        inputs = [(v.name, _read_tensor(self.data_dir / f"input_{i}.pb"))
                  for i, v in enumerate(fed)]
        expected = [(v.name, _read_tensor(self.data_dir / f"output_{i}.pb"))
                    for i, v in enumerate(outs)]
        return inputs, expected


def _runner_class():
    # Imported late: the backend runner pulls in unittest machinery nobody else needs.
    from onnx.backend.test.runner import Runner

    return Runner


def _read_tensor(path: Path) -> np.ndarray:
    tensor = onnx.TensorProto()
    tensor.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(tensor)


def _ops(graph: onnx.GraphProto) -> set[str]:
    found = set()
    for node in graph.node:
        found.add(node.op_type if node.domain in ("", "ai.onnx") else
                  f"{node.domain}:{node.op_type}")
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                found |= _ops(sub)
    return found


def discover(collection: str) -> list[SuiteCase]:
    """Every case of ``collection``, sorted by name."""
    root = DATA / collection
    if collection == "light":
        cases = []
        for model in sorted(root.glob("light_*.onnx")):
            name = model.stem[len("light_"):]
            cases.append(SuiteCase(f"light/{name}", collection, name, model, None,
                                   root / f"{model.stem}_output_0.pb"))
        return cases
    cases = []
    for folder in sorted(p for p in root.iterdir() if (p / "model.onnx").is_file()):
        data = sorted(folder.glob("test_data_set_*"))
        if not data:
            raise ValueError(f"{folder} has no test_data_set_*")
        # Every shipped case has exactly one data set; a second would be silently unused.
        if len(data) != 1:
            raise ValueError(f"{folder} has {len(data)} data sets; the harness reads one")
        cases.append(SuiteCase(f"{collection}/{folder.name}", collection, folder.name,
                               folder / "model.onnx", data[0]))
    return cases


def all_cases(collections: tuple[str, ...] = COLLECTIONS) -> list[SuiteCase]:
    return [c for name in collections for c in discover(name)]
