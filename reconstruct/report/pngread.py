"""The composite's mask patches as OpenCV's ``IMREAD_UNCHANGED`` samples of a grey PNG, through the project's one
PNG decoder, :func:`reconstruct.png.decode_png` (a 760x853 16-bit patch 3.3 -> 1.5 ms against OpenCV, one
process). None for a file the decoder declines (Average/Paeth rows, palette, interlaced, damaged), a colour PNG, or
one that cannot be read: the caller reads it with OpenCV as before. The report's plates and outputs are read by the
session's reader and :func:`reconstruct.artifacts.plates.read_plate`, which use the same decoder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..png import decode_png

__all__ = ["read_gray"]


def read_gray(path: str | Path) -> np.ndarray | None:
    """A grey PNG's samples (H, W) uint8 or uint16, as OpenCV's ``IMREAD_UNCHANGED`` gives them; None when it is
    not a grey PNG the decoder reads (or cannot be read)."""
    try:
        px = decode_png(Path(path).read_bytes())
    except OSError:
        return None
    return px if px is not None and px.ndim == 2 else None
