"""Scoring a fit against synthetic ground truth (tests, ``tools/bench_fit.py``): per-region vertex error, mouth
opening and lip-corner distance, jitter per region.

Regions (boolean masks over the model's vertices):

* ``face``: the vertices MediaPipe's face mesh covers (forehead to chin, eyes and lips included);
* ``mouth``: face vertices within ``MOUTH_RADIUS_M`` of the model's ``lips`` region in the mean shape (lips, their
  corners, the chin and cheeks next to them: what a wrong mouth shape shows on);
* ``eyes``: face vertices within ``EYE_RADIUS_M`` of the model's ``eyes`` region (lids and the skin around them);
* ``brows``: face vertices within ``BROW_RADIUS_M`` of the ``brows`` region.

Mouth measures on the iBUG-68 points of a mesh: opening = distance of the inner-lip midpoints (62, 66), lip-corner
distance = distance of the outer mouth corners (48, 54).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..camera import CameraModel
from ..face.model import FaceModel

MOUTH_RADIUS_M = 0.015
EYE_RADIUS_M = 0.008
BROW_RADIUS_M = 0.008


def landmark_groups(scheme: str) -> dict[str, list[int]] | None:
    """Landmark index groups of a scheme (the QC report's: ``mouth``, ``eyes`` (lids and irises), ``iod_left`` /
    ``iod_right`` eye contours, ...) plus ``all`` (every point with a surface correspondence); None if unknown."""
    from ..report.data import LANDMARK_GROUPS

    g = LANDMARK_GROUPS.get(scheme)
    if g is None:
        return None
    g = dict(g)
    g["eyes"] = list(g["iod_left"]) + list(g["iod_right"])  # lid contours only: irises have no surface point
    g["all"] = list(range(468)) if scheme == "mediapipe478" else list(range(68))
    return g


def regions(model: FaceModel, face: np.ndarray) -> dict[str, np.ndarray]:
    """Name -> (V,) bool vertex mask: ``face`` (given: MediaPipe's coverage), ``mouth``, ``eyes``, ``brows``."""
    from scipy.spatial import cKDTree

    face = np.asarray(face, bool)
    out = {"face": face}
    mean = model.mean.astype(np.float64)
    on_face = mean[face]  # a region is within the face: only those vertices are looked up
    for name, src, r in (("mouth", "lips", MOUTH_RADIUS_M), ("eyes", "eyes", EYE_RADIUS_M),
                         ("brows", "brows", BROW_RADIUS_M)):
        if src not in model.regions:
            continue
        mask = np.asarray(model.regions[src])
        if mask.dtype != bool:
            m = np.zeros(model.n_vertices, bool)
            m[mask] = True
            mask = m
        # the search stops just beyond r (inf past it): the same masks as the full nearest distance, 0.19 -> 0.02 s
        # of the fit stage's report on ICT
        d, _ = cKDTree(mean[mask]).query(on_face, distance_upper_bound=r * (1 + 1e-6))
        near = np.zeros_like(face)
        near[face] = d <= r
        out[name] = near
    return out


def region_errors(pred: np.ndarray, truth: np.ndarray, masks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-frame mean vertex error (T,) in metres for every region of ``masks``; ``pred``/``truth`` (T, V, 3)."""
    e = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(truth, np.float64), axis=-1)
    return {k: e[:, m].mean(1) for k, m in masks.items()}


def aligned_errors(pred: np.ndarray, truth: np.ndarray, masks: Mapping[str, np.ndarray],
                   ref: str = "face") -> dict[str, np.ndarray]:
    """:func:`region_errors` after a per-frame similarity (rotation, translation, scale) of ``pred`` onto ``truth``
    over region ``ref``: the error of the shape alone, without the depth / scale a single view cannot see."""
    pred = np.asarray(pred, np.float64)
    truth = np.asarray(truth, np.float64)
    m = masks[ref]
    out = np.empty_like(pred)
    for t in range(len(pred)):
        a, b = pred[t, m], truth[t, m]
        ca, cb = a.mean(0), b.mean(0)
        U, S, Vt = np.linalg.svd((b - cb).T @ (a - ca))
        D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
        R = U @ D @ Vt
        s = float((S * np.diag(D)).sum() / ((a - ca) ** 2).sum())
        out[t] = s * (pred[t] - ca) @ R.T + cb
    return region_errors(out, truth, masks)


def camera_scale_errors(pred: np.ndarray, truth: np.ndarray, masks: Mapping[str, np.ndarray], centre: np.ndarray,
                        ref: str = "face") -> tuple[dict[str, np.ndarray], float]:
    """:func:`region_errors` after ONE scale of the whole take about the camera centre ``centre`` (3,) (the hero's,
    world frame), least squares over region ``ref`` of every frame, and that scale.

    Scaling a scene about a camera's centre leaves its picture unchanged, so this is the only thing a one-view fit
    cannot see (an unknown face's size against its distance); what is left after it is what the view did see.
    Unlike :func:`aligned_errors` (a similarity per frame) it forgives no per-frame pose or scale error."""
    c = np.asarray(centre, np.float64)
    P = np.asarray(pred, np.float64) - c
    X = np.asarray(truth, np.float64) - c
    m = masks[ref]
    s = float((P[:, m] * X[:, m]).sum() / (P[:, m] ** 2).sum())
    return region_errors(c + s * P, c + X, masks), s


def region_jitter(vertices: np.ndarray, masks: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean norm of the second temporal difference (metres/frame^2) of every region's vertices."""
    v = np.asarray(vertices, np.float64)
    if len(v) < 3:
        return {k: float("nan") for k in masks}
    acc = np.linalg.norm(v[2:] - 2 * v[1:-1] + v[:-2], axis=-1)
    return {k: float(acc[:, m].mean()) for k, m in masks.items()}


def mouth_measures(model: FaceModel, vertices: np.ndarray) -> np.ndarray:
    """(T, 2) metres: mouth opening (inner-lip midpoints 62-66) and lip-corner distance (48-54) of meshes
    ``vertices`` (T, V, 3) (any frame: distances do not depend on the pose)."""
    lm = model.landmark_map("ibug68")
    out = np.empty((len(vertices), 2))
    for t, v in enumerate(vertices):
        p = lm.points(np.asarray(v, np.float64), model.triangles)
        out[t] = np.linalg.norm(p[62] - p[66]), np.linalg.norm(p[48] - p[54])
    return out


def to_truth_world(vertices: np.ndarray, calibrated: CameraModel, true: CameraModel) -> np.ndarray:
    """World points of a solved calibration (T, V, 3) -> the synthetic truth's world, through one camera both
    know (the hero): calibrated world -> that camera's frame -> truth world."""
    X = np.asarray(vertices, np.float64)
    return ((X @ calibrated.R.T + calibrated.t) - true.t) @ true.R
