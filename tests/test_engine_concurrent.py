"""Independent stages side by side (issue 16): with --jobs > 1 a stage starts once the stages it requires have
completed, not after every stage before it in the sequential order; a failure leaves what completed recorded and
gives the sequential run's error."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from reconstruct import hookimpl
from reconstruct.engine import run_pipeline
from reconstruct.errors import StageError
from reconstruct.plugins import make_plugin_manager
from reconstruct.session import Session
from reconstruct.stage import RunConfig
from tests.test_engine import make_session

SLEEP_S = 0.6  # each test stage's work


def _stage(name: str, requires: tuple = (), fail: str | None = None, sleep: float = SLEEP_S):
    class S:
        def fingerprint(self, ctx):
            return {}

        def run(self, ctx, out: Path) -> None:
            log = ctx.session.root / "times.txt"
            t0 = time.time()
            time.sleep(sleep)
            if fail:
                raise RuntimeError(fail)
            (out / "value.txt").write_text(name)
            with open(log, "a") as f:
                f.write(f"{name} {t0} {time.time()}\n")

    S.name, S.requires, S.version = name, requires, "1"
    return S()


def _host(*stages):
    class P:
        @hookimpl
        def register_stages(self):
            return list(stages)

    host = make_plugin_manager(extra_plugins=[("test-graph", P())], load_entry_points=False)
    from deage_plugins import sync_stage

    host.pm.register(sync_stage, name="sync")
    return host


def _times(root: Path) -> dict[str, tuple[float, float]]:
    rows = (root / "times.txt").read_text().split("\n")
    return {n: (float(a), float(b)) for n, a, b in (r.split() for r in rows if r)}


@pytest.fixture
def session(tmp_path, repo_root):
    return make_session(tmp_path / "s", repo_root)


def test_independent_stages_overlap_within_jobs(session):
    # like calibrate beside sync -> detect: "cal" requires nothing, "det" requires sync, "fit" both
    host = _host(_stage("cal"), _stage("det", ("sync",)), _stage("fit", ("cal", "det"), sleep=0.05))
    res = run_pipeline(RunConfig(session=session, jobs=2), host)
    assert sorted(r.name for r in res) == ["cal", "det", "fit", "sync"] and not any(r.skipped for r in res)
    t = _times(session)
    assert t["cal"][0] < t["det"][1] and t["det"][0] < t["cal"][1], t  # before: one after the other
    assert t["fit"][0] >= max(t["cal"][1], t["det"][1]), t  # never before what it requires
    assert all(r.skipped for r in run_pipeline(RunConfig(session=session, jobs=2), host))  # same cache keys

    # --jobs 1: the sequential run, unchanged
    (session / "times.txt").unlink()
    run_pipeline(RunConfig(session=session, jobs=1, from_stage="sync"), host)
    run_pipeline(RunConfig(session=session, jobs=1, only_stage="cal"), host)
    t = _times(session)
    assert t["det"][1] <= t["fit"][0] and t["cal"][0] >= t["fit"][1], t


def test_a_failure_leaves_the_other_branchs_outputs_and_gives_the_sequential_error(session):
    host = _host(_stage("cal", fail="the board was not found", sleep=0.2), _stage("det", ("sync",)),
                 _stage("fit", ("cal", "det")))
    with pytest.raises(StageError, match="stage 'cal' failed: RuntimeError: the board was not found"):
        run_pipeline(RunConfig(session=session, jobs=2), host)
    s = Session.open(session)
    # det ran beside the failing cal, finished after it and is recorded whole; fit never started
    assert (session / "out" / "det" / "value.txt").read_text() == "det" and s.stage_key("det")
    assert s.stage_key("cal") is None and not (session / "out" / "fit").exists()
    assert set(_times(session)) == {"det"}
    # the next run keeps det and resumes at cal
    host = _host(_stage("cal"), _stage("det", ("sync",)), _stage("fit", ("cal", "det")))
    res = run_pipeline(RunConfig(session=session, jobs=2), host)
    assert {r.name: r.skipped for r in res} == {"sync": True, "cal": False, "det": True, "fit": False}


def test_two_failures_raise_the_one_a_sequential_run_meets_first(session):
    # det fails first in time, but a sequential run (sync, cal, det) would have stopped at cal
    host = _host(_stage("cal", fail="cal broke", sleep=0.5), _stage("det", ("sync",), fail="det broke", sleep=0.05))
    with pytest.raises(StageError, match="cal broke"):
        run_pipeline(RunConfig(session=session, jobs=2), host)
    with pytest.raises(StageError, match="cal broke"):
        run_pipeline(RunConfig(session=session, jobs=1), host)


class _Interrupts:
    """Ctrl-C while another stage runs in its own thread."""

    name = "fragile"
    requires = ("sync",)
    version = "1"

    def fingerprint(self, ctx):
        return {}

    def run(self, ctx, out):
        time.sleep(0.3)  # "slow" has started
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)


def test_an_interrupt_ends_the_run_at_once_and_the_other_stage_records_nothing(session):
    import logging

    from reconstruct.cli import build_parser, run_cli

    host = _host(_stage("slow", sleep=2.0), _Interrupts())
    t0 = time.perf_counter()
    code = run_cli(["run", str(session), "--jobs", "2"], build_parser, logging.getLogger("test"), "interrupted",
                   host_factory=lambda disable=(): host)
    took = time.perf_counter() - t0
    assert code == 130
    assert took < 2.0, took  # not held until "slow" ends (measured ~0.5 s)
    time.sleep(2.5)  # "slow" has finished its work in the abandoned thread by now
    assert not (session / "out" / "slow").exists() and Session.open(session).stage_key("slow") is None
    assert (session / "out" / ".slow.tmp").exists()  # what an interrupted run leaves; the next run removes it
