"""Plausible eye motion from noisy per-frame gaze: blinks, both eyes together, fixations and saccades.

Per-frame gaze from the iris (:mod:`.gaze`) is noisy (a millimetre of iris offset is 5 degrees) and meaningless
while the lids are shut (MediaPipe still places an iris). Real eyes move in a narrow way: both eyes turn together
(they converge on one point, a few degrees apart at most), they hold a fixation and jump to the next (saccades
are fast and rare), and while someone talks the vertical range is small. :func:`regularise_gaze` turns that into
a prior, per take:

1. **blinks**: a frame whose lid opening (from the detector's lid points) is below ``blink_ratio`` of the take's
   median opening, and the frames next to it, carries no gaze measurement;
2. **one gaze for both eyes** (head-relative yaw and pitch, the mean of the eyes seen) plus a constant vergence
   per take (each eye's median offset from the mean, at most ``max_vergence_deg``);
3. **fixations and saccades**: total-variation denoising of yaw and pitch over time (Rudin, Osher & Fatemi
   1992): squared deviation from the measurements plus ``lambda * sum |x_t+1 - x_t|``, which keeps sharp jumps and
   flattens the jitter within a fixation; ``lambda`` is ``tv`` times the measurements' own noise (median absolute
   frame-to-frame change), solved by iteratively reweighted least squares (tridiagonal systems);
4. **small vertical range**: pitch is also pulled towards the take's median (``pitch_shrink``);
5. plausible bounds: ``max_yaw_deg`` / ``max_pitch_deg`` relative to the head.

Frames without a measurement (blinks, iris not seen) take the solution's value there (the fixation holds).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_banded

#: MediaPipe Face Mesh lid points per eye (subject's left, right): outer corner, inner corner, upper lid, lower lid
MP_LIDS = {"mediapipe478": ((263, 362, 386, 374), (33, 133, 159, 145))}


@dataclass(frozen=True, slots=True)
class GazePrior:
    """Settings of :func:`regularise_gaze` (see the module docstring)."""

    blink_ratio: float = 0.55
    tv: float = 3.0
    pitch_shrink: float = 0.5
    max_vergence_deg: float = 4.0
    max_yaw_deg: float = 35.0
    max_pitch_deg: float = 25.0
    iterations: int = 40


def lid_opening(points: np.ndarray, scheme: str) -> np.ndarray | None:
    """(T, 2) lid opening / eye width per frame and eye (subject's left, right), the median over cameras, from
    detected landmarks ``points`` (T, C, L, 2); NaN where not seen; None for a scheme without lid points."""
    if scheme not in MP_LIDS:
        return None
    out = np.full((points.shape[0], 2), np.nan)
    for e, (o, i, u, lo) in enumerate(MP_LIDS[scheme]):
        w = np.linalg.norm(points[:, :, o] - points[:, :, i], axis=-1)
        h = np.linalg.norm(points[:, :, u] - points[:, :, lo], axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(w > 1e-6, h / w, np.nan)
        ok = np.isfinite(r).any(1)
        out[ok, e] = np.nanmedian(r[ok], axis=1)
    return out


def blink_frames(opening: np.ndarray, ratio: float) -> np.ndarray:
    """(T,) bool: frames where either eye's opening is below ``ratio`` x its take median, and their neighbours
    (the lids are still moving)."""
    med = np.nanmedian(opening, axis=0)
    with np.errstate(invalid="ignore"):
        shut = (opening < ratio * med[None]).any(1)
    out = shut.copy()
    out[1:] |= shut[:-1]
    out[:-1] |= shut[1:]
    return out


def tv_denoise(y: np.ndarray, w: np.ndarray, lam: float, shrink: float = 0.0, centre: float = 0.0,
               iterations: int = 40, eps: float = 1e-3) -> np.ndarray:
    """argmin_x 1/2 sum w (x - y)^2 + lam sum |x_t+1 - x_t| + shrink/2 sum (x - centre)^2 over a series (T,)
    (``w`` = 0 where there is no measurement), by IRLS on the absolute differences (each a tridiagonal solve)."""
    y = np.where(w > 0, y, 0.0)
    T = len(y)
    x = np.where(w > 0, y, centre) if T else y
    if T < 2:
        return np.where(w > 0, y, centre)
    for _ in range(iterations):
        c = lam / np.maximum(np.abs(np.diff(x)), eps)  # (T-1,) weights of the squared differences
        main = w + shrink
        main[:-1] += c
        main[1:] += c
        ab = np.zeros((3, T))
        ab[0, 1:] = -c
        ab[1] = main + 1e-12
        ab[2, :-1] = -c
        x_new = solve_banded((1, 1), ab, w * y + shrink * centre)
        if np.max(np.abs(x_new - x)) < 1e-4:
            x = x_new
            break
        x = x_new
    return x


def regularise_gaze(yaw: np.ndarray, pitch: np.ndarray, opening: np.ndarray | None,
                    prior: GazePrior = GazePrior()) -> tuple[np.ndarray, np.ndarray]:
    """Head-relative yaw and pitch (T, 2) degrees per eye (NaN: not measured) -> regularised (T, 2) for every
    frame (see the module docstring). ``opening``: (T, 2) lid openings (:func:`lid_opening`) or None."""
    yaw, pitch = np.array(yaw, np.float64), np.array(pitch, np.float64)
    seen = np.isfinite(yaw) & np.isfinite(pitch)
    if opening is not None:
        seen &= ~blink_frames(opening, prior.blink_ratio)[:, None]
    if not seen.any():
        return np.full_like(yaw, np.nan), np.full_like(pitch, np.nan)
    out = []
    for a, bound, shrink in ((yaw, prior.max_yaw_deg, 0.0), (pitch, prior.max_pitch_deg, prior.pitch_shrink)):
        a = np.where(seen, a, np.nan)
        with warnings.catch_warnings():  # frames where neither eye was measured stay NaN here
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(a, axis=1)  # one gaze for both eyes
            offs = np.nanmedian(a - mean[:, None], axis=0)  # per-eye constant (vergence)
            offs = np.clip(np.nan_to_num(offs), -prior.max_vergence_deg / 2, prior.max_vergence_deg / 2)
            both = np.nanmean(a - offs[None], axis=1)
        w = np.isfinite(both).astype(np.float64)
        y = np.nan_to_num(both)
        centre = float(np.median(y[w > 0]))
        d = np.diff(y[w > 0])
        noise = float(np.median(np.abs(d))) if len(d) else 1.0
        x = tv_denoise(y, w, prior.tv * max(noise, 0.1), shrink, centre, prior.iterations)
        x = np.clip(x, -bound, bound)
        out.append(x[:, None] + offs[None])
    return out[0], out[1]


def angles_to_world(yaw: np.ndarray, pitch: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Head-relative yaw/pitch (T, 2) degrees (model frame: +x yaw, +y pitch, +z forward) -> (T, 2, 3) world
    unit vectors (the inverse of :func:`.gaze.gaze_angles_deg`)."""
    y, p = np.radians(yaw), np.radians(pitch)
    g = np.stack([np.sin(y) * np.cos(p), np.sin(p), np.cos(y) * np.cos(p)], -1)  # model frame
    return np.einsum("tij,tkj->tki", np.asarray(R, np.float64), g)
