"""Benchmark: ``--jobs N`` process workers with their share of the cores vs with every core each.

    .venv/bin/python tools/bench_jobs.py [--quick]

Per-frame work of the learned methods is torch-bound (convolutions over image crops). With ``--jobs N`` each
worker process used to start as many torch and BLAS threads as the machine has cores, N times over
(oversubscription); now each gets ``cores // N`` (``reconstruct.executors.local.limit_worker_threads``). Both are timed in
this run on the same items: a small U-Net-like stack of 3x3 convolutions on 256x256 crops (like FRAN's windows),
mapped over 8 items with 2 workers. Baseline = the old behaviour: workers with as many threads as cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconstruct.executors.local import LocalExecutor  # noqa: E402


def _work(seed: int) -> float:
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 16, 256, 256, generator=g)
    w = torch.rand(16, 16, 3, 3, generator=g) * 0.1
    for _ in range(12):
        x = torch.relu(torch.nn.functional.conv2d(x, w, padding=1))
    return float(x.mean())


def _run(jobs: int, items: int, limited: bool) -> float:
    import reconstruct.executors.local as E

    keep = E.limit_worker_threads
    if not limited:  # the old behaviour: every worker as many threads as the machine has cores
        E.limit_worker_threads = lambda n, resources=None: None
    try:
        t = time.perf_counter()
        LocalExecutor(jobs=jobs).map(_work, list(range(items)))
        return time.perf_counter() - t
    finally:
        E.limit_worker_threads = keep


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="4 items instead of 8, best of 1 instead of 3")
    ap.add_argument("--session", help="(bench suite) ignored")
    args, _ = ap.parse_known_args(argv)
    import torch

    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)  # the driver's default: what forked workers inherit
    items, repeat, jobs = (4, 1, 2) if args.quick else (8, 3, 2)
    old = min(_run(jobs, items, limited=False) for _ in range(repeat))
    new = min(_run(jobs, items, limited=True) for _ in range(repeat))
    print(f"{items} items, --jobs {jobs} on {cores} cores: workers sharing the cores {new:.2f} s, "
          f"every worker all cores {old:.2f} s (ratio {new / old:.2f})")
    return [{"stage": "executor", "metric": f"--jobs {jobs} torch work seconds", "value": new, "baseline": old,
             "ratio": new / old, "notes": f"baseline: workers with {cores} threads each (before); {items} items of "
             f"12 3x3 convolutions on 16x256x256, best of {repeat}; {cores} cores"
             + ("; quick" if args.quick else "")}]


if __name__ == "__main__":
    main(sys.argv[1:])
