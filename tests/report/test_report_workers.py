"""The report's worker processes: each frame read once across chunks (the driver pairs a chunk's first frame with
the previous chunk's last instead of the chunk reading that frame again), and the plotting packages open3d and
MediaPipe import at their top (plotly/dash, matplotlib.pyplot) not loaded where nothing uses them."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from reconstruct.executors.resources import Resources
from reconstruct.plugins import make_plugin_manager
from reconstruct.report import measures as M
from reconstruct.report.data import ReportData, compute_flags
from reconstruct.session import Session
from tests.report.test_report_streaming import _take

ROOT = Path(__file__).resolve().parents[2]


class InProcess:
    """An executor that runs the work items here, one after another, as a pool of ``jobs`` would."""

    name = "in-process"

    def __init__(self, jobs: int, components) -> None:
        self.jobs, self.components = jobs, components

    def map(self, fn, items, progress=None, description="", resources=False, fresh=False, **_):
        return [fn(it, Resources(self.components)) for it in items]


def test_chunks_read_each_frame_once_and_give_the_single_pass_flags(tmp_path, monkeypatch):
    from reconstruct import lazy_imports as imports

    monkeypatch.setattr(imports, "defer_plotting_imports", lambda *a: set())  # not in the test process
    root = _take(tmp_path, 20)
    comps = make_plugin_manager().components()
    reads = []
    real = ReportData.before
    monkeypatch.setattr(ReportData, "before", lambda self, f: reads.append(f) or real(self, f))
    one = compute_flags(ReportData.load(Session.open(root)), comps, {})
    n = len(reads)
    reads.clear()
    three = compute_flags(ReportData.load(Session.open(root)), comps, {}, executor=InProcess(3, comps))
    # 20 frames in 3 chunks (7 + 7 + 6): before, the 2nd and 3rd chunk read the frame before them again (22 reads)
    assert sorted(reads) == sorted(set(reads)) and len(reads) == n == 20, reads
    for name in one.series:
        np.testing.assert_array_equal(one.series[name].score, three.series[name].score)
    assert np.isfinite(three.series["flicker"].score[[7, 14]]).all()  # the frames paired in the driver


def _fake_masks(h=40, w=50, frames=8, seed=3):
    """for_frame of a measurer's :class:`~M.FaceMasks` on synthetic frames, counting the frames asked for."""
    rng = np.random.default_rng(seed)
    faces = {f: rng.random((h, w)) > 0.3 for f in range(frames)}
    asked = []

    def for_frame(f, plate):
        asked.append(f)
        return (slice(0, h), slice(0, w)), faces[f], np.ones((h, w), np.float32), {}, 20.0

    return SimpleNamespace(for_frame=for_frame), asked


def test_measures_flicker_of_chunks_merged_equals_one_pass():
    h, w, n = 40, 50, 8
    rng = np.random.default_rng(4)
    plates = [rng.integers(0, 255, (h, w, 3)).astype(np.uint8) for _ in range(n)]
    results = [np.clip(p + rng.integers(-9, 9, p.shape), 0, 255).astype(np.uint8) for p in plates]
    data = SimpleNamespace(intent=lambda m: ("", {}))
    frames = list(range(n))
    masks, asked = _fake_masks(h, w, n)
    one = M.MethodMeasurer(data, "x", masks, None, frames)
    for f in frames:
        one.add(f, plates[f] if f != 5 else None, results[f])  # frame 5 unreadable: no pair with 4 nor 6
    single = one.result()
    masks, asked = _fake_masks(h, w, n)
    driver = M.MethodMeasurer(data, "x", masks, None, frames)
    for a, b in ((0, 3), (3, 6), (6, 8)):
        part = M.MethodMeasurer(data, "x", masks, None, frames, pending=a > 0)
        for f in frames[a:b]:
            part.add(f, plates[f] if f != 5 else None, results[f])
        driver.merge(pickle.loads(pickle.dumps(part.part())))  # as it comes back from a worker
    merged = driver.result()
    assert asked == [0, 1, 2, 3, 4, 6, 7]  # each measured frame's masks once
    assert driver._flick_a == one._flick_a and driver._flick_b == one._flick_b and len(one._flick_a) == 5
    assert merged.flicker_ratio == single.flicker_ratio and np.isfinite(single.flicker_ratio)
    for k in ("expression_iod_pct", "detail_ratio", "dark_pct", "wrinkle_ratio"):
        np.testing.assert_array_equal(getattr(merged, k), getattr(single, k))


_WORKER = """
import pickle, sys
from reconstruct.executors.resources import Resources
from reconstruct.report.scan import scan_chunk
job = pickle.load(open(sys.argv[1], "rb"))
scans = scan_chunk(job, Resources())[0]
assert len(scans) == job.stop - job.start and all(s.ok for s in scans)
assert "mediapipe" in sys.modules  # the worker's landmark detector (the pattern frames show no face)
import open3d
names = ("open3d.visualization", "mediapipe.python.solutions.drawing_utils")
lazy = [n for n in names if type(sys.modules[n]).__name__ == "_LazyModule"]
print("lazy", *lazy, "| loaded", *[n for n in ("dash", "plotly", "matplotlib") if n in sys.modules])
# the deferred modules still work when something does use them
from mediapipe.python.solutions import drawing_utils
assert callable(drawing_utils.draw_landmarks) and callable(open3d.visualization.draw_plotly)
print("then", *[n for n in ("dash", "plotly", "matplotlib") if n in sys.modules])
"""


def test_a_report_worker_does_not_load_the_plotting_packages(tmp_path):
    """Measured (3 alternated runs, shared machine): importing MediaPipe 0.37 -> 0.10 CPU-s and open3d 0.50 ->
    0.25 CPU-s (matplotlib, plotly and dash left out)."""
    pytest.importorskip("mediapipe")
    pytest.importorskip("open3d")
    from reconstruct.report.data import _mask_union
    from reconstruct.report.scan import ScanChunk

    root = _take(tmp_path, 6)
    d = ReportData.load(Session.open(root))
    frames = tuple(int(f) for f in d.outputs if d.hero_index(f) is not None)
    job = ScanChunk(str(root), d.method, frames, 0, len(frames), (), _mask_union(d, list(frames)))
    (tmp_path / "job.pkl").write_bytes(pickle.dumps(job))
    (tmp_path / "worker.py").write_text(_WORKER)
    r = subprocess.run([sys.executable, str(tmp_path / "worker.py"), str(tmp_path / "job.pkl")], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                        "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [x for x in r.stdout.splitlines() if x.startswith(("lazy", "then"))]
    assert lines[0] == "lazy open3d.visualization mediapipe.python.solutions.drawing_utils | loaded", r.stdout
    assert lines[1] == "then dash plotly matplotlib", r.stdout


def test_the_driver_hashes_the_manifest_while_the_workers_scan(tmp_path, monkeypatch):
    """The driver waits while the workers scan: ``idle`` work (the provenance section's hashing of every output,
    ~0.5 s on the bench take, and the gaze term's face model, ~0.3 s) runs then, in a thread of the driver, once;
    not when the pass runs in the driver itself. The section then uses that outcome."""
    import threading

    from reconstruct import provenance
    from reconstruct import lazy_imports as imports
    from reconstruct.report.sections import ProvenanceSection

    monkeypatch.setattr(imports, "defer_plotting_imports", lambda *a: set())
    root = _take(tmp_path, 12)
    comps = make_plugin_manager().components()
    ran = []
    idle = lambda: ran.append(threading.current_thread() is not threading.main_thread())  # noqa: E731
    compute_flags(ReportData.load(Session.open(root)), comps, {}, idle=idle)
    assert ran == []  # the pass ran here: nothing to overlap
    compute_flags(ReportData.load(Session.open(root)), comps, {}, executor=InProcess(2, comps), idle=idle)
    assert ran == [True]

    session = Session.open(root)
    ctx = SimpleNamespace(session=session, memo={"report.manifest_status": {"a": "ok", "b": "changed"}})
    monkeypatch.setattr(provenance, "read_manifest", lambda s: {"a": {}, "b": {}})
    monkeypatch.setattr(provenance, "verify_manifest", lambda s: pytest.fail("hashed again"))
    html = ProvenanceSection().html(ctx)
    assert "1 match their recorded sha256, 1 changed since" in html and not ctx.memo


@pytest.mark.parametrize("measured", [[0, 5, 10], [0, 9], [2, 3, 4, 5, 6, 7]])
def test_measures_of_a_subsample_merged_from_chunks_equal_one_pass(measured):
    """A long take's measures run on a subsample: a chunk's first measured frame pairs with the last measured frame
    of the chunks before it, however many frames (or chunks without a measured frame) lie between."""
    h, w, n = 30, 40, 12
    rng = np.random.default_rng(8)
    plates = [rng.integers(0, 255, (h, w, 3)).astype(np.uint8) for _ in range(n)]
    results = [np.clip(p + rng.integers(-9, 9, p.shape), 0, 255).astype(np.uint8) for p in plates]
    data = SimpleNamespace(intent=lambda m: ("", {}))
    masks, _ = _fake_masks(h, w, n)
    one = M.MethodMeasurer(data, "x", masks, None, measured)
    for f in range(n):
        one.add(f, plates[f], results[f])
    driver = M.MethodMeasurer(data, "x", masks, None, measured)
    for a, b in ((0, 4), (4, 8), (8, 12)):
        part = M.MethodMeasurer(data, "x", masks, None, measured, pending=a > 0)
        for f in range(a, b):
            part.add(f, plates[f], results[f])
        sent = part.part(last=b == n)  # the take's last part: no frame follows, its last state is not sent
        assert b < n or sent["tail"] is None
        driver.merge(pickle.loads(pickle.dumps(sent)))
    assert driver._flick_a == one._flick_a and len(one._flick_a) == len(measured) - 1
    assert driver.result().flicker_ratio == one.result().flicker_ratio


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_manifest_is_hashed_from_before_the_driver_prepares_the_pass(tmp_path, monkeypatch, jobs):
    """With workers, the provenance section's hashing starts as soon as the report's data is loaded, so that it
    overlaps the driver's own preparation of the pass (the union of the mask patches, one core idle: ~0.3 s on the
    bench take) and not only the pass; before, it started with the pass. Without workers it does not run early."""
    import threading

    from reconstruct import lazy_imports as imports
    from reconstruct.report import data as D
    from reconstruct.report import sections as S

    monkeypatch.setattr(imports, "defer_plotting_imports", lambda *a: set())
    root = _take(tmp_path, 12)
    comps = make_plugin_manager().components()
    started, seen = threading.Event(), []
    monkeypatch.setattr(S, "_verify_manifest_early", lambda ctx: started.set())
    real = D._mask_union
    monkeypatch.setattr(D, "_mask_union", lambda *a: seen.append(started.wait(2.0 if jobs > 1 else 0.2)) or real(*a))
    ctx = SimpleNamespace(session=Session.open(root), config=SimpleNamespace(method=None), settings={},
                          components=comps, memo={}, executor=InProcess(jobs, comps) if jobs > 1 else None,
                          progress=None)
    flags = S.report_flags(ctx)
    assert seen == [jobs > 1] and started.is_set() == (jobs > 1)
    assert "flicker" in flags.series


def test_the_take_s_last_chunk_sends_back_no_state_of_its_last_frame(tmp_path, monkeypatch):
    """Only a chunk that another follows hands back its last frame's edit (the next chunk's first frame's change
    is computed from it): the last chunk's would be pickled, piped and unpickled at the end of the pass for
    nothing (~2 MB a 1080p frame); the flags stay the single pass's."""
    from reconstruct import lazy_imports as imports

    monkeypatch.setattr(imports, "defer_plotting_imports", lambda *a: set())
    root = _take(tmp_path, 12)
    comps = make_plugin_manager().components()
    got = []

    class Recording(InProcess):
        def map(self, fn, items, *a, **k):
            out = super().map(fn, items, *a, **k)
            got.extend(out)
            return out

    one = compute_flags(ReportData.load(Session.open(root)), comps, {})
    two = compute_flags(ReportData.load(Session.open(root)), comps, {}, executor=Recording(2, comps))
    assert len(got) == 2
    (_, _, (head0, tail0), _), (_, _, (head1, tail1), _) = got
    assert head0 is None and isinstance(tail0, np.ndarray) and isinstance(head1, np.ndarray) and tail1 is None
    for name in one.series:
        np.testing.assert_array_equal(one.series[name].score, two.series[name].score)

