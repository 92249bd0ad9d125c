"""``--jobs N`` process workers share the machine's cores for torch and BLAS instead of each taking all of them."""

import os

from reconstruct.executors.local import LocalExecutor, worker_threads


def _threads(_):
    import torch
    from threadpoolctl import threadpool_info

    return torch.get_num_threads(), sorted({p["num_threads"] for p in threadpool_info()})


def test_worker_threads_share_the_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert worker_threads(1) == 8 and worker_threads(3) == 2 and worker_threads(16) == 1


def test_process_workers_are_limited(monkeypatch):
    import torch

    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # a 2-core machine, two jobs: one thread each
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # what the driver has by default on that machine (tests otherwise pin 1)
    try:
        out = LocalExecutor(jobs=2).map(_threads, [0, 1, 2, 3])
    finally:
        torch.set_num_threads(before)
    assert all(t == 1 for t, _ in out), out
    assert all(blas == [1] for _, blas in out if blas), out
