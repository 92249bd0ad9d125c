"""Drawing a "mesh" face edit (:class:`reconstruct.methods.FaceEdit`) through the hero camera, lit like the plate.

:class:`MeshEditDrawer` renders the edit's geometry and albedo once, on the face's region of interest only (the
projected edit and fitted faces plus a small margin, through :func:`reconstruct.retouch.crop_camera`), with unit
ambient light: that render *is* the albedo and normals per pixel. The plate's SH lighting is estimated from it
(:mod:`.lighting`; each rendered surface point is found on the fitted face, same triangle and barycentrics, where
the plate shows it: the plate there is explained as the albedo times SH(the fitted normal)), and the image is the
same pixels shaded with the estimate -- no second render. It returns the sRGB image, the coverage of the face region,
the pixels the plate must keep (the model's ``eyes`` region in the edit or the fit: the performance's eyes; the
fit's eyes are ray-cast in their own small box) and the skin region where the model defines one, all as a crop of
the plate at ``origin``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..camera import CameraModel
from ..errors import RenderError
from ..retouch.roi import Roi, crop_camera, face_roi
from .base import Mesh
from .lighting import estimate_sh_lighting
from .shading import Lighting, linear_to_srgb, srgb_to_linear

ROI_MARGIN = 0.03  # the face's region: its projected bounds grown by this fraction of their larger side

LIGHTING_MODES = ("plate", "key")


@dataclass(frozen=True, slots=True, eq=False)
class DrawnEdit:
    """A drawn mesh edit: a crop of the hero plate whose top-left pixel is ``origin``.

    Attributes:
        image: (h, w, 3) float32 sRGB in [0, 1] (0 outside coverage).
        coverage: (h, w) float32 in {0, 1}, the face region of the edit.
        exclude: (h, w) bool, pixels that keep the plate (eyes), or None when the model has no eyes region.
        skin: (h, w) bool skin region, or None.
        info: lighting coefficients and residual (JSON-serialisable).
        origin: ``(x0, y0)`` pixels of the crop on the plate.
    """

    image: np.ndarray
    coverage: np.ndarray
    exclude: np.ndarray | None
    skin: np.ndarray | None
    info: dict = field(default_factory=dict)
    origin: tuple[int, int] = (0, 0)


class MeshEditDrawer:
    """Renders mesh edits of one face model with one renderer backend."""

    def __init__(self, model, renderer, lighting_mode: str = "plate") -> None:
        if lighting_mode not in LIGHTING_MODES:
            raise RenderError(f"unknown lighting mode {lighting_mode!r}", hint="use plate or key")
        self.model, self.renderer, self.mode = model, renderer, lighting_mode
        self._tris = {name: np.asarray(reg, bool)[model.triangles].all(axis=1) for name, reg in model.regions.items()}

    def mesh(self, vertices: np.ndarray, edit) -> Mesh:
        m = self.model
        if edit.albedo_texture is not None:
            if not len(m.uvs):
                raise RenderError(f"frame {edit.frame}: the edit has a UV texture but model {m.name!r} has no UVs")
            return Mesh(vertices, m.triangles, uvs=m.uvs, triangle_uvs=m.triangle_uvs, texture=edit.albedo_texture)
        if edit.vertex_albedo is not None:
            return Mesh(vertices, m.triangles, vertex_colors=edit.vertex_albedo)
        if getattr(m, "albedo_texture", None) is not None and len(m.uvs):
            return Mesh(vertices, m.triangles, uvs=m.uvs, triangle_uvs=m.triangle_uvs, texture=m.albedo_texture)
        return Mesh(vertices, m.triangles, vertex_colors=m.albedo_mean)

    def region_mask(self, frags, region: str) -> np.ndarray | None:
        tris = self._tris.get(region)
        if tris is None:
            return None
        m = frags.mask
        out = np.zeros(m.shape, bool)
        out[m] = tris[frags.triangle[m]]
        return out

    def _weights(self, frags) -> np.ndarray | None:
        """Pixel weights of the lighting fit: skin where the model knows it, else face minus eyes and lips."""
        skin = self.region_mask(frags, "skin")
        if skin is not None:
            return skin.astype(np.float64)
        face = self.region_mask(frags, "face")
        if face is None:
            return None
        for bad in ("eyes", "lips"):
            b = self.region_mask(frags, bad)
            if b is not None:
                face &= ~b
        return face.astype(np.float64)

    def estimate_lighting(self, plate: np.ndarray, out, fit_vertices: np.ndarray, camera: CameraModel):
        """SH lighting of ``plate`` (uint8 RGB, the pixels of the region ``out`` was rendered in, through
        ``camera``) on the *fitted* face, from a render ``out`` of the edit made with unit ambient light (its image
        is the albedo). Each pixel of that render is a surface point of the model; the same point on the fitted
        face (same triangle and barycentrics) is where the plate shows it: the plate is sampled there (bilinear)
        and explained as the albedo times SH(the fitted face's normal there), over the skin (:meth:`_weights`).
        So the performer's face is what the lighting is fitted to, as with a render of it, with no second
        render."""
        import cv2

        from .fragments import interpolate
        from .shading import vertex_normals

        frags = out.fragments
        m = frags.mask
        tris = self.model.triangles
        fv = np.asarray(fit_vertices, np.float64)
        pos = interpolate(frags, tris, camera.project(fv).astype(np.float32))  # (h, w, 2) where the plate shows it
        nrm = interpolate(frags, tris, vertex_normals(fv, tris).astype(np.float32))[m]
        nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
        v0 = fv[tris[:, 0]]
        fn = np.cross(fv[tris[:, 1]] - v0, fv[tris[:, 2]] - v0)
        back = (np.einsum("fd,fd->f", fn, v0 - camera.center) > 0)[frags.triangle[m]]
        nrm[back] *= -1  # seen from behind (inside the mouth): the side that faces the camera, as the shading does
        h, w = m.shape
        lin = srgb_to_linear(plate.astype(np.float32) / np.float32(255.0))
        seen = cv2.remap(lin, pos[..., 0], pos[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[m]
        px, py = pos[..., 0][m], pos[..., 1][m]
        inside = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
        wts = self._weights(frags)
        wts = np.ones(len(px)) if wts is None else wts[m]
        return estimate_sh_lighting(seen, out.albedo[m], nrm, wts * inside)

    def _fit_eyes(self, fit_vertices: np.ndarray, camera: CameraModel, roi: Roi) -> np.ndarray | None:
        """(h, w) bool of ``roi``: where the *fitted* face shows the model's eyes region (ray-cast in the eyes' own
        bounding box, occlusion by the rest of the face included), or None without an eyes region."""
        tris = self._tris.get("eyes")
        if tris is None:
            return None
        out = np.zeros((roi.h, roi.w), bool)
        if not tris.any():
            return out
        v = np.asarray(fit_vertices, np.float64)
        box = face_roi(camera.project(v[np.unique(self.model.triangles[tris])]), camera.image_size, margin=0.0)
        x0, y0 = max(box.x0 - 2, roi.x0), max(box.y0 - 2, roi.y0)
        x1, y1 = min(box.x0 + box.w + 2, roi.x0 + roi.w), min(box.y0 + box.h + 2, roi.y0 + roi.h)
        if x1 <= x0 or y1 <= y0:
            return out
        eyes_box = Roi(x0, y0, x1 - x0, y1 - y0)
        frags = self.renderer.rasterize(v, self.model.triangles, crop_camera(camera, eyes_box))
        out[y0 - roi.y0:y1 - roi.y0, x0 - roi.x0:x1 - roi.x0] = self.region_mask(frags, "eyes")
        return out

    def draw(self, plate: np.ndarray, fit_vertices: np.ndarray, camera: CameraModel, edit) -> DrawnEdit:
        if edit.vertices.shape != (self.model.n_vertices, 3):
            raise RenderError(f"frame {edit.frame}: edit has {edit.vertices.shape[0]} vertices, model "
                              f"{self.model.name!r} has {self.model.n_vertices}")
        H, W = plate.shape[:2]
        if tuple(camera.image_size) != (W, H):
            raise RenderError(f"plate {(H, W)} and hero camera image size {tuple(camera.image_size)[::-1]} differ",
                              hint="the calibration's hero image_size must match the plate")
        pts = camera.project(np.concatenate([np.asarray(edit.vertices, np.float64),
                                             np.asarray(fit_vertices, np.float64)]))
        roi = face_roi(pts, (W, H), margin=ROI_MARGIN)
        if roi.empty:
            raise RenderError(f"frame {edit.frame}: the face is not in the hero camera's view",
                              hint="check out/fit/ residuals and calibration.json's hero camera")
        cam = crop_camera(camera, roi)
        # one render, unit ambient light: its image is the albedo; the lighting is fitted through its fragments and
        # the face shaded from its normals (before: a second render, of the fitted face, for the lighting)
        out = self.renderer.render(self.mesh(edit.vertices, edit), cam, Lighting(ambient=np.ones(3)))
        info: dict = {}
        fit_eyes = None
        if self.mode == "plate":
            est = self.estimate_lighting(plate[roi.slices], out, fit_vertices, cam)
            lighting = est.lighting
            info["lighting"] = est.to_dict()
            fit_eyes = self._fit_eyes(fit_vertices, camera, roi)
        else:
            lighting = Lighting.key_light()
        m = out.mask
        lin = np.zeros(out.albedo.shape, np.float32)
        lin[m] = out.albedo[m] * lighting.irradiance(out.normals[m])
        face = self.region_mask(out.fragments, "face")
        cov = m if face is None else face
        eyes = self.region_mask(out.fragments, "eyes")
        exclude = eyes if fit_eyes is None or eyes is None else (eyes | fit_eyes)
        image = linear_to_srgb(lin) * m[..., None]
        skin = self.region_mask(out.fragments, "skin")
        keep = self.plate_keeps(plate[roi.slices], image, out.fragments, skin if self.mode == "plate" else None)
        exclude = keep if exclude is None else (exclude | keep)
        info["plate_kept_px"] = int(keep.sum())
        return DrawnEdit(image=image, coverage=cov.astype(np.float32), exclude=exclude, skin=skin, info=info,
                         origin=(roi.x0, roi.y0))

    def plate_keeps(self, plate: np.ndarray, image: np.ndarray, frags, skin: np.ndarray | None) -> np.ndarray:
        """(h, w) bool: pixels of the render's region (``plate`` is its crop) where the plate must stay although
        the render covers them -- inside the model's skin region (of the edit's render: the fitted face's is the
        same surface, moved by the young shape's few pixels), where the plate does not show this face's skin (a
        beard, a fringe of hair, a hand: skin segmentation on the plate decides where the edit may go), and where
        the render is a dark hole the plate does not have (nostril and mouth interiors the model opens: more than 40
        grey levels darker than the plate and below 80). ``skin``: the render's skin region, or None for the holes
        only (a render under a fixed key light, not the plate's, says nothing of where the plate shows skin)."""
        from ..retouch.skin import adaptive_skin, luminance

        import cv2

        p = plate.astype(np.float32) / np.float32(255.0)
        keep = frags.mask & (luminance(p) - luminance(image) > 40 / 255.0) & (luminance(image) < 80 / 255.0)
        if skin is not None and skin.any():
            keep |= skin & frags.mask & (adaptive_skin(p, skin) < 0.2)
        # regions, not specks: an isolated pixel kept would punch a feathered hole in the mask
        face_px = float(np.sqrt(max(frags.mask.sum(), 1)))
        r = max(1, int(round(0.01 * face_px)))
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        keep = cv2.morphologyEx(keep.astype(np.uint8), cv2.MORPH_OPEN, k)
        n, lab, stats, _ = cv2.connectedComponentsWithStats(keep, connectivity=8)
        small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < 0.002 * face_px * face_px)
        return (keep > 0) & ~np.isin(lab, small)
