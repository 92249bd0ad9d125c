"""Initial camera and board poses of a rig from simultaneous board views.

1. Board pose per (camera, view) by PnP with the camera's intrinsics (IPPE for the planar board, then
   Levenberg-Marquardt refinement).
2. Relative pose of every camera pair that saw the board at the same time: a robust average over the shared
   views (the median-closest view, then the chordal mean of the rotations within 5 degrees of it and the median
   translation).
3. A maximum spanning tree of the camera graph (edge weight: number of shared views) rooted at the reference
   camera chains the pairwise poses into world-to-camera poses; the world frame is the reference camera's.
4. Board-to-world pose per view from the camera with the most corners of that view.

Everything here is an *initialisation* for :mod:`.bundle`; accuracy comes from there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import CalibrationError
from ..rig import BoardSpec
from .detect import BoardDetection

log = logging.getLogger(__name__)


def _rt_to_T(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    import cv2

    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.asarray(rvec, np.float64).reshape(3))[0]
    T[:3, 3] = np.asarray(tvec, np.float64).reshape(3)
    return T


def _inv(T: np.ndarray) -> np.ndarray:
    Ti = np.eye(4)
    Ti[:3, :3] = T[:3, :3].T
    Ti[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return Ti


def _angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    c = (np.trace(Ra.T @ Rb) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(c, -1, 1))))


def _project_to_so3(M: np.ndarray) -> np.ndarray:
    U, _, Vt = np.linalg.svd(M)
    R = U @ Vt
    if np.linalg.det(R) < 0:
        U[:, -1] *= -1
        R = U @ Vt
    return R


def solve_board_pose(det: BoardDetection, board: BoardSpec, K: np.ndarray, dist: np.ndarray,
                     model: str = "pinhole") -> tuple[np.ndarray, float]:
    """Board-to-camera 4x4 transform of one detection, and its RMS reprojection error in pixels."""
    import cv2

    obj = det.object_points(board)
    if model == "fisheye":
        xn = cv2.fisheye.undistortPoints(det.corners.reshape(-1, 1, 2), K, dist).reshape(-1, 2)
        img, Kp, dp = xn, np.eye(3), np.zeros(5)
    else:
        img, Kp, dp = det.corners, K, dist
    ok, rvec, tvec = cv2.solvePnP(obj, img, Kp, dp, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        ok, rvec, tvec = cv2.solvePnP(obj, img, Kp, dp, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise CalibrationError(f"camera {det.camera!r} view {det.view}: PnP failed on {det.n} corners")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, Kp, dp, rvec, tvec)
    T = _rt_to_T(rvec, tvec)
    Xc = obj @ T[:3, :3].T + T[:3, 3]
    if model == "fisheye":
        proj = cv2.fisheye.projectPoints(Xc.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, dist)[0].reshape(-1, 2)
    else:
        proj = cv2.projectPoints(Xc, np.zeros(3), np.zeros(3), K, dist)[0].reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum((proj - det.corners) ** 2, axis=1))))
    return T, rms


@dataclass(frozen=True, slots=True)
class InitialPoses:
    """Initial rig geometry.

    Attributes:
        cameras: camera name -> (4, 4) world-to-camera transform (world = reference camera frame, metres).
        boards: view index -> (4, 4) board-to-world transform, metres.
        reference: the reference camera's name.
        shared_views: (camera a, camera b) -> number of views both saw (a < b alphabetically).
    """

    cameras: dict[str, np.ndarray]
    boards: dict[int, np.ndarray]
    reference: str
    shared_views: dict[tuple[str, str], int]


def _robust_relative(samples: list[np.ndarray]) -> np.ndarray:
    """Robust mean of 4x4 rigid transforms."""
    Rs = np.array([s[:3, :3] for s in samples])
    ts = np.array([s[:3, 3] for s in samples])
    t_med = np.median(ts, axis=0)
    # pick the sample closest to all others (medoid by rotation angle + translation distance)
    score = [sum(_angle_deg(Ri, Rj) for Rj in Rs) + 10.0 * np.linalg.norm(ti - t_med) for Ri, ti in zip(Rs, ts)]
    best = int(np.argmin(score))
    keep = [i for i in range(len(samples)) if _angle_deg(Rs[i], Rs[best]) < 5.0]
    T = np.eye(4)
    T[:3, :3] = _project_to_so3(Rs[keep].sum(0))
    T[:3, 3] = np.median(ts[keep], axis=0)
    return T


def initial_poses(poses: dict[str, dict[int, np.ndarray]], reference: str,
                  counts: dict[str, dict[int, int]] | None = None) -> InitialPoses:
    """Chain per-view board poses into a rig.

    Args:
        poses: camera -> view -> (4, 4) board-to-camera transform (from :func:`solve_board_pose`).
        reference: camera whose frame becomes the world frame.
        counts: camera -> view -> number of corners (chooses which camera defines each board pose).
    """
    cams = sorted(poses)
    if reference not in poses:
        raise CalibrationError(f"reference camera {reference!r} has no board views",
                               hint=f"capture calibration views with camera {reference!r}")
    shared: dict[tuple[str, str], int] = {}
    rel: dict[tuple[str, str], np.ndarray] = {}
    for i, a in enumerate(cams):
        for b in cams[i + 1:]:
            common = sorted(set(poses[a]) & set(poses[b]))
            shared[(a, b)] = len(common)
            if common:
                # M_ba maps camera-a coordinates to camera-b coordinates
                rel[(b, a)] = _robust_relative([poses[b][v] @ _inv(poses[a][v]) for v in common])
                rel[(a, b)] = _inv(rel[(b, a)])
    # Prim's maximum spanning tree from the reference camera
    world_to_cam = {reference: np.eye(4)}
    while len(world_to_cam) < len(cams):
        best = None
        for a in world_to_cam:
            for b in cams:
                if b in world_to_cam:
                    continue
                n = shared[tuple(sorted((a, b)))]
                if n > 0 and (best is None or n > best[0]):
                    best = (n, a, b)
        if best is None:
            lost = [c for c in cams if c not in world_to_cam]
            raise CalibrationError(
                f"camera(s) {', '.join(repr(c) for c in lost)} never saw the board at the same time as "
                f"{', '.join(repr(c) for c in world_to_cam)}, so their position in the rig is unknown",
                hint=f"capture views where the board is visible to {lost[0]!r} and at least one of "
                     f"{', '.join(world_to_cam)} simultaneously (5 or more such views); meanwhile "
                     "`reconstruct calibrate <session> --intrinsics-only` calibrates each camera's lens on its own")
        _, a, b = best
        world_to_cam[b] = rel[(b, a)] @ world_to_cam[a]
        log.debug("extrinsics init: %s placed via %s (%d shared views)", b, a, best[0])
    boards: dict[int, np.ndarray] = {}
    views = sorted({v for p in poses.values() for v in p})
    for v in views:
        seen = [c for c in cams if v in poses[c]]
        c = max(seen, key=lambda c: (counts or {}).get(c, {}).get(v, 0))
        boards[v] = _inv(world_to_cam[c]) @ poses[c][v]
    return InitialPoses(cameras=world_to_cam, boards=boards, reference=reference, shared_views=shared)
