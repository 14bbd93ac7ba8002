"""``--report FILE.html``: one self-contained page people can look at (no network, no script).

It is drawn from the plain data of the reports (``ConversionReport.to_dict()`` and
``ParityReport.to_dict()``, what ``--json`` prints), so that whatever a report holds shows:
the conversion summary (source, target, engines, notes), a table of every output's statistics
and verdict, and, where the check measured them, a plot of each layer's error along the graph
(``per_layer``, from ``--per-layer``) and a histogram of each output's errors
(``error_histogram``). Each engine or backend is a series: the parity report's own target
engine, and every entry of a ``backends`` list or mapping in it (each a parity report of the
same shape with its own ``outputs`` and ``per_layer``, labelled by its ``backend``, ``engine``
or ``target_engine``), so a check that runs several backends plots them side by side.

The plots are inline SVG drawn here; the page's CSS is inline. Each point and bar carries a
``<title>`` (the browser shows it on hover), so no script is needed.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..fsutil import atomic_output

if TYPE_CHECKING:
    from ..check.browser import BrowserReport
    from ..check.parity import ParityReport
    from .report import ConversionReport

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf")
WIDTH, HEIGHT, PAD = 880, 260, 48  # a plot's size and its margin for the axes (px)

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:20px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
.pass{color:#1a7f37;font-weight:600}.fail{color:#c62828;font-weight:600}
.note{color:#555}svg{background:#fff;border:1px solid #ddd;margin:6px 0}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
"""


def save(report: ConversionReport | ParityReport | BrowserReport,
         path: str | os.PathLike[str]) -> Path:
    """Write the page for a ``convert`` (``ConversionReport``) or ``validate`` result
    (``ParityReport``, or ``BrowserReport``: one series per backend) to ``path`` (replaced if
    it exists)."""
    from .report import ConversionReport

    if isinstance(report, ConversionReport):
        return write(path, report.parity.to_dict() if report.parity else None, report.to_dict())
    return write(path, report.to_dict())


def write(path: str | os.PathLike[str], parity: dict[str, Any] | None,
          conversion: dict[str, Any] | None = None, *, force: bool = True) -> Path:
    """Write the page for ``parity`` (a ``ParityReport.to_dict()``; None: no check ran) and
    ``conversion`` (a ``ConversionReport.to_dict()``, for ``convert``) to ``path``."""
    path = Path(path)
    with atomic_output(path, directory=False, force=force) as tmp:
        tmp.write_text(render(parity, conversion), encoding="utf-8")
    return path


def render(parity: dict[str, Any] | None, conversion: dict[str, Any] | None = None) -> str:
    """The page as a string (see the module)."""
    title = "modelport report"
    if conversion:
        title += (f": {Path(str(conversion.get('source', ''))).name} -> "
                  f"{Path(str(conversion.get('destination', ''))).name}")
    elif parity:
        title += (f": {Path(str(parity.get('source', ''))).name} vs "
                  f"{Path(str(parity.get('target', ''))).name}")
    parts = [(f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"),
             f"<h1>{_e(title)}</h1>"]
    if conversion:
        parts.append(_conversion(conversion))
        browser = conversion.get("browser")  # convert --engine browser: its backends too
        if isinstance(browser, dict) and browser.get("backends"):
            parity = {**(parity or {}), "backends": [
                *((parity or {}).get("backends") or []), *browser["backends"]]}
    if parity:
        series = _series(parity)
        parts.append(_check(parity, series))
        parts.append(_outputs_table(series))
        parts.append(_layers_section(series))
        parts.append(_histograms(series))
    else:
        parts.append("<p class='note'>No numeric check ran (see the conversion summary).</p>")
    parts.append("</body></html>")
    return "".join(parts)


# --- data ---------------------------------------------------------------------------------------

def _series(parity: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, parity-like dict) per engine/backend: the report itself where it compared
    outputs, then each of its ``backends`` (a parity report, or an entry holding one under
    ``report``, as ``check.browser.BrowserReport.to_dict()`` writes them; an entry whose
    backend did not run is a series with no outputs and its ``error``)."""
    out = []
    if parity.get("outputs") is not None:
        out.append((str(parity.get("target_engine") or "target"), parity))
    backends = parity.get("backends")
    items = backends.items() if isinstance(backends, dict) else \
        ((None, b) for b in backends) if isinstance(backends, list) else ()
    for key, entry in items:
        if not isinstance(entry, dict):
            continue
        label = entry.get("backend") or entry.get("engine") or entry.get("target_engine") or key
        body = entry
        if "report" in entry:  # a backend's result wrapping its parity report
            body = dict(entry["report"]) if isinstance(entry["report"], dict) else \
                {"passed": False, "outputs": []}
            body.setdefault("error", entry.get("error"))
            if entry.get("informational"):
                label = f"{label} (information)"
        out.append((str(label or f"backend {len(out) + 1}"), body))
    return out


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    return _e(value)


def _verdict(passed: object) -> str:
    if passed is None:
        return "<span class='note'>-</span>"
    return "<span class='pass'>pass</span>" if passed else "<span class='fail'>FAIL</span>"


# --- sections -----------------------------------------------------------------------------------

def _conversion(c: dict[str, Any]) -> str:
    rows = [("source", (f"{c.get('source')} ({c.get('source_format')}, "
                       f"{c.get('dialect')} dialect)")),
            ("target", f"{c.get('destination')} ({c.get('target_format')})"),
            ("route", f"{c.get('source_format')} -> {c.get('target_format')}"),
            ("size", f"{c.get('layers')} layers, {c.get('parameters'):,} parameters, "
                     f"{c.get('weight_bytes'):,} weight bytes"
             if isinstance(c.get("parameters"), int) and isinstance(c.get("weight_bytes"), int)
             else None),
            ("seconds", c.get("seconds"))]
    parity = c.get("parity") or {}
    if parity:
        rows.append(("engines", (f"{parity.get('source_engine')} (source) vs "
                                f"{parity.get('target_engine')} (target)")))
    body = "".join(f"<tr><th class='l'>{_e(k)}</th><td class='l'>{_e(v)}</td></tr>"
                   for k, v in rows if v is not None)
    notes = [*(c.get("rewrites") or []), *(c.get("notes") or [])]
    listed = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return (f"<h2>Conversion</h2><table>{body}</table>"
            + (f"<p>Notes:</p><ul>{listed}</ul>" if listed else ""))


def _check(p: dict[str, Any], series: list[tuple[str, dict[str, Any]]]) -> str:
    inputs = p.get("inputs") or {}
    engines = ("source_engine", "target_engine")
    rows = [("verdict", None),
            ("source", f"{p.get('source')}" + (f" in {p['source_engine']}"
                                                 if p.get("source_engine") else "")),
            ("target", f"{p.get('target')}" + (f" in {p['target_engine']}"
                                                 if p.get("target_engine") else "")),
            ("inputs", inputs.get("description")), ("noise", p.get("noise"))]
    own = p.get("outputs") is not None and all(p.get(e) for e in engines)
    body = "".join(
        f"<tr><th class='l'>{_e(k)}</th><td class='l'>"
        f"{_verdict(p.get('passed')) if k == 'verdict' else _e(v)}</td></tr>"
        for k, v in rows if v is not None or k == "verdict")
    if len(series) > 1 or not own:
        body += "".join(f"<tr><th class='l'>{_e(label)}</th><td class='l'>"
                        f"{_verdict(s.get('passed'))}{_e(_first(s))}"
                        f"{_e(': failed to run: ' + str(s['error'])) if s.get('error') else ''}"
                        "</td></tr>" for label, s in series[1 if own else 0:])
    first = _first(p)
    notes = "".join(f"<li>{_e(n)}</li>" for n in p.get("notes") or [])
    return (f"<h2>Numeric check</h2><table>{body}</table>"
            + (f"<p class='fail'>First diverging layer{_e(first)}</p>" if first else "")
            + (f"<ul>{notes}</ul>" if notes else ""))


def _first(p: dict[str, Any]) -> str:
    first = p.get("first_divergence")
    if not isinstance(first, dict) or "layer" not in first:
        return ""
    return (f": {first['layer']} ({first.get('class', '?')}), max abs error "
            f"{_num(first.get('max_abs'))}")


COLUMNS = (("max_abs", "max |err|"), ("mean_abs", "mean |err|"), ("p99_abs", "p99 |err|"),
           ("tolerance", "tolerance"), ("margin", "margin"), ("cosine", "cosine"))


def _outputs_table(series: list[tuple[str, dict[str, Any]]]) -> str:
    head = ("<tr><th class='l'>output</th><th class='l'>engine</th><th class='l'>shape</th>"
            + "".join(f"<th>{_e(t)}</th>" for _, t in COLUMNS)
            + "<th>out of tol.</th><th>verdict</th><th class='l'>note</th></tr>")
    rows = [(f"<tr><td class='l'>{_e(o.get('name'))}</td><td class='l'>{_e(label)}</td>"
             f"<td class='l'>{_e(o.get('shape'))}</td>")
            + "".join(f"<td>{_num(o.get(k))}</td>" for k, _ in COLUMNS)
            + (f"<td>{_num(o.get('mismatched'))} / {_num(o.get('total'))}</td>"
               f"<td>{_verdict(o.get('passed'))}</td>"
               f"<td class='l'>{_e(o.get('note', ''))}</td></tr>")
            for label, s in series for o in s.get("outputs") or []]
    return f"<h2>Outputs</h2><table>{head}{''.join(rows)}</table>"


def _legend(labels: list[str]) -> str:
    return "<p class='legend'>" + "".join(
        f"<span><i style='background:{COLOURS[k % len(COLOURS)]}'></i>{_e(lab)}</span>"
        for k, lab in enumerate(labels)) + "</p>"


def _log(v: float) -> float:
    return math.log10(max(v, 1e-12))


def _layers_section(series: list[tuple[str, dict[str, Any]]]) -> str:
    drawn = [(label, s["per_layer"]) for label, s in series
             if isinstance(s.get("per_layer"), list) and s["per_layer"]]
    if not drawn:
        return ("<h2>Error per layer</h2><p class='note'>Not measured: run the check with "
                "--per-layer (Keras sources against ONNX or TF.js graph-model files).</p>")
    return ("<h2>Error per layer</h2><p class='note'>The largest absolute error of each layer's "
            "output along the graph (call order; log scale). A red cross: the other model "
            "holds no value matching that layer's output.</p>"
            + _legend([_computed(label, layers) for label, layers in drawn])
            + layer_plot(drawn))


def _computed(label: str, layers: list[dict[str, Any]]) -> str:
    """A per-layer series' label, with the engine that computed its layer values where the
    report names it (a TF.js graph-model's come from the NumPy TF reference)."""
    where = {e.get("computed_in") for e in layers} - {None}
    return f"{label} (layer values: {', '.join(sorted(map(str, where)))})" if where else label


def layer_plot(drawn: list[tuple[str, list[dict[str, Any]]]]) -> str:
    """An SVG of each series' per-layer ``max_abs`` (log10) against the layer's position."""
    n = max(len(layers) for _, layers in drawn)
    errors = [e["max_abs"] for _, layers in drawn for e in layers
              if isinstance(e.get("max_abs"), (int, float)) and e["max_abs"] > 0]
    lo = math.floor(min((_log(v) for v in errors), default=-8))
    hi = max(math.ceil(max((_log(v) for v in errors), default=0)), lo + 1)
    w, h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def x(i: int) -> float:
        return PAD + (w * i / max(n - 1, 1))

    def y(v: float) -> float:
        return PAD + h * (hi - _log(v)) / (hi - lo) if v > 0 else PAD + h

    parts = [_axes(lo, hi, "max |error|", "layer (call order)", n)]
    for k, (label, layers) in enumerate(drawn):
        colour = COLOURS[k % len(COLOURS)]
        points, marks = [], []
        for i, e in enumerate(layers):
            v = e.get("max_abs")
            tip = f"{label}: {e.get('layer')} ({e.get('class')}) max |err| {_num(v)}"
            if not e.get("held", True) or not isinstance(v, (int, float)):
                marks.append(f"<path class='unheld' d='M{x(i) - 4:.1f} {PAD - 4:.1f}l8 8m0 -8l-8 8'"
                             f" stroke='#c62828' stroke-width='2'><title>{_e(tip)} (not held)"
                             "</title></path>")
                continue
            points.append((x(i), y(float(v)), tip))
        if points:
            d = "M" + "L".join(f"{px:.1f} {py:.1f}" for px, py, _ in points)
            parts.append(f"<path class='series' d='{d}' fill='none' stroke='{colour}' "
                         "stroke-width='1.5'/>")
            parts.extend(f"<circle cx='{px:.1f}' cy='{py:.1f}' r='2.5' fill='{colour}'>"
                         f"<title>{_e(tip)}</title></circle>" for px, py, tip in points)
        parts.extend(marks)
    return _svg(parts)


def _histograms(series: list[tuple[str, dict[str, Any]]]) -> str:
    names: list[str] = []
    for _, s in series:
        for o in s.get("outputs") or []:
            if o.get("name") not in names and isinstance(o.get("error_histogram"), dict):
                names.append(o.get("name"))
    if not names:
        return ""
    out = [("<h2>Error histograms</h2><p class='note'>How many elements of each output have "
           "each absolute error (per half-decade, log scale); exact zeros apart.</p>")]
    for name in names:
        drawn = [(label, o["error_histogram"], o.get("tolerance"))
                 for label, s in series for o in s.get("outputs") or []
                 if o.get("name") == name and isinstance(o.get("error_histogram"), dict)]
        zeros = ", ".join(f"{label}: {hist.get('zeros', 0)}" for label, hist, _ in drawn)
        outside = "; ".join(
            f"{label}: {hist.get('below', 0)} below 1e{hist['log10_low']}, "
            f"{hist.get('above', 0)} from 1e{hist['log10_high']}, "
            f"{hist.get('not_finite', 0)} not finite" for label, hist, _ in drawn)
        out.append(f"<h3>{_e(name)}</h3><p class='note'>exact zeros: {_e(zeros)}; outside the "
                   f"axis: {_e(outside)}</p>"
                   + _legend([label for label, _, _ in drawn]) + histogram_plot(drawn))
    return "".join(out)


def histogram_plot(drawn: list[tuple[str, dict[str, Any], object]]) -> str:
    """An SVG bar chart of each series' ``error_histogram`` counts (bars side by side), with
    the output's tolerance as a dashed line where the report gives one."""
    lo, hi = drawn[0][1]["log10_low"], drawn[0][1]["log10_high"]
    bins = len(drawn[0][1]["counts"])
    top = max((c for _, hist, _ in drawn for c in hist["counts"]), default=0) or 1
    w, h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    slot = w / bins
    bar = slot / (len(drawn) + 0.5)
    parts = [_axes(lo, hi, "elements", "|error|", 0, horizontal_log=True, top=top)]
    for k, (label, hist, tol) in enumerate(drawn):
        colour = COLOURS[k % len(COLOURS)]
        for b, count in enumerate(hist["counts"]):
            if not count:
                continue
            height = h * math.log10(1 + count) / math.log10(1 + top)
            left = PAD + b * slot + k * bar + bar / 4
            edge = lo + (hi - lo) * b / bins
            tip = (f"{label}: {count} elements with |err| in [1e{edge:g}, "
                   f"1e{edge + (hi - lo) / bins:g})")
            parts.append(f"<path class='bar' d='M{left:.1f} {PAD + h:.1f}h{bar:.1f}"
                         f"v{-height:.1f}h{-bar:.1f}z' fill='{colour}'><title>{_e(tip)}"
                         "</title></path>")
        if isinstance(tol, (int, float)) and tol > 0 and lo <= math.log10(tol) <= hi:
            tx = PAD + w * (math.log10(tol) - lo) / (hi - lo)
            parts.append(f"<path d='M{tx:.1f} {PAD}V{PAD + h}' stroke='{colour}' "
                         f"stroke-dasharray='4 3'><title>{_e(label)} tolerance "
                         f"{_num(float(tol))}</title></path>")
    return _svg(parts)


def _axes(lo: int, hi: int, ylabel: str, xlabel: str, n: int, *,
          horizontal_log: bool = False, top: int = 0) -> str:
    """The frame, ticks and labels: a log10 y axis from lo to hi (layer plot), or a log10 x
    axis from lo to hi with counts up (histogram)."""
    w, h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    out = [f"<path d='M{PAD} {PAD}V{PAD + h}H{PAD + w}' stroke='#444' fill='none'/>"]
    for d in range(lo, hi + 1):
        if horizontal_log:
            tx = PAD + w * (d - lo) / (hi - lo)
            out.append(f"<text x='{tx:.1f}' y='{PAD + h + 16}' font-size='10' "
                       f"text-anchor='middle'>1e{d}</text>")
        else:
            ty = PAD + h * (hi - d) / (hi - lo)
            out.append(f"<path d='M{PAD} {ty:.1f}H{PAD + w}' stroke='#eee'/>"
                       f"<text x='{PAD - 4}' y='{ty + 3:.1f}' font-size='10' "
                       f"text-anchor='end'>1e{d}</text>")
    if horizontal_log:
        out.append(f"<text x='{PAD - 4}' y='{PAD + 3}' font-size='10' text-anchor='end'>"
                   f"{top}</text>")
    elif n:
        out.append(f"<text x='{PAD + w}' y='{PAD + h + 16}' font-size='10' "
                   f"text-anchor='end'>{n}</text><text x='{PAD}' y='{PAD + h + 16}' "
                   "font-size='10'>1</text>")
    out.append(f"<text x='{PAD + w / 2:.0f}' y='{HEIGHT - 8}' font-size='11' "
               f"text-anchor='middle'>{_e(xlabel)}</text><text x='12' y='{PAD - 14}' "
               f"font-size='11'>{_e(ylabel)}</text>")
    return "".join(out)


def _svg(parts: list[str]) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
            f"viewBox='0 0 {WIDTH} {HEIGHT}'>{''.join(parts)}</svg>")
