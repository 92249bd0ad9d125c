"""Drawing a "mesh" face edit (:class:`reconstruct.methods.FaceEdit`) through the hero camera, lit like the plate.

:class:`MeshEditDrawer` estimates the plate's SH lighting on the *fitted* face (the performer's geometry, with the
edit's albedo; :mod:`.lighting`) and renders the edit's geometry and albedo with it. It returns the sRGB image,
the coverage of the face region, the pixels the plate must keep (the model's ``eyes`` region in the edit or the
fit: the performance's eyes) and the skin region where the model defines one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..camera import CameraModel
from ..errors import RenderError
from .base import Mesh
from .lighting import estimate_sh_lighting
from .shading import Lighting, linear_to_srgb, srgb_to_linear

LIGHTING_MODES = ("plate", "key")


@dataclass(frozen=True, slots=True, eq=False)
class DrawnEdit:
    """A drawn mesh edit, hero-plate sized.

    Attributes:
        image: (H, W, 3) float32 sRGB in [0, 1] (0 outside coverage).
        coverage: (H, W) float32 in {0, 1}, the face region of the edit.
        exclude: (H, W) bool, pixels that keep the plate (eyes), or None when the model has no eyes region.
        skin: (H, W) bool skin region, or None.
        info: lighting coefficients and residual (JSON-serialisable).
    """

    image: np.ndarray
    coverage: np.ndarray
    exclude: np.ndarray | None
    skin: np.ndarray | None
    info: dict = field(default_factory=dict)


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

    def estimate_lighting(self, plate: np.ndarray, fit_vertices: np.ndarray, camera: CameraModel, edit):
        """SH lighting of ``plate`` (uint8 RGB) on the fitted face, explained with the edit's albedo."""
        fit_out = self.renderer.render(self.mesh(fit_vertices, edit), camera, Lighting(ambient=np.ones(3)))
        m = fit_out.mask
        w = self._weights(fit_out.fragments)
        lin = srgb_to_linear(plate.astype(np.float32) / 255.0)
        if lin.shape[:2] != m.shape:
            raise RenderError(f"plate {lin.shape[:2]} and hero camera image size {m.shape} differ",
                              hint="the calibration's hero image_size must match the plate")
        est = estimate_sh_lighting(lin[m], fit_out.albedo[m], fit_out.normals[m], None if w is None else w[m])
        return est, fit_out.fragments

    def draw(self, plate: np.ndarray, fit_vertices: np.ndarray, camera: CameraModel, edit) -> DrawnEdit:
        if edit.vertices.shape != (self.model.n_vertices, 3):
            raise RenderError(f"frame {edit.frame}: edit has {edit.vertices.shape[0]} vertices, model "
                              f"{self.model.name!r} has {self.model.n_vertices}")
        info: dict = {}
        fit_eyes = fit_frags = None
        if self.mode == "plate":
            est, fit_frags = self.estimate_lighting(plate, fit_vertices, camera, edit)
            lighting = est.lighting
            info["lighting"] = est.to_dict()
            fit_eyes = self.region_mask(fit_frags, "eyes")
        else:
            lighting = Lighting.key_light()
        out = self.renderer.render(self.mesh(edit.vertices, edit), camera, lighting)
        face = self.region_mask(out.fragments, "face")
        cov = out.mask if face is None else face
        eyes = self.region_mask(out.fragments, "eyes")
        exclude = eyes if fit_eyes is None or eyes is None else (eyes | fit_eyes)
        image = linear_to_srgb(out.image) * out.mask[..., None]
        keep = self.plate_keeps(plate, image, out.fragments, fit_frags)
        if keep is not None:
            exclude = keep if exclude is None else (exclude | keep)
            info["plate_kept_px"] = int(keep.sum())
        return DrawnEdit(image=image, coverage=cov.astype(np.float32), exclude=exclude,
                         skin=self.region_mask(out.fragments, "skin"), info=info)

    def plate_keeps(self, plate: np.ndarray, image: np.ndarray, frags, fit_frags=None) -> np.ndarray | None:
        """(H, W) bool: pixels where the plate must stay although the render covers them -- inside the performer's
        fitted skin region, where the plate does not show this face's skin (a beard, a fringe of hair, a hand:
        skin segmentation on the plate decides where the edit may go; needs the fit's fragments), and where the
        render is a dark hole the plate does not have (nostril and mouth interiors the model opens: more than 40
        grey levels darker than the plate and below 80)."""
        from ..retouch.skin import adaptive_skin, luminance

        import cv2

        p = plate.astype(np.float32) / np.float32(255.0)
        keep = frags.mask & (luminance(p) - luminance(image) > 40 / 255.0) & (luminance(image) < 80 / 255.0)
        fit_skin = self.region_mask(fit_frags, "skin") if fit_frags is not None else None
        if fit_skin is not None and fit_skin.any():
            keep |= fit_skin & frags.mask & (adaptive_skin(p, fit_skin) < 0.2)
        # regions, not specks: an isolated pixel kept would punch a feathered hole in the mask
        face_px = float(np.sqrt(max(frags.mask.sum(), 1)))
        r = max(1, int(round(0.01 * face_px)))
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        keep = cv2.morphologyEx(keep.astype(np.uint8), cv2.MORPH_OPEN, k)
        n, lab, stats, _ = cv2.connectedComponentsWithStats(keep, connectivity=8)
        small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < 0.002 * face_px * face_px)
        return (keep > 0) & ~np.isin(lab, small)
