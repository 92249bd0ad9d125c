"""Reading the plates the report decodes every frame of (the hero plate, the composited output) faster than
OpenCV, with the same samples.

Both are PNGs whose rows all use the simple PNG filters: the composite's 16-bit outputs are written by
:func:`reconstruct.png.encode_png` (filter 2, "Up", on every row) and frames stored by ``cv2.imwrite`` use filter 1
("Sub") on every row (OpenCV's default). Undoing those is a running sum mod 256 down the columns (Up) or along
each row with a stride of one pixel (Sub): numpy adds of whole rows (Up) or a uint8 ``cumsum`` along the row (Sub)
instead of libpng's byte-by-byte loop, after one inflate of the joined IDAT chunks (ISA-L's when installed). The
16-bit samples go to 8 bits by OpenCV's ``convertScaleAbs`` (what ``read_plate`` uses). Any other PNG (Average or Paeth rows, interlaced, palette, under 8 bits a
sample, damaged) returns None here and the caller reads it with OpenCV as before.

Measured (one process, the hero-2ir bench take's 1920x1080 frames, median of 6, a shared machine): the 8-bit hero
plate (Sub) 34 -> 13 ms, the composite's 16-bit output (Up) 66 -> 38 ms, a 16-bit output OpenCV wrote (Sub) 77 ->
69 ms; a 760x853 16-bit mask patch 3.3 -> 1.5 ms. The samples are OpenCV's (tests/report/test_pngread.py compares
every case, and every 16-bit value's conversion).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

try:  # ISA-L's inflate: ~2x zlib's on a plate's IDAT
    from isal import isal_zlib as _inflate_lib
except ImportError:  # pragma: no cover - isal is a dependency
    _inflate_lib = zlib

__all__ = ["read_gray", "read_png_rows", "read_rgb8"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 6: 4}  # PNG colour type -> samples a pixel: grey, RGB, RGBA


def read_png_rows(data: bytes) -> np.ndarray | None:
    """The samples of a PNG file's bytes as (H, W, C) uint8 (C*2 bytes a pixel, big-endian pairs, for 16 bits)
    with the bit depth: ``(array, depth)``; None when the file is not one this reader handles (see the module
    docstring) -- then read it another way."""
    try:
        if data[:8] != _SIGNATURE:
            return None
        pos, n_data, idat, head = 8, len(data), [], None
        while pos + 8 <= n_data:
            n, kind = struct.unpack(">I4s", data[pos:pos + 8])
            body = pos + 8
            if kind == b"IHDR":
                head = struct.unpack(">IIBBBBB", data[body:body + 13])
            elif kind == b"IDAT":
                idat.append(data[body:body + n])
            elif kind == b"IEND":
                break
            pos = body + n + 4
        if head is None or not idat:
            return None
        w, h, depth, color, comp, filt, interlace = head
        if depth not in (8, 16) or color not in _CHANNELS or comp or filt or interlace or not w or not h:
            return None
        bpp = _CHANNELS[color] * depth // 8
        size = h * (w * bpp + 1)  # the filtered rows' bytes (a filter byte each)
        raw = np.frombuffer(_inflate_lib.decompress(b"".join(idat), bufsize=size), np.uint8)
        if raw.size < size:
            return None
        raw = raw[:size].reshape(h, w * bpp + 1)
        kinds = raw[:, 0]
        if kinds.max() > 2:  # Average / Paeth rows (or an invalid filter byte)
            return None
        out = np.empty((h, w, bpp), np.uint8)
        rows = raw[:, 1:].reshape(h, w, bpp)
        r = 0
        while r < h:  # runs of rows with one filter
            k = kinds[r]
            e = r + 1
            while e < h and kinds[e] == k:
                e += 1
            if k == 0:
                out[r:e] = rows[r:e]
            elif k == 1:  # Sub: each byte + the same byte of the pixel to its left
                np.cumsum(rows[r:e], axis=1, dtype=np.uint8, out=out[r:e])
            else:  # Up: each byte + the byte above (zeros above the first row); row by row (numpy's cumsum down
                # the rows of a plate took 97 ms, this 1.3)
                above = out[r - 1] if r else np.zeros_like(out[0])
                for i in range(r, e):
                    np.add(above, rows[i], out=out[i])
                    above = out[i]
            r = e
        return out.reshape(h, w, bpp), depth
    except (struct.error, zlib.error, ValueError, OSError, getattr(_inflate_lib, "error", zlib.error)):
        return None


def _to_uint8(px: np.ndarray, rounded: bool) -> np.ndarray:
    """(H, W, 2C) bytes of big-endian 16-bit samples -> (H, W, C) uint8: ``round(v / 257)`` as
    :func:`reconstruct.artifacts.plates.read_plate` computes it (OpenCV's ``convertScaleAbs``), or ``v // 257``."""
    import cv2

    h, w, _ = px.shape
    v = px.reshape(h, -1).view(">u2").astype(np.uint16)  # (H, W C) native order
    out = cv2.convertScaleAbs(v, alpha=1.0 / 257.0) if rounded else (v // 257).astype(np.uint8)
    return out.reshape(h, w, -1)


def read_rgb8(path: str | Path, rounded: bool = True) -> np.ndarray | None:
    """An RGB (or grey) PNG as RGB uint8 (H, W, 3): 8-bit samples as they are, 16-bit ones ``round(v / 257)``
    (``rounded``; what :func:`reconstruct.artifacts.plates.read_plate` gives) or ``v // 257``; an alpha channel
    is dropped, grey is repeated into three channels. None when this reader does not handle the file (or it cannot
    be read): read it with OpenCV then."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    got = read_png_rows(data)
    if got is None:
        return None
    px, depth = got
    h, w, _ = px.shape
    if depth == 16:
        px = _to_uint8(px, rounded)
    c = px.shape[2]
    if c == 1:
        return np.repeat(px, 3, axis=2)
    return px if c == 3 else np.ascontiguousarray(px[..., :3])


def read_gray(path: str | Path) -> np.ndarray | None:
    """A grey PNG's samples (H, W) uint8 or uint16, as OpenCV's ``IMREAD_UNCHANGED`` gives them (the composite's
    mask patches); None when it is not a grey PNG this reader handles (or cannot be read)."""
    try:
        got = read_png_rows(Path(path).read_bytes())
    except OSError:
        return None
    if got is None:
        return None
    px, depth = got
    if px.shape[2] * 8 // depth != 1:  # more than one sample a pixel
        return None
    return px[..., 0] if depth == 8 else px.reshape(px.shape[0], -1).view(">u2").astype(np.uint16)
