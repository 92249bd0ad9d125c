"""The plates' half-float OpenEXR files, encoded here: scanline, ZIP compression (blocks of 16 lines), deflated by
ISA-L (the deflate :mod:`reconstruct.png` uses).

Why not the ``OpenEXR`` package's writer: its PIZ took 54-60 ms per 1080p half-float RGB plate on one core (5.1 MB)
and its ZIP (zlib level 4) 111-120 ms (5.6 MB) -- the largest single cost of the composite stage. The ZIP scheme is
simple (per block: the bytes split into even and odd halves, a byte-difference predictor, zlib-format deflate), so
the block reordering is done in numpy and the deflate by ISA-L at level :data:`ZIP_LEVEL`: less than half PIZ's time
for files 1.2x (the bench's synthetic take) to 1.9x (a smooth real face frame) PIZ's size (measured,
docs/render-composite.md "The plates' EXR"; ``composite.exr_compression=piz`` keeps PIZ). The files are ordinary OpenEXR 2
single-part scanline files with ``ZIP_COMPRESSION``: any reader (Nuke, OpenImageIO, the ``OpenEXR`` package)
decodes exactly the half floats given (tests/composite/test_exr.py). Provenance stays a ``string`` header attribute
(:data:`reconstruct.provenance.PROVENANCE_KEY`), read by :func:`reconstruct.provenance.read_exr_provenance`.

Layout of one ZIP block (OpenEXR's file format): for each scanline of the block, for each channel in name order
(B, G, R), the line's pixels as little-endian halves; that block's bytes are reordered (every even-indexed byte
first, then every odd-indexed one), each byte after the first replaced by ``(b[i] - b[i-1] + 128) mod 256``, and
deflated (zlib format); a block that does not shrink is stored as it was before reordering.
"""

from __future__ import annotations

import struct
from typing import Mapping

import numpy as np

from ..errors import ConfigError
from ..png import deflate

__all__ = ["encode_exr_half", "ZIP_LEVEL", "LINES_PER_BLOCK"]

#: the deflate level of the blocks: ISA-L level 1 wrote a 1080p bench plate in 29 ms at 6.30 MB, level 2 in 31 ms
#: at 6.15 MB, level 0 in 28 ms at 7.57 MB (one core, same run; PIZ 56 ms at 5.12 MB); measured again (``comp9``,
#: min of 6, one core): bench plate 27.9 / 30.5 ms (levels 1 / 2), a real face frame scaled to 1080p 17.0 / 17.5 ms
#: at 2.50 / 2.47 MB: level 1, 1-2.4 % larger files for 3-8 % less time
ZIP_LEVEL = 1
LINES_PER_BLOCK = 16  # what ZIP_COMPRESSION means (ZIPS is 1)
_MAGIC, _VERSION = 20000630, 2
_HALF = 1
_ZIP_COMPRESSION = 3
_CHANNELS = {1: ("Y",), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}  # by name these are the reverse order


def _attr(name: str, kind: str, body: bytes) -> bytes:
    return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(body)) + body


def _header(h: int, w: int, names: tuple[str, ...], strings: Mapping[str, str]) -> bytes:
    chlist = b"".join(n.encode() + b"\0" + struct.pack("<iB3xii", _HALF, 0, 1, 1) for n in sorted(names)) + b"\0"
    box = struct.pack("<iiii", 0, 0, w - 1, h - 1)
    attrs = {"channels": ("chlist", chlist), "compression": ("compression", bytes([_ZIP_COMPRESSION])),
             "dataWindow": ("box2i", box), "displayWindow": ("box2i", box), "lineOrder": ("lineOrder", b"\0"),
             "pixelAspectRatio": ("float", struct.pack("<f", 1.0)),
             "screenWindowCenter": ("v2f", struct.pack("<ff", 0.0, 0.0)),
             "screenWindowWidth": ("float", struct.pack("<f", 1.0))}
    for key, text in strings.items():
        if key in attrs or not 0 < len(key) < 32 or "\0" in key:
            raise ConfigError(f"EXR header attribute {key!r}: reserved, empty or longer than 31 characters")
        attrs[key] = ("string", str(text).encode("utf-8"))
    body = b"".join(_attr(k, *attrs[k]) for k in sorted(attrs))
    return struct.pack("<ii", _MAGIC, _VERSION) + body + b"\0"


def encode_exr_half(image: np.ndarray, strings: Mapping[str, str] | None = None, where: str = "image") -> bytes:
    """OpenEXR bytes of ``image``, stored as half floats with ZIP compression: float (H, W, 3) RGB, (H, W, 4) RGBA or
    (H, W) (channel ``Y``); float32 values are rounded to half (``astype(float16)``), float16 used as they are.
    ``strings``: extra ``string`` header attributes (name up to 31 characters), e.g. the provenance record."""
    img = np.asarray(image)
    if img.dtype.kind != "f":
        raise ConfigError(f"{where}: EXR needs float pixels, got {img.dtype}", hint="convert with img.astype(np.float32)")
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in _CHANNELS or img.shape[0] == 0 or img.shape[1] == 0:
        raise ConfigError(f"{where}: image shape {np.shape(image)} is not (H, W), (H, W, 3) or (H, W, 4)")
    h, w, c = img.shape
    names = _CHANNELS[c]
    # little-endian half bits, (H, W, C, byte): byte 0 is the low byte, i.e. the "even" half of the reordering
    bits = np.ascontiguousarray(img.astype("<f2", copy=False)).view(np.uint8).reshape(h, w, c, 2)
    planes = bits[:, :, ::-1, :]  # (H, W, C, 2) in the file's channel order (by name: A B G R, B G R, Y), a view
    n = LINES_PER_BLOCK
    line = c * w  # halves per scanline
    buf = np.empty(2 * n * line, np.uint8)
    pred = np.empty_like(buf)
    chunks = []
    for y0 in range(0, h, n):
        y1 = min(y0 + n, h)
        size = 2 * (y1 - y0) * line
        b = buf[:size]
        # reordered: the block's low bytes (line, channel, x) then its high bytes, in one strided copy
        b.reshape(2, y1 - y0, c, w)[...] = planes[y0:y1].transpose(3, 0, 2, 1)
        p = pred[:size]
        p[0] = b[0]
        np.subtract(b[1:], b[:-1], out=p[1:])
        p[1:] += np.uint8(128)  # uint8 arithmetic wraps: the predictor's mod-256 difference
        data = deflate(memoryview(p), ZIP_LEVEL)
        if len(data) >= size:  # incompressible: the block as it was (halves in line, channel, x order)
            data = np.ascontiguousarray(planes[y0:y1].transpose(0, 2, 1, 3)).tobytes()
        chunks.append((struct.pack("<ii", y0, len(data)), data))
    head = _header(h, w, names, strings or {})
    offsets, pos = [], len(head) + 8 * len(chunks)
    for _, data in chunks:
        offsets.append(pos)
        pos += 8 + len(data)
    return b"".join([head, struct.pack(f"<{len(offsets)}Q", *offsets), *(part for ch in chunks for part in ch)])
