"""Session folders: create/open, schema checks, atomic frame records, crash safety."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from reconstruct.errors import NotASessionError, SessionError
from reconstruct.rig import load_rig
from reconstruct.session import ConsentRecord, FrameRecord, FrameSet, Session


@pytest.fixture
def rig(repo_root):
    return load_rig(repo_root / "rigs" / "test-small.toml")


def test_create_and_open(tmp_path, rig):
    s = Session.create(tmp_path / "s", rig, notes="take 1")
    again = Session.open(tmp_path / "s")
    assert again.meta.name == "s" and again.meta.notes == "take 1" and again.rig.cameras == rig.cameras
    assert (tmp_path / "s" / "cams" / "hero").is_dir()
    img = (np.arange(480 * 640 * 3) % 251).astype(np.uint8).reshape(480, 640, 3)
    s.write_image("hero", "000000.png", img)
    assert np.array_equal(again.read_image("hero", "000000.png"), img)  # RGB order survives the BGR boundary
    gray = img[..., 0]
    s.write_image("witness-left", "000000.png", gray)
    assert np.array_equal(again.read_image("witness-left", "000000.png"), gray)


def test_refuses_to_overwrite(tmp_path, rig):
    Session.create(tmp_path / "s", rig)
    with pytest.raises(SessionError, match="already holds a session"):
        Session.create(tmp_path / "s", rig)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(SessionError, match="not empty"):
        Session.create(tmp_path / "other", rig)
    assert (tmp_path / "other" / "keep.txt").read_text() == "x"


def test_not_a_session_and_wrong_schema(tmp_path, rig):
    with pytest.raises(NotASessionError, match="no session.toml"):
        Session.open(tmp_path)
    with pytest.raises(NotASessionError, match="not a folder"):
        Session.open(tmp_path / "missing")
    s = Session.create(tmp_path / "s", rig)
    f = s.root / "session.toml"
    f.write_text(f.read_text().replace("schema = 1", "schema = 99"))
    with pytest.raises(SessionError, match="schema 99"):
        Session.open(s.root)


def test_consent_round_trip(tmp_path, rig):
    s = Session.create(tmp_path / "s", rig)
    s.add_consent(ConsentRecord("A. Actor", "stills 1985", "A. Actor", "2026-01-02", ("digital_human",)))
    c = Session.open(s.root).meta.consent
    assert len(c) == 1 and c[0].covers("digital_human") and not c[0].covers("deepfake")


def test_frames_and_sync_round_trip(tmp_path, rig):
    s = Session.create(tmp_path / "s", rig)
    recs = [FrameRecord(i, 1000 + i, tick=i, timecode="00:00:00:0%d" % i, exposure_us=8000, file=f"{i:06d}.png")
            for i in range(3)] + [FrameRecord(3, 1003, status="dropped", note="queue full")]
    s.write_frames("hero", recs)
    assert s.frames("hero") == recs
    fsets = [FrameSet(0, 1000, {"hero": 0, "witness-left": None, "witness-right": 2})]
    s.write_sync(fsets)
    assert s.read_sync() == fsets


def test_torn_last_row_is_ignored_and_log_resumes(tmp_path, rig):
    s = Session.create(tmp_path / "s", rig)
    with s.frame_log("hero") as log:
        log.append(FrameRecord(0, 10, file="a.png"))
    p = s.camera_dir("hero") / "frames.csv"
    with open(p, "a") as f:
        f.write("1,20,-1,,0,b.pn")  # killed mid-row
    assert [r.index for r in s.frames("hero")] == [0]
    with s.frame_log("hero") as log:
        log.append(FrameRecord(2, 30, file="c.png"))
    assert [r.index for r in s.frames("hero")] == [0, 2]


def _five_rows(s, note=""):
    recs = [FrameRecord(i, 1000 + i, tick=i, exposure_us=8000, file=f"{i:06d}.png", note=note) for i in range(5)]
    s.write_frames("hero", recs)
    p = s.camera_dir("hero") / "frames.csv"
    return p, p.read_text().split("\n")  # header, 5 rows, ""


@pytest.mark.parametrize("tear", [
    lambda row: row[:9],                                   # torn mid-row: too few fields
    lambda row: row[:-3] + '"write failed: disk, full',    # torn inside a quoted note: swallowed the rest before
    lambda row: row[:20] + "\x00" * 7,                     # a block of zeros left by a crash
    lambda row: row[:12] + row,                            # two rows run together
], ids=["short-row", "open-quote", "zeros", "run-together"])
def test_a_row_torn_mid_file_is_skipped_with_a_warning_and_later_rows_are_kept(tmp_path, rig, caplog, tear):
    s = Session.create(tmp_path / "s", rig)
    p, lines = _five_rows(s)
    lines[3] = tear(lines[3])  # the row of frame 2 (line 4 of the file)
    p.write_text("\n".join(lines))
    with caplog.at_level("WARNING", logger="reconstruct.session.frames"):
        recs = Session.open(s.root).frames("hero")
    assert [r.index for r in recs] == [0, 1, 3, 4]  # before the fix: [0, 1] (silently) or an error for the file
    assert [r.file for r in recs] == ["000000.png", "000001.png", "000003.png", "000004.png"]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and f"{p} is damaged" in warned[0] and "(line 4)" in warned[0], warned


def test_torn_header_says_damaged_naming_the_file(tmp_path, rig):
    s = Session.create(tmp_path / "s", rig)
    p, lines = _five_rows(s)
    p.write_text("index,t_capt")  # only part of the header survived
    with pytest.raises(SessionError, match="is damaged: its header row is incomplete") as ei:
        s.frames("hero")
    assert str(p) in ei.value.message and "header" in ei.value.hint
    p.write_text("\n".join(["index,t_capt"] + lines[1:]))  # header torn, rows intact
    with pytest.raises(SessionError, match="is damaged: its header row is 'index,t_capt'"):
        s.frames("hero")
    # the sync says "damaged" too, where it said "hero camera 'hero' has no good frames"
    from capture.sync_session import sync_session

    p.write_text("index,t_capt")
    with pytest.raises(SessionError, match="damaged"):
        sync_session(Session.open(s.root))
    p.write_text("")  # an empty file: a camera that recorded nothing (not damage)
    assert s.frames("hero") == []


def test_line_breaks_in_a_note_stay_on_one_line(tmp_path, rig):
    s = Session.create(tmp_path / "s", rig)
    p, lines = _five_rows(s, note="write failed: disk\nfull, retry")
    assert len(lines) == 7  # header + 5 rows + "": one line per record
    assert [r.note for r in s.frames("hero")] == ["write failed: disk full, retry"] * 5


def test_sigkill_mid_write_leaves_only_complete_frames(tmp_path, rig):
    """A writer killed with SIGKILL while storing frames: every row marked ok points at a complete image."""
    Session.create(tmp_path / "s", rig)
    code = f"""
import numpy as np
from reconstruct.session import Session, FrameRecord
s = Session.open({str(tmp_path / 's')!r})
img = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
with s.frame_log("hero") as log:
    i = 0
    while True:
        name = f"{{i:06d}}.png"
        s.write_image("hero", name, img)
        log.append(FrameRecord(i, i, file=name))
        i += 1
        if i == 3:
            print("ready", flush=True)
"""
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"ready"
    import time

    time.sleep(0.3)
    p.kill()
    p.wait()
    s = Session.open(tmp_path / "s")
    recs = s.frames("hero")
    assert len(recs) >= 3
    for r in recs:
        assert s.read_image("hero", r).shape == (480, 640, 3)
    # a half-written image can only exist as a hidden temp file, which no record points at
    listed = {r.file for r in recs}
    for f in os.listdir(s.camera_dir("hero")):
        if f.endswith(".png") and not f.startswith("."):
            assert f in listed or int(f[:6]) == len(recs)  # at most the frame being logged when killed


@pytest.fixture
def umask():
    """Set the process umask for one test (restored after)."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda m: os.umask(m)
    os.umask(old)


def test_written_files_follow_the_umask(tmp_path, umask, repo_root):
    """Shots must be readable by compositors and render nodes under other accounts: files get 0666 & ~umask, like
    open() (they were 0600 whatever the umask: mkstemp's mode leaked through the atomic rename)."""
    import deage_plugins.report_stage
    import deage_plugins.sync_stage
    from reconstruct.engine import run_pipeline
    from reconstruct.plugins import make_plugin_manager
    from reconstruct.session.atomic import atomic_write_bytes, atomic_write_json, current_umask
    from reconstruct.stage import RunConfig
    from tests.tiny_session import make_tiny_session

    umask(0o022)
    assert current_umask() == 0o022
    root = make_tiny_session(tmp_path / "s", frames=3)
    host = make_plugin_manager(load_entry_points=False, extra_plugins=[
        ("sync", deage_plugins.sync_stage), ("report", deage_plugins.report_stage)])
    run_pipeline(RunConfig(session=root), host)
    files = [p for p in root.rglob("*") if p.is_file()]
    modes = {str(p.relative_to(root)): oct(p.stat().st_mode & 0o777) for p in files}
    assert "out/report/report.html" in modes and "session.toml" in modes and "cams/hero/000000.png" in modes
    assert set(modes.values()) == {"0o644"}, modes
    umask(0o077)
    atomic_write_json(tmp_path / "private.json", {"a": 1})
    assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600
    umask(0o022)
    atomic_write_bytes(tmp_path / "secret.key", b"k", mode=0o600)  # secrets ask for their mode
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
