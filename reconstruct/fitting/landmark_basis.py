"""A face model restricted to one landmark scheme: the linear map from coefficients to landmark positions.

Because the model is linear and landmarks are fixed barycentric combinations of vertices, landmark positions are
themselves linear in the coefficients: ``L(alpha, beta) = mean + A alpha + B beta`` with A (N, 3, Ki), B (N, 3, Ke).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..face.model import FaceModel


@dataclass(frozen=True, slots=True, eq=False)
class LandmarkBasis:
    """Landmarks of one scheme on a model, as tensors (model frame, metres).

    Attributes:
        scheme: landmark scheme name.
        mean: (N, 3) landmark positions of the mean shape.
        A: (N, 3, Ki) identity basis at the landmarks. B: (N, 3, Ke) expression basis at the landmarks.
        normals: (N, 3) unit outward surface normals of the mean shape at the landmarks (for visibility).
        weight: (N,) reliability weight of each landmark (0 = no correspondence / unused; contour < 1).
    """

    scheme: str
    mean: torch.Tensor
    A: torch.Tensor
    B: torch.Tensor
    normals: torch.Tensor
    weight: torch.Tensor

    @classmethod
    def from_model(cls, model: FaceModel, scheme: str, device: str | torch.device = "cpu",
                   dtype: torch.dtype = torch.float64) -> "LandmarkBasis":
        lm = model.landmark_map(scheme)
        tri = np.where(lm.triangle < 0, 0, lm.triangle)
        vid = model.triangles[tri]  # (N, 3)
        bary = lm.bary.astype(np.float64)

        def at(x):  # x (..., V, 3) -> (..., N, 3)
            return np.einsum("nk,...nkd->...nd", bary, x[..., vid, :])

        mean = at(model.mean.astype(np.float64))
        A = np.moveaxis(at(model.identity_basis.astype(np.float64)), 0, -1)  # (N, 3, Ki)
        B = np.moveaxis(at(model.expression_basis.astype(np.float64)), 0, -1)  # (N, 3, Ke)
        normals = at(vertex_normals(model.mean, model.triangles))
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        weight = np.where(lm.triangle < 0, 0.0, lm.weight.astype(np.float64))
        f = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)  # noqa: E731
        return cls(scheme=scheme, mean=f(mean), A=f(A), B=f(B), normals=f(normals), weight=f(weight))

    @property
    def n(self) -> int:
        return int(self.mean.shape[0])

    def points(self, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """(Ki,) identity and (T, Ke) expressions -> (T, N, 3) model-frame landmarks."""
        return self.mean + (self.A @ alpha)[None] + torch.einsum("ndk,tk->tnd", self.B, beta)


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 3) area-weighted vertex normals (counter-clockwise triangles face outward)."""
    v = np.asarray(vertices, np.float64)
    fn = np.cross(v[triangles[:, 1]] - v[triangles[:, 0]], v[triangles[:, 2]] - v[triangles[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, triangles[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
