"""Synthetic fitting scenes with known cameras and known model parameters (tests and ``tools/bench_fit.py``).

The world is OpenCV-like (y down); the head sits near the origin facing the hero camera at -z. Landmarks are the
model's own landmark points projected through the cameras, with Gaussian pixel noise; a landmark is observed in a
camera only when it is not self-occluded there (ray cast against the true mesh) and faces the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera import CameraModel, look_at
from ..face.model import FaceModel

#: Model frame (y up, z out of the face) -> world (y down, face looking toward -z).
MODEL_TO_WORLD = np.diag([1.0, -1.0, -1.0])


def three_camera_rig() -> list[CameraModel]:
    """Hero (1920x1080, 50 mm-like lens at 1.2 m) and two IR witnesses (1280x1024) 35 deg left/right, lower."""
    hero_K = np.array([[3800.0, 0, 959.5], [0, 3800.0, 539.5], [0, 0, 1]])
    wit_K = np.array([[1700.0, 0, 639.5], [0, 1700.0, 511.5], [0, 0, 1]])
    cams = []
    R, t = look_at(np.array([0.0, 0.0, -1.2]), np.zeros(3))
    cams.append(CameraModel("hero", hero_K, np.array([-0.05, 0.02, 0, 0, 0]), R, t, (1920, 1080)))
    for name, side in (("witness-left", -1.0), ("witness-right", 1.0)):
        a = np.deg2rad(35.0)
        eye = np.array([side * 0.9 * np.sin(a), 0.15, -0.9 * np.cos(a)])
        R, t = look_at(eye, np.zeros(3))
        cams.append(CameraModel(name, wit_K, np.array([-0.12, 0.05, 0.001, -0.001, 0]), R, t, (1280, 1024)))
    return cams


@dataclass(frozen=True, slots=True, eq=False)
class SyntheticSequence:
    """Ground truth of a synthetic sequence.

    Attributes:
        identity: (Ki,). expression: (T, Ke). rotvec: (T, 3), R: (T, 3, 3), t: (T, 3) model -> world (metres).
        vertices: (T, V, 3) world vertices, metres.
    """

    identity: np.ndarray
    expression: np.ndarray
    rotvec: np.ndarray
    R: np.ndarray
    t: np.ndarray
    vertices: np.ndarray


def make_sequence(model: FaceModel, frames: int = 20, seed: int = 0, yaw_deg: float = 20.0,
                  identity_scale: float = 1.0) -> SyntheticSequence:
    """A smooth head motion (yaw/pitch/roll sinusoids, a few cm of translation) with smooth expressions."""
    import cv2

    rng = np.random.default_rng(seed)
    alpha = rng.standard_normal(model.n_identity) * identity_scale
    tau = np.arange(frames) / 24.0
    yaw = np.deg2rad(yaw_deg) * np.sin(2 * np.pi * 0.35 * tau + rng.uniform(0, 6))
    pitch = np.deg2rad(8.0) * np.sin(2 * np.pi * 0.5 * tau + rng.uniform(0, 6))
    roll = np.deg2rad(4.0) * np.sin(2 * np.pi * 0.3 * tau + rng.uniform(0, 6))
    t = np.stack([0.03 * np.sin(2 * np.pi * 0.2 * tau), 0.015 * np.sin(2 * np.pi * 0.3 * tau + 1),
                  0.04 * np.sin(2 * np.pi * 0.15 * tau + 2)], 1)
    Ke = model.n_expression
    beta = np.zeros((frames, Ke))
    active = rng.choice(Ke, size=min(8, Ke), replace=False)
    for k in active:
        beta[:, k] = 0.35 * (1 + np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * tau + rng.uniform(0, 6))) * rng.uniform(0.3, 1)
    if model.expression_kind != "blendshape":
        beta = (beta - 0.3) * 2
    Rs, rvs, verts = [], [], []
    for f in range(frames):
        Rh = cv2.Rodrigues(np.array([pitch[f], yaw[f], roll[f]]))[0]
        Rw = MODEL_TO_WORLD @ Rh
        Rs.append(Rw)
        rvs.append(cv2.Rodrigues(Rw)[0].reshape(3))
        verts.append(model.vertices(alpha, beta[f]) @ Rw.T + t[f])
    return SyntheticSequence(identity=alpha, expression=beta, rotvec=np.array(rvs), R=np.array(Rs), t=t,
                             vertices=np.array(verts))


def observe(model: FaceModel, seq: SyntheticSequence, cams: list[CameraModel], scheme: str, noise_px: float = 1.0,
            seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Project the true landmarks of ``scheme`` into every camera with Gaussian noise (std ``noise_px`` per axis).

    Returns obs (T, C, N, 2) (NaN where occluded or without correspondence) and conf (T, C, N).
    """
    import open3d as o3d

    rng = np.random.default_rng(seed)
    lm = model.landmark_map(scheme)
    T, C, N = seq.vertices.shape[0], len(cams), lm.triangle.shape[0]
    obs = np.full((T, C, N, 2), np.nan)
    conf = np.zeros((T, C, N))
    from ..fitting.landmark_basis import vertex_normals

    for f in range(T):
        V = seq.vertices[f]
        P = lm.points(V, model.triangles)  # (N, 3)
        nrm = lm.points(vertex_normals(V, model.triangles), model.triangles)
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(o3d.core.Tensor(V.astype(np.float32)), o3d.core.Tensor(model.triangles.astype(np.uint32)))
        for c, cam in enumerate(cams):
            d = P - cam.center
            dist = np.linalg.norm(d, axis=1)
            rays = np.hstack([np.repeat(cam.center[None], N, 0), d / dist[:, None]]).astype(np.float32)
            hit = scene.cast_rays(o3d.core.Tensor(np.nan_to_num(rays)))["t_hit"].numpy()
            facing = (nrm * -d).sum(1) / dist > 0.0
            vis = (hit >= dist - 1e-3) & facing & (lm.triangle >= 0)
            uv = cam.project(P) + rng.normal(0.0, noise_px, (N, 2))
            inside = (uv[:, 0] >= 0) & (uv[:, 1] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] < cam.height)
            m = vis & inside
            obs[f, c, m] = uv[m]
            conf[f, c, m] = 1.0
    return obs, conf


def observe_biased(model: FaceModel, seq: SyntheticSequence, cams: list[CameraModel], scheme: str, bias,
                   noise_px: float = 1.0, seed: int = 3, visibility_seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`observe`, but each camera's points are where a detector with ``bias``
    (:class:`~reconstruct.face.detector_bias.DetectorBias`, its view terms for that camera) marks them, plus Gaussian
    noise (std ``noise_px``); the occlusion (NaN) and confidences are :func:`observe`'s (``visibility_seed``)."""
    from .fit import fitted_landmarks

    obs, conf = observe(model, seq, cams, scheme, noise_px=0.0, seed=visibility_seed)
    rng = np.random.default_rng(seed)
    for c, cam in enumerate(cams):
        P = fitted_landmarks(model, scheme, seq.identity, seq.expression, seq.R, seq.t, bias, cam)
        uv = cam.project(P.reshape(-1, 3)).reshape(P.shape[:2] + (2,)) + rng.normal(0, noise_px, P.shape[:2] + (2,))
        obs[:, c] = np.where(np.isfinite(obs[:, c]), uv, np.nan)
    return obs, conf


def vertex_error(pred: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean Euclidean vertex error (metres) over frames and the region's vertices."""
    e = np.linalg.norm(pred - truth, axis=-1)
    if region is not None:
        e = e[..., region]
    return float(e.mean())


def jitter(vertices: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean norm of the second temporal difference of vertex positions (metres/frame^2): the high-frequency part
    of the motion. (T, V, 3) -> float."""
    v = vertices if region is None else vertices[:, region]
    return float(np.linalg.norm(v[2:] - 2 * v[1:-1] + v[:-2], axis=-1).mean())
