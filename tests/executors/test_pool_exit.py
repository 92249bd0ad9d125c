"""The local executor's process pool (issue 16): map() returns as soon as every result is in, without waiting for
its workers to exit (0.1-0.3 s per stage); the next map() and close() await them."""

import os
import threading
import time

from reconstruct.executors.local import LocalExecutor

EXIT_S = 3.0  # each worker takes this long to exit


def _slow_exit(x: int) -> int:
    """Doubles ``x``; the worker process running it then needs EXIT_S seconds to exit (a finalizer run at exit)."""
    from multiprocessing import util

    if not getattr(_slow_exit, "armed", False):
        util.Finalize(None, time.sleep, args=(EXIT_S,), exitpriority=10)
        _slow_exit.armed = True
    return 2 * x


def test_map_does_not_wait_for_the_workers_to_exit():
    ex = LocalExecutor(jobs=2)
    t0 = time.perf_counter()
    assert ex.map(_slow_exit, range(4)) == [0, 2, 4, 6]
    returned = time.perf_counter() - t0
    t1 = time.perf_counter()
    ex.close()
    closed = time.perf_counter() - t1
    # before: the pool's context manager joined the workers, so map() took >= EXIT_S (3 s); measured now: 0.1-0.3 s
    # to fork two workers and collect, and close() waits out the rest of the workers' exit
    assert returned < EXIT_S / 2, returned
    assert returned + closed >= EXIT_S * 0.9, (returned, closed)


def test_next_map_awaits_the_previous_workers_and_gives_the_same_results():
    ex = LocalExecutor(jobs=2)
    a = ex.map(_slow_exit, range(5))
    t0 = time.perf_counter()
    b = ex.map(abs, [-1, 2, -3])  # forks only once the previous pool's workers have exited
    waited = time.perf_counter() - t0
    ex.close()
    assert a == [0, 2, 4, 6, 8] and b == [1, 2, 3]
    assert waited >= EXIT_S * 0.9, waited
    assert not ex._exiting


HELD = threading.Lock()  # held by a driver thread below while the pool starts


def _lock_free(_x) -> bool:
    """In the worker: can the module's lock be taken? A forked worker inherits it as the driver's thread held it
    (taken, by a thread the child does not have: it would wait forever); a started one imports it free."""
    if HELD.acquire(timeout=3.0):
        HELD.release()
        return True
    return False


def test_fresh_work_never_inherits_the_drivers_locks():
    """``fresh=True`` work is started (spawn), never forked, even while the driver has not run MediaPipe: a driver
    thread may hold a lock at the fork (the report hashes the manifest in a driver thread while its workers start),
    and a forked worker that needs that lock hangs. Seen on 2026-12-06 with a build that forked such work while the
    driver had not loaded MediaPipe: `reconstruct run S --only report` hung with both workers waiting on a lock."""
    release = threading.Event()
    holder = threading.Thread(target=lambda: (HELD.acquire(), release.wait(30), HELD.release()))
    holder.start()
    ex = LocalExecutor(jobs=2)
    try:
        assert ex.map(_lock_free, range(2), fresh=True) == [True, True]
    finally:
        release.set()
        holder.join()
        ex.close()


class _Cycle:
    """Garbage only the collector frees (it refers to itself); its finalizer notes the process that ran it, in the
    file ``path`` (a worker's notes reach the driver that way)."""

    def __init__(self, path) -> None:
        self.me, self.path = self, path

    def __del__(self) -> None:
        with open(self.path, "a") as f:
            f.write(f"{os.getpid()}\n")


def _collect_in_worker(_x) -> int:
    import gc

    gc.collect()
    return os.getpid()


def test_workers_never_collect_the_drivers_garbage_and_map_leaves_it_to_the_driver(tmp_path):
    # a forked worker that frees the driver's garbage may hang (a Ray client joining a thread only the driver has).
    # Before (main e919757) map() ran a full gc.collect() in the driver before each fork (0.06-0.12 s a stage):
    # the finalizer ran in the driver inside map(); now the driver's objects are frozen while its workers fork
    import gc

    notes = tmp_path / "finalized.txt"
    gc.disable()  # no automatic collection in the driver while the garbage is made and the pool forks
    try:
        _Cycle(notes)
        ex = LocalExecutor(jobs=2)
        workers = set(ex.map(_collect_in_worker, range(4)))
        ex.close()
        assert not notes.exists()  # neither a worker (which collected) nor map() in the driver freed it
        assert gc.get_freeze_count() == 0  # the driver's objects are thawed after the fork
        gc.collect()
    finally:
        gc.enable()
    assert notes.read_text().split() == [str(os.getpid())] and str(os.getpid()) not in map(str, workers)


class _CycleNote:
    """Garbage only the collector frees (it refers to itself); notes "collected" in the file ``path`` if it is."""

    def __init__(self, path: str) -> None:
        self.me, self.path, self.open = self, path, open  # held: the modules may be torn down by then

    def __del__(self) -> None:
        with self.open(self.path, "a") as f:
            f.write("collected\n")


def _note(path: str, what: str) -> None:
    with open(path, "a") as f:
        f.write(f"{what}\n")


def _garbage_at_exit(path: str) -> int:
    """In the worker (once): an atexit handler that notes "atexit", and garbage in a reference cycle that only a
    garbage collection would finalize, made with the collector off so that only the exit's collection could."""
    import atexit
    import gc

    if not getattr(_garbage_at_exit, "done", False):
        _garbage_at_exit.done = True
        gc.disable()
        atexit.register(_note, path, "atexit")
        _CycleNote(path)
    return os.getpid()


def test_started_workers_skip_the_last_garbage_collections_at_exit(tmp_path):
    # before (main e919757) a started (fresh=True) worker ran the interpreter's last collections at exit: 0.3-0.4
    # CPU-s with MediaPipe, open3d and scipy loaded (the report's workers, awaited by close()) -> "collected" noted
    notes = tmp_path / "notes.txt"
    ex = LocalExecutor(jobs=2)
    pids = ex.map(_garbage_at_exit, [str(notes)] * 2, fresh=True)
    ex.close()
    lines = notes.read_text().split()
    assert os.getpid() not in pids and "collected" not in lines
    assert lines.count("atexit") == len(set(pids))  # each worker that ran one still ran its atexit handler
