"""A later stage's work item run early on pre-started workers (issue 16: digital_human's young-still fits while the
fit stage leaves a core idle): ``start_early`` rides on the workers ``prestart`` started (now or next), its future
is handed over by ``early_result``; nothing runs without such workers, and none is left once the run ends."""

from __future__ import annotations

import json
import multiprocessing
import os

from reconstruct.engine import run_pipeline
from reconstruct.executors.local import LocalExecutor
from reconstruct.stage import RunConfig
from tests.executors.test_frame_stages import _host
from tests.tiny_session import make_tiny_session


def _warm(res) -> None:
    res.keep("warmed-by", os.getpid())


def _who(x: int, res) -> tuple[int, int, int | None]:
    return x * x, os.getpid(), res.get("warmed-by", lambda: None)


def test_early_work_rides_on_the_prestarted_workers():
    ex = LocalExecutor(jobs=2)
    try:
        ex.start_early("age", _who, 3)  # before any worker: waits for the next prestart
        ex.prestart("report", _warm)
        started = {p.pid for p in multiprocessing.active_children()}
        assert len(started) == 2  # no worker of its own
        square, pid, warmed = ex.early_result("age").result(timeout=60)
        assert square == 9 and pid in started and warmed == pid
        ex.start_early("render", _who, 4)  # workers there already: it starts at once
        assert ex.early_result("render").result(timeout=60)[0] == 16
        assert ex.early_result("age") is None  # handed over once
        out = ex.map(_who, range(4), resources=True, fresh=True, prestarted="report")
        assert {p for _, p, _ in out} <= started  # the workers still do the work they were started for
    finally:
        ex.close()
    assert multiprocessing.active_children() == []


def test_no_early_work_without_prestarted_workers():
    one = LocalExecutor(jobs=1)
    one.start_early("age", _who, 3)
    one.prestart("report", _warm)
    assert one.early_result("age") is None and multiprocessing.active_children() == []
    ex = LocalExecutor(jobs=2)
    try:
        ex.start_early("age", _who, 3)
        ex.release("age")  # the stage ran or was skipped before any worker started: the item is dropped
        ex.prestart("report", _warm)
        assert ex.early_result("age") is None
    finally:
        ex.close()
    assert multiprocessing.active_children() == []


class Recording(LocalExecutor):
    """--jobs 2, recording whether the fit stage was running when the age stage's early work was handed over."""

    def __init__(self, root) -> None:
        super().__init__(jobs=2)
        self.root, self.during_fit = root, []

    def start_early(self, use, fn, item):
        self.during_fit.append((use, (self.root / "out" / ".fit.tmp").is_dir()))
        super().start_early(use, fn, item)


def _early_run(root, monkeypatch, **config):
    from deage_plugins import age_stage
    from tests.stage_plugins import NoFitStage

    monkeypatch.setattr(NoFitStage, "leaves_cores_idle", True, raising=False)
    monkeypatch.setattr(age_stage, "fit_model", lambda ctx: "demo")
    from deage_plugins.render_stage import RenderStage  # stands in for the report: starts workers early

    monkeypatch.setattr(RenderStage, "prestart", lambda self, ctx: ctx.executor.prestart("render", _warm),
                        raising=False)
    ex = Recording(root)
    try:
        run_pipeline(RunConfig(session=root, **{"method": "early", "jobs": 2, **config}), _host(), executor=ex)
    finally:
        ex.close()
    assert multiprocessing.active_children() == []  # none left, whatever ran
    return ex


def test_the_early_work_runs_during_the_fit_and_the_age_stage_takes_it(tmp_path, monkeypatch):
    root = make_tiny_session(tmp_path / "shot", frames=4)
    ex = _early_run(root, monkeypatch)
    assert ex.during_fit == [("age", True)]
    square, pid = json.loads((root / "out" / "methods" / "early" / "early.json").read_text())
    assert square == 25 and pid != os.getpid()  # made in a pre-started worker, handed to the method


def test_no_early_work_when_the_age_stage_is_not_in_the_run(tmp_path, monkeypatch):
    root = make_tiny_session(tmp_path / "shot", frames=4)
    _early_run(root, monkeypatch, only_stage="sync")
    assert _early_run(root, monkeypatch, only_stage="fit").during_fit == []
    assert _early_run(root, monkeypatch, from_stage="fit", method=None).during_fit == []


def test_no_early_work_on_a_cuda_device(monkeypatch):
    """On a CUDA device the age stage starts nothing early (the work would open a second CUDA context in a started
    report worker); on the CPU the same stage hands its method's early work over, made without the previous run's
    fit (``with_fits=False``)."""
    from types import SimpleNamespace

    import deage_plugins.age_stage as age_stage
    from reconstruct.methods import SideWork

    started, contexts = [], []

    class Method:
        name = "m"

        def early_work(self, mctx, model):
            contexts.append(mctx)
            return SideWork(print, ("item", model))

    monkeypatch.setattr(age_stage, "stage_method_context", lambda ctx, with_fits=True: ("mctx", with_fits))
    ex = SimpleNamespace(jobs=2, start_early=lambda use, fn, item: started.append((use, item)))
    stage = age_stage.AgeStage()
    stage._method = lambda ctx: Method()
    fit = SimpleNamespace(face_model_name=lambda ctx: "ict")
    components = SimpleNamespace(all=lambda kind: {"fit": fit})
    for device in ("cuda", "cuda:1", "cpu"):
        stage.prestart(SimpleNamespace(executor=ex, device=device, components=components))
    assert started == [("age", ("item", "ict"))] and contexts == [("mctx", False)]
