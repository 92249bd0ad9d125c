"""Built-in plugin ``composite``: the built-in compositors (``alpha``, ``laplacian``, ``poisson``) and the
composite stage, which pastes every rendered/edited face onto the hero plate.

Outputs: ``out/plates/hero/<frame>.png`` (16-bit sRGB) and ``.exr`` (half float, linear) for *every* output frame
(frames without an edit are the plate unchanged), and in ``out/composite/``: ``patches/`` (face patch, mask and
2D transform per frame, for Nuke), ``preview.mp4`` (plate | composite) and ``composite.json`` (settings, per-frame
mask area). See :mod:`reconstruct.composite.outputs`. Options ``--option composite.KEY=VALUE``: compositor,
erode_px, feather_px, feather_frac, color, gain_falloff, skin_only, levels, keep_eyes
(:class:`reconstruct.composite.CompositeSettings`). With ``keep_eyes`` (default) an edit that does not say which
pixels the plate keeps gets the plate's lid apertures from the detect stage's hero landmarks
(:mod:`reconstruct.composite.eyes`).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reconstruct import hookimpl
from reconstruct.composite import BUILTIN_COMPOSITORS, CompositeResult, CompositeSettings, composite_face
from reconstruct.composite.eyes import eye_apertures
from reconstruct.engine import StageContext
from reconstruct.executors.frames import chunk_size, frame_chunks, register_components, use_threads
from reconstruct.session import atomic_replace_dir, atomic_write_json

log = logging.getLogger(__name__)


def plates_dir(session) -> Path:
    """``out/plates`` of a session (hero plates in ``hero/``)."""
    return session.root / "out" / "plates"


PREVIEW_TMP = ".preview"  # per-frame preview images the workers leave for the driver (removed after encoding)


@dataclass(frozen=True, slots=True)
class CompositeChunk:
    """One work item of the composite stage (picklable). ``root``: session folder; ``out``: the stage folder being
    written (patches, preview frames); ``plates``: folder of the hero plates being written; ``frames``: output frame
    numbers; ``settings``; ``compositor``: its class; ``record``: JSON of the provenance record embedded in every
    file (or None); ``options``: ``--option`` values; ``device``; ``eyes``: with ``settings.keep_eyes``, (landmark
    scheme, frame -> (L, 2) hero landmarks of the plate) for these frames (:func:`hero_landmarks`, read once by the
    driver), else None."""

    root: str
    out: str
    plates: str
    frames: tuple[int, ...]
    settings: CompositeSettings
    compositor: type
    record: str | None
    options: dict
    device: str
    eyes: tuple[str, dict[int, np.ndarray]] | None = None


def composite_chunk(job: CompositeChunk) -> dict[int, dict]:
    """Composite one chunk of frames onto the hero plate: plate PNG/EXR and patch files, plus a lossless preview
    frame per frame in ``out/.preview``; returns per-frame info. Module-level so that ``ctx.executor.map`` can
    ship it to workers."""
    import cv2

    from deage_plugins.age_stage import build_method_context, frame_inputs
    from deage_plugins.render_stage import load_render
    from reconstruct.composite.outputs import PlateWriter, preview_frame
    from reconstruct.executors.frames import worker_components
    from reconstruct.progress import NullProgress
    from reconstruct.session import Session, atomic_path

    session = Session.open(job.root)
    s = job.settings
    compositor = job.compositor()
    mctx = build_method_context(session, job.options, job.device, "", NullProgress(), worker_components())
    render_dir = session.stage_dir("render")
    out = Path(job.out)
    previews = out / PREVIEW_TMP
    previews.mkdir(parents=True, exist_ok=True)
    record = None
    if job.record is not None:
        from reconstruct.provenance import ProvenanceRecord

        record = ProvenanceRecord.from_json(job.record)
    writer = PlateWriter(Path(job.plates), out, record=record, session=session if record else None,
                         fps=session.rig.fps)
    info: dict[int, dict] = {}
    eyes = job.eyes
    warned = False
    for fin in frame_inputs(session, mctx, job.frames):
        plate = fin.plate
        rp = render_dir / f"{fin.frame:06d}.npz"
        kept_eyes = False
        if rp.exists():
            r = load_render(rp)
            exclude = r.get("exclude")
            if exclude is None and eyes is not None and fin.frame in eyes[1]:
                exclude = eye_apertures(eyes[1][fin.frame], eyes[0], plate.shape[:2])
                kept_eyes = exclude is not None
            if exclude is None and s.keep_eyes and not warned:
                log.warning("composite: frame %d: no eye apertures found on the plate (detect stage output or hero "
                            "landmarks missing), so the edit's own eyes are used there; composite.json lists the "
                            "frames (plate_eyes false)", fin.frame)
                warned = True
            res = composite_face(plate, r["image"], r["coverage"], s, compositor, exclude=exclude,
                                 skin=r.get("skin"))
        else:
            f = plate.astype(np.float32) / np.float32(255.0)
            res = CompositeResult(image=f, alpha=np.zeros(plate.shape[:2], np.float32), face=f)
        writer.write_plate(fin.frame, res)
        with atomic_path(previews / f"{fin.frame:06d}.png") as tmp:
            cv2.imwrite(str(tmp), preview_frame(plate, res.image, writer.preview_width))
        info[fin.frame] = {"mask_px": int((res.alpha > 0).sum()), "edited": rp.exists(), "plate_eyes": kept_eyes}
    return info


def hero_landmarks(session) -> tuple[str, dict[int, np.ndarray]] | None:
    """(scheme, output frame -> (L, 2) hero landmarks) from the detect stage's ``landmarks.npz``; None when the
    detect stage has not run or did not see the hero camera."""
    from deage_plugins.detect_stage import load_detections

    path = session.stage_dir("detect") / "landmarks.npz"
    if not path.exists():
        return None
    det = load_detections(path)
    hero = session.rig.hero.name
    if hero not in det["cameras"]:
        return None
    k = list(det["cameras"]).index(hero)
    found = np.asarray(det["found"])
    return det["scheme"], {int(f): np.asarray(det["points"][i, k], np.float64)
                           for i, f in enumerate(det["frames"]) if found[i, k]}


class CompositeStage:
    name = "composite"
    requires: tuple[str, ...] = ("render",)
    version = "3"  # 3: the plate's eyes kept for edits without an exclude mask
    needs_method = True

    def fingerprint(self, ctx: StageContext):
        s = CompositeSettings.from_options(ctx.config.options)
        ctx.components.get("compositor", s.compositor)  # fail early with the list of compositors
        hero = plates_dir(ctx.session) / ctx.session.rig.hero.name
        if (ctx.session.stage_dir(self.name) / "_stage.json").exists() and not hero.is_dir():
            log.warning("composite: %s is missing although the stage ran; rerun with --from composite", hero)
        return {"settings": {k: getattr(s, k) for k in s.__slots__}, "chunk": chunk_size(ctx.config.options)}

    def run(self, ctx: StageContext, out: Path) -> None:
        import cv2

        from reconstruct.composite.outputs import PlateWriter

        s = CompositeSettings.from_options(ctx.config.options)
        compositor = ctx.components.get("compositor", s.compositor)
        session = ctx.session
        hero = session.rig.hero.name
        ctx.stage_dir("render")  # fails with a clear message when the render stage has not run
        tmp_plates = session.root / "out" / ".plates.tmp"
        if tmp_plates.exists():
            shutil.rmtree(tmp_plates)
        record = self._record(ctx, s)
        frames = [fs.frame for fs in session.read_sync()]
        register_components(ctx.components)
        eyes = hero_landmarks(session) if s.keep_eyes else None
        jobs = [CompositeChunk(str(session.root), str(out), str(tmp_plates / hero), c, s, compositor,
                               None if record is None else record.to_json(), dict(ctx.config.options), ctx.device,
                               None if eyes is None else (eyes[0], {f: eyes[1][f] for f in c if f in eyes[1]}))
                for c in frame_chunks(frames, chunk_size(ctx.config.options))]
        frames_info: dict[int, dict] = {}
        for part in ctx.executor.map(composite_chunk, jobs, ctx.progress,
                                     f"composite ({s.compositor}, {len(frames)} frames)",
                                     threads=use_threads(ctx.device)):
            frames_info.update(part)
        # the preview video is one sequential file: the driver encodes the workers' preview frames in order
        previews = out / PREVIEW_TMP
        with PlateWriter(tmp_plates / hero, out, record=record, session=session, fps=session.rig.fps) as writer:
            for f in sorted(frames_info):
                writer.add_preview(cv2.imread(str(previews / f"{f:06d}.png"), cv2.IMREAD_COLOR))
        shutil.rmtree(previews, ignore_errors=True)
        atomic_write_json(out / "composite.json", {
            "settings": {k: getattr(s, k) for k in s.__slots__}, "frames": frames_info,
            "plates": f"out/plates/{hero}", "formats": ["png16 (sRGB)", "exr half (linear)"]})
        atomic_replace_dir(tmp_plates, plates_dir(session))
        log.info("composite: %d frames written to %s", len(frames_info), plates_dir(session) / hero)

    @staticmethod
    def _record(ctx: StageContext, s: CompositeSettings):
        try:
            from reconstruct.provenance import record_for_stage
        except ImportError:  # provenance is optional for this stage
            return None
        inputs = [p for p in (ctx.stage_dir("render") / "_stage.json", ctx.stage_dir("age") / "edits.json")
                  if p.exists()]
        return record_for_stage(ctx, "composite", settings={k: getattr(s, k) for k in s.__slots__}, inputs=inputs)


@hookimpl
def register_stages():
    return [CompositeStage()]


@hookimpl
def register_compositors():
    return list(BUILTIN_COMPOSITORS)
