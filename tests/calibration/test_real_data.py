"""Calibration on real captures in ../shared/data/calib against their published numbers (see its SOURCES.md)."""

import json

import cv2
import numpy as np
import pytest

from reconstruct.calibration.detect import detect_board
from reconstruct.calibration.intrinsics import calibrate_intrinsics
from reconstruct.calibration.rig_solve import CalibrationOptions, calibrate_rig
from reconstruct.rig import BoardSpec, CameraSpec, Rig, TriggerSpec

pytestmark = pytest.mark.realdata

CHESS = BoardSpec(kind="chessboard", squares=(10, 7), square_size=0.025)
CHARUCO = BoardSpec(kind="charuco", squares=(5, 7), square_size=0.04, marker_size=0.02, dictionary="DICT_6X6_250")
CALISCOPE = BoardSpec(kind="charuco", squares=(4, 5), square_size=0.054, marker_size=0.0405,
                      dictionary="DICT_4X4_1000", inverted=True)


def _angle_deg(Ra, Rb):
    return float(np.degrees(np.arccos(np.clip((np.trace(Ra.T @ Rb) - 1) / 2, -1, 1))))


@pytest.fixture(scope="module")
def stereo_dets(shared_data):
    d = shared_data / "calib/opencv_stereo_chessboard"
    out = {"left": [], "right": []}
    for side in out:
        for f in sorted(d.glob(f"{side}*.jpg")):
            det = detect_board(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), CHESS, side, int(f.stem[-2:]))
            assert det is not None, f"no board in {f.name}"
            out[side].append(det)
    return out


def test_stereo_chessboard_left_intrinsics(stereo_dets):
    r = calibrate_intrinsics(stereo_dets["left"], CHESS, fix_aspect_ratio=True)  # the published flags
    # published: RMS 0.3926 px, fx = fy = 535.92; targets RMS < 0.5 px, |fx - 535.9| < 2 px
    # measured: RMS 0.407 px, fx = 536.04
    assert r.rms < 0.5
    assert abs(r.K[0, 0] - 535.9) < 2 and r.K[0, 0] == r.K[1, 1]


def test_stereo_chessboard_pair(stereo_dets):
    cal = calibrate_rig(stereo_dets, CHESS, CalibrationOptions(fix_aspect_ratio=True, reference="left"))
    right = cal.cameras["right"]
    baseline_mm = 1000 * np.linalg.norm(right.t)
    rot_deg = _angle_deg(np.eye(3), right.R)
    # OpenCV's stereoCalibrate on the same detections (after per-camera calibrateCamera) as the reference
    obj = [d.object_points(CHESS).astype(np.float32) for d in stereo_dets["left"]]
    il = [d.corners.astype(np.float32) for d in stereo_dets["left"]]
    ir = [d.corners.astype(np.float32) for d in stereo_dets["right"]]
    kl = calibrate_intrinsics(stereo_dets["left"], CHESS, fix_aspect_ratio=True)
    kr = calibrate_intrinsics(stereo_dets["right"], CHESS, fix_aspect_ratio=True)
    rms, *_, R, T, _, _ = cv2.stereoCalibrate(obj, il, ir, kl.K, kl.dist, kr.K, kr.dist, (640, 480),
                                              flags=cv2.CALIB_FIX_INTRINSIC)
    # same intrinsics, extrinsics only: our bundle adjustment against OpenCV's on the same detections
    from reconstruct.camera import CameraModel

    fixed = {n: CameraModel(name=n, K=k.K, dist=k.dist, image_size=(640, 480)) for n, k in (("left", kl), ("right", kr))}
    cal_fixed = calibrate_rig(stereo_dets, CHESS, CalibrationOptions(reference="left", refine_intrinsics=False),
                              intrinsics=fixed)
    rf = cal_fixed.cameras["right"]
    print(f"stereo: joint BA baseline {baseline_mm:.2f} mm, rotation {rot_deg:.3f} deg; with OpenCV's intrinsics "
          f"fixed {1000 * np.linalg.norm(rf.t):.2f} mm, {_angle_deg(np.eye(3), rf.R):.3f} deg; OpenCV "
          f"stereoCalibrate {1000 * np.linalg.norm(T):.2f} mm, {_angle_deg(np.eye(3), R):.3f} deg (RMS {rms:.3f})")
    # with the same intrinsics: baseline within 0.5 mm and rotation within 0.1 deg of OpenCV's
    # (measured: see the printed line; numbers in docs/calibration.md)
    assert abs(1000 * np.linalg.norm(rf.t) - 1000 * np.linalg.norm(T)) < 0.5
    assert _angle_deg(R, rf.R) < 0.1
    # the joint solution (intrinsics refined, 15 outlier corners of view 2 rejected) moves by less than 1 mm
    assert abs(baseline_mm - 1000 * np.linalg.norm(T)) < 1.0
    assert cal.camera_quality["left"]["rms_px"] < 0.5
    assert abs(cal.cameras["left"].K[0, 0] - 535.9) < 2  # measured 534.5 after the joint adjustment


def test_charuco_gold_corners_and_intrinsics(shared_data):
    d = shared_data / "calib/opencv_charuco"
    gold = json.loads((d / "gold_marker_corners.json").read_text())
    for name, g in gold.items():
        det = detect_board(cv2.imread(str(d / name))[..., ::-1], CHARUCO)
        found = dict(zip(det.marker_ids.tolist(), det.marker_corners))
        for mid, corners in g["markers"].items():
            # every hand-checked marker corner within 1 px (measured: 0.0 px, all found)
            assert int(mid) in found, f"{name}: marker {mid} not found"
            assert np.abs(found[int(mid)] - np.asarray(corners)).max() <= 1.0
    dets = [detect_board(cv2.imread(str(f))[..., ::-1], CHARUCO, "cam", i)
            for i, f in enumerate(sorted(d.glob("img_0*.jpg")))]
    assert all(x is not None and x.n == 24 for x in dets)
    r = calibrate_intrinsics(dets, CHARUCO)
    # published RMS 0.182 px, fx 452.5; targets RMS < 0.3 px, fx within 2 %; measured RMS 0.188, fx 457.3 (1.06 %)
    assert r.rms < 0.3
    assert abs(r.K[0, 0] / 452.5 - 1) < 0.02


@pytest.fixture(scope="module")
def caliscope_session(shared_data, tmp_path_factory):
    from reconstruct.calibration.video import import_calibration_videos
    from reconstruct.session import Session

    d = shared_data / "calib/caliscope_4cam_charuco"
    cams = tuple(CameraSpec(name=f"cam_{i}", role="hero" if i == 0 else "witness", sensor="rgb",
                            resolution=(1280, 720), fps=6.0) for i in range(4))
    rig = Rig(name="caliscope", fps=6.0, cameras=cams, trigger=TriggerSpec(), board=CALISCOPE)
    s = Session.create(tmp_path_factory.mktemp("caliscope") / "take", rig)
    # all 57 synchronised frames (frame i of every video = sync_index 35 + i: checked against xy_CHARUCO.csv, our
    # corners within 0.2-0.8 px median of caliscope's at the same index and 3.5-12 px off at the neighbours)
    import_calibration_videos(s, {f"cam_{i}": d / f"calibration/extrinsic/cam_{i}.mp4" for i in range(4)})
    return s, d / "camera_array.toml"


@pytest.fixture(scope="module")
def caliscope_errors(caliscope_session):
    """Worst relative rotation (deg) and translation (fraction of the baseline) over the 6 camera pairs."""
    from reconstruct.calibration.result import load_calibration
    from reconstruct.calibration.toml_io import read_camera_toml
    from reconstruct.cli import main

    s, ref_file = caliscope_session
    # the data set holds only the extrinsic clips: intrinsics come from camera_array.toml, as in caliscope,
    # where they are calibrated on separate footage (from these clips alone they are not observable: the board
    # covers 15-29 % of the images, and the calibration warns so)
    assert main(["calibrate", str(s.root), "--intrinsics", str(ref_file)]) == 0
    got = load_calibration(s)
    ref = read_camera_toml(ref_file)
    rot, trans = {}, {}
    for a in ref:
        for b in ref:
            if a < b:
                A = ref[b].world_to_camera @ np.linalg.inv(ref[a].world_to_camera)
                B = got[b].world_to_camera @ np.linalg.inv(got[a].world_to_camera)
                rot[(a, b)] = _angle_deg(A[:3, :3], B[:3, :3])
                trans[(a, b)] = np.linalg.norm(A[:3, 3] - B[:3, 3]) / np.linalg.norm(A[:3, 3])
    print("caliscope relative rotation errors (deg):", {f"{a}-{b}": round(v, 3) for (a, b), v in rot.items()})
    print("caliscope relative translation errors:", {f"{a}-{b}": f"{v:.2%}" for (a, b), v in trans.items()})
    return rot, trans, got, json.loads((s.root / "calibration.json").read_text())


def test_caliscope_4cam_translations(caliscope_errors):
    _, trans, _, _ = caliscope_errors
    # target: within 2 % of the baseline; measured worst 1.03 % (cam_0-cam_1 .. cam_2-cam_3: 0.4-1.0 %)
    assert max(trans.values()) < 0.02


def test_caliscope_4cam_rotations(caliscope_errors):
    rot, _, _, _ = caliscope_errors
    # target: within 0.5 deg; measured worst 0.447 deg (cam_1-cam_2), the other pairs 0.06-0.28 deg.
    # The board's estimated shape is what brings it under: held rigid (--board-shape rigid) the worst pair is
    # 0.754 deg. Halves of the footage: even frames 0.35 deg, odd frames 1.00 deg (there the board-shape F-test is
    # not significant and the board stays rigid; forced: 0.76 deg). See docs/calibration.md.
    assert max(rot.values()) < 0.5


def test_caliscope_board_shape_agrees_with_caliscope(caliscope_errors, shared_data):
    """The board shape we estimate (corner offsets from the nominal print) is the one caliscope's own free 3-D
    points show: an independent check that the offsets are the print's, not noise absorbed by free parameters."""
    import csv
    from collections import defaultdict

    from reconstruct.calibration.boards import corner_points

    *_, cal_json = caliscope_errors
    shape = cal_json["quality"]["board_shape"]
    assert shape["refined"] and shape["test"]["significant"]  # measured F = 3.6 vs critical 2.0
    # caliscope's triangulated corners per frame, rigidly aligned to the nominal board: mean deviation per corner
    pts = defaultdict(dict)
    with open(shared_data / "calib/caliscope_4cam_charuco/calibration/extrinsic/CHARUCO/xyz_CHARUCO.csv") as f:
        for r in csv.DictReader(f):
            pts[int(r["sync_index"])][int(r["keypoint_id"])] = [float(r[k]) for k in ("x_coord", "y_coord", "z_coord")]
    nominal = corner_points(CALISCOPE)
    dev = defaultdict(list)
    for frame in pts.values():
        ids = sorted(frame)
        if len(ids) < 6:
            continue
        P, Q = np.array([frame[i] for i in ids]), nominal[ids]
        U, _, Vt = np.linalg.svd((Q - Q.mean(0)).T @ (P - P.mean(0)))
        R = (U @ np.diag([1, 1, np.sign(np.linalg.det(U @ Vt))]) @ Vt).T
        for i, e in zip(ids, ((P - P.mean(0)) - (Q - Q.mean(0)) @ R.T) @ R):
            dev[i].append(e)
    theirs = np.array([np.mean(dev[i], axis=0) for i in range(len(nominal))])
    ours = np.array([shape["offsets_mm"][str(i)] for i in range(len(nominal))]) / 1000
    # along the board's x axis (where the print deviates most): correlation 0.91 measured, tolerance 0.8
    assert np.corrcoef(ours[:, 0], theirs[:, 0])[0, 1] > 0.8
    assert shape["max_offset_mm"] < 1.5  # measured 0.48 mm: a good print, no warning
    # the report draws it: one dot and arrow per corner
    from deage_plugins.calibrate_stage import calibration_html

    page = calibration_html(cal_json)
    assert "Board shape estimated" in page and page.count("<circle") == len(nominal)
