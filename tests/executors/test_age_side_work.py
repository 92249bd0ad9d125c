"""The age stage runs a method's side work (``prepare_for_frames``: preparation its ``apply()`` does not need) in
the same map as the frames, on the workers, and hands the results back to ``finish_side_work`` (issue 16: the
digital_human young albedo beside the frames instead of before them)."""

from __future__ import annotations

import json
import os

from reconstruct.engine import run_pipeline
from reconstruct.executors.local import LocalExecutor
from reconstruct.stage import RunConfig
from tests.executors.test_frame_stages import _host
from tests.tiny_session import make_tiny_session


def _run(root, monkeypatch, jobs: int) -> list:
    calls = []
    real = LocalExecutor.map

    def recording(self, fn, items, *a, **k):
        items = list(items)
        calls.append((fn.__name__, len(items)))
        return real(self, fn, items, *a, **k)

    monkeypatch.setattr(LocalExecutor, "map", recording)
    run_pipeline(RunConfig(session=root, method="sided", from_stage="age", options={"frames.chunk": "3"},
                           jobs=jobs), _host())
    monkeypatch.setattr(LocalExecutor, "map", real)
    return calls


def test_side_work_runs_beside_the_frames_on_the_workers(tmp_path, monkeypatch):
    root = make_tiny_session(tmp_path / "shot", frames=8)
    calls = _run(root, monkeypatch, jobs=2)
    assert ("age_work", 2 + 3) in calls  # one map: the 2 side items and the 3 chunks of 3 frames
    assert len([c for c in calls if c[0] in ("age_work", "age_chunk")]) == 1
    side = json.loads((root / "out" / "methods" / "sided" / "side.json").read_text())
    assert [s[0] for s in side] == [9, 16]  # the results, in the items' order
    assert os.getpid() not in {s[1] for s in side}  # made in worker processes
    assert len(list((root / "out" / "age").glob("*.npz"))) == 8  # and every frame's edit


def test_side_work_in_process(tmp_path, monkeypatch):
    root = make_tiny_session(tmp_path / "shot", frames=4)
    _run(root, monkeypatch, jobs=1)
    side = json.loads((root / "out" / "methods" / "sided" / "side.json").read_text())
    assert side == [[9, os.getpid()], [16, os.getpid()]]
