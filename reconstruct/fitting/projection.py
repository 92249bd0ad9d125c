"""Calibrated cameras as torch tensors: batched projection with lens distortion and its 2x3 Jacobian.

Same model as :meth:`reconstruct.camera.CameraModel.project` (OpenCV pinhole with up to 8 rational/tangential
coefficients, or OpenCV fisheye), so that a fit's reprojection error is the one the rest of the project measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..camera import CameraModel


@dataclass(frozen=True, slots=True, eq=False)
class CameraStack:
    """C cameras stacked for batched projection.

    Attributes:
        names: (C,) camera names.
        K: (C, 3, 3) float64 intrinsics, pixels. dist: (C, 8) float64 pinhole coefficients (k1 k2 p1 p2 k3 k4 k5 k6)
            or fisheye (k1 k2 k3 k4 0 0 0 0). fisheye: (C,) bool.
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
        dist = np.zeros((len(cams), 8))
        for i, c in enumerate(cams):
            dist[i, : min(8, c.dist.size)] = c.dist[:8]
        f = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
        return cls(names=tuple(c.name for c in cams), K=f([c.K for c in cams]), dist=f(dist),
                   fisheye=torch.as_tensor([c.model == "fisheye" for c in cams], device=device),
                   R=f([c.R for c in cams]), t=f([c.t for c in cams]), centers=f([c.center for c in cams]))

    def __len__(self) -> int:
        return len(self.names)


def distort(xn: torch.Tensor, dist: torch.Tensor, fisheye: torch.Tensor) -> torch.Tensor:
    """Normalised coordinates (..., C, N, 2) -> distorted normalised coordinates, per camera (C, 8) coefficients."""
    x, y = xn[..., 0], xn[..., 1]
    d = dist[:, None, :]  # (C, 1, 8) broadcasting over N
    k1, k2, p1, p2, k3, k4, k5, k6 = (d[..., i] for i in range(8))
    r2 = x * x + y * y
    radial = (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    if bool(fisheye.any()):
        r = torch.sqrt(r2 + 1e-30)
        th = torch.atan(r)
        th_d = th * (1 + k1 * th**2 + k2 * th**4 + p1 * th**6 + p2 * th**8)  # fisheye k1..k4 stored in slots 0..3
        s = th_d / r
        fe = fisheye[:, None]
        xd = torch.where(fe, x * s, xd)
        yd = torch.where(fe, y * s, yd)
    return torch.stack([xd, yd], dim=-1)


def project_camera_frame(Xc: torch.Tensor, cams: CameraStack) -> torch.Tensor:
    """Camera-frame points (..., C, N, 3) -> distorted pixels (..., C, N, 2)."""
    z = Xc[..., 2:3].clamp_min(1e-6)
    xd = distort(Xc[..., :2] / z, cams.dist, cams.fisheye)
    K = cams.K[:, None]  # (C, 1, 3, 3)
    u = K[..., 0, 0] * xd[..., 0] + K[..., 0, 1] * xd[..., 1] + K[..., 0, 2]
    v = K[..., 1, 1] * xd[..., 1] + K[..., 1, 2]
    return torch.stack([u, v], dim=-1)


def project_with_jacobian(Xc: torch.Tensor, cams: CameraStack) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels (T, C, N, 2) and d pixel / d Xc (T, C, N, 2, 3) of camera-frame points (T, C, N, 3).

    Analytic for the pinhole model (OpenCV's rational + tangential distortion); forward-mode autodiff over the three
    coordinates when a camera is fisheye.
    """
    if bool(cams.fisheye.any()):
        return _project_with_jacobian_ad(Xc, cams)
    X, Y = Xc[..., 0], Xc[..., 1]
    Z = Xc[..., 2].clamp_min(1e-6)
    x, y = X / Z, Y / Z
    d = cams.dist[:, None, :]
    k1, k2, p1, p2, k3, k4, k5, k6 = (d[..., i] for i in range(8))
    r2 = x * x + y * y
    num = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    den = 1 + k4 * r2 + k5 * r2**2 + k6 * r2**3
    rad = num / den
    drad = ((k1 + 2 * k2 * r2 + 3 * k3 * r2**2) * den - num * (k4 + 2 * k5 * r2 + 3 * k6 * r2**2)) / den**2
    xd = x * rad + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * rad + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    a11 = rad + 2 * x * x * drad + 2 * p1 * y + 6 * p2 * x
    a12 = 2 * x * y * drad + 2 * p1 * x + 2 * p2 * y
    a21 = 2 * x * y * drad + 2 * p1 * x + 2 * p2 * y
    a22 = rad + 2 * y * y * drad + 6 * p1 * y + 2 * p2 * x
    K = cams.K[:, None]
    fx, s, fy = K[..., 0, 0], K[..., 0, 1], K[..., 1, 1]
    u = fx * xd + s * yd + K[..., 0, 2]
    v = fy * yd + K[..., 1, 2]
    # d(u, v)/d(x, y)
    b11, b12 = fx * a11 + s * a21, fx * a12 + s * a22
    b21, b22 = fy * a21, fy * a22
    iz = 1.0 / Z
    # d(x, y)/d(X, Y, Z) = [[1/Z, 0, -x/Z], [0, 1/Z, -y/Z]]
    J = torch.stack([torch.stack([b11 * iz, b12 * iz, -(b11 * x + b12 * y) * iz], -1),
                     torch.stack([b21 * iz, b22 * iz, -(b21 * x + b22 * y) * iz], -1)], -2)
    return torch.stack([u, v], -1), J


def _project_with_jacobian_ad(Xc: torch.Tensor, cams: CameraStack) -> tuple[torch.Tensor, torch.Tensor]:
    eye = torch.eye(3, dtype=Xc.dtype, device=Xc.device)

    def f(x):
        return project_camera_frame(x, cams)

    uv, jcols = None, []
    for k in range(3):
        uv, tan = torch.func.jvp(f, (Xc,), (eye[k].expand_as(Xc),))
        jcols.append(tan)
    return uv, torch.stack(jcols, dim=-1)
