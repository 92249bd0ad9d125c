"""Face alignment for image-space methods: 5-point similarity transforms to a canonical crop and back.

The canonical template is the widely used 5-point layout (eye centres, nose tip, mouth corners, in image-left to
image-right order) of the ArcFace 112x112 crop, normalised to the unit square. ``coverage`` > 1 shrinks the face
inside the crop (more context around it). Transforms are OpenCV 2x3 affine matrices mapping plate pixels to crop
pixels (``crop = M @ [x, y, 1]``); pixel centres at integer coordinates, as ``cv2.warpAffine`` uses them.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import MethodError

#: (5, 2) unit-square template: left eye, right eye, nose tip, left mouth corner, right mouth corner (image sides).
TEMPLATE_5 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                       [70.7299, 92.2041]], np.float64) / 112.0


def five_points(points: np.ndarray) -> np.ndarray:
    """Reduce a landmark set to the 5 template points. Accepts (5, 2), iBUG (68, 2) or MediaPipe (468/478, 2)."""
    p = np.asarray(points, np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise MethodError(f"landmarks have shape {p.shape}; expected (N, 2)")
    p = p[:, :2]
    n = p.shape[0]
    if n == 5:
        return p
    if n == 68:
        return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])
    if n in (468, 478):
        le = p[468] if n == 478 else p[[33, 133]].mean(0)
        re = p[473] if n == 478 else p[[362, 263]].mean(0)
        return np.stack([le, re, p[1], p[61], p[291]])
    raise MethodError(f"{n} landmarks: unknown scheme", hint="give 5, 68 (iBUG) or 468/478 (MediaPipe) points")


def template(size: int, coverage: float = 1.0) -> np.ndarray:
    """(5, 2) template points in pixels of a ``size`` x ``size`` crop."""
    return (0.5 + (TEMPLATE_5 - 0.5) / float(coverage)) * size - 0.5


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama 1991) mapping ``src`` (N, 2) onto ``dst`` (N, 2); returns (2, 3)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.shape[0] < 2 or not np.isfinite(src).all():
        raise MethodError(f"cannot align: landmarks {src.shape} (finite: {np.isfinite(src).all()}) vs {dst.shape}")
    ms, md = src.mean(0), dst.mean(0)
    s0, d0 = src - ms, dst - md
    cov = d0.T @ s0 / len(src)
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(2)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[1, 1] = -1
    R = U @ D @ Vt
    var = (s0 ** 2).sum() / len(src)
    if var <= 1e-12:
        raise MethodError("cannot align: all landmarks coincide")
    scale = np.trace(np.diag(S) @ D) / var
    M = np.zeros((2, 3))
    M[:, :2] = scale * R
    M[:, 2] = md - scale * R @ ms
    return M


def align_matrix(points: np.ndarray, size: int, coverage: float = 1.0) -> np.ndarray:
    """(2, 3) plate->crop transform putting the face's landmarks on the template of a ``size`` px crop."""
    return similarity(five_points(points), template(size, coverage))


def warp_to_crop(image: np.ndarray, M: np.ndarray, size: int) -> np.ndarray:
    """Crop ``image`` (H, W[, C]) through ``M`` into (size, size[, C]) (borders reflected)."""
    return cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def warp_to_plate(crop: np.ndarray, M: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Put a crop made with ``M`` back into plate pixels (H, W); zero outside the crop."""
    h, w = shape
    return cv2.warpAffine(crop, M, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def skin_mask_from_68(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 skin mask from iBUG-68 points: face hull (raised to the forehead) minus eyes, brows, lips."""
    p = np.asarray(points, np.float64)
    if p.shape[0] != 68:
        raise MethodError(f"skin mask needs 68 iBUG points, got {p.shape[0]}")
    h, w = shape
    up = p[30] - p[27]  # nose length: the forehead is raised about this far above the brows
    forehead = p[17:27] - 0.9 * up
    hull = cv2.convexHull(np.concatenate([p[0:17], forehead]).astype(np.float32))
    m = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(m, np.round(hull).astype(np.int32), 1)
    iod = float(np.linalg.norm(p[36:42].mean(0) - p[42:48].mean(0)))
    th = max(1, int(round(0.08 * iod)))
    for idx in (range(36, 42), range(42, 48), range(48, 60)):
        poly = np.round(p[list(idx)]).astype(np.int32)
        cv2.fillPoly(m, [poly], 0)
        cv2.polylines(m, [poly], True, 0, th)
    for idx in (range(17, 22), range(22, 27)):
        cv2.polylines(m, [np.round(p[list(idx)]).astype(np.int32)], False, 0, 2 * th)
    return m.astype(np.float32)
