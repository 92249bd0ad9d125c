"""How the per-frame intermediates (the age stage's edits, the render stage's faces) store their pixel arrays.

Images and masks in [0, 1] are stored as 16-bit fixed point, ``round(x * 65535)``: the quantisation the 16-bit PNG
plate applies at the end anyway (``reconstruct.composite.outputs.to_uint16``), so a deliverable pixel moves by at
most one code of 65535 (an 8-bit level is 257 codes), and half the bytes of float32. float16 was not used: its
11-bit mantissa is up to 16 codes off near white. The files are stored, not zlib-compressed (the next stage reads
each once; compression cost 0.14 s per 1080p frame). Files written before (float32 arrays) load unchanged.
"""

from __future__ import annotations

import numpy as np

SCALE = np.float32(65535.0)


def encode_unit(x: np.ndarray) -> np.ndarray:
    """float in [0, 1] (clipped) -> uint16 ``round(x * 65535)``."""
    return np.round(np.clip(np.asarray(x, np.float32), 0.0, 1.0) * SCALE).astype(np.uint16)


def decode_unit(a: np.ndarray) -> np.ndarray:
    """What :func:`encode_unit` stored (or a float array of an older file) -> float32 in [0, 1]."""
    a = np.asarray(a)
    if a.dtype == np.uint16:
        return a.astype(np.float32) / SCALE
    return a.astype(np.float32, copy=False)
