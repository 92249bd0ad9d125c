"""The default CPU renderer: open3d's Embree ``RaycastingScene`` casts one ray per pixel centre.

Rays leave the camera centre through each pixel's *undistorted* direction (:func:`~.fragments.pixel_rays`), so
lens distortion is exact: a rendered surface point lands on the pixel that :meth:`CameraModel.project` gives for it.
Vertices are moved into the camera frame (``R X + t``, see :func:`reconstruct.conventions.opencv_to_open3d`) before
the scene is built, so rays start at the origin and the hit distance along ``(x_n, y_n, 1)`` *is* the z-depth.
"""

from __future__ import annotations

import logging
import os
import sys

import numpy as np

from ..camera import CameraModel
from ..conventions import opencv_to_open3d
from ..errors import RenderError
from .base import RendererBase
from .fragments import Fragments, pixel_rays

log = logging.getLogger(__name__)


def _import_open3d():
    """open3d, imported without its plotly/dash viewer (``open3d.visualization`` loads only when touched, which the
    ray caster never does: :func:`reconstruct.lazy_imports.defer_plotting_imports`, 0.25-1.0 CPU-s a process);
    RenderError saying what to install where that fails (also after :meth:`RaycastRenderer.available` loaded its
    extension: the package's own import can still fail)."""
    if "open3d" not in sys.modules:
        from ..lazy_imports import defer_plotting_imports

        defer_plotting_imports(("open3d.visualization",))
    try:
        import open3d
    except Exception as exc:  # ImportError, or a missing system library (libusb) raising OSError
        raise RenderError(f"the raycast renderer needs open3d, which failed to import: {exc}",
                          hint="pip install open3d==0.20.0 (and apt-get install -y libusb-1.0-0)") from exc
    return open3d


class RaycastRenderer(RendererBase):
    """Embree ray casting on the CPU (any ``device``: outputs are host arrays)."""

    name = "raycast"
    priority = 10

    @classmethod
    def available(cls, device: str = "cpu") -> bool:
        """Whether open3d can be used, without importing it where its extension can be loaded instead (the render
        stage's cache key asks on every run; :func:`reconstruct.lazy_imports.extension_loads`)."""
        if sys.modules.get("open3d") is not None:  # imported already (None: an import that is to fail)
            return True
        from ..lazy_imports import extension_loads

        os.environ.setdefault("TCM_ENABLE", "1")  # what open3d's __init__ sets before its TBB loads (its allocator)
        loads = extension_loads("open3d", "pybind")
        if loads is not None:
            return loads
        try:
            import open3d.core  # noqa: F401
        except Exception:  # ImportError, or a missing system library (libusb) raising OSError
            return False
        return True

    @classmethod
    def preload(cls) -> None:
        """:meth:`available` only loads open3d's extension; its import (~0.25-0.55 CPU-s) happens here."""
        _import_open3d()

    def rasterize(self, vertices: np.ndarray, triangles: np.ndarray, camera: CameraModel) -> Fragments:
        o3d = _import_open3d()
        v = np.asarray(vertices, np.float64).reshape(-1, 3)
        f = np.asarray(triangles).reshape(-1, 3)
        E = opencv_to_open3d(camera).extrinsic
        vc = (v @ E[:3, :3].T + E[:3, 3]).astype(np.float32)
        W, H = (int(x) for x in camera.image_size)
        tri = np.full((H, W), -1, np.int32)
        bary = np.zeros((H, W, 3), np.float32)
        depth = np.full((H, W), np.inf, np.float32)
        used = np.zeros(len(v), bool)  # the vertices of a triangle, in order: np.unique(f)'s, without its sort
        used[f.ravel()] = True
        win = mesh_window(camera, v[used], (W, H))
        if win is None:  # the mesh projects onto no pixel
            return Fragments(triangle=tri, bary=bary, depth=depth, camera=camera)
        sl = np.s_[win[1]:win[3], win[0]:win[2]]
        d = pixel_rays(camera, win)  # the window's rays only: a lens seen once (a coarse crop) undistorts no more
        rays = np.zeros((*d.shape[:2], 6), np.float32)
        rays[..., 3:] = d
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(vc)),
                            o3d.core.Tensor(np.ascontiguousarray(f, dtype=np.uint32)))
        ans = scene.cast_rays(o3d.core.Tensor(rays))
        t = ans["t_hit"].numpy()
        hit = np.isfinite(t)
        tri[sl] = np.where(hit, ans["primitive_ids"].numpy().astype(np.int64), -1).astype(np.int32)
        uv = ans["primitive_uvs"].numpy()
        b = bary[sl]
        b[..., 1] = np.where(hit, uv[..., 0], 0)
        b[..., 2] = np.where(hit, uv[..., 1], 0)
        b[..., 0] = np.where(hit, 1.0 - b[..., 1] - b[..., 2], 0)
        depth[sl] = np.where(hit, t, np.inf)
        return Fragments(triangle=tri, bary=bary, depth=depth, camera=camera)


WINDOW_MARGIN_PX = 4  # past the projected vertices: a lens bends a triangle's edges (sub-pixel on a face's mesh)


def mesh_window(camera: CameraModel, vertices: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the pixels whose rays can hit a mesh of ``vertices`` (world (N, 3)): the box of their
    projections grown by :data:`WINDOW_MARGIN_PX`, clipped to the ``size = (W, H)`` image; None when it misses the
    image. The whole image when a vertex is behind the camera or the lens cannot be trusted that far out (a
    projection that lands far outside the frame, where a distortion polynomial may fold back). Only these rays are
    cast: the other pixels see the background whatever the mesh, so the fragments are the whole image's, bit for
    bit, for a fraction of the rays (a face in its region of interest: a third)."""
    W, H = size
    full = (0, 0, W, H)
    if not len(vertices):
        return None
    p = camera.project(vertices)
    if not np.isfinite(p).all():
        return full
    lo, hi = p.min(0), p.max(0)
    if (lo < (-W, -H)).any() or (hi > (2 * W, 2 * H)).any():
        return full
    m = WINDOW_MARGIN_PX
    x0, y0 = max(int(np.floor(lo[0])) - m, 0), max(int(np.floor(lo[1])) - m, 0)
    x1, y1 = min(int(np.ceil(hi[0])) + 1 + m, W), min(int(np.ceil(hi[1])) + 1 + m, H)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1
