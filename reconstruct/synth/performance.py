"""Ground truth of a synthetic capture: the rig's cameras around the face and a smooth performance.

World frame: OpenCV-like (metres, y down); the face's landmark centroid sits at the origin in the neutral pose,
looking along -z towards the hero camera. Cameras: hero in front, witnesses ~34 degrees to the left (-x) and
right (+x), 0.6-1.0 m away, focal lengths chosen so the face fills ~55 % of each image's height.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..camera import CameraModel, look_at
from ..conventions import rodrigues
from ..errors import ConfigError
from ..face.model import FaceModel
from ..rig import Rig
from .expressions import apply_extremes
from .scene import FACE_FORWARD, HeadState

FACE_HEIGHT_M = 0.2  # chin to hairline, for framing


def rig_cameras(rig: Rig, seed: int = 0) -> dict[str, CameraModel]:
    """Ground-truth calibrated cameras for every camera of ``rig`` (deterministic for a seed)."""
    rng = np.random.default_rng(seed + 101)
    witnesses = [c for c in rig.cameras if c.role != "hero"]
    out: dict[str, CameraModel] = {}
    for spec in rig.cameras:
        w, h = spec.resolution
        if spec.role == "hero":
            yaw, pitch, dist = 0.0, rng.uniform(-3, 3), rng.uniform(0.75, 0.9)
            k = (-0.03, 0.01, 0.0, 0.0, 0.0)
        else:
            i = witnesses.index(spec)
            side = -1.0 if ("left" in spec.name or (i % 2 == 0 and "right" not in spec.name)) else 1.0
            yaw = side * rng.uniform(31, 37) * (1 + 0.15 * (i // 2))
            pitch, dist = rng.uniform(-10, 6), rng.uniform(0.65, 0.85)
            k = (rng.uniform(-0.12, -0.06), rng.uniform(0.0, 0.05), rng.uniform(-5e-4, 5e-4),
                 rng.uniform(-5e-4, 5e-4), 0.0)
        a, b = np.deg2rad(yaw), np.deg2rad(pitch)
        eye = dist * np.array([np.sin(a) * np.cos(b), -np.sin(b), -np.cos(a) * np.cos(b)])
        R, t = look_at(eye, np.array([0.0, 0.005, 0.0]))
        f = 0.55 * h * dist / FACE_HEIGHT_M
        K = np.array([[f, 0, (w - 1) / 2 + rng.uniform(-0.02, 0.02) * w],
                      [0, f * rng.uniform(0.998, 1.002), (h - 1) / 2 + rng.uniform(-0.02, 0.02) * h], [0, 0, 1]])
        out[spec.name] = CameraModel(spec.name, K, np.array(k), R, t, (w, h))
    return out


@dataclass(frozen=True, slots=True, eq=False)
class Performance:
    """Per-tick head state of a synthetic performance.

    Attributes:
        identity: (Ki,) identity coefficients (N(0, 1) prior units).
        expression: (T, Ke) expression weights per tick.
        rotvec: (T, 3) axis-angle of the head rotation relative to the neutral pose, radians (world frame).
        R: (T, 3, 3) model-to-world rotations.
        t: (T, 3) model-to-world translations, metres.
        gaze: (T, 3) model-frame unit gaze direction of both eyes (+z: straight ahead).
        segment: (T,) int, which extreme expression each tick acts (index into ``extremes``; -1: talking only).
        extremes: names of the extreme expressions of the take (:data:`.expressions.EXTREMES`), in order.
    """

    identity: np.ndarray
    expression: np.ndarray
    rotvec: np.ndarray
    R: np.ndarray
    t: np.ndarray
    gaze: np.ndarray | None = None
    segment: np.ndarray | None = None
    extremes: tuple[str, ...] = ()

    def state(self, tick: int) -> HeadState:
        g = None if self.gaze is None else self.gaze[tick]
        return HeadState(self.identity, self.expression[tick], self.R[tick], self.t[tick], g)

    @property
    def gaze_world(self) -> np.ndarray:
        """(T, 3) world-frame unit gaze directions."""
        g = np.tile([0.0, 0.0, 1.0], (self.frames, 1)) if self.gaze is None else self.gaze
        return np.einsum("tij,tj->ti", self.R, g)

    @property
    def frames(self) -> int:
        return int(self.expression.shape[0])


def _smooth_curve(rng: np.random.Generator, tau: np.ndarray, amp: float, fmin=0.15, fmax=0.6, n=3) -> np.ndarray:
    """A smooth zero-mean signal: a sum of ``n`` sinusoids with random frequencies (Hz) and phases."""
    f = rng.uniform(fmin, fmax, n)
    ph = rng.uniform(0, 2 * np.pi, n)
    a = rng.uniform(0.5, 1.0, n)
    s = sum(a[i] * np.sin(2 * np.pi * f[i] * tau + ph[i]) for i in range(n)) / a.sum()
    return amp * s


def _expression_track(model: FaceModel, tau: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    T = len(tau)
    e = np.zeros((T, model.n_expression))
    names = list(model.expression_names)
    if model.expression_kind == "pca":
        for j in range(min(10, model.n_expression)):
            e[:, j] = _smooth_curve(rng, tau, 0.8 / (1 + 0.2 * j))
        if "jawOpen" in names:
            e[:, names.index("jawOpen")] = np.clip(0.6 + _smooth_curve(rng, tau, 0.9), 0, 1.5)
        return e

    def setw(name: str, w: np.ndarray) -> None:
        if name in names:
            e[:, names.index(name)] = np.clip(w, 0, 1)

    # talking jaw, a smile that comes and goes, brow raises, and blinks every 2-4 s (about 0.15 s long; they close
    # the lids to 85 %: fully shut eyes of the demo model seen from a witness are missed by MediaPipe's detector)
    setw("jawOpen", 0.18 + _smooth_curve(rng, tau, 0.3, 0.4, 1.2))
    smile = 0.2 + _smooth_curve(rng, tau, 0.45, 0.1, 0.35)
    setw("mouthSmile_L", smile + _smooth_curve(rng, tau, 0.05))
    setw("mouthSmile_R", smile + _smooth_curve(rng, tau, 0.05))
    brow = _smooth_curve(rng, tau, 0.6, 0.1, 0.4)
    for n in ("browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R"):
        setw(n, brow)
    blink = np.zeros(T)
    t_next = rng.uniform(0.3, 1.5)
    while t_next < tau[-1] + 1:
        blink = np.maximum(blink, 0.85 * np.exp(-0.5 * ((tau - t_next) / 0.05) ** 2))
        t_next += rng.uniform(2.0, 4.0)
    setw("eyeBlink_L", blink)
    setw("eyeBlink_R", blink)
    return e


def make_performance(model: FaceModel, frames: int, fps: float, seed: int = 0,
                     identity_scale: float = 1.0, identity=None, gaze_deg: float = 0.0,
                     extremes: Sequence[str] = (), gaze_style: str = "smooth") -> Performance:
    """A smooth, plausible performance: a random identity (N(0, identity_scale^2)), talking/smiling/blinking
    expressions, head yaw +-12 deg, pitch +-8, roll +-5 and +-1.5 cm of translation. ``identity`` (prior units,
    missing trailing modes 0) replaces the random identity; the motion is the same either way. ``gaze_deg`` > 0:
    the eyes look around (yaw up to +-gaze_deg, pitch up to +-0.6 gaze_deg, relative to the head) instead of
    straight ahead; drawn from a separate random stream, so the rest of the performance does not change.
    ``gaze_style`` ``"saccades"``: the eyes fixate and jump (a 3-frame move every 0.4-1.2 s) instead of drifting.
    ``extremes``: extreme expressions acted one after the other over the take (:mod:`.expressions`; blendshape
    models only), on top of the same talking performance and head motion."""
    rng = np.random.default_rng(seed)
    tau = np.arange(frames) / float(fps)
    identity_random = rng.standard_normal(model.n_identity) * identity_scale
    if identity is None:
        identity = identity_random
    else:
        given = np.asarray(identity, np.float64).reshape(-1)[: model.n_identity]
        identity = np.zeros(model.n_identity)
        identity[: given.size] = given
    expression = _expression_track(model, tau, rng)
    segment = np.full(frames, -1, np.int64)
    if extremes:
        if model.expression_kind != "blendshape":
            raise ConfigError(f"extreme expressions need a blendshape model; {model.name!r} has "
                             f"{model.expression_kind} expressions")
        expression, segment = apply_extremes(expression, model.expression_names, extremes)
    yaw = _smooth_curve(rng, tau, np.deg2rad(12))
    pitch = _smooth_curve(rng, tau, np.deg2rad(8))
    roll = _smooth_curve(rng, tau, np.deg2rad(5))
    shift = np.stack([_smooth_curve(rng, tau, 0.015) for _ in range(3)], axis=1)
    rotvec = np.stack([pitch, yaw, roll], axis=1)  # about world x (nod), y (turn), z (tilt)
    # the face's landmark centroid (or the mean's centroid) is the centre of rotation, at the world origin
    if "ibug68" in model.landmarks:
        c = np.nanmean(model.landmark_map("ibug68").points(model.vertices(identity), model.triangles), axis=0)
    else:
        c = model.vertices(identity).mean(0)
    R = np.stack([rodrigues(r) @ FACE_FORWARD for r in rotvec])
    t = np.stack([-Rk @ c + s for Rk, s in zip(R, shift)])
    gaze = None
    if gaze_deg > 0:
        rg = np.random.default_rng(seed + 7919)
        if gaze_style == "saccades":
            gy, gp = _saccades(rg, tau, np.deg2rad(gaze_deg), fps)
        elif gaze_style == "smooth":
            gy = _smooth_curve(rg, tau, np.deg2rad(gaze_deg), 0.2, 0.8)
            gp = _smooth_curve(rg, tau, np.deg2rad(0.6 * gaze_deg), 0.2, 0.8)
        else:
            raise ValueError(f"gaze_style must be 'smooth' or 'saccades', got {gaze_style!r}")
        gaze = np.stack([np.sin(gy) * np.cos(gp), np.sin(gp), np.cos(gy) * np.cos(gp)], axis=1)
    return Performance(identity=identity, expression=expression, rotvec=rotvec, R=R, t=t, gaze=gaze,
                       segment=segment, extremes=tuple(extremes))


def _saccades(rng: np.random.Generator, tau: np.ndarray, amp: float, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Yaw and pitch (radians) of fixations joined by fast moves: a new target (yaw within +-amp, pitch within
    +-0.6 amp) every 0.4-1.2 s, reached in 3 frames."""
    yaw, pitch = np.zeros(len(tau)), np.zeros(len(tau))
    cur = np.zeros(2)
    t_next = rng.uniform(0.2, 0.6)
    moves = []
    while t_next < tau[-1] + 1:
        tgt = np.array([rng.uniform(-amp, amp), rng.uniform(-0.6 * amp, 0.6 * amp)])
        moves.append((t_next, cur, tgt))
        cur = tgt
        t_next += rng.uniform(0.4, 1.2)
    dur = 3.0 / fps
    for k, t in enumerate(tau):
        val = np.zeros(2)
        for t0, a, b in moves:
            if t >= t0:
                x = min(1.0, (t - t0) / dur)
                val = a + (b - a) * (0.5 - 0.5 * np.cos(np.pi * x))
        yaw[k], pitch[k] = val
    return yaw, pitch
