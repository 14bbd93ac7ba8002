"""How every ``modelport`` command ends: a ModelportError as one line (or JSON) and its exit
code, an interrupt as 130, anything else as an internal error (70), which is a bug.

Shared by ``cli`` and ``cli_web`` (which ``cli`` loads lazily), so neither imports the other
for it.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn, TypeVar

import click

from .errors import ModelportError

T = TypeVar("T")
INTERNAL_ERROR = 70


def _emit_error(err: ModelportError, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"ok": False, **err.to_dict()}, indent=2))
    else:
        click.echo(f"modelport: error: {err}", err=True)


def _run(as_json: bool, action: Callable[[], T]) -> T:
    """Run ``action``; a ModelportError becomes a one-line message and its exit code."""
    try:
        return action()
    except ModelportError as err:
        _emit_error(err, as_json)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("modelport: interrupted; nothing was written", err=True)
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - a bug in modelport, not in the input: said so
        _internal_error(err, as_json)


def _internal_error(err: Exception, as_json: bool) -> NoReturn:
    if os.environ.get("MODELPORT_DEBUG"):
        traceback.print_exc()
    message = f"internal error: {type(err).__name__}: {err}"
    if as_json:
        click.echo(json.dumps({"ok": False, "error": "InternalError", "message": message,
                               "exit_code": INTERNAL_ERROR}, indent=2))
    else:
        click.echo(f"modelport: {message} (set MODELPORT_DEBUG=1 for a traceback; "
                   "please report it)", err=True)
    sys.exit(INTERNAL_ERROR)
