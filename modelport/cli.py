"""The ``modelport`` command: parse options, build the option objects, call the API, render
the typed result.

Exit codes: 0 success, 2 usage error, 3 unreadable or unsafe input, 4 unsupported model or
target, 5 destination exists (no --force, or not replaceable), 6 parity mismatch, 7 destination
cannot be written, 70 internal error.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ._version import __version__
from .cli_run import _emit_error, _run
from .errors import ParityError, UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from .api import CheckOptions, ConversionReport, ConvertOptions, Inspection
    from .check.parity import ParityReport, Tolerances
    from .check.readback import Quantization

T = TypeVar("T")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024, "m": 10**6,
          "mb": 10**6, "mi": 1 << 20, "mib": 1 << 20, "g": 10**9, "gb": 10**9, "gi": 1 << 30,
          "gib": 1 << 30}


def human_bytes(n: float) -> str:
    """``1.2 MB``, as the reports print sizes."""
    from .api import human_bytes as fmt

    return fmt(n)


class ByteSize(click.ParamType):
    """A size in bytes: ``4194304``, ``4MiB``, ``500kB``."""

    name = "bytes"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        """The size as an int; anything else is click's usage error."""
        if isinstance(value, int):
            return value
        m = _SIZE.match(str(value))
        if not m:
            self.fail(f"{value!r} is not a size (examples: 4194304, 4MiB, 500kB)", param, ctx)
        size = int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])
        if size <= 0:
            self.fail("the size must be positive", param, ctx)
        return size


class JsonCommand(click.Command):
    """A command with ``--json`` whose usage errors, click's own included (a bad --opset
    value, a missing argument), print as the same JSON as every other error on stdout."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """click's parsing; with ``--json`` among the options, its error as JSON, exit 2."""
        given = list(args)  # click's parser consumes the list it is handed
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            options = given[:given.index("--")] if "--" in given else given
            if "--json" not in options:
                raise
            _emit_error(UsageError(e.format_message()), True)
            ctx.exit(UsageError.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="modelport")
def main() -> None:
    """Convert trained models between Keras (.h5, .keras), ONNX and TF.js, and check the result.

    \b
    Formats are recognised from the content of SRC and from the name of DST:
      model.h5 / model.hdf5   Keras HDF5 (read: Keras 2 and 3; written: Keras 3)
      model.keras             Keras 3 zip (or its unzipped folder)
      folder/ or model.json   TF.js layers-model (model.json + binary weight shards)
      model.onnx              ONNX (written from Keras, TF.js layers- and graph-models)
      folder/ (from ONNX)     TF.js graph-model (--to tfjs-graph from Keras sources)
      ONNX -> .h5/.keras      raised to Keras layers, channels-last (--to tfjs-layers for a
                              TF.js layers-model); ops with no Keras layer are all listed

    \b
    Exit codes: 0 ok, 2 usage, 3 unreadable or unsafe input, 4 unsupported model or target,
    5 destination exists (use --force), 6 parity mismatch, 7 destination cannot be written
    (missing folder, permissions, disk full), 70 internal error.
    """


# convert, validate and inspect (whose verdicts size the check as convert's check does)
_MAX_MEMORY = click.option(
    "--max-memory", type=str, default=None, callback=lambda c, p, v: _size(v),
    help="Memory budget of the parity check, e.g. 4G (default: about 640 MB plus 4x the "
         "model's weight bytes, capped by available memory); a check that would need more "
         "is refused with exit 4.")


def _check_files(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options convert and validate share for the check's inputs and its reports."""
    options = [
        click.option("--isolate", is_flag=True,
                     help="Read an .h5 source in a child process first, under a 60 s limit "
                          "(libhdf5 loops forever on some corrupt files; this refuses them, "
                          "exit 3)."),
        _MAX_MEMORY,
        click.option("--model-explorer", "model_explorer", type=click.Path(dir_okay=False),
                     default=None, metavar="FILE.json",
                     help="Also write each layer's error (the per-layer check's) as node data "
                          "that Google Model Explorer overlays on the model's graph."),
        click.option("--report", "report_html", type=click.Path(dir_okay=False), default=None,
                     metavar="FILE.html",
                     help="Also write the report as one self-contained HTML page (no network): "
                          "the summary, each output's statistics and verdict, and with "
                          "--per-layer a plot of each layer's error and an error histogram per "
                          "output."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@main.command(cls=JsonCommand)
@click.argument("src", type=click.Path(exists=False, dir_okay=True))
@click.argument("dst", type=click.Path(dir_okay=True))
@click.option("--to", "to", type=click.Choice(["h5", "keras", "tfjs-layers", "tfjs-graph", "onnx"]),
              help="Target format, when DST's name does not say it.")
@click.option("--quantize", "quantize", multiple=True, metavar="DTYPE[:PATTERNS]",
              help="TF.js weight quantization: uint8, uint16 or float16 for every float weight, "
                   "or DTYPE:PATTERN[,PATTERN] for weights whose names match (fnmatch, e.g. "
                   "'uint8:*/kernel'); none stores them unquantized. Weights a TF.js source "
                   "stored quantized stay so unless a rule covers them. Repeat for several "
                   "rules. TF.js targets only.")
@click.option("--shard-size", type=ByteSize(), default=None,
              help="TF.js shard size in bytes (suffixes kB, MB, KiB, MiB accepted; default "
                   "4194304). TF.js targets only.")
@click.option("--opset", type=click.IntRange(13, 21), default=None,
              help="ONNX opset of the ONNX modelport writes (13-21; default 17): .onnx targets, "
                   "and TF.js graph-models from Keras.")
@click.option("--inputs-layout", type=click.Choice(["channels_last", "channels_first"]),
              default=None,
              help="Image inputs of the result: NHWC (like Keras; the default) or NCHW, for ONNX "
                   "targets from Keras, and Keras targets from ONNX (NCHW: a leading Permute).")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="[NAME=]D0,D1,...",
              help="Pin an ONNX or TF.js graph-model input's free dims before converting "
                   "(repeat per input; NAME may be left out for a model with one input; "
                   "tf2onnx's NAME[D0,D1,...] works too): shapes are inferred again and what "
                   "Shape computed folds to constants, so models with dynamic height/width "
                   "raise to Keras. The result and the report record the pinned shapes; the "
                   "check runs at them. See `inspect` for the inputs' names and shapes.")
@click.option("--input-value", "input_values", multiple=True, metavar="NAME=V[,V...]",
              help="Fix an ONNX input to a value before converting (repeat per input): it "
                   "becomes a constant, so what the graph decides from it folds away (a "
                   "switch such as Silero VAD's sample rate: --input-value sr=16000). The "
                   "result has no such input; the report and the file record the value, and "
                   "the check feeds it to the source.")
@click.option("--batch", type=int, default=None, metavar="N",
              help="Pin the free batch (first) dim of every input of an ONNX or TF.js "
                   "graph-model source to N (a Keras target keeps its batch free); the check "
                   "runs N rows per probe (for a Keras source, all it sets).")
@click.option("--outputs", "outputs", multiple=True, metavar="NAME[,NAME...]",
              help="Cut an ONNX or TF.js graph-model at these values: they become the "
                   "outputs, and nodes only post-processing needed are dropped "
                   "(`modelport inspect SRC --values` lists the names).")
@click.option("--metadata", "metadata", multiple=True, metavar="KEY=FILE.json",
              help="TF.js targets: write FILE.json's content into model.json's "
                   "userDefinedMetadata under KEY (labels, preprocessing; web code reads it as "
                   "model.metadata), as tensorflowjs_converter's --metadata does. Repeatable.")
@click.option("--no-validate", is_flag=True,
              help="ONNX and TF.js graph targets: skip the numerical parity check.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
              help="onnxruntime device for the parity check (default auto).")
@click.option("--engine", type=str, default=None,
              metavar="auto|tfjs|reference|browser[:cpu,wasm,webgl,webgpu,mobile]",
              help="TF.js graph-model targets: run them in real @tensorflow/tfjs under Node "
                   "(tfjs), in modelport's NumPy executor of TF ops (reference), or tfjs when "
                   "Node and tfjs are installed (auto, the default). A graph-model source "
                   "always runs in the reference. browser: after the conversion's check, run "
                   "the TF.js output in headless Chromium on each backend (default cpu, wasm, "
                   "webgl; mobile: WebGL in float16, as information). `modelport setup web` "
                   "installs the real engines.")
@click.option("--atol", type=float, default=None,
              help="Parity: judge outputs by |a - e| <= atol + rtol*|e| instead of against "
                   "their measured float32 rounding noise (missing half: 1e-4 / 1e-3).")
@click.option("--rtol", type=float, default=None, help="Parity: relative tolerance (see --atol).")
@click.option("--inputs", "inputs_file", type=click.Path(dir_okay=False), default=None,
              help="Parity: inputs from an .npz (arrays named after the model's inputs) "
                   "instead of seeded random ones.")
@click.option("--save-inputs", type=click.Path(dir_okay=False), default=None,
              help="Parity: write the inputs the check ran to this .npz (--inputs reads it).")
@click.option("--save-outputs", type=click.Path(dir_okay=False), default=None,
              help="Parity: write both models' outputs and the rounding noise to this .npz.")
@click.option("--force", is_flag=True,
              help="Replace DST if it exists: a regular file, or a TF.js model folder (model.json "
                   "and .bin shards only); anything else is refused.")
@_check_files
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON report.")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages on stderr.")
def convert(src: str, dst: str, **flags: Any) -> None:
    """Convert SRC to DST and check the result.

    Keras and TF.js targets are read back and compared with SRC: the layer graph must be equal
    and every weight bit-identical (quantized weights report their error instead). ONNX and
    TF.js graph-model targets are checked numerically on the same inputs: SRC runs in its
    engine (NumPy executor of Keras semantics, onnxruntime, or for a TF.js graph real tfjs or
    the NumPy executor of TF ops), DST in another; a mismatch exits with code 6 (for Keras
    sources it names the first layer whose output diverges). The report says which engines ran.

    ONNX and TF.js graph-models are converted through each other: Keras -> TF.js graph goes
    Keras -> ONNX -> TF.js graph. Ops with no mapping are all listed in one error, before
    anything is written (exit 4).

    An option the route does not use (--opset for a Keras target, --quantize for a non-TF.js
    target, --device or --atol where no numeric check runs, ...) is a usage error (exit 2)
    that names where the option applies; so is a --quantize pattern that matches no weight.

    ONNX -> Keras (.h5, .keras, --to tfjs-layers) raises ops to Keras layers and makes the
    model channels-last; the parity check runs onnxruntime on SRC and the NumPy Keras
    executor on DST (inputs and outputs permuted as the --json report's "keras" entry says)
    and names the first diverging layer on a mismatch. Data-dependent ops have no Keras
    layer: convert those models to a TF.js graph-model instead. LRN has no stock layer either;
    it becomes modelport's LocalResponseNormalization, which Keras 3 loads after
    `import modelport.keras_layers` and TF.js after modelport/js/modelport_layers.js's
    register(tf) (the report says so when a model uses it).

    \b
    Examples:
      modelport convert model.h5 web_model/                     # Keras -> TF.js layers-model
      modelport convert model.h5 web_model/ --quantize uint8    # 4x smaller weights
      modelport convert web_model/model.json model.keras        # TF.js -> Keras 3
      modelport convert old_keras2.h5 upgraded.keras            # Keras 2 -> Keras 3
      modelport convert model.keras model.onnx --opset 18       # Keras -> ONNX, checked
      modelport convert model.onnx web_graph/                   # ONNX -> TF.js graph-model
      modelport convert web_graph/ model.onnx --engine reference  # TF.js graph -> ONNX
      modelport convert model.keras web_graph/ --to tfjs-graph  # Keras -> TF.js graph
      modelport convert resnet.onnx resnet.h5                  # ONNX -> Keras, channels-last
      modelport convert model.onnx web_model/ --to tfjs-layers  # ONNX -> TF.js layers-model
    """
    limit, isolate = flags.pop("max_memory", None), flags.pop("isolate", False)
    if limit is not None or isolate:  # the budget for everything below (modelport.budget)
        from .budget import max_memory
        from .formats.h5_isolate import isolated

        with max_memory(limit), isolated(DEFAULT_ISOLATE_SECONDS if isolate else None):
            convert.callback(src, dst, **flags)  # type: ignore[misc]
        return
    from . import api

    as_json = bool(flags["as_json"])

    def progress(message: str) -> None:
        if not flags["quiet"] and not as_json:
            click.echo(f"modelport: {message}", err=True)

    browser = flags["engine"] if (flags["engine"] or "").startswith("browser") else None
    if browser:  # the conversion's own check as auto; then the browser's (cli_web)
        from .cli_web import browser_flags

        _run(as_json, lambda: browser_flags(browser, flags["no_validate"], flags["to"], dst))
        flags["engine"] = None

    def action() -> ConversionReport:
        options, check = _convert_options(flags)
        return api.convert_with(src, dst, options, check, progress)

    report = _run(as_json, action)
    if flags["report_html"]:
        _run(as_json, lambda: _html(report, flags["report_html"]))
    if flags["model_explorer"]:
        _run(as_json, lambda: _node_data(report, flags["model_explorer"]))
    passed = report.passed
    if browser:
        from .cli_web import browser_after_convert

        if not as_json:
            _print_report(report)
        passed = browser_after_convert(src, dst, _convert_options(flags)[1], browser, as_json,
                                       {"ok": report.passed, **report.to_dict()}) and passed
    elif as_json:
        click.echo(json.dumps({"ok": report.passed, **report.to_dict()}, indent=2))
    else:
        _print_report(report)
    if not passed:
        sys.exit(ParityError.exit_code)


def _html(report: ConversionReport | ParityReport, path: str) -> Path:
    """``--report FILE.html``: the report as a page (``api.html_report``)."""
    from .api.html_report import save

    return save(report, path)


def _node_data(report: ConversionReport | ParityReport, path: str) -> Path:
    """``--model-explorer FILE.json``: the per-layer errors as Model Explorer node data."""
    from .api.model_explorer import save

    return save(report, path)


def _convert_options(flags: dict[str, Any]) -> tuple[ConvertOptions, CheckOptions]:
    """The option objects for ``convert``: a flag not given stays None (not given)."""
    from . import api
    from .api.metadata import metadata_entries
    from .api.options import input_shapes, input_values, output_names, quantize_rules

    options = api.ConvertOptions(
        to=flags["to"], force=flags["force"], quantize=quantize_rules(flags["quantize"]),
        shard_size=flags["shard_size"], opset=flags["opset"],
        inputs_layout=flags["inputs_layout"], validate=not flags["no_validate"],
        input_shapes=input_shapes(flags["input_shapes"]), batch=flags["batch"],
        input_values=input_values(flags["input_values"]),
        outputs=output_names(flags["outputs"]) if flags["outputs"] else None,
        metadata=metadata_entries(flags["metadata"]) if flags["metadata"] else None)
    given = flags["atol"] is not None or flags["rtol"] is not None
    check = api.CheckOptions(device=flags["device"], engine=flags["engine"],
                             tolerances=_tolerances(flags["atol"], flags["rtol"]) if given
                             else None, inputs=flags["inputs_file"],
                             save_inputs=flags["save_inputs"], save_outputs=flags["save_outputs"])
    return options, check


def _tolerances(atol: float | None, rtol: float | None) -> Tolerances:
    """The user's tolerance when either half is given (the other takes its default), else
    the noise rule (see ``check.parity``)."""
    from .check.parity import DEFAULT_ATOL, DEFAULT_RTOL, Tolerance, Tolerances

    if atol is None and rtol is None:
        return Tolerances()
    return Tolerances(Tolerance(DEFAULT_ATOL if atol is None else atol,
                                DEFAULT_RTOL if rtol is None else rtol))


def _print_quantized(quantization: Quantization) -> None:
    """Which weights are stored quantized and how: kept as the source stored them (same dtype
    and bytes) or quantized by --quantize (the full list is in --json's quantized_weights)."""
    kept = quantization.kept
    if kept:
        click.echo(f"  quantization kept from the source (same dtype and bytes): {kept} weights")
    chosen = [w for w in quantization.weights if not w.kept]
    if chosen:
        click.echo(f"  quantized by --quantize: {len(chosen)} weights")
    for w in quantization.weights[:8]:
        how = f"{w.dtype}" + ("" if w.scale is None else f", min {w.min:.6g} scale {w.scale:.6g}")
        click.echo(f"    {w.name}: {how} ({'source' if w.kept else '--quantize'})")
    if len(quantization.weights) > 8:
        click.echo(f"    ... {len(quantization.weights) - 8} more (see --json)")


def _print_report(report: ConversionReport) -> None:
    total = sum(f["bytes"] for f in report.files)
    click.echo(f"converted {report.source} ({report.source_format}, {report.dialect} dialect)")
    click.echo(f"       -> {report.destination} ({report.target_format})")
    click.echo(f"  {report.layers} layers, {report.parameters:,} parameters, "
               f"{human_bytes(report.weight_bytes)} of weights; wrote {len(report.files)} "
               f"file(s), {human_bytes(total)}")
    check = report.check
    if report.target_format == "onnx" or check is None:  # op-level targets: no read-back check
        pass
    elif check.quantized:
        by_dtype = ", ".join(f"{k}: {v}" for k, v in report.quantization.by_dtype.items())
        click.echo(f"  check: structure equal; {check.quantized} quantized weights "
                   f"({by_dtype}), max abs weight error {check.max_abs_weight_error:.3g}; the "
                   "rest bit-identical")
        _print_quantized(report.quantization)
    else:
        click.echo(f"  check: read back identical (structure equal, {check.weights_compared} "
                   "weights bit-identical)")
    if report.input_shapes:
        click.echo("  input shapes pinned: " + "; ".join(
            f"{name} [{', '.join('?' if d is None else str(d) for d in dims)}]"
            for name, dims in report.input_shapes.items()))
    if report.outputs:
        click.echo(f"  outputs cut at: {', '.join(report.outputs)}")
    for note in report.rewrites:
        click.echo(f"  rewritten for the target (same numbers): {note}")
    for note in report.notes:
        click.echo(f"  note: {note}")
    if report.custom_layers:
        from .models.keras_dialect import MODELPORT_LOAD_HINT

        click.echo(f"  note: uses modelport's own {', '.join(report.custom_layers)} (no stock "
                   f"layer computes it); {MODELPORT_LOAD_HINT}")
    if report.tfjs_graph:
        click.echo(f"  TF.js graph-model: {report.tfjs_graph.nodes} nodes, "
                   f"{report.tfjs_graph.transposes} Transpose(s)")
        if report.tfjs_graph.execute_async:
            click.echo("  note: run it with GraphModel.executeAsync (tfjs's execute() refuses "
                       f"{', '.join(report.tfjs_graph.execute_async)})")
        if report.quantization:
            click.echo("  quantized weights: " + ", ".join(
                f"{k}: {v}" for k, v in report.quantization.by_dtype.items()))
            _print_quantized(report.quantization)
    if report.onnx:
        o = report.onnx
        click.echo(f"  ONNX opset {o.opset}, IR version {o.ir_version}, "
                   f"{o.transposes} Transpose(s), inputs {o.inputs_layout}")
    if report.parity:
        from .check.parity import format_table

        for line in format_table(report.parity):
            click.echo(f"  {line}")
        if not report.parity.passed:
            click.echo(f"  the written file does not reproduce the source (kept for "
                       f"inspection: {report.destination})")
    click.echo(f"  {report.seconds:.2f} s")


@main.command(cls=JsonCommand)
@click.argument("src", type=click.Path(exists=False, dir_okay=True))
@click.argument("dst", type=click.Path(exists=False, dir_okay=True))
@click.option("--inputs", "inputs_file", type=click.Path(dir_okay=False), default=None,
              help="Inputs from an .npz (arrays named after the model's inputs, or in order); "
                   "default: seeded random inputs that respect each input's dtype and range.")
@click.option("--batch", type=click.IntRange(1), default=None,
              help="Rows per probe of the seeded inputs, i.e. the batch (first) dim where the "
                   "model leaves it free (default: 1 to 16, as many as the inputs' size allows "
                   "cheaply); a static batch stays as the model has it.")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="[NAME=]D0,D1,...",
              help="Dims of the seeded inputs for an input whose dims the model leaves free "
                   "(repeat per input; NAME may be left out for a model with one input). "
                   "Without it, free dims are sized as the model's strides and pools allow, "
                   "several sizes tried.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the inputs.")
@click.option("--atol", type=float, default=None,
              help="Absolute tolerance: judge every output by |a - e| <= atol + rtol*|e| "
                   "instead of the default rule (each output against its measured float32 "
                   "rounding noise, see below); the missing half defaults to 1e-4 / 1e-3.")
@click.option("--rtol", type=float, default=None, help="Relative tolerance (see --atol).")
@click.option("--output-tolerance", "per_output", multiple=True, metavar="NAME=ATOL[,RTOL]",
              help="Tolerance for one output (repeatable).")
@click.option("--nan", "nan_policy", type=click.Choice(["match", "fail"]), default="match",
              show_default=True,
              help="match: NaN/Inf must sit where the source has them; fail: any NaN fails.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="onnxruntime device (CUDA runs with TF32 off).")
@click.option("--engine", type=str, default="auto", show_default=True,
              metavar="auto|tfjs|reference|browser[:cpu,wasm,webgl,webgpu,mobile]",
              help="How TF.js models run: real tfjs under Node, modelport's NumPy reference "
                   "(of TF ops, or of Keras layers), tfjs when present (auto), or real tfjs "
                   "in headless Chromium on each backend named (browser: cpu, wasm, webgl; "
                   "one report per backend; mobile is WebGL in float16, as information). "
                   "`modelport setup web` installs them.")
@click.option("--per-layer", is_flag=True,
              help="On mismatch, name the first Keras layer whose output diverges.")
@click.option("--save-inputs", type=click.Path(dir_okay=False), default=None,
              help="Write the inputs the check ran to this .npz (--inputs reads it back).")
@click.option("--save-outputs", type=click.Path(dir_okay=False), default=None,
              help="Write both models' outputs and the measured rounding noise to this .npz.")
@_check_files
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON report.")
def validate(src: str, dst: str, **flags: Any) -> None:
    """Run SRC and DST on the same inputs and compare every output.

    Keras and TF.js layers-models run in modelport's NumPy executor of Keras semantics; ONNX
    models run in onnxruntime. Seeded inputs come in probes (standard-normal, uniform [0, 1),
    and [0, 255) for image-shaped inputs; integers over their whole range), each judged on its
    own. Each output passes when its worst error is within 12x the float32 rounding noise
    measured on the same inputs (a NumPy reference in float32 against float64 with random
    rounding), 1e-6 of its RMS, or 16 float32 ulps of each element; --atol/--rtol replace
    that rule. Per output: max abs error and its ratio to the
    output's RMS, the noise, the tolerance, the margin (tolerance / error), cosine similarity,
    elements out of tolerance and the worst one. Exit 0 on a pass, 6 on a mismatch.
    """
    limit, isolate = flags.pop("max_memory", None), flags.pop("isolate", False)
    if limit is not None or isolate:
        from .budget import max_memory
        from .formats.h5_isolate import isolated

        with max_memory(limit), isolated(DEFAULT_ISOLATE_SECONDS if isolate else None):
            validate.callback(src, dst, **flags)  # type: ignore[misc]
        return
    from . import api

    as_json = bool(flags["as_json"])
    if flags["engine"].startswith("browser"):  # one report per backend (cli_web)
        from .cli_web import validate_in_browser

        validate_in_browser(src, dst, _run(as_json, lambda: _check_options(flags)), as_json)
    report = _run(as_json, lambda: api.validate_with(src, dst, _check_options(flags)))
    if flags["report_html"]:
        _run(as_json, lambda: _html(report, flags["report_html"]))
    if flags["model_explorer"]:
        _run(as_json, lambda: _node_data(report, flags["model_explorer"]))
    if as_json:
        click.echo(json.dumps({"ok": report.passed, **report.to_dict()}, indent=2))
    else:
        from .check.parity import format_table

        click.echo(f"{report.source} vs {report.target}")
        for line in format_table(report):
            click.echo(f"  {line}")
    sys.exit(0 if report.passed else ParityError.exit_code)


DEFAULT_ISOLATE_SECONDS = 60.0  # formats.h5_isolate.DEFAULT_SECONDS, without importing it


def _size(value: str | None) -> int | None:
    """--max-memory's bytes (a bad size is a usage error)."""
    from .budget import parse_size

    try:
        return None if value is None else parse_size(value)
    except UsageError as e:
        raise click.BadParameter(e.message) from None


def _check_options(flags: dict[str, Any]) -> CheckOptions:
    """The option object for ``validate`` (a bad --output-tolerance is a usage error)."""
    from . import api
    from .check.parity import DEFAULT_RTOL, Tolerance

    tolerances = _tolerances(flags["atol"], flags["rtol"])
    tolerances.nan_policy = flags["nan_policy"]
    for item in flags["per_output"]:
        name, _, values = item.partition("=")
        parts = values.split(",")
        try:
            rtol = tolerances.default.rtol if tolerances.default else DEFAULT_RTOL
            tol = Tolerance(float(parts[0]), float(parts[1]) if len(parts) > 1 else rtol)
        except ValueError:
            raise UsageError(f"--output-tolerance {item!r} is not NAME=ATOL[,RTOL]") from None
        tolerances.per_output[name] = tol
    from .api.options import input_shapes

    return api.CheckOptions(device=flags["device"], engine=flags["engine"],
                            tolerances=tolerances, inputs=flags["inputs_file"],
                            batch=flags["batch"], seed=flags["seed"],
                            input_shapes=input_shapes(flags["input_shapes"]),
                            per_layer=flags["per_layer"], save_inputs=flags["save_inputs"],
                            save_outputs=flags["save_outputs"])


@main.command(cls=JsonCommand)
@click.argument("model", type=click.Path(exists=False, dir_okay=True))
@click.option("--input-shape", "input_shapes", multiple=True, metavar="[NAME=]D0,D1,...",
              help="Describe an ONNX or TF.js graph-model with these input dims pinned, as "
                   "`convert --input-shape` would take it (repeat per input).")
@click.option("--input-value", "input_values", multiple=True, metavar="NAME=V[,V...]",
              help="Describe an ONNX model with these inputs fixed, as `convert --input-value` "
                   "would take it.")
@click.option("--batch", type=click.IntRange(1), default=None,
              help="Pin the free batch dim of an ONNX or TF.js graph-model's inputs first.")
@click.option("--values", "values", is_flag=True,
              help="List the values an ONNX or TF.js graph-model computes, by the names "
                   "`convert --outputs` takes.")
@click.option("--no-validate", is_flag=True,
              help="Say where `convert --no-validate` goes: without the parity check, whose "
                   "memory budget the verdicts otherwise size.")
@_MAX_MEMORY
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON report.")
def inspect(model: str, as_json: bool, input_shapes: tuple[str, ...],
            input_values: tuple[str, ...], batch: int | None, values: bool, no_validate: bool,
            max_memory: int | None) -> None:
    """Describe MODEL: format, inputs and outputs, layers, size, and where it can go.

    For each target format, lists the layers that keep the model from it and why, and where
    convert's parity check would be refused by its memory budget.
    """
    from . import api

    info = _run(as_json, lambda: api.inspect(model, input_shapes=input_shapes or None,
                                             input_values=input_values or None,
                                             batch=batch, validate=not no_validate,
                                             max_memory=max_memory))
    names = _run(as_json, lambda: _value_names(model)) if values else None
    if as_json:
        extra = {} if names is None else {"values": names}
        click.echo(json.dumps({"ok": True, **info.to_dict(), **extra}, indent=2))
        return
    _print_inspection(info)
    if names is not None:
        click.echo(f"  values ({len(names)}, the names --outputs takes):")
        for name in names:
            click.echo(f"    {name}")


def _value_names(path: str) -> list[str]:
    """The values an ONNX or TF.js graph-model computes (``inspect --values``)."""
    from .converters import pinning
    from .formats.loading import load
    from .models import LayersModel, TfjsGraph

    model = load(path)
    if isinstance(model, LayersModel):
        raise UsageError("--values lists an ONNX or TF.js graph-model's values; a Keras "
                         "model's are its layers (listed above)")
    if isinstance(model, TfjsGraph):
        return pinning.graph_values(model)
    return pinning.onnx_values(model)


def _print_inspection(info: Inspection) -> None:
    about = [f"{info.dialect} dialect"] if info.dialect else []  # ONNX has none
    if info.keras_version:
        about.append(f"Keras {info.keras_version}")
    if info.onnx:
        opsets = info.onnx.get("opsets") or {}
        about.append(f"IR version {info.onnx.get('ir_version')}, opset {opsets.get('', '?')}")
        if info.onnx.get("producer"):
            about.append(f"from {info.onnx['producer']}")
    click.echo(f"{info.path}: {info.format}" + (f" ({', '.join(about)})" if about else ""))
    m = info.model
    click.echo(f"  model {m.name!r}: {m.kind}"
               + (f", nested models: {', '.join(m.nested_models)}" if m.nested_models else ""))
    for label, tensors in (("inputs", info.inputs), ("outputs", info.outputs)):
        for t in tensors:
            shape = "?" if t.shape is None else "(" + ", ".join(
                "None" if d is None else str(d) for d in t.shape) + ")"
            click.echo(f"  {label[:-1]:6} {t.name}: {shape} {t.dtype or '?'}")
    unit = "layers" if info.format in ("keras-h5", "keras-v3", "tfjs-layers") else "nodes"
    click.echo(f"  {info.layers} {unit}: " + ", ".join(
        f"{cls} x{n}" if n > 1 else cls for cls, n in info.layers_by_class.items()))
    dtypes = ", ".join(f"{k}: {v}" for k, v in info.weight_dtypes.items()) or "none"
    click.echo(f"  {info.parameters:,} parameters, {human_bytes(info.weight_bytes)} of "
               f"weights ({dtypes})")
    if info.quantization:
        click.echo("  quantized weights: " + ", ".join(
            f"{k}: {v}" for k, v in info.quantization.by_dtype.items()))
    click.echo("  targets:")
    for name, target in info.targets.items():
        if target.ok:
            click.echo(f"    {name:12} yes")
        elif target.remark:
            click.echo(f"    {name:12} no: {target.remark}")
        else:
            click.echo(f"    {name:12} no:")
            for b in target.blockers:
                click.echo(f"      {b.layer} ({b.class_name}): {b.reason}")
    for warning in info.tfjs_warnings:  # known TF.js backend gaps (api.web_gaps)
        click.echo(f"  warning (TF.js): {warning}")


def _web_commands() -> None:
    from .cli_web import setup

    main.add_command(setup)


_web_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
