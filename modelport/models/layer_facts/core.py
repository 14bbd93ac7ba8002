"""Core layers: inputs, Dense, Embedding, masking, data movement, regularization no-ops, Lambda."""

from __future__ import annotations

import math

from ...errors import FormatError, UnsupportedError
from .base import TensorSpec, TfjsRule, declarer
from .helpers import bias, leaf, moved, no_variables, one, out, same_shape, sized

declare = declarer(__name__)

# Settings of Dense and Embedding that add state tfjs-layers does not know.
_LORA = TfjsRule(lambda c: c.get("lora_rank") is not None,
                 "LoRA-adapted layers have extra variables tfjs-layers does not know")
_QUANTIZED = TfjsRule(lambda c: c.get("quantization_config") is not None,
                      "Keras-quantized layers are not loadable by tfjs-layers")


def _input_layer(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    shape = cfg.get("batch_shape")
    if shape is None:
        raise FormatError("InputLayer has no batch_shape")
    dtype = cfg.get("dtype") or "float32"
    if not isinstance(dtype, str):
        raise FormatError(f"InputLayer dtype {dtype!r} is not a dtype name")
    return sized([TensorSpec(tuple(None if d is None else int(d) for d in shape), dtype)],
                 "InputLayer")


declare("InputLayer", shape=_input_layer, variables=no_variables, tfjs=True)


def _dense(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    return out(cfg, one(inputs, min_rank=1).shape[:-1] + (int(cfg["units"]),))


def _dense_variable_shapes(config: dict, spec: TensorSpec) -> dict[str, tuple]:
    units = int(config["units"])
    return {"kernel": (spec.shape[-1], units), "bias": (units,)}


declare("Dense", shape=_dense, variables=leaf(lambda c: ["kernel"] + bias(c)),
        variable_shapes=_dense_variable_shapes, tfjs=True, tfjs_blockers=(_LORA, _QUANTIZED))


def _embedding(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    # Integer ids in, vectors out: the compute dtype, never the ids' dtype.
    return out(cfg, one(inputs).shape + (int(cfg["output_dim"]),))


def _embedding_variable_shapes(config: dict, spec: TensorSpec) -> dict[str, tuple]:
    return {"embeddings": (int(config["input_dim"]), int(config["output_dim"]))}


declare("Embedding", shape=_embedding, variables=leaf(lambda c: ["embeddings"]),
        variable_shapes=_embedding_variable_shapes, tfjs=True,
        tfjs_blockers=(_LORA, _QUANTIZED))


# Identity at inference (noise and dropout are training-only), and Masking (values unchanged).
declare("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
        "Masking", shape=same_shape, variables=no_variables, tfjs=True)
declare("SpatialDropout2D", "SpatialDropout3D", "ActivityRegularization", shape=same_shape,
        variables=no_variables)


def _identity(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    return moved(cfg, one(inputs), one(inputs).shape)


declare("Identity", shape=_identity, variables=no_variables, tfjs=True)


def _flatten(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    x = one(inputs, min_rank=1)
    rest = x.shape[1:]
    size = None if None in rest else math.prod(d for d in rest if d is not None)
    return moved(cfg, x, (x.shape[0], size))  # rank 1 -> (batch, 1)


declare("Flatten", shape=_flatten, variables=no_variables, tfjs=True)


def _reshape(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    x = one(inputs, min_rank=1)
    target, rest = [int(d) for d in cfg["target_shape"]], x.shape[1:]
    if target.count(-1) > 1:
        raise FormatError(f"target_shape {target} has more than one -1")
    if None in rest:  # Keras leaves -1 unresolved when any input dimension is unknown
        return moved(cfg, x, (x.shape[0], *(None if d == -1 else d for d in target)))
    size, known = math.prod(d for d in rest if d is not None), math.prod(
        d for d in target if d != -1)
    if -1 in target and known and size % known == 0:
        target[target.index(-1)] = size // known
    if math.prod(target) != size:
        raise FormatError(f"cannot reshape {rest} ({size} values) to {cfg['target_shape']}")
    return moved(cfg, x, (x.shape[0], *target))


def _resolved_reshape(layer, specs) -> tuple[dict, str] | None:
    """tfjs-layers leaves a ``-1`` in ``target_shape`` unresolved at build time, so the layers
    after it cannot create their weights: where the input's shape is static, the ``-1`` becomes
    the size it stands for (the same reshape for every input Keras accepts)."""
    target = list(layer.config.get("target_shape") or [])
    if -1 not in target:
        return None
    sizes = set()
    for node in layer.inbound_nodes:
        refs = node.inputs()
        spec = specs.get((refs[0].layer, refs[0].node, refs[0].tensor)) if refs else None
        if spec is None or any(d is None for d in spec.shape[1:]):
            return None
        sizes.add(math.prod(spec.shape[1:]))
    known = math.prod(d for d in target if d != -1)
    if len(sizes) != 1 or target.count(-1) != 1 or known == 0:
        return None
    total = sizes.pop()
    if total % known:
        return None
    resolved = [total // known if d == -1 else d for d in target]
    note = f"{layer.name}: Reshape target_shape {layer.config['target_shape']} -> {resolved}"
    return {**layer.config, "target_shape": resolved}, note


declare("Reshape", shape=_reshape, variables=no_variables, tfjs=True, tfjs_blockers=(
    TfjsRule(lambda c: -1 in list(c.get("target_shape") or []),
             "tfjs-layers 4.22 leaves a -1 in Reshape's target_shape unresolved, so the layers "
             "after it cannot be built"),), tfjs_rewrite=_resolved_reshape)


def _permute(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    x = one(inputs)
    dims = [int(d) for d in cfg["dims"]]
    if sorted(dims) != list(range(1, len(x.shape))):
        raise FormatError(f"dims {dims} is not a permutation of the axes of {x.shape}")
    return moved(cfg, x, (x.shape[0], *(x.shape[d] for d in dims)))


declare("Permute", shape=_permute, variables=no_variables, tfjs=True)


def _repeat_vector(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    x = one(inputs, 2)
    return out(cfg, (x.shape[0], int(cfg["n"]), x.shape[1]))


declare("RepeatVector", shape=_repeat_vector, variables=no_variables, tfjs=True)
declare("Rescaling", shape=same_shape, variables=no_variables, tfjs=True)


def _lambda(cfg: dict, inputs: list, kwargs: dict) -> list[TensorSpec]:
    raise UnsupportedError("Lambda: its output shape is whatever its Python code returns; "
                           "static inference cannot know it")


def _lambda_keras3(cfg: dict) -> list[str]:
    if isinstance(cfg.get("function"), dict):
        return []
    return [("a Keras 2 Lambda layer holds Python bytecode that Keras 3 stores differently; "
             "modelport never runs or rewrites bytecode")]


declare("Lambda", shape=_lambda, variables=no_variables, keras3_blockers=_lambda_keras3)
