"""Recorder behaviour under faults: a camera node killed, the recorder killed, bad input, a full disk, CURVE."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import zmq
import zmq.auth

from capture.cli import main as capture_main
from capture.recorder import Recorder
from capture.security import CurveServer, check_bind_allowed, curve_client, make_keys
from deage_plugins.camera_backends import read_code
from reconstruct.errors import BackendError, CaptureError, ConfigError, SessionError
from reconstruct.rig import load_rig
from reconstruct.session import Session

from .conftest import loopback_options, write_rig


def _rows(session_dir, cam):
    p = session_dir / "cams" / cam / "frames.csv"
    return p.read_text().count("\n") - 1 if p.exists() else 0


def _check_ok_frames_readable(s: Session, cam: str):
    """Every row listed ok points at a complete image of its own tick."""
    n = 0
    for r in s.frames(cam):
        if r.status == "ok":
            img = s.read_image(cam, r)
            assert read_code(img) == r.tick
            n += 1
    return n


def test_small_take_counts_and_sync(small_rig, tmp_path):
    res = Recorder(small_rig, tmp_path / "t", loopback_options(frames=45)).run()
    s = res.session
    assert {c: len(s.frames(c)) for c in small_rig.camera_names} == {c: 45 for c in small_rig.camera_names}
    assert res.report["state"] == "complete"
    from capture.sync_session import sync_session

    fsets, rep = sync_session(s)
    assert rep.method == "tick" and len(fsets) == 45
    assert all(fs.indices[c] == fs.frame for fs in fsets for c in small_rig.camera_names)
    assert json.loads(s.sync_report_path.read_text())["method"] == "tick"
    # timecode derived from the tick and the session's timecode start
    assert s.frames("hero")[31].timecode == "00:00:01:01"
    # the CLI around it
    s.sync_path.unlink()
    assert capture_main(["sync", str(s.root), "--method", "timecode"]) == 0
    assert json.loads(s.sync_report_path.read_text())["method"] == "timecode" and s.sync_path.exists()
    assert capture_main(["status", str(s.root)]) == 0
    assert capture_main(["keys", str(tmp_path / "k"), "--rig", str(small_rig.source)]) == 0
    assert (tmp_path / "k" / "clients" / "ir-left.key_secret").exists()


def test_killing_a_camera_node_keeps_recording_the_others(small_rig, tmp_path):
    rec = Recorder(small_rig, tmp_path / "t", loopback_options(seconds=4))
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("r", rec.run()))
    th.start()
    deadline = time.time() + 30
    while _rows(tmp_path / "t", "ir-left") < 30 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(rec.procs["ir-left"].pid, signal.SIGKILL)
    th.join(timeout=60)
    res = out["r"]
    s = Session.open(tmp_path / "t")
    left = s.frames("ir-left")
    assert left[-1].status == "gap" and "exited" in left[-1].note
    assert res.report["cameras"]["ir-left"]["gaps"]
    assert _check_ok_frames_readable(s, "ir-left") >= 30
    for cam in ("hero", "ir-right"):  # the others recorded the whole take
        assert len(s.frames(cam)) == 120 and all(r.status == "ok" for r in s.frames(cam))
    from capture.sync_session import sync_session

    fsets, rep = sync_session(s)
    missing = rep.cameras["ir-left"].unmatched_hero
    assert missing == 120 - sum(1 for r in left if r.status == "ok")
    # the take is incomplete, not "complete" (before: complete, status exit 0, no sync warning)
    assert res.state == "incomplete"
    cj = s.read_capture_report()
    assert cj["state"] == "incomplete"
    assert cj["problems"] == [f"camera ir-left: {left[-1].note}"] and "exited (code -9)" in left[-1].note
    assert capture_main(["status", str(s.root)]) == 6
    gap_warn = f"camera ir-left: recording gap ({left[-1].note}); {missing} of 120 frame sets have no frame from it"
    take_warn = f"the take is incomplete (capture.json): camera ir-left: {left[-1].note}"
    assert gap_warn in rep.warnings and take_warn in rep.warnings, rep.warnings
    assert capture_main(["sync", str(s.root)]) == 0
    assert {gap_warn, take_warn} <= set(json.loads(s.sync_report_path.read_text())["warnings"])


def test_sigkill_of_the_recorder_leaves_a_readable_session(tmp_path):
    rig = write_rig(tmp_path / "rig.toml")
    take = tmp_path / "t"
    proc = subprocess.Popen([sys.executable, "-m", "capture.cli", "record", str(rig), str(take), "--seconds", "60",
                             "--quiet", "--data-endpoint", "tcp://127.0.0.1:0"])
    deadline = time.time() + 30
    while _rows(take, "hero") < 40 and time.time() < deadline:
        time.sleep(0.02)
    pids = [c["pid"] for c in json.loads((take / "capture.json").read_text())["cameras"].values()]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    s = Session.open(take)
    for cam in s.rig.camera_names:
        assert _check_ok_frames_readable(s, cam) >= 30
    # orphaned nodes notice and exit by themselves
    deadline = time.time() + 15
    alive = pids
    while alive and time.time() < deadline:
        alive = [p for p in pids if _alive(p)]
        time.sleep(0.1)
    for p in alive:  # do not leak processes even if the check fails
        os.kill(p, signal.SIGKILL)
    assert not alive
    # an interrupted take is not a whole one: status says so and exits 6 (it exited 0 before); the recorder's pid
    # is gone on this host, so this does not depend on the 5 s staleness of capture.json
    assert capture_main(["status", str(take)]) == 6
    from capture.report import take_state

    assert take_state(json.loads((take / "capture.json").read_text())).endswith("interrupted take")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our grandchild reparented to init or not yet reaped) counts as exited
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def test_unknown_backend_and_bad_settings(tmp_path):
    rig = load_rig(write_rig(tmp_path / "rig.toml", backend="nope"))
    with pytest.raises(BackendError, match="camera 'hero'.*no camera backend named 'nope'"):
        Recorder(rig, tmp_path / "t", loopback_options(frames=5)).run()
    assert not (tmp_path / "t").exists()
    rig = load_rig(write_rig(tmp_path / "rig2.toml", settings={"hero": {"colour": "blue"}}))
    with pytest.raises(BackendError, match="bad \\[camera.settings\\]"):
        Recorder(rig, tmp_path / "t", loopback_options(frames=5)).run()


def test_bad_rig_file_exit_code(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[rig]\nname = 'x'\n")
    assert capture_main(["record", str(bad), str(tmp_path / "t"), "--quiet"]) == 2
    assert capture_main(["record", str(tmp_path / "missing.toml"), str(tmp_path / "t"), "--quiet"]) == 2


def test_port_in_use(small_rig, tmp_path):
    ctx = zmq.Context.instance()
    blocker = ctx.socket(zmq.PULL)
    port = blocker.bind_to_random_port("tcp://127.0.0.1")
    try:
        opts = loopback_options(frames=5)
        from dataclasses import replace

        with pytest.raises(CaptureError, match="already in use") as ei:
            Recorder(small_rig, tmp_path / "t", replace(opts, data_endpoint=f"tcp://127.0.0.1:{port}")).run()
        assert "another port" in ei.value.hint
        with pytest.raises(CaptureError, match="trigger clock.*already in use"):
            Recorder(small_rig, tmp_path / "t2", replace(opts, tick_endpoint=f"tcp://127.0.0.1:{port}")).run()
        assert not (tmp_path / "t2").exists()
    finally:
        blocker.close()


def test_unwritable_output(small_rig, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SessionError, match="cannot create session folder") as ei:
        Recorder(small_rig, tmp_path / "afile" / "take", loopback_options(frames=5)).run()
    assert "writable" in ei.value.hint


def test_disk_full_stops_the_take_and_keeps_what_was_written(small_rig, tmp_path, monkeypatch):
    real_save = np.save
    calls = {"n": 0}

    def save(path, arr, **kw):
        calls["n"] += 1
        if calls["n"] > 50:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(path, arr, **kw)

    monkeypatch.setattr(np, "save", save)
    with pytest.raises(CaptureError, match="No space left") as ei:
        Recorder(small_rig, tmp_path / "t", loopback_options(seconds=10)).run()
    assert "free disk space" in ei.value.hint
    s = Session.open(tmp_path / "t")
    rep = s.read_capture_report()
    assert rep["state"] == "failed" and rep["errors"]
    ok = sum(_check_ok_frames_readable(s, c) for c in s.rig.camera_names)
    assert ok == 50  # every frame written before the disk filled is kept and listed ok
    notes = [r.note for c in s.rig.camera_names for r in s.frames(c) if r.status == "dropped"]
    assert any("write failed" in n for n in notes)
    for c in s.rig.camera_names:  # nothing unaccounted for
        recs = s.frames(c)
        assert [r.index for r in recs] == list(range(len(recs)))


def test_networked_bind_needs_curve():
    with pytest.raises(ConfigError, match="without encryption"):
        check_bind_allowed("tcp://0.0.0.0:5551", curve=False)
    check_bind_allowed("tcp://0.0.0.0:5551", curve=True)
    check_bind_allowed("tcp://127.0.0.1:5551", curve=False)


def test_curve_recording_and_rejection_of_unknown_clients(small_rig, tmp_path):
    keys = make_keys(tmp_path / "keys", small_rig.camera_names)
    res = Recorder(small_rig, tmp_path / "t", loopback_options(frames=20, curve_keys=str(keys))).run()
    assert all(len(res.session.frames(c)) == 20 for c in small_rig.camera_names)
    # a client without keys, and one with a key pair the server does not know, get nothing through
    ctx = zmq.Context()
    server = CurveServer(ctx, keys)
    pull = ctx.socket(zmq.PULL)
    server.apply(pull)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    stranger = make_keys(tmp_path / "stranger", ["hero"])
    plain, forged, good = ctx.socket(zmq.PUSH), ctx.socket(zmq.PUSH), ctx.socket(zmq.PUSH)
    forged.curve_serverkey = server.public
    forged.curve_publickey, forged.curve_secretkey = zmq.auth.load_certificate(
        str(stranger / "clients" / "hero.key_secret"))
    curve_client(good, keys, "hero")
    for sock, msg in ((plain, b"plain"), (forged, b"forged"), (good, b"good")):
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"tcp://127.0.0.1:{port}")
    for sock, msg in ((plain, b"plain"), (forged, b"forged"), (good, b"good")):
        try:
            sock.send(msg, zmq.NOBLOCK)
        except zmq.Again:
            pass
    got = []
    while pull.poll(1500):
        got.append(pull.recv())
    assert got == [b"good"]
    for sock in (plain, forged, good, pull):
        sock.close()
    server.stop()
    ctx.term()


def test_hardware_trigger_mode_uses_the_cameras_frame_counter(tmp_path):
    """Genlocked cameras (synthetic genlock): no software ticks; each frame carries its hardware frame counter,
    so sync by tick stays exact."""
    rig = load_rig(write_rig(tmp_path / "rig.toml", mode="hardware",
                             settings={c: {"genlock": True} for c in ("hero", "ir-left", "ir-right")}))
    res = Recorder(rig, tmp_path / "t", loopback_options(frames=30)).run()
    s = res.session
    ticks = {c: [r.tick for r in s.frames(c) if r.status == "ok"] for c in rig.camera_names}
    assert all(len(t) >= 25 and min(t) > 0 for t in ticks.values())
    for c, t in ticks.items():
        assert t == list(range(t[0], t[0] + len(t)))  # consecutive hardware counts, no loss
    from capture.sync_session import sync_session

    fsets, rep = sync_session(s)
    assert rep.method == "tick"
    common = set.intersection(*(set(t) for t in ticks.values()))
    assert len(common) >= 25
    full = [fs for fs in fsets if all(fs.indices[c] is not None for c in rig.camera_names)]
    assert len(full) == len(common)
    for fs in full:  # every image in a set is the frame of the same counter
        codes = {read_code(s.read_image(c, s.frames(c)[fs.indices[c]])) for c in rig.camera_names}
        assert len(codes) == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_ends_the_take_cleanly(tmp_path, sig):
    rig = write_rig(tmp_path / "rig.toml")
    take = tmp_path / "t"
    proc = subprocess.Popen([sys.executable, "-m", "capture.cli", "record", str(rig), str(take), "--seconds", "60",
                             "--quiet", "--data-endpoint", "tcp://127.0.0.1:0"], start_new_session=True)
    deadline = time.time() + 30
    while _rows(take, "hero") < 20 and time.time() < deadline:
        time.sleep(0.02)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # Ctrl-C in a terminal: the whole process group gets SIGINT
    else:
        os.kill(proc.pid, sig)  # `kill <recorder pid>`
    assert proc.wait(timeout=30) == 0
    s = Session.open(take)
    rep = s.read_capture_report()
    assert rep["state"] == "stopped"
    counts = {c: len(s.frames(c)) for c in s.rig.camera_names}
    assert len(set(counts.values())) == 1 and min(counts.values()) >= 20, counts
    for c in s.rig.camera_names:
        assert all(r.status == "ok" for r in s.frames(c)) and not rep["cameras"][c]["gaps"]
