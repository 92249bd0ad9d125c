"""Pictures of a fit for the report: the fitted mesh rendered through a camera, blended onto the frame."""

from __future__ import annotations

import logging

import numpy as np

from ..camera import CameraModel

log = logging.getLogger(__name__)


def overlay_fit(image: np.ndarray, vertices: np.ndarray, triangles: np.ndarray, camera: CameraModel,
                detected: np.ndarray | None = None, fitted: np.ndarray | None = None, alpha: float = 0.55) -> np.ndarray:
    """(H, W, 3) uint8 RGB: ``image`` with the mesh ((V, 3) world metres) shaded on top (raycast renderer; a
    wireframe when open3d is missing), detected landmarks (N, 2) in green and fitted ones in red."""
    import cv2

    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    out = img[..., :3].astype(np.float32).copy()
    try:
        from ..render.base import Mesh
        from ..render.raycast import RaycastRenderer
        from ..render.shading import linear_to_srgb

        r = RaycastRenderer("cpu").render(Mesh(vertices, triangles), camera)
        shaded = np.clip(linear_to_srgb(np.clip(r.image, 0, 1)) * 255, 0, 255)
        m = r.mask.astype(bool)
        out[m] = (1 - alpha) * out[m] + alpha * shaded[m]
    except Exception as exc:  # renderer unavailable: draw edges instead
        log.debug("overlay: raycast render failed (%s); drawing a wireframe", exc)
        uv = camera.project(vertices)
        for a, b in ((0, 1), (1, 2), (2, 0)):
            for p, q in zip(uv[triangles[::7, a]], uv[triangles[::7, b]]):
                if np.isfinite(p).all() and np.isfinite(q).all():
                    cv2.line(out, tuple(int(v) for v in p), tuple(int(v) for v in q), (200, 200, 255), 1)
    out = np.clip(out, 0, 255).astype(np.uint8)
    rad = max(1, round(max(img.shape[:2]) / 400))
    for pts, col in ((detected, (0, 255, 0)), (fitted, (255, 0, 0))):
        if pts is None:
            continue
        for p in np.asarray(pts):
            if np.isfinite(p).all():
                cv2.circle(out, (int(round(p[0])), int(round(p[1]))), rad, col, -1)
    return out
