"""The synthetic calibration captures are good enough to calibrate the rig close to the ground-truth cameras."""

from __future__ import annotations

import numpy as np

from reconstruct.calibration.rig_solve import calibrate_session
from reconstruct.conventions import rotation_angle_deg
from reconstruct.demo import demo_rig_path
from reconstruct.rig import load_rig
from reconstruct.synth import SynthSpec, generate_session, load_truth


def test_calibration_from_synthetic_captures_matches_truth(tmp_path):
    root = tmp_path / "calib-take"
    session = generate_session(load_rig(demo_rig_path()), root, SynthSpec(frames=1, seed=1, model="demo"))
    cal = calibrate_session(session)
    truth = load_truth(root)
    h_t, h_e = truth.cameras["hero"], cal.cameras["hero"]
    for name, est in cal.cameras.items():
        t = truth.cameras[name]
        # compare poses relative to the hero (the calibration's own world frame is the hero camera)
        R_t, R_e = t.R @ h_t.R.T, est.R @ h_e.R.T
        tr_t, tr_e = t.t - R_t @ h_t.t, est.t - R_e @ h_e.t
        # tolerances: focal 2 %, rotation 1 deg, translation 15 mm; measured 0.8 %, 0.46 deg, 7.0 mm (seed 1)
        assert abs(est.K[0, 0] / t.K[0, 0] - 1) < 0.02, name
        assert rotation_angle_deg(R_t, R_e) < 1.0, name
        assert np.linalg.norm(tr_t - tr_e) < 0.015, name
