"""OpenCV's decoding of PNG bytes, as RGB(A) like the project's readers: the reference the PNG tests compare with."""
from __future__ import annotations

import cv2
import numpy as np


def opencv_decode(data: bytes) -> np.ndarray:
    """OpenCV's pixels of the PNG ``data`` (any depth, unchanged), channels in RGB / RGBA order."""
    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if out.ndim == 3:
        out = cv2.cvtColor(out, cv2.COLOR_BGR2RGB if out.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return out
