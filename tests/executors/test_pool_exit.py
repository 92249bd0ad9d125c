"""The local executor's process pool (issue 16): map() returns as soon as every result is in, without waiting for
its workers to exit (0.1-0.3 s per stage); the next map() and close() await them."""

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


MARK: list[str] = []  # set in the driver below: a forked worker sees it, a started (spawned) one does not


def _forked(_x) -> bool:
    return MARK == ["driver"]


def test_fresh_work_is_forked_while_the_driver_is_clean(monkeypatch):
    """``fresh=True`` (MediaPipe's no-fork rule) forks while the driver has loaded no library of FORK_UNSAFE: the
    workers inherit the driver's imports and caches (before: always started, a cold interpreter each)."""
    import sys

    import reconstruct.executors.local as local

    monkeypatch.setattr(sys.modules[__name__], "MARK", ["driver"])
    monkeypatch.setattr(local, "FORK_UNSAFE", ("a_module_nobody_loaded",))
    ex = LocalExecutor(jobs=2)
    try:
        assert ex.map(_forked, range(4), fresh=True) == [True] * 4
    finally:
        ex.close()
    assert "json" in sys.modules
    monkeypatch.setattr(local, "FORK_UNSAFE", ("json",))  # "loaded in the driver": started workers
    ex = LocalExecutor(jobs=2)
    try:
        assert ex.map(_forked, range(4), fresh=True) == [False] * 4
    finally:
        ex.close()
