"""The rows of a frame's downscaled paste-back mask that its patch can reach, for the flicker's union mask
(:func:`.data._mask_union`, in the driver before the report's pass).

The mask patch (``out/plates/patches``) covers a small part of the plate; the rest of the mask is 0. OpenCV's
``INTER_AREA`` resize by an integer factor on both axes averages each output row from its own ``sy`` input rows
(its fast path), so resizing only the band of whole ``sy``-row groups the patch touches, at the plate's full width
(the same columns, so the same SIMD body/tail split of each row), gives those rows' values bit for bit, and every
other row is 0: ~8 MB of float32 per frame neither filled, placed nor resized. Other factors take the whole mask.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DBL_EPSILON = 2.220446049250313e-16


def _area_fast(src: int, dst: int) -> int | None:
    """The integer factor when OpenCV's ``resize`` takes ``INTER_AREA``'s fast path for ``src`` -> ``dst`` pixels along
    one axis (its test on the inverse of ``dst / src``, in the same double arithmetic), else None."""
    scale = 1.0 / (dst / src)
    k = int(round(scale))
    return k if k >= 1 and abs(scale - k) < DBL_EPSILON else None


def downscaled_mask_rows(data: Any, frame: int, size: tuple[int, int], width: int
                         ) -> tuple[np.ndarray, int, tuple[int, int]] | None:
    """(rows (n, w) float64 in [0, 1], their first row, the downscaled mask's (h, w)) of ``frame``'s paste-back mask
    on a plate of ``size`` (W, H) downscaled to at most ``width`` as :func:`.data._downscale` does and clipped --
    every row outside is 0 --, or None without a patch. ``data``: the report's :class:`~.data.ReportData`."""
    import cv2

    from .data import _downscale

    W, H = size
    s = width / W
    dw, dh = (W, H) if W <= width else (width, max(1, round(H * s)))
    sx, sy = _area_fast(W, dw), _area_fast(H, dh)
    p = data.patch(frame) if W > width and sx and sy else None
    if p is not None and min(p[1]) >= 0:  # else (no fast path, a patch off the plate) the whole mask, as before
        a, (x, y) = p
        h, w = min(a.shape[0], H - y), min(a.shape[1], W - x)
        y0, y1 = y // sy * sy, min(H, -(-(y + h) // sy) * sy)
        if h > 0 and w > 0 and _area_fast(y1 - y0, (y1 - y0) // sy) == sy:
            band = np.zeros((y1 - y0, W), np.float32)
            band[y - y0:y - y0 + h, x:x + w] = a[:h, :w]
            rows = cv2.resize(band, (dw, (y1 - y0) // sy), interpolation=cv2.INTER_AREA)
            return np.clip(rows.astype(np.float64), 0, 1), y0 // sy, (dh, dw)
    m = data.mask(frame, (H, W))
    if m is None:
        return None
    ms = np.clip(_downscale(m, width).astype(np.float64), 0, 1)
    return ms, 0, ms.shape
