"""Where a mismatch starts: the first Keras layer whose ONNX output leaves tolerance.

The model is lowered again without the layout pass, so that every Keras tensor exists as an ONNX
value in the Keras layout; all of them become graph outputs; onnxruntime and the NumPy reference
run on the same inputs, and the calls are compared in execution order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import onnx_ir as ir

from ..models import LayersModel, keras_graph, keras_shapes
from .layouts import match_output
from .parity import Tolerances, compare_output

if TYPE_CHECKING:
    from ..converters.onnx_to_keras import Raised

Key = tuple[str, int, int]  # a Keras tensor: (layer, call, output index)


def first_divergence(model: LayersModel, arrays: list[np.ndarray], tolerances: Tolerances, *,
                     opset: int, device: str = "cpu") -> dict[str, Any] | None:
    """For a Keras -> ONNX conversion: the first Keras layer (in call order) whose output,
    lowered without the layout pass, leaves tolerance against the NumPy reference."""
    from ..converters.keras_to_onnx import ONNX_DTYPES, lower
    from ..runtime.engines import OnnxRuntime

    lowered = lower(model, opset=opset, optimize=False)
    graph = keras_graph.as_functional(model)
    specs = keras_shapes.infer(graph)
    by_name = {v.name: v for n in lowered.model.graph for v in n.outputs}
    exposed: dict[str, Key] = {}
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
    reference, noise = captured(model, arrays)
    names = {key: name for name, key in exposed.items()}
    for name in lowered.output_names:
        found = _key_of(lowered.tensor_names, name)
        if found is not None:
            names.setdefault(found, name)
    for layer, k in keras_graph.call_order(graph):
        i = 0
        while (layer.name, k, i) in specs:
            key = (layer.name, k, i)
            i += 1
            value_name = names.get(key)
            if value_name is None or value_name not in got or key not in reference.tensors:
                continue
            result = compare_output(value_name, reference.tensors[key], got[value_name],
                                    tolerances.default, tolerances.nan_policy,
                                    noise=noise.get(key))
            if not result.passed:
                return {"layer": layer.name, "class": layer.class_name, "call": k,
                        "output": key[2], "max_abs": result.max_abs,
                        "mismatched": result.mismatched, "total": result.total}
    return None


def captured(model: LayersModel, arrays: list[np.ndarray]
              ) -> tuple[Any, dict[Key, np.ndarray]]:
    """The NumPy reference's every tensor on ``arrays``, and each one's float32 rounding noise
    (its deviation from the same model computed in float64), for the noise rule."""
    from ..runtime.engines import KerasReference
    from ..runtime.precision import exact

    engine = KerasReference(model)
    reference = engine.run(arrays, capture=True)
    with exact(jitter=True):
        wide = engine.run(arrays, capture=True)
    noise = {}
    for key, value in reference.tensors.items():
        other = wide.tensors.get(key)
        value = np.asarray(value)
        if other is not None and np.shape(other) == value.shape and value.dtype.kind == "f":
            both = np.isfinite(value) & np.isfinite(other)
            noise[key] = np.where(both, np.abs(value.astype(np.float64) - other), 0.0)
    return reference, noise


def _key_of(tensor_names: dict[Key, str], name: str) -> Key | None:
    for key, value in tensor_names.items():
        if value == name:
            return key
    return None


def first_raised_divergence(source_path: object, raised: Raised, written: LayersModel,
                            arrays: list[np.ndarray], keras_arrays: list[np.ndarray],
                            tolerances: Tolerances) -> dict[str, Any] | None:
    """For an ONNX -> Keras raising: the first Keras layer (in call order) whose output leaves
    tolerance against the ONNX node it was raised from.

    The source model runs in onnxruntime with those nodes' outputs exposed (found by node name,
    which raising keeps, and compared in whichever of ONNX's or the channels-last layout has
    the Keras tensor's shape); layers made by the layout pass itself have no node to compare.
    """
    import onnx

    from ..converters.onnx_to_keras import name_nodes
    from ..runtime.engines import OnnxRuntime

    proto = onnx.load(str(source_path))
    name_nodes(proto.graph)
    by_node = {n.name: n for n in proto.graph.node if n.name}
    wanted: dict[str, str] = {}
    present = {o.name for o in proto.graph.output}
    computed = {name for n in proto.graph.node for name in n.output if name}
    for layer_name, (value, node_name) in raised.origin.items():
        node = by_node.get(node_name)
        # the value the layer computes; else its node's first output (an older record)
        name = value if value in computed else \
            (node.output[0] if node is not None and node.output else "")
        if not name:
            continue
        wanted[layer_name] = name
        if name not in present:
            proto.graph.output.append(onnx.ValueInfoProto(name=name))
            present.add(name)
    if not wanted:
        return None
    try:
        engine = OnnxRuntime(proto.SerializeToString(), device="cpu")
        got = dict(zip(engine.output_names(), engine.run(arrays)))
    except Exception:  # noqa: BLE001 - the localisation is a hint; the parity result stands
        return None
    reference, noise = captured(written, keras_arrays)
    graph = keras_graph.as_functional(written)
    for layer, k in keras_graph.call_order(graph):
        name = wanted.get(layer.name)
        key = (layer.name, k, 0)
        if name is None or name not in got or key not in reference.tensors:
            continue
        ours = np.asarray(reference.tensors[key])
        theirs = match_output(got[name], ours)
        if theirs.shape != ours.shape:
            continue
        result = compare_output(name, theirs, ours, tolerances.default, tolerances.nan_policy,
                                noise=noise.get(key))
        if not result.passed:
            return {"layer": layer.name, "class": layer.class_name, "onnx_node":
                    raised.origin[layer.name][1], "max_abs": result.max_abs,
                    "mismatched": result.mismatched, "total": result.total}
    return None
