"""Sync on synthetic timelines with known true ticks: offset 37 ms (> one period at 30 fps), quarter-frame jitter,
drops, duplicates, drift. Correctness = every matched frame has the hero frame's true tick."""

from __future__ import annotations

import numpy as np
import pytest

from capture.sync import detect_flash, grid_fit, match_frames
from reconstruct.errors import SyncError
from reconstruct.session import FrameRecord
from reconstruct.synth.timeline import TimelineSpec, make_timeline

CAMS = ["hero", "left", "right"]
FPS = 30.0


def records(tl, use_ticks=False, use_tc=False):
    out = {}
    for cam, t in tl.items():
        out[cam] = [FrameRecord(index=i, t_capture_ns=int(ts), tick=int(k) if use_ticks else -1,
                                timecode=t.timecodes[i] if use_tc else "")
                    for i, (k, ts) in enumerate(zip(t.ticks, t.t_ns))]
    return out


def check_correct(framesets, tl):
    """Count wrong matches; return (wrong, matched, expected) over all non-hero cameras."""
    wrong = matched = expected = 0
    for fs in framesets:
        true = tl["hero"].ticks[fs.indices["hero"]]
        for cam in CAMS[1:]:
            has_tick = true in set(tl[cam].ticks.tolist())
            expected += has_tick
            i = fs.indices[cam]
            if i is None:
                continue
            matched += 1
            wrong += int(tl[cam].ticks[i] != true)
    return wrong, matched, expected


HARD = TimelineSpec(offset_ns={"left": 37_000_000, "right": -21_000_000}, jitter_frac=0.25, drop_rate=0.05,
                    duplicate_rate=0.03, timecode_start="01:00:00:00", flash_tick=40)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("method", ["tick", "timecode", "flash"])
def test_exact_methods_recover_all_frame_sets(seed, method):
    tl = make_timeline(CAMS, "hero", 300, FPS, HARD, seed=seed)
    recs = records(tl, use_ticks=method == "tick", use_tc=method == "timecode")
    bright = {c: tl[c].brightness for c in CAMS} if method == "flash" else None
    fsets, rep = match_frames(recs, "hero", FPS, method=method, brightness=bright)
    wrong, matched, expected = check_correct(fsets, tl)
    assert rep.method == method
    assert wrong == 0  # 100% correct required; measured 0 wrong for every seed
    assert matched == expected  # every camera frame that exists for a hero tick is found
    assert len(fsets) == 300  # hero never drops here: one frame set per hero frame
    # duplicates are detected: every second copy is reported, and no more
    for cam in CAMS[1:]:
        assert len(rep.cameras[cam].duplicates) == int(tl[cam].duplicated.sum())
    # clock offset is measured (tolerance 2 ms vs jitter 8.3 ms; measured < 1 ms)
    assert abs(rep.cameras["left"].offset_ns - 37_000_000) < 2_000_000
    assert abs(rep.cameras["right"].offset_ns + 21_000_000) < 2_000_000


def test_auto_prefers_tick_then_timecode_then_flash():
    tl = make_timeline(CAMS, "hero", 120, FPS, HARD, seed=3)
    assert match_frames(records(tl, use_ticks=True), "hero", FPS)[1].method == "tick"
    assert match_frames(records(tl, use_tc=True), "hero", FPS)[1].method == "timecode"
    bright = {c: tl[c].brightness for c in CAMS}
    assert match_frames(records(tl), "hero", FPS, brightness=bright)[1].method == "flash"
    assert match_frames(records(tl), "hero", FPS)[1].method == "timestamps"


def test_timestamps_only_is_correct_or_says_ambiguous():
    """Without ticks/timecode/flash an offset of 37 ms (> one period) is identifiable only from the take's ends:
    over 40 seeds the matching must be 100% correct whenever it does not report ambiguity, and correct in most."""
    correct_unflagged = flagged = 0
    for seed in range(40):
        tl = make_timeline(CAMS, "hero", 200, FPS, HARD, seed=seed)
        fsets, rep = match_frames(records(tl), "hero", FPS, method="timestamps")
        wrong, matched, expected = check_correct(fsets, tl)
        amb = any(rep.cameras[c].ambiguous for c in CAMS[1:])
        if amb:
            flagged += 1
            assert any("ambiguous" in w for w in rep.warnings)
        else:
            assert wrong == 0, f"seed {seed}: {wrong} wrong matches without an ambiguity warning"
            assert matched == expected
            correct_unflagged += 1
    assert correct_unflagged >= 28  # measured: 31 of 40 unflagged (all correct), 9 flagged ambiguous


def test_timestamps_small_offset_with_hero_drops_and_drift():
    spec = TimelineSpec(offset_ns={"left": 9_000_000, "right": -12_000_000}, jitter_frac=0.25, drop_rate=0.08,
                        duplicate_rate=0.05, hero_drop_rate=0.05, drift_ppm={"left": 400.0})
    tl = make_timeline(CAMS, "hero", 900, FPS, spec, seed=11)
    fsets, rep = match_frames(records(tl), "hero", FPS, method="timestamps")
    wrong, matched, expected = check_correct(fsets, tl)
    assert wrong == 0 and matched == expected
    assert len(fsets) == len(tl["hero"].ticks)
    # drift: 400 ppm over 30 s = 12 ms = 0.36 frames. The estimate is jitter-limited: +-P/4 uniform jitter on both
    # clocks over 900 frames gives a slope std of ~26 ppm. Tolerance 80 ppm; measured 396.2 (left), -23.4 (right).
    assert abs(rep.cameras["left"].drift_ppm - 400.0) < 80.0
    assert abs(rep.cameras["right"].drift_ppm) < 80.0
    assert any("left drifts" in w for w in rep.warnings)
    assert not any("right drifts" in w for w in rep.warnings)


def test_drops_are_reported_as_unmatched_hero_frames():
    tl = make_timeline(CAMS, "hero", 300, FPS, HARD, seed=1)
    fsets, rep = match_frames(records(tl, use_ticks=True), "hero", FPS)
    for cam in CAMS[1:]:
        assert rep.cameras[cam].unmatched_hero == len(tl[cam].dropped_ticks)


def test_grid_fit_absorbs_quarter_frame_jitter():
    rng = np.random.default_rng(0)
    period = 1e9 / 30
    true = np.sort(rng.choice(1000, 800, replace=False))
    t = (5e17 + true * period * (1 + 2e-4) + rng.uniform(-0.25, 0.25, 800) * period).astype(np.int64)
    k, a, b = grid_fit(t, period)
    assert np.array_equal(k, true - true[0])
    assert abs(b / period - (1 + 2e-4)) < 1e-5


def test_flash_detection_needs_a_real_flash():
    x = 100 + np.random.default_rng(0).normal(0, 2, 200)
    assert detect_flash(x) is None
    x[77] = 240
    assert detect_flash(x) == 77


def test_bad_inputs():
    tl = make_timeline(CAMS, "hero", 30, FPS, TimelineSpec(), seed=0)
    recs = records(tl)
    with pytest.raises(SyncError, match="unknown sync method"):
        match_frames(recs, "hero", FPS, method="magic")
    with pytest.raises(SyncError, match="no trigger tick"):
        match_frames(recs, "hero", FPS, method="tick")
    with pytest.raises(SyncError, match="no flash found in the hero"):
        match_frames(recs, "hero", FPS, method="flash", brightness={c: tl[c].brightness for c in CAMS})
    with pytest.raises(SyncError, match="hero camera 'nope'"):
        match_frames(recs, "nope", FPS)
