"""Single-photo fit: one uncalibrated image, a pinhole camera with focal ~ image size (optionally searched)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..camera import CameraModel
from ..errors import FitError
from ..face.model import FaceModel
from .fit import fit_sequence, world_vertices
from .solver import FitSettings, FitSolution

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class PhotoFit:
    """Fit of one photo. camera: the assumed/estimated pinhole camera (world = camera frame). vertices: (V, 3)
    camera-frame metres. fitted: (N, 2) model landmarks reprojected, pixels. error_iod: mean landmark reprojection
    error over the landmarks used, as a fraction of the inter-ocular distance."""

    camera: CameraModel
    solution: FitSolution
    vertices: np.ndarray
    fitted: np.ndarray
    error_px: float
    error_iod: float


def fit_photo(model: FaceModel, scheme: str, points: np.ndarray, conf: np.ndarray, image_size: tuple[int, int],
              focal_factors=(0.7, 1.0, 1.5, 2.5), settings: FitSettings | None = None,
              device: str = "cpu", eyes: tuple[tuple[int, ...], tuple[int, ...]] = ((33, 133), (362, 263))) -> PhotoFit:
    """Fit ``model`` to one image's landmarks ``points`` (N, 2) / ``conf`` (N,). The focal length is chosen among
    ``focal_factors`` x max(image size) by the lowest fit energy (the photo's camera is unknown)."""
    if points is None or not np.isfinite(points).any():
        raise FitError("no landmarks were found in the photo", hint="is there a face in it? try a larger crop")
    w, h = image_size
    settings = settings or FitSettings(iterations=30)
    best = None
    for ff in focal_factors:
        f = ff * max(w, h)
        cam = CameraModel("photo", np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]]), np.zeros(5),
                          np.eye(3), np.zeros(3), (w, h))
        sol = fit_sequence(model, scheme, [cam], points[None, None], conf[None, None], settings, device)
        if best is None or sol.cost < best[1].cost:
            best = (cam, sol)
    cam, sol = best
    V = world_vertices(model, sol)[0]
    lm = model.landmark_map(scheme)
    fitted = cam.project(lm.points(V.astype(np.float64), model.triangles))
    used = sol.used[0, 0]
    err = np.linalg.norm(fitted - points, axis=1)[used]
    e0, e1 = (np.mean(points[list(e)], axis=0) for e in eyes)
    iod = float(np.linalg.norm(e1 - e0))
    log.info("photo fit: focal %.0f px, mean landmark error %.2f px (%.2f%% of IOD)", cam.K[0, 0], err.mean(),
             100 * err.mean() / iod)
    return PhotoFit(camera=cam, solution=sol, vertices=V, fitted=fitted, error_px=float(err.mean()),
                    error_iod=float(err.mean() / iod))
