"""Where a mismatch starts: the first Keras layer whose ONNX output leaves tolerance.

The model is lowered again without the layout pass, so that every Keras tensor exists as an ONNX
value in the Keras layout; all of them become graph outputs; onnxruntime and the NumPy reference
run on the same inputs, and the calls are compared in execution order.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from .. import keras_graph, keras_shapes
from ..models import LayersModel
from .parity import Tolerances, compare_output


def first_divergence(model: LayersModel, arrays: list[np.ndarray], tolerances: Tolerances, *,
                     opset: int, device: str = "cpu") -> dict | None:
    from ..converters.keras_to_onnx import ONNX_DTYPES, lower
    from .engines import KerasReference, OnnxRuntime

    lowered = lower(model, opset=opset, optimize=False)
    graph = keras_graph.as_functional(model)
    specs = keras_shapes.infer(graph)
    by_name = {v.name: v for n in lowered.model.graph for v in n.outputs}
    exposed: dict[str, tuple] = {}
    outputs = list(lowered.model.graph.outputs)
    for key, name in lowered.tensor_names.items():
        value = by_name.get(name)
        if value is None or value in outputs or key not in specs:
            continue
        spec = specs[key]
        value.type = ir.TensorType(ONNX_DTYPES.get(spec.dtype, ir.DataType.FLOAT))
        value.shape = ir.Shape([d if d is not None else f"{name}_{i}"
                                for i, d in enumerate(spec.shape)])
        outputs.append(value)
        exposed[name] = key
    lowered.model.graph.outputs.extend(outputs[len(lowered.model.graph.outputs):])
    engine = OnnxRuntime(ir.to_proto(lowered.model).SerializeToString(), device=device)
    got = dict(zip(engine.output_names(), engine.run(arrays)))
    reference = KerasReference(model).run(arrays, capture=True)
    names = {key: name for name, key in exposed.items()}
    for name in lowered.output_names:
        names.setdefault(_key_of(lowered.tensor_names, name), name)
    for layer, k in keras_graph.call_order(graph):
        i = 0
        while (layer.name, k, i) in specs:
            key = (layer.name, k, i)
            i += 1
            name = names.get(key)
            if name is None or name not in got or key not in reference.tensors:
                continue
            tol = tolerances.default
            result = compare_output(name, reference.tensors[key], got[name], tol,
                                    tolerances.nan_policy)
            if not result.passed:
                return {"layer": layer.name, "class": layer.class_name, "call": k,
                        "output": key[2], "max_abs": result.max_abs,
                        "mismatched": result.mismatched, "total": result.total}
    return None


def _key_of(tensor_names: dict, name: str):
    for key, value in tensor_names.items():
        if value == name:
            return key
    return None
