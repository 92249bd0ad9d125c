"""Atomic file writes: write to a temporary file in the same folder, fsync, rename.

A process killed at any point leaves either the old file or the new one, never a truncated one. Files written
into a stage's temporary folder (``out/.<stage>.tmp``, ``out/plates/.<method>.tmp``), which is discarded unless the
stage completes, may skip their own fsync (``sync=False``): :func:`atomic_replace_dir` flushes the folder's files
together (:func:`sync_tree`) before it moves the folder into place, so a completed stage is on disk as a whole
(instead of two fsyncs per file, one after the other in the worker that wrote it: ~2 ms each, 10+ per composited
frame). The file gets the
mode a plain ``open()`` would give it (``0o666`` less the process umask: 0644 under the usual umask 022), so that
compositors and render nodes under other accounts can read the shots; secrets pass ``mode=0o600``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import SessionError


def current_umask() -> int:
    """The process umask, read without changing it where the system says it (Linux ``/proc``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it (and put it back at once)
    os.umask(mask)
    return mask


def _fsync_path(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sync_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder`` (and ``folder`` itself): only this tree's data, not the whole
    filesystem's (other jobs' writes do not make it wait), on a few threads so the disk sees the requests together."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    paths = [folder]
    for root, dirs, files in os.walk(folder):
        paths.extend(Path(root) / name for name in (*dirs, *files))
    if len(paths) < 8:
        for p in paths:
            _fsync_path(p)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(_fsync_path, paths))


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None, mode: int | None = None,
                sync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced, given its mode and renamed onto ``path``.

    ``suffix`` keeps the extension for writers that pick the format from it (``cv2.imwrite``, ``np.savez``).
    ``mode``: the file's permission bits (default: ``0o666`` less the umask, like ``open()``).
    ``sync=False``: no fsync (still atomic against a killed process): only for files inside a folder that
    :func:`atomic_replace_dir` commits later (it flushes them then).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=suffix if suffix is not None else path.suffix,
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if sync:
            with open(tmp_path, "rb+") as f:
                os.fsync(f.fileno())
        # mkstemp made the file 0600 (and writers that reopen it keep that): give it the mode open() would
        os.chmod(tmp_path, (0o666 & ~current_umask()) if mode is None else mode)
        os.replace(tmp_path, path)
        if sync:
            _fsync_path(path.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, mode: int | None = None, sync: bool = True) -> None:
    try:
        with atomic_path(path, mode=mode, sync=sync) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise SessionError(f"cannot write {path}: {exc.strerror}", hint="check free disk space and permissions") from exc


def atomic_write_text(path: str | Path, text: str, sync: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), sync=sync)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot serialise {type(o).__name__} to JSON")


def atomic_write_json(path: str | Path, obj: Any, sync: bool = True) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n", sync=sync)


TRASH_DIR = ".deleting"  # beside a replaced folder: old versions being deleted (no stage or method lists it)


def atomic_replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move a fully written ``tmp_dir`` onto ``final_dir`` (replacing it). The old folder is removed only after the
    new one is in place, so a crash leaves one complete version (possibly plus a ``.old`` folder to clean up).
    The folder is flushed first (:func:`sync_tree`): files written into ``tmp_dir`` without their own fsync are on
    disk before the folder takes the final name. The old version is moved into ``TRASH_DIR`` beside it (out of
    sight of whatever lists the stage or method folders) and deleted there on a thread of its own, so the next
    stage does not wait for its unlinks (0.1-0.25 s a stage on the bench take); :func:`wait_removals` waits for
    it (the engine calls it at the end of a run)."""
    sync_tree(tmp_dir)
    old = final_dir.with_name(final_dir.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final_dir.exists():
        os.replace(final_dir, old)
    os.replace(tmp_dir, final_dir)
    _fsync_path(final_dir.parent)
    if old.exists():
        _remove_later(old)


_removals: list[tuple[threading.Thread, Path]] = []
_removals_lock = threading.Lock()


def _remove_later(folder: Path) -> None:
    """Move ``folder`` (a replaced version nothing reads any more) into ``TRASH_DIR`` and delete it on a thread; a
    crash before that is done leaves the trash folder, which :meth:`Session.remove_leftovers` removes at the next
    run's start."""
    trash = folder.parent / TRASH_DIR
    trash.mkdir(exist_ok=True)
    target = trash / f"{folder.name}-{uuid.uuid4().hex[:12]}"
    os.replace(folder, target)
    thread = threading.Thread(target=shutil.rmtree, args=(target,), kwargs={"ignore_errors": True},
                              name=f"remove {folder.name}")
    with _removals_lock:
        _removals.append((thread, trash))
    thread.start()


def wait_removals() -> None:
    """Wait until every old folder :func:`atomic_replace_dir` handed to a thread is deleted (and its emptied
    ``TRASH_DIR`` folder with it)."""
    with _removals_lock:
        pending = list(_removals)
        _removals.clear()
    for thread, _ in pending:
        thread.join()
    for trash in {t for _, t in pending}:
        try:
            trash.rmdir()
        except OSError:  # gone already, or still holding another run's folder
            pass
