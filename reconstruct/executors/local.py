"""The local executor (in process, a thread pool or a process pool) and the ``--executor`` registry.

Every executor has ``name``, ``from_config(config, settings, components)``, ``close()`` and
``map(fn, items, progress=None, description="", threads=False, resources=False, fresh=False)`` (the local one
also takes ``prestarted=``, below) returning
``[fn(x) ...]`` in item order -- ``fn(x, res)`` with ``resources=True``, ``res`` being the worker's per-run
:class:`~reconstruct.executors.resources.Resources`. ``fresh=True`` asks for worker processes that do not inherit
the driver's state (started, not forked): for work with a library that does not survive a fork of a process that
used it (MediaPipe: a forked worker of a driver that had run it crashes with "malloc(): unaligned tcache chunk").

Started workers cost ~0.9 CPU-s each (interpreter, imports, the work's resources) before their first item. A stage
that knows it will map such work later asks ``prestart(use, warm)`` while the cores have little else to do (the
engine asks it during a stage that leaves cores idle, :func:`reconstruct.engine.run_pipeline`): the workers start
and run ``warm(res)`` then, and the ``map(..., fresh=True, prestarted=use)`` call takes them. ``release(use)``
stops workers that were not taken (the engine releases a stage's after it ran or was skipped); ``close()`` stops
every one left. Executors without a pool of their own (Ray) answer ``prestart`` and ``release`` with nothing.
``start_early(use, fn, item)`` has one work item of a later stage ride on such pre-started workers (those started
already, else the next ``prestart``'s): it runs there after their warm-up, before the work they were started for,
and ``early_result(use)`` hands its future over (the age stage's method preparation; without pre-started workers --
Ray, one job, a short take -- it never runs and the stage does the work itself).
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
import threading
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from ..errors import ConfigError
from ..memory import keep_freed_memory
from ..progress import NullProgress, Progress
from .resources import Resources

log = logging.getLogger(__name__)

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


@contextmanager
def inherited_objects_frozen() -> Iterator[None]:
    """Processes forked inside this block never run the garbage collector over the objects they inherit: a forked
    worker that frees objects whose threads live only in this process hangs (seen: a Ray client left as garbage by
    an earlier ``--executor ray`` run in the same process, joining its RPC thread). The driver's objects are frozen
    (:func:`gc.freeze`: out of every collection) while the workers are forked, so the children hold them frozen, and
    thawed in the driver after, where its own collector frees its garbage as usual. This replaced a full
    ``gc.collect()`` before each fork: 0.06 s a stage with the plugins loaded, 0.12 s with torch and open3d. Where
    something else froze objects before (which a thaw here would release too), it collects as before."""
    if gc.get_freeze_count():
        gc.collect()
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


_WORKER: list[Resources] = []  # in a --jobs worker process: its Resources, set by the pool's initializer


def _init_worker(n_threads: int, driver: Resources, started: bool = False,
                 warm: Callable[[Resources], None] | None = None) -> None:
    """Process-pool initializer: the worker's own empty cache (sharing the driver's plugin registry when forked)
    and its share of the cores; a started (not forked) worker skips the interpreter's last garbage collections at
    exit (a forked one ends with ``os._exit`` already). ``warm(res)``: a pre-started worker's warm-up (imports,
    cached resources), run last."""
    keep_freed_memory()  # a frame's large arrays reuse the last frame's pages (reconstruct/memory.py)
    res = driver.fresh()
    _WORKER[:] = [res]
    # the module attribute, looked up at call time (tools/bench_jobs.py times the unlimited behaviour)
    sys.modules[__name__].limit_worker_threads(n_threads, res)
    if started:
        from ..lazy_imports import no_collection_at_exit

        no_collection_at_exit()
    if warm is not None:
        try:
            warm(res)
        except Exception as exc:  # noqa: BLE001 - what it prepares is made again by the work that needs it
            log.warning("warming a pre-started worker failed: %s", exc)


def _lost_a_worker(pool: ProcessPoolExecutor) -> bool:
    """Whether a worker of ``pool`` has died: the pool marks itself broken a moment after (its manager thread
    notices), so its processes are asked too. (ProcessPoolExecutor's own attributes: where they are missing, the
    answer is False and a dead worker fails the map with BrokenProcessPool, as before.)"""
    if getattr(pool, "_broken", False):
        return True
    return any(not p.is_alive() for p in dict(getattr(pool, "_processes", None) or {}).values())


def _started() -> None:
    """A no-op work item: submitting one per worker makes a started pool start all its workers now."""


def _in_worker(fn: Callable[..., Any], item: Any, with_resources: bool) -> Any:
    if not with_resources:
        return fn(item)
    if not _WORKER:  # a pool made without our initializer
        _WORKER.append(Resources())
    return fn(item, _WORKER[0])


class LocalExecutor:
    """Runs per-item work in this process (jobs=1), a thread pool (``threads=True``) or a process pool.

    Args:
        jobs: workers (1: in process).
        components: the driver's plugin registry, handed to work through :class:`Resources`.
    """

    name = "local"

    def __init__(self, jobs: int = 1, components: Any = None) -> None:
        self.jobs = max(1, int(jobs))
        self.resources = Resources(components)
        # the threads that join the workers of earlier map() calls' pools (told to stop, not yet awaited)
        self._exiting: list[threading.Thread] = []
        # use -> a pool of started workers that prestart() made for a later map(..., prestarted=use)
        self._prestarted: dict[str, ProcessPoolExecutor] = {}
        self._waiting: Callable[[], None] | None = None  # see while_waiting()
        self._early: dict[str, Future] = {}  # use -> the future of start_early()'s work item
        self._queued: dict[str, tuple[Callable, Any]] = {}  # use -> start_early()'s item, waiting for workers

    def _await_exited(self) -> None:
        """Wait for the workers of earlier ``map`` calls to have exited (by now they usually have)."""
        while self._exiting:
            self._exiting.pop().join()

    def while_waiting(self, fn: Callable[[], None] | None) -> None:
        """``fn()`` runs once, in this process and thread, while the next process pool's workers work: after they
        are forked, before their results are collected (the caller would only wait there). None drops a pending one.
        No thread is involved: nothing runs beside the fork. ``fn`` handles its own errors."""
        self._waiting = fn

    @classmethod
    def from_config(cls, config: Any, settings: Any = None, components: Any = None) -> "LocalExecutor":
        return cls(config.jobs, components)

    def close(self) -> None:
        """Stop the pre-started workers nothing took, release what this process's work cached and wait for the
        last ``map`` call's workers to have exited (other pools live only inside one ``map`` call)."""
        for use in list(self._prestarted):
            self.release(use, wait=True)
        self._await_exited()
        self.resources.close()

    def prestart(self, use: str, warm: Callable[[Resources], None] | None = None) -> None:
        """Start the workers of a later ``map(..., fresh=True, prestarted=use)`` now (started processes, one per
        job), each running ``warm(res)`` (a module-level function: it travels by name) once started. Nothing with
        one job, or when ``use`` has its workers already."""
        if self.jobs == 1 or use in self._prestarted:
            return
        pool = self._pool(started=True, warm=warm)
        self._prestarted[use] = pool
        for _ in range(self.jobs):  # a started pool starts one worker per submitted item while none is idle
            pool.submit(_started)
        for early in list(self._queued):
            fn, item = self._queued.pop(early)
            self._early[early] = pool.submit(_in_worker, fn, item, True)

    def start_early(self, use: str, fn: Callable[[Any, Resources], Any], item: Any) -> None:
        """``fn(item, res)`` (module-level, picklable) for a later stage ``use``, run on the workers
        :meth:`prestart` started (for another use: they are idle until their own work comes), now or as the next
        ones start; :meth:`early_result` takes its future. Nothing runs without pre-started workers (one job)."""
        if self.jobs == 1:
            return
        pool = next(iter(self._prestarted.values()), None)
        if pool is None:
            self._queued[use] = (fn, item)
        else:
            self._early[use] = pool.submit(_in_worker, fn, item, True)

    def early_result(self, use: str) -> Future | None:
        """The future of :meth:`start_early`'s item for ``use`` (once; None when it never started)."""
        self._queued.pop(use, None)
        return self._early.pop(use, None)

    def release(self, use: str, wait: bool = False) -> None:
        """Stop the workers pre-started for ``use`` if no ``map`` took them (they exit on their own; ``close``
        or the next ``map`` awaits them, ``wait=True`` here)."""
        self._early.pop(use, None)  # an item begun on another use's workers finishes there, unread
        self._queued.pop(use, None)
        pool = self._prestarted.pop(use, None)
        if pool is not None:
            self._shutdown(pool, wait)

    def _pool(self, started: bool = False, warm: Callable[[Resources], None] | None = None) -> ProcessPoolExecutor:
        """A pool of ``jobs`` worker processes: forked, or ``started`` (spawned) with ``warm(res)`` run in each."""
        import multiprocessing

        return ProcessPoolExecutor(max_workers=self.jobs, initializer=_init_worker,
                                   mp_context=multiprocessing.get_context("spawn") if started else None,
                                   initargs=(worker_threads(self.jobs), self.resources, started, warm))

    def _shutdown(self, pool: ProcessPoolExecutor, wait: bool) -> None:
        """Tell ``pool``'s workers to stop; without ``wait`` they exit on their own while the run goes on and the
        next ``map`` or ``close`` awaits them. (The pool forgets its manager thread -- which joins the workers --
        on shutdown: kept here.)"""
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=wait, cancel_futures=not wait)
        if not wait and manager is not None:
            self._exiting.append(manager)

    def map(self, fn: Callable[..., Any], items: Sequence[Any], progress: Progress | None = None,
            description: str = "", threads: bool = False, resources: bool = False, fresh: bool = False,
            prestarted: str | None = None) -> list[Any]:
        """``prestarted``: with ``fresh``, the name of workers :meth:`prestart` started for this call (taken when
        there; else started here)."""
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
            # each worker gets its share of the cores for torch and BLAS, not all of them. The previous call's
            # pool is awaited first: no thread of it is left running when this one forks. (The one exception: a
            # pool pre-started for a later stage keeps its manager and queue-feeder threads meanwhile; they only
            # wait on that pool's pipes and hold no lock a forked child takes -- Python 3.11, tests/executors.)
            self._await_exited()
            if fresh:  # started processes: they rebuild the plugin registry from the installed plugins
                pool = self._prestarted.pop(prestarted, None) if prestarted else None
                if pool is not None and _lost_a_worker(pool):  # a worker died while it waited
                    log.warning("a pre-started worker for %s died before its work came; starting new ones",
                                prestarted)
                    self._shutdown(pool, wait=True)
                    pool = None
                pool = pool if pool is not None else self._pool(started=True)
            else:
                pool = self._pool()
            done = False
            try:
                with inherited_objects_frozen():  # a forking pool forks its workers at the first submit
                    futs = [pool.submit(_in_worker, fn, it, resources) for it in items]
                waiting, self._waiting = self._waiting, None
                if waiting is not None:
                    waiting()
                out = self._collect(futs, task)
                done = True
                return out
            finally:
                # every result is in: the workers are told to stop and exit on their own (freeing a worker's
                # memory took 0.1-0.3 s per stage) while the stage finishes; the next map() or close() awaits
                # them. On an error every worker is awaited here, as the context manager did.
                self._shutdown(pool, wait=not done)

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
