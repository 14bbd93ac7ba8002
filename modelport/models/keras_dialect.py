"""The Keras 2 and Keras 3 config dialects, and the canonical form between them.

This is the one module that knows how the two generations spell the same model.

* Keras 2 (``tf_keras``, TF <= 2.15, and every TF.js layers-model): ``batch_input_shape``, dtype
  strings, ``inbound_nodes`` as nested lists ``[[name, node, tensor, kwargs], ...]``, input and
  output lists always nested, ``LeakyReLU(alpha)``, and node indices into a nested model shifted
  by one (its own Input-to-output node is counted but not serialized).
* Keras 3: ``batch_shape``, ``DTypePolicy`` objects, ``{"args", "kwargs"}`` nodes holding
  ``__keras_tensor__`` objects, ``module``/``registered_name`` on serialized objects,
  ``LeakyReLU(negative_slope)``, node indices unshifted in layer arguments but shifted by one
  in ``input_layers``/``output_layers`` where they point into a nested Functional model.

The canonical form (what ``LayersModel`` holds) is the Keras 3 form with the serialization noise
removed: dtypes are policy names, sub-objects are ``{"class_name", "config"}``, activations are
Keras 3 names. Where the generations give one name two meanings (``hard_sigmoid`` is
``clip(0.2x + 0.5)`` in Keras 2 and TF.js but ``relu6(x + 3) / 6`` in Keras 3), the canonical
form keeps them apart and a writer that cannot express one refuses.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import FormatError, ModelportError, UnsupportedError
from . import Layer, LayersModel, Node, TensorRef
from .finite_config import check_finite
from .layer_facts import FACTS, MODEL_CLASSES, FactView

KERAS2 = "keras2"
KERAS3 = "keras3"

# Canonical name of Keras 2's hard_sigmoid (clip(0.2 x + 0.5, 0, 1)), which Keras 3 lacks.
LEGACY_HARD_SIGMOID = "keras2_hard_sigmoid"

_ACTIVATION_KEYS = ("activation", "recurrent_activation")
_FROM_KERAS2_ACTIVATION = {"swish": "silu", "hard_sigmoid": LEGACY_HARD_SIGMOID}
_TO_KERAS2_ACTIVATION = {"silu": "swish", LEGACY_HARD_SIGMOID: "hard_sigmoid"}
# Serialization noise dropped from every serialized object.
_NOISE_KEYS = ("module", "registered_name", "build_config", "compile_config", "shared_object_id")
_DTYPE_POLICY_CLASSES = {"DTypePolicy", "Policy", "FloatDTypePolicy", "QuantizedDTypePolicy"}
# Keras 2 keys that Keras 3 rejects on every class, with the value at which dropping them
# changes nothing (a class's own such keys are its facts' keras2_only).
_KERAS2_ONLY = {
    "implementation": None,  # any value: only a kernel-selection hint
    "time_major": False,
    "input_length": None,
}
# Layers modelport writes where stock Keras has none (see modelport/keras_layers.py and
# modelport/js/modelport_layers.js), registered name -> Python module: the classes whose facts
# name a module. Canonically named by their registered name, as Keras writes them in .h5 and
# TF.js files, so that a user's own class of the same short name stays unknown.
MODELPORT_LAYERS: FactView[str] = FactView("module")
# Keras 3's legacy .h5 loader (keras/src/legacy/saving) knows classes by their Python names
# (GroupedQueryAttention), turns a config string naming a function of keras.layers into that
# function (score_mode="dot"), and drops an ``axis`` list of several axes (the layer gets its
# default axis). The first is spelled, a default left out, anything else refused.
PYTHON_CLASSES: FactView[str] = FactView("python_class")
LEGACY_H5_FUNCTIONS = frozenset({"Input", "add", "average", "concatenate", "deserialize", "dot",
                                 "maximum", "minimum", "multiply", "serialize", "subtract"})
MODELPORT_LOAD_HINT = ("load it in Keras 3 after `import modelport.keras_layers`, in TF.js after "
                       "registering modelport/js/modelport_layers.js (`register(tf)`)")
_SUBOBJECT_MODULE = {"initializer": "keras.initializers", "regularizer": "keras.regularizers",
                     "constraint": "keras.constraints"}


# --- detection ----------------------------------------------------------------------------------

def detect_dialect(model_config: dict, keras_version: str | None = None) -> str:
    """Keras generation of a model config: from the version when recorded, else from its forms."""
    if keras_version:
        major = str(keras_version).strip().split(".")[0]
        if major == "3":
            return KERAS3
        if major in ("1", "2"):
            return KERAS2
    text_markers = _walk_for_markers(model_config)
    return KERAS3 if text_markers else KERAS2


def _walk_for_markers(obj: Any) -> bool:
    if isinstance(obj, dict):
        if "batch_shape" in obj or obj.get("class_name") in ("__keras_tensor__", "DTypePolicy"):
            return True
        if isinstance(obj.get("inbound_nodes"), list) and any(
                isinstance(n, dict) for n in obj["inbound_nodes"]):
            return True
        return any(_walk_for_markers(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_walk_for_markers(v) for v in obj)
    return False


# --- reading ------------------------------------------------------------------------------------

def model_from_config(model_config: dict, dialect: str) -> LayersModel:
    """Parse a ``{"class_name", "config"}`` model config of either dialect into canonical form."""
    if not isinstance(model_config, dict) or "config" not in model_config:
        raise FormatError("model config is not a {class_name, config} object")
    class_name = model_config.get("class_name")
    config = model_config["config"]
    if class_name == "Sequential":
        return _sequential_from(config, dialect)
    if class_name in ("Functional", "Model"):
        return _functional_from(config, dialect)
    raise UnsupportedError(
        f"model class {class_name!r} has no layer graph in its config",
        hint="subclassed models cannot be converted; rebuild them as Functional or Sequential")


def _model_level_config(config: dict) -> dict:
    rest = {k: v for k, v in config.items()
            if k not in ("name", "layers", "input_layers", "output_layers")}
    return _strip(rest)


def _sequential_from(config: Any, dialect: str) -> LayersModel:
    if isinstance(config, list):  # Keras 2.0-2.1: the config is the bare layer list
        config = {"name": "sequential", "layers": config}
    layers: list[Layer] = []
    for i, entry in enumerate(_list(config.get("layers"), "Sequential layers")):
        layer = _layer_from_entry(entry, dialect, shifted=set(), known=set())
        shape = layer.config.pop("batch_shape", None) if layer.class_name != "InputLayer" else None
        if i == 0 and shape is not None:
            # Keras 2 and TF.js put the input shape on the first layer; make the input explicit.
            dtype = layer.config.get("dtype") or "float32"
            layers.append(Layer("InputLayer", f"{layer.name}_input", {
                "batch_shape": shape, "dtype": dtype, "sparse": False,
                "name": f"{layer.name}_input"}))
        layers.append(layer)
    return LayersModel(name=str(config.get("name", "sequential")), kind="Sequential",
                       layers=layers, config=_model_level_config(config))


def _functional_from(config: dict, dialect: str) -> LayersModel:
    entries = _list(config.get("layers"), "model layers")
    shifted = {e.get("name") for e in entries if dialect == KERAS2 and _skips_first_node(e)}
    known = {e.get("name") or (e.get("config") or {}).get("name") for e in entries}
    specs: dict = {}
    layers = [_layer_from_entry(e, dialect, shifted, known, specs) for e in entries]
    for layer in layers:
        if layer.class_name != "InputLayer":
            layer.config.pop("batch_shape", None)  # Keras 2 leftovers; the InputLayer has it
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise FormatError(f"duplicate layer names in the model config: {', '.join(dup)}")
    # Keras 3 numbers a nested Functional model's calls from 0 in the layers' arguments but
    # from 1 in input_layers/output_layers (its loader takes 1 off there: "Functional models
    # start out with a built-in node"); Keras 2 shifts both.
    io_shifted = shifted if dialect == KERAS2 else {
        e.get("name") for e in entries if e.get("class_name") == "Functional"}
    model = LayersModel(
        name=str(config.get("name", "model")), kind="Functional", layers=layers,
        inputs=_io_refs(config.get("input_layers"), io_shifted, known, "input_layers"),
        outputs=_io_refs(config.get("output_layers"), io_shifted, known, "output_layers"),
        config=_model_level_config(config), tensor_specs=specs)
    _check_graph(model)
    return model


def _check_graph(model: LayersModel) -> None:
    """Every reference names an existing call, and the calls form no cycle."""
    by_name = {layer.name: layer for layer in model.layers}

    def calls(name: str) -> int:
        layer = by_name[name]
        return 1 if layer.class_name == "InputLayer" else len(layer.inbound_nodes)

    def check(ref: TensorRef, where: str) -> None:
        if ref.node >= calls(ref.layer):
            raise FormatError(f"{where} refers to call {ref.node} of layer {ref.layer!r}, which "
                              f"is called {calls(ref.layer)} time(s)")

    for ref in model.inputs:
        check(ref, "input_layers")
        if by_name[ref.layer].class_name != "InputLayer":
            raise FormatError(f"model input {ref.layer!r} is not an InputLayer")
    for ref in model.outputs:
        check(ref, "output_layers")
    declared = {ref.layer for ref in model.inputs}
    for layer in model.layers:
        for node in layer.inbound_nodes:
            for ref in node.inputs():
                check(ref, f"layer {layer.name!r}")
                if by_name[ref.layer].class_name == "InputLayer" and ref.layer not in declared:
                    raise FormatError(f"layer {layer.name!r} reads InputLayer {ref.layer!r}, "
                                      "which input_layers does not list as a model input")
    state: dict[tuple[str, int], int] = {}  # 1 visiting, 2 done

    def visit(key: tuple[str, int]) -> None:
        stack = [(key, iter(_parents(by_name, key)))]
        state[key] = 1
        while stack:
            current, parents = stack[-1]
            for parent in parents:
                mark = state.get(parent)
                if mark == 1:
                    raise FormatError(f"the layer graph has a cycle through layer {parent[0]!r}")
                if mark is None:
                    state[parent] = 1
                    stack.append((parent, iter(_parents(by_name, parent))))
                    break
            else:
                state[current] = 2
                stack.pop()

    for layer in model.layers:
        for i in range(len(layer.inbound_nodes)):
            if (layer.name, i) not in state:
                visit((layer.name, i))


def _parents(by_name: dict, key: tuple[str, int]) -> list[tuple[str, int]]:
    layer = by_name[key[0]]
    if layer.class_name == "InputLayer" or key[1] >= len(layer.inbound_nodes):
        return []
    return [(r.layer, r.node) for r in layer.inbound_nodes[key[1]].inputs()]


def _skips_first_node(entry: dict) -> bool:
    """Keras 2 counts a nested model's own Input-to-output node: references to it are +1."""
    if entry.get("class_name") in ("Functional", "Model"):
        return True
    if entry.get("class_name") == "Sequential":
        inner = (entry.get("config") or {}).get("layers") or []
        if inner and isinstance(inner[0], dict):
            first = inner[0]
            return first.get("class_name") == "InputLayer" or "batch_input_shape" in (
                first.get("config") or {})
    return False


def _io_refs(value: Any, shifted: set, known: set, what: str) -> list[TensorRef]:
    if value is None:
        return []
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]  # Keras 3 writes a single input or output unnested
    if isinstance(value, dict):
        raise UnsupportedError(f"{what} is a dict; modelport supports list-structured inputs "
                               "and outputs")
    return [_triple_ref(item, shifted, known, what) for item in _list(value, what)]


def _triple_ref(item: Any, shifted: set, known: set, what: str) -> TensorRef:
    if not (isinstance(item, list) and len(item) >= 3 and isinstance(item[0], str)
            and isinstance(item[1], int) and isinstance(item[2], int)):
        raise FormatError(f"malformed tensor reference in {what}: {item!r}")
    name, node, tensor = item[0], item[1], item[2]
    if name not in known:
        raise FormatError(f"{what} refers to a layer that does not exist: {name!r}")
    if name in shifted:
        node -= 1
    if node < 0 or tensor < 0:
        raise FormatError(f"negative node or tensor index in {what}: {item!r}")
    return TensorRef(name, node, tensor)


def _layer_from_entry(entry: Any, dialect: str, shifted: set, known: set,
                      specs: dict | None = None) -> Layer:
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise FormatError("a layer entry is not a {class_name, config} object: "
                          f"{str(entry)[:80]}")
    class_name = _registered_name(entry["class_name"])
    if entry.get("registered_name") in MODELPORT_LAYERS:  # .keras: short class + registered name
        class_name = entry["registered_name"]
    config = entry.get("config") or {}
    if not isinstance(config, dict):
        raise FormatError(f"the config of a {class_name} layer is not an object")
    name = entry.get("name") or config.get("name")
    if not isinstance(name, str) or not name:
        raise FormatError(f"a {class_name} layer has no name")
    nodes_data = entry.get("inbound_nodes") or []
    nodes = [_node_from(n, dialect, shifted, known, specs, name)
             for n in _list(nodes_data, "inbound_nodes")]
    if class_name in MODEL_CLASSES:
        inner = model_from_config({"class_name": class_name, "config": config}, dialect)
        inner.name = name
        return Layer(inner.kind, name, {}, nodes, model=inner)
    canonical = canonical_layer_config(class_name, config, dialect)
    canonical["name"] = name
    module = entry.get("module")
    if isinstance(module, str) and module.startswith("keras.src.ops"):
        return Layer(class_name, name, canonical, nodes, module=module)
    return Layer(class_name, name, canonical, nodes)


def _registered_name(class_name: Any) -> Any:
    """The name configs give a class that a legacy ``.h5`` file names by its Python class."""
    found = [name for name, python in PYTHON_CLASSES.items() if python == class_name]
    return found[0] if found else class_name


def _node_from(data: Any, dialect: str, shifted: set, known: set, specs: dict | None,
               layer: str) -> Node:
    if isinstance(data, dict):  # Keras 3 {"args", "kwargs"}
        args = _revive(data.get("args", []), specs, known, layer)
        kwargs = _revive(data.get("kwargs", {}) or {}, specs, known, layer)
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise FormatError(f"malformed inbound node of layer {layer!r}")
        return Node(args, _drop_none(kwargs))
    if isinstance(data, list):  # Keras 2 / legacy: [[name, node, tensor, kwargs], ...]
        refs, kwargs = [], {}
        for item in data:
            if not isinstance(item, list) or len(item) not in (3, 4):
                raise FormatError(f"malformed inbound node of layer {layer!r}: {str(item)[:80]}")
            refs.append(_triple_ref(item[:3], shifted, known, f"inbound node of {layer!r}"))
            if len(item) == 4 and item[3]:
                if not isinstance(item[3], dict):
                    raise FormatError(f"malformed call arguments of layer {layer!r}")
                kwargs = _revive_keras2_kwargs(item[3], shifted, known, layer)
        args = [refs[0]] if len(refs) == 1 else [refs]
        return Node(args, _drop_none(kwargs))
    raise FormatError(f"malformed inbound node of layer {layer!r}")


def _revive(obj: Any, specs: dict | None, known: set, layer: str) -> Any:
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            cfg = obj.get("config") or {}
            hist = cfg.get("keras_history")
            if not (isinstance(hist, list) and len(hist) == 3):
                raise FormatError(f"a tensor in the inputs of layer {layer!r} has no history")
            ref = _triple_ref(hist, set(), known, f"inbound node of {layer!r}")
            if specs is not None and "shape" in cfg:
                specs[(ref.layer, ref.node, ref.tensor)] = {"shape": cfg.get("shape"),
                                                            "dtype": cfg.get("dtype")}
            return ref
        return {k: _revive(v, specs, known, layer) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_revive(v, specs, known, layer) for v in obj]
    return obj


def _revive_keras2_kwargs(kwargs: dict, shifted: set, known: set, layer: str) -> dict:
    def conv(v: Any) -> Any:
        if (isinstance(v, list) and len(v) == 3 and isinstance(v[0], str) and v[0] in known
                and isinstance(v[1], int) and isinstance(v[2], int)):
            return _triple_ref(v, shifted, known, f"call arguments of {layer!r}")
        if isinstance(v, list):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v
    return {k: conv(v) for k, v in kwargs.items()}


def _drop_none(kwargs: dict) -> dict:
    # A None call argument is the default of every Keras call signature (mask, training, ...).
    return {k: v for k, v in kwargs.items() if v is not None}


def _list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise FormatError(f"{what} is not a list")
    return value


def _strip(obj: Any) -> Any:
    """Remove serialization noise; dtype policies become their names."""
    if isinstance(obj, dict):
        if obj.get("class_name") in _DTYPE_POLICY_CLASSES and isinstance(obj.get("config"), dict):
            return obj["config"].get("name", "float32")
        if obj.get("class_name") == "function" and isinstance(obj.get("config"), str):
            return obj["config"]  # Keras 3's spelling of a built-in activation
        return {k: _strip(v) for k, v in obj.items() if k not in _NOISE_KEYS}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def canonical_layer_config(class_name: str, config: dict, dialect: str) -> dict:
    """One layer's config (either dialect) in canonical form; nested layer configs included."""
    cfg = _strip(copy.deepcopy(config))
    for key in ("layer", "backward_layer"):
        inner = cfg.get(key)
        if isinstance(inner, dict) and "class_name" in inner:
            cfg[key] = {"class_name": inner["class_name"],
                        "config": canonical_layer_config(inner["class_name"],
                                                         inner.get("config") or {}, dialect)}
    if dialect == KERAS2:
        _keras2_to_canonical(class_name, cfg)
    facts = FACTS.get(class_name)
    for key, value in (facts.config_defaults if facts is not None else {}).items():
        cfg.setdefault(key, value)
    return cfg


def _keras2_to_canonical(class_name: str, cfg: dict) -> None:
    for key in _ACTIVATION_KEYS:
        if isinstance(cfg.get(key), str):
            cfg[key] = _FROM_KERAS2_ACTIVATION.get(cfg[key], cfg[key])
    if class_name == "InputLayer":
        if "batch_input_shape" in cfg:
            cfg["batch_shape"] = cfg.pop("batch_input_shape")
    elif "batch_input_shape" in cfg:
        cfg["batch_shape"] = cfg.pop("batch_input_shape")  # lifted into an InputLayer by caller
    facts = FACTS.get(class_name)
    if facts is not None:
        for canonical, keras2 in facts.keras2_names.items():
            if keras2 in cfg:
                cfg[canonical] = cfg.pop(keras2)
        if facts.from_keras2 is not None:
            facts.from_keras2(cfg)
    own = facts.keras2_only if facts is not None else {}
    for key, neutral in {**own, **_KERAS2_ONLY}.items():
        if key not in cfg:
            continue
        if neutral is None or cfg[key] == neutral:
            del cfg[key]
        # else: kept, so that writers which cannot express it refuse by name


# --- writing ------------------------------------------------------------------------------------

def model_to_config(model: LayersModel, dialect: str, *, modules: bool = False) -> dict:
    """The ``{"class_name", "config"}`` model config in ``dialect``.

    ``modules`` adds Keras 3's ``module``/``registered_name`` to layer entries, as ``.keras``
    files have them (Keras 3's own ``.h5`` files leave them off layer entries).
    """
    if dialect == KERAS3:
        check_keras3(model)
    check_finite(model)  # (JSON has no Infinity: refused here, before any file is written)
    if model.kind == "Sequential":
        entries = []
        for layer in model.layers:
            entry = _layer_entry(layer, dialect, modules, sequential=True, shifted=set())
            entries.append(entry)
        config = {"name": model.name, **_model_config_out(model, dialect), "layers": entries}
        out: dict[str, Any] = {"class_name": "Sequential", "config": config}
        if modules and dialect == KERAS3:
            out = {"module": "keras", **out, "registered_name": None}
        return out
    shifted = {layer.name for layer in model.layers if dialect == KERAS2 and _has_self_node(layer)}
    specs = _tensor_specs(model) if dialect == KERAS3 else {}
    entries = [_layer_entry(layer, dialect, modules, sequential=False, shifted=shifted,
                            specs=specs)
               for layer in model.layers]
    io_shifted = shifted if dialect == KERAS2 else {
        layer.name for layer in model.layers
        if layer.model is not None and layer.model.kind == "Functional"}  # see _functional_from
    config = {"name": model.name, **_model_config_out(model, dialect), "layers": entries,
              "input_layers": _io_out(model.inputs, dialect, io_shifted),
              "output_layers": _io_out(model.outputs, dialect, io_shifted)}
    out = {"class_name": "Functional", "config": config}
    if modules and dialect == KERAS3:
        out = {"module": "keras.src.models.functional", **out, "registered_name": "Functional"}
    return out


def _tensor_specs(model: LayersModel) -> dict:
    """Shapes for Keras 3's ``__keras_tensor__`` node form: recorded, else inferred."""
    from .keras_shapes import infer  # shape rules are heavier than this module's needs

    specs = dict(model.tensor_specs)
    try:
        inferred = infer(model)
    except ModelportError:
        return specs  # nodes fall back to the nested-list form Keras 3 also reads
    for key, spec in inferred.items():
        specs.setdefault(key, {"shape": list(spec.shape), "dtype": spec.dtype})
    return specs


def _has_self_node(layer: Layer) -> bool:
    inner = layer.model
    if inner is None:
        return False
    return inner.kind == "Functional" or bool(
        inner.layers and inner.layers[0].class_name == "InputLayer")


def _model_config_out(model: LayersModel, dialect: str) -> dict:
    cfg = copy.deepcopy(model.config)
    if dialect == KERAS3 and "dtype" in cfg and isinstance(cfg["dtype"], str):
        cfg["dtype"] = _dtype_policy(cfg["dtype"])
    return cfg


def _io_out(refs: list[TensorRef], dialect: str, shifted: set) -> list:
    triples = [[r.layer, r.node + (1 if r.layer in shifted else 0), r.tensor] for r in refs]
    if dialect == KERAS3 and len(triples) == 1:
        return triples[0]
    return triples


def _layer_entry(layer: Layer, dialect: str, modules: bool, *, sequential: bool,
                 shifted: set, specs: dict | None = None) -> dict:
    if layer.model is not None:
        inner = model_to_config(layer.model, dialect, modules=modules)
        inner["config"]["name"] = layer.name
        entry = dict(inner)
    else:
        config = (_keras3_layer_config(layer.class_name, layer.config) if dialect == KERAS3
                  else _keras2_layer_config(layer.class_name, layer.config))
        entry = {"class_name": layer.class_name, "config": config}
        if dialect == KERAS3 and not modules and not layer.is_operation:  # a legacy .h5
            entry = {"class_name": PYTHON_CLASSES.get(layer.class_name, layer.class_name),
                     "config": _legacy_h5_config(layer, config)}
        if layer.is_operation and dialect == KERAS3:
            entry = {"module": layer.module, **entry, "registered_name": None}
        elif modules and dialect == KERAS3 and layer.class_name in MODELPORT_LAYERS:
            entry = {"module": MODELPORT_LAYERS[layer.class_name],
                     "class_name": layer.class_name.split(">", 1)[1], "config": config,
                     "registered_name": layer.class_name}
        elif modules and dialect == KERAS3:
            entry = {"module": "keras.layers", **entry, "registered_name": None}
    if not sequential:
        entry["name"] = layer.name
        entry["inbound_nodes"] = [_node_out(n, dialect, shifted, specs or {}, layer.name)
                                  for n in layer.inbound_nodes]
    return entry


def _node_out(node: Node, dialect: str, shifted: set, specs: dict, layer: str) -> Any:
    refs = node.inputs()
    if dialect == KERAS3 and refs and all((r.layer, r.node, r.tensor) in specs for r in refs):
        def tensor(obj: Any) -> Any:
            if isinstance(obj, TensorRef):
                spec = specs[(obj.layer, obj.node, obj.tensor)]
                return {"class_name": "__keras_tensor__", "config": {
                    "shape": spec["shape"], "dtype": spec["dtype"],
                    "keras_history": obj.as_list()}}
            if isinstance(obj, dict):
                return {k: tensor(v) for k, v in obj.items()}
            if isinstance(obj, list):
                return [tensor(v) for v in obj]
            return obj
        return {"args": tensor(node.args), "kwargs": tensor(node.kwargs)}
    # The nested-list form: Keras 2's, which Keras 3 also reads (with unshifted indices).
    if len(node.args) != 1:
        raise UnsupportedError(
            f"the call of layer {layer!r} passes {len(node.args)} positional tensors; the "
            f"{'Keras 2' if dialect == KERAS2 else 'nested-list'} form holds one",
            layer=layer)
    first = node.args[0]
    first_refs = first if isinstance(first, list) else [first]
    if not all(isinstance(r, TensorRef) for r in first_refs):
        raise UnsupportedError(f"the call of layer {layer!r} mixes tensors and constants in "
                               "its inputs", layer=layer)

    def kw(obj: Any) -> Any:
        if isinstance(obj, TensorRef):
            return [obj.layer, obj.node + (1 if obj.layer in shifted else 0), obj.tensor]
        if isinstance(obj, dict):
            return {k: kw(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [kw(v) for v in obj]
        return obj
    if dialect == KERAS3 and len(refs) > len(first_refs):
        # Keras 3 passes nested-list kwargs through unrevived: tensors in them would be lost.
        raise UnsupportedError(f"the call of layer {layer!r} passes tensors as keyword arguments "
                               "and the source recorded no tensor shapes", layer=layer)
    kwargs = kw(node.kwargs)
    return [[r.layer, r.node + (1 if r.layer in shifted else 0), r.tensor, kwargs]
            for r in first_refs]


def _dtype_policy(name: str) -> dict:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
            "registered_name": None}


def _keras3_layer_config(class_name: str, cfg: dict) -> dict:
    out = copy.deepcopy(cfg)
    for key, value in list(out.items()):
        if key == "dtype" and isinstance(value, str):
            out[key] = _dtype_policy(value)
        elif isinstance(value, dict) and "class_name" in value and key in (
                "layer", "backward_layer"):
            out[key] = {"module": "keras.layers", "class_name": value["class_name"],
                        "config": _keras3_layer_config(value["class_name"], value["config"]),
                        "registered_name": None}
        elif isinstance(value, dict) and "class_name" in value:
            kind = key.rsplit("_", 1)[-1]
            if kind in _SUBOBJECT_MODULE:
                out[key] = {"module": _SUBOBJECT_MODULE[kind], **value, "registered_name": None}
    return out


def _legacy_h5_config(layer: Layer, cfg: dict) -> dict:
    """A layer config as Keras 3's legacy ``.h5`` loader reads it as meant: a default it would
    misread left out; anything else it would misread refused (``legacy_h5_blockers``)."""
    reasons = _legacy_h5_reasons(layer.class_name, cfg)
    if reasons:
        raise UnsupportedError(f"{layer.class_name}: {reasons[0]}", layer=layer.name,
                               hint="write a .keras file instead")
    facts = FACTS.get(layer.class_name)
    defaults = facts.config_defaults if facts is not None else {}
    return {k: v for k, v in cfg.items()
            if not (isinstance(v, str) and v in LEGACY_H5_FUNCTIONS and defaults.get(k) == v)}


def _legacy_h5_reasons(class_name: str, cfg: dict) -> list[str]:
    facts = FACTS.get(class_name)
    defaults = facts.config_defaults if facts is not None else {}
    reasons = [f"Keras 3's .h5 loader turns {key}={value!r} into the function "
               f"keras.layers.{value}" for key, value in cfg.items()
               if key != "name" and isinstance(value, str) and value in LEGACY_H5_FUNCTIONS
               and defaults.get(key) != value]
    axis = cfg.get("axis")
    if isinstance(axis, (list, tuple)) and len(axis) > 1:
        reasons.append(f"Keras 3's .h5 loader drops axis={list(axis)} (a list of several "
                       "axes) and builds the layer with its default axis")
    return reasons


def legacy_h5_blockers(model: LayersModel) -> list[tuple[str, str, str]]:
    """``(layer, class, reason)`` for what Keras 3's legacy ``.h5`` loader would misread."""
    return [(layer.name, layer.class_name, reason) for layer in model.iter_layers()
            if layer.model is None and not layer.is_operation
            for reason in _legacy_h5_reasons(layer.class_name, layer.config)]


def _keras2_layer_config(class_name: str, cfg: dict) -> dict:
    out = copy.deepcopy(cfg)
    for key in _ACTIVATION_KEYS:
        if isinstance(out.get(key), str):
            if out[key] == "hard_sigmoid":
                raise UnsupportedError(
                    "Keras 3's hard_sigmoid is relu6(x + 3) / 6; Keras 2 and TF.js have only "
                    "clip(0.2 x + 0.5, 0, 1) under that name", layer=cfg.get("name"))
            out[key] = _TO_KERAS2_ACTIVATION.get(out[key], out[key])
    if (class_name == "InputLayer" and "batch_shape" in out) or "batch_shape" in out:
        out["batch_input_shape"] = out.pop("batch_shape")
    facts = FACTS.get(class_name)
    for canonical, keras2 in (facts.keras2_names if facts is not None else {}).items():
        if canonical in out:
            out[keras2] = out.pop(canonical)
    for key in ("layer", "backward_layer"):
        inner = out.get(key)
        if isinstance(inner, dict) and "class_name" in inner:
            out[key] = {"class_name": inner["class_name"],
                        "config": _keras2_layer_config(inner["class_name"], inner["config"])}
    return out


def keras3_blockers(model: LayersModel) -> list[tuple[str, str, str]]:
    """``(layer, class, reason)`` for what Keras 3 cannot load or would compute differently."""
    return [(layer.name, layer.class_name, reason) for layer in model.iter_layers()
            if layer.model is None
            for reason in _keras3_layer_blockers(layer.class_name, layer.config)]


def check_keras3(model: LayersModel) -> None:
    """Refuse ``model`` if ``keras3_blockers`` finds anything: an UnsupportedError naming the first
    layer and reason, and how many more there are."""
    found = keras3_blockers(model)
    if found:
        name, cls, reason = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise UnsupportedError(f"{cls}: {reason}{more}", layer=name,
                               hint="ONNX and TF.js keep what Keras 3 cannot hold: --to onnx "
                                    "or --to tfjs-graph")


def _keras3_layer_blockers(class_name: str, cfg: dict) -> list[str]:
    reasons = [f"{key} is Keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1); Keras 3's "
               "hard_sigmoid is relu6(x + 3) / 6 and it has no equivalent"
               for key in _ACTIVATION_KEYS if cfg.get(key) == LEGACY_HARD_SIGMOID]
    facts = FACTS.get(class_name)
    if facts is not None and facts.keras3_missing is not None:
        reasons.append(facts.keras3_missing)
    if cfg.get("time_major"):
        reasons.append("time_major=True recurrent layers do not exist in Keras 3")
    for key, neutral in (facts.keras2_only if facts is not None else {}).items():
        # a Keras 2 setting kept on reading because dropping it would change the layer
        if neutral is not None and key in cfg and cfg[key] != neutral:
            reasons.append(f"{class_name} with {key}={cfg[key]} does not exist in Keras 3")
    if facts is not None and facts.keras3_blockers is not None:
        reasons.extend(facts.keras3_blockers(cfg))
    for key in ("layer", "backward_layer"):
        inner = cfg.get(key)
        if isinstance(inner, dict) and "class_name" in inner:
            reasons.extend(_keras3_layer_blockers(inner["class_name"], inner["config"]))
    return reasons
