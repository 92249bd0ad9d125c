"""A synthetic digital-human scene built directly with the renderer and known parameters (no detector, no fit
stage): performer A (old) on the plate, young identity B with a known UV albedo, young stills of B."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reconstruct.camera import CameraModel
from reconstruct.conventions import rodrigues
from reconstruct.face.model import FaceModel

def load_ict(n_identity: int = 30) -> FaceModel:
    """The ICT light face-area model (the project's loader: metres, ibug68 map, regions), first ``n_identity``
    identity modes, no baked texture."""
    from dataclasses import replace

    from reconstruct.assets import ict_light_path
    from reconstruct.face.ict import load_ict_light

    m = load_ict_light(ict_light_path(), texture_size=0)
    return replace(m, identity_basis=m.identity_basis[:n_identity])


def albedo_texture(size: int, seed: int, aged: bool = False) -> np.ndarray:
    """A skin-like linear-RGB UV albedo: base tone, smooth variation, freckles; ``aged`` adds dark spots and a
    slightly different tone (the same person, older)."""
    import cv2

    rng = np.random.default_rng(seed)
    base = np.array([0.55, 0.36, 0.27], np.float32)
    low = cv2.GaussianBlur(rng.normal(size=(size, size, 3)).astype(np.float32), (0, 0), size / 16)
    low *= 0.08 / (low.std() + 1e-9)
    mid = cv2.GaussianBlur(rng.normal(size=(size, size, 1)).astype(np.float32), (0, 0), size / 128)[..., None]
    mid = mid.reshape(size, size, 1) * (0.04 / (mid.std() + 1e-9))
    tex = base * (1 + low) * (1 + mid)
    if aged:
        spots = cv2.GaussianBlur((rng.random((size, size)) > 0.997).astype(np.float32), (0, 0), size / 200)
        tex = tex * (1 - 0.5 * np.clip(spots / (spots.max() + 1e-9), 0, 1))[..., None] * np.array([0.97, 0.95, 0.95])
    return np.clip(tex, 0.02, 1).astype(np.float32)


@dataclass
class Scene:
    model: FaceModel
    id_a: np.ndarray
    id_b: np.ndarray
    tex_a: np.ndarray
    tex_b: np.ndarray
    hero: CameraModel
    expression: np.ndarray
    R: np.ndarray
    t: np.ndarray


def head_pose(yaw_deg: float, pitch_deg: float = 0.0, dist: float = 0.6):
    """Model -> world pose: model frame is +y up, +z out of the face; world is OpenCV-like (y down), the camera at
    the origin looking down +z, so the face must turn around to look at it."""
    flip = np.diag([1.0, -1.0, -1.0])  # model +y up -> world -y; model +z (face front) -> world -z (towards camera)
    R = rodrigues(np.radians([pitch_deg, yaw_deg, 0.0])) @ flip
    return R, np.array([0.0, 0.0, dist])


def make_scene(model: FaceModel, w: int = 640, h: int = 480, seed: int = 0) -> Scene:
    rng = np.random.default_rng(seed)
    ki = model.n_identity
    id_a = rng.normal(size=ki)
    id_b = id_a * 0.6 + rng.normal(size=ki) * 0.8  # a related but different face
    f = 1.6 * w
    hero = CameraModel("hero", K=np.array([[f, 0, w / 2 - 3.5], [0, f, h / 2 + 2.0], [0, 0, 1]]),
                       dist=np.array([-0.05, 0.02, 0, 0, 0]), image_size=(w, h))
    expr = np.zeros(model.n_expression)
    expr[rng.choice(model.n_expression, 6, replace=False)] = rng.uniform(0.1, 0.5, 6)
    R, t = head_pose(12.0, -5.0)
    return Scene(model, id_a, id_b, albedo_texture(512, seed + 1, aged=True), albedo_texture(512, seed + 1), hero,
                 expr, R, t)


def world(model, identity, expression, R, t):
    return model.vertices(identity, expression) @ R.T + t


def background(w: int, h: int, seed: int = 3) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 9) * 0.5 + 0.2
    return np.clip(bg, 0, 1)


def render_srgb(renderer, model, verts, tex, cam, lighting, bg=None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 sRGB render over ``bg`` (float linear (H, W, 3)) and the coverage mask."""
    from reconstruct.render import Mesh, linear_to_srgb

    out = renderer.render(Mesh(verts, model.triangles, uvs=model.uvs, triangle_uvs=model.triangle_uvs, texture=tex),
                          cam, lighting)
    img = out.image if bg is None else np.where(out.mask[..., None], out.image, bg)
    return np.round(linear_to_srgb(img) * 255).astype(np.uint8), out.mask
