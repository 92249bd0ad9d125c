"""The compositing mask: where the edited face replaces the plate, and how softly.

``alpha = feather(erode(coverage & ~exclude [& skin]))``, built so that ``alpha == 0`` wherever the rendered face
does not cover the plate: feathering happens *inside* the covered region, never outside it. Pixels with
``alpha == 0`` keep the plate's exact values (see :func:`reconstruct.composite.composite_face`).
"""

from __future__ import annotations

import numpy as np

from ..errors import RenderError

#: alpha below this (1/1024) is set to exactly 0, so float noise of the blur never touches plate pixels.
ALPHA_FLOOR = 1.0 / 1024.0


def _disk(radius: int) -> np.ndarray:
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def face_mask(coverage: np.ndarray, erode_px: int = 3, feather_px: int = 8, exclude: np.ndarray | None = None,
              skin: np.ndarray | None = None) -> np.ndarray:
    """Soft compositing mask from a render's coverage.

    Args:
        coverage: (H, W) float or bool, > 0.5 where the edited face covers the pixel.
        erode_px: shrink the covered region by this many pixels first (hides silhouette aliasing and fit error).
        feather_px: width in pixels of the soft transition, measured inwards from the eroded edge.
        exclude: (H, W) bool or float, > 0.5 where the plate must stay (e.g. the performance's eyes), or None.
        skin: (H, W) bool or float, > 0.5 on skin; when given the mask is limited to it.

    Returns:
        (H, W) float32 alpha in [0, 1]; exactly 0 outside the eroded coverage.
    """
    import cv2

    cov = np.asarray(coverage)
    if cov.ndim != 2:
        raise RenderError(f"face_mask: coverage has shape {cov.shape}, expected (H, W)")
    hard = cov > 0.5
    for name, m in (("exclude", exclude), ("skin", skin)):
        if m is not None and np.asarray(m).shape != cov.shape:
            raise RenderError(f"face_mask: {name} mask {np.asarray(m).shape} differs from coverage {cov.shape}")
    if exclude is not None:
        hard &= ~(np.asarray(exclude) > 0.5)
    if skin is not None:
        hard &= np.asarray(skin) > 0.5
    m = hard.astype(np.uint8)
    if erode_px > 0:
        m = cv2.erode(m, _disk(int(erode_px)), borderValue=0)
    support = m > 0
    if feather_px <= 0:
        return support.astype(np.float32)
    # Distance inside the support, ramped over feather_px, then smoothed: a soft edge that never leaves support.
    dist = cv2.distanceTransform(m, cv2.DIST_L2, 5)
    ramp = np.clip(dist / float(feather_px), 0.0, 1.0)
    alpha = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep
    alpha = np.where(support, alpha, 0.0).astype(np.float32)
    alpha[alpha < ALPHA_FLOOR] = 0.0
    return alpha


def skin_from_color(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) bool rough skin classifier (YCrCb box of Chai & Ngan 1999), for plates
    without a model skin region."""
    import cv2

    ycc = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YCrCb)
    cr, cb = ycc[..., 1], ycc[..., 2]
    return (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127)
