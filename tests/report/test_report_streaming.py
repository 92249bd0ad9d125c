"""The report reads a take frame by frame: its flags hold a few numbers per frame, not the frames (memory does not
grow with the take), and give what the stacked computation gave."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from reconstruct.engine import run_pipeline
from reconstruct.plugins import make_plugin_manager
from reconstruct.report import data as D
from reconstruct.report.data import ReportData, compute_flags
from reconstruct.session import Session
from reconstruct.stage import RunConfig
from tests.report.test_report_stage import _write_fake_composites, host
from tests.tiny_session import make_tiny_session


def _take(tmp_path, frames: int):
    root = make_tiny_session(tmp_path / f"take{frames}", frames=frames)
    run_pipeline(RunConfig(session=root, only_stage="sync"), host())
    f = [fs.frame for fs in Session.open(root).read_sync() if fs.indices.get("hero") is not None]
    _write_fake_composites(root, f[2], f[len(f) // 2])
    return root


def _flags(root, monkeypatch=None, stacked=False):
    if stacked:  # the computation before: every frame's edit kept and stacked
        monkeypatch.setattr(D, "_mask_union", lambda data, frames: None)
    return compute_flags(ReportData.load(Session.open(root)), make_plugin_manager().components(), {})


def test_flicker_frame_by_frame_equals_the_stacked_computation(tmp_path, monkeypatch):
    root = _take(tmp_path, 10)
    streamed = _flags(root)
    stacked = _flags(root, monkeypatch, stacked=True)
    a, b = streamed.series["flicker"], stacked.series["flicker"]
    np.testing.assert_allclose(a.score, b.score, rtol=1e-12, atol=1e-12)
    assert list(a.flagged) == list(b.flagged) and a.threshold == pytest.approx(b.threshold)
    np.testing.assert_array_equal(streamed.series["seams"].score, stacked.series["seams"].score)


def _peak_mb(root) -> float:
    data = ReportData.load(Session.open(root))
    comps = make_plugin_manager().components()
    tracemalloc.start()
    try:
        compute_flags(data, comps, {})
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_flag_memory_does_not_grow_with_the_take(tmp_path, monkeypatch):
    short, long = _take(tmp_path, 6), _take(tmp_path, 24)
    _peak_mb(short)  # the detector's and libraries' one-time allocations
    a, b = _peak_mb(short), _peak_mb(long)
    # measured: 23.8 MiB for 6 frames and 23.9 for 24 (before: 71.6 and 282.6, every frame's edit kept to stack)
    assert b < 1.1 * a, (a, b)
    monkeypatch.setattr(D, "_mask_union", lambda data, frames: None)
    assert _peak_mb(long) > 2.0 * _peak_mb(short)  # the stacked path grows: what the test would catch


def test_the_pass_in_worker_processes_gives_the_same_flags(tmp_path):
    """Chunks of frames in two worker processes (the driver pairs the second chunk's first frame with the first
    chunk's last) give the flags of the single pass, frame-to-frame numbers included."""
    from reconstruct.executors.local import LocalExecutor

    root = _take(tmp_path, 20)  # 2 chunks of 10: frame 10's flicker from frame 9 of the first
    comps = make_plugin_manager().components()
    one = compute_flags(ReportData.load(Session.open(root)), comps, {})
    ex = LocalExecutor(jobs=2, components=comps)
    try:
        two = compute_flags(ReportData.load(Session.open(root)), comps, {}, executor=ex)
    finally:
        ex.close()
    assert set(one.series) == set(two.series) and one.skipped == two.skipped
    for name in one.series:
        np.testing.assert_array_equal(one.series[name].score, two.series[name].score)
        assert list(one.series[name].flagged) == list(two.series[name].flagged)
    assert one.boxes == two.boxes


def test_the_pass_gives_each_worker_one_even_share():
    """One work item per worker on a short take (24 frames, 2 workers: 12 + 12; fixed items of 8 left one worker
    idle for a third of the pass), items of at most 16 frames on a long one, every frame once and in order."""
    from reconstruct.report.scan import MAX_CHUNK, chunk_bounds

    assert chunk_bounds(24, 2) == [(0, 12), (12, 24)]
    assert chunk_bounds(20, 2) == [(0, 10), (10, 20)]
    assert chunk_bounds(0, 2) == []
    for n, jobs in ((24, 2), (96, 2), (1000, 2), (7, 3), (33, 4)):
        b = chunk_bounds(n, jobs)
        assert b[0][0] == 0 and b[-1][1] == n and all(x[1] == y[0] for x, y in zip(b, b[1:]))
        sizes = [y - x for x, y in b]
        assert max(sizes) <= MAX_CHUNK and max(sizes) - min(sizes) <= 1, (n, jobs, sizes)
        if n <= jobs * MAX_CHUNK:
            assert len(b) == jobs, (n, jobs, b)
