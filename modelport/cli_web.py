"""The CLI's web parts: ``modelport setup web`` and the per-backend report of
``--engine browser`` (kept out of cli.py, which the other commands share)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Any

import click

from .check.options import CheckOptions
from .errors import ParityError


@click.group()
def setup() -> None:
    """Install the real engines modelport checks its outputs with."""


@setup.command("web")
@click.option("--cache", "cache", type=click.Path(file_okay=False), default=None,
              help="Where to install (default $MODELPORT_WEB_CACHE or ~/.cache/modelport/web; "
                   "set MODELPORT_WEB_CACHE to the same folder when it is not the default).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON report.")
def setup_web(cache: str | None, as_json: bool) -> None:
    """Install the pinned npm packages (@tensorflow/tfjs, its WASM and WebGPU backends,
    puppeteer-core) with npm, and find Chromium.

    From then on `--engine auto` checks TF.js outputs in real tfjs under Node, and
    `--engine browser` runs them in headless Chromium on cpu, wasm and webgl.
    """
    from pathlib import Path

    from .cli_run import _run
    from .runtime.tfjs_browser.setup import setup_web as install

    report = _run(as_json, lambda: install(Path(cache) if cache else None))
    if as_json:
        click.echo(json.dumps({"ok": True, "node_modules": str(report.node_modules),
                               "packages": report.packages,
                               "chromium": str(report.chromium) if report.chromium else None,
                               "chromium_hint": report.chromium_hint}, indent=2))
    else:
        for line in report.lines():
            click.echo(line)


def validate_in_browser(src: str, dst: str, options: CheckOptions, as_json: bool) -> None:
    """``validate --engine browser``: one parity report per backend; exit 6 when one of them
    fails or diverges (the mobile setting is information)."""
    from .check.browser import validate_backends
    from .cli_run import _run

    report = _run(as_json, lambda: validate_backends(src, dst, options))
    if as_json:
        click.echo(json.dumps({"ok": report.passed, **report.to_dict()}, indent=2))
    else:
        for line in report.lines():
            click.echo(line)
    sys.exit(0 if report.passed else ParityError.exit_code)


def browser_flags(engine: str, no_validate: bool, to: str | None, dst: str) -> None:
    """``convert --engine browser``'s flags: known backends, a check to run, a TF.js target
    (a UsageError otherwise, before anything is written)."""
    from pathlib import Path

    from .errors import UsageError

    CheckOptions(engine=engine)
    if no_validate:
        raise UsageError("--engine browser checks the result in a browser; it cannot go with "
                         "--no-validate")
    if (to is not None and not to.startswith("tfjs")) or \
            (to is None and Path(dst).suffix in (".onnx", ".h5", ".keras")):
        raise UsageError("--engine browser runs TF.js results in a browser; this conversion "
                         "writes no TF.js model (use --to tfjs-graph or --to tfjs-layers)")


def browser_after_convert(src: str, dst: str, check: CheckOptions, engine: str,
                          as_json: bool, converted: dict[str, Any] | None) -> bool:
    """``convert --engine browser``: the written TF.js output checked per backend after the
    conversion's own check; prints the reports (``converted``: the conversion's JSON, printed
    with the browser's under ``browser``), returns whether every backend passed."""
    from .check.browser import validate_backends
    from .cli_run import _run

    report = _run(as_json, lambda: validate_backends(
        src, os.fspath(dst), dataclasses.replace(check, engine=engine)))
    if as_json:
        body = dict(converted or {})
        body["ok"] = bool(body.get("ok", True)) and report.passed
        body["browser"] = report.to_dict()
        click.echo(json.dumps(body, indent=2))
    else:
        for line in report.lines():
            click.echo(line)
    return report.passed
