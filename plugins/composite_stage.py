"""Built-in plugin ``composite``: the built-in compositors (``alpha``, ``laplacian``, ``poisson``) and the
composite stage, which pastes every rendered/edited face onto the hero plate.

Outputs: ``out/plates/<method>/hero/<frame>.png`` (16-bit sRGB) and ``.exr`` (half float, linear) for *every* output
frame (frames without an edit are the plate unchanged; each method keeps its own plates, and ``intent.npz`` beside
them says where its edits meant to move the landmarks), and in ``out/composite/``: ``patches/`` (face patch, mask and
2D transform per frame, for Nuke), ``preview.mp4`` (plate | composite) and ``composite.json`` (settings, per-frame
mask area). See :mod:`reconstruct.composite.outputs`. Options ``--option composite.KEY=VALUE``: compositor,
erode_px, feather_px, feather_frac, color, gain_falloff, skin_only, levels, keep_eyes, exr_compression
(:class:`reconstruct.composite.CompositeSettings`). With ``keep_eyes`` (default) an edit that does not say which
pixels the plate keeps gets the plate's lid apertures from the detect stage's hero landmarks
(:mod:`reconstruct.composite.eyes`).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from reconstruct import hookimpl
from reconstruct.artifacts import Detections, HeroLandmarks, RenderedFace, edit_path
from reconstruct.artifacts.detections import FILE as DETECTIONS_FILE
from reconstruct.composite import BUILTIN_COMPOSITORS, AlphaCompositor, CompositeSettings, composite_region
from reconstruct.composite.eyes import eye_apertures
from reconstruct.errors import StageError
from reconstruct.executors.frames import frame_chunks, use_threads
from reconstruct.methods import MethodContext, frame_inputs
from reconstruct.options import settings_dict
from reconstruct.progress import NullProgress
from reconstruct.session import atomic_replace_dir, atomic_write_json
from reconstruct.stage import StageContext

log = logging.getLogger(__name__)

PREVIEW_TMP = ".preview"  # per-frame preview images the workers leave for the driver (removed after encoding)


@dataclass(frozen=True, slots=True)
class CompositeChunk:
    """One work item of the composite stage (picklable). ``root``: session folder; ``out``: the stage folder being
    written (patches, preview frames); ``plates``: folder of the hero plates being written; ``frames``: output frame
    numbers; ``settings``; ``compositor``: its class; ``record``: JSON of the provenance record embedded in every
    file (or None); ``device``; ``eyes``: with ``settings.keep_eyes``, the plate's hero landmarks for these frames
    (:func:`hero_landmarks`, read once by the driver), else None."""

    root: str
    out: str
    plates: str
    frames: tuple[int, ...]
    settings: CompositeSettings
    compositor: type
    record: str | None
    device: str
    eyes: HeroLandmarks | None = None


def composite_chunk(job: CompositeChunk, res) -> tuple[dict[int, dict], dict[str, tuple[str, int]]]:
    """Composite one chunk of frames onto the hero plate: plate PNG/EXR and patch files, plus the preview frame of
    each frame in ``out/.preview`` (raw .npy: the driver reads it once); returns per-frame info and the written
    files' ``{path: (sha256, bytes)}`` (hashed here, from the bytes written, in parallel). Only the edit's region
    is composited; the whole frame is made when the plate is written. The files are recorded in the manifest by
    the driver, in one update and without reading them again (:meth:`CompositeStage.run`). Module-level so that
    ``ctx.executor.map`` can ship it to workers."""
    from reconstruct.composite.outputs import PlateWriter, preview_frame
    from reconstruct.memory import keep_freed_memory
    from reconstruct.session import atomic_path

    keep_freed_memory()  # set once a process: a --jobs worker has it already, --jobs 1 and Ray workers not
    session = res.session(job.root)
    s = job.settings
    compositor = job.compositor()
    # the composite reads only the plates (FrameInput.plate): a context without the fit stage's fits, which
    # method_context would load for every chunk (36 ms each on the bench take; 500 chunks in a 2,000-frame shot)
    mctx = MethodContext(session=session, options={}, device=job.device, progress=NullProgress(),
                         work_dir=session.method_dir("_none", create=False), components=res.components)
    render_dir = session.stage_dir("render")
    out = Path(job.out)
    previews = out / PREVIEW_TMP
    previews.mkdir(parents=True, exist_ok=True)
    record = None
    if job.record is not None:
        from reconstruct.provenance import ProvenanceRecord

        record = ProvenanceRecord.from_json(job.record)
    # both folders are temporary ones the stage commits (atomic_replace_dir flushes them then): no fsync per file
    writer = PlateWriter(Path(job.plates), out, record=record, fps=session.rig.fps, sync=False,
                         exr_compression=s.exr_compression)
    info: dict[int, dict] = {}
    eyes = job.eyes
    warned = False
    for fin in frame_inputs(session, mctx, job.frames):
        plate = fin.plate
        rp = RenderedFace.path(render_dir, fin.frame)
        kept_eyes = False
        r = RenderedFace.load(rp) if rp.exists() else None
        if r is not None and r.exact:  # made of the plate itself: its mask is the final alpha, used as is
            out_img = composite_region(plate, r.image, r.coverage, replace(s, color="none"), AlphaCompositor(),
                                       alpha=r.coverage, origin=r.origin)
        elif r is not None:
            exclude = r.exclude
            if exclude is None and eyes is not None and fin.frame in eyes.points:
                apertures = eye_apertures(eyes.points[fin.frame], eyes.scheme, plate.shape[:2])
                if apertures is not None:
                    (x0, y0), (h, w) = r.origin, r.coverage.shape[:2]
                    exclude = apertures[y0:y0 + h, x0:x0 + w]
                    kept_eyes = True
            if exclude is None and s.keep_eyes and not warned:
                log.warning("composite: frame %d: no eye apertures found on the plate (detect stage output or hero "
                            "landmarks missing), so the edit's own eyes are used there; composite.json lists the "
                            "frames (plate_eyes false)", fin.frame)
                warned = True
            out_img = composite_region(plate, r.image, r.coverage, s, compositor, exclude=exclude, skin=r.skin,
                                       origin=r.origin)
        else:
            out_img = composite_region(plate, np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32), s,
                                       compositor)
        writer.write_plate(fin.frame, out_img)
        with atomic_path(previews / f"{fin.frame:06d}.npy", suffix=".npy", sync=False) as tmp:
            np.save(tmp, preview_frame(plate, out_img, writer.preview_width), allow_pickle=False)
        info[fin.frame] = {"mask_px": int((out_img.alpha > 0).sum()), "edited": rp.exists(),
                           "plate_eyes": kept_eyes}
    return info, writer.digests


class PreviewEncoder:
    """Adds the workers' preview frames (``out/.preview/<frame>.npy``, each renamed into place complete) to the
    preview video in frame order on a driver thread, as they appear, while the workers still run: the video
    encoding (~5 ms a 1080p frame, plus reading the frame) overlaps the composite instead of following it. Each
    frame's file is deleted once it is in the video.

    ``with PreviewEncoder(writer, folder, frames) as enc: ...; enc.finish(done)``: ``finish`` waits for the frames
    ``done`` (all the work items returned, so their files are there) and raises what the thread raised; leaving
    the block without ``finish`` (an error in the work) stops the thread at once."""

    POLL_S = 0.02

    def __init__(self, writer, folder: Path, frames: list[int]) -> None:
        import threading

        self.writer, self.folder, self.frames = writer, Path(folder), list(frames)
        self._stop = threading.Event()
        self._until: set[int] | None = None  # set by finish(): the frames to encode, all present
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="composite-preview", daemon=True)

    def _run(self) -> None:
        try:
            for f in self.frames:
                path = self.folder / f"{f:06d}.npy"
                while not path.exists() and self._until is None:
                    if self._stop.wait(self.POLL_S) and self._until is None:
                        return  # stopped without finish(): the work failed
                if path.exists():
                    self.writer.add_preview(np.load(path, allow_pickle=False))
                    # deleted once read: its page cache (a 1080p frame's 3.1 MB) is freed for the next files the
                    # workers write, not held to the stage's end (new page-cache pages cost ~5x recycled ones)
                    path.unlink(missing_ok=True)
                elif f in self._until:
                    raise StageError(f"composite: the preview frame {path} of frame {f} is missing",
                                     hint="rerun with --from composite")
        except BaseException as exc:  # handed to finish()
            self._error = exc

    def finish(self, done: list[int]) -> None:
        self._until = set(done)
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> "PreviewEncoder":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


INTENT_FILE = "intent.npz"  # beside a method's plates: where its edits meant to move the landmarks


def write_intent(age_dir: Path, frames: list[int], path: Path) -> None:
    """``out/plates/<method>/intent.npz``: ``frames`` (T,), ``shift`` (T, N, 2) float32 pixels (NaN where an edit
    gave none) and ``scheme``: each edit's intended landmark motion (``FaceEdit.landmark_shift``), so the QC report
    can measure any method's plates against what it meant to do, also after another method ran."""
    from reconstruct.executors.frames import save_npz

    shifts, scheme = {}, ""
    for f in frames:
        p = edit_path(age_dir, f)
        if not p.exists():
            continue
        with np.load(p, allow_pickle=False) as d:
            if "landmark_shift" in d.files:
                shifts[f] = d["landmark_shift"]
                scheme = scheme or json.loads(str(d["info"])).get("landmark_scheme") or ""
    n = max((v.shape[0] for v in shifts.values()), default=0)
    arr = np.full((len(frames), n, 2), np.nan, np.float32)
    for i, f in enumerate(frames):
        if f in shifts and shifts[f].shape[0] == n:
            arr[i] = shifts[f]
    save_npz(path, frames=np.asarray(frames, np.int32), shift=arr, scheme=np.asarray(scheme))


def hero_landmarks(session) -> HeroLandmarks | None:
    """The plate's hero landmarks per output frame from the detect stage; None when the detect stage has not run or
    did not see the hero camera."""
    path = session.stage_dir("detect") / DETECTIONS_FILE
    if not path.exists():
        return None
    return Detections.load(path).for_camera(session.rig.hero.name)


class CompositeStage:
    name = "composite"
    requires: tuple[str, ...] = ("render",)
    version = "5"  # 5: the edit's region only (crops); 4: exact-alpha edits (made of the plate); 3: the plate's eyes kept for edits without an exclude mask
    needs_method = True
    Settings = CompositeSettings

    def fingerprint(self, ctx: StageContext):
        s = ctx.settings[self.name]
        ctx.components.get("compositor", s.compositor)  # fail early with the list of compositors
        hero = ctx.session.method_plates(ctx.config.method or "") / ctx.session.rig.hero.name
        if ctx.session.stage_record(self.name) is not None and not hero.is_dir():
            log.warning("composite: %s is missing although the stage ran; rerun with --from composite", hero)
        return {"chunk": ctx.settings["frames"].chunk}

    def run(self, ctx: StageContext, out: Path) -> None:
        from reconstruct.composite.outputs import PlateWriter

        s = ctx.settings[self.name]
        compositor = ctx.components.get("compositor", s.compositor)
        session = ctx.session
        hero = session.rig.hero.name
        ctx.stage_dir("render")  # fails with a clear message when the render stage has not run
        method = ctx.config.method
        final_plates = session.method_plates(method)
        tmp_plates = session.plates_dir / f".{method}.tmp"
        if tmp_plates.exists():
            shutil.rmtree(tmp_plates)
        record = self._record(ctx, s)
        frames = [fs.frame for fs in session.read_sync()]
        eyes = hero_landmarks(session) if s.keep_eyes else None
        jobs = [CompositeChunk(str(session.root), str(out), str(tmp_plates / hero), c, s, compositor,
                               None if record is None else record.to_json(), ctx.device,
                               None if eyes is None else eyes.only(c))
                for c in frame_chunks(frames, ctx.settings["frames"].chunk)]
        frames_info: dict[int, dict] = {}
        digests: dict[str, tuple[str, int]] = {}
        # the preview video is one sequential file: a driver thread encodes the workers' preview frames in order
        # while they work (the driver only waits on them meanwhile), not one after the other once they are done
        previews = out / PREVIEW_TMP
        shutil.rmtree(previews, ignore_errors=True)  # only this run's frames are read while it runs
        with PlateWriter(tmp_plates / hero, out, record=record, session=session, fps=session.rig.fps) as writer:
            with PreviewEncoder(writer, previews, sorted(frames)) as encoder:
                for part, written in ctx.executor.map(composite_chunk, jobs, ctx.progress,
                                                      f"composite ({s.compositor}, {len(frames)} frames)",
                                                      threads=use_threads(ctx.device), resources=True):
                    frames_info.update(part)
                    digests.update(written)
                encoder.finish(sorted(frames_info))
        shutil.rmtree(previews, ignore_errors=True)
        write_intent(ctx.stage_dir("age"), sorted(frames_info), tmp_plates / INTENT_FILE)
        if record is not None:  # every plate and patch in the manifest, one update (not one per file)
            from reconstruct.provenance import record_stage_outputs

            record_stage_outputs(session, tmp_plates, record, known=digests)
            record_stage_outputs(session, out / "patches", record, known=digests)
        atomic_write_json(out / "composite.json", {
            "settings": settings_dict(s), "frames": frames_info, "method": method,
            "plates": f"out/plates/{method}/{hero}", "formats": ["png16 (sRGB)", "exr half (linear)"]})
        atomic_replace_dir(tmp_plates, final_plates)
        log.info("composite: %d frames written to %s", len(frames_info), final_plates / hero)

    @staticmethod
    def _record(ctx: StageContext, s: CompositeSettings):
        from reconstruct.provenance import record_for_stage
        from reconstruct.session import STAGE_FILE

        inputs = [p for p in (ctx.stage_dir("render") / STAGE_FILE, ctx.stage_dir("age") / "edits.json")
                  if p.exists()]
        return record_for_stage(ctx, "composite", settings=settings_dict(s), inputs=inputs)


@hookimpl
def register_stages():
    return [CompositeStage()]


@hookimpl
def register_compositors():
    return list(BUILTIN_COMPOSITORS)
