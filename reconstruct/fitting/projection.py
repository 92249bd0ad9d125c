"""Calibrated cameras as torch tensors: batched projection with lens distortion and its 2x3 Jacobian.

The lens model is :mod:`reconstruct.lens` (its torch twin), the one :meth:`reconstruct.camera.CameraModel.project`
uses (OpenCV pinhole with 4-14 coefficients, or OpenCV fisheye), so that a fit's reprojection error is the one the
rest of the project measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .. import lens
from ..camera import CameraModel


@dataclass(frozen=True, slots=True, eq=False)
class CameraStack:
    """C cameras stacked for batched projection.

    Attributes:
        names: (C,) camera names.
        K: (C, 3, 3) float64 intrinsics, pixels. dist: (C, D) float64 distortion coefficients in OpenCV's layout
            (k1 k2 p1 p2 k3 k4 k5 k6 [s1 s2 s3 s4 [tau_x tau_y]]), zero-padded to D = 8, 12 or 14 slots: the
            widest camera's count (at least 8); a fisheye camera's k1..k4 sit in slots 0-3. fisheye: (C,) bool.
        R: (C, 3, 3) float64 world-to-camera rotation. t: (C, 3) float64 world-to-camera translation, metres.
        centers: (C, 3) float64 camera centres in world, metres.
    """

    names: tuple[str, ...]
    K: torch.Tensor
    dist: torch.Tensor
    fisheye: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    centers: torch.Tensor

    @classmethod
    def from_models(cls, cams: Sequence[CameraModel], device: str | torch.device = "cpu",
                    dtype: torch.dtype = torch.float64) -> "CameraStack":
        width = max([8, *(c.dist.size for c in cams)])  # 8, 12 or 14 (CameraModel allows no other count above 8)
        dist = np.zeros((len(cams), width))
        for i, c in enumerate(cams):
            dist[i, : c.dist.size] = c.dist
        f = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
        return cls(names=tuple(c.name for c in cams), K=f([c.K for c in cams]), dist=f(dist),
                   fisheye=torch.as_tensor([c.model == "fisheye" for c in cams], device=device),
                   R=f([c.R for c in cams]), t=f([c.t for c in cams]), centers=f([c.center for c in cams]))

    def __len__(self) -> int:
        return len(self.names)


def distort(xn: torch.Tensor, dist: torch.Tensor, fisheye: torch.Tensor) -> torch.Tensor:
    """Normalised coordinates (..., C, N, 2) -> distorted normalised coordinates, per camera (C, D) coefficients
    and (C,) fisheye flags (:func:`reconstruct.lens.distort_torch`)."""
    return lens.distort_torch(xn, dist[:, None, :], fisheye[:, None])


def project_camera_frame(Xc: torch.Tensor, cams: CameraStack) -> torch.Tensor:
    """Camera-frame points (..., C, N, 3) -> distorted pixels (..., C, N, 2)."""
    z = Xc[..., 2:3].clamp_min(1e-6)
    xd = distort(Xc[..., :2] / z, cams.dist, cams.fisheye)
    return lens.to_pixels_torch(xd, cams.K[:, None])  # K (C, 1, 3, 3)


def project_with_jacobian(Xc: torch.Tensor, cams: CameraStack) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels (T, C, N, 2) and d pixel / d Xc (T, C, N, 2, 3) of camera-frame points (T, C, N, 3).

    Analytic for the pinhole model, every coefficient count (:func:`reconstruct.lens.distort_jacobian_torch`);
    forward-mode autodiff over the three coordinates when a camera is fisheye.
    """
    if bool(cams.fisheye.any()):
        return _project_with_jacobian_ad(Xc, cams)
    X, Y = Xc[..., 0], Xc[..., 1]
    Z = Xc[..., 2].clamp_min(1e-6)
    x, y = X / Z, Y / Z
    xd, A = lens.distort_jacobian_torch(torch.stack([x, y], -1), cams.dist[:, None, :])  # (..., 2), (..., 2, 2)
    K = cams.K[:, None]
    fx, s, fy = K[..., 0, 0], K[..., 0, 1], K[..., 1, 1]
    uv = lens.to_pixels_torch(xd, K)
    a11, a12, a21, a22 = A[..., 0, 0], A[..., 0, 1], A[..., 1, 0], A[..., 1, 1]
    # d(u, v)/d(x, y)
    b11, b12 = fx * a11 + s * a21, fx * a12 + s * a22
    b21, b22 = fy * a21, fy * a22
    iz = 1.0 / Z
    # d(x, y)/d(X, Y, Z) = [[1/Z, 0, -x/Z], [0, 1/Z, -y/Z]]
    J = torch.stack([torch.stack([b11 * iz, b12 * iz, -(b11 * x + b12 * y) * iz], -1),
                     torch.stack([b21 * iz, b22 * iz, -(b21 * x + b22 * y) * iz], -1)], -2)
    return uv, J


def _project_with_jacobian_ad(Xc: torch.Tensor, cams: CameraStack) -> tuple[torch.Tensor, torch.Tensor]:
    eye = torch.eye(3, dtype=Xc.dtype, device=Xc.device)

    def f(x):
        return project_camera_frame(x, cams)

    uv, jcols = None, []
    for k in range(3):
        uv, tan = torch.func.jvp(f, (Xc,), (eye[k].expand_as(Xc),))
        jcols.append(tan)
    return uv, torch.stack(jcols, dim=-1)
