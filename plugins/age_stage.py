"""Built-in plugin ``age``: the age stage, which runs the chosen aging method on every output frame.

Output: ``out/age/<frame:06d>.npz`` per frame (the :class:`reconstruct.methods.FaceEdit` arrays) and
``out/age/edits.json`` (method, its description and settings, per-frame info). The method's trained assets live in
``out/methods/<method>/`` so they survive reruns of the stage.

``prepare()`` runs once in the driver; the prepared method is pickled and the frames go through
``ctx.executor.map`` in chunks of ``--option frames.chunk=N`` (default 8) consecutive frames, each chunk applied in
order by a fresh copy of the prepared method (in process, ``--jobs`` processes or Ray tasks: same files). A method
whose frames depend on earlier ones declares ``sequential`` and gets one chunk holding every frame.
"""

from __future__ import annotations

import json
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reconstruct import hookimpl
from reconstruct.engine import StageContext
from reconstruct.executors.frames import (chunk_size, frame_chunks, register_components, save_npz, use_threads,
                                          worker_components)
from reconstruct.methods import FaceEdit, FrameInput, MethodContext, check_consent
from reconstruct.session import atomic_write_json

log = logging.getLogger(__name__)


def load_edit(path: Path) -> FaceEdit:
    d = np.load(path, allow_pickle=False)
    get = lambda k: d[k] if k in d.files else None  # noqa: E731
    return FaceEdit(frame=int(d["frame"]), kind=str(d["kind"]), image=get("image"), mask=get("mask"),
                    vertices=get("vertices"), vertex_albedo=get("vertex_albedo"), albedo_texture=get("albedo_texture"),
                    info=json.loads(str(d["info"])))


def save_edit(edit: FaceEdit, path: Path) -> None:
    arrays = {k: getattr(edit, k) for k in ("image", "mask", "vertices", "vertex_albedo", "albedo_texture")
              if getattr(edit, k) is not None}
    save_npz(path, frame=np.asarray(edit.frame), kind=np.asarray(edit.kind),
             info=np.asarray(json.dumps(dict(edit.info), sort_keys=True)), **arrays)


def _cameras(s) -> dict:
    if not s.calibration_path.exists():
        return {}
    from reconstruct.camera import CameraModel

    raw = s.read_calibration().get("cameras", [])
    # calibration.json keys cameras by name (reconstruct.calibration.result); a list of records is accepted too
    items = raw.items() if isinstance(raw, dict) else ((c["name"], c) for c in raw)
    return {n: CameraModel.from_dict({**c, "name": c.get("name", n)}) for n, c in items}


def build_method_context(session, options, device: str, method: str, progress, components) -> MethodContext:
    """The context a method sees (fits and cameras when those stages exist); also built inside workers."""
    from reconstruct.fitting.result import load_fits

    fit_dir = session.stage_dir("fit")
    fits = load_fits(fit_dir / "fits.npz") if (fit_dir / "fits.npz").exists() else None
    work = session.root / "out" / "methods" / (method or "_none")
    if method:
        work.mkdir(parents=True, exist_ok=True)
    return MethodContext(session=session, options=options, device=device, work_dir=work, progress=progress,
                         components=components, fits=fits, cameras=_cameras(session))


def method_context(ctx: StageContext) -> MethodContext:
    """Build the context a method sees (fits and cameras when those stages exist)."""
    return build_method_context(ctx.session, ctx.config.options, ctx.device, ctx.config.method, ctx.progress,
                                ctx.components)


def frame_inputs(session, mctx: MethodContext, frames=None):
    """Yield a FrameInput per output frame (hero plate from sync.csv, fit and hero camera when available);
    ``frames``: only these output frame numbers (None: all)."""
    hero = session.rig.hero.name
    records = {r.index: r for r in session.frames(hero)}
    fits = mctx.fits
    fit_rows = {int(f): i for i, f in enumerate(fits.frames)} if fits is not None else {}
    wanted = None if frames is None else set(frames)
    for fs in session.read_sync():
        if wanted is not None and fs.frame not in wanted:
            continue
        idx = fs.indices.get(hero)
        if idx is None or idx not in records:
            continue
        plate = session.read_image(hero, records[idx])
        if plate.ndim == 2:
            plate = np.repeat(plate[..., None], 3, axis=2)
        fit = fits.frame(fit_rows[fs.frame]) if fs.frame in fit_rows else None
        yield FrameInput(frame=fs.frame, plate=plate, fit=fit, hero=mctx.cameras.get(hero))


def iter_frames(ctx: StageContext, mctx: MethodContext):
    """:func:`frame_inputs` of every output frame of the run's session."""
    return frame_inputs(ctx.session, mctx)


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
        options: the run's ``--option`` values.
        device: ``"cpu"`` or ``"cuda"``.
    """

    root: str
    out: str
    frames: tuple[int, ...]
    method: Any
    method_name: str
    options: dict
    device: str


def age_chunk(job: AgeChunk) -> dict[int, dict]:
    """Apply the method to the frames of one chunk in order and write ``<frame>.npz`` for each; returns per-frame
    info. Each chunk starts from a fresh copy of the prepared method, so a result never depends on which
    process ran the previous chunk. Module-level so that ``ctx.executor.map`` can ship it to workers."""
    from reconstruct.progress import NullProgress
    from reconstruct.session import Session

    session = Session.open(job.root)
    mctx = build_method_context(session, job.options, job.device, job.method_name, NullProgress(),
                                worker_components())
    if isinstance(job.method, bytes):
        method = pickle.loads(job.method)
    else:  # the method class: build and prepare a copy here (prepare() loads what the driver's call cached)
        method = job.method()
        method.prepare(mctx)
    infos = {}
    for fin in frame_inputs(session, mctx, job.frames):
        edit = method.apply(mctx, fin)
        save_edit(edit, Path(job.out) / f"{fin.frame:06d}.npz")
        infos[fin.frame] = dict(edit.info)
    return infos


def is_sequential(method, mctx: MethodContext) -> bool:
    seq = getattr(method, "sequential", False)
    return bool(seq(mctx) if callable(seq) else seq)


class AgeStage:
    name = "age"
    requires: tuple[str, ...] = ("sync", "fit")
    version = "2"
    needs_method = True

    def fingerprint(self, ctx: StageContext):
        method = ctx.components.get("aging_method", ctx.config.method)()
        check_consent(ctx.session, method)
        mctx = method_context(ctx)
        return {"method": method.name, "settings": dict(method.settings(mctx)),
                "consent": [c.performer for c in ctx.session.meta.consent],
                "chunk": 0 if is_sequential(method, mctx) else chunk_size(ctx.config.options)}

    def run(self, ctx: StageContext, out: Path) -> None:
        method = ctx.components.get("aging_method", ctx.config.method)()
        check_consent(ctx.session, method)
        mctx = method_context(ctx)
        method.prepare(mctx)  # once, in the driver (training, caches); the workers get the prepared object
        frames = [fs.frame for fs in ctx.session.read_sync()]
        sequential = is_sequential(method, mctx)
        chunks = [tuple(frames)] if sequential else frame_chunks(frames, chunk_size(ctx.config.options))
        try:
            packed: Any = pickle.dumps(method)
        except Exception as exc:  # noqa: BLE001 - any pickling failure: workers prepare their own copy
            log.warning("age: the prepared %s cannot be pickled (%s: %s); every work item builds the method and "
                        "calls prepare() itself (from its cache in %s)", method.name, type(exc).__name__, exc,
                        mctx.work_dir)
            packed = type(method)
        register_components(ctx.components)
        opts = dict(ctx.config.options)
        jobs = [AgeChunk(str(ctx.session.root), str(out), c, packed, ctx.config.method, opts, ctx.device)
                for c in chunks]
        infos: dict[int, dict] = {}
        for part in ctx.executor.map(age_chunk, jobs, ctx.progress, f"age ({method.name}, {len(frames)} frames)",
                                     threads=use_threads(ctx.device)):
            infos.update(part)
        atomic_write_json(out / "edits.json", {"method": method.name, "description": method.describe(),
                                                "identity_changing": method.identity_changing,
                                                "settings": dict(method.settings(mctx)), "frames": infos,
                                                "sequential": sequential})


@hookimpl
def register_stages():
    return [AgeStage()]
