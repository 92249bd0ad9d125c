"""Single rendered faces with known truth, for learning a landmark detector's bias on a face model
(:mod:`reconstruct.face.detector_bias`; ``tools/learn_landmark_bias.py``).

Each sample: a random identity (N(0, 1)), a random expression (a talking mix, one of the extreme expressions of
:mod:`.expressions` at a random strength, or a few random blendshapes), a random head pose (yaw +-35 deg, pitch
+-15, roll +-8), random gaze, and a camera at 0.55-1.0 m framing the face at 40-65 % of the image height, seen as
an RGB hero or an IR witness (the synthetic sensors of :mod:`.imaging`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera import CameraModel, look_at
from ..conventions import rodrigues
from ..face.model import FaceModel
from ..rig import CameraSpec
from .expressions import EXTREMES
from .scene import FACE_FORWARD, HeadState

SIZES = ((512, 512), (640, 480), (720, 540), (480, 384), (320, 240))


@dataclass(frozen=True, slots=True, eq=False)
class FaceSample:
    """A face to render: its state (model -> world), the camera and its sensor."""

    state: HeadState
    camera: CameraModel
    spec: CameraSpec


def random_expression(model: FaceModel, rng: np.random.Generator) -> np.ndarray:
    """(Ke,) blendshape weights in [0, 1]: 35 % talking mixes, 50 % an extreme expression at strength 0.4-1 over
    a light talking mix, 15 % three to six random blendshapes."""
    names = list(model.expression_names)
    e = np.zeros(model.n_expression)

    def add(name: str, w: float) -> None:
        if name in names:
            e[names.index(name)] = np.clip(e[names.index(name)] + w, 0.0, 1.0)

    u = rng.random()
    if u < 0.85:
        scale = 1.0 if u < 0.35 else 0.4
        add("jawOpen", scale * rng.uniform(0, 0.5))
        smile = scale * rng.uniform(0, 0.6)
        add("mouthSmile_L", smile + rng.uniform(-0.1, 0.1))
        add("mouthSmile_R", smile + rng.uniform(-0.1, 0.1))
        brow = scale * rng.uniform(0, 0.6)
        for n in ("browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R"):
            add(n, brow)
        if rng.random() < 0.3:
            b = rng.uniform(0, 1)
            add("eyeBlink_L", b)
            add("eyeBlink_R", b)
        if u >= 0.35:
            name = list(EXTREMES)[rng.integers(len(EXTREMES))]
            s = rng.uniform(0.4, 1.0)
            for bs, w in EXTREMES[name].items():
                add(bs, s * w)
    else:
        for j in rng.choice(model.n_expression, size=rng.integers(3, 7), replace=False):
            e[j] = rng.uniform(0.1, 0.9)
    return e


def random_sample(model: FaceModel, rng: np.random.Generator) -> FaceSample:
    """A random face (identity, expression, pose, gaze) in front of a random camera."""
    identity = rng.standard_normal(model.n_identity)
    expression = random_expression(model, rng)
    pitch, yaw, roll = np.radians([rng.uniform(-15, 15), rng.uniform(-35, 35), rng.uniform(-8, 8)])
    R = rodrigues(np.array([pitch, yaw, roll])) @ FACE_FORWARD
    vm = model.vertices(identity)
    c = np.nanmean(model.landmark_map("ibug68").points(vm, model.triangles), 0) if "ibug68" in model.landmarks \
        else vm.mean(0)
    t = -R @ c + rng.normal(0, 0.01, 3)
    gy, gp = np.radians(rng.uniform(-20, 20)), np.radians(rng.uniform(-12, 12))
    gaze = np.array([np.sin(gy) * np.cos(gp), np.sin(gp), np.cos(gy) * np.cos(gp)])
    w, h = SIZES[rng.integers(len(SIZES))]
    dist = rng.uniform(0.55, 1.0)
    a, b = np.radians(rng.uniform(-10, 10)), np.radians(rng.uniform(-8, 8))
    eye = dist * np.array([np.sin(a) * np.cos(b), -np.sin(b), -np.cos(a) * np.cos(b)])
    Rc, tc = look_at(eye, np.zeros(3))
    f = rng.uniform(0.40, 0.65) * h * dist / 0.2
    K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    k1 = rng.uniform(-0.1, 0.0)
    cam = CameraModel("sample", K, np.array([k1, 0.0, 0.0, 0.0, 0.0]), Rc, tc, (w, h))
    ir = rng.random() < 0.35
    spec = CameraSpec(name="sample", role="witness" if ir else "hero", sensor="ir" if ir else "rgb",
                      resolution=(w, h), fps=25.0, exposure_us=float(rng.uniform(3000, 9000)))
    return FaceSample(HeadState(identity, expression, R, t, gaze), cam, spec)
