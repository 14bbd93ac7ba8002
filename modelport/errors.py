"""One hierarchy for everything modelport refuses, each with its own exit code.

A message names the file, the layer or node when there is one, what was found, and what would
work instead. ``str(error)`` is the one line the CLI prints.
"""

from __future__ import annotations

import json
import os


class ModelportError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1
    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        file: str | os.PathLike | None = None,
        layer: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = os.fspath(file) if file is not None else None
        self.layer = layer
        self.hint = hint
        super().__init__(str(self))

    def with_file(self, file: str | os.PathLike) -> ModelportError:
        """Attach the file being processed, unless a more precise one is already set."""
        if self.file is None:
            self.file = os.fspath(file)
            self.args = (str(self),)
        return self

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.layer:
            parts.append(f"layer {self.layer!r}")
        parts.append(self.message)
        text = ": ".join(parts)
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_dict(self) -> dict[str, str | int | None]:
        """The error as the CLI's ``--json`` prints it (after ``"ok": false``)."""
        return {
            "error": type(self).__name__,
            "kind": self.kind,
            "message": self.message,
            "file": self.file,
            "layer": self.layer,
            "hint": self.hint,
            "exit_code": self.exit_code,
        }

    def to_json(self) -> str:
        """``to_dict()`` as a JSON string."""
        return json.dumps(self.to_dict(), indent=2)


class FormatError(ModelportError):
    """The file is not a valid model of the format it claims: corrupt, truncated, inconsistent."""

    exit_code = 3
    kind = "format"


class UnsafeInputError(FormatError):
    """The file asks for something modelport never does: escape its folder, run code, etc."""

    exit_code = 3
    kind = "unsafe"


class UsageError(ModelportError):
    """An option or argument that cannot be honoured as given: a value out of range, or an
    option the chosen route does not use (it would be ignored without a word). Found before
    any model is read or written, where it can be; the CLI's usage exit code."""

    exit_code = 2
    kind = "usage"


class UnsupportedError(ModelportError):
    """The model is valid but cannot go to the requested target (layer, setting or route)."""

    exit_code = 4
    kind = "unsupported"


class EngineRunError(UnsupportedError):
    """An engine could not run the model on the inputs it was given (a kernel's own shape
    check, an arena that cannot grow): exit 4, as any model that cannot run here; the check
    may try inputs of other sizes before it gives up."""


class OutputExistsError(ModelportError):
    """The destination exists and ``--force`` was not given."""

    exit_code = 5
    kind = "output-exists"


class OutputError(ModelportError):
    """The destination cannot be written: permissions, a full disk, a read-only file system."""

    exit_code = 7
    kind = "output"


class ParityError(ModelportError):
    """Source and result disagree beyond tolerance."""

    exit_code = 6
    kind = "parity"
