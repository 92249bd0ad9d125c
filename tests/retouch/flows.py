"""Test flows for the retouch tests (importable as ``tests.retouch.flows``)."""

from __future__ import annotations

import numpy as np


def fold_flow(h: int = 260, w: int = 300, seed: int = 1) -> np.ndarray:
    """(h, w, 2) float32: a squeeze and a fold near (x 110, y 150) -- ``det < 0.5`` there only -- on a faint noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    flow = np.zeros((h, w, 2), np.float32)
    bump = np.exp(-((xx - 110) ** 2 + (yy - 150) ** 2) / (2 * 9.0 ** 2))
    flow[..., 0] = -14.0 * (xx - 110) / 9.0 * bump + 0.05 * rng.standard_normal((h, w)).astype(np.float32)
    flow[..., 1] = 3.0 * bump
    return flow
