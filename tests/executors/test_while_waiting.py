"""LocalExecutor.while_waiting: work for the driver while a process pool's workers work (the engine preloads the
next stage's imports there): it runs once, in the driver's own thread, after the workers were forked."""

import os
import threading

from reconstruct.executors.local import LocalExecutor

DONE: list[tuple[int, str]] = []  # (pid, thread name) of each run of the driver's work


def _driver_work() -> None:
    DONE.append((os.getpid(), threading.current_thread().name))


def _seen_in_worker(_x) -> int:
    """In the worker: how many runs of the driver's work its process holds (forked before it: none)."""
    return len(DONE)


def test_runs_once_in_the_driver_thread_after_the_fork():
    DONE.clear()
    ex = LocalExecutor(jobs=2)
    try:
        ex.while_waiting(_driver_work)
        assert DONE == []  # handed over, not run yet
        assert ex.map(_seen_in_worker, range(4)) == [0, 0, 0, 0]  # the workers were forked before it ran
        assert DONE == [(os.getpid(), threading.current_thread().name)]
        ex.map(_seen_in_worker, range(4))
        assert len(DONE) == 1  # once
    finally:
        ex.close()


def test_none_drops_a_pending_one_and_in_process_work_keeps_it():
    DONE.clear()
    ex = LocalExecutor(jobs=2)
    try:
        ex.while_waiting(_driver_work)
        ex.map(abs, [-1])  # one item: in process, nobody to wait for
        assert DONE == []
        ex.while_waiting(None)
        ex.map(abs, [-1, -2, -3])
        assert DONE == []
    finally:
        ex.close()
