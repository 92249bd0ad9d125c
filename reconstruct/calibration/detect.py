"""Finding the board in calibration images: ChArUco and chessboards, RGB or grey (IR), printed normal or inverted.

A detection is a :class:`BoardDetection`: which inner corners were found (ids, see :mod:`.boards` for the
numbering) and where, refined to sub-pixel accuracy. ChArUco corners are interpolated from the detected markers
and refined by OpenCV's ``CharucoDetector`` (corner sub-pixel search); chessboard corners come from
``findChessboardCorners`` followed by ``cornerSubPix`` (or ``findChessboardCornersSB`` as a fallback).

A board spec that does not match the print (wrong dictionary, wrong square count) finds no corners at all, or
markers whose ids do not fit the board; :func:`diagnose_no_board` turns that into a message saying what to fix.
A board given by its inner corners where squares are expected (``squares = [4, 7]`` for a 5x8-square board) is
recognised by :func:`inner_corner_mistake`: the board with one more square each way is found in the images (for
chessboards, OpenCV's sector-based detector reports the whole grid; the classic detector even finds a too-small
pattern inside the real one, so chessboards are checked on success too).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import CalibrationError, DeageError
from ..rig import BoardSpec
from .boards import aruco_dictionary, charuco_board, corner_points, describe, n_corners

log = logging.getLogger(__name__)

#: views with fewer corners than this are ignored (a homography needs 4; collinear sets carry no depth)
MIN_CORNERS = 6


@dataclass(frozen=True, slots=True)
class BoardDetection:
    """The board as found in one image.

    Attributes:
        camera: camera name.
        view: view index (row of ``calib/<camera>/frames.csv``; views with the same index are simultaneous).
        ids: (N,) int32 inner-corner ids (0..n_corners-1), ascending.
        corners: (N, 2) float64 sub-pixel corner positions, pixels (OpenCV convention: (0, 0) = centre of the
            top-left pixel).
        image_size: (width, height) of the image, pixels.
        marker_ids: (M,) int32 ArUco marker ids found (ChArUco only; empty for chessboards).
        marker_corners: (M, 4, 2) float64 marker corners, pixels, clockwise from the marker's top-left.
    """

    camera: str
    view: int
    ids: np.ndarray
    corners: np.ndarray
    image_size: tuple[int, int]
    marker_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    marker_corners: np.ndarray = field(default_factory=lambda: np.zeros((0, 4, 2)))

    def object_points(self, board: BoardSpec) -> np.ndarray:
        """(N, 3) float64 board-frame coordinates (metres) of the detected corners."""
        return corner_points(board)[self.ids]

    @property
    def n(self) -> int:
        return int(self.ids.size)


def to_gray(image: np.ndarray, inverted: bool = False) -> np.ndarray:
    """RGB ``(H, W, 3)`` or grey ``(H, W)`` uint8/uint16 -> grey uint8, inverted when the board is printed white on
    black."""
    import cv2

    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY if img.shape[2] == 3 else cv2.COLOR_RGBA2GRAY)
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return 255 - img if inverted else img


def _collinear(pts: np.ndarray) -> bool:
    c = pts - pts.mean(0)
    s = np.linalg.svd(c, compute_uv=False)
    return s.size < 2 or s[1] < 1e-3 * max(s[0], 1e-9)


def _detect_charuco(gray: np.ndarray, board: BoardSpec):
    import cv2

    det = cv2.aruco.CharucoDetector(charuco_board(board))
    try:
        cc, cids, mc, mids = det.detectBoard(gray)
    except cv2.error as exc:  # pragma: no cover - OpenCV internal failure
        raise CalibrationError(f"OpenCV ChArUco detection failed: {exc}") from exc
    return cc, cids, mc, mids


def _detect_chessboard(gray: np.ndarray, board: BoardSpec):
    import cv2

    pattern = board.inner_corners
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
    ok, corners = cv2.findChessboardCorners(gray, pattern, flags=flags)
    if ok:
        # window ~ a third of a square, at most 11x11 (OpenCV's calibration sample)
        pts = corners.reshape(-1, 2)
        d = np.median(np.linalg.norm(np.diff(pts.reshape(pattern[1], pattern[0], 2), axis=1), axis=2))
        win = int(np.clip(d / 3, 2, 11))
        corners = cv2.cornerSubPix(gray, corners, (win, win), (-1, -1),
                                   (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 50, 1e-3))
        return corners.reshape(-1, 2)
    ok, corners = cv2.findChessboardCornersSB(gray, pattern, flags=cv2.CALIB_CB_NORMALIZE_IMAGE)
    return corners.reshape(-1, 2) if ok else None


def detect_board(image: np.ndarray, board: BoardSpec, camera: str = "", view: int = 0) -> BoardDetection | None:
    """Find ``board`` in one image; None when it is not there (or fewer than ``MIN_CORNERS`` corners are).

    ``image`` is RGB ``(H, W, 3)`` or grey ``(H, W)``; ``board.inverted`` boards are inverted before detection.
    """
    gray = to_gray(image, board.inverted)
    h, w = gray.shape
    mids_arr = np.zeros(0, np.int32)
    mcs_arr = np.zeros((0, 4, 2))
    if board.kind == "charuco":
        cc, cids, mc, mids = _detect_charuco(gray, board)
        if mids is not None and len(mids):
            mids_arr = np.asarray(mids, np.int32).ravel()
            mcs_arr = np.asarray(mc, np.float64).reshape(-1, 4, 2)
        if cids is None or len(cids) < MIN_CORNERS:
            return None
        ids = np.asarray(cids, np.int32).ravel()
        pts = np.asarray(cc, np.float64).reshape(-1, 2)
    else:
        pts = _detect_chessboard(gray, board)
        if pts is None:
            return None
        pts = np.asarray(pts, np.float64)
        ids = np.arange(n_corners(board), dtype=np.int32)
    order = np.argsort(ids)
    ids, pts = ids[order], pts[order]
    if _collinear(corner_points(board)[ids, :2]) or _collinear(pts):
        log.debug("camera %s view %d: the %d corners found lie on one line; ignored", camera, view, ids.size)
        return None
    return BoardDetection(camera=camera, view=view, ids=ids, corners=pts, image_size=(w, h),
                          marker_ids=mids_arr, marker_corners=mcs_arr)


def _chessboard_inner_corners(images: list[np.ndarray], board: BoardSpec) -> tuple[int, int] | None:
    """The inner corners (columns, rows) of the largest chessboard grid OpenCV finds in ``images``, at least
    ``board``'s pattern (``CALIB_CB_LARGER``: the sector-based detector reports the whole grid), oriented like
    ``board``; None when none is found."""
    import cv2

    best = None
    for im in images:
        ok, _, meta = cv2.findChessboardCornersSBWithMeta(to_gray(im, board.inverted), board.inner_corners,
                                                           flags=cv2.CALIB_CB_LARGER | cv2.CALIB_CB_NORMALIZE_IMAGE)
        if ok and meta is not None and (best is None or meta.size > best[0] * best[1]):
            best = (int(meta.shape[1]), int(meta.shape[0]))
    if best is None:
        return None
    sx, sy = board.inner_corners
    a, b = best
    return (a, b) if abs(a - sx) + abs(b - sy) <= abs(b - sx) + abs(a - sy) else (b, a)


def inner_corner_mistake(images: list[np.ndarray], board: BoardSpec) -> str | None:
    """The message for a rig file whose ``squares`` do not match the board in ``images`` (a few are enough), or
    None: the board's inner corners given as squares (``squares = [4, 7]`` for a 5x8-square board: the board
    with one more square each way is found), or, for a chessboard, a larger grid than the spec found."""
    sx, sy = board.squares
    if board.kind == "chessboard":
        found = _chessboard_inner_corners(images, board)
        if found is None or found == board.inner_corners:
            return None
        if found != (sx, sy):
            return (f"the board in the images has {found[0]}x{found[1]} inner corners ({found[0] + 1}x{found[1] + 1} "
                    f"squares), but the rig file's board `squares = [{sx}, {sy}]` has {sx - 1}x{sy - 1}: write "
                    f"squares = [{found[0] + 1}, {found[1] + 1}]")
    else:
        bigger = replace(board, squares=(sx + 1, sy + 1))
        try:
            if not any(detect_board(im, bigger) is not None for im in images):
                return None
        except DeageError:  # e.g. a dictionary too small for the bigger ChArUco board: it is not that board
            return None
    return (f"the rig file's board `squares = [{sx}, {sy}]` looks like inner corners; a {sx + 1}x{sy + 1}-square "
            f"board has {sx}x{sy} inner corners: write squares = [{sx + 1}, {sy + 1}]")


def board_spec_hint(rig_file: str | None) -> str:
    """Where to fix the board spec: a session reads its own copy of the rig file."""
    where = f"in {rig_file} (the session's copy of the rig file) and in the rig file itself" if rig_file else \
        "in the rig file"
    return f"fix [board] {where}, then calibrate again; nothing was written"


def diagnose_no_board(images: list[np.ndarray], board: BoardSpec, camera: str,
                      rig_file: str | None = None) -> CalibrationError:
    """The error to raise when ``board`` was found in none of ``camera``'s images: tries the board with one more
    square each way (squares given as inner corners), the opposite print polarity and, for ChArUco, reads markers
    of the board's dictionary, to say what is wrong. ``rig_file``: the session's rig.toml, named in the hint."""
    import cv2

    what = describe(board)
    hints = []
    sample = images[: min(len(images), 5)]
    if sample and (msg := inner_corner_mistake(sample, board)) is not None:
        return CalibrationError(f"camera {camera!r}: {msg}", hint=board_spec_hint(rig_file))
    if images:
        flipped = replace(board, inverted=not board.inverted)
        if any(detect_board(im, flipped) is not None for im in sample):
            hints.append(f"the board is found with inverted = {str(flipped.inverted).lower()}: set that in the "
                         "rig file's [board] table")
        elif board.kind == "charuco":
            detector = cv2.aruco.ArucoDetector(aruco_dictionary(board.dictionary))
            ids: set[int] = set()
            for im in sample:
                for inv in (False, True):
                    _, mids, _ = detector.detectMarkers(to_gray(im, inv))
                    if mids is not None:
                        ids.update(int(i) for i in np.ravel(mids))
            n_markers = (board.squares[0] * board.squares[1]) // 2
            if ids and max(ids) >= n_markers:
                hints.append(f"markers of {board.dictionary} with ids up to {max(ids)} are visible but the board "
                             f"has only {n_markers}: check squares = [columns, rows] in the rig file")
            elif ids:
                hints.append("markers are visible but no corners could be interpolated: check squares, "
                             "square_size/marker_size and legacy_pattern in the rig file")
            else:
                hints.append(f"no {board.dictionary} markers are visible at all: check the dictionary, "
                             "focus and exposure")
    hint = "; ".join(hints) or "capture views where the whole board is sharp, well lit and fills a third of the image"
    return CalibrationError(f"camera {camera!r}: the board ({what}) was not found in any of its "
                            f"{len(images)} calibration images", hint=hint)
