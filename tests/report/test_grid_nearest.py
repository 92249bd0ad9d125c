"""The report's nearest-landmark lookup on a grid (reconstruct/report/grid_nearest.py): SciPy's cKDTree answer
(the exact argmin of the squared distance) without importing SciPy in the report's workers (~0.2 CPU-s each)."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruct.report.grid_nearest import nearest_on_grid
from tests.subproc import run_python


def _grid(w, h, step, ox, oy):
    xs = np.arange(0, w, step, dtype=np.float64) + ox
    ys = np.arange(0, h, step, dtype=np.float64) + oy
    gy, gx = np.mgrid[0:h:step, 0:w:step]
    return xs, ys, np.stack([gx.ravel() + ox, gy.ravel() + oy], 1).astype(np.float64)


@pytest.mark.parametrize("seed", range(12))
def test_the_same_nearest_point_as_ckdtree(seed):
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    w, h, step = int(rng.integers(1, 700)), int(rng.integers(1, 700)), int(rng.integers(1, 6))
    ox, oy = int(rng.integers(-50, 1500)), int(rng.integers(-50, 900))
    n = int(rng.integers(1, 600))
    if seed % 2:  # landmark-like: clustered on the region, a few far outside it
        pts = rng.normal([ox + w / 2, oy + h / 2], [w / 6 + 1, h / 6 + 1], (n, 2))
    else:
        pts = rng.uniform([ox - 300, oy - 300], [ox + w + 300, oy + h + 300], (n, 2))
    xs, ys, q = _grid(w, h, step, ox, oy)
    got = nearest_on_grid(pts, xs, ys)
    assert got.shape == (len(ys), len(xs))
    np.testing.assert_array_equal(got.ravel(), cKDTree(pts).query(q)[1])


def test_points_exactly_as_far_go_to_the_lowest_index():
    pts = np.array([[10.0, 0.0], [0.0, 0.0], [0.0, 10.0], [0.0, 0.0]])  # 1 and 3 coincide
    got = nearest_on_grid(pts, np.array([0.0, 5.0, 10.0]), np.array([0.0, 5.0]))
    # (5, 0) is as far from 0 as from 1 and 3; (5, 5) as far from all four
    np.testing.assert_array_equal(got, [[1, 0, 0], [1, 0, 0]])


def test_intended_reach_imports_no_scipy():
    code = ("import sys, numpy as np\n"
            "from reconstruct.report.measures import intended_reach\n"
            "r = intended_reach((40, 60), (100, 200), np.array([[110.0, 210.0], [300.0, 400.0]]),\n"
            "                   np.array([[3.0, 4.0], [0.0, 1.0]]))\n"
            "assert r[10, 10] == 5.0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy')[:3])\n")
    assert run_python(code, timeout=120).strip() == "[]"
