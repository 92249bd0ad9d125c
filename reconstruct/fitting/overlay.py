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
    src = img[..., :3]
    # blended in float32 only on the mesh's window: the whole 1080p frame's float copy, blend and clip cost ~0.1 s;
    # elsewhere the frame's own bytes (what the float round trip gave: clip(float32(x), 0, 255) -> uint8)
    out = src.copy() if src.dtype == np.uint8 else np.clip(src.astype(np.float32), 0, 255).astype(np.uint8)
    try:
        from ..render.base import Mesh
        from ..render.raycast import RaycastRenderer, mesh_window
        from ..render.shading import linear_to_srgb
        from ..retouch.roi import Roi, crop_camera

        # only the pixels the mesh can cover are rendered (the same pixels as a whole-frame render, bit for bit:
        # a crop's rays are the frame's): the whole 1080p frame's rays and shading cost the fit stage ~0.5 s
        used = np.unique(np.asarray(triangles))
        win = mesh_window(camera, np.asarray(vertices, np.float64)[used], tuple(camera.image_size))
        if win is not None:
            roi = Roi(win[0], win[1], win[2] - win[0], win[3] - win[1])
            r = RaycastRenderer("cpu").render(Mesh(vertices, triangles), crop_camera(camera, roi))
            shaded = np.clip(linear_to_srgb(np.clip(r.image, 0, 1)) * 255, 0, 255)
            m = r.mask.astype(bool)
            part = src[roi.slices].astype(np.float32)
            part[m] = (1 - alpha) * part[m] + alpha * shaded[m]
            out[roi.slices] = np.clip(part, 0, 255).astype(np.uint8)
    except Exception as exc:  # renderer unavailable: draw edges instead
        log.debug("overlay: raycast render failed (%s); drawing a wireframe", exc)
        uv = camera.project(vertices)
        for a, b in ((0, 1), (1, 2), (2, 0)):
            for p, q in zip(uv[triangles[::7, a]], uv[triangles[::7, b]]):
                if np.isfinite(p).all() and np.isfinite(q).all():
                    cv2.line(out, tuple(int(v) for v in p), tuple(int(v) for v in q), (200, 200, 255), 1)
    rad = max(1, round(max(img.shape[:2]) / 400))
    for pts, col in ((detected, (0, 255, 0)), (fitted, (255, 0, 0))):
        if pts is None:
            continue
        for p in np.asarray(pts):
            if np.isfinite(p).all():
                cv2.circle(out, (int(round(p[0])), int(round(p[1]))), rad, col, -1)
    return out
