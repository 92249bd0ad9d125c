"""The nearest of a few hundred points to every point of a regular grid, exactly, in numpy.

:func:`.measures.intended_reach` asks, for every point of a 4 px grid over the face's box (~30 000), which landmark
(~500) is nearest. SciPy's ``cKDTree`` answers in a few ms, but importing ``scipy.spatial`` costs each report worker
~0.2 CPU-s (it imports ``scipy.sparse``, ``scipy.special`` and more) for this one query. Here the grid is cut into
tiles; for each tile only the points that can be nearest to some grid point in it are compared: a point whose
smallest possible squared distance to the tile is above the smallest largest-possible squared distance of any point
(``ub``) is never nearest there. Those bounds are computed with the same float64 operations as the distances,
which round monotonically, so the pruning never drops the point with the smallest computed distance: the answer is
the exact argmin of ``dx * dx + dy * dy`` (what ``cKDTree`` minimises); of points exactly as far, the lowest index.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nearest_on_grid"]

TILE = 16  # grid points per tile side: ~130 tiles for a face's box, a few dozen candidate points each


def nearest_on_grid(points: np.ndarray, xs: np.ndarray, ys: np.ndarray, tile: int = TILE) -> np.ndarray:
    """(len(ys), len(xs)) int64: index into ``points`` ((N, 2) float64 x, y; N >= 1, all finite) of the nearest
    point to each grid point (``xs[j]``, ``ys[i]``) (``xs``, ``ys``: increasing float64 coordinates); of points
    exactly as far, the lowest index."""
    p = np.asarray(points, np.float64)
    xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    px, py = p[:, 0], p[:, 1]
    out = np.empty((len(ys), len(xs)), np.int64)
    # per-axis bounds of every tile column / row against every point: (tiles along the axis, N)
    xb = [(xs[a], xs[min(a + tile, len(xs)) - 1]) for a in range(0, len(xs), tile)]
    yb = [(ys[a], ys[min(a + tile, len(ys)) - 1]) for a in range(0, len(ys), tile)]
    lo_x, far_x = _axis_bounds(px, xb)
    lo_y, far_y = _axis_bounds(py, yb)
    for ty in range(len(yb)):
        dmin = lo_y[ty][None] + lo_x  # (tiles along x, N): the smallest squared distance to the tile
        dmax = far_y[ty][None] + far_x  # and the largest
        ub = dmax.min(axis=1, keepdims=True)
        keep = dmin <= ub
        r0 = ty * tile
        qy = ys[r0:r0 + tile]
        dy2 = (qy[:, None] - py[None]) ** 2  # (rows, N)
        for tx in range(len(xb)):
            c = np.flatnonzero(keep[tx])  # ascending: argmin's first minimum is the lowest index
            c0 = tx * tile
            dx = xs[c0:c0 + tile][:, None] - px[c][None]  # (cols, K)
            d2 = dy2[:, None, c] + (dx * dx)[None]  # (rows, cols, K): dx * dx + dy * dy as cKDTree sums them
            out[r0:r0 + tile, c0:c0 + tile] = c[d2.argmin(axis=2)]
    return out


def _axis_bounds(v: np.ndarray, bounds: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(smallest, largest) squared distance along one axis between each interval of ``bounds`` and each value of
    ``v``: two (len(bounds), len(v)) float64 arrays (0 smallest inside an interval)."""
    lo = np.array([b[0] for b in bounds])[:, None]
    hi = np.array([b[1] for b in bounds])[:, None]
    near = np.maximum(np.maximum(lo - v[None], v[None] - hi), 0.0)
    far = np.maximum(np.abs(lo - v[None]), np.abs(v[None] - hi))
    return near * near, far * far
