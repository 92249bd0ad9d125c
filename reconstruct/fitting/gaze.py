"""Eye gaze per frame: the iris centres seen by the calibrated cameras, against the fitted head.

Model (a standard simplification of the eye): each eye rotates about a centre fixed in the head, behind the centre
of its lid opening along the head's forward axis (model +z), and the iris centre moves on a sphere of radius
``IRIS_RADIUS_M`` about it. Per frame and eye:

1. the eye opening's centre ``o`` is the mean of the fitted mesh's six iBUG-68 eye-contour landmarks (world);
2. the iris centre ``p``: triangulated from every camera whose landmark detector saw it (least-squares closest
   point of the rays); seen by one camera only, the ray is intersected with the eye sphere instead;
3. the gaze is the unit vector from the rotation centre to ``p``, computed from ``p``'s offset *across* the forward
   axis only (``asin(|offset| / r)``): the across-axis offset is what several views measure well, the depth is not.

Output order (left, right) is the *subject's* left and right eye (iBUG 42-47 and 36-41). The detector must give
iris centres: MediaPipe Face Mesh's 478-point scheme (468 and 473). Accuracy on synthetic sessions with known gaze:
docs/fitting.md ("Eye gaze"). The limit is the fitted mesh around the eyes (a millimetre there is 5 degrees of
gaze): changes of gaze within a take are measured better than its absolute direction. The detector's own eyelid
contour as the opening's centre was tried and measured worse (its mean sits millimetres off the eyeball's axis).
"""

from __future__ import annotations


from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from ..camera import CameraModel
from ..face.features import EYE_L, EYE_R
from ..face.model import FaceModel

if TYPE_CHECKING:  # pragma: no cover
    from ..artifacts import Detections
    from .gaze_prior import GazePrior

#: landmark indices of the two iris centres, per detector scheme
IRIS_CENTRES = {"mediapipe478": (468, 473)}
#: distance from the eye's centre of rotation to the iris centre (adults: about 10-12 mm), metres
IRIS_RADIUS_M = 0.011
#: landmarks with a confidence below this are not used
MIN_CONFIDENCE = 0.3


def supports_gaze(scheme: str) -> bool:
    return scheme in IRIS_CENTRES


def estimate_gaze(model: FaceModel, vertices: np.ndarray, R: np.ndarray, cameras: Sequence[CameraModel],
                  points: np.ndarray, confidence: np.ndarray, scheme: str,
                  radius_m: float = IRIS_RADIUS_M) -> np.ndarray:
    """(T, 2, 3) float32 world unit gaze directions (subject's left, right eye); NaN where the iris was not seen.

    ``vertices``: (T, V, 3) world vertices whose eye openings locate the eyes (the fit's own, or its neutral
    shape posed per frame: see :func:`gaze_for_sequence`); ``R``: (T, 3, 3) model-to-world rotations;
    ``cameras``: the calibrated cameras of ``points`` (T, C, L, 2) pixels and ``confidence`` (T, C, L) (the
    detect stage's arrays, camera axis aligned with ``cameras``).
    """
    if not supports_gaze(scheme):
        raise ValueError(f"landmark scheme {scheme!r} has no iris centres (known: {', '.join(IRIS_CENTRES)})")
    T = len(vertices)
    lmap = model.landmark_map("ibug68")
    out = np.full((T, 2, 3), np.nan, np.float32)
    for t in range(T):
        lm = lmap.points(np.asarray(vertices[t], np.float64), model.triangles)
        centres = np.stack([lm[EYE_L].mean(0), lm[EYE_R].mean(0)])  # subject's left, right
        fwd = np.asarray(R[t], np.float64)[:, 2]
        fwd = fwd / np.linalg.norm(fwd)
        for idx in IRIS_CENTRES[scheme]:
            rays = _rays(cameras, points[t, :, idx], confidence[t, :, idx])
            if not rays:
                continue
            eye = _nearest_eye(rays, centres)
            g = _gaze(rays, centres[eye], fwd, radius_m)
            if g is not None:
                out[t, eye] = g
    return out


def _rays(cameras: Sequence[CameraModel], uv: np.ndarray, conf: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(origin, unit direction) of every camera that saw the point confidently."""
    out = []
    for cam, p, c in zip(cameras, uv, conf):
        if c >= MIN_CONFIDENCE and np.all(np.isfinite(p)):
            o, d = cam.rays(np.asarray(p, np.float64).reshape(1, 2))
            out.append((np.asarray(o, np.float64), d[0]))
    return out


def _ray_distance(o: np.ndarray, d: np.ndarray, x: np.ndarray) -> float:
    v = x - o
    return float(np.linalg.norm(v - (v @ d) * d))


def _nearest_eye(rays, centres: np.ndarray) -> int:
    """Which eye opening (0: left, 1: right) the rays pass closest to."""
    dist = [sum(_ray_distance(o, d, c) for o, d in rays) for c in centres]
    return int(np.argmin(dist))


def _closest_point(rays) -> np.ndarray | None:
    """Least-squares point closest to two or more rays (None when they are nearly parallel)."""
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for o, d in rays:
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ o
    if np.linalg.cond(A) > 1e8:
        return None
    return np.linalg.solve(A, b)


def _gaze(rays, opening: np.ndarray, fwd: np.ndarray, r: float) -> np.ndarray | None:
    """Unit gaze of one eye from the rays to its iris centre (see the module docstring)."""
    centre = opening - r * fwd  # rotation centre: the iris sits at the opening's centre looking straight ahead
    p = _closest_point(rays) if len(rays) >= 2 else None
    if p is None:  # one view (or parallel rays): where the first ray meets the eye sphere
        o, d = rays[0]
        v = o - centre
        bq = v @ d
        disc = bq * bq - (v @ v - r * r)
        if disc < 0:
            return None
        p = o + (-bq - np.sqrt(disc)) * d  # the near intersection: the visible side of the eye
    off = p - opening
    lat = off - (off @ fwd) * fwd
    n = float(np.linalg.norm(lat))
    if n >= r:
        lat *= 0.999 * r / n
        n = 0.999 * r
    g = lat + np.sqrt(r * r - n * n) * fwd
    return (g / np.linalg.norm(g)).astype(np.float32)


def gaze_angles_deg(gaze: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Yaw and pitch (degrees) of world gazes (T, 2, 3) relative to the head (model frame: +x yaw, +y pitch)."""
    g = np.einsum("tji,tkj->tki", np.asarray(R, np.float64), np.asarray(gaze, np.float64))  # R^T g
    yaw = np.degrees(np.arctan2(g[..., 0], g[..., 2]))
    pitch = np.degrees(np.arcsin(np.clip(g[..., 1], -1, 1)))
    return yaw, pitch


def gaze_in_view(model: FaceModel, vertices: np.ndarray, R: np.ndarray, camera: CameraModel, landmarks: np.ndarray,
                 scheme: str) -> np.ndarray:
    """(2, 3) gaze of one frame from one camera's landmarks ``landmarks`` (L, 2) pixels (each iris ray meets its eye
    sphere), against the fitted head (``vertices`` (V, 3) world, ``R`` (3, 3)): how the report compares the gaze in
    a composited plate with the gaze in the original plate, both measured the same way."""
    pts = np.asarray(landmarks, np.float64)[None, None]
    return estimate_gaze(model, np.asarray(vertices)[None], np.asarray(R)[None], [camera], pts,
                         np.ones(pts.shape[:3]), scheme)[0]


def gaze_for_sequence(model: FaceModel, seq, det: "Detections", cameras: Mapping[str, CameraModel],
                      prior: "GazePrior | None" = None, neutral_eyes: bool = True) -> np.ndarray | None:
    """:func:`estimate_gaze` for a :class:`~.result.FitSequence` and the detect stage's
    :class:`~reconstruct.artifacts.Detections`; None when the detector gives no iris centres. Frames not fitted
    (``valid`` False) get NaN.

    ``neutral_eyes``: locate the eyes from the fitted identity's neutral shape, posed per frame (the eyeball turns
    about a point fixed in the head; the fitted expression's lids move with blinks and squints and would drag
    it along), else from the fitted vertices. ``prior``: regularise the take's gaze (blinks, both eyes together,
    fixations and saccades, small vertical range: :mod:`.gaze_prior`); None: per-frame estimates as measured.
    """
    if not supports_gaze(det.scheme):
        return None
    names = list(det.cameras)
    keep = [k for k, c in enumerate(names) if c in cameras]
    cams = [cameras[names[k]] for k in keep]
    row = {int(f): i for i, f in enumerate(det.frames)}
    rows = np.array([row[int(f)] for f in seq.frames])
    verts = seq.vertices
    if neutral_eyes:
        base = model.vertices(np.asarray(seq.identity, np.float64))
        verts = np.einsum("vj,tij->tvi", base, np.asarray(seq.R, np.float64)) + np.asarray(seq.t)[:, None]
    pts = det.points[rows][:, keep]
    g = estimate_gaze(model, verts, seq.R, cams, pts, det.confidence[rows][:, keep], det.scheme)
    valid = np.asarray(seq.valid, bool)
    g[~valid] = np.nan
    if prior is not None and np.isfinite(g).any():
        from .gaze_prior import angles_to_world, lid_opening, regularise_gaze

        yaw, pitch = gaze_angles_deg(g, seq.R)
        opening = lid_opening(pts.astype(np.float64), det.scheme)
        ry, rp = regularise_gaze(yaw, pitch, opening, prior)
        g = angles_to_world(ry, rp, seq.R).astype(np.float32)
        g[~valid] = np.nan
    return g
