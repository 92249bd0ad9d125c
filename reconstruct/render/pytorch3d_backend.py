"""The GPU renderer backend: PyTorch3D's mesh rasterizer, producing the same :class:`~.fragments.Fragments` as the
CPU ``raycast`` backend.

Cameras go through :func:`reconstruct.conventions.opencv_to_pytorch3d` (NDC, pixel centres aligned with OpenCV's
integer pixel coordinates; checked against PyTorch3D's own ``cameras_from_opencv_projection``, which is half a
pixel off, and against rasterized pixel positions in ``tests/render/test_pytorch3d_backend.py``). PyTorch3D cannot
model lens distortion: for a distorted camera the mesh is rasterized through the undistorted pinhole camera with
the same K; each output pixel's own ray is intersected with the triangles seen around its undistorted position
(3x3 pinhole pixels) and the nearest hit wins, so barycentrics and depth are exact and only silhouette pixels can
differ from the raycast backend.

Chosen automatically (``--renderer auto``, priority 20 > raycast's 10) only where pytorch3d imports *and* the
device is a CUDA GPU: PyTorch3D's CPU rasterizer is ~500x slower than the raycast backend (``tools/bench_render.py``).
It still runs on the CPU when asked for by class (tests do, at tiny sizes).
"""

from __future__ import annotations

import logging

import numpy as np

from ..camera import CameraModel
from ..conventions import opencv_to_pytorch3d
from ..errors import RenderError
from .base import RendererBase
from .fragments import Fragments, pixel_rays

log = logging.getLogger(__name__)


def _import():
    try:
        import torch
        from pytorch3d.renderer import MeshRasterizer, PerspectiveCameras, RasterizationSettings
        from pytorch3d.structures import Meshes
    except Exception as exc:  # ImportError, or undefined symbols of a torch/pytorch3d mismatch (OSError)
        raise RenderError(f"the pytorch3d renderer needs pytorch3d, which failed to import: {exc}",
                          hint="pip install torch==2.12.0 easypytorch3d==0.7.9.post1, or use --renderer raycast") from exc
    return torch, Meshes, PerspectiveCameras, RasterizationSettings, MeshRasterizer


class PyTorch3DRenderer(RendererBase):
    """PyTorch3D hard rasterization (one face per pixel, no blur), CUDA when ``device="cuda"``."""

    name = "pytorch3d"
    priority = 20

    @classmethod
    def available(cls, device: str = "cpu") -> bool:
        if device != "cuda":
            return False
        try:
            torch = _import()[0]
            return bool(torch.cuda.is_available())
        except RenderError:
            return False

    def _cameras(self, camera: CameraModel, torch, PerspectiveCameras):
        p = opencv_to_pytorch3d(camera)
        t = lambda a: torch.tensor(np.asarray(a, np.float32)[None], device=self.device)  # noqa: E731
        return PerspectiveCameras(R=t(p.R), T=t(p.T), focal_length=t(p.focal_length),
                                  principal_point=t(p.principal_point), image_size=(p.image_size,), in_ndc=True,
                                  device=self.device)

    def rasterize(self, vertices: np.ndarray, triangles: np.ndarray, camera: CameraModel) -> Fragments:
        torch, Meshes, PerspectiveCameras, RasterizationSettings, MeshRasterizer = _import()
        v = np.asarray(vertices, np.float64).reshape(-1, 3)
        f = np.asarray(triangles, np.int64).reshape(-1, 3)
        distorted = bool(np.any(camera.dist != 0))
        pin = CameraModel(name=camera.name, K=camera.K, R=camera.R, t=camera.t, image_size=camera.image_size)
        W, H = camera.image_size
        try:
            mesh = Meshes(verts=[torch.tensor(v, dtype=torch.float32, device=self.device)],
                          faces=[torch.tensor(f, dtype=torch.int64, device=self.device)])
            settings = RasterizationSettings(image_size=(H, W), blur_radius=0.0, faces_per_pixel=1,
                                             perspective_correct=True, cull_backfaces=False,
                                             bin_size=0 if self.device == "cpu" else None,
                                             max_faces_per_bin=max(10000, len(f)))
            with torch.no_grad():
                frag = MeshRasterizer(cameras=self._cameras(pin, torch, PerspectiveCameras),
                                      raster_settings=settings)(mesh)
            p2f = frag.pix_to_face[0, ..., 0].cpu().numpy()
            bary = frag.bary_coords[0, :, :, 0].cpu().numpy().astype(np.float32)
            zbuf = frag.zbuf[0, ..., 0].cpu().numpy()
        except RuntimeError as exc:  # CUDA out of memory, bin overflow ...
            raise RenderError(f"pytorch3d rasterization of {len(f)} triangles at {W}x{H} failed: {exc}",
                              hint="use --renderer raycast") from exc
        tri = np.where(p2f >= 0, p2f, -1).astype(np.int32)  # a single mesh: packed face index = face index
        if not distorted:
            hit = tri >= 0
            bary[~hit] = 0.0
            depth = np.where(hit, zbuf, np.inf).astype(np.float32)
            return Fragments(triangle=tri, bary=bary, depth=depth, camera=camera)
        return self._distort(tri, v, f, camera)

    @staticmethod
    def _distort(tri_pin: np.ndarray, v: np.ndarray, f: np.ndarray, camera: CameraModel) -> Fragments:
        """Resample pinhole fragments to the distorted image. Each distorted pixel's ray (undistorted direction) is
        intersected with the triangles seen by the 3x3 pinhole pixels around its undistorted position; the nearest
        hit inside a triangle wins (barycentrics and depth exact), else the pixel is background."""
        H, W = tri_pin.shape
        rays = pixel_rays(camera)  # (H, W, 3), undistorted normalised coordinates
        K = camera.K
        u = np.rint(K[0, 0] * rays[..., 0] + K[0, 1] * rays[..., 1] + K[0, 2]).astype(np.int64)
        w = np.rint(K[1, 1] * rays[..., 1] + K[1, 2]).astype(np.int64)
        vc = v @ camera.R.T + camera.t
        best_t = np.full((H, W), np.inf)
        tri = np.full((H, W), -1, np.int32)
        bary = np.zeros((H, W, 3), np.float32)
        d_all = rays.astype(np.float64)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                uu, ww = u + dx, w + dy
                inside = (uu >= 0) & (uu < W) & (ww >= 0) & (ww < H)
                cand = np.full((H, W), -1, np.int64)
                cand[inside] = tri_pin[ww[inside], uu[inside]]
                m = cand >= 0
                if not m.any():
                    continue
                t3 = f[cand[m]]
                v0, v1, v2 = vc[t3[:, 0]], vc[t3[:, 1]], vc[t3[:, 2]]
                d = d_all[m]
                e1, e2 = v1 - v0, v2 - v0
                p = np.cross(d, e2)
                det = np.sum(e1 * p, axis=1)
                det = np.where(np.abs(det) < 1e-20, 1e-20, det)
                s = -v0
                b1 = np.sum(s * p, axis=1) / det
                q = np.cross(s, e1)
                b2 = np.sum(d * q, axis=1) / det
                tt = np.sum(e2 * q, axis=1) / det
                eps = 1e-6
                ok = (b1 >= -eps) & (b2 >= -eps) & (b1 + b2 <= 1 + eps) & (tt > 0)
                better = ok & (tt < best_t[m])
                idx = np.flatnonzero(m)[better]
                best_t.flat[idx] = tt[better]
                tri.flat[idx] = cand[m][better]
                bary.reshape(-1, 3)[idx] = np.stack([1 - b1 - b2, b1, b2], axis=1)[better]
        depth = np.where(tri >= 0, best_t, np.inf).astype(np.float32)
        return Fragments(triangle=tri, bary=bary, depth=depth, camera=camera)
