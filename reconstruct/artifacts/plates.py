"""The composite stage's plates, read back (the writer is :class:`reconstruct.composite.outputs.PlateWriter`).

Files ``out/plates/<camera>/<frame:06d>.png`` (16-bit sRGB; the EXR beside it is half-float linear).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np


def plate_paths(folder: Path) -> dict[int, Path]:
    """Output frame -> PNG plate in ``folder`` (``out/plates/hero``), in frame order; {} when there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    found = {}
    for p in folder.glob("*.png"):
        m = re.match(r"^(\d+)$", p.stem)
        if m:
            found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def read_plate(path: Path) -> np.ndarray | None:
    """A plate PNG as RGB uint8 (16-bit rounded: ``round(v / 257)``), or None when unreadable. The plates are
    plain PNGs: decoded by :func:`reconstruct.png.decode_png` (RGB order), others by OpenCV (BGR), same pixels."""
    import cv2

    from ..png import decode_png

    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    img = decode_png(data)
    rgb = img is not None
    if img is None:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
        if img is None:
            return None
    if img.dtype == np.uint16:  # round(v / 257): v / 257 is never within 0.002 of a half, so this is exact
        img = cv2.convertScaleAbs(img, alpha=1.0 / 257.0)
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3]) if rgb else cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
