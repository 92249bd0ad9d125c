"""``atomic_replace_dir``: the replaced version is moved out of sight (``.deleting``) and deleted on a thread, so
the next stage does not wait for its unlinks; ``wait_removals`` (called at the end of every run) waits for it."""

from __future__ import annotations

import threading
from pathlib import Path

from reconstruct.session import Session, atomic, atomic_replace_dir, wait_removals


def _folder(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "a.txt").write_text(text)
    (path / "_stage.json").write_text("{}")
    return path


def test_old_version_is_deleted_after_the_replace_returns(tmp_path, monkeypatch):
    final = _folder(tmp_path / "fit", "old")
    release, deleting = threading.Event(), []
    real_rmtree = atomic.shutil.rmtree

    def slow_rmtree(path, *a, **k):
        deleting.append(threading.current_thread() is threading.main_thread())
        release.wait(5)  # before (main d8d2c4e): called here, on the caller's thread -> the replace waited 5 s
        real_rmtree(path, *a, **k)

    monkeypatch.setattr(atomic.shutil, "rmtree", slow_rmtree)
    atomic_replace_dir(_folder(tmp_path / ".fit.tmp", "new"), final)
    assert (final / "a.txt").read_text() == "new"
    assert not release.is_set()  # returned before the old version was deleted
    # ... and that version is out of sight of what lists the stage (or method) folders: no fit.old beside fit
    assert sorted(p.name for p in tmp_path.iterdir()) == [".deleting", "fit"]
    assert [(p / "a.txt").read_text() for p in (tmp_path / ".deleting").iterdir()] == ["old"]
    release.set()
    wait_removals()
    assert deleting == [False]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit"]


def test_replacing_again_before_the_deletion_ends(tmp_path):
    final = _folder(tmp_path / "age", "v1")
    for v in ("v2", "v3", "v4"):
        atomic_replace_dir(_folder(tmp_path / ".age.tmp", v), final)
    wait_removals()
    assert (final / "a.txt").read_text() == "v4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["age"]


def test_a_crash_during_the_deletion_is_cleaned_at_the_next_run(tmp_path, repo_root):
    from tests.test_engine import make_session

    s = Session.open(make_session(tmp_path / "s", repo_root, frames=2))
    left = s.root / "out" / ".deleting" / "composite-0123456789ab"
    left.mkdir(parents=True)
    (left / "x.png").write_bytes(b"x")
    assert s.remove_leftovers() == [s.root / "out" / ".deleting"]
    assert not (s.root / "out" / ".deleting").exists()
