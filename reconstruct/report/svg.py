"""Small inline-SVG charts for the QC report (no plotting library): line charts, bar charts, lane timelines.

Every function returns an ``<svg>`` string sized in CSS pixels, with axes, ticks and a legend, readable in any
browser and when printed. Inputs are plain sequences or numpy arrays; NaN values leave gaps.
"""

from __future__ import annotations

import html
import math
from typing import Mapping, Sequence

import numpy as np

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
FLAG_COLOR = "#d62728"


def _esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (about ``n`` of them)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) if lo else 1.0)
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, v = [], start
    while v <= hi + step * 1e-6:
        ticks.append(round(v, 12))
        v += step
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.1e}"
    return f"{v:.3g}"


class _Frame:
    """Plot area with data->pixel mapping and drawn axes."""

    def __init__(self, width: int, height: int, x_range: tuple[float, float], y_range: tuple[float, float],
                 x_label: str, y_label: str, title: str, left: int = 56, bottom: int = 34, top: int = 26,
                 right: int = 12, y_ticks: bool = True) -> None:
        self.w, self.h = width, height
        self.l, self.b, self.t, self.r = left, bottom, top, right
        self.x0, self.x1 = x_range
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1
        yt = nice_ticks(*y_range) if y_ticks else []
        self.y0, self.y1 = (min(y_range[0], yt[0]), max(y_range[1], yt[-1])) if yt else y_range
        if self.y1 <= self.y0:
            self.y1 = self.y0 + 1
        self.parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                      f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
                      f'<text x="{left}" y="15" font-weight="bold" font-size="12">{_esc(title)}</text>']
        pw, ph = width - left - right, height - top - bottom
        self.parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>')
        for v in yt:
            y = self.py(v)
            self.parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
            self.parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
        for v in nice_ticks(self.x0, self.x1, 8):
            if self.x0 <= v <= self.x1:
                x = self.px(v)
                self.parts.append(f'<text x="{x:.1f}" y="{height - bottom + 14}" text-anchor="middle">{_fmt(v)}</text>')
        self.parts.append(f'<text x="{left + pw / 2:.0f}" y="{height - 4}" text-anchor="middle">{_esc(x_label)}</text>')
        if y_label:
            self.parts.append(f'<text transform="translate(12,{top + ph / 2:.0f}) rotate(-90)" '
                              f'text-anchor="middle">{_esc(y_label)}</text>')

    def px(self, x: float) -> float:
        return self.l + (x - self.x0) / (self.x1 - self.x0) * (self.w - self.l - self.r)

    def py(self, y: float) -> float:
        return self.h - self.b - (y - self.y0) / (self.y1 - self.y0) * (self.h - self.t - self.b)

    def legend(self, names: Sequence[str]) -> None:
        x = self.w - self.r - 4
        for i, name in reversed(list(enumerate(names))):
            label = _esc(name)
            x -= 7 * len(str(name)) + 22
            self.parts.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                              f'<text x="{x + 14}" y="15">{label}</text>')

    def done(self) -> str:
        return "".join(self.parts) + "</svg>"


def line_chart(x: Sequence[float], series: Mapping[str, Sequence[float]], *, title: str = "", x_label: str = "frame",
               y_label: str = "", width: int = 760, height: int = 220, threshold: float | None = None,
               marks: Sequence[float] = ()) -> str:
    """Lines (one per series; NaN = gap), an optional dashed horizontal ``threshold`` and red dots at the
    ``marks`` x values (flagged frames) on the first series."""
    x = np.asarray(x, np.float64)
    ys = {k: np.asarray(v, np.float64) for k, v in series.items()}
    finite = np.concatenate([v[np.isfinite(v)] for v in ys.values()] + [np.array([threshold or 0.0, 0.0])])
    ymax = float(finite.max()) if finite.size else 1.0
    ymin = float(min(finite.min(), 0.0)) if finite.size else 0.0
    fr = _Frame(width, height, (float(x.min()) if x.size else 0.0, float(x.max()) if x.size else 1.0),
                (ymin, ymax * 1.05 if ymax > 0 else 1.0), x_label, y_label, title)
    for i, (name, y) in enumerate(ys.items()):
        color = PALETTE[i % len(PALETTE)]
        path, pen = [], "M"
        for xi, yi in zip(x, y):
            if not math.isfinite(yi):
                pen = "M"
                continue
            path.append(f"{pen}{fr.px(xi):.1f},{fr.py(yi):.1f}")
            pen = "L"
        if path:
            fr.parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        if len(x) <= 60:
            for xi, yi in zip(x, y):
                if math.isfinite(yi):
                    fr.parts.append(f'<circle cx="{fr.px(xi):.1f}" cy="{fr.py(yi):.1f}" r="1.8" fill="{color}"/>')
    if threshold is not None and math.isfinite(threshold):
        y = fr.py(threshold)
        fr.parts.append(f'<line x1="{fr.l}" x2="{fr.w - fr.r}" y1="{y:.1f}" y2="{y:.1f}" stroke="{FLAG_COLOR}" '
                        f'stroke-dasharray="5,3"/><text x="{fr.w - fr.r - 2}" y="{y - 3:.1f}" text-anchor="end" '
                        f'fill="{FLAG_COLOR}">threshold {_fmt(threshold)}</text>')
    if marks and ys:
        first = next(iter(ys.values()))
        lookup = {float(a): b for a, b in zip(x, first)}
        for m in marks:
            yv = lookup.get(float(m))
            if yv is not None and math.isfinite(yv):
                fr.parts.append(f'<circle cx="{fr.px(m):.1f}" cy="{fr.py(yv):.1f}" r="4" fill="none" '
                                f'stroke="{FLAG_COLOR}" stroke-width="2"><title>frame {int(m)}</title></circle>')
    if len(ys) > 1:
        fr.legend(list(ys))
    return fr.done()


def bar_chart(labels: Sequence[str], values: Mapping[str, Sequence[float]], *, title: str = "", y_label: str = "",
              width: int = 760, height: int = 220, threshold: float | None = None) -> str:
    """Grouped bars: one group per label, one bar per series."""
    vals = {k: np.asarray(v, np.float64) for k, v in values.items()}
    allv = np.concatenate([v[np.isfinite(v)] for v in vals.values()] + [np.array([0.0, threshold or 0.0])])
    fr = _Frame(width, height, (0, max(len(labels), 1)), (0.0, float(allv.max()) * 1.1 or 1.0), "", y_label, title,
                bottom=40)
    fr.parts = [p for p in fr.parts if 'text-anchor="middle">' not in p or "rotate" in p]  # no numeric x ticks
    n = max(len(vals), 1)
    gw = (fr.w - fr.l - fr.r) / max(len(labels), 1)
    for j, lab in enumerate(labels):
        fr.parts.append(f'<text x="{fr.l + gw * (j + 0.5):.1f}" y="{fr.h - fr.b + 14}" text-anchor="middle">'
                        f'{_esc(lab)[:14]}</text>')
        for i, (name, v) in enumerate(vals.items()):
            if j >= len(v) or not math.isfinite(v[j]):
                continue
            bw = gw * 0.8 / n
            x = fr.l + gw * j + gw * 0.1 + i * bw
            y = fr.py(v[j])
            fr.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{fr.py(0) - y:.1f}" '
                            f'fill="{PALETTE[i % len(PALETTE)]}"><title>{_esc(lab)} {_esc(name)}: {_fmt(v[j])}'
                            f'</title></rect>')
    if threshold is not None:
        y = fr.py(threshold)
        fr.parts.append(f'<line x1="{fr.l}" x2="{fr.w - fr.r}" y1="{y:.1f}" y2="{y:.1f}" stroke="{FLAG_COLOR}" '
                        f'stroke-dasharray="5,3"/>')
    if len(vals) > 1:
        fr.legend(list(vals))
    return fr.done()


def lanes(x_range: tuple[float, float], rows: Mapping[str, Mapping[str, Sequence[float]]], *, title: str = "",
          x_label: str = "time (s)", width: int = 760, row_height: int = 26,
          colors: Mapping[str, str] | None = None) -> str:
    """A timeline: one lane per row (camera), ticks per event kind (``{"ok": [...], "dropped": [...]}``)."""
    colors = dict(colors or {"ok": "#2ca02c", "dropped": FLAG_COLOR, "gap": "#ff7f0e", "missing": "#9467bd"})
    left = 110
    height = 26 + 34 + row_height * max(len(rows), 1)
    fr = _Frame(width, height, x_range, (0, 1), x_label, "", title, left=left, bottom=34, y_ticks=False)
    kinds: list[str] = []
    for r, (name, events) in enumerate(rows.items()):
        yc = fr.t + row_height * r + row_height / 2
        fr.parts.append(f'<text x="{left - 6}" y="{yc + 4:.1f}" text-anchor="end">{_esc(name)}</text>')
        for kind, xs in events.items():
            if kind not in kinds:
                kinds.append(kind)
            c = colors.get(kind, PALETTE[len(kinds) % len(PALETTE)])
            tall = row_height * (0.35 if kind == "ok" else 0.8)
            for xv in xs:
                if math.isfinite(xv):
                    fr.parts.append(f'<line x1="{fr.px(xv):.1f}" x2="{fr.px(xv):.1f}" y1="{yc - tall / 2:.1f}" '
                                    f'y2="{yc + tall / 2:.1f}" stroke="{c}" stroke-width="{1 if kind == "ok" else 2}"/>')
    x = width - 12 - sum(14 + 7 * len(k) + 16 for k in kinds)
    for kind in kinds:
        c = colors.get(kind, "#333")
        fr.parts.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{c}"/>'
                        f'<text x="{x + 14}" y="15">{_esc(kind)}</text>')
        x += 14 + 7 * len(kind) + 16
    return fr.done()
