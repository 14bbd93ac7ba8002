"""TF.js layers-models: ``model.json`` (``format: "layers-model"``) plus binary weight shards.

``modelTopology`` is a Keras 2 dialect model config, optionally wrapped as
``{"model_config": ..., "keras_version", "backend"}`` (the TF.js converter's form). Weights are
looked up by name, exactly as tfjs-layers does: ``<layer>/<variable>`` with no ``cell`` level for
recurrent layers, ``<layer>/forward_<inner>/<variable>`` and ``<layer>/backward_<inner>/...``
for Bidirectional, ``<layer>/<variable>`` for TimeDistributed, and a nested model's inner
layers under their own names. Names that carry an extra cell level (``lstm/lstm_cell/kernel``,
as the TF.js converter writes from Keras 2 files) are accepted on read, as tfjs-layers does.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .._version import __version__
from ..errors import FormatError, ModelportError, OutputExistsError, UnsupportedError
from ..fsutil import atomic_output, check_destination, read_json_file, staging
from ..models import Layer, LayersModel, SourceInfo, Weight, keras_dialect, tfjs_support
from ..models.keras_variables import unknown_class
from . import checks, keras_v3, tfjs_manifest
from .keras_h5 import config_to_model, expected_variables

MODEL_JSON = "model.json"


def model_json_path(path: Path) -> Path:
    """``path``'s model.json when ``path`` is a folder, else ``path`` itself."""
    return path / MODEL_JSON if path.is_dir() else path


def destination(dst: str | os.PathLike) -> tuple[Path, str]:
    """The folder a TF.js model goes to, and its model.json's name: ``web`` is web/model.json,
    ``web/m.json`` is m.json in web (made if missing)."""
    dst = Path(dst)
    return (dst.parent, dst.name) if dst.suffix == ".json" else (dst, MODEL_JSON)


def load_model_json(path: Path) -> dict:
    """model.json, parsed with fsutil's size and nesting limits."""
    data = read_json_file(path)
    if not isinstance(data, dict):
        raise FormatError("model.json is not a JSON object", file=path)
    return data


# --- names --------------------------------------------------------------------------------------

def tfjs_weight_names(layer: Layer) -> list[tuple[Layer, Weight, str]]:
    """(owner, weight, tfjs name) for a top-level layer's variables, in natural order."""
    if layer.model is not None:
        out = []
        for inner in layer.model.layers:
            out.extend(tfjs_weight_names(inner))
        return out
    return [(layer, w, tfjs_name(layer, w.path)) for w in layer.weights]


def tfjs_name(layer: Layer, path: str) -> str:
    """The tfjs name of ``layer``'s variable at ``path``: ``layer/var``, or
    ``layer/forward_<inner>/var`` (``backward_``) for a Bidirectional's wrapped layers."""
    parts = path.split("/")
    var = parts[-1]
    if parts[0] in ("forward_layer", "backward_layer"):
        inner = (layer.config.get("layer") or {}).get("config", {}).get("name", "layer")
        return f"{layer.name}/{parts[0].split('_')[0]}_{inner}/{var}"
    return f"{layer.name}/{var}"


def _shortened(name: str) -> str:
    tokens = name.split("/")
    return "/".join(tokens[:-2] + tokens[-1:]) if len(tokens) >= 3 else name


# --- reading ------------------------------------------------------------------------------------

def read(path: str | os.PathLike, *, deferred: bool = False,
         scan_values: bool = True) -> LayersModel:
    """Read a layers-model. ``deferred=True`` leaves the large unquantized weights in their
    shards as ``deferred.Deferred`` stand-ins (see ``read_manifest``), for a caller that
    looks at them one at a time; everything else is read and checked as usual.
    ``scan_values=False`` leaves the NaN/Inf warning to the caller."""
    path = Path(path)
    json_path = model_json_path(path)
    try:
        if not json_path.is_file():
            raise FormatError("no model.json here")
        data = load_model_json(json_path)
        fmt = data.get("format")
        if fmt == "graph-model":
            raise UnsupportedError("this is a TF.js graph-model; reading graph-models is not "
                                   "supported yet")
        topology = data.get("modelTopology")
        if not isinstance(topology, dict):
            raise FormatError("model.json has no modelTopology")
        config = topology.get("model_config", topology)
        keras_version = topology.get("keras_version") if "model_config" in topology else None
        if isinstance(keras_version, str) and not keras_version[:1].isdigit():
            keras_version = None  # "tfjs-layers 4.22.0": the dialect is Keras 2
        checks.check_layer_names(config, file=json_path)
        model, dialect = config_to_model(config, keras_version)
        stored = tfjs_manifest.read_manifest(json_path.parent, data.get("weightsManifest", []),
                                             file=json_path, deferred=deferred)
        _assign_weights(model, stored)
        # shape rules: loaded on the first read, not on import
        from ..models.weight_shapes import check as check_weight_shapes

        check_weight_shapes(model)
    except ModelportError as e:
        e.with_file(json_path)
        raise
    except OSError as e:
        raise FormatError(f"cannot read ({e.strerror})", file=json_path) from None
    model.source = SourceInfo("tfjs-layers", str(json_path), dialect, keras_version)
    if scan_values and not deferred:  # deferred weights are not here to look at
        checks.warn_non_finite(checks.layers_model_weights(model), file=json_path)
    return model


def _assign_weights(model: LayersModel, stored: list[tfjs_manifest.StoredWeight]) -> None:
    if stored and all(_KERAS3_LOCATION.match(w.name) for w in stored):
        _assign_by_location(model, stored)
        return
    by_name = {w.name: w for w in stored}
    shortened: dict[str, str] = {}
    for w in stored:
        shortened.setdefault(_shortened(w.name), w.name)
    used: set[str] = set()
    for layer in model.layers:
        expected = expected_variables(layer)
        if expected is None:
            raise unknown_class(layer.class_name, layer.name)
        for owner, path, trainable in expected:
            name = tfjs_name(owner, path)
            found = name if name in by_name else shortened.get(name)
            if found is None or found in used:
                raise FormatError(f"the weights manifest has no {name!r}", layer=owner.name)
            used.add(found)
            item = by_name[found]
            owner.weights.append(Weight(path, item.array, trainable, item.quantization))
    extra = [w.name for w in stored if w.name not in used]
    if extra:
        raise FormatError(f"the weights manifest has weights no layer uses: {extra[:5]}")


# The TF.js converter names the weights of Keras 3 .keras sources by their location in the
# .keras weights file (layers/dense_1/vars/0), not by variable name.
_KERAS3_LOCATION = re.compile(r"^layers/.+/vars/\d+$")


def _assign_by_location(model: LayersModel, stored: list[tfjs_manifest.StoredWeight]) -> None:
    by_name = {w.name: w for w in stored}
    locations = keras_v3.variable_locations(model.layers)
    for owner, path, trainable, location in locations:
        item = by_name.pop(location, None)
        if item is None:
            raise FormatError(f"the weights manifest has no {location!r}", layer=owner.name)
        owner.weights.append(Weight(path, item.array, trainable, item.quantization))
    if by_name:
        raise FormatError(f"the weights manifest has weights no layer uses: {list(by_name)[:5]}")


# --- writing ------------------------------------------------------------------------------------

def check_writable(model: LayersModel) -> None:
    """Refuse a model tfjs-layers cannot load, naming the first blocking layer (and how many
    more there are)."""
    found = tfjs_support.blockers(model)
    if found:
        name, cls, reason = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise UnsupportedError(f"{cls}: {reason}{more}", layer=name,
                               hint="a TF.js graph-model runs the model as ops: use `--to "
                                    "tfjs-graph`; `modelport inspect` lists every blocking "
                                    "layer and which targets the model reaches")


def to_model_json(model: LayersModel, manifest: list) -> dict:
    """The layers-model model.json document of ``model`` (its config in Keras 2's dialect),
    with ``manifest`` as its weights manifest."""
    config = keras_dialect.model_to_config(model, keras_dialect.KERAS2)
    source = model.source
    generated = (f"keras v{source.keras_version}" if source and source.keras_version
                 else "modelport")
    return {
        "format": "layers-model",
        "generatedBy": generated,
        "convertedBy": f"modelport v{__version__}",
        "modelTopology": {"model_config": config, "backend": "tensor_flow.js"},
        "weightsManifest": manifest,
    }


def ordered_weights(model: LayersModel) -> list[tuple[str, Weight]]:
    """(tfjs name, weight) of every variable, layer by layer; two variables with one tfjs name
    are refused."""
    out: list[tuple[str, Weight]] = []
    seen: dict[str, str] = {}
    for layer in model.layers:
        for owner, weight, name in tfjs_weight_names(layer):
            if name in seen:
                raise UnsupportedError(
                    f"two variables would both be named {name!r} in TF.js (layers "
                    f"{seen[name]!r} and {owner.name!r}); tfjs-layers refuses duplicate names",
                    layer=owner.name, hint="rename one of the layers")
            seen[name] = owner.name
            out.append((name, weight))
    return out


def _planned(model: LayersModel, quantize: list[tfjs_manifest.QuantizeRule], *,
             check: bool = True
             ) -> tuple[LayersModel, list[tuple[str, Weight]], dict[str, str]]:
    """What ``write`` writes, decided without writing: the model with tfjs-layers' rewrites,
    its weights by tfjs name, and the quantization ``quantize`` picks for each; every refusal
    of the writer is raised here."""
    model = tfjs_support.prepare(model)
    if check:
        check_writable(model)
    weights = ordered_weights(model)
    for name, weight in weights:
        if weight.array.dtype != object:
            tfjs_manifest.tfjs_dtype(name, weight.array)
    chosen = tfjs_manifest.choose_quantization(
        [n for n, w in weights if w.array.dtype.kind in "fi"], quantize)
    return model, weights, chosen


def check_writable_all(model: LayersModel,
                       quantize: list[tfjs_manifest.QuantizeRule] | None = None) -> None:
    """Every refusal ``write`` would make, without writing (``inspect``'s dry run): the
    tfjs-layers support table, weight names and dtypes, ``quantize``, and the Keras 2 config."""
    prepared, _, _ = _planned(model, quantize or [])
    keras_dialect.model_to_config(prepared, keras_dialect.KERAS2)


def write(model: LayersModel, dst: str | os.PathLike, *, force: bool = False,
          shard_size: int = tfjs_manifest.DEFAULT_SHARD_SIZE,
          quantize: list[tfjs_manifest.QuantizeRule] | None = None,
          check: bool = True, metadata: dict[str, object] | None = None) -> Path:
    """Write a layers-model folder (``dst``, or ``dst``'s folder when it names a ``.json``);
    ``metadata``: userDefinedMetadata entries, as tensorflowjs_converter's ``--metadata``.

    Weights the source stored quantized (``Weight.quantization``) are written with the same
    quantization and bytes, unless a ``quantize`` rule covers them (``none``: unquantized).
    ``check=False`` skips the tfjs support table; it exists so that tests can show what real
    tfjs does with the models modelport refuses. Never use it to ship a model.
    """
    model, weights, chosen = _planned(model, quantize or [], check=check)
    # a weight the source stored quantized stays so (same dtype, same bytes) unless a
    # --quantize rule covers it: re-writing a uint8 model must not quadruple it silently
    kept = {n: w.quantization for n, w in weights if w.quantization}
    dst = Path(dst)
    folder, json_name = destination(dst)

    def fill(target: Path) -> None:
        group = tfjs_manifest.write_group(target, 0, [(n, w.array) for n, w in weights],
                                          shard_size=shard_size, quantization=chosen,
                                          kept=kept)
        doc = to_model_json(model, [group])
        if metadata:
            doc["userDefinedMetadata"] = {**(doc.get("userDefinedMetadata") or {}), **metadata}
        (target / json_name).write_text(json.dumps(doc))

    if dst.suffix != ".json" or not folder.exists():
        with atomic_output(folder, directory=True, force=force) as tmp:
            fill(tmp)
        return folder / json_name
    # Into an existing folder: stage next to it, then move the files in, model.json last.
    check_destination(dst, force)
    with staging(dst) as stage:
        fill(stage)
        produced = sorted(p.name for p in stage.iterdir())
        clashes = [n for n in produced if n != json_name and (folder / n).exists()]
        if clashes and not force:
            raise OutputExistsError(f"shard files already exist: {clashes[:3]}", file=folder,
                                    hint="pass --force to replace them")
        for n in produced:
            if n != json_name:
                os.replace(stage / n, folder / n)
        os.replace(stage / json_name, dst)
    return dst
