"""Calibrating a session made by the synthetic session generator (reconstruct.synth), on the demo rig:
hero 640x480 RGB with a narrow lens, two 320x240 IR witnesses, 5x7 ChArUco, 24 rendered poses."""

import json

import numpy as np

from reconstruct.calibration.rig_solve import calibrate_session
from reconstruct.camera import CameraModel
from reconstruct.rig import load_rig
from reconstruct.synth import SynthSpec, generate_session, truth_dir


def test_demo_rig_synthetic_session(repo_root, tmp_path):
    rig = load_rig(repo_root / "rigs/test-small.toml")
    s = generate_session(rig, tmp_path / "take", SynthSpec(frames=1))
    cal = calibrate_session(s)
    truth = {n: CameraModel.from_dict(d) for n, d in
             json.loads((truth_dir(s.root) / "cameras.json").read_text()).items()}
    T_ref = truth["hero"].world_to_camera
    for name, gt in truth.items():
        est = cal.cameras[name]
        T = gt.world_to_camera @ np.linalg.inv(T_ref)
        ang = np.degrees(np.arccos(np.clip((np.trace(T[:3, :3].T @ est.R) - 1) / 2, -1, 1)))
        # the witnesses see the board in only 12-13 of 24 poses, at 320x240: tolerances focal 0.5 %,
        # rotation 1 deg, translation 10 mm; measured focal <= 0.17 %, rotation <= 0.58 deg, translation <= 4.9 mm
        # (principal points off by up to 4.3 px: OpenCV's corners on 320x240 images carry a systematic bias)
        assert abs(est.K[0, 0] / gt.K[0, 0] - 1) < 0.005, name
        assert ang < 1.0, name
        assert 1000 * np.linalg.norm(T[:3, 3] - est.t) < 10.0, name
        assert cal.camera_quality[name]["views"] >= 10
    # ... and the result says so: the witnesses' poses are flagged as uncertain (sigma ~0.18 deg)
    assert any("witness-left" in w and "uncertain" in w for w in cal.warnings)
