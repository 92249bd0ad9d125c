"""The local executor's process pool (issue 16): one set of ``--jobs`` workers for the whole run. map() returns as
soon as every result is in; every later map() -- the next stage's -- reuses the same worker processes and their
caches (before: a fresh pool per map, 0.1-0.15 s of fork and the workers' imports and caches again per stage, e.g.
MediaPipe's 1.2 s import in the report after the detect stage); close() stops them."""

import os
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

import reconstruct.executors.local as local
from reconstruct.executors.local import LocalExecutor

EXIT_S = 3.0  # each worker takes this long to exit


def _slow_exit(x: int) -> int:
    """Doubles ``x``; the worker process running it then needs EXIT_S seconds to exit (a finalizer run at exit)."""
    from multiprocessing import util

    if not getattr(_slow_exit, "armed", False):
        util.Finalize(None, time.sleep, args=(EXIT_S,), exitpriority=10)
        _slow_exit.armed = True
    return 2 * x


def _pid(_x) -> int:
    time.sleep(0.05)  # long enough that both workers take items
    return os.getpid()


def _built(_x, res) -> tuple[int, int]:
    """(pid, how many times this worker built its cached object): 1 wherever the cache lives for the run."""
    counter = res.get("counter", lambda: [0])
    obj = res.get("expensive", lambda: counter.__setitem__(0, counter[0] + 1) or object())
    assert obj is not None
    time.sleep(0.05)
    return os.getpid(), counter[0]


def _fail(x: int) -> int:
    if x == 3:
        raise ValueError("item 3 is bad")
    return x


def _die(x: int) -> int:
    if x == 1:
        os._exit(7)
    time.sleep(0.2)
    return x


def test_map_does_not_wait_for_the_workers_to_exit():
    ex = LocalExecutor(jobs=2)
    t0 = time.perf_counter()
    assert ex.map(_slow_exit, range(4)) == [0, 2, 4, 6]
    returned = time.perf_counter() - t0
    t1 = time.perf_counter()
    ex.close()
    closed = time.perf_counter() - t1
    # map() never joined the workers (measured 0.1-0.3 s to fork two workers and collect); close() stops them and
    # waits out their exit
    assert returned < EXIT_S / 2, returned
    assert returned + closed >= EXIT_S * 0.9, (returned, closed)


def test_later_maps_reuse_the_runs_workers_and_their_caches():
    ex = LocalExecutor(jobs=2)
    try:
        first = ex.map(_built, range(6), resources=True)
        second = ex.map(_built, range(6), resources=True)
        pids = set(ex.map(_pid, range(6)))
    finally:
        ex.close()
    workers = {p for p, _ in first}
    assert len(workers) == 2 and os.getpid() not in workers
    # before (a pool per map): other processes each time, the cache built again in each
    assert {p for p, _ in second} == workers and pids == workers
    assert all(n == 1 for _, n in first + second), (first, second)


def test_fresh_work_uses_the_forked_workers_only_when_they_are_clean(monkeypatch):
    """``fresh=True`` (MediaPipe's no-fork rule): the run's forked workers when the driver had loaded no library of
    FORK_UNSAFE when they forked, else a started (spawn) pool, itself kept for the run."""
    monkeypatch.setattr(local, "FORK_UNSAFE", ("a_module_nobody_loaded",))
    ex = LocalExecutor(jobs=2)
    try:
        forked = set(ex.map(_pid, range(6)))
        assert set(ex.map(_pid, range(6), fresh=True)) == forked
    finally:
        ex.close()
    ex = LocalExecutor(jobs=2)
    try:
        forked = set(ex.map(_pid, range(6), fresh=True))  # the run's first map (e.g. --only report): forked too
        assert set(ex.map(_pid, range(6))) == forked and len(forked) == 2
    finally:
        ex.close()
    assert "json" in sys.modules
    monkeypatch.setattr(local, "FORK_UNSAFE", ("json",))  # "loaded in the driver before the fork"
    ex = LocalExecutor(jobs=2)
    try:
        forked = set(ex.map(_pid, range(6)))
        spawned = set(ex.map(_pid, range(6), fresh=True))
        assert spawned.isdisjoint(forked) and len(spawned) == 2
        assert set(ex.map(_pid, range(6), fresh=True)) == spawned  # the spawn pool is kept too
        assert set(ex.map(_pid, range(6))) == forked
    finally:
        ex.close()


def test_a_failed_map_leaves_the_workers_for_the_next_and_a_dead_worker_is_replaced():
    ex = LocalExecutor(jobs=2)
    try:
        forked = set(ex.map(_pid, range(4)))
        with pytest.raises(ValueError, match="item 3"):
            ex.map(_fail, range(8))
        assert set(ex.map(_pid, range(4))) == forked
        with pytest.raises(BrokenProcessPool):
            ex.map(_die, range(4))
        after = set(ex.map(_pid, range(4)))
        assert len(after) == 2 and after.isdisjoint(forked)
    finally:
        ex.close()


def test_maps_from_two_threads_share_the_workers():
    """map() calls from two threads at once go to the same ``jobs`` workers (no second pool, no double fork)."""
    ex = LocalExecutor(jobs=2)
    ex.map(_pid, range(4))  # the workers fork before the threads exist
    out: dict[str, list] = {}
    try:
        ts = [threading.Thread(target=lambda k=k: out.__setitem__(k, ex.map(_pid, range(8)))) for k in "ab"]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert len(out["a"]) == len(out["b"]) == 8
        assert set(out["a"]) | set(out["b"]) == set(ex.map(_pid, range(6)))
    finally:
        ex.close()


def test_a_closed_executor_starts_no_workers():
    """Work sent after close() (e.g. by a thread left running) starts no workers that nobody would stop."""
    ex = LocalExecutor(jobs=2)
    ex.map(_pid, range(4))
    ex.close()
    with pytest.raises(RuntimeError, match="closed"):
        ex.map(_pid, range(4))
