"""Synthetic calibration captures with exact ground truth.

:func:`render_board_views` renders a calibration board, seen from ``n_poses`` random poses in front of a rig, through
every camera (pinhole + OpenCV distortion, or fisheye): the images a calibration capture of that rig would store in
``calib/<camera>/``. :func:`ideal_corners` returns where every board corner lands in those images (the ground truth
the tests compare detections and calibrations against), and :func:`make_board_poses` the poses alone.

Rendering is exact under the camera model: every output pixel is supersampled, each sample's ray is undistorted
(OpenCV's iterative inverse), intersected with the board plane and the board texture sampled there, so distortion,
perspective and anti-aliasing are all right to a small fraction of a pixel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..camera import CameraModel
from ..errors import ConfigError
from ..rig import BoardSpec
from .boards import board_image, board_size_m, corner_points

log = logging.getLogger(__name__)

#: A camera "sees" a ChArUco view when at least this fraction of its inner corners lands inside the image.
MIN_VISIBLE_FRACTION = 0.5
#: ... and the angle between the board normal and the ray to the board centre is below this (degrees).
MAX_INCIDENCE_DEG = 65.0
_EDGE_MARGIN_PX = 6.0
_SUPERSAMPLE = 2


# -- poses ---------------------------------------------------------------------------------------------------------
def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    import cv2

    return cv2.Rodrigues(np.asarray(axis, float).reshape(3) / np.linalg.norm(axis) * angle)[0]


def _rig_target(cameras: dict[str, CameraModel], board: BoardSpec) -> tuple[np.ndarray, np.ndarray, float]:
    """Point the rig looks at, the rig's mean viewing direction, and the distance from the rig to that point."""
    cams = list(cameras.values())
    centres = np.array([c.center for c in cams])
    dirs = np.array([c.R[2] for c in cams])  # optical axes in world coordinates
    mean_dir = dirs.sum(0)
    mean_dir /= np.linalg.norm(mean_dir)
    c_bar = centres.mean(0)
    # distance at which the board spans ~60 % of the narrowest camera's smaller image side
    bw, bh = board_size_m(board)
    fit = min(min(c.K[0, 0], c.K[1, 1]) * max(bw, bh) / (0.6 * min(c.image_size)) for c in cams)
    if len(cams) >= 2:
        # least-squares point closest to all optical axes (where the cameras converge)
        A = np.zeros((3, 3))
        b = np.zeros(3)
        for c, d in zip(centres, dirs):
            P = np.eye(3) - np.outer(d, d)
            A += P
            b += P @ c
        if np.linalg.cond(A) < 1e6:
            p = np.linalg.solve(A, b)
            dist = float((p - c_bar) @ mean_dir)
            if dist > 0.3 * fit:
                # keep the board near the convergence point but close enough to fill the images reasonably
                dist = min(dist, 1.2 * fit)
                return c_bar + mean_dir * dist + (p - c_bar - mean_dir * ((p - c_bar) @ mean_dir)), mean_dir, dist
    return c_bar + mean_dir * fit, mean_dir, fit


def make_board_poses(board: BoardSpec, cameras: dict[str, CameraModel], n_poses: int, seed: int = 0) -> list[np.ndarray]:
    """``n_poses`` random 4x4 board-to-world transforms in front of the rig, facing it.

    The board centre is spread over the field of view around the point the cameras look at (reaching the image
    borders, so that corners cover the images), its distance varies from 75 % to 130 %, it is tilted 10 to 45
    degrees about a random in-plane axis and rolled up to +-25 degrees.
    """
    if n_poses < 1:
        raise ConfigError(f"n_poses must be at least 1, got {n_poses}")
    if not cameras:
        raise ConfigError("render_board_views needs at least one camera")
    rng = np.random.default_rng(seed)
    target, zdir, dist = _rig_target(cameras, board)
    ref = next(iter(cameras.values()))
    xdir = ref.R[0] - (ref.R[0] @ zdir) * zdir
    xdir /= np.linalg.norm(xdir)
    ydir = np.cross(zdir, xdir)
    R0 = np.stack([xdir, ydir, zdir], axis=1)  # board axes in world: x right, y down, z away from the rig
    hx = min(0.5 * c.image_size[0] / c.K[0, 0] for c in cameras.values())  # tan(half horizontal fov)
    hy = min(0.5 * c.image_size[1] / c.K[1, 1] for c in cameras.values())
    bw, bh = board_size_m(board)
    centre_local = np.array([bw / 2, bh / 2, 0.0])
    poses = []
    for _ in range(n_poses):
        d = dist * rng.uniform(0.75, 1.3)
        sx = max(0.0, hx * d - 0.35 * max(bw, bh))
        sy = max(0.0, hy * d - 0.35 * max(bw, bh))
        p = target + (d - dist) * zdir + rng.uniform(-sx, sx) * xdir + rng.uniform(-sy, sy) * ydir
        phi = rng.uniform(0, 2 * np.pi)
        tilt = _rot(np.cos(phi) * xdir + np.sin(phi) * ydir, np.deg2rad(rng.uniform(10, 45)))
        roll = _rot(zdir, np.deg2rad(rng.uniform(-25, 25)))
        R = tilt @ roll @ R0
        T = np.eye(4)
        T[:3, :3] = R
        T[:3, 3] = p - R @ centre_local
        poses.append(T)
    return poses


# -- visibility and ground truth -----------------------------------------------------------------------------
def _board_to_camera(cam: CameraModel, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    R = cam.R @ pose[:3, :3]
    t = cam.R @ pose[:3, 3] + cam.t
    return R, t


def _project_corners(board: BoardSpec, cam: CameraModel, pose: np.ndarray,
                     offsets: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """(N, 2) projected inner corners (NaN outside the image) and whether the view counts as seen."""
    R, t = _board_to_camera(cam, pose)
    obj = corner_points(board) if offsets is None else corner_points(board) + offsets
    Xc = obj @ R.T + t
    centre = np.array([*board_size_m(board), 0.0]) / 2 @ R.T + t
    normal = R[:, 2]  # board z (into the board) in camera coordinates
    cos_inc = float(normal @ centre / np.linalg.norm(centre))  # > 0: the camera faces the printed side
    uv = cam.distort_normalized(Xc[:, :2] / Xc[:, 2:3]) if np.all(Xc[:, 2] > 1e-6) else np.full((len(obj), 2), np.nan)
    w, h = cam.image_size
    m = _EDGE_MARGIN_PX
    inside = (uv[:, 0] >= m) & (uv[:, 0] <= w - 1 - m) & (uv[:, 1] >= m) & (uv[:, 1] <= h - 1 - m)
    uv = np.where(inside[:, None], uv, np.nan)
    need = 1.0 if board.kind == "chessboard" else MIN_VISIBLE_FRACTION
    seen = cos_inc > np.cos(np.deg2rad(MAX_INCIDENCE_DEG)) and inside.mean() >= need
    return uv, bool(seen)


def ideal_corners(board: BoardSpec, cameras: dict[str, CameraModel], poses: list[np.ndarray],
                  board_offsets: np.ndarray | None = None) -> dict[str, list[np.ndarray | None]]:
    """Ground-truth pixel positions of every inner corner for each camera and pose.

    ``board_offsets``: (N, 3) displacement of every inner corner from its nominal position, board frame, metres
    (a print that is not to scale or not flat, see :func:`warped_board_offsets`); None for a perfect board.

    Returns per camera a list aligned with ``poses``: ``None`` where :func:`render_board_views` renders ``None``
    (camera does not see the board), else an (N, 2) float64 array in corner-id order (see
    :mod:`.boards`), NaN for corners outside the image.
    """
    out: dict[str, list[np.ndarray | None]] = {}
    for name, cam in cameras.items():
        out[name] = []
        for pose in poses:
            uv, seen = _project_corners(board, cam, pose, board_offsets)
            out[name].append(uv if seen else None)
    return out


# -- rendering -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _RayGrid:
    """Normalised image coordinates (x/z, y/z) of the supersample grid of one camera, shape (H*s, W*s, 2)."""

    xn: np.ndarray


def _ray_grid(cam: CameraModel, s: int) -> _RayGrid:
    w, h = cam.image_size
    off = (np.arange(s) + 0.5) / s - 0.5  # sample offsets inside a pixel, pixel centres at integers
    xs = (np.arange(w)[:, None] + off[None, :]).ravel()
    ys = (np.arange(h)[:, None] + off[None, :]).ravel()
    uu, vv = np.meshgrid(xs, ys)
    uv = np.stack([uu.ravel(), vv.ravel()], axis=1)
    if np.any(cam.dist != 0):
        xn = cam.undistort_points(uv)
    else:
        K = cam.K
        y = (uv[:, 1] - K[1, 2]) / K[1, 1]
        x = (uv[:, 0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
        xn = np.stack([x, y], axis=1)
    return _RayGrid(xn.reshape(h * s, w * s, 2).astype(np.float64))


def _render_one(board: BoardSpec, cam: CameraModel, grid: _RayGrid, pose: np.ndarray, s: int,
                rng: np.random.Generator) -> np.ndarray:
    import cv2

    R, t = _board_to_camera(cam, pose)
    H = np.column_stack([R[:, 0], R[:, 1], t])  # board (u, v, 1) -> camera ray (x, y, 1) up to scale
    Hinv = np.linalg.inv(H)
    xn = grid.xn
    den = Hinv[2, 0] * xn[..., 0] + Hinv[2, 1] * xn[..., 1] + Hinv[2, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (Hinv[0, 0] * xn[..., 0] + Hinv[0, 1] * xn[..., 1] + Hinv[0, 2]) / den
        v = (Hinv[1, 0] * xn[..., 0] + Hinv[1, 1] * xn[..., 1] + Hinv[1, 2]) / den
    # a ray hits the board in front of the camera where the depth along it is positive: depth = 1 / den (scaled)
    behind = ~(den > 0)
    # texture resolution ~ one texel per supersample at the board centre (integer px per square keeps corners exact)
    centre = np.array([*board_size_m(board), 0.0]) / 2 @ R.T + t
    sq_px = cam.K[0, 0] * board.square_size / centre[2] * s
    pps = int(np.clip(np.ceil(sq_px), 8, 400))
    margin = 0.6
    tex = board_image(board, pps, margin_squares=margin).astype(np.float32)
    black, white = rng.uniform(25, 60), rng.uniform(175, 235)
    tex = black + tex * ((white - black) / 255.0)
    m_px = int(round(margin * pps))  # board_image pads a whole number of texels: the board starts at texel m_px
    mx = (u / board.square_size * pps + m_px - 0.5).astype(np.float32)
    my = (v / board.square_size * pps + m_px - 0.5).astype(np.float32)
    mx[behind] = -1e6
    my[behind] = -1e6
    background = float(rng.uniform(70, 130))
    img = cv2.remap(tex, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                    borderValue=background)
    w, h = cam.image_size
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def render_board_views(board: BoardSpec, cameras: dict[str, CameraModel], n_poses: int, seed: int = 0,
                       noise_px: float = 0.0, *, channels: dict[str, int] | None = None,
                       ) -> tuple[dict[str, list[np.ndarray | None]], list[np.ndarray]]:
    """Render a calibration capture of ``board`` through ``cameras``.

    Args:
        board: the board (ChArUco or chessboard; ``inverted`` boards are drawn white on black).
        cameras: camera name -> calibrated model (world-to-camera R, t in metres; pinhole or fisheye).
        n_poses: number of board poses (simultaneous views).
        seed: makes poses, lighting and noise reproducible.
        noise_px: standard deviation of additive Gaussian sensor noise per pixel, in 8-bit grey levels
            (0 = noise-free).
        channels: camera name -> 1 (grey ``(H, W)``, IR sensors) or 3 (RGB ``(H, W, 3)``); default 1.

    Returns:
        ``(images, poses)``: ``images[camera][k]`` is the ``uint8`` image of pose ``k`` for that camera, or ``None``
        where the camera does not see the board (printed side turned away, seen at more than
        ``MAX_INCIDENCE_DEG``, or fewer than half of the corners - all of them for chessboards - inside the image);
        ``poses[k]`` is the (4, 4) float64 board-to-world transform (``X_world = T @ X_board``, metres).
    """
    channels = dict(channels or {})
    unknown = set(channels) - set(cameras)
    if unknown:
        raise ConfigError(f"channels names cameras that are not given: {sorted(unknown)}")
    poses = make_board_poses(board, cameras, n_poses, seed)
    rng = np.random.default_rng(seed + 7919)
    images: dict[str, list[np.ndarray | None]] = {}
    for name, cam in cameras.items():
        ch = int(channels.get(name, 1))
        if ch not in (1, 3):
            raise ConfigError(f"camera {name!r}: channels must be 1 or 3, got {ch}")
        grid = None
        images[name] = []
        for k, pose in enumerate(poses):
            _, seen = _project_corners(board, cam, pose)
            if not seen:
                images[name].append(None)
                continue
            if grid is None:
                grid = _ray_grid(cam, _SUPERSAMPLE)
            img = _render_one(board, cam, grid, pose, _SUPERSAMPLE, rng)
            if noise_px > 0:
                img = img + rng.normal(0.0, noise_px, img.shape).astype(np.float32)
            img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
            if ch == 3:
                tint = rng.uniform(0.85, 1.0, 3)
                img = np.clip(img[..., None] * tint, 0, 255).astype(np.uint8)
            images[name].append(img)
        n_seen = sum(im is not None for im in images[name])
        log.debug("camera %s sees the board in %d of %d poses", name, n_seen, n_poses)
    return images, poses


def example_rig_cameras(image_size: tuple[int, int] = (640, 480), baseline: float = 0.3,
                        distance: float = 1.0) -> dict[str, CameraModel]:
    """Three cameras (``hero`` in the middle, ``left`` and ``right`` witnesses ``baseline`` metres to each side)
    converging on a point ``distance`` metres in front of the hero, with mild radial distortion (no tangential
    distortion: p1 = p2 = 0, as for most modern lenses): the tests' rig."""
    from ..camera import look_at

    w, h = image_size
    out = {}
    specs = {
        "hero": ((0.0, 0.0, 0.0), 1.0, (0.05, -0.08, 0.0, 0.0, 0.0)),
        "left": ((-baseline, -0.05, 0.05), 0.9, (-0.12, 0.06, 0.0, 0.0, 0.0)),
        "right": ((baseline, 0.04, 0.03), 1.1, (0.02, 0.0, 0.0, 0.0, 0.0)),
    }
    target = np.array([0.0, 0.0, distance])
    for name, (eye, fscale, dist) in specs.items():
        R, t = look_at(np.array(eye), target)
        f = 0.9 * w * fscale
        K = np.array([[f, 0, w / 2 - 0.5 + 7.3], [0, f * 1.002, h / 2 - 0.5 - 4.1], [0, 0, 1]])
        out[name] = CameraModel(name=name, K=K, dist=np.array(dist), R=R, t=t, image_size=(w, h))
    return out


def ideal_detections(board: BoardSpec, cameras: dict[str, CameraModel], poses: list[np.ndarray],
                     corner_noise_px: float = 0.0, seed: int = 0,
                     board_offsets: np.ndarray | None = None) -> dict[str, list]:
    """Board detections made from :func:`ideal_corners` plus Gaussian noise of ``corner_noise_px`` pixels
    (standard deviation per axis): what a perfect detector with known noise would report. Camera -> list of
    :class:`~.detect.BoardDetection` (view = pose index). ``board_offsets``: see :func:`ideal_corners`."""
    from .detect import BoardDetection

    rng = np.random.default_rng(seed)
    out: dict[str, list] = {}
    for name, views in ideal_corners(board, cameras, poses, board_offsets).items():
        out[name] = []
        for k, uv in enumerate(views):
            if uv is None:
                continue
            ids = np.flatnonzero(np.all(np.isfinite(uv), axis=1)).astype(np.int32)
            pts = uv[ids] + rng.normal(0.0, corner_noise_px, (ids.size, 2))
            out[name].append(BoardDetection(camera=name, view=k, ids=ids, corners=pts,
                                            image_size=cameras[name].image_size))
    return out


def warped_board_offsets(board: BoardSpec, sag_m: float = 0.0015, stretch: float = 0.003) -> np.ndarray:
    """(N, 3) corner offsets (board frame, metres) of a typical imperfect print: the sheet bows out of plane by
    ``sag_m`` at its centre relative to its edges (a paraboloid), and the printer stretches one axis by ``stretch``
    (0.3 %: a common printer scaling error) relative to the other. Input of :func:`ideal_corners`."""
    q = corner_points(board)
    c = q - q.mean(0)
    r2 = (c[:, 0] / np.abs(c[:, 0]).max()) ** 2 + (c[:, 1] / np.abs(c[:, 1]).max()) ** 2
    out = np.zeros_like(q)
    out[:, 2] = -sag_m * (1 - r2 / r2.max())
    out[:, 0] = stretch * c[:, 0]
    return out
