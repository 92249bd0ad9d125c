"""Aligned face crops for the deepfake autoencoder.

``now`` crops come from the session's hero plate (landmarks from the fit), ``young`` crops from a folder of young
stills or footage of the actor (landmarks from ``points.json`` or the registered detector). Every crop is a
similarity warp that puts the 5 alignment points on the canonical template (:mod:`reconstruct.training.align`);
its target mask is the face region: the 68-point hull raised to the forehead when 68 points are known, else the
template's face ellipse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import cv2
import numpy as np

from reconstruct.errors import MethodError
from reconstruct.training.align import align_matrix, template, warp_to_crop


@dataclass(frozen=True, slots=True, eq=False)
class FaceCrops:
    """images: (N, S, S, 3) float32 RGB [0, 1]; masks: (N, S, S) float32 face masks [0, 1]; names: (N,) where each
    came from; source: description."""

    images: np.ndarray
    masks: np.ndarray
    names: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def split(self, holdout: int) -> tuple["FaceCrops", "FaceCrops"]:
        """(train, validation): the last ``holdout`` crops are held out (contiguous: later frames of a shot)."""
        if len(self) <= holdout:
            raise MethodError(f"{len(self)} face crops from {self.source}: too few to hold {holdout} out",
                              hint="give more frames/stills or lower the validation count")
        n = len(self) - holdout
        return (FaceCrops(self.images[:n], self.masks[:n], self.names[:n], self.source),
                FaceCrops(self.images[n:], self.masks[n:], self.names[n:], self.source))


def template_face_mask(size: int, coverage: float) -> np.ndarray:
    """(S, S) float32 ellipse around the template's eyes, nose and mouth (brows to chin)."""
    t = template(size, coverage)
    c = t.mean(0) + np.array([0.0, -0.05 * size / coverage])
    iod = np.linalg.norm(t[1] - t[0])
    m = np.zeros((size, size), np.uint8)
    cv2.ellipse(m, (int(round(c[0])), int(round(c[1]))), (int(round(1.05 * iod)), int(round(1.45 * iod))), 0, 0, 360,
                1, -1)
    return m.astype(np.float32)


def face_mask_from_points(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
    """Face hull in image pixels from 68 or 468/478 points (None for 5 points)."""
    p = np.asarray(points, np.float64)
    if p.shape[0] == 68:
        up = p[30] - p[27]
        poly = np.concatenate([p[0:17], p[17:27] - 0.9 * up])
    elif p.shape[0] in (468, 478):
        poly = p[:468]
    else:
        return None
    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(m, np.round(cv2.convexHull(poly.astype(np.float32))).astype(np.int32).reshape(-1, 2), 1)
    return m.astype(np.float32)


def extract_crops(items: Iterable[tuple[str, np.ndarray, np.ndarray]], size: int, coverage: float,
                  source: str, masks: Iterable[np.ndarray | None] | None = None) -> FaceCrops:
    """Align every (name, RGB image, landmarks) to a ``size`` px crop. ``masks``: optional per-image face masks
    in image pixels (synthetic data knows them); otherwise they come from the landmarks."""
    imgs, ms, names = [], [], []
    mask_iter = iter(masks) if masks is not None else None
    for name, img, pts in items:
        given = next(mask_iter) if mask_iter is not None else None
        img = np.asarray(img)
        f = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
        M = align_matrix(pts, size, coverage)
        imgs.append(warp_to_crop(f, M, size))
        full = given if given is not None else face_mask_from_points(pts, f.shape[:2])
        if full is None:
            ms.append(template_face_mask(size, coverage))
        else:
            ms.append(cv2.warpAffine(np.asarray(full, np.float32), M, (size, size), flags=cv2.INTER_LINEAR))
        names.append(name)
    if not imgs:
        raise MethodError(f"no faces found in {source}", hint="check the images and their landmarks")
    return FaceCrops(np.stack(imgs), np.stack(ms).astype(np.float32), tuple(names), source)
