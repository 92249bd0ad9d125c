"""A fast path for reading calibration images: 8-bit grey or RGB PNGs whose rows are filtered with None or Sub
(what OpenCV's writer produces, e.g. the bench's and ``reconstruct synth``'s board views), decoded with ISA-L's
inflate and one cumulative sum per row in numpy: 22 instead of 38 ms for a 1080p RGB view, 5 instead of 9 ms for a
1280x1024 grey one (the PNG's deflate stream is most of the calibrate stage's reading).

Anything else -- another bit depth, a palette, alpha or ``tRNS``, interlacing, rows filtered Up, Average or Paeth,
an unknown critical chunk, a bad CRC or a stream that does not inflate to the image -- returns None, and the caller
reads the file with OpenCV as before (which also reports damaged files). The pixels are OpenCV's (tested).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

try:  # the same inflate, faster (isal is a dependency of the package: reconstruct/png.py)
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - a platform without isal's wheel
    _zlib = zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3}  # colour type -> channels (grey, RGB)


def decode_png(data: bytes) -> np.ndarray | None:
    """``data`` (a PNG file's bytes) -> (H, W) grey or (H, W, 3) RGB uint8, or None when the fast path does not
    apply (see the module docstring)."""
    if not data.startswith(_SIGNATURE):
        return None
    view = memoryview(data)
    pos, end = 8, len(data)
    header, idat = None, []
    while pos + 12 <= end:
        n, kind = struct.unpack_from(">I4s", data, pos)
        if pos + 12 + n > end:
            return None
        body = view[pos + 8:pos + 8 + n]
        if _zlib.crc32(body, zlib.crc32(kind)) != struct.unpack_from(">I", data, pos + 8 + n)[0]:
            return None
        pos += 12 + n
        if kind == b"IHDR":
            header = bytes(body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        elif kind == b"tRNS" or not kind[:1].islower():  # transparency, or a critical chunk (PLTE, unknown)
            return None
    if header is None or len(header) != 13 or not idat:
        return None
    w, h, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", header)
    ch = _CHANNELS.get(colour)
    if ch is None or depth != 8 or compression or filtering or interlace or not w or not h:
        return None
    try:
        raw = _zlib.decompress(b"".join(idat))
    except Exception:  # noqa: BLE001 - isal's and zlib's errors differ; either way OpenCV reads (or rejects) it
        return None
    if len(raw) != h * (w * ch + 1):
        return None
    rows = np.frombuffer(raw, np.uint8).reshape(h, w * ch + 1)
    kinds = rows[:, 0]
    if np.any(kinds > 1):  # Up, Average, Paeth: not here
        return None
    px = rows[:, 1:].reshape(h, w, ch)
    if np.all(kinds == 1):
        img = np.cumsum(px, axis=1, dtype=np.uint8)  # Sub: each byte adds the one a pixel to its left, mod 256
    else:
        img = px.copy()
        sub = kinds == 1
        img[sub] = np.cumsum(px[sub], axis=1, dtype=np.uint8)
    return img[..., 0] if ch == 1 else img
