"""Pictures of a fit for the report: the fitted mesh rendered through a camera, blended onto the frame."""

from __future__ import annotations

import logging

import numpy as np

from ..camera import CameraModel

log = logging.getLogger(__name__)


def import_open3d_lean() -> None:
    """Import open3d without its plotly / dash notebook viewer: ``import open3d`` imports
    ``open3d.visualization.draw_plotly``, which imports dash and plotly (0.5-0.6 s of its ~1 s, for functions this
    project never calls). A stand-in module takes its place while open3d is imported; calling one of its functions
    raises. Nothing happens when open3d is imported already; if the stand-in does not satisfy this open3d version,
    it is imported as usual."""
    import sys
    import types

    if "open3d" in sys.modules:
        return
    name = "open3d.visualization.draw_plotly"

    def unavailable(*args, **kwargs):
        raise RuntimeError("open3d's plotly viewer was not imported in this process (reconstruct imports open3d "
                           "without it; it is unused)")

    stub = types.ModuleType(name)
    stub.__doc__ = "stand-in for open3d's plotly viewer (see reconstruct.fitting.overlay.import_open3d_lean)"
    stub.get_plotly_fig = stub.draw_plotly = stub.draw_plotly_server = unavailable
    sys.modules[name] = stub
    try:
        import open3d  # noqa: F401
    except ImportError:  # another open3d whose viewer module the stand-in does not satisfy: the usual import
        for mod in [m for m in sys.modules if m == "open3d" or m.startswith("open3d.")]:
            del sys.modules[mod]
        try:
            import open3d  # noqa: F401,F811
        except Exception as exc:  # the caller's own import reports it
            log.debug("open3d failed to import: %s", exc)
    except Exception as exc:  # open3d missing a system library: the caller's own import reports it
        sys.modules.pop(name, None)
        log.debug("open3d failed to import: %s", exc)


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
        import_open3d_lean()
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
            part = out[roi.slices]
            part[m] = (1 - alpha) * part[m] + alpha * shaded[m]
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
