"""Joint rig calibration against synthetic ground truth (the issue's must-hold numbers).

Scene: three 1280x720 cameras (hero + two witnesses 0.3 m to each side, converging at 1 m, radial distortion),
a 9x12-square ChArUco board (30 mm squares) in 30 random poses, every corner displaced by Gaussian noise of
sigma = 0.3 px per axis. Detections are the exact projections plus that noise, so the noise level is known.
The calibration runs with its defaults: the full 5-coefficient model, with tangential terms and the board's shape
left to the data (see test_model_select.py for lenses and boards that have them).
"""

import numpy as np
import pytest

from reconstruct.calibration.rig_solve import CalibrationOptions, calibrate_rig
from reconstruct.calibration.synthetic import example_rig_cameras, ideal_detections, make_board_poses
from reconstruct.rig import BoardSpec

BOARD = BoardSpec(squares=(9, 12), square_size=0.03, marker_size=0.022, dictionary="DICT_5X5_100")
NOISE = 0.3


def _angle_deg(Ra, Rb):
    return float(np.degrees(np.arccos(np.clip((np.trace(Ra.T @ Rb) - 1) / 2, -1, 1))))


@pytest.fixture(scope="module", params=[1, 2])
def solved(request):
    cams = example_rig_cameras((1280, 720))
    poses = make_board_poses(BOARD, cams, 30, seed=request.param)
    dets = ideal_detections(BOARD, cams, poses, corner_noise_px=NOISE, seed=request.param)
    cal = calibrate_rig(dets, BOARD, CalibrationOptions(reference="hero"))
    return cams, cal


def test_model_choice(solved):
    """No tangential distortion and a perfect board in the data: both are recognised as absent."""
    _, cal = solved
    for name, q in cal.camera_quality.items():
        # Wald statistic of (p1, p2) measured 0.2-6.7 (seeds 1, 2); the 0.1 % threshold of chi-square(2) is 13.8
        assert q["lens_model"]["tangential"] == "zero", name
    assert cal.quality["board_shape"]["refined"] is False
    # board-shape F measured 1.19 and 0.86 against a critical 1.30
    assert not cal.quality["board_shape"]["test"]["significant"]


def test_focal_and_principal_point(solved):
    cams, cal = solved
    for name, gt in cams.items():
        est = cal.cameras[name]
        # focal: tolerance 0.2 %, measured <= 0.084 % (seeds 1, 2)
        assert abs(est.K[0, 0] / gt.K[0, 0] - 1) < 0.002, name
        assert abs(est.K[1, 1] / gt.K[1, 1] - 1) < 0.002, name
        # principal point: tolerance 1 px, measured <= 0.63 px
        assert np.all(np.abs(est.K[:2, 2] - gt.K[:2, 2]) < 1.0), name


def test_extrinsics(solved):
    cams, cal = solved
    T_ref = cams["hero"].world_to_camera  # the calibration's world is the hero camera's frame
    for name, gt in cams.items():
        T_gt = gt.world_to_camera @ np.linalg.inv(T_ref)
        est = cal.cameras[name]
        # rotation: tolerance 0.05 deg, measured <= 0.030 deg; translation: tolerance 1 mm, measured <= 0.59 mm
        assert _angle_deg(T_gt[:3, :3], est.R) < 0.05, name
        assert 1000 * np.linalg.norm(T_gt[:3, 3] - est.t) < 1.0, name


def test_rms_matches_noise(solved):
    _, cal = solved
    # RMS (OpenCV's: of the residual vector length) of 2-D noise with sigma per axis is sigma * sqrt(2);
    # tolerance 10 %, measured 0.415-0.428 px vs 0.424 px expected
    expected = NOISE * np.sqrt(2)
    assert abs(cal.quality["rms_px"] / expected - 1) < 0.10
    for q in cal.camera_quality.values():
        assert abs(q["rms_px"] / expected - 1) < 0.10
        assert q["outliers"] == 0  # Gaussian noise only: nothing should be rejected
        assert q["std"]["fx"] > 0 and q["std"]["cx"] > 0


def test_uncertainty_is_calibrated(solved):
    """The reported standard deviations are of the size of the actual errors (not 10x off either way)."""
    cams, cal = solved
    errs = np.array([cal.cameras[n].K[0, 2] - cams[n].K[0, 2] for n in cams])
    stds = np.array([cal.camera_quality[n]["std"]["cx"] for n in cams])
    assert np.all(np.abs(errs) < 4 * stds)
    assert 0.05 < stds.mean() < 2.0


def test_outliers_are_rejected():
    cams = example_rig_cameras((1280, 720))
    poses = make_board_poses(BOARD, cams, 24, seed=3)
    dets = ideal_detections(BOARD, cams, poses, corner_noise_px=NOISE, seed=3)
    rng = np.random.default_rng(0)
    bad = 0
    for d in dets["left"][:10]:  # 2 corners in each of 10 views moved by 5-15 px
        i = rng.choice(d.n, 2, replace=False)
        d.corners[i] += rng.uniform(5, 15, (2, 2)) * rng.choice([-1, 1], (2, 2))
        bad += 2
    cal = calibrate_rig(dets, BOARD, CalibrationOptions(reference="hero"))
    assert cal.camera_quality["left"]["outliers"] >= bad  # measured: exactly the 20 moved corners
    assert cal.camera_quality["left"]["rms_px"] < 0.47
    gt = cams["left"].world_to_camera @ np.linalg.inv(cams["hero"].world_to_camera)
    assert _angle_deg(gt[:3, :3], cal.cameras["left"].R) < 0.05


def test_fisheye_model():
    from dataclasses import replace

    cams = {n: replace(c, model="fisheye", dist=np.array([0.05, -0.02, 0.01, -0.002]))
            for n, c in example_rig_cameras((1280, 720)).items()}
    poses = make_board_poses(BOARD, cams, 25, seed=1)
    dets = ideal_detections(BOARD, cams, poses, corner_noise_px=NOISE, seed=1)
    cal = calibrate_rig(dets, BOARD, CalibrationOptions(reference="hero", model="fisheye"))
    T_ref = cams["hero"].world_to_camera
    for name, gt in cams.items():
        est = cal.cameras[name]
        T_gt = gt.world_to_camera @ np.linalg.inv(T_ref)
        assert est.model == "fisheye" and est.dist.size == 4
        # tolerances focal 0.2 %, principal point 3 px (4 radial terms, no tangential model to trade against),
        # rotation 0.05 deg, translation 1 mm; measured <= 0.044 %, <= 2.03 px, <= 0.036 deg, <= 0.57 mm
        assert abs(est.K[0, 0] / gt.K[0, 0] - 1) < 0.002
        assert np.all(np.abs(est.K[:2, 2] - gt.K[:2, 2]) < 3.0)
        assert _angle_deg(T_gt[:3, :3], est.R) < 0.05
        assert 1000 * np.linalg.norm(T_gt[:3, 3] - est.t) < 1.0


def test_camera_graph_chains_through_a_neighbour():
    """'right' never sees the board together with the reference camera: it is placed through 'left'."""
    cams = example_rig_cameras((1280, 720))
    poses = make_board_poses(BOARD, cams, 30, seed=4)
    dets = ideal_detections(BOARD, cams, poses, corner_noise_px=NOISE, seed=4)
    dets["hero"] = [d for d in dets["hero"] if d.view < 15]
    dets["right"] = [d for d in dets["right"] if d.view >= 15]
    cal = calibrate_rig(dets, BOARD, CalibrationOptions(reference="hero"))
    assert cal.quality["shared_views"]["hero-right"] == 0
    T_gt = cams["right"].world_to_camera @ np.linalg.inv(cams["hero"].world_to_camera)
    # half the views per camera of the tests above: tolerances 0.1 deg and 2 mm; measured 0.054 deg, 0.51 mm
    assert _angle_deg(T_gt[:3, :3], cal.cameras["right"].R) < 0.1
    assert 1000 * np.linalg.norm(T_gt[:3, 3] - cal.cameras["right"].t) < 2.0
