"""Faults that used to pass silently: a dead trigger clock, a damaged capture.json, an incomplete take seen by the
sync stage. Processes are real; assertions are on accounting (rows, ticks), never on timing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from capture.cli import main as capture_main
from capture.recorder import Recorder
from reconstruct.session import FrameRecord, Session

from .conftest import loopback_options, write_rig


def _rows(take: Path, cam: str) -> int:
    p = take / "cams" / cam / "frames.csv"
    return p.read_text().count("\n") - 1 if p.exists() else 0


def _child(parent: int, module: str) -> int | None:
    """The pid of ``parent``'s child process running ``python -m module`` (Linux /proc)."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and module.encode() in cmd:
            return int(d.name)
    return None


def test_sigkill_of_the_clock_ends_the_take_incomplete_with_the_missing_ticks(tmp_path):
    """Before: the take ended "complete; 0 gaps" with 59 of 180 ticks and `capture record` exited 0."""
    rig = write_rig(tmp_path / "rig.toml")  # 30 fps software trigger: 6 s = 180 ticks
    take = tmp_path / "t"
    proc = subprocess.Popen([sys.executable, "-m", "capture.cli", "record", str(rig), str(take), "--seconds", "6",
                             "--quiet", "--data-endpoint", "tcp://127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while _rows(take, "hero") < 30 and time.time() < deadline:
            time.sleep(0.02)
        clock = _child(proc.pid, "capture.clock")
        assert clock is not None and _rows(take, "hero") >= 30
        os.kill(clock, signal.SIGKILL)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 6, out
    s = Session.open(take)
    rep = s.read_capture_report()
    counts = {c: len(s.frames(c)) for c in s.rig.camera_names}
    sent = max(counts.values())  # every tick the clock sent before it died got a row (each camera answers each tick)
    assert 30 <= sent < 180, counts
    assert rep["state"] == "incomplete"
    assert rep["clock"]["exit_code"] == -9 and rep["clock"]["ticks"] == sent
    assert rep["clock"]["missing_ticks"] == 180 - sent
    want = f"the trigger clock died (exit code -9) after {sent} ticks: {180 - sent} of 180 ticks missing"
    assert rep["problems"] == [want]
    assert f"incomplete: {want}" in out
    assert capture_main(["status", str(take)]) == 6
    from capture.sync_session import sync_session

    _, srep = sync_session(s)
    assert f"the take is incomplete (capture.json): {want}" in srep.warnings


def test_torn_capture_json_is_a_one_line_error_naming_the_file(small_rig, tmp_path, capsys):
    """Before: `capture status` raised JSONDecodeError (a traceback)."""
    s = Session.create(tmp_path / "t", small_rig)
    full = json.dumps({"state": "complete", "rig": "r", "fps": 30.0, "cameras": {"hero": {"stored": 3}}})
    squeeze = lambda t: "".join(t.split())  # noqa: E731 - the console may wrap the line anywhere
    for text in (full[: len(full) // 2], "", "[1, 2]"):
        s.capture_report_path.write_text(text)
        assert capture_main(["status", str(s.root)]) == 3
        err = capsys.readouterr().err
        assert squeeze(f"{s.capture_report_path} is damaged") in squeeze(err), err
        assert "Traceback" not in err
    # the frames are still synced from frames.csv, with a warning that capture.json is damaged
    for cam in small_rig.camera_names:
        s.write_frames(cam, [FrameRecord(i, 1000 * i, tick=i, file=f"{i:06d}.npy") for i in range(3)])
    from capture.sync_session import sync_session

    fsets, rep = sync_session(s)
    assert len(fsets) == 3 and any(f"{s.capture_report_path} is damaged" in w for w in rep.warnings)


def test_status_exit_codes_follow_the_take(small_rig, tmp_path):
    """0 for a whole take (complete or stopped); 6 for incomplete or failed; an old report's gaps count too."""
    s = Session.create(tmp_path / "t", small_rig)
    cams = {"hero": {"stored": 3, "gaps": []}}
    for state, code in (("complete", 0), ("stopped", 0), ("incomplete", 6), ("failed", 6)):
        s.write_capture_report({"state": state, "rig": "r", "fps": 30.0, "cameras": cams, "problems": []})
        assert capture_main(["status", str(s.root)]) == code, state
    old = {"state": "complete", "rig": "r", "fps": 30.0, "cameras": {"hero": {"stored": 3, "gaps": ["node died"]}}}
    s.write_capture_report(old)  # written before `problems` existed
    assert capture_main(["status", str(s.root)]) == 6


def test_sync_stage_report_warns_about_an_incomplete_take(small_rig, tmp_path):
    """A camera node that died mid-take: the sync stage's report.json (and so the QC section) says so.
    Before: the gap row was only counted in `not_ok`, with no warning."""
    import deage_plugins.sync_stage
    from deage_plugins.sync_stage import SyncReportSection
    from reconstruct.engine import run_pipeline
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.stage import RunConfig

    Recorder(small_rig, tmp_path / "t", loopback_options(frames=20)).run()
    s = Session.open(tmp_path / "t")
    left = s.frames("ir-left")[:12]
    note = "camera node exited (code -9) after frame 11, tick 11; no frames after"
    s.write_frames("ir-left", left + [FrameRecord(12, left[-1].t_capture_ns + 1, 12, "", 0.0, "", "gap", note)])
    rep = s.read_capture_report()
    s.write_capture_report({**rep, "state": "incomplete", "problems": [f"camera ir-left: {note}"]})
    host = make_plugin_manager(load_entry_points=False, extra_plugins=[("sync", deage_plugins.sync_stage)])
    run_pipeline(RunConfig(session=s.root, only_stage="sync"), host)
    warnings = json.loads((s.stage_dir("sync") / "report.json").read_text())["warnings"]
    assert f"camera ir-left: recording gap ({note}); 8 of 20 frame sets have no frame from it" in warnings
    assert f"the take is incomplete (capture.json): camera ir-left: {note}" in warnings

    class Ctx:
        session = s

    assert "recording gap" in SyncReportSection().html(Ctx())
