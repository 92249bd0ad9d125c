"""Model choice in the rig calibration: tangential distortion and the board's shape, left to the data.

Synthetic rig of test_rig_accuracy.py (three 1280x720 cameras, 9x12 ChArUco board, 30 poses, 0.3 px noise), with
what a perfect setup lacks: a board print that bows 1.5 mm out of plane and is stretched 0.3 % along x, and a
decentred lens (p1 = 0.002, p2 = -0.0015) on the left camera.
"""

from dataclasses import replace

import numpy as np
import pytest

from reconstruct.calibration.boards import corner_points
from reconstruct.calibration.bundle import _gauge_basis
from reconstruct.calibration.model_select import nested_f_test
from reconstruct.calibration.rig_solve import CalibrationOptions, calibrate_rig
from reconstruct.calibration.synthetic import (example_rig_cameras, ideal_detections, make_board_poses,
                                               warped_board_offsets)
from reconstruct.rig import BoardSpec

BOARD = BoardSpec(squares=(9, 12), square_size=0.03, marker_size=0.022, dictionary="DICT_5X5_100")
NOISE = 0.3


def _angle_deg(Ra, Rb):
    return float(np.degrees(np.arccos(np.clip((np.trace(Ra.T @ Rb) - 1) / 2, -1, 1))))


def _errors(cams, cal):
    """Worst focal error (fraction), principal point (px), relative rotation (deg), translation (mm)."""
    T_ref = cams["hero"].world_to_camera
    out = []
    for name, gt in cams.items():
        est = cal.cameras[name]
        T_gt = gt.world_to_camera @ np.linalg.inv(T_ref)
        out.append((abs(est.K[0, 0] / gt.K[0, 0] - 1), np.abs(est.K[:2, 2] - gt.K[:2, 2]).max(),
                    _angle_deg(T_gt[:3, :3], est.R), 1000 * np.linalg.norm(T_gt[:3, 3] - est.t)))
    return np.max(out, axis=0)


@pytest.fixture(scope="module")
def warped():
    cams = example_rig_cameras((1280, 720))
    cams["left"] = replace(cams["left"], dist=np.array([-0.12, 0.06, 0.002, -0.0015, 0.0]))
    offsets = warped_board_offsets(BOARD)
    poses = make_board_poses(BOARD, cams, 30, seed=2)
    dets = ideal_detections(BOARD, cams, poses, corner_noise_px=NOISE, seed=2, board_offsets=offsets)
    return cams, offsets, dets


def test_warped_board_held_rigid_misses_the_targets(warped):
    """The effect is real: a rigid nominal board biases the calibration beyond the issue's targets."""
    cams, _, dets = warped
    f, pp, rot, tr = _errors(cams, calibrate_rig(dets, BOARD, CalibrationOptions(reference="hero",
                                                                                 refine_board=False)))
    # measured: focal 0.29 %, principal point 2.0 px (targets 0.2 %, 1 px)
    assert f > 0.002 or pp > 1.0


def test_warped_board_shape_is_estimated(warped):
    cams, offsets, dets = warped
    cal = calibrate_rig(dets, BOARD, CalibrationOptions(reference="hero"))
    shape = cal.quality["board_shape"]
    assert shape["refined"] and shape["test"]["significant"]  # F measured 24 vs critical 1.3
    # the targets hold again: measured focal 0.10 %, pp 0.85 px, rotation 0.036 deg, translation 0.70 mm
    f, pp, rot, tr = _errors(cams, cal)
    assert f < 0.002 and pp < 1.0 and rot < 0.05 and tr < 1.0
    # the estimated shape is the print's, up to what the board poses and the square size absorb (a rigid motion,
    # a uniform scale): truth 0.42 mm RMS, error measured 0.06 mm RMS (0.13 mm worst); tolerance 0.15 / 0.3 mm
    G = _gauge_basis(corner_points(BOARD))
    t = offsets.ravel()
    truth = (t - G @ (G.T @ t)).reshape(-1, 3)
    est = np.array([shape["offsets_mm"][str(i)] for i in range(len(truth))]) / 1000
    err = np.linalg.norm(est - truth, axis=1)
    assert 1000 * np.sqrt(np.mean(err ** 2)) < 0.15 and 1000 * err.max() < 0.3


def test_decentred_lens_keeps_its_tangential_terms(warped):
    cams, _, dets = warped
    cal = calibrate_rig(dets, BOARD, CalibrationOptions(reference="hero"))
    lm = {n: q["lens_model"] for n, q in cal.camera_quality.items()}
    assert lm["left"]["tangential"] == "fitted"  # Wald statistic measured 358 (p ~ 1e-78)
    assert lm["hero"]["tangential"] == "zero" and lm["right"]["tangential"] == "zero"
    # p1, p2 recovered: measured (0.00196, -0.00186) for (0.002, -0.0015); tolerance 5e-4
    assert np.allclose(cal.cameras["left"].dist[2:4], [0.002, -0.0015], atol=5e-4)
    assert np.all(cal.cameras["hero"].dist[2:4] == 0)


def test_forced_choices_are_respected(warped):
    cams, _, dets = warped
    cal = calibrate_rig(dets, BOARD, CalibrationOptions(reference="hero", zero_tangent=False, refine_board=True))
    assert all(q["lens_model"]["tangential"] == "fitted" for q in cal.camera_quality.values())
    assert cal.quality["board_shape"]["refined"] and "test" not in cal.quality["board_shape"]
    assert all(np.any(c.dist[2:4] != 0) for c in cal.cameras.values())


def test_nested_f_test():
    # no improvement: not significant; a large drop: significant; the critical value is F(k, dof) at 0.1 %
    assert not nested_f_test(100.0, 100.0, 2, 1000, 20).significant
    t = nested_f_test(120.0, 100.0, 2, 1000, 20)
    assert t.significant and t.F == pytest.approx((20 / 2) / (100 / 980))
    assert t.F_critical == pytest.approx(6.99, abs=0.1)  # F(2, 980) at the 0.1 % level
    assert t.rms_full_px == pytest.approx(np.sqrt(100 / 500))
