"""Built-in plugin ``composite``: the built-in compositors (``alpha``, ``laplacian``, ``poisson``) and the
composite stage, which pastes every rendered/edited face onto the hero plate.

Outputs: ``out/plates/hero/<frame>.png`` (16-bit sRGB) and ``.exr`` (half float, linear) for *every* output frame
(frames without an edit are the plate unchanged), and in ``out/composite/``: ``patches/`` (face patch, mask and
2D transform per frame, for Nuke), ``preview.mp4`` (plate | composite) and ``composite.json`` (settings, per-frame
mask area). See :mod:`reconstruct.composite.outputs`. Options ``--option composite.KEY=VALUE``: compositor,
erode_px, feather_px, color, skin_only, levels (:class:`reconstruct.composite.CompositeSettings`).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from reconstruct import hookimpl
from reconstruct.composite import BUILTIN_COMPOSITORS, CompositeResult, CompositeSettings, composite_face
from reconstruct.engine import StageContext
from reconstruct.session import atomic_replace_dir, atomic_write_json

log = logging.getLogger(__name__)


def plates_dir(session) -> Path:
    """``out/plates`` of a session (hero plates in ``hero/``)."""
    return session.root / "out" / "plates"


class CompositeStage:
    name = "composite"
    requires: tuple[str, ...] = ("render",)
    version = "1"
    needs_method = True

    def fingerprint(self, ctx: StageContext):
        s = CompositeSettings.from_options(ctx.config.options)
        ctx.components.get("compositor", s.compositor)  # fail early with the list of compositors
        hero = plates_dir(ctx.session) / ctx.session.rig.hero.name
        if (ctx.session.stage_dir(self.name) / "_stage.json").exists() and not hero.is_dir():
            log.warning("composite: %s is missing although the stage ran; rerun with --from composite", hero)
        return {"settings": {k: getattr(s, k) for k in s.__slots__}}

    def run(self, ctx: StageContext, out: Path) -> None:
        from plugins.age_stage import iter_frames, method_context
        from plugins.render_stage import load_render
        from reconstruct.composite.outputs import PlateWriter

        s = CompositeSettings.from_options(ctx.config.options)
        compositor = ctx.components.get("compositor", s.compositor)()
        session = ctx.session
        hero = session.rig.hero.name
        render_dir = ctx.stage_dir("render")
        tmp_plates = session.root / "out" / ".plates.tmp"
        if tmp_plates.exists():
            shutil.rmtree(tmp_plates)
        record = self._record(ctx, s)
        frames_info: dict[int, dict] = {}
        n = len(session.read_sync())
        with PlateWriter(tmp_plates / hero, out, record=record, session=session, fps=session.rig.fps) as writer, \
                ctx.progress.task(f"composite ({s.compositor})", total=n) as task:
            for fin in iter_frames(ctx, method_context(ctx)):
                task.advance()
                plate = fin.plate
                rp = render_dir / f"{fin.frame:06d}.npz"
                if rp.exists():
                    r = load_render(rp)
                    res = composite_face(plate, r["image"], r["coverage"], s, compositor, exclude=r.get("exclude"),
                                         skin=r.get("skin"))
                else:
                    f = plate.astype(np.float32) / np.float32(255.0)
                    res = CompositeResult(image=f, alpha=np.zeros(plate.shape[:2], np.float32), face=f)
                writer.write_frame(fin.frame, plate, res)
                frames_info[fin.frame] = {"mask_px": int((res.alpha > 0).sum()), "edited": rp.exists()}
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
