"""``--jobs N`` process workers share the machine's cores for torch and BLAS instead of each taking all of them."""

import os
import subprocess
import sys

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



_LATE = """
import os, sys
os.cpu_count = lambda: 2  # a 2-core machine, two jobs: one thread each
from reconstruct.executors.local import LocalExecutor

def late(_):
    import torch  # first loaded here, in a worker started before it
    return os.environ.get("OMP_NUM_THREADS"), os.environ.get("OPENBLAS_NUM_THREADS"), torch.get_num_threads()

assert "torch" not in sys.modules
ex = LocalExecutor(jobs=2)
ex.map(abs, [-1, -2])  # the run's workers start with its first stage
print(sorted(set(ex.map(late, range(4)))))
ex.close()
"""


def test_a_library_loaded_after_the_workers_started_gets_their_share(repo_root):
    """The run's workers live across stages: OpenMP/BLAS/torch first loaded by a later stage's work get the
    worker's share too (through the variables they read when they load, and torch on its first use). Before, every
    stage forked new workers from the driver, which had imported torch by then."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                            "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", _LATE], cwd=repo_root, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[('1', '1', 1)]", out.stdout
