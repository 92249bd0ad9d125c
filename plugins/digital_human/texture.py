"""Young albedo in the model's UV space, unwrapped from reference stills.

For each texel of an ``S x S`` UV map (:func:`uv_raster`: which triangle covers it, with barycentrics), every
still in which the texel's surface point is visible contributes ``plate_linear / shading``: the still's linear RGB
divided by its SH lighting (estimated on the still, :mod:`reconstruct.render.lighting`). Views are merged with
weights ``cos(normal, view)^2`` (grazing views count little) that fade to 0 near the face's silhouette in that
still; texels no still sees are filled by push-pull interpolation from their neighbours (:func:`fill_holes`).
Lighting and albedo are alternated: pass 0 assumes a uniform grey albedo to estimate each still's lighting, later
passes re-estimate each still's lighting with the merged albedo.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from reconstruct.camera import CameraModel
from reconstruct.errors import MethodError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class UVRaster:
    """Which surface point each texel is. triangle: (S, S) int32 (-1 = no triangle); bary: (S, S, 3) float32.
    Row 0 is the top of the texture (v = 1), as :func:`reconstruct.render.sample_texture` reads it."""

    triangle: np.ndarray
    bary: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.triangle >= 0


def uv_raster(uvs: np.ndarray, triangle_uvs: np.ndarray, size: int) -> UVRaster:
    """Rasterize the UV layout at texel centres (orthographic rays through a flat mesh, open3d Embree)."""
    import open3d as o3d

    uv = np.asarray(uvs, np.float64)
    pts = np.zeros((len(uv), 3), np.float32)
    pts[:, 0] = uv[:, 0] * size - 0.5  # texel x
    pts[:, 1] = (1.0 - uv[:, 1]) * size - 0.5  # texel row
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(pts), o3d.core.Tensor(np.ascontiguousarray(triangle_uvs, np.uint32)))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    rays = np.zeros((size, size, 6), np.float32)
    rays[..., 0], rays[..., 1], rays[..., 2], rays[..., 5] = xx, yy, -1.0, 1.0
    ans = scene.cast_rays(o3d.core.Tensor(rays))
    hit = np.isfinite(ans["t_hit"].numpy())
    tri = np.where(hit, ans["primitive_ids"].numpy().astype(np.int64), -1).astype(np.int32)
    buv = ans["primitive_uvs"].numpy()
    bary = np.zeros((size, size, 3), np.float32)
    bary[..., 1], bary[..., 2] = np.where(hit, buv[..., 0], 0), np.where(hit, buv[..., 1], 0)
    bary[..., 0] = np.where(hit, 1 - bary[..., 1] - bary[..., 2], 0)
    return UVRaster(triangle=tri, bary=bary)


def fill_holes(texture: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Push-pull fill: texels with ``weight == 0`` take the weighted average of a coarser level, recursively
    (smooth continuation of the known texels). texture (S, S, C), weight (S, S) >= 0."""
    import cv2

    t = np.asarray(texture, np.float32)
    w = np.asarray(weight, np.float32)
    if w.max() <= 0:
        raise MethodError("no texel of the young albedo was seen by any reference still",
                          hint="check that the stills show the face and that the identity fit succeeded")
    if min(w.shape) <= 1 or (w > 0).all():
        return t
    tw = t * w[..., None]
    h2, w2 = (w.shape[0] + 1) // 2, (w.shape[1] + 1) // 2
    tw_dn = cv2.resize(tw, (w2, h2), interpolation=cv2.INTER_AREA)
    w_dn = cv2.resize(w, (w2, h2), interpolation=cv2.INTER_AREA)
    coarse = np.where(w_dn[..., None] > 0, tw_dn / np.maximum(w_dn[..., None], 1e-12), 0)
    coarse = fill_holes(coarse, (w_dn > 0).astype(np.float32))
    up = cv2.resize(coarse, (w.shape[1], w.shape[0]), interpolation=cv2.INTER_LINEAR)
    if up.ndim == 2:
        up = up[..., None]
    return np.where(w[..., None] > 0, t, up).astype(np.float32)


def _sample(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear sample of (H, W, C) at pixel coordinates (P, 2) (OpenCV: pixel centres at integers; edges clamp)."""
    H, W = image.shape[:2]
    x = np.clip(uv[:, 0], 0, W - 1)
    y = np.clip(uv[:, 1], 0, H - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), W - 2)
    y0 = np.minimum(np.floor(y).astype(np.int64), H - 2)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    return ((1 - fy) * ((1 - fx) * image[y0, x0] + fx * image[y0, x0 + 1])
            + fy * ((1 - fx) * image[y0 + 1, x0] + fx * image[y0 + 1, x0 + 1])).astype(np.float32)


def unwrap_still(model, raster: UVRaster, vertices: np.ndarray, cam: CameraModel, radiance: np.ndarray,
                 renderer, shading_fn, edge_px: float = 4.0, skin: np.ndarray | None = None, fragments=None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Albedo (S, S, 3) and weight (S, S) contributed by one still: :func:`still_samples` divided by
    ``shading_fn`` (:meth:`StillSamples.unwrap`).

    Args:
        vertices: (V, 3) world vertices of the face in this still. radiance: (H, W, 3) linear RGB still.
        renderer: a renderer backend (visibility). shading_fn: (P, 3) world normals -> (P, 3) shading.
        edge_px: weights fade to 0 within this distance of the face silhouette / image border.
        skin: (H, W) in [0, 1], how much each still pixel is this face's skin: texels of the model's skin region
            take the still only where it shows skin (a fringe of hair, a beard or a hand over the face never bakes
            into the albedo; the holes are filled from the neighbours).
        fragments: ``renderer.rasterize(vertices, model.triangles, cam)`` when the caller has it.
    """
    if fragments is None:
        fragments = renderer.rasterize(vertices, model.triangles, cam)
    return still_samples(model, raster, vertices, cam, radiance, fragments, edge_px, skin).unwrap(shading_fn)


@dataclass(frozen=True, slots=True, eq=False)
class StillSamples:
    """What one still gives the texels whatever its lighting (the geometry, visibility and colours that
    :func:`unwrap_still` divides by the shading): ``weight`` (S, S) float32 as :func:`unwrap_still` returns it,
    the UV layout's ``mask``, and for the texels with a weight (``good``, over the mask's texels) their unit
    normals (G, 3) and the still's radiance there (G, 3) float32."""

    weight: np.ndarray
    mask: np.ndarray
    good: np.ndarray
    normals: np.ndarray
    radiance: np.ndarray

    def unwrap(self, shading_fn) -> tuple[np.ndarray, np.ndarray]:
        """Albedo (S, S, 3) and weight (S, S): the radiance divided by ``shading_fn(normals)``."""
        S = self.mask.shape[0]
        albedo = np.zeros((S, S, 3), np.float32)
        if self.good.any():
            shd = np.maximum(shading_fn(self.normals), 1e-3)
            a = np.zeros((len(self.good), 3), np.float32)
            a[self.good] = self.radiance / shd
            albedo[self.mask] = a
        return albedo, self.weight


def still_samples(model, raster: UVRaster, vertices: np.ndarray, cam: CameraModel, radiance: np.ndarray,
                  fragments, edge_px: float = 4.0, skin: np.ndarray | None = None) -> StillSamples:
    """The lighting-independent part of :func:`unwrap_still` (computed once per still, used by every pass)."""
    import cv2

    from reconstruct.render.shading import vertex_normals

    frags = fragments
    m = raster.mask
    tri = model.triangles[raster.triangle[m]]  # (P, 3)
    b = raster.bary[m].astype(np.float64)
    X = np.einsum("pk,pkd->pd", b, vertices[tri])
    vn = vertex_normals(vertices, model.triangles)
    n = np.einsum("pk,pkd->pd", b, vn[tri])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    uv = cam.project(X)
    H, W = frags.shape
    z = cam.to_camera(X)[:, 2]
    ui, vi = np.rint(uv[:, 0]).astype(np.int64), np.rint(uv[:, 1]).astype(np.int64)
    inside = np.isfinite(uv).all(1) & (ui >= 0) & (ui < W) & (vi >= 0) & (vi < H)
    depth = np.full(len(X), np.inf)
    depth[inside] = frags.depth[vi[inside], ui[inside]]
    visible = inside & (np.abs(z - depth) < 2e-3)
    view = cam.center - X
    view /= np.linalg.norm(view, axis=1, keepdims=True)
    cos = np.sum(n * view, axis=1)
    # distance to the silhouette in this still (erode-like fade)
    cov = frags.mask.astype(np.uint8)
    cov[[0, -1], :] = 0
    cov[:, [0, -1]] = 0
    dist = cv2.distanceTransform(cov, cv2.DIST_L2, 3)
    fade = np.zeros(len(X))
    fade[inside] = np.clip(dist[vi[inside], ui[inside]] / edge_px, 0, 1)
    w = np.where(visible & (cos > 0.1), cos ** 2 * fade, 0.0)
    if skin is not None and "skin" in model.regions:
        on_skin = np.asarray(model.regions["skin"], bool)[tri].all(axis=1)
        s = np.zeros(len(X))
        s[inside] = skin[vi[inside], ui[inside]]
        w = np.where(on_skin, w * np.clip((s - 0.3) / 0.4, 0.0, 1.0), w)
    S = raster.triangle.shape[0]
    weight = np.zeros((S, S), np.float32)
    good = w > 0
    if good.any():
        weight[m] = w
        rad = _sample(np.ascontiguousarray(radiance, np.float32), uv[good])
    else:
        rad = np.zeros((0, 3), np.float32)
    return StillSamples(weight=weight, mask=m, good=good, normals=n[good], radiance=rad)


def merge_views(albedos: Sequence[np.ndarray], weights: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean of per-still albedos; returns (albedo (S, S, 3), total weight (S, S))."""
    acc = np.zeros_like(albedos[0])
    wsum = np.zeros_like(weights[0])
    for a, w in zip(albedos, weights):
        acc += a * w[..., None]
        wsum += w
    return np.where(wsum[..., None] > 0, acc / np.maximum(wsum[..., None], 1e-12), 0).astype(np.float32), wsum
