"""Eye gaze from the iris centres (reconstruct.fitting.gaze) on a synthetic session whose eyes look around.

Session: test-small rig, ICT model, 24 ticks, seed 1, gaze up to +-20 deg yaw / +-12 deg pitch relative to the head
(``SynthSpec.gaze_deg``); synth -> sync -> calibrate -> detect (MediaPipe) -> fit, as in test_end_to_end.py. Only
this test reads the ground truth. Measured figures (seeds 1, 2 and the hero-2ir rig) are in docs/fitting.md.
"""

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gaze_session(tmp_path_factory, repo_root):
    from reconstruct.engine import run_pipeline
    from reconstruct.stage import RunConfig
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.rig import load_rig
    from reconstruct.synth.session import SynthSpec, generate_session

    root = tmp_path_factory.mktemp("gaze") / "take"
    generate_session(load_rig(repo_root / "rigs" / "test-small.toml"), root,
                     SynthSpec(frames=24, seed=1, model="ict", gaze_deg=20))
    run_pipeline(RunConfig(session=root, device="cpu"), make_plugin_manager())
    return root


@pytest.fixture(scope="module")
def measured(gaze_session):
    """Estimated and true gaze in the truth's world: (estimate (T, 2, 3), truth (T, 3), fitted forward (T, 3),
    true head rotations (T, 3, 3))."""
    from reconstruct.calibration.result import read_calibration
    from reconstruct.fitting.result import load_fits
    from reconstruct.session import Session
    from reconstruct.synth.session import load_truth

    s = Session.open(gaze_session)
    cal = read_calibration(s).cameras
    truth = load_truth(gaze_session)
    h = s.rig.hero.name
    M = truth.cameras[h].R.T @ cal[h].R  # calibration-world direction -> truth-world direction (via the hero)
    fits = load_fits(s.stage_dir("fit") / "fits.npz")
    assert fits.eye_gaze is not None and fits.eye_gaze.shape == (len(fits), 2, 3)
    est = np.einsum("ij,tkj->tki", M, fits.eye_gaze.astype(np.float64))
    fwd = np.einsum("ij,tj->ti", M, fits.R[:, :, 2])
    return est, truth.gaze[fits.frames], fwd / np.linalg.norm(fwd, axis=1, keepdims=True), truth.R[fits.frames]


def _angle(a, b):
    return np.degrees(np.arccos(np.clip(np.sum(a * b, axis=-1), -1, 1)))


def test_every_frame_has_both_eyes(measured):
    est, *_ = measured
    assert np.isfinite(est).all()
    assert np.allclose(np.linalg.norm(est, axis=-1), 1, atol=1e-5)


def test_absolute_gaze(measured):
    est, truth, fwd, _ = measured
    err = _angle(est, truth[:, None])
    base = _angle(fwd, truth)  # "the eyes look where the head points"
    print(f"gaze error median {np.median(err):.1f} deg (max {err.max():.1f}); straight-ahead {np.median(base):.1f}")
    # measured: median 9.6 deg (max 18.8) against 13.5 deg for straight ahead. The absolute direction is limited by
    # the fitted mesh around the eyes and MediaPipe's iris on rendered eyes (true mesh, hero-2ir rig: 5.7 deg); a
    # different seed measured 10.1 deg against a straight-ahead 8.2: no claim to beat it in general. Tolerance 15 deg.
    assert np.median(err) < 15


def test_gaze_changes_are_tracked(measured):
    """Within a take, changes of horizontal gaze are measured well: yaw minus its take median, against the truth's."""
    from reconstruct.fitting.gaze import gaze_angles_deg

    est, truth, _, R = measured
    ey, _ = gaze_angles_deg(est, R)
    ty, _ = gaze_angles_deg(np.repeat(truth[:, None], 2, axis=1), R)
    d = (ey - np.median(ey, axis=0)) - (ty - np.median(ty, axis=0))
    rms = np.sqrt(np.mean(d ** 2, axis=0))
    print(f"relative yaw error RMS {rms.round(2)} deg; truth yaw s.d. {ty[:, 0].std():.2f} deg")
    # measured 2.0 / 2.7 deg RMS (left / right) while the true yaw varies with s.d. 6.4 deg; tolerance 4 deg and
    # below 60 % of the truth's spread (the estimate follows the eyes, it is not noise around a constant)
    assert np.all(rms < 4.0) and np.all(rms < 0.6 * ty[:, 0].std())


def test_fit_report_summarises_gaze(gaze_session):
    import json

    rep = json.loads((gaze_session / "out" / "fit" / "report.json").read_text())
    g = rep["gaze"]
    assert g["frames_with_gaze"] == {"left": 24, "right": 24}
    assert g["yaw_deg"][0] < 0 < g["yaw_deg"][1]  # the eyes looked both ways


def test_gaze_round_trips_and_old_files_load(tmp_path):
    from reconstruct.fitting.result import FitSequence, load_fits, save_fits

    T = 3
    seq = FitSequence(model_name="m", frames=np.arange(T, dtype=np.int32), identity=np.zeros(2, np.float32),
                      expression=np.zeros((T, 2), np.float32), R=np.tile(np.eye(3), (T, 1, 1)), t=np.zeros((T, 3)),
                      scale=np.ones(T), vertices=np.zeros((T, 4, 3), np.float32), valid=np.ones(T, bool))
    save_fits(seq, tmp_path / "old.npz")
    assert load_fits(tmp_path / "old.npz").eye_gaze is None and load_fits(tmp_path / "old.npz").frame(0).eye_gaze is None
    g = np.tile(np.array([0.0, 0.0, 1.0], np.float32), (T, 2, 1))
    g[1, 0] = np.nan
    from dataclasses import replace

    save_fits(replace(seq, eye_gaze=g), tmp_path / "new.npz")
    back = load_fits(tmp_path / "new.npz")
    assert np.array_equal(back.eye_gaze, g, equal_nan=True) and back.frame(2).eye_gaze.shape == (2, 3)


def test_gaze_geometry_is_exact_on_exact_rays():
    """The eye model's own geometry: iris centres projected exactly into three cameras (or one) give the gaze back."""
    from reconstruct.calibration.synthetic import example_rig_cameras
    from reconstruct.fitting.gaze import IRIS_RADIUS_M, _gaze

    cams = example_rig_cameras((1280, 720))
    opening = np.array([0.03, -0.01, 1.0])
    fwd = np.array([0.0, 0.0, -1.0])  # the face looks at the rig (world +z points away from it)
    for yaw, pitch in ((0, 0), (15, 0), (-20, 8), (10, -12)):
        y, p = np.radians(yaw), np.radians(pitch)
        g = np.array([np.sin(y) * np.cos(p), np.sin(p), -np.cos(y) * np.cos(p)])
        iris = opening - IRIS_RADIUS_M * fwd + IRIS_RADIUS_M * g
        rays = [c.rays(c.project(iris[None]))for c in cams.values()]
        rays = [(o, d[0]) for o, d in rays]
        for use in (rays, rays[:1]):  # triangulated, and one view intersected with the eye sphere
            est = _gaze(use, opening, fwd, IRIS_RADIUS_M)
            assert np.degrees(np.arccos(np.clip(est @ g, -1, 1))) < 0.05, (yaw, pitch, len(use))
