"""``--metadata KEY=FILE.json``: user-defined metadata written into a TF.js model.json.

tensorflowjs_converter's ``--metadata key:path.json,...`` loads each file as JSON and writes
``{"userDefinedMetadata": {key: <the file's JSON>}}`` at the top level of model.json (layers-
and graph-models alike); web code reads it back as ``model.metadata`` (labels, preprocessing).
modelport writes the same. tfjs itself reads two keys of it, ``signature`` (which replaces the
model's signature) and ``structuredOutputKeys``; modelport writes those itself, so a user file
may not take them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import UsageError

# userDefinedMetadata keys tfjs interprets (graph_model.js loadWithWeightMap)
RESERVED = ("signature", "structuredOutputKeys")


def metadata_entries(specs: Iterable[str] | Mapping[str, object] | None
                     ) -> tuple[tuple[str, object], ...] | None:
    """``KEY=FILE.json`` specs (or a ``{key: path}`` mapping) as ``(key, parsed JSON)`` pairs;
    a malformed spec, a repeated or reserved key, or a file that is not JSON is a UsageError."""
    if specs is None:
        return None
    pairs = list(specs.items()) if isinstance(specs, Mapping) else [_split(s) for s in specs]
    out: dict[str, object] = {}
    for key, path in pairs:
        if not key:
            raise UsageError(f"--metadata {key}={path}: the key is empty",
                             hint="write --metadata KEY=FILE.json, e.g. labels=labels.json")
        if key in RESERVED:
            raise UsageError(f"--metadata {key}: tfjs reads userDefinedMetadata.{key} itself "
                             "(it changes how the model runs)", hint="choose another key")
        if key in out:
            raise UsageError(f"--metadata {key} is given twice", hint="give each key once")
        out[key] = _load(key, Path(os.fspath(path)))
    return tuple(out.items())


def _split(spec: str) -> tuple[str, str]:
    key, sep, path = str(spec).partition("=")
    if not sep or not path:
        raise UsageError(f"--metadata {spec!r}: expected KEY=FILE.json",
                         hint="e.g. --metadata labels=labels.json")
    return key, path


def _load(key: str, path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"--metadata {key}={path}: cannot read the file ({e.strerror})",
                         hint="give the path of a JSON file") from None
    except UnicodeDecodeError:
        raise UsageError(f"--metadata {key}={path}: the file is not UTF-8 text",
                         hint="give the path of a JSON file") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise UsageError(f"--metadata {key}={path}: the file is not valid JSON ({e})",
                         hint="check the file with `python -m json.tool FILE`") from None
