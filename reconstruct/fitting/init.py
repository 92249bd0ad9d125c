"""Initial head poses for the fit: per frame, PnP of the mean shape's landmarks in the camera that sees most."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from ..camera import CameraModel
from ..errors import FitError

log = logging.getLogger(__name__)


def init_poses(mean_landmarks: np.ndarray, landmark_weight: np.ndarray, cams: Sequence[CameraModel],
               obs: np.ndarray, conf: np.ndarray, min_points: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model-to-world head poses from landmarks.

    Args:
        mean_landmarks: (N, 3) model-frame landmarks of the mean shape, metres. landmark_weight: (N,) (0 = unused).
        cams: the C cameras. obs: (T, C, N, 2) pixels (NaN = missing). conf: (T, C, N).
    Returns:
        rotvec (T, 3), t (T, 3) (model -> world), ok (T,) bool (False: no camera had ``min_points`` landmarks;
        the pose is then copied from the nearest frame that has one).
    """
    import cv2

    T, C, N, _ = obs.shape
    rv, tt, ok = np.zeros((T, 3)), np.zeros((T, 3)), np.zeros(T, bool)
    good_lm = landmark_weight >= 0.5  # skip contour points: they slide
    for f in range(T):
        valid = np.isfinite(obs[f]).all(-1) & (conf[f] > 0.3) & good_lm[None]  # (C, N)
        order = np.argsort(-valid.sum(1))
        for c in order:
            m = valid[c]
            if m.sum() < min_points:
                break
            xn = cams[c].undistort_points(obs[f, c, m])
            okp, r, t = cv2.solvePnP(mean_landmarks[m].astype(np.float64), xn.astype(np.float64), np.eye(3), None,
                                     flags=cv2.SOLVEPNP_SQPNP)
            if not okp:
                continue
            r, t = cv2.solvePnP(mean_landmarks[m].astype(np.float64), xn.astype(np.float64), np.eye(3), None,
                                r, t, True, flags=cv2.SOLVEPNP_ITERATIVE)[1:]
            Rcm = cv2.Rodrigues(r)[0]
            Rw = cams[c].R.T @ Rcm
            tw = cams[c].R.T @ (t.reshape(3) - cams[c].t)
            rv[f] = cv2.Rodrigues(Rw)[0].reshape(3)
            tt[f] = tw
            ok[f] = True
            break
    if not ok.any():
        raise FitError("no frame has enough landmarks in any camera to estimate a head pose",
                       hint="check the detect stage's report (out/detect/report.json): was a face found?")
    idx = np.flatnonzero(ok)
    for f in np.flatnonzero(~ok):
        j = idx[np.argmin(np.abs(idx - f))]
        rv[f], tt[f] = rv[j], tt[j]
    return rv, tt, ok
