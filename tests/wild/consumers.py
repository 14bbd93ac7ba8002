"""Run a model in its real consumer: onnxruntime, real tfjs under Node, or Keras 3.

The wild harness runs each source in its own framework and each converted file in the
program that will load it, on the same inputs, and compares the two. Nothing here uses
modelport's own executors: these are the independent witnesses.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


class ConsumerError(Exception):
    """The consumer could not load or run the model (the message says which and why)."""


def _tfjs_json(path: Path) -> Path:
    return path / "model.json" if path.is_dir() else path


def input_names(fmt: str, path: Path) -> list[str]:
    """The model's input names in its own order, as its consumer feeds them."""
    try:
        return _input_names(fmt, path)
    except ConsumerError:
        raise
    except Exception as e:  # the consumer's own failure is the finding
        raise ConsumerError(f"{fmt} consumer cannot read the inputs of {path.name}: "
                            f"{type(e).__name__}: {str(e)[:300]}") from e


def _input_names(fmt: str, path: Path) -> list[str]:
    if fmt == "onnx":
        import onnxruntime as ort
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return [i.name for i in sess.get_inputs()]
    if fmt == "tfjs-graph":
        return [name for name, _ in _graph_inputs(_tfjs_json(path))]
    if fmt == "tfjs-layers":
        cfg = json.loads(_tfjs_json(path).read_text())["modelTopology"]
        cfg = cfg.get("model_config", cfg)
        layers = cfg["config"]["layers"] if isinstance(cfg["config"], dict) else cfg["config"]
        if cfg["class_name"] == "Sequential":
            return [layers[0]["config"]["name"]]
        return [spec[0] for spec in cfg["config"]["input_layers"]]
    model = _keras_load(path)
    return [t.name.split(":")[0] for t in model.inputs]


def _graph_inputs(model_json: Path) -> list[tuple[str, str]]:
    """(tensor name, dtype) of a graph-model's inputs: its signature, else its Placeholders."""
    doc = json.loads(model_json.read_text())
    sig = doc.get("signature") or doc.get("modelTopology", {}).get("signature") or {}
    if sig.get("inputs"):
        return [(v.get("name", k), v.get("dtype", "DT_FLOAT")) for k, v in sig["inputs"].items()]
    return [(n["name"], n.get("attr", {}).get("dtype", {}).get("type", "DT_FLOAT"))
            for n in doc["modelTopology"]["node"] if n["op"] == "Placeholder"]


def input_specs(fmt: str, path: Path) -> list[tuple[list[int], str]] | None:
    """(shape, "float" or "int") per input when every shape is known (a Keras model's free
    batch becomes 1), else None."""
    try:
        return _input_specs(fmt, path)
    except Exception as e:  # the consumer's own failure is the finding
        raise ConsumerError(f"{fmt} consumer cannot read the inputs of {path.name}: "
                            f"{type(e).__name__}: {str(e)[:300]}") from e


def _static(shape) -> list[int] | None:
    dims = [d if isinstance(d, int) and d > 0 else None for d in shape]
    return None if None in dims else dims  # type: ignore[return-value]


def _input_specs(fmt: str, path: Path) -> list[tuple[list[int], str]] | None:
    specs: list[tuple[list[int] | None, str]] = []
    if fmt == "onnx":
        import onnxruntime as ort
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        specs = [(_static(i.shape), "int" if "int" in i.type else "float")
                 for i in sess.get_inputs()]
    elif fmt == "tfjs-graph":
        doc = json.loads(_tfjs_json(path).read_text())
        sig = doc.get("signature") or doc.get("modelTopology", {}).get("signature") or {}
        if not sig.get("inputs"):
            return None
        for v in sig["inputs"].values():
            dims = [int(d.get("size", -1)) for d in v.get("tensorShape", {}).get("dim", [])]
            specs.append((_static(dims), "int" if "INT" in v.get("dtype", "") else "float"))
    elif fmt == "tfjs-layers":
        cfg = json.loads(_tfjs_json(path).read_text())["modelTopology"]
        cfg = cfg.get("model_config", cfg)
        layers = cfg["config"]["layers"] if isinstance(cfg["config"], dict) else cfg["config"]
        by_name = {layer["config"]["name"]: layer for layer in layers}
        for name in input_names(fmt, path):
            conf = by_name[name]["config"]
            shape = conf.get("batch_input_shape") or conf.get("batch_shape")
            specs.append((_static([d or 1 for d in shape]),
                          "int" if "int" in conf.get("dtype", "") else "float"))
    else:
        model = _keras_load(path)
        specs = [(_static([d or 1 for d in t.shape]),
                  "int" if "int" in str(t.dtype) else "float") for t in model.inputs]
    if any(shape is None for shape, _ in specs):
        return None
    return [(shape, kind) for shape, kind in specs if shape is not None]


_KERAS_CACHE: dict[str, object] = {}
# Keras keeps global state (names, the backend's tracing); test_wild.py runs two models at a
# time in threads, so their Keras work takes turns.
KERAS_LOCK = threading.RLock()


def forget_keras() -> None:
    """Drop the Keras models loaded so far (one model's routes are done)."""
    with KERAS_LOCK:
        _KERAS_CACHE.clear()


def _keras_load(path: Path):
    with KERAS_LOCK:
        return _keras_load_locked(path)


def _keras_load_locked(path: Path):
    key = str(path)
    if key not in _KERAS_CACHE:
        import keras

        import modelport.keras_layers  # noqa: F401  (modelport's own layers, if used)
        try:
            _KERAS_CACHE[key] = keras.saving.load_model(str(path), compile=False)
        except Exception as e:  # any failure to load is the finding
            raise ConsumerError(f"Keras {keras.__version__} cannot load {path.name}: "
                                f"{type(e).__name__}: {str(e)[:300]}") from e
    return _KERAS_CACHE[key]


def run(fmt: str, path: Path, inputs: list[np.ndarray], timeout: float = 240) -> list[np.ndarray]:
    """Run the model at ``path`` (format ``fmt``) on ``inputs`` (in its input order)."""
    try:
        if fmt == "onnx":
            return _run_onnx(path, inputs)
        if fmt == "tfjs-graph":
            return _run_graph(_tfjs_json(path), inputs, timeout)
        if fmt == "tfjs-layers":
            return _run_layers(_tfjs_json(path), inputs, timeout)
        return _run_keras(path, inputs)
    except ConsumerError:
        raise
    except Exception as e:  # the consumer's own failure is the finding
        raise ConsumerError(f"{fmt} consumer failed on {path.name}: {type(e).__name__}: "
                            f"{str(e)[:400]}") from e


def _run_onnx(path: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feeds = {}
    for spec, a in zip(sess.get_inputs(), inputs):
        want = {"tensor(float)": np.float32, "tensor(int64)": np.int64,
                "tensor(int32)": np.int32, "tensor(bool)": np.bool_,
                "tensor(uint8)": np.uint8, "tensor(double)": np.float64}.get(spec.type)
        feeds[spec.name] = a.astype(want) if want is not None else a
    return [np.asarray(o) for o in sess.run(None, feeds)]


def _wire(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.bool_:
        return a
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int32)
    return a.astype(np.float32)


def _run_graph(model_json: Path, inputs: list[np.ndarray], timeout: float) -> list[np.ndarray]:
    from modelport.runtime import tfjs_node
    names = [n for n, _ in _graph_inputs(model_json)]
    feeds = [(n, _wire(a)) for n, a in zip(names, inputs)]
    return [np.asarray(o) for o in tfjs_node.run_graph(model_json, feeds, [], timeout)]


def _run_layers(model_json: Path, inputs: list[np.ndarray], timeout: float) -> list[np.ndarray]:
    from modelport.runtime import tfjs_node
    names = input_names("tfjs-layers", model_json)
    result = tfjs_node.run_layers(model_json, [(n, _wire(a)) for n, a in zip(names, inputs)],
                                  timeout)
    return [np.asarray(o) for o in result["arrays"]]


def _run_keras(path: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    with KERAS_LOCK:
        return _run_keras_locked(path, inputs)


def _run_keras_locked(path: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    model = _keras_load(path)
    feeds = [a.astype(np.dtype(str(t.dtype))) if hasattr(t, "dtype") else a
             for t, a in zip(model.inputs, inputs)]
    with warnings.catch_warnings():
        # Keras warns when a list meets a single-input model saved with a bare input (or the
        # reverse); it runs either way.
        warnings.filterwarnings("ignore", message="The structure of `inputs`")
        out = model(feeds, training=False)
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o) for o in outs]


def compare(expected: list[np.ndarray], actual: list[np.ndarray]) -> tuple[bool, float, str]:
    """(match, worst error relative to the output's scale, detail) of two runs' outputs.

    Outputs pair in order; when the counts or shapes disagree, they pair by shape. An output
    matches when max|a - e| <= 1e-7 + 1e-3 * max|e| (float32 engines differ in summation
    order, not more; relative, so that small outputs such as saturated sigmoids are judged
    too); integer and boolean outputs must be equal.
    """
    if len(expected) != len(actual):
        return False, float("inf"), f"{len(actual)} outputs, the source has {len(expected)}"
    pairs = list(zip(expected, actual))
    if any(e.shape != a.shape for e, a in pairs):
        left = list(range(len(actual)))
        pairs = []
        for e in expected:
            match = next((i for i in left if actual[i].shape == e.shape), None)
            if match is None:
                return False, float("inf"), (f"output shapes {[a.shape for a in actual]}, the "
                                             f"source's {[x.shape for x in expected]}")
            left.remove(match)
            pairs.append((e, actual[match]))
    worst, ok = 0.0, True
    for e, a in pairs:
        e64, a64 = e.astype(np.float64), a.astype(np.float64)
        if e64.size == 0:
            continue
        if not (np.isfinite(e64).all() and np.isfinite(a64).all()):
            same = np.array_equal(np.isnan(e64), np.isnan(a64)) and \
                np.array_equal(e64[~np.isfinite(e64)], a64[~np.isfinite(a64)])
            fin = np.isfinite(e64) & np.isfinite(a64)
            if not same:
                return False, float("inf"), "non-finite values differ"
            e64, a64 = e64[fin], a64[fin]
            if e64.size == 0:
                continue
        err = float(np.max(np.abs(e64 - a64)))
        scale = float(np.max(np.abs(e64)))
        exact = not np.issubdtype(e.dtype, np.floating)
        passed = err == 0 if exact else err <= 1e-7 + 1e-3 * scale
        ok = ok and passed
        worst = max(worst, err / scale if scale > 0 else err)
    return ok, worst, ""
