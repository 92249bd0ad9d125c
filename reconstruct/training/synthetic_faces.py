"""Procedural 2D faces with a known identity, pose, expression and age: training and test data for the learned
aging methods when no real pairs exist.

These are drawings, not renders of a 3D face: an ellipsoid-shaded face with eyes, brows, nose, lips and hair,
plus an *age* that adds procedural ageing marks (forehead lines, crow's feet, nasolabial folds, under-eye
shadows, age spots, a desaturated skin tone and greying hair). They give exact ground truth (same face at two
ages; the 5 alignment points; skin and face masks), which is what the FRAN and deepfake tests need. They say
nothing about how well a network does on real footage.

Face coordinates: origin at the face centre, ``u`` to image right, ``v`` down, in units of the image size at
``pose.scale = 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates


@dataclass(frozen=True, slots=True)
class FaceIdentity:
    """What makes one synthetic person look like themselves. Colours are sRGB in [0, 1]; sizes in face units."""

    skin: tuple[float, float, float] = (0.88, 0.70, 0.60)
    hair: tuple[float, float, float] = (0.30, 0.20, 0.12)
    eyes: tuple[float, float, float] = (0.25, 0.35, 0.55)
    lips: tuple[float, float, float] = (0.70, 0.35, 0.35)
    face_w: float = 0.34
    face_h: float = 0.46
    eye_dx: float = 0.12
    eye_y: float = -0.06
    brow_thick: float = 0.022
    mouth_w: float = 0.10
    nose_w: float = 0.035
    seed: int = 0  # fixes skin texture, wrinkle jitter and age-spot positions


#: Two clearly different people for identity tests (pale, wide face, thin fair brows, blue eyes vs dark skin,
#: long narrow face, thick black brows, brown eyes, full lips).
IDENTITY_A = FaceIdentity(skin=(0.93, 0.78, 0.68), hair=(0.80, 0.66, 0.40), eyes=(0.30, 0.50, 0.85),
                          lips=(0.85, 0.50, 0.50), face_w=0.37, face_h=0.43, eye_dx=0.13, brow_thick=0.012,
                          mouth_w=0.09, nose_w=0.03, seed=11)
IDENTITY_B = FaceIdentity(skin=(0.52, 0.35, 0.25), hair=(0.06, 0.05, 0.05), eyes=(0.30, 0.18, 0.08),
                          lips=(0.55, 0.22, 0.22), face_w=0.30, face_h=0.49, eye_dx=0.105, brow_thick=0.035,
                          mouth_w=0.12, nose_w=0.045, seed=22)


@dataclass(frozen=True, slots=True)
class FacePose:
    """In-plane pose and expression. ``angle`` degrees (counter-clockwise on screen), ``scale`` relative,
    ``tx``/``ty`` offsets in image fractions; ``mouth_open`` in [0, 1]; ``brow_raise`` face units; ``light``
    horizontal key-light direction in [-1, 1]."""

    angle: float = 0.0
    scale: float = 1.0
    tx: float = 0.0
    ty: float = 0.0
    mouth_open: float = 0.0
    brow_raise: float = 0.0
    light: float = 0.3


@dataclass(frozen=True, slots=True, eq=False)
class FaceSample:
    """One drawn face. image: (S, S, 3) float32 sRGB [0, 1]; points5: (5, 2) float64 pixels (template order);
    face_mask, skin_mask: (S, S) float32 in [0, 1]."""

    image: np.ndarray
    points5: np.ndarray
    face_mask: np.ndarray
    skin_mask: np.ndarray


def random_identity(rng: np.random.Generator) -> FaceIdentity:
    """A random plausible identity (used for FRAN's many-person pair sets)."""
    tone = rng.uniform(0.35, 1.0)
    skin = np.clip(np.array([0.95, 0.78, 0.66]) * tone + rng.normal(0, 0.03, 3), 0.05, 1.0)
    hair = np.clip(rng.uniform(0.03, 0.75) * np.array([1.0, 0.8, 0.55]) + rng.normal(0, 0.03, 3), 0, 1)
    return FaceIdentity(skin=tuple(skin), hair=tuple(hair), eyes=tuple(rng.uniform(0.1, 0.7, 3)),
                        lips=tuple(np.clip(skin * np.array([0.85, 0.55, 0.6]), 0, 1)),
                        face_w=rng.uniform(0.30, 0.38), face_h=rng.uniform(0.42, 0.49),
                        eye_dx=rng.uniform(0.10, 0.135), eye_y=rng.uniform(-0.08, -0.04),
                        brow_thick=rng.uniform(0.012, 0.035), mouth_w=rng.uniform(0.08, 0.12),
                        nose_w=rng.uniform(0.028, 0.045), seed=int(rng.integers(1 << 30)))


def random_pose(rng: np.random.Generator, amount: float = 1.0) -> FacePose:
    return FacePose(angle=rng.uniform(-10, 10) * amount, scale=1.0 + rng.uniform(-0.12, 0.08) * amount,
                    tx=rng.uniform(-0.04, 0.04) * amount, ty=rng.uniform(-0.04, 0.04) * amount,
                    mouth_open=float(rng.uniform(0, 1) if amount else 0.0),
                    brow_raise=rng.uniform(-0.01, 0.02) * amount,
                    light=rng.uniform(-0.6, 0.6))


def _soft(d: np.ndarray, px: float) -> np.ndarray:
    """Anti-aliased inside test: d < 0 inside, ``px`` = one pixel in face units."""
    return np.clip(0.5 - d / px, 0.0, 1.0)


def _line(dist: np.ndarray, width: float) -> np.ndarray:
    return np.exp(-0.5 * (dist / width) ** 2)


def draw_face(identity: FaceIdentity, pose: FacePose, age: float, size: int = 64,
              background_seed: int = 0) -> FaceSample:
    """Draw ``identity`` at ``age`` (years; marks grow from 20 to 80) in ``pose`` on a ``size`` px square."""
    S = int(size)
    a = float(np.clip((age - 20.0) / 60.0, 0.0, 1.0))
    th = np.deg2rad(pose.angle)
    c, s = np.cos(th), np.sin(th)
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float64)
    # pixel -> face coordinates (inverse of p = S * (0.5 + scale * R @ q + t) - 0.5)
    px_ = (xx + 0.5) / S - 0.5 - pose.tx
    py_ = (yy + 0.5) / S - 0.5 - pose.ty
    u = (c * px_ - s * py_) / pose.scale
    v = (s * px_ + c * py_) / pose.scale
    pix = 1.0 / (S * pose.scale)
    lw = max(0.006, 0.6 * pix)  # ageing-line width: at least ~half a pixel
    idn = identity
    rng = np.random.default_rng(idn.seed)
    jit = rng.normal(0, 0.008, 16)

    # background: vertical gradient with a per-frame colour and noise
    brng = np.random.default_rng(background_seed)
    bg0, bg1 = brng.uniform(0.1, 0.6, 3), brng.uniform(0.1, 0.6, 3)
    t = (yy / S)[..., None]
    img = bg0 * (1 - t) + bg1 * t + brng.normal(0, 0.01, (S, S, 3))

    # head ellipsoid and its shading
    r2 = (u / idn.face_w) ** 2 + (v / idn.face_h) ** 2
    face = _soft(np.sqrt(r2) - 1.0, pix / min(idn.face_w, idn.face_h))
    nz = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
    nx = np.clip(u / idn.face_w, -1, 1)
    shade = 0.62 + 0.30 * nz + 0.18 * pose.light * nx
    skin = np.array(idn.skin)
    lum = skin @ np.array([0.299, 0.587, 0.114])
    skin_aged = (skin * (1 - 0.35 * a) + lum * 0.35 * a) * (1 - 0.10 * a) + np.array([0.03, 0.02, -0.02]) * a
    tex_field = gaussian_filter(rng.normal(0, 1, (48, 48)), 1.0)
    tex = map_coordinates(tex_field, [(v + 0.5) * 47, (u + 0.5) * 47], order=1, mode="reflect")
    col = skin_aged * shade[..., None] * (1 + 0.03 * tex[..., None])

    # ageing marks (darkening factors), fixed in face coordinates so they move with the face
    dark = np.zeros_like(u)
    for k, v0 in enumerate((-0.29, -0.24, -0.19)):
        line = v0 + jit[k] + 0.02 * np.cos(np.pi * u / 0.25)
        dark += 0.35 * _line(v - line, lw) * (np.abs(u) < 0.20 - 0.02 * k)
    for side in (-1, 1):
        ex, ey = side * (idn.eye_dx + 0.095), idn.eye_y
        for k, ang in enumerate((-0.5, 0.0, 0.5)):
            dx, dy = u - ex, v - ey
            along = side * (dx * np.cos(ang) + side * dy * np.sin(ang))
            across = -dx * np.sin(ang) * side + dy * np.cos(ang)
            dark += 0.30 * _line(across, lw) * (along > -0.005) * (along < 0.045)
        # nasolabial fold: nose wing to outside the mouth corner
        p0 = np.array([side * (idn.nose_w + 0.03), 0.10])
        p1 = np.array([side * (idn.mouth_w + 0.035), 0.27 + jit[4]])
        d = p1 - p0
        tt = np.clip(((u - p0[0]) * d[0] + (v - p0[1]) * d[1]) / (d @ d), 0, 1)
        dist = np.hypot(u - (p0[0] + tt * d[0]), v - (p0[1] + tt * d[1]))
        dark += 0.35 * _line(dist, 1.3 * lw)
        # under-eye shadow
        dark += 0.22 * np.exp(-(((u - side * idn.eye_dx) / 0.06) ** 2 + ((v - idn.eye_y - 0.06) / 0.02) ** 2))
    spots = rng.uniform([-0.25, -0.3], [0.25, 0.3], (8, 2))
    for su, sv in spots:
        dark += 0.25 * np.exp(-(((u - su) ** 2 + (v - sv) ** 2) / (2 * max(0.012, 0.8 * pix) ** 2)))
    col = col * (1 - np.clip(a * dark, 0, 0.8))[..., None]

    grey = np.array([0.72, 0.72, 0.72])
    hair = np.array(idn.hair) * (1 - 0.6 * a) + grey * 0.6 * a  # partial greying: still invertible
    # hair cap above the hairline
    hairline = -idn.face_h * 0.62 + 0.03 * np.cos(np.pi * u / idn.face_w)
    hair_m = face * _soft(v - hairline, pix)
    # brows
    brow_m = np.zeros_like(u)
    by = idn.eye_y - 0.085 - pose.brow_raise
    for side in (-1, 1):
        bu = u - side * idn.eye_dx
        arch = by - 0.015 * (1 - (bu / 0.08) ** 2)
        brow_m = np.maximum(brow_m, _soft(np.abs(v - arch) - idn.brow_thick / 2, pix) * _soft(np.abs(bu) - 0.08, pix))
    # eyes (white, iris, pupil)
    eye_m = np.zeros_like(u)
    iris_m = np.zeros_like(u)
    pupil_m = np.zeros_like(u)
    for side in (-1, 1):
        eu, ev = u - side * idn.eye_dx, v - idn.eye_y
        eye_m = np.maximum(eye_m, _soft(np.hypot(eu / 0.065, ev / 0.03) - 1, pix / 0.03))
        iris_m = np.maximum(iris_m, _soft(np.hypot(eu, ev) - 0.025, pix))
        pupil_m = np.maximum(pupil_m, _soft(np.hypot(eu, ev) - 0.011, pix))
    iris_m *= eye_m
    pupil_m *= eye_m
    # nose shading and nostrils
    nose_m = 0.18 * _line(u - 0.3 * idn.nose_w, max(0.008, pix)) * (v > -0.04) * (v < 0.10)
    nostril_m = np.zeros_like(u)
    for side in (-1, 1):
        nostril_m = np.maximum(nostril_m, _soft(np.hypot((u - side * idn.nose_w * 0.8) / 0.016,
                                                         (v - 0.115) / 0.009) - 1, pix / 0.009))
    # lips and open mouth
    my = 0.24
    lip_h = 0.022 + 0.03 * pose.mouth_open
    lip_m = _soft(np.hypot(u / idn.mouth_w, (v - my) / lip_h) - 1, pix / lip_h)
    inner_h = 0.024 * pose.mouth_open
    inner_m = _soft(np.hypot(u / (0.8 * idn.mouth_w), (v - my) / max(inner_h, 1e-3)) - 1,
                    pix / max(inner_h, 1e-3)) * (pose.mouth_open > 0.05)

    col = col * (1 - nose_m[..., None])
    col = col * (1 - nostril_m[..., None]) + np.array([0.15, 0.07, 0.06]) * nostril_m[..., None]
    col = col * (1 - lip_m[..., None]) + (np.array(idn.lips) * shade[..., None]) * lip_m[..., None]
    col = col * (1 - inner_m[..., None]) + np.array([0.12, 0.03, 0.03]) * inner_m[..., None]
    eye_col = np.array([0.93, 0.92, 0.90]) * (1 - iris_m[..., None]) + np.array(idn.eyes) * iris_m[..., None]
    eye_col = eye_col * (1 - pupil_m[..., None]) + 0.05 * pupil_m[..., None]
    col = col * (1 - eye_m[..., None]) + eye_col * eye_m[..., None]
    col = col * (1 - brow_m[..., None]) + (hair * 0.8) * brow_m[..., None]
    col = col * (1 - hair_m[..., None]) + (hair * shade[..., None]) * hair_m[..., None]
    img = img * (1 - face[..., None]) + col * face[..., None]

    skin_m = face * (1 - hair_m) * (1 - brow_m) * (1 - eye_m) * (1 - lip_m) * (1 - nostril_m)
    pts_face = np.array([[-idn.eye_dx, idn.eye_y], [idn.eye_dx, idn.eye_y], [0.0, 0.11],
                         [-idn.mouth_w, my], [idn.mouth_w, my]])
    pts = np.empty_like(pts_face)
    pts[:, 0] = S * (0.5 + pose.tx + pose.scale * (c * pts_face[:, 0] + s * pts_face[:, 1])) - 0.5
    pts[:, 1] = S * (0.5 + pose.ty + pose.scale * (-s * pts_face[:, 0] + c * pts_face[:, 1])) - 0.5
    return FaceSample(image=np.clip(img, 0, 1).astype(np.float32), points5=pts,
                      face_mask=face.astype(np.float32), skin_mask=np.clip(skin_m, 0, 1).astype(np.float32))


def footage(identity: FaceIdentity, frames: int, size: int = 96, age: float = 30.0, seed: int = 0,
            amount: float = 1.0) -> list[FaceSample]:
    """A "shot" of ``frames`` frames: pose, expression and light drift smoothly (random walk), background fixed."""
    rng = np.random.default_rng(seed)
    out = []
    p = random_pose(rng, amount)
    bg = int(rng.integers(1 << 30))
    for _ in range(frames):
        q = random_pose(rng, amount)
        p = FacePose(*(0.7 * np.array([p.angle, p.scale, p.tx, p.ty, p.mouth_open, p.brow_raise, p.light])
                       + 0.3 * np.array([q.angle, q.scale, q.tx, q.ty, q.mouth_open, q.brow_raise, q.light])))
        out.append(draw_face(identity, p, age, size, background_seed=bg))
    return out
