"""The HTML report of a per-layer check opens in a real browser (headless Chromium): the
DOM Chromium builds holds the plots' SVG with drawn paths, and a screenshot of the page is
not blank where the plots are. Under CI a missing Chromium fails the run (``require_tool``).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

import modelport

from ..conftest import FIXTURES, require_tool

KERAS = FIXTURES / "keras3" / "cnn_bn_pool.keras"
NAMES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    require_tool("headless Chromium is not installed (apt-get install chromium-headless-shell)")
    raise AssertionError  # unreachable: require_tool skips or fails


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    path = out / "report.html"
    modelport.convert(KERAS, out / "m.onnx", report_html=path)
    return path


def _browser(chromium: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_dom_holds_the_plots(chromium, page):
    done = _browser(chromium, "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert dom.count("<svg") == 2, dom[:2000]  # the layer plot and the histogram
    series = re.findall(r'<path class="series" d="([^"]+)"', dom)
    assert len(series) == 1 and series[0].count("L") >= 5
    assert len(re.findall(r'<path class="bar" d="M[^"]+"', dom)) >= 2
    assert len(re.findall(r"<circle ", dom)) == 10


def _png_rows(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered RGBA/RGB rows of a PNG (filters undone)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, channels, rows


def test_a_screenshot_shows_coloured_plot_pixels(chromium, page, tmp_path):
    shot = tmp_path / "shot.png"
    done = _browser(chromium, f"--screenshot={shot}", "--window-size=1000,1500", page.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    width, channels, rows = _png_rows(shot.read_bytes())
    # the series colour (#1f77b4) is drawn only by the plots: lines, points and bars
    blue = sum(1 for row in rows for x in range(0, width * channels, channels)
               if abs(row[x] - 0x1F) < 24 and abs(row[x + 1] - 0x77) < 24
               and abs(row[x + 2] - 0xB4) < 24)
    # (the two legend squares alone are 288 pixels; the plots draw thousands)
    assert blue > 2000, f"only {blue} plot-coloured pixels in the screenshot"
