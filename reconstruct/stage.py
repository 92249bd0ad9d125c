"""The stage contract: what a stage plugin implements and what it sees while it runs.

A stage plugin imports from here (and from the core: :mod:`reconstruct.session`, :mod:`reconstruct.artifacts`,
:mod:`reconstruct.options`), never from the engine or from another plugin::

    from reconstruct.stage import StageContext

    @dataclass(frozen=True, slots=True)
    class Settings:
        strength: float = option(0.5, "how strongly to smooth, 0..1")

    class SmoothStage:
        name = "smooth"
        requires = ("composite",)
        version = "1"
        Settings = Settings

        def fingerprint(self, ctx):          # resolved choices and digests of raw files read; the engine adds
            return {}                        # the parsed settings and the upstream stages' keys itself

        def run(self, ctx, out):
            s = ctx.settings[self.name]      # the parsed Settings instance (--option smooth.strength=0.8)
            ...

The engine (:mod:`reconstruct.engine`) orders stages by ``requires``, parses every ``--option`` once before any
stage runs, skips a stage whose cache key is unchanged and moves a stage's temporary output folder onto
``out/<name>/`` only when ``run`` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Protocol, runtime_checkable

from .errors import StageError

if TYPE_CHECKING:  # pragma: no cover
    from .executors.resources import Resources
    from .options import RunSettings
    from .plugins import Components, PluginHost
    from .progress import Progress
    from .session import Session


@runtime_checkable
class Stage(Protocol):
    """One node of the ``reconstruct run`` graph.

    Attributes:
        name: stage name (``sync``, ``calibrate``, ...); its results live in ``out/<name>/`` and its options are
            ``--option <name>.KEY=VALUE``.
        requires: names of the stages whose outputs it reads.
        version: bump when the stage's output format or algorithm changes (part of the cache key).

    Optional class attributes: ``Settings`` (a frozen dataclass of the stage's options, see
    :mod:`reconstruct.options`; without it the stage takes no options), ``needs_method`` (True: skipped when the
    run has no ``--method``), ``runs_last`` (True: after every other stage, like the QC report),
    ``replaces`` (True: a third-party stage that takes the place of a built-in one of the same name) and
    ``leaves_cores_idle`` (True: it runs mostly in the driver on one core, like the fit; as it starts, the engine
    calls the optional ``prestart(ctx)`` of every stage still to run, which may start that stage's worker processes
    then with ``ctx.executor.prestart(name, warm)``; the engine releases those a stage did not take once it ran or
    was skipped).
    Optional method ``preload(ctx)``: imports (or other process-wide preparation that changes no result) the
    engine runs in the driver while the stage before this one waits for its ``--jobs`` workers (the fit stage
    imports torch there).

    ``fingerprint(ctx)`` returns a JSON-serialisable description of what the output depends on *besides* the
    stage's parsed settings and its upstream stages (which the engine adds): resolved choices (a model's name and
    hash, the renderer picked by ``auto``) and hashes of raw session files it reads. ``run(ctx, out)`` writes
    results into the folder ``out`` (a fresh temporary folder that becomes ``out/<name>/`` only when ``run``
    returns).
    """

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]
    version: ClassVar[str]

    def fingerprint(self, ctx: "StageContext") -> Any: ...
    def run(self, ctx: "StageContext", out: Path) -> None: ...


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
        executor: ``"local"`` (default) or another name in :data:`reconstruct.executors.EXECUTORS` (``"ray"``).
        address: cluster address for a distributed executor (``ray``: ``"auto"``, ``"ray://head:10001"``);
            None starts a local instance.
        options: the raw ``NAMESPACE.KEY -> text`` options as given (``--option`` and plugin CLI flags), read-only;
            the engine parses them into ``StageContext.settings``; provenance records them as given.
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


@dataclass
class StageContext:
    """What a stage sees while it runs.

    Attributes:
        session: the session folder (the one door to its files).
        config: the run's command-line settings.
        components: every plugin's registered components (``components.get("renderer", name)``).
        progress: progress reporting (a rich bar on the command line, silent in tests).
        executor: runs per-item work: ``map(fn, items, progress, description, threads=False, resources=False)``
            returns ``[fn(x) ...]`` in order (with ``resources=True``: ``fn(x, resources)``, the worker's
            :class:`~reconstruct.executors.resources.Resources`); in process, ``--jobs`` processes or Ray tasks.
        host: the plugin host (lifecycle hooks).
        settings: every namespace's parsed settings (``settings["fit"]``; see :mod:`reconstruct.options`).
        resources: this process's per-run cache of expensive objects (loaded models, detectors).
        memo: values computed once per run and shared by the stage's parts (e.g. the report's loaded data,
            which every report section reads).
    """

    session: "Session"
    config: RunConfig
    components: "Components"
    progress: "Progress"
    executor: Any
    host: "PluginHost"
    settings: "RunSettings"
    resources: "Resources"
    memo: dict[str, Any] = field(default_factory=dict)

    def stage_dir(self, stage: str) -> Path:
        """Completed output folder of an upstream stage (StageError when it has not completed)."""
        d = self.session.stage_dir(stage)
        if self.session.stage_record(stage) is None:
            raise StageError(f"stage {stage!r} has no completed output in {d}",
                             hint=f"run `reconstruct run {self.session.root} --only {stage}` or without --only")
        return d

    @property
    def device(self) -> str:
        return self.config.device
