"""OpenBLAS's idle threads go to sleep at once instead of spinning for ~0.1 s (``OPENBLAS_THREAD_TIMEOUT``).

Every OpenBLAS thread busy-waits after its thread is started and after every multi-threaded call, for 2**28 CPU
cycles by default (~0.1 s), before it sleeps. numpy and scipy each bundle their own OpenBLAS, and every process of a
run starts both: the driver and each ``--jobs`` worker of the seven stages. On the bench's 24-frame hero-2ir take
that spinning was 1.4 CPU-s of a 28 CPU-s run (perf: ``blas_thread_server``, 5 % of all samples), taken from the
other worker on a 2-core machine. :func:`idle_blas_threads_sleep` sets the shortest timeout OpenBLAS accepts
(``OPENBLAS_THREAD_TIMEOUT=4``: 2**4 cycles) in this process's environment, so the OpenBLAS copies loaded after it
and every process started from it read it. A thread woken for the next multi-threaded call costs a few
microseconds; no result changes (the timeout decides only how an idle thread waits, never how work is split).

:mod:`reconstruct` calls it as it is imported, before anything of its own imports numpy. A value the user set is
kept; where numpy was imported before ``reconstruct`` (a notebook), its OpenBLAS keeps the value it read then.
"""

from __future__ import annotations

import os

__all__ = ["idle_blas_threads_sleep", "THREAD_TIMEOUT"]

THREAD_TIMEOUT = "4"  # log2 of the spin in CPU cycles; OpenBLAS clamps the value to 4..30 (default 28)


def idle_blas_threads_sleep() -> str:
    """Set ``OPENBLAS_THREAD_TIMEOUT`` unless it is set already; the value in force."""
    return os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", THREAD_TIMEOUT)
