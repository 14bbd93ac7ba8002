"""Options know where they apply: one given to a route it does not affect is a usage error
(exit 2) naming the option, the route and where it applies, before any model is read; a flag
left at its default never is. Cheap checks come first: a bad --quantize spec before the model
is read, a destination folder that cannot be written before the conversion starts; with
--json a usage error (click's own included) is JSON on stdout."""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelport.api import routes
from modelport.api.options import SCOPES, CheckOptions, ConvertOptions
from modelport.cli import main

from .conftest import FIXTURES

H5 = FIXTURES / "keras3" / "mlp_sequential.h5"
KERAS = FIXTURES / "keras3" / "cnn_bn_pool.keras"
LAYERS_MODEL = FIXTURES / "tfjs" / "tfjs_mlp"
GRAPH = FIXTURES / "tfjs_graph" / "dense"


@pytest.fixture(scope="module")
def onnx_src(tmp_path_factory) -> Path:
    """An ONNX model modelport wrote from the Keras fixture."""
    src = tmp_path_factory.mktemp("onnx") / "m.onnx"
    result = CliRunner().invoke(main, ["convert", str(H5), str(src), "-q", "--no-validate"])
    assert result.exit_code == 0, result.output
    return src


@pytest.fixture()
def never_read(monkeypatch):
    """Fail the test if the source model is read (the usage error must come first)."""
    from modelport.api import core

    def refuse(*_args, **_kwargs):
        raise AssertionError("the source model was read")
    monkeypatch.setattr(core, "load", refuse)


def _convert(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["convert", *map(str, args)])
    return result.exit_code, result.output


def _usage_error(tmp_path: Path, src: Path, dst: str, *options: str) -> str:
    """Convert with ``options``; assert exit 2, one error line, nothing written; the line."""
    code, output = _convert(src, tmp_path / dst, "-q", *options)
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("modelport: error: "), output
    assert list(tmp_path.iterdir()) == [], "something was written"
    return lines[0]


# (id, source, destination, options, what the message must say)
MISPLACED = [
    ("inputs-layout-to-tfjs-layers", H5, "web", ["--inputs-layout", "channels_first"],
     "--inputs-layout channels_first does not apply to keras-h5 -> tfjs-layers"),
    ("inputs-layout-to-h5", KERAS, "m.h5", ["--inputs-layout", "channels_first"],
     "keras-v3 -> keras-h5"),
    ("inputs-layout-to-keras", H5, "m.keras", ["--inputs-layout", "channels_first"],
     "keras-h5 -> keras-v3"),
    ("inputs-layout-default-value-given", H5, "m.keras", ["--inputs-layout", "channels_last"],
     "--inputs-layout channels_last does not apply"),
    ("inputs-layout-onnx-to-graph", "ONNX", "web", ["--inputs-layout", "channels_first"],
     "onnx -> tfjs-graph"),
    ("opset-to-tfjs-layers", H5, "web", ["--opset", "18"],
     "--opset 18 does not apply to keras-h5 -> tfjs-layers"),
    ("opset-to-h5", KERAS, "m.h5", ["--opset", "18"], "keras-v3 -> keras-h5"),
    ("opset-to-keras", H5, "m.keras", ["--opset", "13"], "keras-h5 -> keras-v3"),
    ("opset-layers-model-to-h5", LAYERS_MODEL, "m.h5", ["--opset", "18"],
     "tfjs-layers -> keras-h5"),
    ("opset-layers-model-to-tfjs-layers", LAYERS_MODEL, "web", ["--opset", "18"],
     "tfjs-layers -> tfjs-layers"),
    ("opset-graph-to-keras", GRAPH, "m.h5", ["--opset", "18"], "tfjs-graph -> keras-h5"),
    ("shard-size-to-onnx", H5, "m.onnx", ["--shard-size", "1MiB"],
     "--shard-size 1048576 does not apply to keras-h5 -> onnx"),
    ("shard-size-to-h5", KERAS, "m.h5", ["--shard-size", "1MiB"], "keras-v3 -> keras-h5"),
    ("shard-size-to-keras", H5, "m.keras", ["--shard-size", "4194304"], "keras-h5 -> keras-v3"),
    ("quantize-to-onnx", H5, "m.onnx", ["--quantize", "uint8"],
     "--quantize does not apply to keras-h5 -> onnx"),
    ("quantize-to-h5", KERAS, "m.h5", ["--quantize", "float16"], "keras-v3 -> keras-h5"),
    ("quantize-to-keras", H5, "m.keras", ["--quantize", "uint8:*/kernel"],
     "keras-h5 -> keras-v3"),
    ("device-cuda-read-back", H5, "m.keras", ["--device", "cuda"],
     "--device cuda does not apply to keras-h5 -> keras-v3"),
    ("device-cpu-read-back", H5, "web", ["--device", "cpu"], "keras-h5 -> tfjs-layers"),
    ("device-cuda-no-validate", H5, "m.onnx", ["--device", "cuda", "--no-validate"],
     "no numeric check"),
    ("device-cuda-without-onnxruntime", KERAS, "web", ["--to", "tfjs-graph", "--device",
                                                       "cuda"], "cuda only where onnxruntime"),
    ("engine-tfjs-graph-source", GRAPH, "m.onnx", ["--engine", "tfjs"],
     "--engine tfjs does not apply to tfjs-graph -> onnx"),
    ("engine-auto-graph-source", GRAPH, "m.onnx", ["--engine", "auto"],
     "always runs in the NumPy TF reference"),
    ("engine-keras-to-onnx", H5, "m.onnx", ["--engine", "reference"], "keras-h5 -> onnx"),
    ("engine-no-validate", KERAS, "web", ["--to", "tfjs-graph", "--engine", "reference",
                                          "--no-validate"], "no numeric check"),
    ("atol-read-back", H5, "web", ["--atol", "0.1"], "--atol/--rtol does not apply"),
    ("rtol-no-validate", H5, "m.onnx", ["--rtol", "0.1", "--no-validate"],
     "--atol/--rtol does not apply"),
    ("inputs-read-back", H5, "m.keras", ["--inputs", str(FIXTURES / "keras3" /
                                                         "mlp_sequential.npz")],
     "--inputs "),
]


@pytest.mark.parametrize("src,dst,options,says",
                         [pytest.param(s, d, o, w, id=i) for i, s, d, o, w in MISPLACED])
def test_an_option_the_route_does_not_use_is_a_usage_error(src, dst, options, says, tmp_path,
                                                            onnx_src, never_read):
    line = _usage_error(tmp_path, onnx_src if src == "ONNX" else src, dst, *options)
    assert says in line, line
    flag = next(o for o in options if o.startswith("--") and o not in ("--to", "--no-validate"))
    flag = "--atol/--rtol" if flag in ("--atol", "--rtol") else flag
    assert f"{flag} applies to " in line, line  # ... and where it does apply
    assert f"leave {flag} out" in line


def test_quantize_to_a_non_tfjs_target_was_exit_4_and_is_now_a_usage_error(tmp_path):
    """Changed by issue 16: '--quantize applies to TF.js targets only' was an UnsupportedError
    (exit 4); it is a usage error (exit 2) that says where --quantize applies."""
    line = _usage_error(tmp_path, H5, "m.onnx", "--quantize", "uint8")
    assert "--quantize applies to TF.js targets (tfjs-layers, tfjs-graph)" in line


def test_options_that_apply_are_accepted(tmp_path):
    code, output = _convert(H5, tmp_path / "web", "-q", "--quantize", "uint8:*/kernel",
                            "--shard-size", "1kB")
    assert code == 0, output
    code, output = _convert(GRAPH, tmp_path / "g.onnx", "-q", "--engine", "reference",
                            "--device", "cpu", "--opset", "18", "--atol", "1e-3")
    assert code == 0, output
    code, output = _convert(KERAS, tmp_path / "k.onnx", "-q", "--inputs-layout",
                            "channels_first", "--no-validate", "--opset", "15")
    assert code == 0, output


def test_defaults_never_count_as_given(tmp_path):
    """A flag left out is not given: no route refuses a conversion without flags."""
    for src, dst in ((H5, "a.keras"), (H5, "web"), (LAYERS_MODEL, "b.h5"), (GRAPH, "c.h5")):
        code, output = _convert(src, tmp_path / dst, "-q")
        assert code == 0, f"{src} -> {dst}: {output}"


def test_a_quantize_pattern_matching_no_weight_names_it_and_some_weights(tmp_path):
    line = _usage_error(tmp_path, H5, "web", "--quantize", "uint8:*/kernal")
    assert "--quantize pattern '*/kernal' (uint8) matches none of the weights" in line, line
    assert "'dense/kernel'" in line or "kernel'" in line, line


def test_a_quantize_pattern_matching_no_weight_of_a_graph_model(tmp_path):
    line = _usage_error(tmp_path, GRAPH, "web", "--quantize", "float16:no_such_weight",
                        "--engine", "reference")
    assert "'no_such_weight'" in line and "matches none" in line, line


@pytest.mark.parametrize("spec", ["int4", "uint8,float16", "int8:*/kernel"])
def test_a_bad_quantize_spec_is_a_usage_error_before_the_model_is_read(spec, tmp_path,
                                                                       never_read):
    line = _usage_error(tmp_path, H5, "web", "--quantize", spec)
    assert "--quantize: unknown quantization" in line, line


def test_two_quantizations_for_every_weight_are_a_usage_error(tmp_path, never_read):
    line = _usage_error(tmp_path, H5, "web", "--quantize", "uint8", "--quantize", "float16")
    assert "more than one quantization applies to all weights" in line, line


def test_usage_errors_are_json_with_json(tmp_path, never_read):
    result = CliRunner().invoke(main, ["convert", str(H5), str(tmp_path / "m.onnx"),
                                       "--quantize", "int4", "--json"])
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["error"] == "UsageError" and doc["exit_code"] == 2
    assert "int4" in doc["message"] and doc["kind"] == "usage"
    result = CliRunner().invoke(main, ["convert", str(H5), str(tmp_path / "web"), "--opset",
                                       "18", "--json"])
    doc = json.loads(result.stdout)
    assert result.exit_code == 2 and doc["error"] == "UsageError", result.output
    assert "--opset 18 does not apply" in doc["message"]


@pytest.mark.parametrize("command,args", [
    ("convert", ["--opset", "25"]),
    ("convert", ["--to", "pb"]),
    ("convert", ["--shard-size", "lots"]),
    ("convert", ["--no-such-flag"]),
    ("validate", ["--batch", "0"]),
    ("validate", ["--output-tolerance", "y=x"]),
    ("inspect", ["--bogus"]),
])
def test_click_usage_errors_are_json_on_stdout_with_json(command, args, tmp_path):
    operands = [str(H5)] if command == "inspect" else [str(H5), str(tmp_path / "m.onnx")]
    result = CliRunner().invoke(main, [command, *operands, *args, "--json"])
    assert result.exit_code == 2, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["error"] == "UsageError" and doc["exit_code"] == 2
    assert doc["message"], doc
    # without --json: click's own message on stderr, as before
    plain = CliRunner().invoke(main, [command, *operands, *args])
    assert plain.exit_code == 2 and plain.stdout == ""


def test_an_unwritable_destination_folder_is_found_before_the_model_is_read(tmp_path,
                                                                             monkeypatch,
                                                                             never_read):
    from modelport import fsutil

    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access

    def access(path, mode, **kwargs):  # what a read-only file system or a 0555 folder says
        return False if Path(path) == locked else real(path, mode, **kwargs)
    monkeypatch.setattr(fsutil.os, "access", access)
    for name in ("m.onnx", "m.h5", "web", "web/model.json"):  # web/: its folder is made there
        code, output = _convert(KERAS, locked / name, "-q")
        assert code == 7, output
        assert f"{locked}: the destination's folder cannot be written" in output, output
    assert list(locked.iterdir()) == []


def test_a_destination_under_a_regular_file_is_not_called_missing(tmp_path, never_read):
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    code, output = _convert(KERAS, afile / "m.onnx", "-q")
    assert code == 7 and "does not exist" not in output, output
    assert f"{afile}: the destination's folder is not a folder" in output, output
    code, output = _convert(KERAS, afile / "sub" / "m.onnx", "-q")
    assert code == 7 and "does not exist" not in output, output
    assert f"cannot be made: {afile} is not a folder" in output, output
    code, output = _convert(KERAS, afile / "web", "-q")  # a TF.js folder under the file
    assert code == 7 and "is not a folder" in output, output
    assert afile.read_text() == "x"


# --- the declarations themselves -----------------------------------------------------------------

def test_every_route_dependent_option_declares_its_scope():
    """Adding an option means declaring where it applies: every field of the option objects
    is route-independent (to, force, validate) or has a row in SCOPES."""
    universal = {"to", "force", "validate", "onnx_opset"}
    names = {f.name for f in fields(ConvertOptions)} | {f.name for f in fields(CheckOptions)}
    assert names - universal == set(SCOPES), sorted(names - universal ^ set(SCOPES))


def _route(name: str) -> routes.Route:
    return routes.ROUTES[name]


# Which options each route honours (a row per route: the table test of SCOPES).
EXPECTED = {
    "layers -> keras-h5": set(),
    "layers -> keras-v3": set(),
    "layers -> tfjs-layers": {"quantize", "shard_size", "metadata"},
    "layers -> onnx": {"opset", "inputs_layout", "device", "tolerances", "inputs", "batch",
                       "seed", "save_inputs", "save_outputs", "per_layer"},
    "layers -> tfjs-graph": {"quantize", "shard_size", "metadata", "opset", "inputs_layout", "device",
                             "engine", "tolerances", "inputs", "batch", "seed", "save_inputs", "save_outputs"},
    "onnx -> onnx": {"device", "tolerances", "inputs", "batch", "seed", "save_inputs", "save_outputs"},
    "onnx -> tfjs-graph": {"quantize", "shard_size", "metadata", "device", "engine", "tolerances",
                           "inputs", "batch", "seed", "save_inputs", "save_outputs"},
    "onnx -> keras-h5": {"inputs_layout", "device", "tolerances", "inputs", "batch", "seed", "save_inputs", "save_outputs"},
    "onnx -> tfjs-layers": {"quantize", "shard_size", "metadata", "inputs_layout", "device",
                            "tolerances", "inputs", "batch", "seed", "save_inputs", "save_outputs"},
    "tfjs-graph -> onnx": {"opset", "device", "engine", "tolerances", "inputs", "batch",
                           "seed", "save_inputs", "save_outputs"},
    "tfjs-graph -> tfjs-graph": {"quantize", "shard_size", "metadata", "device", "engine", "tolerances",
                                 "inputs", "batch", "seed", "save_inputs", "save_outputs"},
    "tfjs-graph -> keras-v3": {"inputs_layout", "device", "engine", "tolerances", "inputs",
                               "batch", "seed", "save_inputs", "save_outputs"},
}
# ONNX and TF.js graph-model sources have their dims pinned and their outputs cut
PINNING = {"input_shapes", "outputs", "batch"}
for _name in EXPECTED:
    if _name.startswith(("onnx ", "tfjs-graph ")):
        EXPECTED[_name] |= PINNING
    if _name.startswith("onnx "):  # ONNX inputs fixed to a value (--input-value)
        EXPECTED[_name].add("input_values")
VALUE = {"device": "cpu", "engine": "reference"}  # values every checked route honours


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scopes_by_route(name):
    route = _route(name)
    honoured = {option for option, scope in SCOPES.items()
                if scope.applies(route, VALUE.get(option, object()))}
    assert honoured == EXPECTED[name]
    # without its numeric check a route honours only what shapes the written file
    unchecked = {option for option, scope in SCOPES.items()
                 if scope.applies(route.checked(False), VALUE.get(option, object()))}
    shaping = {"quantize", "shard_size", "metadata", "opset", "inputs_layout"} | (
        PINNING if route.source in (routes.ONNX, routes.GRAPH) else set()) | (
        {"input_values"} if route.source == routes.ONNX else set())
    assert unchecked == EXPECTED[name] & shaping


def test_every_source_kind_reaches_every_target():
    from modelport.formats import sniff

    for kind in (routes.LAYERS, routes.ONNX, routes.GRAPH):
        for target in sniff.TARGETS.values():
            assert f"{kind} -> {target}" in routes.ROUTES
    assert len(routes.ROUTES) == 15
