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
    """A plate PNG as RGB uint8 (16-bit rounded: ``round(v / 257)``), or None when unreadable."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    if img.dtype == np.uint16:  # round(v / 257): v / 257 is never within 0.002 of a half, so this is exact
        img = cv2.convertScaleAbs(img, alpha=1.0 / 257.0)
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    return cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
