"""Pre-started workers (issue 16): a later ``map(..., fresh=True, prestarted=use)`` takes the started, warmed
workers ``prestart(use, warm)`` made earlier; the engine asks for them as a stage that leaves cores idle starts, and
none is left running once the run ends, whether the stage that would take them ran, was up to date or was not run."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from reconstruct.engine import run_pipeline
from reconstruct.executors.local import LocalExecutor
from reconstruct.stage import RunConfig
from tests.stage_plugins import Numbers, Squares


def _warm(res) -> None:
    res.keep("warmed-by", os.getpid())


def _who(x: int, res) -> tuple[int, int | None]:
    """This worker's pid and the pid its warm-up ran in (None: not warmed)."""
    return os.getpid(), res.get("warmed-by", lambda: None)


def test_a_fresh_map_takes_the_prestarted_warmed_workers():
    ex = LocalExecutor(jobs=2)
    try:
        ex.prestart("later", _warm)
        started = {p.pid for p in multiprocessing.active_children()}
        assert len(started) == 2  # both started now, before any map
        out = ex.map(_who, range(6), resources=True, fresh=True, prestarted="later")
        assert {pid for pid, _ in out} <= started
        assert all(warmed == pid for pid, warmed in out)  # every item ran in a warmed worker
        # taken once: a second map starts its own (unwarmed) workers
        assert all(w is None for _, w in ex.map(_who, range(4), resources=True, fresh=True, prestarted="later"))
    finally:
        ex.close()
    assert multiprocessing.active_children() == []


def test_a_pre_started_pool_whose_worker_died_is_replaced():
    """A pre-started worker killed while it waited (the OOM killer, a crash in its warm-up) does not fail the map
    that was to take it: new workers are started (before: BrokenProcessPool)."""
    import signal
    import time

    ex = LocalExecutor(jobs=2)
    try:
        ex.prestart("later", _warm)
        victim = multiprocessing.active_children()[0]
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(10)
        pool = ex._prestarted["later"]
        for _ in range(100):  # the pool's manager thread notices the death
            if getattr(pool, "_broken", False):
                break
            time.sleep(0.05)
        assert getattr(pool, "_broken", False)
        out = ex.map(_who, range(4), resources=True, fresh=True, prestarted="later")
        assert len(out) == 4 and victim.pid not in {pid for pid, _ in out}
    finally:
        ex.close()
    assert multiprocessing.active_children() == []


def test_a_worker_that_just_died_is_seen_before_the_pool_notices(monkeypatch):
    """The pool marks itself broken a moment after a worker dies; a map in that moment must not take it."""
    import signal

    from reconstruct.executors import local

    ex = LocalExecutor(jobs=2)
    try:
        ex.prestart("later", _warm)
        pool = ex._prestarted["later"]
        victim = multiprocessing.active_children()[0]
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(10)
        monkeypatch.setattr(pool, "_broken", False, raising=False)  # its manager thread has not noticed (yet)
        assert local._lost_a_worker(pool)
    finally:
        ex.close()
    assert multiprocessing.active_children() == []


def test_untaken_prestarted_workers_are_stopped():
    ex = LocalExecutor(jobs=2)
    ex.prestart("later", _warm)
    ex.release("later")
    ex.prestart("other", _warm)
    ex.close()  # the released ones awaited, the other stopped
    assert multiprocessing.active_children() == []
    one = LocalExecutor(jobs=1)
    one.prestart("later", _warm)  # nothing to start in process
    assert multiprocessing.active_children() == []


class Recording(LocalExecutor):
    """Records prestart/release (starts nothing)."""

    def __init__(self) -> None:
        super().__init__(jobs=1)
        self.calls: list[tuple[str, str]] = []

    def prestart(self, use, warm=None):
        self.calls.append(("prestart", use))

    def release(self, use, wait=False):
        self.calls.append(("release", use))


@pytest.fixture
def idle_numbers(monkeypatch):
    """``numbers`` leaves cores idle; ``squares`` (after it) asks for workers."""
    monkeypatch.setattr(Numbers, "leaves_cores_idle", True, raising=False)
    monkeypatch.setattr(Squares, "prestart", lambda self, ctx: ctx.executor.prestart("squares", _warm),
                        raising=False)


def test_the_engine_prestarts_later_stages_workers_and_releases_them(idle_numbers, tmp_path, repo_root):
    from tests.test_engine import _host, make_session

    session = make_session(tmp_path / "s", repo_root)
    host = _host()
    ex = Recording()
    run_pipeline(RunConfig(session=session), host, executor=ex)
    first = ex.calls
    assert first.index(("prestart", "squares")) < first.index(("release", "squares"))
    # released right after squares ran, not only by the run's last clean-up (which releases every stage's again)
    assert first.count(("release", "squares")) == 2
    ex.calls = []  # up to date: numbers is skipped, nothing prestarted
    run_pipeline(RunConfig(session=session), host, executor=ex)
    assert ("prestart", "squares") not in ex.calls
    ex.calls = []  # squares not in the run
    run_pipeline(RunConfig(session=session, only_stage="numbers"), host, executor=ex)
    assert ("prestart", "squares") not in ex.calls


def test_no_worker_is_left_by_a_stage_that_does_not_take_them(idle_numbers, tmp_path, repo_root):
    from tests.test_engine import _host, make_session

    session = make_session(tmp_path / "s", repo_root)
    host = _host()
    run_pipeline(RunConfig(session=session), host)
    ex = LocalExecutor(jobs=2)
    try:  # numbers reruns (forced) and prestarts for squares, which runs in process and does not take them
        run_pipeline(RunConfig(session=session, from_stage="numbers"), host, executor=ex)
        assert not ex._prestarted  # released by the engine after squares ran
    finally:
        ex.close()
    assert multiprocessing.active_children() == []
