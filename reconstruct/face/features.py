"""Facial features located from the 68-point (iBUG) landmarks of a model's mean shape.

Used to paint procedural albedo (:mod:`.albedo`) and to derive vertex regions (:func:`regions_from_landmarks`).
Everything works in the model frame (metres, +y up, +z out of the face) on the *frontal projection* ``(x, y)``,
restricted to surface points facing forward, so any model with an ``ibug68`` landmark map can use it.

iBUG 68 indices: jaw 0-16, brows 17-21 (subject's right) / 22-26 (left), nose 27-35, eyes 36-41 / 42-47,
outer lips 48-59, inner lips 60-67.
"""

from __future__ import annotations

import numpy as np

JAW = list(range(0, 17))
BROW_R, BROW_L = list(range(17, 22)), list(range(22, 27))
EYE_R, EYE_L = list(range(36, 42)), list(range(42, 48))
LIPS_OUTER, LIPS_INNER = list(range(48, 60)), list(range(60, 68))


def polyline_distance(p: np.ndarray, line: np.ndarray, closed: bool = False) -> np.ndarray:
    """(N, 2) points, (M, 2) polyline -> (N,) distance to the nearest segment."""
    p = np.asarray(p, np.float64)
    a = np.asarray(line, np.float64)
    b = np.roll(a, -1, axis=0) if closed else a[1:]
    a = a if closed else a[:-1]
    best = np.full(len(p), np.inf)
    for s, e in zip(a, b):
        d = e - s
        t = np.clip(((p - s) @ d) / max(float(d @ d), 1e-18), 0, 1)
        best = np.minimum(best, np.linalg.norm(p - (s + t[:, None] * d), axis=1))
    return best


def inside_polygon(p: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """(N, 2) points, (M, 2) closed polygon -> (N,) bool (even-odd rule)."""
    p = np.asarray(p, np.float64)
    poly = np.asarray(poly, np.float64)
    x, y = p[:, 0], p[:, 1]
    inside = np.zeros(len(p), bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0)):
        cross = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xi = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= cross & (x < xi)
    return inside


def signed_polygon_distance(p: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Distance to the polygon outline, negative inside."""
    d = polyline_distance(p, poly, closed=True)
    return np.where(inside_polygon(p, poly), -d, d)


def front_facing(points: np.ndarray, lm68: np.ndarray, depth: float = 0.05) -> np.ndarray:
    """(N,) bool: points no more than ``depth`` metres behind the eye corners (excludes back of head, ears)."""
    z_ref = float(np.mean(lm68[EYE_R + EYE_L, 2]))
    return np.asarray(points)[:, 2] > z_ref - depth


def face_outline(lm68: np.ndarray) -> np.ndarray:
    """(K, 2) frontal outline of the face: the jaw line, then the brows raised by ~0.6 x the eye-brow distance."""
    eye_y = float(np.mean(lm68[EYE_R + EYE_L, 1]))
    brow = lm68[BROW_L[::-1] + BROW_R[::-1], :2].copy()
    brow[:, 1] += 0.6 * (np.mean(brow[:, 1]) - eye_y) + 0.004
    return np.concatenate([lm68[JAW, :2], brow])


def regions_from_landmarks(vertices: np.ndarray, lm68: np.ndarray) -> dict[str, np.ndarray]:
    """Vertex masks ``face``, ``eyes``, ``lips``, ``brows``, ``skin`` from the mean shape and its 68 landmarks.

    ``face``: inside the jaw line and below the raised brow line, facing forward (the region error figures use).
    ``eyes``: within 4 mm of the eye openings; ``lips``: within 1 mm of the outer lip contour; ``brows``: within
    5 mm of the brow lines; ``skin`` = face minus eyes, lips and brows.
    """
    v = np.asarray(vertices, np.float64)
    xy = v[:, :2]
    front = front_facing(v, lm68)
    face = front & inside_polygon(xy, face_outline(lm68))
    eyes = front & ((signed_polygon_distance(xy, lm68[EYE_R, :2]) < 0.004)
                    | (signed_polygon_distance(xy, lm68[EYE_L, :2]) < 0.004))
    lips = front & (signed_polygon_distance(xy, lm68[LIPS_OUTER, :2]) < 0.001)
    brows = front & ((polyline_distance(xy, lm68[BROW_R, :2]) < 0.005) | (polyline_distance(xy, lm68[BROW_L, :2]) < 0.005))
    return {"face": face, "eyes": eyes & face, "lips": lips & face, "brows": brows & face,
            "skin": face & ~eyes & ~lips & ~brows}
