"""Calibration quality: residuals per camera and view, board-corner error in millimetres, image coverage,
parameter uncertainty, and the warnings that say when a result should not be trusted (RMS alone is not quality:
a camera calibrated from views in the image centre only has a low RMS and wrong distortion)."""

from __future__ import annotations

import numpy as np

from ..rig import BoardSpec
from .boards import corner_points

#: the image is cut into this grid of cells (columns, rows) to measure coverage
COVERAGE_GRID = (8, 6)
#: below this fraction of covered cells the distortion estimate is extrapolated over much of the image
MIN_COVERAGE = 0.5
MIN_VIEWS = 10
MIN_SHARED_VIEWS = 5
MAX_RMS_PX = 1.0
#: a camera whose RMS exceeds this after the bundle adjustment has diverged or has wrong views (pixels)
ABSURD_RMS_PX = 3.0
#: a view whose detected corners span less than this (standard deviation along their narrower axis, in squares,
#: with any one corner left out: see view_span_squares) is nearly collinear: its homography, and so its PnP pose
#: and its share of the intrinsic initialisation, are ill-conditioned (a column of corners plus one: < 0.25; a 2x3
#: block: 0.47)
MIN_VIEW_SPAN_SQUARES = 0.4
#: pose uncertainty (1 sigma) above which the rig geometry is flagged: 0.1 deg moves a face 1 m away by ~2 mm
MAX_ROTATION_STD_DEG = 0.1
MAX_TRANSLATION_STD_MM = 2.0
#: an estimated board corner further than this from its nominal position is worth a warning (mm)
MAX_BOARD_OFFSET_MM = 1.5
_REGIONS = (("top-left", "top", "top-right"), ("left", "centre", "right"), ("bottom-left", "bottom", "bottom-right"))


def coverage(points: np.ndarray, image_size: tuple[int, int], grid: tuple[int, int] = COVERAGE_GRID) -> tuple[float, np.ndarray]:
    """Fraction of grid cells holding at least one corner, and the (rows, cols) bool occupancy grid."""
    w, h = image_size
    gx, gy = grid
    occ = np.zeros((gy, gx), bool)
    p = np.asarray(points, float).reshape(-1, 2)
    p = p[np.all(np.isfinite(p), axis=1)]
    if len(p):
        cx = np.clip((p[:, 0] / w * gx).astype(int), 0, gx - 1)
        cy = np.clip((p[:, 1] / h * gy).astype(int), 0, gy - 1)
        occ[cy, cx] = True
    return float(occ.mean()), occ


def empty_regions(points: np.ndarray, image_size: tuple[int, int]) -> list[str]:
    """Names of the 3x3 image regions (``"top-left"`` ...) that no corner falls into."""
    _, occ = coverage(points, image_size, (3, 3))
    return [_REGIONS[r][c] for r in range(3) for c in range(3) if not occ[r, c]]


def board_error_mm(K: np.ndarray, dist: np.ndarray, model: str, T_cam: np.ndarray, T_board: np.ndarray,
                   uv: np.ndarray, ids: np.ndarray, board: BoardSpec,
                   offsets: np.ndarray | None = None) -> np.ndarray:
    """Distance, in millimetres on the board, between each detected corner's back-projection and the corner.

    The detected pixel's ray is intersected with the estimated board plane; the result is compared with the
    corner's estimated position (nominal plus ``offsets`` (max id + 1, 3), board frame, metres, when the board's
    shape was estimated). (N,) float64.
    """
    import cv2

    pts = np.asarray(uv, np.float64).reshape(-1, 1, 2)
    if model == "fisheye":
        xn = cv2.fisheye.undistortPoints(pts, K, dist).reshape(-1, 2)
    else:
        xn = cv2.undistortPoints(pts, K, dist).reshape(-1, 2)
    d = np.hstack([xn, np.ones((len(xn), 1))])
    T = T_cam @ T_board  # board -> camera
    n, p0 = T[:3, 2], T[:3, 3]
    s = (n @ p0) / (d @ n)
    X = d * s[:, None]
    q = corner_points(board)[ids]
    if offsets is not None:
        q = q + offsets[ids]
    Xk = q @ T[:3, :3].T + T[:3, 3]
    return 1000.0 * np.linalg.norm(X - Xk, axis=1)


def camera_warnings(name: str, n_views: int, cov: float, empty: list[str], rms: float, std: dict[str, float],
                    K: np.ndarray, shared: int | None, bad_views: list[tuple[int, float]]) -> list[str]:
    """Human-readable warnings for one camera, each naming the camera and what to capture next."""
    out = []
    if n_views < MIN_VIEWS:
        out.append(f"camera {name!r}: only {n_views} board views; capture {MIN_VIEWS - n_views} more "
                   f"({MIN_VIEWS} or more in all), tilted up to ~40 degrees and spread over the image")
    if cov < MIN_COVERAGE:
        where = ", ".join(empty) if empty else "the image borders"
        out.append(f"camera {name!r}: board corners cover only {cov:.0%} of the image (8x6 cells); lens distortion "
                   f"is extrapolated there: capture views with the board in {where}")
    if rms > MAX_RMS_PX:
        out.append(f"camera {name!r}: reprojection RMS {rms:.2f} px is high; check for motion blur, a board that "
                   "is not flat, a wrong square size, or views that are not simultaneous")
    f = K[0, 0]
    if std.get("fx", 0.0) > 0.005 * f:
        out.append(f"camera {name!r}: focal length uncertain by +-{std['fx']:.1f} px ({std['fx'] / f:.1%}); add views "
                   "with the board strongly tilted and at several distances")
    if std.get("rotation_deg", 0.0) > MAX_ROTATION_STD_DEG or std.get("translation_mm", 0.0) > MAX_TRANSLATION_STD_MM:
        out.append(f"camera {name!r}: pose in the rig uncertain by +-{std['rotation_deg']:.2f} deg / "
                   f"+-{std['translation_mm']:.1f} mm (1 sigma); capture more views seen by this camera and its "
                   "neighbours together, board tilted, spread over both images")
    if shared is not None and shared < MIN_SHARED_VIEWS:
        out.append(f"camera {name!r}: only {shared} views shared with the rest of the rig; capture more views where "
                   "this camera and its neighbours see the board at the same time")
    for v, r in bad_views:
        out.append(f"camera {name!r}: view {v} has RMS {r:.2f} px (more than 3x the camera's median); "
                   "it may be blurred or not simultaneous - consider deleting it")
    return out


def board_shape(offsets: np.ndarray | None, ids: np.ndarray) -> dict:
    """Record of the estimated board shape: ``refined``, ``max_offset_mm``, ``rms_offset_mm``, ``worst_corner``
    and ``offsets_mm`` (corner id -> [x, y, z] offset from the nominal position, board frame, mm) for the corners
    ``ids`` that were observed. ``offsets``: (max id + 1, 3) metres, or None when the board was held rigid."""
    if offsets is None or not len(ids):
        return {"refined": False}
    mm = 1000.0 * np.asarray(offsets)[ids]
    n = np.linalg.norm(mm, axis=1)
    return {"refined": True, "max_offset_mm": float(n.max()), "rms_offset_mm": float(np.sqrt(np.mean(n ** 2))),
            "worst_corner": int(ids[int(np.argmax(n))]),
            "offsets_mm": {str(int(i)): [round(float(v), 4) for v in o] for i, o in zip(ids, mm)}}


def board_shape_warning(shape: dict) -> str | None:
    """A warning when the estimated board deviates from its specification by more than ``MAX_BOARD_OFFSET_MM``."""
    if not shape.get("refined") or shape["max_offset_mm"] <= MAX_BOARD_OFFSET_MM:
        return None
    return (f"the board deviates from its specified geometry by up to {shape['max_offset_mm']:.1f} mm (corner "
            f"{shape['worst_corner']}); the calibration estimated and used its true shape, but check that it was "
            "printed at 100 % (no 'fit to page'), that the square and marker sizes in the rig file are measured, and "
            "that the board is flat and rigid")


def view_span_squares(corners_board: np.ndarray, square_size: float) -> float:
    """How far a view's detected corners are from collinear, in squares: the standard deviation along the minor
    principal axis of their board-plane (x, y) coordinates (metres, (N, 2) or (N, 3)), the smallest over leaving
    out any one corner (a row of corners plus one stray corner is as ill-conditioned as the row). 0 for collinear
    corners."""
    p = np.asarray(corners_board, float)[:, :2]
    if len(p) < 4:
        return 0.0
    spans = []
    for i in range(len(p)):
        q = np.delete(p, i, axis=0)
        spans.append(np.linalg.eigvalsh(np.cov(q.T, bias=True))[0])
    return float(np.sqrt(max(min(spans), 0.0)) / square_size)


def surely_spread(corners_board: np.ndarray, square_size: float, min_span: float = MIN_VIEW_SPAN_SQUARES) -> bool:
    """True when :func:`view_span_squares` is certainly at least ``min_span`` (without its leave-one-out loop): a
    corner left out lowers the board-plane scatter matrix ``S`` by ``n/(n-1) c c^T`` (``c``: the corner minus the
    centroid), so the smallest eigenvalue of every leave-one-out covariance is at least
    ``(lambda_min(S) - n/(n-1) max |c|^2) / (n-1)`` (Weyl); with a 1 % margin for rounding. False: undecided (ask
    :func:`view_span_squares`)."""
    p = np.asarray(corners_board, float)[:, :2]
    n = len(p)
    if n < 4:
        return False
    c = p - p.mean(0)
    lo = np.linalg.eigvalsh(c.T @ c)[0] - n / (n - 1) * float(np.max(np.sum(c * c, axis=1)))
    return bool(lo / (n - 1) >= 1.01 * (min_span * square_size) ** 2)
