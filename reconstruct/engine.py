"""``reconstruct run``: the stage graph, its content-addressed cache and the run loop.

Stages come from plugins (``register_stages``; the contract is :mod:`reconstruct.stage`). Before any stage runs,
every ``--option`` is parsed once against the Settings every stage, method and executor declares
(:mod:`reconstruct.options`): a misspelling stops the run with exit 2 whatever ``--only``/``--from`` say. Each
stage writes into a fresh temporary folder that is moved onto ``out/<stage>/`` only when the stage returns,
together with ``_stage.json`` holding its cache key: the hash of its name, version, parsed settings, fingerprint
and its upstream stages' keys (:func:`reconstruct.hashing.stage_key`). A stage whose key is unchanged is skipped;
a run killed mid-stage leaves the previous complete result (or none) and resumes from that stage. Executors live
in :mod:`reconstruct.executors`.
"""

from __future__ import annotations

import logging
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from .errors import ConfigError, DeageError, PluginError, SessionError, StageError
from .executors.frames import FrameSettings
from .executors.local import make_executor
from .hashing import stage_key
from .options import RunSettings, parse_run_options, settings_dict
from .plugins import Components, PluginHost
from .progress import NullProgress, Progress
from .session import STAGE_FILE, Session, atomic_replace_dir, atomic_write_json, wait_removals
from .stage import RunConfig, Stage, StageContext

log = logging.getLogger(__name__)


def engine_settings() -> dict[str, type]:
    """The engine's own option namespaces: ``frames`` (per-frame work) and ``ray`` (the Ray executor)."""
    from .executors.ray_executor import RaySettings  # imports no Ray

    return {"frames": FrameSettings, "ray": RaySettings}


def declared_settings(components: Components) -> dict[str, type | None]:
    """Every option namespace of this plugin set -> its Settings class (None: a plugin that declares none)."""
    out: dict[str, type | None] = dict(engine_settings())
    for kind in ("stage", "aging_method"):
        for name, comp in components.all(kind).items():
            if name in out:
                raise PluginError(f"the {kind.replace('_', ' ')} {name!r} has the name of another option namespace",
                                  hint="stages, methods and executors need distinct names")
            out[name] = getattr(comp, "Settings", None)
    return out


def parse_settings_for(config: RunConfig, components: Components) -> RunSettings:
    """Every ``--option`` of ``config`` parsed (ConfigError, exit 2, for any unknown or bad one)."""
    return parse_run_options(config.options, declared_settings(components))


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


@dataclass(frozen=True, slots=True)
class StageResult:
    name: str
    key: str
    skipped: bool
    seconds: float


def run_pipeline(config: RunConfig, host: PluginHost, progress: Progress | None = None,
                 executor: Any = None) -> list[StageResult]:
    """Run the stage graph on ``config.session``; returns one :class:`StageResult` per visited stage.

    Order of checks (nothing runs until all pass): the method exists, every option parses, ``--from``/``--only``
    name a stage, the session opens."""
    progress = progress or NullProgress()
    components = host.components()
    if config.method is not None:
        components.get("aging_method", config.method)  # fail early, listing the methods that exist
    settings = parse_settings_for(config, components)
    stages = _stages_by_name(components)
    order = topological_order(stages)
    # stages marked ``runs_last`` (the QC report) come after every other stage, in graph order among themselves
    order = [n for n in order if not getattr(stages[n], "runs_last", False)] + \
        [n for n in order if getattr(stages[n], "runs_last", False)]
    for opt, val in (("--from", config.from_stage), ("--only", config.only_stage)):
        if val is not None and val not in stages:
            raise ConfigError(f"{opt} {val}: no such stage; stages are {', '.join(order)}")
    session = Session.open(config.session)
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
    executor = make_executor(config, settings, components) if own_executor else executor
    resources = getattr(executor, "resources", None)
    if resources is None:
        from .executors.resources import Resources

        resources = Resources(components)
    ctx = StageContext(session=session, config=config, components=components, progress=progress,
                       executor=executor, host=host, settings=settings, resources=resources)
    keys: dict[str, str] = {}
    results: list[StageResult] = []
    ok = False
    try:
        with session.run_lock():
            for gone in session.remove_leftovers():
                log.info("removed %s, left by an interrupted run", gone)
            host.hook.on_run_start(config=config, stages=list(order))
            try:
                for i, name in enumerate(order):
                    later = [stages[n] for n in order[i + 1:]]
                    with _preloading(ctx, later[0] if later else None):
                        results.append(_run_stage(ctx, stages[name], keys, force=name in forced, later=later))
                    _release_workers(executor, name)  # pre-started for this stage, not taken by it
                ok = True
            finally:
                for name in order:  # none left running on an error (an executor passed in outlives the run)
                    _release_workers(executor, name)
                host.hook.on_run_complete(config=config, ok=ok)
    finally:
        if own_executor:
            executor.close()
        wait_removals()  # the replaced stage folders' deletion, overlapped with the stages after them
    return results


@contextmanager
def _preloading(ctx: StageContext, upcoming: Stage | None) -> Iterator[None]:
    """The upcoming stage's optional ``preload(ctx)`` (its imports: the fit stage's torch and open3d) runs while
    the stage before it waits for its process workers (:meth:`LocalExecutor.while_waiting`: in the driver's own
    thread, after their fork), not on the upcoming stage's own time; dropped where that stage forks no workers."""
    preload = getattr(upcoming, "preload", None)
    hand_over = getattr(ctx.executor, "while_waiting", None)
    if preload is None or hand_over is None:
        yield
        return

    def run() -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            preload(ctx)
        except Exception as exc:  # the stage itself meets (and reports) the same problem when it runs
            log.debug("stage %s: preload failed (%s: %s)", upcoming.name, type(exc).__name__, exc)
        log.debug("stage %s: preloaded in %.2f s (%.2f CPU-s)", upcoming.name, time.perf_counter() - t0,
                  time.process_time() - c0)

    hand_over(run)
    try:
        yield
    finally:
        hand_over(None)


def _all_requires(stages: Mapping[str, Stage], name: str) -> set[str]:
    out: set[str] = set()
    todo = list(stages[name].requires)
    while todo:
        r = todo.pop()
        if r not in out and r in stages:
            out.add(r)
            todo.extend(stages[r].requires)
    return out


def _release_workers(executor: Any, name: str) -> None:
    release = getattr(executor, "release", None)
    if callable(release):
        release(name)


def _prestart_later(ctx: StageContext, later: Sequence[Stage]) -> None:
    """Let the stages still to run in this run start their worker processes now (``prestart(ctx)``, optional):
    called as a stage that leaves cores idle (``leaves_cores_idle``) starts. A stage skipped later as up to date
    has them released by the engine."""
    for st in later:
        prestart = getattr(st, "prestart", None)
        if callable(prestart):
            try:
                prestart(ctx)
            except Exception as exc:  # noqa: BLE001 - the stage starts its workers itself when it runs
                log.warning("stage %s: starting its workers early failed: %s", st.name, exc)


def _run_stage(ctx: StageContext, stage: Stage, keys: dict[str, str], force: bool,
               later: Sequence[Stage] = ()) -> StageResult:
    session = ctx.session
    upstream = {}
    for r in stage.requires:
        k = keys.get(r) or session.stage_key(r)
        if k is None:
            raise StageError(f"stage {stage.name!r} needs the output of {r!r}, which has not been computed",
                             hint=f"run `reconstruct run {session.root}` without --only")
        upstream[r] = k
    own = ctx.settings[stage.name] if stage.name in ctx.settings else None
    key = stage_key(stage.name, stage.version, settings_dict(own), stage.fingerprint(ctx), upstream)
    keys[stage.name] = key
    final = session.stage_dir(stage.name)
    if not force and session.stage_key(stage.name) == key:
        log.info("stage %s: up to date (key %s), skipped", stage.name, key[:8])
        ctx.host.hook.on_stage_complete(ctx=ctx, stage=stage.name, skipped=True, seconds=0.0)
        return StageResult(stage.name, key, True, 0.0)
    tmp = final.with_name(f".{stage.name}.tmp")
    if tmp.exists():
        log.info("stage %s: removing partial output of an interrupted run", stage.name)
        shutil.rmtree(tmp)
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise SessionError(f"cannot write in {tmp.parent}: {exc.strerror}",
                           hint="the session folder must be writable by you: check its permissions") from exc
    log.info("stage %s: running", stage.name)
    t0 = time.perf_counter()
    if getattr(stage, "leaves_cores_idle", False):
        _prestart_later(ctx, later)
    try:
        stage.run(ctx, tmp)
    except DeageError:
        raise
    except Exception as exc:
        raise StageError(f"stage {stage.name!r} failed: {type(exc).__name__}: {exc}",
                         hint="rerun with -v for details; completed stages are kept and will not rerun") from exc
    dt = time.perf_counter() - t0
    # no fsync of its own: atomic_replace_dir flushes the whole folder, this file with it, before the rename
    atomic_write_json(tmp / STAGE_FILE, {"stage": stage.name, "version": stage.version, "key": key,
                                         "upstream": upstream, "seconds": round(dt, 3)}, sync=False)
    atomic_replace_dir(tmp, final)
    log.info("stage %s: done in %.2f s", stage.name, dt)
    ctx.host.hook.on_stage_complete(ctx=ctx, stage=stage.name, skipped=False, seconds=dt)
    return StageResult(stage.name, key, False, dt)
