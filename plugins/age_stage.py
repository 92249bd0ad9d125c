"""Built-in plugin ``age``: the age stage, which runs the chosen aging method on every output frame.

Output: ``out/age/<frame:06d>.npz`` per frame (:mod:`reconstruct.artifacts.edits`; an image edit is stored as the
crop of the plate it changes, ``FaceEdit.origin``) and ``out/age/edits.json``
(method, its description and settings, per-frame info). The method's trained assets live in
``out/methods/<method>/`` (``Session.method_dir``) so they survive reruns of the stage.

``prepare()`` runs once in the driver (``prepare_for_frames()`` where the method has it: what its ``apply()``
does not need may come back as :class:`~reconstruct.methods.SideWork`); the prepared method is pickled and the
frames go through ``ctx.executor.map`` in chunks of ``--option frames.chunk=N`` (default 8) consecutive frames, each
chunk applied in order by a fresh copy of the prepared method (in process, ``--jobs`` processes or Ray tasks: same
files), with the side work as the same map's first items (so it runs on a worker beside the frames, not before
them) and its results handed to the method's ``finish_side_work()``. A method whose frames depend on earlier ones
declares ``sequential`` and gets one chunk holding every frame.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconstruct import hookimpl
from reconstruct.artifacts import edit_path, save_edit
from reconstruct.executors.frames import frame_chunks, use_threads
from reconstruct.methods import MethodContext, SideWork, check_consent, frame_inputs, method_context
from reconstruct.options import settings_dict
from reconstruct.progress import NullProgress
from reconstruct.provenance import hand_over_digests
from reconstruct.session import atomic_write_json
from reconstruct.stage import StageContext

log = logging.getLogger(__name__)


def stage_method_context(ctx: StageContext, with_fits: bool = True) -> MethodContext:
    """The context the run's method sees in the driver (with the run's executor, for its ``prepare``);
    ``with_fits=False``: without the fit stage's result (before it has run)."""
    return method_context(ctx.session, ctx.config.method, device=ctx.device, progress=ctx.progress,
                          components=ctx.components, settings=ctx.settings, options=ctx.config.options,
                          resources=ctx.resources, executor=getattr(ctx, "executor", None), with_fits=with_fits)


@dataclass(frozen=True, slots=True)
class AgeChunk:
    """One work item of the age stage (picklable: it travels to ``--jobs`` processes and Ray tasks).

    Attributes:
        root: session folder (on storage every worker sees).
        out: the stage's output folder being written.
        frames: output frame numbers of this chunk, in order.
        method: the prepared method, pickled (bytes), or its class when it cannot be pickled (each work item then
            builds it and calls ``prepare()``, which loads what the driver's call cached in the work dir).
        method_name: registered name (its work dir ``out/methods/<name>``).
        settings: the run's parsed settings (:class:`~reconstruct.options.RunSettings`).
        options: the run's raw ``--option`` values (for methods without a Settings class).
        device: ``"cpu"`` or ``"cuda"``.
    """

    root: str
    out: str
    frames: tuple[int, ...]
    method: Any
    method_name: str
    settings: Any
    options: dict
    device: str


def age_chunk(job: AgeChunk, res) -> tuple[dict[int, dict], dict[str, tuple[str, int]]]:
    """Apply the method to the frames of one chunk in order and write ``<frame>.npz`` for each; returns per-frame
    info and ``{str(path): (sha256, bytes)}`` of the files written (for the session manifest). Each chunk starts
    from a fresh copy of the prepared method, so a result never depends on which process ran the previous chunk.
    Module-level so that ``ctx.executor.map`` can ship it to workers."""
    session = res.session(job.root)
    mctx = method_context(session, job.method_name, device=job.device, progress=NullProgress(),
                          components=res.components, settings=job.settings, options=job.options, resources=res,
                          roi_edits=True)
    if isinstance(job.method, bytes):
        method = pickle.loads(job.method)
    else:  # the method class: build and prepare a copy here (prepare() loads what the driver's call cached)
        method = job.method()
        method.prepare(mctx)
    infos, digests = {}, {}
    for fin in frame_inputs(session, mctx, job.frames):
        edit = method.apply(mctx, fin)
        if edit.kind == "image":  # only the region it changes travels on (a plate-sized edit is cut down)
            edit.check_fits(fin.plate.shape)
            edit = edit.cropped()
        path = edit_path(Path(job.out), fin.frame)
        digests[str(path)] = save_edit(edit, path, sync=False)  # the stage's folder: flushed at its commit
        infos[fin.frame] = dict(edit.info)
    return infos, digests


def age_work(job: "AgeChunk | SideWork", res) -> Any:
    """One item of the age stage's map: a chunk of frames (:func:`age_chunk`) or the method's side work. The
    plotting modules open3d and MediaPipe import at their top are loaded only if something uses them
    (:func:`reconstruct.lazy_imports.defer_plotting_imports`: open3d's plotly/dash viewer was 0.25-1.0 CPU-s of
    each worker's start, for a ray caster)."""
    from reconstruct.lazy_imports import defer_plotting_imports

    defer_plotting_imports()
    return job.fn(job.item, res) if isinstance(job, SideWork) else age_chunk(job, res)


def prepare_for_frames(method, mctx: MethodContext) -> list[SideWork]:
    """The method prepared for its frames: its side work (``prepare_for_frames``), or ``prepare()`` and none."""
    hook = getattr(method, "prepare_for_frames", None)
    if hook is None:
        method.prepare(mctx)
        return []
    return list(hook(mctx))


def fit_model(ctx: StageContext) -> str | None:
    """The registered name of the face model the fit stage fits (its ``face_model_name(ctx)``; None: a fit stage
    without one)."""
    name = getattr(ctx.components.all("stage").get("fit"), "face_model_name", None)
    return name(ctx) if callable(name) else None


@dataclass(frozen=True, slots=True)
class AgeSettings:
    """The age stage takes no options of its own: the method's are ``--option <method>.KEY=VALUE``."""


def is_sequential(method, mctx: MethodContext) -> bool:
    seq = getattr(method, "sequential", False)
    return bool(seq(mctx) if callable(seq) else seq)


class AgeStage:
    name = "age"
    requires: tuple[str, ...] = ("sync", "fit")
    version = "4"  # 4: image edits stored as their crop (origin), 16-bit, uncompressed; 3: keep, landmark_shift, blend
    needs_method = True
    Settings = AgeSettings

    def _method(self, ctx: StageContext):
        method = ctx.components.get("aging_method", ctx.config.method)()
        check_consent(ctx.session, method)
        return method

    def fingerprint(self, ctx: StageContext):
        method = self._method(ctx)
        mctx = stage_method_context(ctx)
        own = ctx.settings[method.name] if method.name in ctx.settings else None
        return {"method": method.name, "method_settings": settings_dict(own),
                "settings": dict(method.settings(mctx)),
                "consent": [c.performer for c in ctx.session.meta.consent],
                "chunk": 0 if is_sequential(method, mctx) else ctx.settings["frames"].chunk}

    def prestart(self, ctx: StageContext) -> None:
        """Start the method's optional ``early_work(mctx, model)`` -- preparation that needs nothing of the take's
        fit, for the face model ``model`` the fit stage uses -- on the workers pre-started for later stages (the
        report's), idle while an earlier stage leaves cores idle (:meth:`~reconstruct.executors.local.
        LocalExecutor.start_early`; executors without it, one job, no such workers: nothing). :meth:`run` hands its
        future to the method (``method.early``). A problem here is the method's to report when it prepares. Nothing
        early on a CUDA device: the work would open a second CUDA context in a started report worker."""
        start = getattr(ctx.executor, "start_early", None)
        if not callable(start) or getattr(ctx.executor, "jobs", 1) == 1 or use_threads(ctx.device):
            return
        try:
            model = fit_model(ctx)
            method = self._method(ctx)
            early = getattr(method, "early_work", None) if model is not None else None
            # without the fit's result: what is on disk now is the previous run's, and the work needs none of it
            work = early(stage_method_context(ctx, with_fits=False), model) if early else None
        except Exception as exc:  # noqa: BLE001 - the stage meets (and reports) the same problem when it runs
            log.debug("age: no early work (%s: %s)", type(exc).__name__, exc)
            return
        if work is not None:
            start(self.name, work.fn, work.item)
            log.debug("age: %s's early work handed to the pre-started workers", method.name)

    def run(self, ctx: StageContext, out: Path) -> None:
        method = self._method(ctx)
        take = getattr(ctx.executor, "early_result", None)
        early = take(self.name) if callable(take) else None
        if early is not None:  # prestart's work: the method takes its result as it prepares
            method.early = early
        mctx = stage_method_context(ctx)
        # once, in the driver (training, caches); the workers get the prepared object, and the side work
        side = prepare_for_frames(method, mctx)
        frames = [fs.frame for fs in ctx.session.read_sync()]
        sequential = is_sequential(method, mctx)
        chunks = [tuple(frames)] if sequential else frame_chunks(frames, ctx.settings["frames"].chunk)
        try:
            packed: Any = pickle.dumps(method)
        except Exception as exc:  # noqa: BLE001 - any pickling failure: workers prepare their own copy
            log.warning("age: the prepared %s cannot be pickled (%s: %s); every work item builds the method and "
                        "calls prepare() itself (from its cache in %s)", method.name, type(exc).__name__, exc,
                        mctx.work_dir)
            packed = type(method)
        jobs = [AgeChunk(str(ctx.session.root), str(out), c, packed, ctx.config.method, ctx.settings,
                         dict(ctx.config.options), ctx.device) for c in chunks]
        infos: dict[int, dict] = {}
        digests: dict[str, tuple[str, int]] = {}
        what = f"age ({method.name}, {len(frames)} frames" + (f", {len(side)} side work)" if side else ")")
        parts = ctx.executor.map(age_work, [*side, *jobs], ctx.progress, what, threads=use_threads(ctx.device),
                                 resources=True)
        for part, written in parts[len(side):]:
            infos.update(part)
            digests.update(written)
        hand_over_digests(ctx, self.name, out, digests)  # the manifest's entries without reading 123 MB again
        if side:
            method.finish_side_work(mctx, parts[:len(side)])
        atomic_write_json(out / "edits.json", {"method": method.name, "description": method.describe(),
                                                "identity_changing": method.identity_changing,
                                                "settings": {**settings_dict(mctx.settings),
                                                             **dict(method.settings(mctx))},
                                                "frames": infos, "sequential": sequential})


@hookimpl
def register_stages():
    return [AgeStage()]
