"""``atomic_replace_dir``: the replaced version is deleted on a thread (the next stage does not wait for its
unlinks); ``wait_removals`` (called at the end of every run) waits for it."""

from __future__ import annotations

import threading
from pathlib import Path

from reconstruct.session import atomic
from reconstruct.session import atomic_replace_dir, wait_removals


def _folder(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "a.txt").write_text(text)
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
    assert not release.is_set() and (tmp_path / "fit.old").is_dir()  # returned before the old one was deleted
    release.set()
    wait_removals()
    assert deleting == [False]
    assert not (tmp_path / "fit.old").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["fit"]


def test_replacing_again_waits_for_the_pending_deletion(tmp_path):
    final = _folder(tmp_path / "age", "v1")
    for v in ("v2", "v3", "v4"):
        atomic_replace_dir(_folder(tmp_path / ".age.tmp", v), final)
    wait_removals()
    assert (final / "a.txt").read_text() == "v4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["age"]
