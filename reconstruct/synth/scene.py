"""The synthetic scene: a posed, textured face model plus eyeballs behind its eye openings, and the key light.

Frames: the model frame is the face model's (metres, +y up, +z out of the face); a head pose ``(R, t)`` maps it to
the world (OpenCV-convention world, metres, y down): ``X_world = R @ X_model + t``. :data:`FACE_FORWARD` is the
rotation of the neutral pose (face looking along world -z, up = world -y), the cameras sit at negative z.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..face.features import EYE_L, EYE_R
from ..face.model import FaceModel
from ..render import Lighting, Mesh
from ..render.shading import srgb_to_linear

#: Model frame (y up, z out of the face) -> world (y down), face looking towards -z.
FACE_FORWARD = np.diag([1.0, -1.0, -1.0])
EYEBALL_RADIUS = 0.0115


@lru_cache(maxsize=4)
def _unit_eyeball(rings: int = 36, segments: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A unit sphere around +z (pole = gaze direction) with sclera/iris/pupil vertex colours."""
    th = np.linspace(0, np.pi, rings + 1)  # angle from the gaze axis
    ph = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    T, P = np.meshgrid(th, ph, indexing="ij")
    v = np.stack([np.sin(T) * np.cos(P), np.sin(T) * np.sin(P), np.cos(T)], axis=-1).reshape(-1, 3)
    f = []
    for i in range(rings):
        for j in range(segments):
            a, b = i * segments + j, i * segments + (j + 1) % segments
            c, d = a + segments, b + segments
            f += [[a, c, b], [b, c, d]]
    ang = np.degrees(T.ravel())
    col = np.tile(srgb_to_linear(np.array([222, 218, 210]) / 255.0), (len(v), 1))
    col[ang < 30] = srgb_to_linear(np.array([92, 62, 42]) / 255.0)
    col[ang < 12] = srgb_to_linear(np.array([10, 8, 8]) / 255.0)
    return v, np.array(f, np.int32), col.astype(np.float32)


def eyeball_meshes(model: FaceModel, vertices: np.ndarray, gaze: np.ndarray | None = None) -> list[Mesh]:
    """Two eyeballs (model frame) behind the eye openings of ``vertices`` (a posed-in-model-frame shape).

    Needs the model's ``ibug68`` landmarks; ``gaze`` is a (3,) model-frame direction (default +z, straight ahead).
    """
    lm = model.landmark_map("ibug68").points(np.asarray(vertices, np.float64), model.triangles)
    v, f, col = _unit_eyeball()
    g = np.array([0.0, 0.0, 1.0]) if gaze is None else np.asarray(gaze, float) / np.linalg.norm(gaze)
    # rotation taking +z to the gaze direction (Rodrigues)
    axis = np.cross([0, 0, 1.0], g)
    s, c = np.linalg.norm(axis), g[2]
    if s < 1e-9:
        Rg = np.eye(3)
    else:
        k = axis / s
        K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        Rg = np.eye(3) + s * K + (1 - c) * K @ K
    out = []
    for eye in (EYE_R, EYE_L):
        pts = lm[eye]
        centre = pts.mean(0)
        centre[2] = pts[:, 2].max() + 0.0015 - EYEBALL_RADIUS
        out.append(Mesh((v @ Rg.T) * EYEBALL_RADIUS + centre, f, vertex_colors=col))
    return out


@dataclass(frozen=True, slots=True, eq=False)
class HeadState:
    """One frame of the performance: coefficients and head pose (model frame -> world, metres); ``gaze``: (3,)
    model-frame unit direction both eyes look in (None: straight ahead, +z)."""

    identity: np.ndarray
    expression: np.ndarray
    R: np.ndarray
    t: np.ndarray
    gaze: np.ndarray | None = None


def posed_meshes(model: FaceModel, state: HeadState) -> tuple[np.ndarray, list[Mesh]]:
    """World-frame vertices of the face and the list of meshes to render (textured face + eyeballs)."""
    vm = model.vertices(state.identity, state.expression)
    vw = vm @ state.R.T + state.t
    face = Mesh(vw, model.triangles, vertex_colors=model.albedo_mean,
                uvs=model.uvs if model.albedo_texture is not None else None,
                triangle_uvs=model.triangle_uvs if model.albedo_texture is not None else None,
                texture=model.albedo_texture)
    meshes = [face]
    if has_holes(model):
        # the eyeballs sit in the skull: placed from the neutral shape of this identity, so that blinks, squints
        # and wide eyes move the lids over them, not the eyeballs themselves
        neutral = model.vertices(state.identity)
        for eb in eyeball_meshes(model, neutral, state.gaze) + [mouth_interior(model, vm)]:
            meshes.append(Mesh(eb.vertices @ state.R.T + state.t, eb.triangles, vertex_colors=eb.vertex_colors))
    return vw, meshes


def has_holes(model: FaceModel) -> bool:
    """Whether the model's surface is open at the eyes and mouth (ICT-FaceKit's face area), so the scene needs
    eyeballs and a mouth interior behind them. The demo model is closed (painted eyes)."""
    return "ibug68" in model.landmarks and model.name != "demo"


def mouth_interior(model: FaceModel, vertices: np.ndarray) -> Mesh:
    """A dark ellipsoid behind the lips (model frame), seen through an open mouth."""
    lm = model.landmark_map("ibug68").points(np.asarray(vertices, np.float64), model.triangles)
    lips = lm[48:60]
    width = float(np.ptp(lips[:, 0]))
    v, f, _ = _unit_eyeball(12, 24)
    centre = lips.mean(0) - np.array([0.0, 0.0, 0.028])
    col = np.tile(srgb_to_linear(np.array([58, 22, 24]) / 255.0), (len(v), 1)).astype(np.float32)
    return Mesh(v * np.array([0.6 * width, 0.025, 0.024]) + centre, f, vertex_colors=col)


def key_light(seed: int = 0) -> Lighting:
    """A directional key light from above-front-left plus fill (ambient), world frame."""
    return Lighting(ambient=np.full(3, 0.32), directions=np.array([[-0.45, -0.55, -1.0]]),
                    colors=np.array([[0.78, 0.76, 0.72]]))
