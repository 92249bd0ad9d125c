"""Per-frame work as Ray tasks: ``reconstruct run SESSION --executor ray [--address ADDR]``.

Same interface as :class:`reconstruct.executors.local.LocalExecutor`: ``map(fn, items, progress, description, threads,
resources)`` returns ``[fn(x) for x in items]`` in item order (``fn(x, res)`` with ``resources=True``, ``res`` the
Ray worker process's own :class:`~reconstruct.executors.resources.Resources`). Items are cut into chunks (about four per worker CPU, at most
``chunk_size`` items) and each chunk runs as one Ray task, so a 5000-frame shot is a few hundred tasks, not 5000.

- ``fn`` and the items are pickled (cloudpickle) and shipped to the workers: make ``fn`` a module-level function
  (or a picklable object) and pass paths, not open files or arrays of the whole shot.
- Workers read and write the session themselves: on a cluster the session folder must be on storage every node
  mounts at the same path (NFS, Lustre, CephFS...). Results returned from ``fn`` travel back through Ray's object
  store; keep them small (a path, a few numbers).
- Results are identical to the local executor's when ``fn`` is deterministic per item (seed from the frame
  number, never from process state or a global RNG): chunking does not change what each call sees.
- Ray starts lazily, on the first ``map`` call, so a run whose stages are all up to date never starts it. Without
  ``--address`` a private local instance is started (``--jobs`` CPUs) and stopped at the end of the run; with
  ``--address auto`` or ``ray://head:10001`` the existing cluster is joined and left running.

Ray is an optional extra: ``pip install 'deage[ray]'``. Importing this module does not import Ray.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..errors import ConfigError, StageError
from ..options import option
from ..progress import NullProgress, Progress
from .resources import Resources

log = logging.getLogger(__name__)


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--executor ray needs Ray, which is not installed",
                          hint="pip install 'deage[ray]' (or ./dev setup, which installs it)") from exc
    return ray


@dataclass(frozen=True, slots=True)
class RaySettings:
    """``--option ray.KEY=VALUE``."""

    chunk_size: int = option(32, "largest number of work items per Ray task")
    task_cpus: float = option(1.0, "CPUs Ray reserves per task")

    def __post_init__(self) -> None:
        if self.chunk_size < 1 or self.task_cpus <= 0:
            raise ValueError("ray.chunk_size must be at least 1 and ray.task_cpus above 0")


_WORKER: list[Resources] = []  # in a Ray worker process: its Resources for the tasks it runs


def _run_chunk(fn: Callable[..., Any], chunk: Sequence[Any], with_resources: bool = False) -> list[Any]:
    if not with_resources:
        return [fn(x) for x in chunk]
    if not _WORKER:
        _WORKER.append(Resources())
    return [fn(x, _WORKER[0]) for x in chunk]


def chunked(items: Sequence[Any], n_chunks: int, max_size: int) -> list[list[Any]]:
    """Cut ``items`` into contiguous chunks: about ``n_chunks`` of them, none larger than ``max_size``."""
    if not items:
        return []
    size = max(1, min(max_size, math.ceil(len(items) / max(1, n_chunks))))
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


class RayExecutor:
    """Runs ``map`` as Ray tasks over chunks of items.

    Args:
        address: Ray cluster address (``"auto"``, ``"ray://host:10001"``) or None for a private local instance.
        jobs: CPUs of the private local instance (ignored when joining a cluster).
        chunk_size: largest number of items per task.
        task_cpus: CPUs Ray reserves per task (``num_cpus`` of the remote function).
    """

    name = "ray"

    def __init__(self, address: str | None = None, jobs: int = 1, chunk_size: int = 32, task_cpus: float = 1.0) -> None:
        self.address = address
        self.jobs = max(1, int(jobs))
        self.chunk_size = max(1, int(chunk_size))
        self.task_cpus = float(task_cpus)
        self._started = False
        self._remote = None

    @classmethod
    def from_config(cls, config: Any, settings: Any = None, components: Any = None) -> "RayExecutor":
        _import_ray()  # fail at start-up, not in the middle of a run
        rs = settings["ray"] if settings is not None and "ray" in settings else RaySettings()
        return cls(address=config.address, jobs=config.jobs, chunk_size=rs.chunk_size, task_cpus=rs.task_cpus)

    def _ensure(self):
        ray = _import_ray()
        if not ray.is_initialized():
            try:
                if self.address:
                    ray.init(address=self.address, log_to_driver=True)
                else:
                    ray.init(num_cpus=self.jobs, include_dashboard=False, log_to_driver=True,
                             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                                 p for p in (os.getcwd(), os.environ.get("PYTHONPATH", "")) if p)}})
            except Exception as exc:  # ConnectionError, RuntimeError, ... from Ray
                where = self.address or "a local instance"
                raise ConfigError(f"cannot start Ray on {where}: {type(exc).__name__}: {exc}",
                                  hint="check --address (`ray status` on the head node) or run without "
                                       "--executor ray") from exc
            self._started = True
            log.info("ray: %s", "joined " + self.address if self.address else f"started locally ({self.jobs} CPUs)")
        if self._remote is None:
            self._remote = ray.remote(num_cpus=self.task_cpus)(_run_chunk)
        return ray

    def cluster_cpus(self) -> int:
        ray = self._ensure()
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def map(self, fn: Callable[..., Any], items: Sequence[Any], progress: Progress | None = None,
            description: str = "", threads: bool = False, resources: bool = False, fresh: bool = False,
            prestarted: str | None = None) -> list[Any]:
        progress = progress or NullProgress()
        items = list(items)
        with progress.task(description or getattr(fn, "__name__", "work"), total=len(items)) as task:
            if not items:
                return []
            ray = self._ensure()
            chunks = chunked(items, 4 * self.cluster_cpus(), self.chunk_size)
            fn_ref = ray.put(fn)
            refs = [self._remote.remote(fn_ref, c, resources) for c in chunks]
            index = {r: i for i, r in enumerate(refs)}
            results: list[list[Any] | None] = [None] * len(refs)
            pending = list(refs)
            try:
                while pending:
                    done, pending = ray.wait(pending, num_returns=1)
                    for r in done:
                        i = index[r]
                        results[i] = ray.get(r)
                        task.advance(len(chunks[i]))
            except ray.exceptions.RayTaskError as exc:
                for r in pending:
                    ray.cancel(r)
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                raise StageError(f"a Ray task of {description or 'per-frame work'} failed: "
                                 f"{type(cause).__name__}: {cause}",
                                 hint="the traceback above is the worker's; rerun with --executor local to debug") from exc
            return [x for chunk in results for x in chunk]  # type: ignore[union-attr]

    def prestart(self, use: str, warm: Callable[..., None] | None = None) -> None:
        """Nothing: Ray keeps its own worker processes (see :meth:`.local.LocalExecutor.prestart`)."""

    def release(self, use: str, wait: bool = False) -> None:
        """Nothing: no workers are pre-started here."""

    def close(self) -> None:
        """Stop the private local instance (a joined cluster keeps running)."""
        if self._started and not self.address:
            import ray

            ray.shutdown()
        self._started = False
        self._remote = None
        # free Ray's client objects here, in the process whose threads they join: left as garbage, a process
        # forked later (a --jobs pool) would free them and hang joining a thread it does not have
        import gc

        gc.collect()
