"""The bundle adjustment's analytic Jacobian against finite differences (gradcheck), all lens models."""

from dataclasses import replace

import numpy as np
import pytest
from scipy.optimize._numdiff import group_columns

from reconstruct.calibration.bundle import CameraInit, _Problem, rodrigues
from reconstruct.calibration.lm import _jacobian
from reconstruct.calibration.synthetic import example_rig_cameras, ideal_detections, make_board_poses
from reconstruct.rig import BoardSpec

BOARD = BoardSpec(squares=(6, 8), square_size=0.035, marker_size=0.026, dictionary="DICT_4X4_50")


@pytest.mark.parametrize("model,fix_aspect", [("pinhole", False), ("pinhole", True), ("fisheye", False)])
def test_analytic_jacobian_matches_finite_differences(model, fix_aspect):
    cams = example_rig_cameras()
    if model == "fisheye":
        cams = {n: replace(c, model="fisheye", dist=np.array([0.05, -0.02, 0.01, -0.002])) for n, c in cams.items()}
    poses = make_board_poses(BOARD, cams, 5, seed=1)
    dets = ideal_detections(BOARD, cams, poses, 0.3)
    T_ref = cams["hero"].world_to_camera
    inits = [CameraInit(n, c.K, c.dist, c.model, c.image_size, c.world_to_camera @ np.linalg.inv(T_ref),
                        fixed_dist=(2, 3) if model == "pinhole" else ()) for n, c in cams.items()]
    boards = {k: T_ref @ poses[k] for k in range(5)}
    P = _Problem(inits, "hero", boards, [d for ds in dets.values() for d in ds], BOARD, True, fix_aspect)
    mask = np.ones(len(P.oc), bool)
    x = P.x0 + np.random.default_rng(0).normal(0, 1e-3, P.x0.size)
    S = P.sparsity(mask)
    J_fd, _ = _jacobian(lambda v: P.residuals(v, mask), x, P.residuals(x, mask), S, group_columns(S))
    J = P.jacobian(x, mask)
    # forward differences are good to ~1e-7 relative; entries reach ~1200 px per unit: tolerance 1e-3, measured 1.2e-4
    assert np.abs((J - J_fd).toarray()).max() < 1e-3
    assert ((J != 0).toarray() <= (S != 0).toarray()).all()  # never outside the declared sparsity


def test_rodrigues_matches_opencv():
    import cv2

    r = np.random.default_rng(1).normal(0, 1, (20, 3))
    r[0] = 0
    R = rodrigues(r)
    for ri, Ri in zip(r, R):
        assert np.allclose(Ri, cv2.Rodrigues(ri)[0], atol=1e-12)
