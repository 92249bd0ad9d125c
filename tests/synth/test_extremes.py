"""Extreme expressions and saccadic gaze in synthetic performances (reconstruct/synth/expressions.py): each
expression does what its name says on the ICT model, the truth records which frames act which, and bad requests
are refused with a clear message."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruct.synth.expressions import EXTREMES, apply_extremes, parse_extremes, segment_envelopes
from reconstruct.synth.performance import make_performance


@pytest.fixture(scope="module")
def ict():
    from reconstruct.face.store import load_builtin_ict

    return load_builtin_ict()


def _ibug(model, v):
    return model.landmark_map("ibug68").points(v, model.triangles)


def test_segments_ramp_hold_and_return():
    seg, env = segment_envelopes(42, 3)
    assert list(np.bincount(seg)) == [14, 14, 14]
    for k in range(3):
        e = env[seg == k]
        assert e[0] < 0.1 and e[-1] < 0.1 and np.allclose(e[5:9], 1.0)  # ramp in, hold the middle third, ramp out


def test_every_extreme_reaches_its_shape(ict):
    perf = make_performance(ict, frames=7 * 12, fps=24.0, seed=3, extremes=tuple(EXTREMES))
    assert perf.extremes == tuple(EXTREMES) and perf.segment.shape == (84,)
    neutral = _ibug(ict, ict.vertices(perf.identity))
    mid = {name: int(np.flatnonzero(perf.segment == k)[5]) for k, name in enumerate(perf.extremes)}
    lm = {name: _ibug(ict, ict.vertices(perf.identity, perf.expression[t])) for name, t in mid.items()}
    opening = lambda p: np.linalg.norm(p[62] - p[66])  # noqa: E731
    corners = lambda p: np.linalg.norm(p[48] - p[54])  # noqa: E731
    lid = lambda p: np.linalg.norm(p[37] - p[41]) + np.linalg.norm(p[44] - p[46])  # noqa: E731
    # measured on seed 3: scream opens the mouth 47 mm, the wide smile widens it by ~15 mm, the pucker narrows it
    assert opening(lm["scream"]) > 0.035
    assert corners(lm["smile"]) > corners(neutral) + 0.008
    assert corners(lm["pucker"]) < corners(neutral) - 0.008
    assert lid(lm["blink"]) < 0.3 * lid(neutral) and lid(lm["squint"]) < 0.8 * lid(neutral)
    assert lm["brows"][19, 1] > neutral[19, 1] + 0.003 and lm["brows"][24, 1] > neutral[24, 1] + 0.003
    # the smirk lifts the subject's left mouth corner (iBUG 54) and not the right (48)
    lift = lm["smirk"][[54, 48], 1] - neutral[[54, 48], 1]
    assert lift[0] > 0.003 and lift[0] > 3 * abs(lift[1])


def test_extremes_leave_the_rest_of_the_performance_unchanged(ict):
    plain = make_performance(ict, frames=30, fps=30.0, seed=5)
    ext = make_performance(ict, frames=30, fps=30.0, seed=5, extremes=("scream",))
    assert np.array_equal(plain.R, ext.R) and np.array_equal(plain.identity, ext.identity)
    _, env = segment_envelopes(30, 1)
    calm = env < 0.05  # the ends of the segment: the talking performance, barely touched
    assert calm.sum() >= 2 and np.allclose(plain.expression[calm], ext.expression[calm], atol=0.05)
    assert (plain.segment == -1).all() and (ext.segment == 0).all()


def test_apply_extremes_keeps_weights_in_range_and_ignores_unknown_blendshapes():
    expr = np.full((10, 3), 0.9)
    out, seg = apply_extremes(expr, ("jawOpen", "x", "y"), ("scream",))
    assert out.min() >= 0 and out.max() <= 1 and (seg[seg >= 0] == 0).all()


def test_saccadic_gaze_fixates_and_jumps(ict):
    perf = make_performance(ict, frames=90, fps=30.0, seed=2, gaze_deg=15, gaze_style="saccades")
    yaw = np.degrees(np.arctan2(perf.gaze[:, 0], perf.gaze[:, 2]))
    step = np.abs(np.diff(yaw))
    assert (step < 1e-6).mean() > 0.6  # mostly fixations
    assert step.max() > 2.0 and np.abs(yaw).max() <= 15.0 + 1e-6  # with fast jumps, within the range asked for


def test_bad_requests_are_refused(ict, tmp_path, repo_root, capsys):
    from reconstruct.cli import main
    from reconstruct.errors import ConfigError

    with pytest.raises(ValueError, match="unknown expression.*known: scream"):
        parse_extremes("scream,yawn")
    assert parse_extremes("all") == tuple(EXTREMES)
    with pytest.raises(ValueError, match="gaze_style"):
        make_performance(ict, frames=4, fps=30.0, gaze_deg=5, gaze_style="wobbly")
    rc = main(["synth", str(repo_root / "rigs" / "test-small.toml"), str(tmp_path / "s"), "--expressions", "yawn"])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown expression(s) yawn" in err and len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "s").exists()
    from reconstruct.face.demo import build_demo_model

    demo = build_demo_model()
    if demo.expression_kind != "blendshape":
        with pytest.raises(ConfigError, match="blendshape"):
            make_performance(demo, frames=4, fps=30.0, extremes=("scream",))


def test_truth_records_the_segments(tmp_path, repo_root, ict):
    from reconstruct.rig import load_rig
    from reconstruct.synth import SynthSpec, generate_session, load_truth

    root = tmp_path / "take"
    generate_session(load_rig(repo_root / "rigs" / "test-small.toml"), root,
                     SynthSpec(frames=6, seed=1, calib_poses=0, extremes=("scream", "smile")), model=ict)
    truth = load_truth(root)
    assert truth.meta["segments"] == ["scream", "smile"]
    assert set(truth.frames_of("scream")) <= {0, 1, 2} and set(truth.frames_of("smile")) <= {3, 4, 5}
    assert len(truth.frames_of("scream")) > 0 and len(truth.frames_of("pucker")) == 0
