"""``modelport setup web``: the real TF.js engines, installed once into a user cache.

npm installs the pinned packages (PINNED, the versions CI tests: tests/interop/node/package.json)
into ``$MODELPORT_WEB_CACHE`` (default ``~/.cache/modelport/web``); tfjs_node finds them there,
so that ``--engine auto`` runs real tfjs from then on. Chromium is not an npm package here
(puppeteer-core downloads nothing): setup finds one or says how to install it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ...errors import UnsupportedError
from ..tfjs_node import web_cache
from . import INSTALL_CHROMIUM, chromium

PINNED = {"@tensorflow/tfjs": "4.22.0", "@tensorflow/tfjs-backend-wasm": "4.22.0",
          "@tensorflow/tfjs-backend-webgpu": "4.22.0", "puppeteer-core": "24.43.1"}


def cache_dir() -> Path:
    """Where ``setup web`` installs: $MODELPORT_WEB_CACHE, else $XDG_CACHE_HOME/modelport/web
    (``~/.cache/modelport/web``)."""
    return web_cache()


@dataclass
class SetupReport:
    """What ``setup web`` did: the node_modules it installed, the Chromium it found (or how
    to get one)."""

    node_modules: Path
    packages: dict[str, str]
    chromium: Path | None
    chromium_hint: str | None

    def lines(self) -> list[str]:
        """The text report."""
        out = [f"npm packages installed in {self.node_modules}:"]
        out += [f"  {name} {version}" for name, version in self.packages.items()]
        out.append("real tfjs (Node) now runs TF.js outputs in every check (--engine auto)")
        if self.chromium is not None:
            out.append(f"Chromium: {self.chromium} (--engine browser runs the cpu, wasm and "
                       "webgl backends there)")
        else:
            out.append(f"Chromium: not found; for --engine browser, {self.chromium_hint}")
        return out


def setup_web(target: Path | None = None, *, timeout_s: float = 900) -> SetupReport:
    """Install PINNED with npm into ``target`` (default ``cache_dir()``) and find Chromium."""
    target = target or cache_dir()
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise UnsupportedError("modelport setup web needs Node.js and npm: install them "
                               "(https://nodejs.org, or `apt-get install nodejs npm`)")
    target.mkdir(parents=True, exist_ok=True)
    (target / "package.json").write_text(json.dumps(
        {"name": "modelport-web-engines", "private": True,
         "description": "Real TF.js engines for modelport's check (modelport setup web)",
         "dependencies": PINNED}, indent=2) + "\n")
    try:
        proc = subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=target,
                              capture_output=True, text=True, timeout=timeout_s, check=False,
                              env=dict(os.environ, PUPPETEER_SKIP_DOWNLOAD="1"))
    except subprocess.TimeoutExpired:
        raise UnsupportedError(f"npm install in {target} ran over {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise UnsupportedError(f"npm install in {target} failed: "
                               f"{lines[-1] if lines else proc.returncode}")
    found = chromium()
    return SetupReport(target / "node_modules", dict(PINNED), found,
                       None if found else INSTALL_CHROMIUM)
