"""The *unnatural eyes* flag's gaze term on real renders: a composite whose eyes look elsewhere than the plate's.

Two synthetic sessions of the same performance (test-small rig, ICT, 16 ticks, seed 1) that differ only in the
eyes: in the plate they look around (``gaze_deg=20``), in the "composite" (the other session's hero frames,
written where the composite stage writes) they look straight ahead. The report must measure the gaze difference
in degrees (hero view, against the fit of the plate session) and flag the frames where it is large.
"""

import shutil

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def flags(tmp_path_factory, repo_root):
    from reconstruct.report.data import ReportData, compute_flags
    from reconstruct.synth.session import load_truth
    from tests.gaze_sessions import make_gaze_pair

    s, still, host, files = make_gaze_pair(tmp_path_factory.mktemp("gazeflag"), repo_root, frames=16)
    plate, hero = s.root, s.rig.hero.name
    out = plate / "out" / "composite" / "hero"
    out.mkdir(parents=True)
    for f, name in files.items():  # the same frame of the same performance, eyes straight ahead
        shutil.copy(still / "cams" / hero / name, out / f"{f:06d}.png")
    res = compute_flags(ReportData.load(s), host.components(), {})
    truth = load_truth(plate)
    fr = res.series["unnatural_eyes"].frames
    # the true angle between the plate's gaze and straight ahead (the composite's gaze) per frame
    true_deg = np.degrees(np.arccos(np.clip(np.einsum("tj,tj->t", truth.gaze[fr], truth.R[fr][:, :, 2]), -1, 1)))
    # control: a composite whose eyes are the plate's own (lossless copies)
    for f, name in files.items():
        shutil.copy(plate / "cams" / hero / name, out / f"{f:06d}.png")
    same = compute_flags(ReportData.load(s), host.components(), {})
    return res, true_deg, same


def test_gaze_difference_is_measured(flags):
    res, true_deg, _ = flags
    assert res.gaze_deg is not None and np.isfinite(res.gaze_deg).all()
    est = res.gaze_deg.mean(axis=1)  # both eyes
    err = est - true_deg
    print(f"gaze difference: true {true_deg.round(1)}, measured {est.round(1)}, RMS error "
          f"{np.sqrt(np.mean(err ** 2)):.2f} deg, correlation {np.corrcoef(est, true_deg)[0, 1]:.2f}")
    # measured: see the printed line (docs/report.md); tolerances: RMS error 4 deg and correlation 0.8 with the
    # truth (the measure follows the eyes, from one view, with the plate and the output measured the same way)
    assert np.sqrt(np.mean(err ** 2)) < 4.0
    assert np.corrcoef(est, true_deg)[0, 1] > 0.8


def test_frames_with_large_gaze_change_are_flagged(flags):
    res, true_deg, _ = flags
    flagged = set(res.series["unnatural_eyes"].flagged.tolist())
    fr = res.series["unnatural_eyes"].frames
    big = {int(f) for f, d in zip(fr, true_deg) if d > 9}  # well above the 5 deg threshold
    assert big and big <= flagged


def test_unchanged_eyes_are_not_flagged(flags):
    *_, same = flags
    assert np.nanmax(same.gaze_deg) < 0.5  # the same pixels give the same gaze
    assert same.series["unnatural_eyes"].flagged.size == 0
