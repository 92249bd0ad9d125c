"""The report's plate readers: the hero plate and the composited output as RGB uint8, the composite's mask patches
as OpenCV's ``IMREAD_UNCHANGED`` samples -- through the project's one PNG decoder,
:func:`reconstruct.png.decode_png` (ISA-L inflate, numpy undo of the None/Sub/Up filters: the hero plate 34 -> 13
ms, the composite's 16-bit output 66 -> 38 ms, a 760x853 mask patch 3.3 -> 1.5 ms against OpenCV, one process).
Every function returns None for a file the decoder declines (Average/Paeth rows, palette, interlaced, damaged) or
that cannot be read, and the caller reads it with OpenCV as before. The 16-bit samples go to 8 bits as OpenCV's
``convertScaleAbs`` does (what :func:`reconstruct.artifacts.plates.read_plate` uses); tests/report/test_pngread.py
compares every case, and every 16-bit value's conversion, with OpenCV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..png import decode_png

__all__ = ["read_gray", "read_png", "read_rgb8"]


def read_png(path: str | Path) -> np.ndarray | None:
    """A plain PNG's samples (:func:`reconstruct.png.decode_png`: RGB order, uint8 or uint16), or None when the
    decoder declines the file or it cannot be read."""
    try:
        return decode_png(Path(path).read_bytes())
    except OSError:
        return None


def _to_uint8(v: np.ndarray, rounded: bool) -> np.ndarray:
    """uint16 samples -> uint8: ``round(v / 257)`` as OpenCV's ``convertScaleAbs`` computes it, or ``v // 257``."""
    import cv2

    shape = v.shape
    flat = v.reshape(shape[0], -1)
    out = cv2.convertScaleAbs(flat, alpha=1.0 / 257.0) if rounded else (flat // 257).astype(np.uint8)
    return out.reshape(shape)


def read_rgb8(path: str | Path, rounded: bool = True) -> np.ndarray | None:
    """An RGB (or grey) PNG as RGB uint8 (H, W, 3): 8-bit samples as they are, 16-bit ones ``round(v / 257)``
    (``rounded``; what :func:`reconstruct.artifacts.plates.read_plate` gives) or ``v // 257``; an alpha channel
    is dropped, grey is repeated into three channels. None when the decoder declines the file (or it cannot be
    read): read it with OpenCV then."""
    px = read_png(path)
    if px is None:
        return None
    if px.ndim == 3 and px.shape[2] == 4:
        px = px[..., :3]
    if px.dtype == np.uint16:
        px = _to_uint8(px, rounded)
    if px.ndim == 2:
        return np.repeat(px[..., None], 3, axis=2)
    return np.ascontiguousarray(px)


def read_gray(path: str | Path) -> np.ndarray | None:
    """A grey PNG's samples (H, W) uint8 or uint16, as OpenCV's ``IMREAD_UNCHANGED`` gives them (the composite's
    mask patches); None when it is not a grey PNG the decoder reads (or cannot be read)."""
    px = read_png(path)
    return px if px is not None and px.ndim == 2 else None
