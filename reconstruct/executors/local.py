"""The local executor (in process, a thread pool or a process pool) and the ``--executor`` registry.

Every executor has ``name``, ``from_config(config, settings, components)``, ``close()`` and
``map(fn, items, progress=None, description="", threads=False, resources=False, fresh=False)`` returning
``[fn(x) ...]`` in item order -- ``fn(x, res)`` with ``resources=True``, ``res`` being the worker's per-run
:class:`~reconstruct.executors.resources.Resources`. ``fresh=True`` asks for worker processes that do not inherit
the driver's state: for work with a library that does not survive a fork of a process that used it (MediaPipe: a
forked worker of a driver that had run it crashes with "malloc(): unaligned tcache chunk").

The local executor's worker processes live for the whole run (issue 16): the first ``map`` forks ``jobs`` workers
and every later ``map`` of every stage reuses them, so a run pays the fork, the workers' imports (MediaPipe,
open3d, ...) and their caches (:class:`Resources`: detectors, face models) once instead of once per stage.
``fresh=True`` work runs in those forked workers when they were forked before the driver had loaded any library of
:data:`FORK_UNSAFE` (the usual case: the pool starts with the run's first stage), else in a second, started
(``spawn``) pool, also kept for the run. ``close()`` stops both.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, wait
from typing import Any, Callable, Sequence

from ..errors import ConfigError
from ..progress import NullProgress, Progress
from .resources import Resources

log = logging.getLogger(__name__)

# Libraries that do not survive a fork of a process that ran them (see ``fresh``): a forked pool serves ``fresh``
# work only when none of these was loaded in the driver when the pool forked.
FORK_UNSAFE: tuple[str, ...] = ("mediapipe",)

# What OpenMP/BLAS read when they load: a library a long-lived worker loads after its start gets the worker's share.
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# Executors by ``--executor`` name: "module:Class" imported only when chosen (Ray is an optional extra).
EXECUTORS: dict[str, str] = {
    "local": "reconstruct.executors.local:LocalExecutor",
    "ray": "reconstruct.executors.ray_executor:RayExecutor",
}


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask; all cores where there is none)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def worker_threads(jobs: int) -> int:
    """Threads each of ``jobs`` worker processes may use: the machine's cores shared out, at least 1."""
    return max(1, (os.cpu_count() or 1) // max(1, int(jobs)))


def limit_worker_threads(n: int, resources: Resources | None = None) -> None:
    """torch (when the driver had imported it) and BLAS/OpenMP use ``n`` threads in this process. Without it every
    ``--jobs`` worker starts as many threads as the machine has cores: with ``--jobs 2`` on a 2-core machine,
    2 torch threads per worker made per-frame work up to 100x slower (oversubscription). The threadpoolctl limit
    is kept alive in ``resources``."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(limits=n)
    if resources is not None:
        resources.keep("thread-limits", limits)


_WORKER: list[Resources] = []  # in a --jobs worker process: its Resources, set by the pool's initializer
_TORCH_THREADS: list[int] = []  # in a --jobs worker: its thread share while torch is not limited yet


def _init_worker(n_threads: int, driver: Resources) -> None:
    """Process-pool initializer: the worker's own empty cache (sharing the driver's plugin registry when forked)
    and its share of the cores, also for OpenMP/BLAS/torch loaded later by a later stage's work."""
    res = driver.fresh()
    _WORKER[:] = [res]
    for var in _THREAD_ENV:
        os.environ[var] = str(n_threads)
    _TORCH_THREADS[:] = [] if "torch" in sys.modules else [n_threads]
    # the module attribute, looked up at call time (tools/bench_jobs.py times the unlimited behaviour)
    sys.modules[__name__].limit_worker_threads(n_threads, res)


def _in_worker(fn: Callable[..., Any], item: Any, with_resources: bool) -> Any:
    if _TORCH_THREADS and "torch" in sys.modules:  # first imported by work after the worker started
        sys.modules["torch"].set_num_threads(_TORCH_THREADS.pop())
    if not with_resources:
        return fn(item)
    if not _WORKER:  # a pool made without our initializer
        _WORKER.append(Resources())
    return fn(item, _WORKER[0])


def _ready() -> bool:
    return True


class LocalExecutor:
    """Runs per-item work in this process (jobs=1), a thread pool (``threads=True``) or a process pool kept for the
    run (see the module docstring). ``map`` may be called from several threads at once: their work shares the same
    ``jobs`` workers.

    Args:
        jobs: workers (1: in process).
        components: the driver's plugin registry, handed to work through :class:`Resources`.
    """

    name = "local"

    def __init__(self, jobs: int = 1, components: Any = None) -> None:
        self.jobs = max(1, int(jobs))
        self.resources = Resources(components)
        self._pools: dict[str, ProcessPoolExecutor] = {}  # "fork" (clean or not), "spawn"
        self._fork_clean = False  # the fork pool was forked before the driver loaded a FORK_UNSAFE library
        self._closed = False
        self._lock = threading.Lock()
        # the threads that join the workers of pools let go (broken), told to stop, not yet awaited
        self._exiting: list[threading.Thread] = []

    def _await_exited(self) -> None:
        """Wait for the workers of pools let go earlier to have exited."""
        while self._exiting:
            self._exiting.pop().join()

    @classmethod
    def from_config(cls, config: Any, settings: Any = None, components: Any = None) -> "LocalExecutor":
        return cls(config.jobs, components)

    def close(self) -> None:
        """Stop the workers (waiting for them to exit) and release what this process's work cached."""
        with self._lock:
            pools, self._pools, self._closed = list(self._pools.values()), {}, True
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
        self._await_exited()
        self.resources.close()

    def _pool(self, fresh: bool) -> ProcessPoolExecutor:
        """The run's process pool for this work, started on first use."""
        with self._lock:
            if self._closed:  # no workers that nobody would stop
                raise RuntimeError("the executor was closed")
            fork = self._pools.get("fork")
            if fork is not None and getattr(fork, "_broken", False):
                fork = None
            clean_now = not any(m in sys.modules for m in FORK_UNSAFE)
            kind = "fork" if not fresh or (self._fork_clean if fork is not None else clean_now) else "spawn"
            pool = self._pools.get(kind)
            if pool is not None and not getattr(pool, "_broken", False):
                return pool
            if pool is not None:  # a worker died: the pool is unusable; let it go and start another
                self._let_go(self._pools.pop(kind))
            # each worker gets its share of the cores for torch and BLAS, not all of them. Collect garbage before
            # forking: a forked worker that frees objects whose threads live only in this process hangs (seen: a
            # Ray client left from an earlier --executor ray run in the same process, joining its RPC thread).
            self._await_exited()
            gc.collect()
            context = None
            if kind == "spawn":  # started processes: they rebuild the plugin registry from the installed plugins
                import multiprocessing

                context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(max_workers=self.jobs, initializer=_init_worker, mp_context=context,
                                       initargs=(worker_threads(self.jobs), self.resources))
            if kind == "fork":
                # fork every worker now (a forking pool starts them all on the first submit), while the state the
                # workers inherit is known
                self._fork_clean = clean_now
                pool.submit(_ready).result()
            self._pools[kind] = pool
            log.debug("started %d %s worker process(es) for the run", self.jobs, kind)
            return pool

    def _let_go(self, pool: ProcessPoolExecutor) -> None:
        # (the pool forgets its manager thread -- which joins the workers -- on shutdown: kept here)
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        if manager is not None:
            self._exiting.append(manager)

    def map(self, fn: Callable[..., Any], items: Sequence[Any], progress: Progress | None = None,
            description: str = "", threads: bool = False, resources: bool = False, fresh: bool = False) -> list[Any]:
        progress = progress or NullProgress()
        items = list(items)
        call = (lambda it: fn(it, self.resources)) if resources else fn
        with progress.task(description or getattr(fn, "__name__", "work"), total=len(items)) as task:
            if self.jobs == 1 or len(items) <= 1:
                out = []
                for it in items:
                    out.append(call(it))
                    task.advance()
                return out
            if threads:
                with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                    futs = [pool.submit(call, it) for it in items]
                    return self._collect(futs, task)
            pool = self._pool(fresh)
            futs = [pool.submit(_in_worker, fn, it, resources) for it in items]
            try:
                return self._collect(futs, task)
            except BaseException:
                # this call's work that has not started is dropped and what runs is awaited (the workers stay for
                # other work); a pool whose worker died is let go, the next map() starts another
                for f in futs:
                    f.cancel()
                wait(futs)
                with self._lock:
                    for kind, pool in list(self._pools.items()):
                        if getattr(pool, "_broken", False):
                            self._let_go(self._pools.pop(kind))
                raise

    @staticmethod
    def _collect(futs, task) -> list[Any]:
        out = []
        for f in futs:
            out.append(f.result())
            task.advance()
        return out


def make_executor(config: Any, settings: Any = None, components: Any = None) -> Any:
    """The executor named by ``config.executor`` (see :data:`EXECUTORS`), built with the run's parsed settings and
    the driver's plugin registry."""
    target = EXECUTORS.get(config.executor)
    if target is None:
        raise ConfigError(f"--executor {config.executor}: unknown; choose one of {', '.join(EXECUTORS)}")
    if config.address and config.executor == "local":
        raise ConfigError("--address needs a distributed executor", hint="add --executor ray")
    mod, cls = target.split(":")
    return getattr(importlib.import_module(mod), cls).from_config(config, settings, components)
