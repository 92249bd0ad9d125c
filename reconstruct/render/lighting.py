"""Estimating the plate's lighting of the face: order-2 spherical-harmonics (SH) irradiance, 9 coefficients per
channel, by least squares over the visible face pixels.

Model (Lambertian, distant light; Ramamoorthi & Hanrahan 2001, "An efficient representation for irradiance
environment maps"), the same one :class:`reconstruct.render.shading.Lighting` shades with:

    I_c(p) = albedo_c(p) * sum_{k<9} sh[k, c] * Y_k(n(p))          (linear RGB, world-frame unit normal n)

Given the plate (decoded to linear RGB), the fitted face's per-pixel normals and an albedo (the method's albedo
rendered onto the fitted geometry), :func:`estimate_sh_lighting` solves ``sh`` per channel by weighted,
ridge-regularised least squares, then re-weights (Tukey biweight on the residual) so that eyes, teeth, hair,
highlights and fit errors that the model cannot explain lose their weight. :func:`estimate_plate_lighting` does
the rasterizing for a mesh and a camera. The result is a :class:`~reconstruct.render.shading.Lighting` with zero
ambient and no directional lights (``sh`` only), so every renderer backend shades with it.

A note on what is identifiable: albedo and lighting are ambiguous up to a per-channel factor of low spatial
frequency. Estimating the plate lighting *with the albedo that will be rendered* makes that factor cancel: the
render of that albedo under the estimate best matches the plate's face colour in the least-squares sense.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import RenderError
from .shading import Lighting, sh_basis, srgb_to_linear

log = logging.getLogger(__name__)

_BAND_WEIGHT = np.array([1.0, 2, 2, 2, 4, 4, 4, 4, 4])  # ridge per SH band: higher bands shrink more


@dataclass(frozen=True, slots=True, eq=False)
class LightingEstimate:
    """The plate lighting of one frame.

    Attributes:
        lighting: SH-only :class:`Lighting` (world frame, linear RGB irradiance; ``sh`` (9, 3)).
        rms: RMS linear-RGB residual over the pixels kept after re-weighting.
        n_pixels: pixels with positive weight in the final pass.
    """

    lighting: Lighting
    rms: float
    n_pixels: int

    def to_dict(self) -> dict:
        return {"sh": np.asarray(self.lighting.sh).tolist(), "rms": self.rms, "n_pixels": self.n_pixels,
                "frame": "world"}

    @classmethod
    def from_dict(cls, d: dict) -> "LightingEstimate":
        return cls(lighting=Lighting(ambient=np.zeros(3), sh=np.asarray(d["sh"], np.float64)),
                   rms=float(d.get("rms", float("nan"))), n_pixels=int(d.get("n_pixels", 0)))


def estimate_sh_lighting(radiance: np.ndarray, albedo: np.ndarray, normals: np.ndarray, weights=None, *,
                         ridge: float = 1e-3, iterations: int = 3, min_pixels: int = 50) -> LightingEstimate:
    """Least-squares order-2 SH irradiance from pixels of a lit Lambertian surface.

    Args:
        radiance: (N, 3) linear RGB observed at N pixels (the plate through :func:`srgb_to_linear`).
        albedo: (N, 3) linear RGB albedo at those pixels.
        normals: (N, 3) unit world-frame normals there.
        weights: (N,) non-negative prior weights (e.g. 0 off the skin), or None for all 1.
        ridge: Tikhonov weight relative to the mean diagonal of the normal equations (band 1 gets 2x, band 2 4x),
            so directions the face does not show fall back towards ambient light instead of exploding.
        iterations: Tukey re-weighting passes after the first solve (scale 4.685 x 1.4826 MAD of the residual).
        min_pixels: fewer usable pixels is an error.
    """
    y = np.asarray(radiance, np.float64).reshape(-1, 3)
    rho = np.asarray(albedo, np.float64).reshape(-1, 3)
    n = np.asarray(normals, np.float64).reshape(-1, 3)
    if not (y.shape == rho.shape == n.shape):
        raise RenderError(f"estimate_sh_lighting: radiance {y.shape}, albedo {rho.shape} and normals {n.shape} "
                          "must all be (N, 3)")
    w0 = np.ones(len(y)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    ok = (w0 > 0) & np.isfinite(y).all(1) & np.isfinite(rho).all(1) & np.isfinite(n).all(1) & (rho.sum(1) > 1e-4)
    if ok.sum() < min_pixels:
        raise RenderError(f"lighting estimate: only {int(ok.sum())} usable face pixels (need {min_pixels})",
                          hint="the face is too small or not visible in the plate; check the fit and hero camera")
    y, rho, B, w0 = y[ok], rho[ok], sh_basis(n[ok]), w0[ok]
    sh = np.zeros((9, 3))
    w = w0.copy()
    resid = np.zeros_like(y)
    for it in range(iterations + 1):
        for c in range(3):
            A = rho[:, c:c + 1] * B  # (N, 9)
            Aw = A * w[:, None]
            AtA = Aw.T @ A
            lam = ridge * max(np.trace(AtA) / 9.0, 1e-12)
            sh[:, c] = np.linalg.solve(AtA + lam * np.diag(_BAND_WEIGHT), Aw.T @ y[:, c])
            resid[:, c] = A @ sh[:, c] - y[:, c]
        if it == iterations:
            break
        r = np.linalg.norm(resid, axis=1)
        scale = 4.685 * (1.4826 * np.median(np.abs(r - np.median(r))) + 1e-6)
        u = r / scale
        w = w0 * np.where(u < 1.0, (1.0 - u * u) ** 2, 0.0)
    used = w > 0
    rms = float(np.sqrt(np.mean(resid[used] ** 2))) if used.any() else float("nan")
    log.debug("SH lighting: %d pixels, %d kept, rms %.4f", len(y), int(used.sum()), rms)
    return LightingEstimate(lighting=Lighting(ambient=np.zeros(3), sh=sh), rms=rms, n_pixels=int(used.sum()))


def estimate_plate_lighting(renderer, mesh, camera, plate: np.ndarray, weight_per_vertex: np.ndarray | None = None,
                            **kwargs) -> LightingEstimate:
    """Lighting of ``plate`` on the face ``mesh`` (fitted geometry in world metres, with the albedo to explain it)
    seen through ``camera``.

    Args:
        renderer: a renderer backend (``rasterize``/``render``).
        mesh: :class:`reconstruct.render.Mesh` with vertex colours or a texture (linear RGB albedo).
        camera: the hero camera.
        plate: (H, W, 3) uint8 RGB (sRGB-encoded) or float linear RGB.
        weight_per_vertex: (V,) prior weights (e.g. 1 on skin, 0 on eyes and lips), interpolated per pixel.
        kwargs: passed to :func:`estimate_sh_lighting`.
    """
    from .fragments import interpolate

    out = renderer.render(mesh, camera, Lighting(ambient=np.ones(3)))  # ambient 1: image == albedo
    m = out.mask
    lin = srgb_to_linear(plate.astype(np.float32) / 255.0) if plate.dtype == np.uint8 else np.asarray(plate, np.float32)
    if lin.shape[:2] != m.shape:
        raise RenderError(f"plate {lin.shape[:2]} and camera image size {m.shape} differ",
                          hint="render through the camera that shot the plate")
    w = None
    if weight_per_vertex is not None:
        w = interpolate(out.fragments, mesh.triangles, np.asarray(weight_per_vertex, np.float32))[m]
    return estimate_sh_lighting(lin[m], out.albedo[m], out.normals[m], w, **kwargs)
