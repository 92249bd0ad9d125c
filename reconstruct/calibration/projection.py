"""Projection of the bundle adjustment (:mod:`.bundle`) through the project's lens model (:mod:`reconstruct.lens`,
OpenCV pinhole or fisheye) from its intrinsics vector, the lens Jacobians (central differences), and the rotation
algebra: vectorised Rodrigues, the right Jacobian of SO(3)."""

from __future__ import annotations

import numpy as np

from .. import lens


def rodrigues(r: np.ndarray) -> np.ndarray:
    """(N, 3) rotation vectors -> (N, 3, 3) rotation matrices (vectorised Rodrigues formula)."""
    r = np.asarray(r, np.float64).reshape(-1, 3)
    th = np.linalg.norm(r, axis=1)
    small = th < 1e-12
    k = r / np.where(small, 1.0, th)[:, None]
    K = np.zeros((len(r), 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    K[:, 1, 0], K[:, 2, 0], K[:, 2, 1] = k[:, 2], -k[:, 1], k[:, 0]
    s, c = np.sin(th)[:, None, None], np.cos(th)[:, None, None]
    R = np.eye(3)[None] + s * K + (1 - c) * (K @ K)
    R[small] = np.eye(3)
    return R


def _rvec(R: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.Rodrigues(np.asarray(R, np.float64))[0].ravel()


def project(Xc: np.ndarray, intr: np.ndarray, model: str, aspect: float | None = None) -> np.ndarray:
    """Camera-frame points (N, 3) metres -> pixels (N, 2) through the lens model of :mod:`reconstruct.lens`.

    ``intr`` = (fx, fy, cx, cy, *dist) or, with ``aspect``, (f, cx, cy, *dist) and fy = f * aspect; ``dist`` has any
    of the coefficient counts of ``model`` (``"pinhole"``: 0, 4, 5, 8, 12, 14; ``"fisheye"``: 4). No skew.
    """
    if aspect is None:
        fx, fy, cx, cy, d = intr[0], intr[1], intr[2], intr[3], intr[4:]
    else:
        fx, cx, cy, d = intr[0], intr[1], intr[2], intr[3:]
        fy = fx * aspect
    z = Xc[:, 2]
    xd = lens.distort(np.stack([Xc[:, 0] / z, Xc[:, 1] / z], axis=1), d, model)  # (N, 2)
    return np.stack([fx * xd[:, 0] + cx, fy * xd[:, 1] + cy], axis=1)


def _skew(v: np.ndarray) -> np.ndarray:
    """(N, 3) -> (N, 3, 3) cross-product matrices."""
    S = np.zeros((len(v), 3, 3))
    S[:, 0, 1], S[:, 0, 2], S[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    S[:, 1, 0], S[:, 2, 0], S[:, 2, 1] = v[:, 2], -v[:, 1], v[:, 0]
    return S


def _right_jacobian(r: np.ndarray) -> np.ndarray:
    """(N, 3) rotation vectors -> (N, 3, 3) right Jacobians of SO(3): R(r + d) ~ R(r) exp([J_r d]_x)."""
    th = np.linalg.norm(r, axis=1)[:, None, None]
    K = _skew(r)
    small = th < 1e-8
    ths = np.where(small, 1.0, th)
    a = np.where(small, 0.5, (1 - np.cos(ths)) / ths**2)
    b = np.where(small, 1 / 6, (ths - np.sin(ths)) / ths**3)
    return np.eye(3)[None] - a * K + b * (K @ K)


def _lens_jacobian(Xc: np.ndarray, intr: np.ndarray, model: str, aspect: float | None):
    """d(pixels)/d(camera point) (N, 2, 3) and d(pixels)/d(intrinsics vector) (N, 2, K), central differences.

    The same numbers as one :func:`project` per shifted input, in fewer passes: the six shifted copies of the points
    go through one projection; the focal lengths and the principal point only scale and shift the distorted
    coordinates, which are distorted once (the shifted values are then computed with :func:`project`'s own
    expressions); only the distortion coefficients take one distortion each.
    """
    n, k = len(Xc), len(intr)
    h = 1e-6 * np.maximum(np.abs(Xc[:, 2]), 1e-3)
    shifted = np.empty((6, n, 3))
    for j in range(3):
        d = np.zeros_like(Xc)
        d[:, j] = h
        shifted[2 * j], shifted[2 * j + 1] = Xc + d, Xc - d
    p = project(shifted.reshape(-1, 3), intr, model, aspect).reshape(6, n, 2)
    J_X = np.empty((n, 2, 3))
    for j in range(3):
        J_X[:, :, j] = (p[2 * j] - p[2 * j + 1]) / (2 * h[:, None])
    J_I = np.empty((n, 2, k))
    kf = 4 if aspect is None else 3  # fx, fy, cx, cy (or f, cx, cy): linear in the distorted coordinates
    z = Xc[:, 2]
    xd = lens.distort(np.stack([Xc[:, 0] / z, Xc[:, 1] / z], axis=1), intr[kf:], model)

    def pixels(v: np.ndarray) -> np.ndarray:  # project()'s last line for the intrinsics v
        if aspect is None:
            fx, fy, cx, cy = v[0], v[1], v[2], v[3]
        else:
            fx, cx, cy = v[0], v[1], v[2]
            fy = fx * aspect
        return np.stack([fx * xd[:, 0] + cx, fy * xd[:, 1] + cy], axis=1)

    for j in range(k):
        h = 1e-6 * max(abs(intr[j]), 1.0)
        ip, im = intr.copy(), intr.copy()
        ip[j] += h
        im[j] -= h
        if j < kf:
            J_I[:, :, j] = (pixels(ip) - pixels(im)) / (2 * h)
        else:
            J_I[:, :, j] = (project(Xc, ip, model, aspect) - project(Xc, im, model, aspect)) / (2 * h)
    return J_X, J_I
