"""Calibration boards: a :class:`~reconstruct.rig.BoardSpec` turned into OpenCV objects, corner geometry and images.

Board frame (OpenCV's, for ChArUco and chessboards alike): origin at the board's top-left outer corner, x along
the columns (right), y along the rows (down), z = x cross y, pointing *into* the board, away from a viewer who
faces its printed side. Units are metres.

Corner numbering: inner corners row by row, x fastest; corner ``i`` has board coordinates
``((i % nx + 1) * square, (i // nx + 1) * square, 0)`` with ``nx = squares[0] - 1``. For ChArUco boards this is
OpenCV's ``charucoIds`` numbering; for chessboards it is the order of ``cv2.findChessboardCorners`` with pattern
size ``(nx, ny)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import ConfigError
from ..rig import BoardSpec


def aruco_dictionary(name: str):
    """The OpenCV ArUco dictionary called ``name`` (e.g. ``"DICT_6X6_250"``)."""
    import cv2

    code = getattr(cv2.aruco, name, None)
    if code is None or not name.startswith("DICT_"):
        raise ConfigError(f"unknown ArUco dictionary {name!r}", hint="use a name like DICT_6X6_250 (see rig files)")
    return cv2.aruco.getPredefinedDictionary(code)


@lru_cache(maxsize=16)
def charuco_board(board: BoardSpec):
    """``cv2.aruco.CharucoBoard`` for a ChArUco ``board`` (cached; treat as read-only)."""
    import cv2

    if board.kind != "charuco":
        raise ConfigError(f"board kind {board.kind!r} is not a ChArUco board")
    b = cv2.aruco.CharucoBoard(tuple(int(v) for v in board.squares), float(board.square_size),
                               float(board.marker_size), aruco_dictionary(board.dictionary))
    b.setLegacyPattern(bool(board.legacy_pattern))
    n_markers = (board.squares[0] * board.squares[1]) // 2
    size = _dictionary_size(board.dictionary)
    if n_markers > size:
        raise ConfigError(f"a {board.squares[0]}x{board.squares[1]} ChArUco board needs {n_markers} markers but "
                          f"{board.dictionary} holds {size}", hint="pick a larger dictionary (e.g. *_250 or *_1000)")
    return b


def _dictionary_size(name: str) -> int:
    tail = name.rsplit("_", 1)[-1]
    return 1024 if name == "DICT_ARUCO_ORIGINAL" else int(tail)


def n_corners(board: BoardSpec) -> int:
    """Number of inner corners of ``board``."""
    nx, ny = board.inner_corners
    return nx * ny


def corner_points(board: BoardSpec) -> np.ndarray:
    """(N, 3) float64 inner-corner coordinates in the board frame, metres, in corner-id order."""
    nx, ny = board.inner_corners
    jj, ii = np.mgrid[1:ny + 1, 1:nx + 1]
    pts = np.stack([ii.ravel(), jj.ravel(), np.zeros(nx * ny)], axis=1) * board.square_size
    return pts.astype(np.float64)


def board_size_m(board: BoardSpec) -> tuple[float, float]:
    """(width, height) of the board's squared area in metres."""
    return board.squares[0] * board.square_size, board.squares[1] * board.square_size


@lru_cache(maxsize=64)
def _texture(board: BoardSpec, px_per_square: int) -> np.ndarray:
    import cv2

    sx, sy = board.squares
    w, h = sx * px_per_square, sy * px_per_square
    if board.kind == "charuco":
        # OpenCV draws markers at integer cells and fails for some small sizes: draw big, then area-average down
        # (the resize maps square boundaries k * base onto k * px_per_square exactly)
        base = max(px_per_square, 160)
        img = charuco_board(board).generateImage((sx * base, sy * base), marginSize=0, borderBits=1)
        if base != px_per_square:
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    else:
        yy, xx = np.mgrid[0:h, 0:w] // px_per_square
        img = np.where((xx + yy) % 2 == 0, 0, 255).astype(np.uint8)
    img = np.ascontiguousarray(img, dtype=np.uint8)
    if img.shape != (h, w):
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST)
    img.setflags(write=False)
    return img


def board_image(board: BoardSpec, px_per_square: int, margin_squares: float = 0.0, printed: bool = True) -> np.ndarray:
    """The board as a grey ``uint8 (H, W)`` image, ``px_per_square`` pixels per square.

    Pixel ``(i, j)`` covers board coordinates ``[j, j+1) x [i, i+1)`` times ``square / px_per_square`` shifted by
    the margin, i.e. the board point ``(u, v)`` metres lies at pixel ``(u / square * pps + margin_px - 0.5, ...)``.
    ``margin_squares`` adds a quiet zone of paper around it. ``printed=True`` applies ``board.inverted`` (white on
    black, margin black too), i.e. returns what goes onto the paper.
    """
    if px_per_square < 4:
        raise ConfigError(f"{px_per_square} pixels per square is too few to draw a board; use at least 4")
    tex = _texture(board, int(px_per_square))
    m = int(round(margin_squares * px_per_square))
    img = np.pad(tex, m, constant_values=255) if m > 0 else tex.copy()
    if printed and board.inverted:
        img = 255 - img
    return img


def describe(board: BoardSpec) -> str:
    """One line naming the board, for messages."""
    nx, ny = board.inner_corners
    sq = f"{board.squares[0]}x{board.squares[1]} squares of {board.square_size * 1000:g} mm"
    if board.kind == "charuco":
        return (f"ChArUco {sq}, {board.marker_size * 1000:g} mm {board.dictionary} markers"
                + (", printed inverted" if board.inverted else ""))
    return f"chessboard {sq} ({nx}x{ny} inner corners)" + (", printed inverted" if board.inverted else "")
