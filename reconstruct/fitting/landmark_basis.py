"""A face model restricted to one landmark scheme: the linear map from coefficients to landmark positions.

Because the model is linear and landmarks are fixed barycentric combinations of vertices, landmark positions are
themselves linear in the coefficients: ``L(alpha, beta) = mean + A alpha + B beta`` with A (N, 3, Ki), B (N, 3, Ke).
A detector bias (:class:`reconstruct.face.detector_bias.DetectorBias`: where the detector really puts each point,
an offset linear in the same coefficients) keeps it linear: it adds to ``mean``, ``A`` and ``B``; its view terms
make the points (``view``) and the expression basis (``Bx``, expression x view) depend on the camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..face.model import FaceModel

if TYPE_CHECKING:  # pragma: no cover
    from ..face.detector_bias import DetectorBias


#: bounds of a landmark's weight relative to the median from the detector bias's scatter (1 / variance)
SPREAD_WEIGHT = (0.1, 3.0)


@dataclass(frozen=True, slots=True, eq=False)
class LandmarkBasis:
    """Landmarks of one scheme on a model, as tensors (model frame, metres).

    Attributes:
        scheme: landmark scheme name.
        mean: (N, 3) landmark positions of the mean shape.
        A: (N, 3, Ki) identity basis at the landmarks. B: (N, 3, Ke) expression basis at the landmarks.
        normals: (N, 3) unit outward surface normals of the mean shape at the landmarks (for visibility).
        weight: (N,) reliability weight of each landmark (0 = no correspondence / unused; contour < 1).
        view: (N, 3, F) the detector bias's offset per view feature (model frame), or None (no view term).
        view_centre: (3,) model-frame point view directions are taken from, or None.
        Bx: (N, 3, Ke, 2) the detector bias's expression x view slopes: a camera seeing the face from the model-frame
            direction ``v`` has the expression basis ``B + Bx [v_x, v_y]``; or None (no such term).
    """

    scheme: str
    mean: torch.Tensor
    A: torch.Tensor
    B: torch.Tensor
    normals: torch.Tensor
    weight: torch.Tensor
    view: torch.Tensor | None = None
    view_centre: torch.Tensor | None = None
    Bx: torch.Tensor | None = None

    @classmethod
    def from_model(cls, model: FaceModel, scheme: str, device: str | torch.device = "cpu",
                   dtype: torch.dtype = torch.float64, bias: "DetectorBias | None" = None) -> "LandmarkBasis":
        """The basis of ``scheme`` on ``model``; with ``bias``, of the points the detector really marks."""
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
        view = centre = Bx = None
        if bias is not None:
            bias.check(model, scheme)
            k = bias.identity.shape[2]
            mean = mean + bias.offset
            A[..., :k] += bias.identity
            B = B + bias.expression
            if np.abs(bias.view).max() > 0:
                view, centre = bias.view, bias.view_centre
            if bias.expression_view is not None and np.abs(bias.expression_view).max() > 0:
                Bx, centre = bias.expression_view, bias.view_centre
            learned = (bias.samples > 0) & (bias.spread > 0)
            if learned.any():  # a landmark the detector places less consistently counts less (1 / variance)
                ref = float(np.median(bias.spread[learned]))
                rel = np.where(learned, (ref / np.maximum(bias.spread, 1e-6)) ** 2, 1.0)
                weight = weight * np.clip(rel, SPREAD_WEIGHT[0], SPREAD_WEIGHT[1])

        def f(a):
            return None if a is None else torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

        return cls(scheme=scheme, mean=f(mean), A=f(A), B=f(B), normals=f(normals), weight=f(weight), view=f(view),
                   view_centre=f(centre), Bx=f(Bx))

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
