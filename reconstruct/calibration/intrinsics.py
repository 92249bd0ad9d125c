"""Per-camera intrinsics from board detections: OpenCV's pinhole + distortion model, or its fisheye model.

The result also carries the board pose of every view used (board-to-camera), which seeds the joint extrinsic
solve (:mod:`.extrinsics`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import CalibrationError
from ..rig import BoardSpec
from .detect import BoardDetection

log = logging.getLogger(__name__)

#: fewer views than this -> intrinsics are not trusted (an error below MIN_VIEWS_HARD, a warning below this)
MIN_VIEWS = 10
MIN_VIEWS_HARD = 3


@dataclass(frozen=True, slots=True)
class IntrinsicsResult:
    """Intrinsics of one camera and the board poses they were estimated with.

    Attributes:
        camera: camera name.
        K: (3, 3) float64 intrinsic matrix, pixels.
        dist: (N,) float64 distortion (pinhole: k1 k2 p1 p2 k3 [k4 k5 k6]; fisheye: k1..k4).
        model: ``"pinhole"`` or ``"fisheye"``.
        image_size: (width, height), pixels.
        views: (V,) view indices used.
        rvecs: (V, 3) float64 board-to-camera Rodrigues vectors.
        tvecs: (V, 3) float64 board-to-camera translations, metres.
        rms: RMS reprojection error over all corners, pixels.
        per_view_rms: (V,) float64 RMS per view, pixels.
    """

    camera: str
    K: np.ndarray
    dist: np.ndarray
    model: str
    image_size: tuple[int, int]
    views: np.ndarray
    rvecs: np.ndarray
    tvecs: np.ndarray
    rms: float
    per_view_rms: np.ndarray


def _check(dets: list[BoardDetection], camera: str) -> tuple[int, int]:
    if len(dets) < MIN_VIEWS_HARD:
        raise CalibrationError(
            f"camera {camera!r}: the board was found in only {len(dets)} calibration views; at least "
            f"{MIN_VIEWS_HARD} are needed (and {MIN_VIEWS}+ to trust the result)",
            hint=f"capture {MIN_VIEWS - len(dets)} more views of the board ({MIN_VIEWS} or more in all) with "
                 f"camera {camera!r}: tilted up to ~40 degrees, near the image corners and edges as well as in "
                 "the centre")
    sizes = {d.image_size for d in dets}
    if len(sizes) > 1:
        raise CalibrationError(f"camera {camera!r}: calibration images have different sizes {sorted(sizes)}",
                               hint="all images of one camera must have the same resolution; remove the odd ones "
                                    "or recapture at the rig's resolution")
    return next(iter(sizes))


def homography_focal(obj: list[np.ndarray], img: list[np.ndarray], size: tuple[int, int]) -> float | None:
    """Robust focal length guess (pixels): the median over views of each view's own estimate.

    Each view's board-to-image homography gives, with the principal point at the image centre and square pixels,
    two linear constraints on 1/f^2 (Zhang's orthogonality and equal-norm conditions); a view is solved on its own
    and views whose constraints are inconsistent (1/f^2 <= 0) are skipped. OpenCV's ``initCameraMatrix2D`` instead
    solves all views' constraints together by least squares, where one ill-conditioned view (a few nearly
    collinear corners) can outweigh all others and start the calibration at a fifth of the true focal length.
    Returns None when no view gives an estimate.
    """
    import cv2

    c = np.array([(size[0] - 1) / 2, (size[1] - 1) / 2])
    fs = []
    for o, i in zip(obj, img):
        o = np.asarray(o, np.float64).reshape(-1, 3)[:, :2]
        i = np.asarray(i, np.float64).reshape(-1, 2) - c
        if len(o) < 4:
            continue
        H, _ = cv2.findHomography(o, i)
        if H is None:
            continue
        h1, h2 = H[:, 0], H[:, 1]
        a = np.array([h1[0] * h2[0] + h1[1] * h2[1], h1[0] ** 2 + h1[1] ** 2 - h2[0] ** 2 - h2[1] ** 2])
        b = np.array([h1[2] * h2[2], h1[2] ** 2 - h2[2] ** 2])
        x = -(a @ b) / max(a @ a, 1e-300)  # least-squares 1/f^2 of this view
        if x > 0:
            fs.append(1.0 / np.sqrt(x))
    return float(np.median(fs)) if fs else None


def _multi_start(obj, img, size, flags, crit):
    """``cv2.calibrateCamera`` from OpenCV's own initial guess, from the robust per-view guess
    (:func:`homography_focal`) and from focal guesses of 0.5-2 image widths.

    OpenCV initialises from the views' homographies, which few or partial views (a small board, a low-resolution
    witness camera) can send into a wrong minimum (f at a fifth of the truth, RMS 10x the detection noise); the
    lowest RMS among plausible solutions is kept.
    """
    import cv2

    w, h = size
    best = None
    starts: list[np.ndarray | None] = [None]
    f0 = homography_focal(obj, img, size)
    if f0 is not None and 0.1 * w < f0 < 20 * w:
        starts.append(np.array([[f0, 0, (w - 1) / 2], [0, f0, (h - 1) / 2], [0, 0, 1.0]]))
    for s in (0.5, 0.8, 1.2, 2.0):
        starts.append(np.array([[s * w, 0, (w - 1) / 2], [0, s * w, (h - 1) / 2], [0, 0, 1.0]]))

    def calibrate(K0):
        f = flags if K0 is None else flags | cv2.CALIB_USE_INTRINSIC_GUESS
        if K0 is None and flags & cv2.CALIB_FIX_ASPECT_RATIO:
            K0 = np.eye(3)  # OpenCV reads fy/fx from the guess
        try:
            return cv2.calibrateCamera(obj, img, size, None if K0 is None else K0.copy(), None, flags=f,
                                       criteria=crit)
        except cv2.error:
            return None

    # the starts are independent solves (OpenCV lets go of the GIL): on the idle cores, taken in the same order
    from ..executors.local import available_cores

    threads = min(len(starts), available_cores())
    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=threads) as pool:
            outs = list(pool.map(calibrate, starts))
    else:
        outs = [calibrate(K0) for K0 in starts]
    for out in outs:
        if out is None:
            continue
        fx, fy = out[1][0, 0], out[1][1, 1]
        plausible = 0.1 * w < fx < 20 * w and 0.1 * w < fy < 20 * w and np.isfinite(out[0])
        if plausible and (best is None or out[0] < best[0] - 1e-9):
            best = out
    return best


def calibrate_intrinsics(dets: list[BoardDetection], board: BoardSpec, *, model: Literal["pinhole", "fisheye"] = "pinhole",
                         fix_aspect_ratio: bool = False, zero_tangent: bool = False, rational: bool = False,
                         fix_k3: bool = False, camera: str | None = None) -> IntrinsicsResult:
    """Calibrate one camera from its detections (``cv2.calibrateCamera`` / ``cv2.fisheye.calibrate``).

    ``fix_aspect_ratio`` keeps fx/fy at the initial ratio (1), as OpenCV's ``CALIB_FIX_ASPECT_RATIO``;
    ``rational`` adds k4..k6; ``fix_k3`` drops k3 (advisable with few or central-only views).
    """
    import cv2

    camera = camera or (dets[0].camera if dets else "?")
    w, h = _check(dets, camera)
    obj = [d.object_points(board).astype(np.float32).reshape(-1, 1, 3) for d in dets]
    img = [d.corners.astype(np.float32).reshape(-1, 1, 2) for d in dets]
    crit = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    try:
        if model == "fisheye":
            flags = cv2.fisheye.CALIB_RECOMPUTE_EXTRINSIC | cv2.fisheye.CALIB_FIX_SKEW
            rms, K, dist, rvecs, tvecs = cv2.fisheye.calibrate(obj, img, (w, h), None, None, flags=flags,
                                                               criteria=crit)
        else:
            flags = 0
            if fix_aspect_ratio:
                flags |= cv2.CALIB_FIX_ASPECT_RATIO
            if zero_tangent:
                flags |= cv2.CALIB_ZERO_TANGENT_DIST
            if rational:
                flags |= cv2.CALIB_RATIONAL_MODEL
            if fix_k3:
                flags |= cv2.CALIB_FIX_K3
            best = _multi_start(obj, img, (w, h), flags, crit)
            if best is None:
                raise CalibrationError(f"camera {camera!r}: calibration from {len(dets)} views did not converge to a "
                                       "plausible focal length", hint="add views with the board tilted and at "
                                       "different places in the image")
            rms, K, dist, rvecs, tvecs = best
    except cv2.error as exc:
        raise CalibrationError(f"camera {camera!r}: OpenCV could not calibrate from {len(dets)} views: {exc}",
                               hint="add views with the board tilted and at different places in the image") from exc
    rvecs = np.asarray(rvecs, np.float64).reshape(-1, 3)
    tvecs = np.asarray(tvecs, np.float64).reshape(-1, 3)
    dist = np.asarray(dist, np.float64).ravel()
    per_view = np.empty(len(dets))
    for i, (o, p) in enumerate(zip(obj, img)):
        if model == "fisheye":
            proj, _ = cv2.fisheye.projectPoints(o.astype(np.float64), rvecs[i], tvecs[i], K, dist)
        else:
            proj, _ = cv2.projectPoints(o.astype(np.float64), rvecs[i], tvecs[i], K, dist)
        per_view[i] = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - p.reshape(-1, 2)) ** 2, axis=1))))
    if not np.isfinite(rms) or rms > 50:
        raise CalibrationError(f"camera {camera!r}: intrinsic calibration diverged (RMS {rms:.1f} px)",
                               hint="check the board size in the rig file and remove blurred views")
    log.info("camera %s: intrinsics from %d views, RMS %.3f px, f = (%.1f, %.1f)", camera, len(dets), rms,
             K[0, 0], K[1, 1])
    return IntrinsicsResult(camera=camera, K=np.asarray(K, np.float64), dist=dist, model=model, image_size=(w, h),
                            views=np.array([d.view for d in dets]), rvecs=rvecs, tvecs=tvecs, rms=float(rms),
                            per_view_rms=per_view)
