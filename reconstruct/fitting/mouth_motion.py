"""How fast the detected mouth moves, frame by frame: where the temporal smoothing of the mouth's expression modes
may let go (``FitSettings.mouth_relief``).

Speech at 24-30 frames/s opens and closes the mouth within one or two frames (obama_address: the inner lips 0 and
32 % of the inter-ocular distance apart on consecutive frames). The fit's quadratic smoothing of the expression's
second difference cuts such openings (the QC report then flags a stiff expression), while a weaker smoothing
everywhere lets the detector's noise through on slow takes. Here the detections decide: the mouth's shape is
measured per frame and camera as the distances between facing inner-lip points and between the lip corners, in
inter-ocular distances (a rotation- and scale-free signal made of many landmarks at once, so one point's noise
barely moves it); its second difference, against the take's own typical value, says where the mouth accelerates
beyond what the detector's scatter makes. A frame counts only when every camera that sees the mouth shows it:
MediaPipe's reading of a wide-open mouth wobbles in an oblique IR witness while the hero holds still (seed 21's
scream, docs/fitting.md), and a real motion shows in all views. Only there the smoothing rows of the mouth's
modes are weakened.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..face.landmark_groups import MP_INNER_LIPS

#: facing points of the inner lips (upper, lower) and the lip corners, per landmark scheme
MOUTH_PAIRS: dict[str, tuple[tuple[int, int], ...]] = {
    "mediapipe478": ((191, 95), (80, 88), (81, 178), (82, 87), (13, 14), (312, 317), (311, 402), (310, 318),
                     (415, 324), (61, 291)),
    "ibug68": ((61, 67), (62, 66), (63, 65), (48, 54)),
}

#: MediaPipe's / iBUG's inner-lip contour (corners included): the points ``FitSettings.inner_lip_weight`` scales
INNER_LIPS: dict[str, tuple[int, ...]] = {
    "mediapipe478": MP_INNER_LIPS,
    "ibug68": tuple(range(60, 68)),
}

#: how fast the relief grows with the detected acceleration beyond the threshold (a row weight of
#: ``(k / accel)^RELIEF_POWER``). Measured on obama / seed 11 / seed 21 (docs/fitting.md): 2 relieves too little
#: to keep obama's 2-frame openings, 4 keeps them at the same threshold; 6-8 let more of seed 21's noise through.
RELIEF_POWER = 4


def mouth_shape(obs: np.ndarray, scheme: str) -> np.ndarray | None:
    """(T, C, K) distances of the scheme's :data:`MOUTH_PAIRS` in inter-ocular distances (between the centres of
    the two eye contours) of landmarks ``obs`` (T, C, N, 2); NaN where a camera misses a point; None for a scheme
    without pairs."""
    from .scoring import landmark_groups

    pairs = MOUTH_PAIRS.get(scheme)
    groups = landmark_groups(scheme)
    if pairs is None or groups is None:
        return None
    obs = np.asarray(obs, np.float64)
    a, b = np.array(pairs).T
    d = np.linalg.norm(obs[..., a, :] - obs[..., b, :], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a camera without the face: all NaN
        iod = np.linalg.norm(np.nanmean(obs[..., groups["iod_left"], :], -2)
                             - np.nanmean(obs[..., groups["iod_right"], :], -2), axis=-1)
        return d / np.where(iod > 0, iod, np.nan)[..., None]


def mouth_acceleration(obs: np.ndarray, scheme: str) -> np.ndarray | None:
    """(T,) how far the detected mouth accelerates at each frame, in multiples of the take's typical value (the
    median over frames), per camera, then the least of the cameras (all must show it); NaN at the first and last
    frame and where no camera saw three consecutive frames. None for a scheme without :data:`MOUTH_PAIRS`."""
    m = mouth_shape(obs, scheme)
    if m is None:
        return None
    T, C = m.shape[:2]
    out = np.full((T, C), np.nan)
    if T >= 3:
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # pairs a camera does not see: NaN
            a = np.sqrt(np.nanmean((m[:-2] - 2 * m[1:-1] + m[2:]) ** 2, axis=-1))  # (T-2, C), RMS over the pairs
            typical = np.nanmedian(a, axis=0)  # (C,)
            out[1:-1] = a / np.where(typical > 0, typical, np.nan)[None]
    r = np.full(T, np.nan)
    ok = np.isfinite(out).any(1)
    if ok.any():
        r[ok] = np.nanmin(out[ok], axis=1)
    return r


def smoothing_relief(accel: np.ndarray, k: float) -> np.ndarray:
    """(T,) weight in (0, 1] of the mouth modes' smoothing row centred on each frame: 1 where the detected mouth
    accelerates up to ``k`` times the take's typical value (``accel`` from :func:`mouth_acceleration`), else
    ``(k / accel)^RELIEF_POWER``: the allowed acceleration (the smoothing's standard deviation there) then grows as
    the square of the detected one. NaN -> 1."""
    a = np.nan_to_num(np.asarray(accel, np.float64), nan=0.0)
    return np.where(a > k, (k / np.maximum(a, 1e-12)) ** RELIEF_POWER, 1.0)
