"""Per-pixel visibility of a render (:class:`Fragments`) and what is computed from it.

Everything here is backend-independent: a renderer backend's only job is ``rasterize(...) -> Fragments``; the
interpolation of vertex attributes, UV texture sampling and shading work on any backend's fragments.
Numpy functions serve the pipeline; the ``*_torch`` functions are differentiable w.r.t. vertex attributes,
vertex positions (through :func:`barycentrics_torch`) and textures.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from ..camera import CameraModel
from ..errors import RenderError


@dataclass(frozen=True, slots=True, eq=False)
class Fragments:
    """What each pixel of a ``(H, W)`` render sees (the first surface along its ray).

    Attributes:
        triangle: (H, W) int32 index into the rendered ``triangles`` array; -1 where the pixel sees background.
        bary: (H, W, 3) float32 barycentric coordinates of the hit point in that triangle (rows sum to 1; 0 on
            background). They are 3D (perspective-correct): the hit point is ``sum_k bary[k] * vertex[k]``.
        depth: (H, W) float32 camera-frame z of the hit point in metres (OpenCV camera frame, z forward);
            ``inf`` on background.
        camera: the camera rendered through (OpenCV convention, its distortion included).
    """

    triangle: np.ndarray
    bary: np.ndarray
    depth: np.ndarray
    camera: CameraModel

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool, True where the pixel sees the mesh."""
        return self.triangle >= 0

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) in pixels."""
        return self.triangle.shape  # type: ignore[return-value]


class _RayGrids:
    """Ray directions per lens, shared by every crop of a camera (:func:`reconstruct.retouch.crop_camera` moves
    the principal point by whole pixels): a grid is kept per (focal lengths, skew, the principal point's fraction
    of a pixel, distortion, model), indexed by the pixel's whole-pixel offset from the principal point, and grown
    when a camera needs offsets it does not cover yet. A ray depends only on ``u - cx`` and ``v - cy``, which are
    computed exactly (whole pixels minus the same fraction), so it is the same whichever crop or grid made it.
    Before: one cached grid per exact K, i.e. a fresh undistortion of every pixel of every per-frame crop."""

    def __init__(self, max_lenses: int = 8) -> None:
        self._grids: dict = {}  # key -> (x0, y0, grid (h, w, 3) float32, read-only)
        self._lock = threading.Lock()
        self.max_lenses = max_lenses

    def rays(self, camera: CameraModel, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
        K = camera.K
        fx, fy, skew, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 1]), float(K[0, 2]), float(K[1, 2])
        ix, iy = math.floor(cx), math.floor(cy)
        key = (fx, fy, skew, cx - ix, cy - iy, camera.dist.tobytes(), camera.model)
        w, h = (int(v) for v in camera.image_size)
        wx0, wy0, wx1, wy1 = (0, 0, w, h) if window is None else (int(v) for v in window)
        lo_x, lo_y, hi_x, hi_y = wx0 - ix, wy0 - iy, wx1 - ix, wy1 - iy  # whole-pixel offsets the call needs
        with self._lock:
            got = self._grids.get(key)
            if got is not None:
                gx, gy, grid = got
                if gx <= lo_x and gy <= lo_y and gx + grid.shape[1] >= hi_x and gy + grid.shape[0] >= hi_y:
                    return grid[lo_y - gy:hi_y - gy, lo_x - gx:hi_x - gx]
                # grow past the whole camera, so a moving crop does not rebuild every frame
                mx, my = max(32, w // 4), max(32, h // 4)
                lo_x, lo_y = min(-ix - mx, lo_x, gx), min(-iy - my, lo_y, gy)
                hi_x, hi_y = max(w - ix + mx, hi_x, gx + grid.shape[1]), max(h - iy + my, hi_y, gy + grid.shape[0])
            # a lens seen for the first time: only the rays asked for (a camera made for one frame -- a crop
            # resampled to a coarser grid, whose focal lengths change with the crop's size -- needs no more)
            grid = _ray_grid(key, lo_x, lo_y, hi_x, hi_y)
            if key not in self._grids and len(self._grids) >= self.max_lenses:
                self._grids.pop(next(iter(self._grids)))
            self._grids[key] = (lo_x, lo_y, grid)
            ox, oy = wx0 - ix - lo_x, wy0 - iy - lo_y
            return grid[oy:oy + wy1 - wy0, ox:ox + wx1 - wx0]


def _ray_grid(key: tuple, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """(y1 - y0, x1 - x0, 3) float32 rays of whole-pixel offsets [x0, x1) x [y0, y1) from the principal point."""
    fx, fy, skew, frac_x, frac_y, dist, model = key
    d = np.frombuffer(dist, np.float64)
    du = np.arange(x0, x1, dtype=np.float64) - frac_x  # = u - cx, exactly
    dv = np.arange(y0, y1, dtype=np.float64) - frac_y
    uu, vv = np.meshgrid(du, dv)
    y = vv / fy
    x = (uu - skew * y) / fx
    if np.any(d != 0):
        import cv2

        pts = np.stack([x.ravel(), y.ravel()], axis=1).reshape(-1, 1, 2)
        if model == "fisheye":
            xn = cv2.fisheye.undistortPoints(pts, np.eye(3), d)
        else:
            xn = cv2.undistortPoints(pts, np.eye(3), d)
        x, y = xn[:, 0, 0].reshape(uu.shape), xn[:, 0, 1].reshape(uu.shape)
    grid = np.stack([x, y, np.ones_like(x)], axis=-1).astype(np.float32)
    grid.setflags(write=False)
    return grid


_GRIDS = _RayGrids()


def pixel_rays(camera: CameraModel, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """(H, W, 3) float32 camera-frame ray directions ``(x_n, y_n, 1)`` through every pixel centre; with ``window
    = (x0, y0, x1, y1)`` only those pixels' (``pixel_rays(camera)[y0:y1, x0:x1]``, the same numbers: each ray is
    computed on its own).

    ``(x_n, y_n)`` are the *undistorted* normalised coordinates of the pixel (OpenCV's inverse of the lens model),
    so a point at depth ``z`` along a pixel's ray is ``z * ray`` and projects back onto that pixel with
    :meth:`CameraModel.project`. Cached per lens and shared by crops of the same camera (a read-only view).
    """
    return _GRIDS.rays(camera, window)


def _check_tri(fragments: Fragments, triangles: np.ndarray, n_vertices: int | None = None) -> np.ndarray:
    triangles = np.asarray(triangles)
    if triangles.ndim != 2 or triangles.shape[1] != 3:
        raise RenderError(f"triangles must be (F, 3), got {triangles.shape}")
    if fragments.mask.any() and int(fragments.triangle.max()) >= triangles.shape[0]:
        raise RenderError("fragments refer to more triangles than given; pass the triangles that were rendered")
    return triangles


def interpolate(fragments: Fragments, triangles: np.ndarray, attributes: np.ndarray,
                background: float | np.ndarray = 0.0) -> np.ndarray:
    """Interpolate per-vertex attributes at every pixel.

    Args:
        fragments: a render's fragments.
        triangles: (F, 3) the triangles that were rendered.
        attributes: (V, C) or (V,) per-vertex values (colours, normals, positions, ...).
        background: value of background pixels (scalar or (C,)).

    Returns:
        (H, W, C) (or (H, W)) float32.
    """
    triangles = _check_tri(fragments, triangles)
    attr = np.asarray(attributes)
    squeeze = attr.ndim == 1
    attr = attr.reshape(attr.shape[0], -1)
    H, W = fragments.shape
    out = np.empty((H, W, attr.shape[1]), np.float32)
    out[...] = background
    m = fragments.mask
    out[m] = interpolate_at(fragments.triangle[m], fragments.bary[m], triangles, attr)
    return out[..., 0] if squeeze else out


def interpolate_at(triangle: np.ndarray, bary: np.ndarray, triangles: np.ndarray, attributes: np.ndarray
                   ) -> np.ndarray:
    """(P, C) float32: per-vertex ``attributes`` (V, C) interpolated at P surface points, each on triangle
    ``triangle[p]`` (index into ``triangles`` (F, 3), >= 0) with barycentrics ``bary[p]`` ((P, 3) float32) --
    :func:`interpolate`'s numbers at the pixels a triangle covers, for a caller that holds those pixels' lists."""
    attr = np.asarray(attributes).astype(np.float32, copy=False)
    tri = triangles[triangle]  # (P, 3)
    b = bary
    return b[:, 0:1] * attr[tri[:, 0]] + b[:, 1:2] * attr[tri[:, 1]] + b[:, 2:3] * attr[tri[:, 2]]


def interpolate_uv(fragments: Fragments, triangle_uvs: np.ndarray, uvs: np.ndarray) -> np.ndarray:
    """(H, W, 2) float32 texture coordinates (OBJ convention: origin bottom-left) of every pixel; NaN on background."""
    H, W = fragments.shape
    out = np.full((H, W, 2), np.nan, np.float32)
    m = fragments.mask
    tri = np.asarray(triangle_uvs)[fragments.triangle[m]]
    b = fragments.bary[m]
    uvs = np.asarray(uvs, np.float32)
    out[m] = b[:, 0:1] * uvs[tri[:, 0]] + b[:, 1:2] * uvs[tri[:, 1]] + b[:, 2:3] * uvs[tri[:, 2]]
    return out


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup of ``texture`` (Ht, Wt, C) at ``uv`` (..., 2) (origin bottom-left, [0, 1]; edges clamp).

    Returns (..., C) float32; NaN uv (background) gives 0.
    """
    tex = np.asarray(texture, np.float32)
    if tex.ndim == 2:
        tex = tex[..., None]
    Ht, Wt = tex.shape[:2]
    uv = np.asarray(uv, np.float32)
    bad = ~np.isfinite(uv).all(-1)
    x = np.clip(np.nan_to_num(uv[..., 0]) * Wt - 0.5, 0, Wt - 1)
    y = np.clip((1.0 - np.nan_to_num(uv[..., 1])) * Ht - 0.5, 0, Ht - 1)
    x0 = np.floor(x).astype(np.int32)
    y0 = np.floor(y).astype(np.int32)
    x1 = np.minimum(x0 + 1, Wt - 1)
    y1 = np.minimum(y0 + 1, Ht - 1)
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]
    out = ((1 - fy) * ((1 - fx) * tex[y0, x0] + fx * tex[y0, x1]) + fy * ((1 - fx) * tex[y1, x0] + fx * tex[y1, x1]))
    out[bad] = 0.0
    return out


# -- torch (differentiable) ------------------------------------------------------------------------------------
def _torch():
    import torch

    return torch


def barycentrics_torch(fragments: Fragments, triangles: np.ndarray, vertices_cam):
    """Differentiable barycentrics of the visible pixels w.r.t. camera-frame vertex positions.

    The visibility (which triangle each pixel sees) is fixed by ``fragments``; the barycentric coordinates are
    recomputed as the intersection of each pixel's ray (:func:`pixel_rays`) with its triangle (Moller-Trumbore),
    so gradients flow to the vertices as in a hard rasteriser.

    Args:
        fragments: fragments of a render of these triangles.
        triangles: (F, 3) int.
        vertices_cam: (V, 3) torch tensor, camera-frame vertex positions in metres.

    Returns:
        (P, 3) tensor for the P pixels where ``fragments.mask`` is True (row-major order).
    """
    torch = _torch()
    triangles = _check_tri(fragments, triangles)
    m = fragments.mask
    dev, dt = vertices_cam.device, vertices_cam.dtype
    d = torch.as_tensor(pixel_rays(fragments.camera)[m], dtype=dt, device=dev)  # (P, 3)
    tri = torch.as_tensor(triangles[fragments.triangle[m]], dtype=torch.long, device=dev)  # (P, 3)
    v0, v1, v2 = vertices_cam[tri[:, 0]], vertices_cam[tri[:, 1]], vertices_cam[tri[:, 2]]
    e1, e2 = v1 - v0, v2 - v0
    p = torch.linalg.cross(d, e2, dim=-1)
    det = (e1 * p).sum(-1)
    det = torch.where(det.abs() < 1e-20, torch.full_like(det, 1e-20), det)
    s = -v0
    u = (s * p).sum(-1) / det
    q = torch.linalg.cross(s, e1, dim=-1)
    v = (d * q).sum(-1) / det
    return torch.stack([1 - u - v, u, v], dim=-1)


def interpolate_torch(fragments: Fragments, triangles: np.ndarray, attributes, bary=None, packed: bool = False):
    """Differentiable interpolation of per-vertex ``attributes`` ((V, C) torch tensor) at the visible pixels.

    Args:
        bary: (P, 3) tensor from :func:`barycentrics_torch` (for gradients w.r.t. vertex positions); default the
            fragments' own (constant) barycentrics.
        packed: True returns (P, C) for the visible pixels only; False an (H, W, C) image, zero on background.
    """
    torch = _torch()
    triangles = _check_tri(fragments, triangles)
    m = fragments.mask
    dev, dt = attributes.device, attributes.dtype
    tri = torch.as_tensor(triangles[fragments.triangle[m]], dtype=torch.long, device=dev)
    if bary is None:
        bary = torch.as_tensor(fragments.bary[m], dtype=dt, device=dev)
    vals = (bary[:, :, None] * attributes[tri]).sum(1)  # (P, C)
    if packed:
        return vals
    H, W = fragments.shape
    out = torch.zeros((H * W, attributes.shape[1]), dtype=dt, device=dev)
    idx = torch.as_tensor(np.flatnonzero(m), dtype=torch.long, device=dev)
    out = out.index_copy(0, idx, vals)
    return out.reshape(H, W, -1)


def sample_texture_torch(texture, uv):
    """Differentiable bilinear lookup of ``texture`` ((Ht, Wt, C) tensor) at ``uv`` ((P, 2) tensor, origin
    bottom-left); same sampling as :func:`sample_texture` (edges clamp). Returns (P, C)."""
    torch = _torch()
    tex = texture.permute(2, 0, 1)[None]  # (1, C, Ht, Wt)
    grid = torch.stack([uv[:, 0] * 2 - 1, (1 - uv[:, 1]) * 2 - 1], dim=-1)[None, None]  # (1, 1, P, 2)
    out = torch.nn.functional.grid_sample(tex, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0].T
