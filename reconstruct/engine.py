"""``reconstruct run``: the stage graph, its content-addressed cache, and executors.

Stages come from plugins (``register_stages``). Each stage writes into a fresh temporary folder that is moved onto
``out/<stage>/`` only when the stage returns, together with ``_stage.json`` holding its cache key: the hash of
its name, version, fingerprint (settings + raw inputs it reads) and its upstream stages' keys. A stage whose key
is unchanged is skipped; a run killed mid-stage leaves the previous complete result (or none) and resumes from
that stage.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, Sequence

from .components import Stage
from .errors import ConfigError, DeageError, StageError
from .plugins import Components, PluginHost
from .progress import NullProgress, Progress
from .session import Session, atomic_replace_dir, atomic_write_json

log = logging.getLogger(__name__)

STAGE_FILE = "_stage.json"


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Settings of one ``reconstruct run``, parsed once from the command line.

    Attributes:
        session: session folder.
        method: aging method name (None: stages that need a method are skipped).
        device: resolved device, ``"cpu"`` or ``"cuda"``.
        jobs: worker processes/threads for per-frame work (1 = in process).
        from_stage: force this stage and everything downstream to rerun.
        only_stage: run just this stage (its inputs must exist).
        executor: ``"local"`` (default) or another name in :data:`EXECUTORS` (``"ray"``).
        address: cluster address for a distributed executor (``ray``: ``"auto"``, ``"ray://head:10001"``);
            None starts a local instance.
        options: method/stage options (``--young-refs`` ...), read-only.
    """

    session: Path
    method: str | None = None
    device: str = "cpu"
    jobs: int = 1
    from_stage: str | None = None
    only_stage: str | None = None
    executor: str = "local"
    address: str | None = None
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


def worker_threads(jobs: int) -> int:
    """Threads each of ``jobs`` worker processes may use: the machine's cores shared out, at least 1."""
    return max(1, (os.cpu_count() or 1) // max(1, int(jobs)))


_THREAD_LIMITS: list = []  # keeps threadpoolctl's limits alive in a worker process


def limit_worker_threads(n: int) -> None:
    """Process-pool initializer: torch (when the driver had imported it) and BLAS/OpenMP use ``n`` threads in
    this worker. Without it every worker starts as many threads as the machine has cores: with ``--jobs 2`` on a
    2-core machine, 2 torch threads per worker made per-frame work up to 100x slower (oversubscription)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with the scientific stack
        return
    _THREAD_LIMITS.append(threadpool_limits(limits=n))


class LocalExecutor:
    """Runs per-item work in this process (jobs=1), a thread pool (``threads=True``) or a process pool."""

    name = "local"

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = max(1, int(jobs))

    @classmethod
    def from_config(cls, config: "RunConfig") -> "LocalExecutor":
        return cls(config.jobs)

    def close(self) -> None:
        """Nothing to release (pools live only inside one ``map`` call)."""

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], progress: Progress | None = None,
            description: str = "", threads: bool = False) -> list[Any]:
        progress = progress or NullProgress()
        with progress.task(description or getattr(fn, "__name__", "work"), total=len(items)) as task:
            if self.jobs == 1 or len(items) <= 1:
                out = []
                for it in items:
                    out.append(fn(it))
                    task.advance()
                return out
            if threads:
                pool = ThreadPoolExecutor(max_workers=self.jobs)
            else:  # each worker gets its share of the cores for torch and BLAS, not all of them (see below)
                # collect garbage before forking: a forked worker that frees objects whose threads live only in
                # this process hangs (seen: a Ray client left from an earlier --executor ray run in the same
                # process, joining its RPC thread from the worker's garbage collector)
                gc.collect()
                pool = ProcessPoolExecutor(max_workers=self.jobs, initializer=limit_worker_threads,
                                           initargs=(worker_threads(self.jobs),))
            with pool:
                futs = [pool.submit(fn, it) for it in items]
                out = []
                for f in futs:
                    out.append(f.result())
                    task.advance()
                return out


# Executors by ``--executor`` name: "module:Class" imported only when chosen (Ray is an optional extra). Each
# class has ``name``, ``from_config(config)``, ``map(fn, items, progress, description, threads)`` returning
# results in item order, and ``close()``.
EXECUTORS: dict[str, str] = {
    "local": "reconstruct.engine:LocalExecutor",
    "ray": "reconstruct.executors.ray_executor:RayExecutor",
}


def make_executor(config: RunConfig) -> Any:
    """The executor named by ``config.executor`` (see :data:`EXECUTORS`)."""
    import importlib

    target = EXECUTORS.get(config.executor)
    if target is None:
        raise ConfigError(f"--executor {config.executor}: unknown; choose one of {', '.join(EXECUTORS)}")
    if config.address and config.executor == "local":
        raise ConfigError("--address needs a distributed executor", hint="add --executor ray")
    mod, cls = target.split(":")
    return getattr(importlib.import_module(mod), cls).from_config(config)


@dataclass
class StageContext:
    """What a stage sees while it runs."""

    session: Session
    config: RunConfig
    components: Components
    progress: Progress
    executor: Any  # LocalExecutor or another EXECUTORS entry: map(fn, items, progress, description, threads)
    host: PluginHost

    def stage_dir(self, stage: str) -> Path:
        """Completed output folder of an upstream stage."""
        d = self.session.stage_dir(stage)
        if not (d / STAGE_FILE).exists():
            raise StageError(f"stage {stage!r} has no completed output in {d}",
                             hint=f"run `reconstruct run {self.session.root} --only {stage}` or without --only")
        return d

    @property
    def device(self) -> str:
        return self.config.device


def parse_flag(value: Any) -> bool:
    """An ``--option`` on/off value: 1, true, yes, on (any case) are true."""
    return str(value).lower() in ("1", "true", "yes", "on")


def choice(*allowed: str) -> Callable[[Any], str]:
    """A cast for ``--option`` values that must be one of ``allowed``."""
    def cast(value: Any) -> str:
        if str(value) not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return str(value)
    return cast


def stage_options(raw: Mapping[str, Any], stage: str, casts: Mapping[str, Callable[[Any], Any]]) -> dict[str, Any]:
    """The ``--option STAGE.KEY=VALUE`` entries of one stage, each cast by ``casts[KEY]``. An unknown key or a value
    that does not cast is a ConfigError that lists the known keys."""
    prefix = stage + "."
    out: dict[str, Any] = {}
    for key, val in dict(raw).items():
        if not key.startswith(prefix):
            continue
        k = key[len(prefix):]
        if k not in casts:
            raise ConfigError(f"--option {key}: unknown {stage} option", hint=f"known: {', '.join(casts)}")
        try:
            out[k] = casts[k](val)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"--option {key}={val}: bad value ({exc})") from exc
    return out


def file_digest(paths: Iterable[Path]) -> str:
    """sha256 over the names and bytes of files (for stage fingerprints of raw inputs)."""
    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        h.update(str(p.name).encode())
        if p.exists():
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        else:
            h.update(b"<missing>")
    return h.hexdigest()


def _stages_by_name(components: Components) -> dict[str, Stage]:
    return dict(components.all("stage"))


def topological_order(stages: Mapping[str, Stage]) -> list[str]:
    """Stage names, each after all it requires. Raises ConfigError on a missing requirement or a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(n: str, chain: tuple[str, ...]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            raise ConfigError(f"stage graph has a cycle: {' -> '.join(chain + (n,))}")
        if n not in stages:
            raise ConfigError(f"stage {chain[-1]!r} requires stage {n!r}, which no plugin provides",
                              hint="`reconstruct plugins` lists what is loaded; is a plugin disabled?")
        state[n] = 1
        for r in stages[n].requires:
            visit(r, chain + (n,))
        state[n] = 2
        order.append(n)

    for n in stages:
        visit(n, ())
    return order


def downstream(stages: Mapping[str, Stage], root: str) -> set[str]:
    out = {root}
    changed = True
    while changed:
        changed = False
        for n, s in stages.items():
            if n not in out and any(r in out for r in s.requires):
                out.add(n)
                changed = True
    return out


def stage_key(stage: Stage, fingerprint: Any, upstream_keys: Mapping[str, str]) -> str:
    blob = json.dumps({"stage": stage.name, "version": stage.version, "fingerprint": fingerprint,
                       "upstream": dict(sorted(upstream_keys.items()))}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def read_stage_key(session: Session, name: str) -> str | None:
    f = session.stage_dir(name) / STAGE_FILE
    if not f.exists():
        return None
    try:
        return json.loads(f.read_text())["key"]
    except (ValueError, KeyError):
        return None


@dataclass(frozen=True, slots=True)
class StageResult:
    name: str
    key: str
    skipped: bool
    seconds: float


def run_pipeline(config: RunConfig, host: PluginHost, progress: Progress | None = None,
                 executor: Any = None) -> list[StageResult]:
    """Run the stage graph on ``config.session``; returns one :class:`StageResult` per visited stage."""
    progress = progress or NullProgress()
    session = Session.open(config.session)
    components = host.components()
    if config.method is not None:
        components.get("aging_method", config.method)  # fail early, listing the methods that exist
    stages = _stages_by_name(components)
    order = topological_order(stages)
    # stages marked ``runs_last`` (the QC report) come after every other stage, in graph order among themselves
    order = [n for n in order if not getattr(stages[n], "runs_last", False)] + \
        [n for n in order if getattr(stages[n], "runs_last", False)]
    for opt, val in (("--from", config.from_stage), ("--only", config.only_stage)):
        if val is not None and val not in stages:
            raise ConfigError(f"{opt} {val}: no such stage; stages are {', '.join(order)}")
    if config.only_stage:
        order = [config.only_stage]
    forced = downstream(stages, config.from_stage) if config.from_stage else set()
    if config.only_stage:
        forced = {config.only_stage}
    if config.method is None:
        skipped_for_method = [n for n in order if getattr(stages[n], "needs_method", False)]
        if skipped_for_method:
            log.info("no --method given: skipping %s", ", ".join(skipped_for_method))
        order = [n for n in order if n not in skipped_for_method
                 and not any(r in skipped_for_method for r in _all_requires(stages, n))]
    own_executor = executor is None
    executor = make_executor(config) if own_executor else executor
    ctx = StageContext(session=session, config=config, components=components, progress=progress,
                       executor=executor, host=host)
    host.hook.on_run_start(config=config, stages=list(order))
    keys: dict[str, str] = {}
    results: list[StageResult] = []
    ok = False
    try:
        for name in order:
            results.append(_run_stage(ctx, stages[name], keys, force=name in forced))
        ok = True
    finally:
        if own_executor:
            executor.close()
        host.hook.on_run_complete(config=config, ok=ok)
    return results


def _all_requires(stages: Mapping[str, Stage], name: str) -> set[str]:
    out: set[str] = set()
    todo = list(stages[name].requires)
    while todo:
        r = todo.pop()
        if r not in out and r in stages:
            out.add(r)
            todo.extend(stages[r].requires)
    return out


def _run_stage(ctx: StageContext, stage: Stage, keys: dict[str, str], force: bool) -> StageResult:
    session = ctx.session
    upstream = {}
    for r in stage.requires:
        k = keys.get(r) or read_stage_key(session, r)
        if k is None:
            raise StageError(f"stage {stage.name!r} needs the output of {r!r}, which has not been computed",
                             hint=f"run `reconstruct run {session.root}` without --only")
        upstream[r] = k
    key = stage_key(stage, stage.fingerprint(ctx), upstream)
    keys[stage.name] = key
    final = session.stage_dir(stage.name)
    if not force and read_stage_key(session, stage.name) == key:
        log.info("stage %s: up to date (key %s), skipped", stage.name, key[:8])
        ctx.host.hook.on_stage_complete(ctx=ctx, stage=stage.name, skipped=True, seconds=0.0)
        return StageResult(stage.name, key, True, 0.0)
    tmp = final.with_name(f".{stage.name}.tmp")
    if tmp.exists():
        log.info("stage %s: removing partial output of an interrupted run", stage.name)
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    log.info("stage %s: running", stage.name)
    t0 = time.perf_counter()
    try:
        stage.run(ctx, tmp)
    except DeageError:
        raise
    except Exception as exc:
        raise StageError(f"stage {stage.name!r} failed: {type(exc).__name__}: {exc}",
                         hint="rerun with -v for details; completed stages are kept and will not rerun") from exc
    dt = time.perf_counter() - t0
    atomic_write_json(tmp / STAGE_FILE, {"stage": stage.name, "version": stage.version, "key": key,
                                         "upstream": upstream, "seconds": round(dt, 3)})
    atomic_replace_dir(tmp, final)
    log.info("stage %s: done in %.2f s", stage.name, dt)
    ctx.host.hook.on_stage_complete(ctx=ctx, stage=stage.name, skipped=False, seconds=dt)
    return StageResult(stage.name, key, False, dt)
