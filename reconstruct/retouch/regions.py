"""The age regions of a face model, as per-vertex weights, and their masks in an image.

Each region is a capsule (a segment with a radius) in the frontal plane of the model's mean shape, placed by its
iBUG-68 landmarks (so it fits any model with that correspondence) and measured in inter-ocular distances (IOD):
the forehead and the frown lines between the brows, the crow's feet beside each outer eye corner, the skin under
each eye, the nasolabial folds (nose wing to mouth corner) and the marionette lines (mouth corner toward the jaw).
Weights are 1 inside the radius and fade to 0 at 1.6 radii; the model's eyes, brows and lips, and the nostrils,
are excluded. The neck is not a region: the face-area models (ICT light, demo) have no neck.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: region name -> its kind of feature (sets the frequency band the skin filter works on, :mod:`.skin`)
AGE_REGIONS = {"forehead": "lines", "crows_feet": "lines", "under_eye": "lines", "nasolabial": "folds",
               "marionette": "folds"}


def _capsule(xy: np.ndarray, a: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    ab = b - a
    t = np.clip(((xy - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    d = np.linalg.norm(xy - (a + t[:, None] * ab), axis=1)
    u = np.clip((d - r) / (0.6 * r), 0.0, 1.0)
    return 1.0 - u * u * (3 - 2 * u)


def _capsules(lm: np.ndarray, iod: float) -> dict[str, list[tuple[np.ndarray, np.ndarray, float]]]:
    """Region -> capsules ((a, b) in the frontal plane, radius), from the mean shape's iBUG-68 points (x, y) with
    +y up; distances in IOD."""
    up = np.array([0.0, 1.0]) * iod
    eye_r = lm[36:42].mean(0)
    out_r = (lm[36] - lm[39]) / max(np.linalg.norm(lm[36] - lm[39]), 1e-12) * iod  # outward from the right eye
    out_l = (lm[45] - lm[42]) / max(np.linalg.norm(lm[45] - lm[42]), 1e-12) * iod
    brow_y = max(lm[17:27, 1].max(), eye_r[1] + 0.25 * iod)
    brow_r, brow_l = np.array([lm[17, 0], brow_y]), np.array([lm[26, 0], brow_y])
    glabella = 0.5 * (lm[21] + lm[22])
    return {
        "forehead": [(brow_r + 0.45 * up, brow_l + 0.45 * up, 0.32 * iod),
                     (glabella + 0.05 * up, glabella + 0.35 * up, 0.12 * iod)],
        "crows_feet": [(lm[36] + 0.12 * out_r, lm[36] + 0.38 * out_r, 0.13 * iod),
                       (lm[45] + 0.12 * out_l, lm[45] + 0.38 * out_l, 0.13 * iod)],
        "under_eye": [(lm[36] - 0.17 * up + 0.05 * out_r, lm[39] - 0.17 * up, 0.09 * iod),
                      (lm[45] - 0.17 * up + 0.05 * out_l, lm[42] - 0.17 * up, 0.09 * iod)],
        "nasolabial": [(lm[31] + 0.10 * out_r + 0.05 * up, lm[48] + 0.12 * out_r, 0.08 * iod),
                       (lm[35] + 0.10 * out_l + 0.05 * up, lm[54] + 0.12 * out_l, 0.08 * iod)],
        "marionette": [(lm[48] + 0.06 * out_r - 0.06 * up, 0.55 * lm[48] + 0.45 * lm[5], 0.07 * iod),
                       (lm[54] + 0.06 * out_l - 0.06 * up, 0.55 * lm[54] + 0.45 * lm[11], 0.07 * iod)],
    }


def region_weights(model) -> dict[str, np.ndarray]:
    """Region name -> (V,) float32 weights in [0, 1] of ``model``'s vertices (cached per model). Needs the model's
    ``ibug68`` correspondence; regions are empty (all zero) without it."""
    return _weights_cached(model.name, model.n_vertices, id(model), model)


@lru_cache(maxsize=4)
def _weights_cached(name: str, n: int, ident: int, model) -> dict[str, np.ndarray]:
    if "ibug68" not in model.landmarks:
        return {r: np.zeros(n, np.float32) for r in AGE_REGIONS}
    mean = np.asarray(model.mean, np.float64)
    lm = model.landmark_map("ibug68").points(mean, model.triangles)[:, :2]
    iod = float(np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0)))
    xy = mean[:, :2]
    keep = np.ones(n, bool)
    for bad in ("eyes", "brows", "lips"):
        if bad in model.regions:
            keep &= ~np.asarray(model.regions[bad], bool)
    nostrils = lm[31:36]
    near_nostril = np.min(np.linalg.norm(xy[:, None] - nostrils[None], axis=2), axis=1) < 0.09 * iod
    keep &= ~near_nostril
    out = {}
    for name_, caps in _capsules(lm, iod).items():
        w = np.zeros(n)
        for a, b, r in caps:
            w = np.maximum(w, _capsule(xy, a, b, r))
        out[name_] = (w * keep).astype(np.float32)
    return out


def region_masks(fragments, triangles: np.ndarray, weights: dict[str, np.ndarray], blur_px: float = 0.0
                 ) -> dict[str, np.ndarray]:
    """Region -> (H, W) float32 mask in [0, 1] where the rasterised surface shows it (``fragments`` of the mesh
    with ``triangles``), optionally softened by a Gaussian of ``blur_px``."""
    import cv2

    from ..render.fragments import interpolate

    names = list(weights)
    stack = np.stack([weights[n] for n in names], axis=1)
    img = interpolate(fragments, triangles, stack)  # (H, W, R)
    out = {}
    for k, n in enumerate(names):
        m = img[..., k]
        if blur_px > 0:
            m = cv2.GaussianBlur(m, (0, 0), blur_px)
        out[n] = np.clip(m, 0.0, 1.0).astype(np.float32)
    return out
