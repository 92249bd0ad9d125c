"""Assembling the one self-contained HTML page: inline CSS, images as data URIs, no external request."""

from __future__ import annotations

import base64
import html
from typing import Iterable, Sequence

import numpy as np

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;background:#f4f5f7;color:#222}
header{background:#1d2733;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px} header p{margin:4px 0 0;color:#c9d1db;font-size:13px}
nav{background:#fff;border-bottom:1px solid #ddd;padding:6px 24px;font-size:13px;position:sticky;top:0;z-index:1}
nav a{margin-right:14px;color:#1f5fa8;text-decoration:none}
main{padding:8px 24px 40px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;margin:14px 0;padding:10px 16px}
section h2{font-size:17px;margin:6px 0 10px;border-bottom:1px solid #eee;padding-bottom:6px}
section h3{font-size:14px;margin:12px 0 6px}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0}
th,td{border:1px solid #e1e4e8;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#666;font-size:12.5px}
.warn{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 10px;font-size:13px;margin:6px 0}
.bad{background:#fdecea;border-left:4px solid #d62728;padding:6px 10px;font-size:13px;margin:6px 0}
.ok{background:#eaf6ec;border-left:4px solid #2ca02c;padding:6px 10px;font-size:13px;margin:6px 0}
.thumbs{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;font-size:12px;text-align:center}
figure img{display:block;border:1px solid #ccc;image-rendering:auto}
.pill{display:inline-block;border-radius:9px;padding:0 7px;font-size:11.5px;margin:1px;background:#eee}
.pill.flag{background:#fdecea;color:#a31515}
svg{max-width:100%;height:auto;display:block;margin:4px 0}
"""


def esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def image_data_uri(image: np.ndarray, max_side: int = 360, fmt: str = ".jpg", quality: int = 88) -> str:
    """An RGB/gray uint8 image as a ``data:`` URI, downscaled so its longer side is at most ``max_side``."""
    import cv2

    img = np.asarray(image)
    if img.dtype == np.uint16:
        img = (img // 257).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(np.asarray(img, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    h, w = img.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s < 1.0:
        img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == ".jpg" else []
    ok, buf = cv2.imencode(fmt, img, params)
    if not ok:  # pragma: no cover - OpenCV always encodes these
        return ""
    mime = "image/jpeg" if fmt == ".jpg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.tobytes()).decode('ascii')}"


def figure(uri: str, caption: str = "") -> str:
    """A captioned picture from a ready data URI (:func:`image_data_uri`)."""
    return f'<figure><img alt="{esc(caption)}" src="{uri}"><figcaption>{esc(caption)}</figcaption></figure>'


def table(header: Sequence[str] | None, rows: Iterable[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    """An HTML table; ``header`` None for a key/value table (first column as row headers)."""
    if header is None:
        return "<table>" + "".join(f"<tr><th>{esc(r[0])}</th>" + "".join(f"<td>{esc(c)}</td>" for c in r[1:])
                                   + "</tr>" for r in rows) + "</table>"
    out = ["<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(
            f'<td class="num">{esc(c)}</td>' if i in numeric else f"<td>{esc(c)}</td>" for i, c in enumerate(r))
            + "</tr>")
    out.append("</table>")
    return "".join(out)


def fmt(v: object, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v:
            return "-"
        return f"{v:.{digits}g}"
    return str(v)


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The full HTML document. ``sections``: (anchor id, heading, body html)."""
    nav = "".join(f'<a href="#{esc(a)}">{esc(h)}</a>' for a, h, _ in sections)
    body = "".join(f'<section id="{esc(a)}"><h2>{esc(h)}</h2>{b}</section>' for a, h, b in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f'<body><header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><nav>{nav}</nav>'
            f'<main>{body}</main></body></html>')
