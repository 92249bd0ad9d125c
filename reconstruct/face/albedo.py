"""Procedural albedo for models that have none (ICT-FaceKit, the demo model).

:func:`procedural_albedo` paints skin, darker lips and mouth line, brows, eyelid lines and (where the surface
covers the eye opening, as in the demo model) eye whites, iris and pupil, as a function of the position on the
*mean* shape, located from the model's 68 landmarks (:mod:`.features`). :func:`bake_texture` evaluates it over the
model's UV layout, so the albedo is sharp however coarse the mesh is. All colours are linear RGB in [0, 1].
These features are what MediaPipe Face Mesh needs to find a synthetic face (DESIGN.md, "Stack facts").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FaceModelError
from .features import (BROW_L, BROW_R, EYE_L, EYE_R, LIPS_INNER, LIPS_OUTER, front_facing, polyline_distance,
                       signed_polygon_distance)


def _srgb(r: int, g: int, b: int) -> np.ndarray:
    c = np.array([r, g, b], np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


@dataclass(frozen=True, slots=True)
class Palette:
    """Linear-RGB colours of the procedural albedo (defaults: light skin, brown brows, brown iris)."""

    skin: tuple = tuple(_srgb(222, 170, 146))
    cheeks: tuple = tuple(_srgb(214, 140, 124))
    lips: tuple = tuple(_srgb(160, 78, 80))
    mouth_line: tuple = tuple(_srgb(70, 25, 28))
    brows: tuple = tuple(_srgb(62, 44, 34))
    lid_line: tuple = tuple(_srgb(40, 28, 26))
    sclera: tuple = tuple(_srgb(225, 220, 212))
    iris: tuple = tuple(_srgb(95, 62, 40))
    pupil: tuple = tuple(_srgb(12, 10, 10))
    hair: tuple = tuple(_srgb(48, 36, 28))


def _smooth(d: np.ndarray, width: float) -> np.ndarray:
    """1 where d <= -width/2, 0 where d >= width/2, smooth in between."""
    t = np.clip(0.5 - d / max(width, 1e-9), 0, 1)
    return t * t * (3 - 2 * t)


def _near(xy: np.ndarray, pts: np.ndarray, margin: float) -> np.ndarray:
    """(N,) bool: points inside the bounding box of ``pts`` grown by ``margin``."""
    lo, hi = pts.min(0) - margin, pts.max(0) + margin
    return np.all((xy >= lo) & (xy <= hi), axis=1)


def _mix(c: np.ndarray, colour, w: np.ndarray) -> np.ndarray:
    return c * (1 - w[:, None]) + np.asarray(colour)[None, :] * w[:, None]


def procedural_albedo(points: np.ndarray, lm68: np.ndarray, palette: Palette = Palette(), paint_eyes: bool = True,
                      seed: int = 0, hair: bool = False) -> np.ndarray:
    """Albedo at surface points.

    Args:
        points: (N, 3) positions on the model's *mean* shape, model frame (metres, +y up, +z out of the face).
        lm68: (68, 3) the iBUG-68 landmarks on the mean shape, same frame.
        palette: colours.
        paint_eyes: paint sclera/iris/pupil inside the eye openings (False where the model has eye holes and the
            renderer adds eyeballs).
        seed: varies the low-frequency skin blotches.
        hair: paint short hair above the hairline and on the sides/back of the head (the demo model: a head
            outline with hair is what face detectors expect).

    Returns:
        (N, 3) float32 linear RGB in [0, 1].
    """
    p = np.asarray(points, np.float64)
    lm = np.asarray(lm68, np.float64)
    if lm.shape != (68, 3):
        raise FaceModelError(f"procedural albedo needs (68, 3) landmarks, got {lm.shape}")
    xy = p[:, :2]
    front = front_facing(p, lm).astype(np.float64)
    iod = float(np.linalg.norm(lm[36, :2] - lm[45, :2]))  # outer eye corners, ~9 cm
    s = iod / 0.09  # feature sizes scale with the face
    c = np.tile(np.asarray(palette.skin), (len(p), 1))
    # low-frequency skin variation and rosy cheeks / nose tip
    rng = np.random.default_rng(seed)
    k = rng.normal(size=(6, 2)) * 40.0
    ph = rng.uniform(0, 2 * np.pi, 6)
    blotch = sum(np.sin(xy @ k[i] + ph[i]) for i in range(6)) / 6.0
    c *= (1 + 0.04 * blotch)[:, None]
    for centre, r in ((0.5 * (lm[2] + lm[31]), 0.018 * s), (0.5 * (lm[14] + lm[35]), 0.018 * s), (lm[30], 0.008 * s)):
        w = 0.45 * np.exp(-np.sum((xy - centre[:2]) ** 2, axis=1) / (2 * r * r)) * front
        c = _mix(c, palette.cheeks, w)
    # a soft shadow in the eye sockets: eye regions stay visible when the eyes are closed or seen from the side
    for eye in (EYE_R, EYE_L):
        ctr = lm[eye, :2].mean(0)
        w = 0.16 * np.exp(-0.5 * (((xy[:, 0] - ctr[0]) / (0.016 * s)) ** 2 + ((xy[:, 1] - ctr[1]) / (0.011 * s)) ** 2))
        c *= (1 - w * front)[:, None]
    if hair:
        brow_top = float(lm[BROW_R + BROW_L, 1].max())
        eye_y = float(np.mean(lm[EYE_R + EYE_L, 1]))
        z_ref = float(np.mean(lm[EYE_R + EYE_L, 2]))
        d_top = (brow_top + 0.03 * s - 0.02 * s * (xy[:, 0] / (0.07 * s)) ** 2) - p[:, 1]  # < 0 above the hairline
        d_side = np.maximum(p[:, 2] - (z_ref - 0.07 * s), (eye_y - 0.015 * s) - p[:, 1])  # < 0 behind, above ears
        d = np.minimum(d_top, d_side)
        c = _mix(c, palette.hair, 0.95 * _smooth(d, 0.004 * s))
    # brows: a band above each brow polyline, thicker towards the nose
    for brow in (BROW_R, BROW_L):
        line = lm[brow, :2].copy()
        line[:, 1] += 0.002 * s
        i = _near(xy, line, 0.01 * s) & (front > 0)
        q = xy[i]
        d = polyline_distance(q, line)
        along = np.linspace(1.0, 0.55, len(brow)) if brow == BROW_R else np.linspace(0.55, 1.0, len(brow))
        near = np.argmin(np.linalg.norm(q[:, None, :] - line[None], axis=2), axis=1)  # nearest brow landmark
        half = 0.0045 * s * along[near]
        c[i] = _mix(c[i], palette.brows, 0.92 * _smooth(d - half, 0.0015 * s))
    # lips and mouth line
    i = _near(xy, lm[LIPS_OUTER, :2], 0.004 * s) & (front > 0)
    q = xy[i]
    dl = signed_polygon_distance(q, lm[LIPS_OUTER, :2])
    c[i] = _mix(c[i], palette.lips, 0.85 * _smooth(dl, 0.0015 * s))
    mouth = 0.5 * (lm[[60, 61, 62, 63, 64], :2] + lm[[60, 67, 66, 65, 64], :2])
    dm = np.minimum(polyline_distance(q, mouth), np.maximum(signed_polygon_distance(q, lm[LIPS_INNER, :2]), 0))
    c[i] = _mix(c[i], palette.mouth_line, _smooth(dm - 0.0006 * s, 0.0008 * s))
    # eyes: openings, lid lines (upper: lashes, lower: thin), a soft crease shadow above the upper lid
    for eye in (EYE_R, EYE_L):
        poly = lm[eye, :2]
        i = _near(xy, poly, 0.012 * s) & (front > 0)
        q = xy[i]
        ci = c[i]
        de = signed_polygon_distance(q, poly)
        if paint_eyes:
            r = np.linalg.norm(q - poly.mean(0), axis=1)
            ins = _smooth(de, 0.0006 * s)
            eye_c = np.tile(np.asarray(palette.sclera), (len(q), 1))
            eye_c = _mix(eye_c, palette.iris, _smooth(r - 0.0055 * s, 0.0008 * s))
            eye_c = _mix(eye_c, palette.pupil, _smooth(r - 0.0022 * s, 0.0005 * s))
            ci = ci * (1 - ins[:, None]) + eye_c * ins[:, None]
        upper = lm[[eye[0], eye[1], eye[2], eye[3]], :2]
        lower = lm[[eye[3], eye[4], eye[5], eye[0]], :2]
        crease = upper.copy()
        crease[:, 1] += 0.0045 * s
        ci = _mix(ci, palette.cheeks, 0.35 * _smooth(polyline_distance(q, crease) - 0.0006 * s, 0.002 * s))
        order = np.argsort(upper[:, 0])
        above = q[:, 1] >= np.interp(q[:, 0], upper[order, 0], upper[order, 1]) - 0.0005
        ci = _mix(ci, palette.lid_line, 0.95 * _smooth(polyline_distance(q, upper) - 0.0011 * s, 0.0008 * s)
                  * (above | (de < 0)))
        ci = _mix(ci, palette.lid_line, 0.6 * _smooth(polyline_distance(q, lower) - 0.0005 * s, 0.0006 * s))
        c[i] = ci
    return np.clip(c, 0, 1).astype(np.float32)


def uv_surface_points(mean: np.ndarray, triangles: np.ndarray, uvs: np.ndarray, triangle_uvs: np.ndarray,
                      size: int) -> tuple[np.ndarray, np.ndarray]:
    """For every texel centre of a ``size`` x ``size`` texture: the mean-shape point it covers.

    Returns ``(points (size*size, 3) float64, covered (size, size) bool)``; row 0 is v = 1 (top).
    Rasterizes the UV layout with open3d's ray caster (orthographic rays through the UV plane).
    """
    import open3d as o3d

    uvs = np.asarray(uvs, np.float32)
    tuv = np.asarray(triangle_uvs)
    if len(uvs) == 0 or len(tuv) != len(triangles):
        raise FaceModelError("the model has no UV layout to bake a texture on")
    verts = np.concatenate([uvs, np.zeros((len(uvs), 1), np.float32)], axis=1)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(verts), o3d.core.Tensor(tuv.astype(np.uint32)))
    cs = (np.arange(size) + 0.5) / size
    uu, vv = np.meshgrid(cs, cs[::-1])
    rays = np.zeros((size, size, 6), np.float32)
    rays[..., 0], rays[..., 1], rays[..., 2], rays[..., 5] = uu, vv, -1.0, 1.0
    ans = scene.cast_rays(o3d.core.Tensor(rays))
    hit = np.isfinite(ans["t_hit"].numpy())
    tri = np.where(hit, ans["primitive_ids"].numpy().astype(np.int64), 0)
    b = ans["primitive_uvs"].numpy()
    bary = np.stack([1 - b[..., 0] - b[..., 1], b[..., 0], b[..., 1]], axis=-1)
    corners = np.asarray(mean, np.float64)[np.asarray(triangles)[tri.ravel()]]  # (S, 3, 3)
    pts = np.einsum("sk,skd->sd", bary.reshape(-1, 3), corners)
    return pts, hit


def bake_texture(mean: np.ndarray, triangles: np.ndarray, uvs: np.ndarray, triangle_uvs: np.ndarray,
                 lm68: np.ndarray, size: int = 1024, **kwargs) -> np.ndarray:
    """(size, size, 3) float32 albedo texture of :func:`procedural_albedo` over the model's UV layout.

    Texels no triangle covers are filled with the nearest covered texel's colour (so bilinear lookups at UV
    seams do not bleed background)."""
    from scipy import ndimage

    pts, hit = uv_surface_points(mean, triangles, uvs, triangle_uvs, size)
    tex = np.zeros((size * size, 3), np.float32)
    flat = hit.ravel()
    tex[flat] = procedural_albedo(pts[flat], lm68, **kwargs)
    tex = tex.reshape(size, size, 3)
    if not hit.all():
        idx = ndimage.distance_transform_edt(~hit, return_distances=False, return_indices=True)
        tex = tex[idx[0], idx[1]]
    return tex
