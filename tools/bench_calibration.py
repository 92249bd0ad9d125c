"""Benchmark: full rig calibration vs OpenCV's calibrateCamera + stereoCalibrate on the same detections.

    .venv/bin/python tools/bench_calibration.py             synthetic rig + caliscope_4cam (../shared/data)
    .venv/bin/python tools/bench_calibration.py --dense     also time a dense finite-difference Jacobian

Two data sets, each timed in this run:
* synthetic: three 1280x720 cameras, 9x12 ChArUco board in 30 poses, exact corners + 0.3 px noise;
* caliscope_4cam_charuco: four 1280x720 videos (all 57 frames), intrinsics from camera_array.toml.

"ours" = intrinsics (where calibrated) + PnP / camera-graph initialisation + joint bundle adjustment with outlier
rejection and covariance, with its default model choice (tangential terms and board shape tested, each a second
adjustment). "OpenCV" = calibrateCamera per camera (where calibrated) + stereoCalibrate of every
camera against the reference camera (CALIB_FIX_INTRINSIC), which gives pairwise poses but no joint solution.
Detection time is reported separately (it is the same for both). Times are the best of 3 runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reconstruct.calibration.detect import detect_board  # noqa: E402
from reconstruct.calibration.rig_solve import CalibrationOptions, calibrate_rig  # noqa: E402
from reconstruct.calibration.synthetic import example_rig_cameras, ideal_detections, make_board_poses  # noqa: E402
from reconstruct.rig import BoardSpec  # noqa: E402


def angle_deg(Ra, Rb):
    return float(np.degrees(np.arccos(np.clip((np.trace(Ra.T @ Rb) - 1) / 2, -1, 1))))


def opencv_rig(dets, board, reference, intrinsics=None, flags=0):
    """calibrateCamera per camera (unless intrinsics given) + stereoCalibrate of each camera vs the reference."""
    import cv2

    K, D = {}, {}
    for c, ds in dets.items():
        size = ds[0].image_size
        if intrinsics and c in intrinsics:
            K[c], D[c] = intrinsics[c].K.copy(), intrinsics[c].dist.copy()
            continue
        obj = [d.object_points(board).astype(np.float32) for d in ds]
        img = [d.corners.astype(np.float32) for d in ds]
        _, K[c], D[c], _, _ = cv2.calibrateCamera(obj, img, size, None, None, flags=flags)
    poses = {reference: np.eye(4)}
    ref_by_view = {d.view: d for d in dets[reference]}
    for c, ds in dets.items():
        if c == reference:
            continue
        obj, i1, i2 = [], [], []
        for d in ds:
            r = ref_by_view.get(d.view)
            if r is None:
                continue
            common, a, b = np.intersect1d(r.ids, d.ids, return_indices=True)
            if len(common) < 6:
                continue
            obj.append(board_pts(board)[common].astype(np.float32))
            i1.append(r.corners[a].astype(np.float32))
            i2.append(d.corners[b].astype(np.float32))
        _, _, _, _, _, R, T, _, _ = cv2.stereoCalibrate(obj, i1, i2, K[reference], D[reference], K[c], D[c],
                                                        ds[0].image_size, flags=cv2.CALIB_FIX_INTRINSIC)
        P = np.eye(4)
        P[:3, :3], P[:3, 3] = R, T.ravel()
        poses[c] = P
    return K, poses


def board_pts(board):
    from reconstruct.calibration.boards import corner_points

    return corner_points(board)


def timed(fn, repeat=1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_synthetic(dense: bool, n_poses: int = 30, repeat: int = 3) -> list[dict]:
    board = BoardSpec(squares=(9, 12), square_size=0.03, marker_size=0.022, dictionary="DICT_5X5_100")
    cams = example_rig_cameras((1280, 720))
    poses = make_board_poses(board, cams, n_poses, seed=1)
    dets = ideal_detections(board, cams, poses, corner_noise_px=0.3, seed=1)
    n = sum(d.n for ds in dets.values() for d in ds)
    opts = CalibrationOptions(reference="hero")
    t_ours, cal = timed(lambda: calibrate_rig(dets, board, opts), repeat=repeat)
    t_cv, (K_cv, P_cv) = timed(lambda: opencv_rig(dets, board, "hero"), repeat=repeat)
    T_ref = cams["hero"].world_to_camera
    print(f"\nsynthetic rig: 3 cameras 1280x720, {n_poses} poses, {n} corners, 0.3 px noise")
    print(f"  ours   (intrinsics + init + joint BA): {t_ours:7.2f} s   "
          f"(bundle adjustment {cal.quality['bundle_seconds']:.2f} s)")
    print(f"  OpenCV (calibrateCamera x3 + stereoCalibrate x2, default 5-coefficient model): {t_cv:7.2f} s   "
          f"ratio ours/OpenCV {t_ours / t_cv:.2f}")
    for c in cams:
        print(f"  {c:<6} principal point error ours {np.abs(cal.cameras[c].K[:2, 2] - cams[c].K[:2, 2]).max():.2f} px "
              f"(tangential {cal.camera_quality[c]['lens_model']['tangential']}) vs OpenCV "
              f"{np.abs(K_cv[c][:2, 2] - cams[c].K[:2, 2]).max():.2f} px")
    err = {"ours_r": 0.0, "cv_r": 0.0, "ours_t": 0.0, "cv_t": 0.0}
    for c in ("left", "right"):
        T_gt = cams[c].world_to_camera @ np.linalg.inv(T_ref)
        ours, cv = cal.cameras[c], P_cv[c]
        err["ours_r"] = max(err["ours_r"], angle_deg(T_gt[:3, :3], ours.R))
        err["cv_r"] = max(err["cv_r"], angle_deg(T_gt[:3, :3], cv[:3, :3]))
        err["ours_t"] = max(err["ours_t"], 1000 * float(np.linalg.norm(T_gt[:3, 3] - ours.t)))
        err["cv_t"] = max(err["cv_t"], 1000 * float(np.linalg.norm(T_gt[:3, 3] - cv[:3, 3])))
        print(f"  {c:<6} rotation error ours {angle_deg(T_gt[:3, :3], ours.R):.4f} deg vs OpenCV "
              f"{angle_deg(T_gt[:3, :3], cv[:3, :3]):.4f} deg; translation error ours "
              f"{1000 * np.linalg.norm(T_gt[:3, 3] - ours.t):.3f} mm vs OpenCV "
              f"{1000 * np.linalg.norm(T_gt[:3, 3] - cv[:3, 3]):.3f} mm")
    if dense:
        from dataclasses import replace

        t_dense, _ = timed(lambda: calibrate_rig(dets, board, replace(opts, sparse=False)))
        print(f"  ours with a dense finite-difference Jacobian (no sparsity, no analytic derivatives): {t_dense:7.2f} s"
              f"   (default is {t_dense / t_ours:.1f}x faster)")
    what = f"synthetic 3 cameras, {n_poses} poses, 0.3 px noise"
    return [{"stage": "calibration", "metric": "rig solve seconds (synthetic)", "value": t_ours, "baseline": t_cv,
             "ratio": t_ours / t_cv, "notes": f"baseline: OpenCV calibrateCamera x3 + stereoCalibrate x2, same "
             f"detections, same run (pairwise poses, no joint solution); best of {repeat}; {what}"},
            {"stage": "calibration", "metric": "worst rotation error deg (synthetic)", "value": err["ours_r"],
             "baseline": err["cv_r"], "ratio": err["ours_r"] / err["cv_r"],
             "notes": "vs ground-truth extrinsics; baseline: OpenCV on the same detections"},
            {"stage": "calibration", "metric": "worst translation error mm (synthetic)", "value": err["ours_t"],
             "baseline": err["cv_t"], "ratio": err["ours_t"] / err["cv_t"],
             "notes": "vs ground-truth extrinsics; baseline: OpenCV on the same detections"}]


def bench_caliscope(data: Path, stride: int = 1, repeat: int = 3) -> list[dict]:
    from dataclasses import replace

    import cv2

    from reconstruct.calibration.toml_io import read_camera_toml

    d = data / "calib/caliscope_4cam_charuco"
    if not d.exists():
        print(f"\ncaliscope_4cam: {d} not found, skipped")
        return []
    board = BoardSpec(kind="charuco", squares=(4, 5), square_size=0.054, marker_size=0.0405,
                      dictionary="DICT_4X4_1000", inverted=True)
    t0 = time.perf_counter()
    dets = {}
    for i in range(4):
        cap = cv2.VideoCapture(str(d / f"calibration/extrinsic/cam_{i}.mp4"))
        k, out = 0, []
        while True:
            ok, fr = cap.read()
            if not ok:
                break
            if k % stride == 0:
                det = detect_board(fr[..., ::-1], board, f"cam_{i}", k)
                if det is not None:
                    out.append(det)
            k += 1
        dets[f"cam_{i}"] = out
    t_det = time.perf_counter() - t0
    ref = read_camera_toml(d / "camera_array.toml")
    n = sum(x.n for ds in dets.values() for x in ds)
    opts = CalibrationOptions(reference="cam_0", refine_intrinsics=False)
    t_ours, cal = timed(lambda: calibrate_rig(dets, board, opts, intrinsics=ref), repeat=repeat)
    t_rigid, rigid = timed(lambda: calibrate_rig(dets, board, replace(opts, refine_board=False), intrinsics=ref))
    t_cv, (_, P_cv) = timed(lambda: opencv_rig(dets, board, "cam_0", intrinsics=ref), repeat=repeat)
    print(f"\ncaliscope_4cam: 4 cameras 1280x720, {sum(len(v) for v in dets.values())} board images, {n} corners "
          f"(detection {t_det:.1f} s); intrinsics from camera_array.toml")
    print(f"  ours   (init + joint BA, extrinsics only): {t_ours:7.2f} s   (board held rigid: {t_rigid:.2f} s)")
    print(f"  OpenCV (stereoCalibrate x3 vs cam_0):      {t_cv:7.2f} s   ratio ours/OpenCV {t_ours / t_cv:.2f}")
    worst = {}
    for name, get in (("ours", lambda c: cal.cameras[c].world_to_camera),
                      ("ours, board held rigid", lambda c: rigid.cameras[c].world_to_camera),
                      ("OpenCV", lambda c: P_cv[c])):
        worst_r, worst_t = 0.0, 0.0
        for a in ref:
            for b in ref:
                if a < b:
                    A = ref[b].world_to_camera @ np.linalg.inv(ref[a].world_to_camera)
                    B = get(b) @ np.linalg.inv(get(a))
                    worst_r = max(worst_r, angle_deg(A[:3, :3], B[:3, :3]))
                    worst_t = max(worst_t, np.linalg.norm(A[:3, 3] - B[:3, 3]) / np.linalg.norm(A[:3, 3]))
        print(f"  {name:<22} vs camera_array.toml: worst relative rotation {worst_r:.3f} deg, "
              f"worst relative translation {worst_t:.2%} of the baseline")
        worst[name] = (worst_r, worst_t)
    t_full, full = timed(lambda: calibrate_rig(dets, board, CalibrationOptions(reference="cam_0")))
    print(f"  ours with intrinsics from these clips too: {t_full:7.2f} s, "
          f"{len(full.warnings)} warnings (coverage 15-29 %: intrinsics not observable)")
    what = (f"caliscope_4cam_charuco (../shared/data), every {stride}. frame, intrinsics from camera_array.toml; "
            f"board shape {'estimated' if cal.quality['board_shape'].get('refined') else 'rigid'}")
    return [{"stage": "calibration", "metric": "extrinsics solve seconds (caliscope 4 cams)", "value": t_ours,
             "baseline": t_cv, "ratio": t_ours / t_cv,
             "notes": f"baseline: OpenCV stereoCalibrate x3 vs cam_0, same detections, same run; {what}"},
            {"stage": "calibration", "metric": "worst rel. rotation deg vs published (caliscope)",
             "value": worst["ours"][0], "baseline": worst["OpenCV"][0], "ratio": worst["ours"][0] / worst["OpenCV"][0],
             "notes": "reference: the data set's camera_array.toml; baseline column: OpenCV's error"},
            {"stage": "calibration", "metric": "worst rel. translation % vs published (caliscope)",
             "value": 100 * worst["ours"][1], "baseline": 100 * worst["OpenCV"][1],
             "ratio": worst["ours"][1] / worst["OpenCV"][1],
             "notes": "% of the camera baseline; reference: camera_array.toml; baseline column: OpenCV's error"}]


def main(argv: list[str] | None = None) -> list[dict]:
    """Print the measurements and return them as rows of the bench suite (docs/benchmarks.md)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dense", action="store_true", help="also time a dense-Jacobian bundle adjustment")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="shared data folder")
    ap.add_argument("--quick", action="store_true",
                    help="short run: 15 synthetic poses, every 4th caliscope frame, best of 1")
    ap.add_argument("--session", help="(bench suite) ignored: this benchmark makes its own board views")
    args, _ = ap.parse_known_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)
    repeat = 1 if args.quick else 3
    rows = bench_synthetic(args.dense, n_poses=15 if args.quick else 30, repeat=repeat)
    rows += bench_caliscope(args.data, stride=4 if args.quick else 1, repeat=repeat)
    if args.quick:
        for r in rows:
            r["notes"] = "quick; " + r["notes"]
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
