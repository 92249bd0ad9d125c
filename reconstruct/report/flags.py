"""Frames an artist should look at: pure functions over arrays (no session access), each returning a
:class:`FlagSeries` with a per-frame score, the threshold and the flagged frames.

- :func:`stiff_expression`: the output's facial expression does not follow the performance (landmarks of mouth,
  brows and jaw on the output vs on the plate, after removing head pose and the constant shape change of the
  de-aging).
- :func:`unnatural_eyes`: the output's eye landmarks (lids, irises) or gaze differ from the plate's.
- :func:`flicker`: spikes in the frame-to-frame change of the edit (output - plate) inside the face: the plate's
  own motion cancels, a patch that pops brighter for one frame does not.
- :func:`seam_score` / :func:`seams`: an edge along the paste-back mask boundary that the plate does not have.

Scores are in units that an artist can read: landmark scores in inter-ocular distances (IOD), flicker and seams in 8-bit grey
levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True, slots=True, eq=False)
class FlagSeries:
    """One flag over a shot.

    Attributes:
        name: ``"stiff_expression"``, ``"unnatural_eyes"``, ``"flicker"`` or ``"seams"``.
        frames: (T,) int output frame numbers the scores belong to.
        score: (T,) float64 per-frame score (NaN where it could not be computed); unit in ``unit``.
        threshold: frames with ``score > threshold`` are flagged.
        unit: unit of ``score`` and ``threshold``.
        flagged: (F,) int frame numbers flagged, ascending.
    """

    name: str
    frames: np.ndarray
    score: np.ndarray
    threshold: float
    unit: str
    flagged: np.ndarray


def _series(name: str, frames, score: np.ndarray, threshold: float, unit: str) -> FlagSeries:
    score = np.asarray(score, np.float64)
    frames = np.arange(len(score)) if frames is None else np.asarray(frames, int)
    if frames.shape != score.shape:
        raise ConfigError(f"{name}: {len(frames)} frame numbers for {len(score)} scores")
    with np.errstate(invalid="ignore"):
        hit = np.nan_to_num(score, nan=-np.inf) > threshold
    return FlagSeries(name, frames, score, float(threshold), unit, frames[hit])


# -- landmarks -----------------------------------------------------------------------------------------------
def _check_landmarks(name: str, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 3 or a.shape[2] != 2 or a.shape != b.shape:
        raise ConfigError(f"{name}: landmarks must be two (T, N, 2) arrays of the same shape, got {a.shape} and {b.shape}")
    return a, b


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama 1991) taking ``src`` (N, 2) onto ``dst`` (N, 2): returns ``(A, ms, md)``
    with ``A`` = scale * R (2, 2), so that ``(x - ms) @ A.T + md`` maps a point."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    u, sig, vt = np.linalg.svd(d.T @ s)
    e = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    scale = (sig * np.diag(e)).sum() / max((s ** 2).sum(), 1e-12)
    return scale * (u @ e @ vt), ms, md


def landmark_deviation(plate: np.ndarray, output: np.ndarray, align_idx: np.ndarray, score_idx: np.ndarray,
                       iod: np.ndarray | float) -> np.ndarray:
    """Per-frame RMS deviation of ``output`` landmarks from ``plate`` landmarks over ``score_idx``, in IOD.

    Plate and output landmarks of every frame are mapped into one canonical frame (the first complete plate
    frame) by similarity transforms over ``align_idx`` (head pose and scale), and the median residual over the
    shot is subtracted, which removes the constant shape change a de-aging makes (a younger jaw line is not an
    expression error). Frames with NaN landmarks score NaN.

    Args:
        plate, output: (T, N, 2) pixel landmarks of the same scheme.
        align_idx: indices of stable landmarks used for alignment (e.g. eye corners, nose bridge).
        score_idx: indices whose deviation is scored.
        iod: (T,) or scalar inter-ocular distance in pixels on the plate.
    """
    plate, output = _check_landmarks("landmark_deviation", plate, output)
    T = plate.shape[0]
    complete = np.isfinite(plate).all(axis=(1, 2)) & np.isfinite(output).all(axis=(1, 2))
    if not complete.any():
        return np.full(T, np.nan)
    r = int(np.argmax(complete))
    ref = plate[r, align_idx]
    resid = np.full((T, len(score_idx), 2), np.nan)
    for t in np.flatnonzero(complete):
        p, o = plate[t], output[t]
        ap, mps, mpd = similarity_transform(p[align_idx], ref)
        ao, mos, mod = similarity_transform(o[align_idx], ref)
        resid[t] = ((o[score_idx] - mos) @ ao.T + mod) - ((p[score_idx] - mps) @ ap.T + mpd)  # (S, 2) ref pixels
    resid[complete] -= np.median(resid[complete], axis=0, keepdims=True)
    iod_ref = float(np.broadcast_to(np.asarray(iod, np.float64), (T,))[r])
    return np.sqrt((resid ** 2).sum(-1).mean(axis=1)) / iod_ref


def stiff_expression(plate: np.ndarray, output: np.ndarray, align_idx, expr_idx, iod, frames=None,
                     threshold: float = 0.04) -> FlagSeries:
    """Frames whose expression landmarks (mouth, brows, jaw: ``expr_idx``) on the output deviate from the plate's
    by more than ``threshold`` IOD (RMS, after pose alignment and removing the shot's constant shape change).
    0.04 IOD is about 2.5 mm on an adult face: a mouth corner that does not follow the performance."""
    score = landmark_deviation(plate, output, np.asarray(align_idx), np.asarray(expr_idx), iod)
    return _series("stiff_expression", frames, score, threshold, "IOD")


def gaze_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between gaze directions ``a`` and ``b`` (..., 3); NaN where either is NaN."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1.0, 1.0)))


def unnatural_eyes(plate: np.ndarray, output: np.ndarray, align_idx, eye_idx, iod, frames=None,
                   threshold: float = 0.03, gaze_plate: np.ndarray | None = None,
                   gaze_output: np.ndarray | None = None, gaze_threshold_deg: float = 5.0) -> FlagSeries:
    """Frames whose eye landmarks (lids and irises: ``eye_idx``) on the output deviate from the plate's by more
    than ``threshold`` IOD, or -- when gazes are given as (T, 2, 3) unit vectors (left, right eye) -- whose gaze
    differs by more than ``gaze_threshold_deg`` (the gaze term is rescaled so that the gaze threshold maps onto
    ``threshold``; the score is the larger of the two)."""
    score = landmark_deviation(plate, output, np.asarray(align_idx), np.asarray(eye_idx), iod)
    if gaze_plate is not None and gaze_output is not None:
        ang = np.nanmax(gaze_angle_deg(np.asarray(gaze_plate, float), np.asarray(gaze_output, float)), axis=-1)
        score = np.fmax(score, ang / gaze_threshold_deg * threshold)
    return _series("unnatural_eyes", frames, score, threshold, "IOD")


# -- image-space flags -----------------------------------------------------------------------------------------
def _sum_pixels() -> np.ndarray:
    """(766, 3) uint8 pixels whose channels sum to 0..765."""
    s = np.arange(766)
    r = np.minimum(s, 255)
    g = np.minimum(s - r, 255)
    return np.stack([r, g, s - r - g], 1).astype(np.uint8)


#: the channel mean of an RGB uint8 pixel by its channel sum, as ``astype(dtype).mean(-1)`` computes it: the sum of
#: three integers is exact in float32 and float64, so the mean depends on the sum alone
_MEAN_OF_SUM = {np.dtype(np.float32): _sum_pixels().astype(np.float32).mean(-1),
                np.dtype(np.float64): _sum_pixels().astype(np.float64).mean(-1)}


def channel_mean(img: np.ndarray, dtype=np.float64) -> np.ndarray:
    """``img.astype(dtype).mean(-1)`` of an (H, W, C) image, the same values; for RGB uint8 through its channel sum
    and a table (~6x faster on a 960x540 frame)."""
    img = np.asarray(img)
    table = _MEAN_OF_SUM.get(np.dtype(dtype))
    if table is None or img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
        return img.astype(dtype).mean(-1)
    s = img[..., 0].astype(np.uint16)
    s += img[..., 1]
    s += img[..., 2]
    return np.take(table, s)


def _gray(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    return channel_mean(img, np.float64) if img.ndim == 3 else img.astype(np.float64)


def temporal_difference(frames: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(T,) mean absolute grey-level difference between consecutive frames (T, H, W[, C]) inside ``mask`` ((H, W)
    or (T, H, W) weights); element 0 is 0."""
    g = np.asarray(frames, np.float64)
    g = g.mean(-1) if g.ndim == 4 else g
    if g.ndim != 3:
        raise ConfigError(f"temporal_difference: frames must be (T, H, W[, C]), got {np.asarray(frames).shape}")
    d = np.abs(np.diff(g, axis=0))
    if mask is None:
        out = d.mean(axis=(1, 2))
    else:
        m = np.asarray(mask, np.float64)
        m = np.broadcast_to(m, g.shape)[1:] if m.ndim == 2 else np.maximum(m[1:], m[:-1])
        out = (d * m).sum(axis=(1, 2)) / np.maximum(m.sum(axis=(1, 2)), 1e-9)
    return np.concatenate([[0.0], out])


def flicker(output_diff: np.ndarray, plate_diff: np.ndarray | None = None, frames=None, k: float = 5.0,
            min_levels: float = 2.0) -> FlagSeries:
    """Frames where a frame-to-frame difference series spikes.

    Pass ``temporal_difference(output - plate, mask)`` (the change of the edit itself; the report does this), or
    the output's and the plate's own series: ``excess = output_diff - plate_diff``. A frame is flagged when its excess
    exceeds ``median + k * 1.4826 * MAD`` of the shot (a robust outlier bound) and ``min_levels`` grey levels.
    Score: the excess in grey levels; threshold: that bound. Inputs: (T,) series from :func:`temporal_difference`.
    """
    out = np.asarray(output_diff, np.float64)
    excess = out - (np.asarray(plate_diff, np.float64) if plate_diff is not None else 0.0)
    body = excess[1:] if len(excess) > 1 else excess
    med = float(np.nanmedian(body)) if np.isfinite(body).any() else 0.0
    mad = float(np.nanmedian(np.abs(body - med))) if np.isfinite(body).any() else 0.0
    thr = max(med + k * 1.4826 * mad, min_levels)
    return _series("flicker", frames, excess, thr, "grey levels")


def _boundary_band(mask: np.ndarray, width: int) -> np.ndarray:
    import cv2

    m = (np.asarray(mask, np.float64) > 0.5).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return (cv2.dilate(m, kernel) - cv2.erode(m, kernel)) > 0


def _band_in_box(mask: np.ndarray, width: int) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """(slices of a box, :func:`_boundary_band` of ``mask`` inside it): the band is False outside the box (the
    mask's > 0.5 pixels grown by ``width`` + 1, within the image); None when the mask has no such pixel. Inside it
    the values are the whole frame's: its pixels more than ``width`` from its edge see only the box, and those
    nearer are 0 in the mask, which a dilation or an erosion of the box gives them too."""
    from ..retouch.roi import mask_box

    box = mask_box(np.asarray(mask) > 0.5)
    if box is None:
        return None
    pad = width + 1
    y0, y1, x0, x1 = box
    sl = (slice(max(0, y0 - pad), y1 + pad), slice(max(0, x0 - pad), x1 + pad))
    return sl, _boundary_band(np.asarray(mask)[sl], width)


def _grad_mag(g: np.ndarray) -> np.ndarray:
    import cv2

    gx = cv2.Sobel(g, cv2.CV_64F, 1, 0, ksize=3) / 8.0  # Sobel 3x3 sums 8 x the unit-step gradient
    gy = cv2.Sobel(g, cv2.CV_64F, 0, 1, ksize=3) / 8.0
    return np.hypot(gx, gy)


def seam_score(composite: np.ndarray, mask: np.ndarray, plate: np.ndarray | None = None, width: int = 2) -> float:
    """Height in grey levels of a step along the paste-back mask boundary.

    With the ``plate``: the edit ``e = composite - plate`` is examined in a band of +-``width`` px around the 0.5
    contour of ``mask``; the score is twice the 90th percentile of ``|grad e|`` there (a central difference sees a
    step of height h as a gradient peak of h/2, so a hard paste h levels off scores about h, wherever along the
    boundary 10% of it runs; a feather of height h and Gaussian width sigma scores about 0.8 h / sigma; the
    plate's own texture cancels). Without the plate: the same on the composite itself, minus the same percentile
    in rings just inside and outside the band. NaN when the mask has no boundary."""
    if plate is not None:  # on the band's box and a pixel around it (all the 3x3 gradient needs): the same values
        boxed = _band_in_box(mask, width)
        if boxed is None or not boxed[1].any():
            return float("nan")
        (by, bx), b = boxed
        ys, xs = np.nonzero(b)
        ys, xs = ys + by.start, xs + bx.start
        sl = (slice(max(0, ys.min() - 2), ys.max() + 3), slice(max(0, xs.min() - 2), xs.max() + 3))
        band = np.zeros(np.shape(mask)[:2], bool)
        band[by, bx] = b
        return float(2.0 * np.percentile(_grad_mag(_gray(composite[sl]) - _gray(plate[sl]))[band[sl]], 90))
    band = _boundary_band(mask, width)
    if not band.any():
        return float("nan")
    gc = _grad_mag(_gray(composite))
    ring = _boundary_band(mask, 3 * width + 2) & ~_boundary_band(mask, width + 1)
    return float(2.0 * (np.percentile(gc[band], 90) - (np.percentile(gc[ring], 90) if ring.any() else 0.0)))


def seams(composites, masks, plates=None, frames=None, threshold: float = 5.0, width: int = 2) -> FlagSeries:
    """Per-frame :func:`seam_score`; frames with an edge higher than ``threshold`` grey levels are flagged (see
    tests/report/test_flags.py for measured scores of hard and feathered pastes)."""
    n = len(composites)
    score = np.array([seam_score(composites[i], masks[i], None if plates is None else plates[i], width)
                      for i in range(n)], np.float64)
    return _series("seams", frames, score, threshold, "grey levels")
