"""The report decodes each frame's plate and output once: the thumbnails of the flagged frames and the plates' and
methods' strips are made in the pass that reads them for the flags (reconstruct/report/thumbs.py), and the page is
the one the sections made by reading the frames again."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import cv2
import pytest

from reconstruct.engine import run_pipeline
from reconstruct.report import sections as S
from reconstruct.report.thumbs import ThumbPlan
from reconstruct.session import Session
from reconstruct.stage import RunConfig
from tests.report.test_report_stage import _write_fake_composites, host
from tests.tiny_session import make_tiny_session


@pytest.fixture()
def take(tmp_path) -> tuple[Path, list[int]]:
    root = make_tiny_session(tmp_path / "take", frames=12)
    run_pipeline(RunConfig(session=root, only_stage="sync"), host())
    frames = [fs.frame for fs in Session.open(root).read_sync() if fs.indices.get("hero") is not None]
    _write_fake_composites(root, frames[2], frames[6])  # a seam and a pop: flagged frames with thumbnails
    return root, frames


def _report(root: Path, monkeypatch, counts: Counter | None = None) -> str:
    if counts is not None:
        real, real_bytes = cv2.imread, Path.read_bytes

        def count(p: Path) -> None:
            if p.suffix == ".png" and p.parent.name == "hero":  # a hero plate or a composited hero plate
                counts[(p.parent.parent.name, p.stem)] += 1

        def counting(path, *a, **k):
            count(Path(path))
            return real(path, *a, **k)

        def counting_bytes(self):  # every PNG reader reads a PNG's bytes for reconstruct.png.decode_png
            count(self)
            return real_bytes(self)

        monkeypatch.setattr(cv2, "imread", counting)
        monkeypatch.setattr(Path, "read_bytes", counting_bytes)

    run_pipeline(RunConfig(session=root, only_stage="report", jobs=1), host())
    page = (root / "out" / "report" / "report.html").read_text()
    return page[page.index("<main"):]  # the header holds the session's path and the time it was made


def test_each_plate_and_output_is_decoded_once(take, monkeypatch):
    root, frames = take
    counts: Counter = Counter()
    page = _report(root, monkeypatch, counts)
    assert "frame(s) flagged for an artist" in page and "Flagged frames" in page and "Before and after" in page
    cams = {k: v for k, v in counts.items() if k[0] == "cams"}
    outs = {k: v for k, v in counts.items() if k[0] == "plates"}
    # before: the flagged frames' plates and outputs read again for their thumbnails, the first/middle/last frame's
    # for the plates' and the methods' strips (each frame read 2-4 times)
    assert len(outs) == len(frames) and set(outs.values()) == {1}, outs
    assert len(cams) == len(frames) and set(cams.values()) == {1}, cams


def test_the_page_is_the_one_made_by_reading_the_frames_again(take, monkeypatch):
    root, _ = take
    other = root.parent / "again"
    shutil.copytree(root, other)
    made = _report(root, monkeypatch)
    monkeypatch.setattr(S, "thumb_plan", lambda d: ThumbPlan())  # nothing from the pass: every picture read
    read = _report(other, monkeypatch)
    assert made.count("data:image/jpeg;base64,") >= 10
    assert made == read


def test_worker_processes_make_the_same_pictures(take):
    """The pass's chunks in two worker processes send their frames' pictures back with the numbers: the store
    holds the single pass's pictures, under the same frames."""
    from reconstruct.executors.local import LocalExecutor
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.report.data import ReportData, compute_flags

    root, frames = take
    comps = make_plugin_manager().components()
    data = ReportData.load(Session.open(root))
    plan = S.thumb_plan(data)
    one = compute_flags(data, comps, {}, thumbs=plan)
    ex = LocalExecutor(jobs=2, components=comps)
    try:
        two = compute_flags(ReportData.load(Session.open(root)), comps, {}, executor=ex, thumbs=plan)
    finally:
        ex.close()
    # every frame's two flag thumbnails, and the strips' pictures of the first, middle and last frame
    assert len(one.thumbs) == len(two.thumbs) == 2 * len(frames) + 3 * 4 + 3 * 2
    for f in frames:
        for t in plan.for_frame(f):
            assert one.thumbs.get(f, t.name) == two.thumbs.get(f, t.name) is not None


def test_the_pictures_are_kept_on_disk_not_in_memory():
    """Every frame's flag thumbnails are made (which frames get flagged is known only at the end): the store keeps
    them in a temporary file, so the report's memory does not grow with the take (10 MB of pictures: < 1 MB of
    memory, the offsets; kept in a dict they would be the 10 MB)."""
    import tracemalloc

    from reconstruct.report.thumbs import ThumbStore

    uri = "data:image/jpeg;base64," + "A" * 50_000
    tracemalloc.start()
    try:
        store = ThumbStore()
        for f in range(200):
            store.put(f, {"flag_plate": uri, "flag_output": uri})
        held = tracemalloc.get_traced_memory()[0] / 2**20
    finally:
        tracemalloc.stop()
    assert len(store) == 400 and store.get(123, "flag_output") == uri and store.get(5, "other") is None
    assert held < 1.0, held
    store.close()
