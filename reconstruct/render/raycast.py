"""The default CPU renderer: open3d's Embree ``RaycastingScene`` casts one ray per pixel centre.

Rays leave the camera centre through each pixel's *undistorted* direction (:func:`~.fragments.pixel_rays`), so
lens distortion is exact: a rendered surface point lands on the pixel that :meth:`CameraModel.project` gives for it.
Vertices are moved into the camera frame (``R X + t``, see :func:`reconstruct.conventions.opencv_to_open3d`) before
the scene is built, so rays start at the origin and the hit distance along ``(x_n, y_n, 1)`` *is* the z-depth.
"""

from __future__ import annotations

import logging

import numpy as np

from ..camera import CameraModel
from ..conventions import opencv_to_open3d
from ..errors import RenderError
from .base import RendererBase
from .fragments import Fragments, pixel_rays

log = logging.getLogger(__name__)


class RaycastRenderer(RendererBase):
    """Embree ray casting on the CPU (any ``device``: outputs are host arrays)."""

    name = "raycast"
    priority = 10

    @classmethod
    def available(cls, device: str = "cpu") -> bool:
        try:
            import open3d.core  # noqa: F401
        except Exception:  # ImportError, or a missing system library (libusb) raising OSError
            return False
        return True

    def rasterize(self, vertices: np.ndarray, triangles: np.ndarray, camera: CameraModel) -> Fragments:
        try:
            import open3d as o3d
        except Exception as exc:
            raise RenderError(f"the raycast renderer needs open3d, which failed to import: {exc}",
                              hint="pip install open3d==0.20.0 (and apt-get install -y libusb-1.0-0)") from exc
        v = np.asarray(vertices, np.float64).reshape(-1, 3)
        f = np.asarray(triangles).reshape(-1, 3)
        E = opencv_to_open3d(camera).extrinsic
        vc = (v @ E[:3, :3].T + E[:3, 3]).astype(np.float32)
        dirs = pixel_rays(camera)  # (H, W, 3)
        H, W = dirs.shape[:2]
        rays = np.zeros((H, W, 6), np.float32)
        rays[..., 3:] = dirs
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(vc)),
                            o3d.core.Tensor(np.ascontiguousarray(f, dtype=np.uint32)))
        ans = scene.cast_rays(o3d.core.Tensor(rays))
        t = ans["t_hit"].numpy()
        hit = np.isfinite(t)
        tri = np.where(hit, ans["primitive_ids"].numpy().astype(np.int64), -1).astype(np.int32)
        uv = ans["primitive_uvs"].numpy()
        bary = np.zeros((H, W, 3), np.float32)
        bary[..., 1] = np.where(hit, uv[..., 0], 0)
        bary[..., 2] = np.where(hit, uv[..., 1], 0)
        bary[..., 0] = np.where(hit, 1.0 - bary[..., 1] - bary[..., 2], 0)
        depth = np.where(hit, t, np.inf).astype(np.float32)
        return Fragments(triangle=tri, bary=bary, depth=depth, camera=camera)
