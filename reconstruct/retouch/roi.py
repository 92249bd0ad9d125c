"""The face's region of interest in a frame, and a camera that renders only that region."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..camera import CameraModel


@dataclass(frozen=True, slots=True)
class Roi:
    """A rectangle of a (H, W) frame: top-left pixel ``(x0, y0)``, size ``(w, h)``, pixels, inside the frame."""

    x0: int
    y0: int
    w: int
    h: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``frame[roi.slices]`` is the region."""
        return slice(self.y0, self.y0 + self.h), slice(self.x0, self.x0 + self.w)

    @property
    def empty(self) -> bool:
        return self.w <= 0 or self.h <= 0


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)``: the smallest box of a 2D array holding every true / non-zero pixel (``mask[y0:y1,
    x0:x1]``), or None when there is none."""
    m = np.asarray(mask)
    rows = np.flatnonzero(m.any(axis=1))
    if not rows.size:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def face_roi(points: np.ndarray, image_size: tuple[int, int], margin: float = 0.35, min_px: int = 16) -> Roi:
    """The box around ``points`` ((N, 2) pixels; non-finite ignored) grown by ``margin`` x its larger side on each
    side, clipped to the frame ``image_size = (W, H)``. Empty when no point is finite."""
    W, H = image_size
    p = np.asarray(points, np.float64).reshape(-1, 2)
    p = p[np.isfinite(p).all(1)]
    if not len(p):
        return Roi(0, 0, 0, 0)
    lo, hi = p.min(0), p.max(0)
    grow = margin * max(float(np.max(hi - lo)), float(min_px))
    x0, y0 = int(np.floor(max(lo[0] - grow, 0))), int(np.floor(max(lo[1] - grow, 0)))
    x1, y1 = int(np.ceil(min(hi[0] + grow, W - 1))) + 1, int(np.ceil(min(hi[1] + grow, H - 1))) + 1
    return Roi(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def crop_camera(camera: CameraModel, roi: Roi) -> CameraModel:
    """The same camera seeing only ``roi``: principal point moved by ``-(x0, y0)``, image size ``(w, h)``. A point
    projects to ``p - (x0, y0)`` in it (the lens model works in normalised coordinates, so distortion is kept)."""
    K = camera.K.copy()
    K[0, 2] -= roi.x0
    K[1, 2] -= roi.y0
    return replace(camera, K=K, image_size=(roi.w, roi.h))


def coarse_size(w: int, h: int, scale: int) -> tuple[int, int]:
    """``(w, h)`` of an image of ``(w, h)`` pixels seen at ``1 / scale`` resolution (rounded up)."""
    return max(1, -(-int(w) // int(scale))), max(1, -(-int(h) // int(scale)))


def scale_camera(camera: CameraModel, size: tuple[int, int]) -> CameraModel:
    """The same camera at another resolution ``size = (w, h)``: pixel ``x`` of the original lies at
    ``(x + 0.5) * w / W - 0.5`` in it (the pixel-centre convention of ``cv2.resize``, so a field computed on it
    and resized back with ``cv2.resize`` lands where it belongs)."""
    W, H = camera.image_size
    kx, ky = size[0] / float(W), size[1] / float(H)
    K = camera.K.astype(np.float64).copy()
    K[0] *= kx
    K[1] *= ky
    K[0, 2] += 0.5 * kx - 0.5
    K[1, 2] += 0.5 * ky - 0.5
    return replace(camera, K=K, image_size=(int(size[0]), int(size[1])))
