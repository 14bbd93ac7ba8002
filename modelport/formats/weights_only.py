"""Files that hold a model's weights but not its architecture, told apart from unreadable ones.

Users hand modelport what ``model.save_weights`` wrote (Keras 2 ``.h5``, Keras 3
``.weights.h5``) or a TF.js weights manifest without the model.json that holds the topology.
Each is a well-formed file of its kind; what is missing is the layer graph. The refusal says
what the file is, what it lacks and how to supply it. It is an ``UnsupportedError`` (exit 4),
not a ``FormatError`` (exit 3, for files that are unreadable, corrupt or unsafe): the file is
valid, and converting it needs what only the program that wrote it holds (face-api.js ships
its models as weights manifests, their topology in its code).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import FormatError, UnsupportedError

KERAS_HINT = ("rebuild the model in Keras, call model.load_weights() on this file, then save the "
              "whole model (model.save('model.keras') or model.save('model.h5')) and convert that")
TFJS_HINT = ("convert the model.json written with these shards (it holds modelTopology and this "
             "weightsManifest); or re-export the model with tensorflowjs_converter, which writes "
             "both")


def _names(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def h5_refusal(f: object, path: Path) -> FormatError | UnsupportedError:
    """The refusal of an HDF5 file without ``model_config`` (``f``: it, opened with h5py)."""
    attrs = getattr(f, "attrs", {})
    keys = list(f.keys()) if hasattr(f, "keys") else []
    if "layer_names" in attrs:
        names = [n.decode("utf8", "replace") if isinstance(n, bytes) else str(n)
                 for n in attrs["layer_names"]]
        what = (f"a Keras weights-only file (Keras 2 model.save_weights: the weights of "
                f"{len(names)} layers: {_names(names)})")
    elif "vars" in keys and "layers" in keys:
        what = "a Keras 3 weights-only file (model.save_weights, a .weights.h5)"
    else:
        return FormatError("HDF5 file is not a Keras model: it has no model_config (the "
                           "architecture) and no Keras weights layout", file=path,
                           hint="convert a file written by Keras model.save()")
    if (path.parent / "config.json").is_file():  # the weights of an unzipped .keras
        return UnsupportedError(f"{what}: the weights part of an unzipped .keras model, whose "
                           "architecture is in the config.json next to it", file=path,
                           hint=f"convert the folder {path.parent} (or the .keras zip)")
    return UnsupportedError(f"{what}; it has no model_config, the architecture modelport needs to "
                       "rebuild the layers", file=path, hint=KERAS_HINT)


def manifest_refusal(path: Path, manifest: object) -> UnsupportedError:
    """The refusal of a TF.js weights manifest (a list of ``{paths, weights}`` groups) given
    without a topology."""
    names: list[str] = []
    groups = manifest if isinstance(manifest, list) else []
    for group in groups:
        if isinstance(group, dict) and isinstance(group.get("weights"), list):
            names.extend(str(w.get("name")) for w in group["weights"] if isinstance(w, dict))
    return UnsupportedError(
        f"a TF.js weights manifest ({len(names)} weights in {len(groups)} group(s): "
        f"{_names(names) or 'none'}) without a model topology: it holds the weights, not the "
        "layer or op graph modelport needs", file=path, hint=TFJS_HINT)


def is_manifest(data: object) -> bool:
    """Whether JSON ``data`` is a TF.js weights manifest: a list of ``{paths, weights}``."""
    return isinstance(data, list) and bool(data) and all(
        isinstance(g, dict) and "paths" in g and "weights" in g for g in data)


def folder_refusal(folder: Path) -> UnsupportedError | None:
    """The refusal of a folder holding TF.js weights but no model.json (None: it holds none)."""
    manifest = folder / "weights_manifest.json"
    if (folder / "tensorflowjs_model.pb").is_file():  # (with its manifest it is read)
        return UnsupportedError(
            "a TF.js graph-model in the pre-1.0 format without its weights_manifest.json: "
            "tensorflowjs_model.pb holds the op graph, the manifest names its weight shards",
            file=folder, hint="put the weights_manifest.json written with it beside "
                              "tensorflowjs_model.pb, or convert the original TensorFlow model "
                              "again with tensorflowjs_converter 1.0 or later")
    if manifest.is_file():
        from ..fsutil import read_json_file

        return manifest_refusal(manifest, read_json_file(manifest))
    if any(folder.glob("group*-shard*of*.bin")):
        return UnsupportedError("a folder of TF.js weight shards without the model.json that "
                           "describes them (topology and weights manifest)", file=folder,
                           hint=TFJS_HINT)
    return None
