"""The stage engine: graph order, content-addressed cache, --from/--only, resume after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import MappingProxyType

import pytest

from reconstruct.engine import run_pipeline, topological_order

from reconstruct.stage import RunConfig
from reconstruct.errors import ConfigError, StageError
from reconstruct.plugins import make_plugin_manager
from reconstruct.rig import load_rig
from reconstruct.session import FrameRecord, Session
from tests.stage_plugins import Recorder, StagesPlugin


def _host(recorder=None):
    extra = [("test-stages", StagesPlugin())] + ([("rec", recorder)] if recorder else [])
    # only the sync built-in plus the test stages: the other built-ins need data these sessions do not have
    host = make_plugin_manager(extra_plugins=extra, load_entry_points=False)
    from deage_plugins import sync_stage

    host.pm.register(sync_stage, name="sync")
    return host


def make_session(root: Path, repo_root: Path, frames: int = 6) -> Path:
    """A session with frame records only (the test stages read timestamps, not images)."""
    rig = load_rig(repo_root / "rigs" / "test-small.toml")
    s = Session.create(root, rig)
    for k, cam in enumerate(rig.camera_names):
        s.write_frames(cam, [FrameRecord(i, 1_000_000_000 + i * 33_333_333 + 1000 * k + 7 * i, file=f"{i:06d}.png")
                             for i in range(frames)])
    return root


@pytest.fixture
def session(tmp_path, repo_root):
    return make_session(tmp_path / "s", repo_root)


def runs(session: Path, name: str) -> int:
    f = session / f"runs-{name}.log"
    return len(f.read_text().split()) if f.exists() else 0


def outputs(session: Path) -> dict[str, str]:
    d = session / "out" / "squares"
    return {p.name: p.read_text() for p in sorted(d.glob("*.txt"))}


def test_order_cache_and_skip(session):
    rec = Recorder()
    host = _host(rec)
    res = run_pipeline(RunConfig(session=session), host)
    assert [r.name for r in res] == ["sync", "numbers", "squares"] and not any(r.skipped for r in res)
    res2 = run_pipeline(RunConfig(session=session), host)
    assert all(r.skipped for r in res2)
    assert runs(session, "numbers") == 1 and runs(session, "squares") == 1
    assert ("squares", True) in rec.calls and ("squares", False) in rec.calls
    # a changed setting reruns that stage and everything downstream, not upstream
    run_pipeline(RunConfig(session=session, options=MappingProxyType({"numbers.scale": "2"})), host)
    assert runs(session, "numbers") == 2 and runs(session, "squares") == 2
    assert [r.skipped for r in run_pipeline(RunConfig(session=session, options=MappingProxyType({"numbers.scale": "2"})),
                                            host)] == [True, True, True]


def test_from_and_only(session):
    host = _host()
    run_pipeline(RunConfig(session=session), host)
    res = run_pipeline(RunConfig(session=session, from_stage="numbers"), host)
    assert [(r.name, r.skipped) for r in res] == [("sync", True), ("numbers", False), ("squares", False)]
    res = run_pipeline(RunConfig(session=session, only_stage="squares"), host)
    assert [(r.name, r.skipped) for r in res] == [("squares", False)]
    with pytest.raises(ConfigError, match="no such stage"):
        run_pipeline(RunConfig(session=session, only_stage="nope"), host)


def test_only_without_inputs_says_what_to_run(session):
    with pytest.raises(StageError, match="has not been computed"):
        run_pipeline(RunConfig(session=session, only_stage="squares"), _host())


def test_raw_input_change_invalidates_sync(session):
    host = _host()
    run_pipeline(RunConfig(session=session), host)
    csv = session / "cams" / "hero" / "frames.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:-1]) + "\n")  # one hero frame fewer
    res = run_pipeline(RunConfig(session=session), host)
    assert not res[0].skipped


def test_cycle_and_missing_requirement_are_config_errors():
    class A:
        name, requires, version = "a", ("b",), "1"

    class B:
        name, requires, version = "b", ("a",), "1"

    with pytest.raises(ConfigError, match="cycle"):
        topological_order({"a": A(), "b": B()})
    with pytest.raises(ConfigError, match="requires stage 'b'"):
        topological_order({"a": A()})


RUNNER = """
import sys
from reconstruct.engine import run_pipeline
from reconstruct.stage import RunConfig
from tests.test_engine import _host
run_pipeline(RunConfig(session=sys.argv[1]), _host())
"""


def test_killed_mid_stage_resumes_and_equals_uninterrupted(session, tmp_path, repo_root):
    # uninterrupted reference on an identical session
    ref = make_session(tmp_path / "ref", repo_root)
    run_pipeline(RunConfig(session=ref), _host())

    marker = tmp_path / "mid-stage"
    env = dict(os.environ, SLOW_SQUARES=str(marker), PYTHONPATH=str(repo_root))
    p = subprocess.Popen([sys.executable, "-c", RUNNER, str(session)], env=env, cwd=repo_root)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the runner never reached the middle of the squares stage"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert runs(session, "numbers") == 1 and runs(session, "squares") == 1
    assert not (session / "out" / "squares").exists()  # partial output never becomes the stage's result
    assert (session / "out" / ".squares.tmp").exists()

    res = run_pipeline(RunConfig(session=session), _host())
    assert [(r.name, r.skipped) for r in res] == [("sync", True), ("numbers", True), ("squares", False)]
    assert runs(session, "numbers") == 1  # completed stage not recomputed
    assert outputs(session) == outputs(ref) and len(outputs(ref)) == 6
    assert not (session / "out" / ".squares.tmp").exists()




class _InterruptedImport:
    """A stage interrupted by Ctrl-C inside a library that turns the KeyboardInterrupt into an error of its own
    (seen: an interrupted ``import open3d`` became "no renderer is available", exit 9)."""

    name = "fragile"
    requires = ("sync",)
    version = "1"

    def fingerprint(self, ctx):
        return {}

    def run(self, ctx, out):
        from reconstruct.errors import RenderError

        (out / "partial.txt").write_text("half")
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except BaseException as exc:
            raise RenderError("no renderer is available on device 'cpu'") from exc


def test_an_interrupt_exits_130_wherever_it_lands_and_leftovers_go(session):
    from reconstruct import hookimpl
    from reconstruct.cli import build_parser, run_cli
    import logging

    class P:
        @hookimpl
        def register_stages(self):
            return [_InterruptedImport()]

    def factory(disable=()):
        host = _host()
        host.pm.register(P(), name="fragile")
        return host

    code = run_cli(["run", str(session)], build_parser, logging.getLogger("test"), "interrupted", host_factory=factory)
    assert code == 130  # not 9
    assert (session / "out" / ".fragile.tmp").exists()  # what the interrupted stage left
    (session / "out" / "plates" / ".fran.tmp").mkdir(parents=True)
    res = run_pipeline(RunConfig(session=session, only_stage="sync"), _host())  # a run that never reaches it
    assert [r.name for r in res] == ["sync"]
    assert not (session / "out" / ".fragile.tmp").exists() and not (session / "out" / "plates" / ".fran.tmp").exists()


def test_two_runs_of_one_session_cannot_overlap(session):
    from reconstruct.errors import SessionError
    from reconstruct.session import Session

    with Session.open(session).run_lock():
        with pytest.raises(SessionError, match=r"being processed by another run \(pid \d+\)"):
            run_pipeline(RunConfig(session=session), _host())
    run_pipeline(RunConfig(session=session), _host())  # released


@pytest.mark.skipif(os.geteuid() != 0 and sys.platform != "linux", reason="needs Linux")
def test_a_read_only_session_is_a_one_line_error(session, tmp_path, repo_root):
    """Run as a user who cannot write the session (root ignores permissions, so as 'nobody' under root)."""
    import shutil
    import tempfile

    place = Path(tempfile.mkdtemp(prefix="deage-ro-"))  # pytest's own temp folders are private to their owner
    try:
        ro = shutil.copytree(session, place / "s")
        os.chmod(place, 0o755)
        if os.geteuid() == 0:
            if not shutil.which("setpriv"):
                pytest.skip("setpriv not available")
            prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        else:
            os.chmod(ro, 0o555)
            prefix = []
        env = dict(os.environ, HOME=str(place), DEAGE_CACHE_DIR=str(place / "cache"), COLUMNS="60")
        r = subprocess.run(prefix + [sys.executable, "-m", "reconstruct.cli", "run", str(ro), "--only", "sync"],
                           capture_output=True, text=True, env=env, cwd=repo_root, timeout=300)
    finally:
        os.chmod(place, 0o755)
        shutil.rmtree(place, ignore_errors=True)
    session = ro
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    assert f"cannot write in {session / 'out'}" in " ".join(r.stderr.split()), r.stderr


EVENTS: list[str] = []  # what the preload test's stages did, in order (in the driver)


def _double(x: int) -> int:
    return 2 * x


class _Mapped:
    """A stage whose work runs in the run's ``--jobs`` worker processes."""

    name, requires, version = "mapped", ("sync",), "1"

    def fingerprint(self, ctx):
        return {}

    def run(self, ctx, out: Path) -> None:
        (out / "x.txt").write_text(str(ctx.executor.map(_double, range(4))))
        EVENTS.append("mapped")


class _Preloaded:
    """A stage with a preload (it fails when ``fail``: the stage runs all the same)."""

    name, requires, version = "preloaded", ("mapped",), "1"
    fail = False

    def fingerprint(self, ctx):
        return {}

    def preload(self, ctx) -> None:
        EVENTS.append(f"preload in {os.getpid()}")
        if self.fail:
            raise ImportError("no such module")

    def run(self, ctx, out: Path) -> None:
        EVENTS.append("run")


def test_a_stage_preloads_while_the_stage_before_it_waits_for_its_workers(session):
    from reconstruct import hookimpl

    preloaded = _Preloaded()

    class Plugin:
        @hookimpl
        def register_stages(self):
            return [_Mapped(), preloaded]

    host = make_plugin_manager(extra_plugins=[("preload-stages", Plugin())], load_entry_points=False)
    from deage_plugins import sync_stage

    host.pm.register(sync_stage, name="sync")
    EVENTS.clear()
    run_pipeline(RunConfig(session=session, jobs=2), host)
    # in the driver, before the mapped stage's results were in (the engine's handover to the executor)
    assert EVENTS == [f"preload in {os.getpid()}", "mapped", "run"]
    EVENTS.clear()
    run_pipeline(RunConfig(session=session, jobs=2, only_stage="preloaded"), host)  # no stage before it: no preload
    assert EVENTS == ["run"]
    preloaded.fail = True
    EVENTS.clear()
    run_pipeline(RunConfig(session=session, jobs=2, from_stage="mapped"), host)
    assert EVENTS == [f"preload in {os.getpid()}", "mapped", "run"]
