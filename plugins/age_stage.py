"""Built-in plugin ``age``: the age stage, which runs the chosen aging method on every output frame.

Output: ``out/age/<frame:06d>.npz`` per frame (the :class:`reconstruct.methods.FaceEdit` arrays) and
``out/age/edits.json`` (method, its description and settings, per-frame info). The method's trained assets live in
``out/methods/<method>/`` so they survive reruns of the stage.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from reconstruct import hookimpl
from reconstruct.engine import StageContext
from reconstruct.methods import FaceEdit, FrameInput, MethodContext, check_consent
from reconstruct.session import atomic_path, atomic_write_json

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
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, frame=edit.frame, kind=edit.kind, info=json.dumps(dict(edit.info)), **arrays)


def method_context(ctx: StageContext) -> MethodContext:
    """Build the context a method sees (fits and cameras when those stages exist)."""
    from reconstruct.fitting.result import load_fits

    s = ctx.session
    fits = cameras = None
    fit_dir = s.stage_dir("fit")
    if (fit_dir / "fits.npz").exists():
        fits = load_fits(fit_dir / "fits.npz")
    if s.calibration_path.exists():
        from reconstruct.camera import CameraModel

        raw = s.read_calibration().get("cameras", [])
        # calibration.json keys cameras by name (reconstruct.calibration.result); a list of records is accepted too
        items = raw.items() if isinstance(raw, dict) else ((c["name"], c) for c in raw)
        cameras = {n: CameraModel.from_dict({**c, "name": c.get("name", n)}) for n, c in items}
    work = s.root / "out" / "methods" / ctx.config.method
    work.mkdir(parents=True, exist_ok=True)
    return MethodContext(session=s, options=ctx.config.options, device=ctx.device, work_dir=work,
                         progress=ctx.progress, components=ctx.components, fits=fits, cameras=cameras or {})


def iter_frames(ctx: StageContext, mctx: MethodContext):
    """Yield a FrameInput per output frame (hero plate from sync.csv, fit and hero camera when available)."""
    s = ctx.session
    hero = s.rig.hero.name
    records = {r.index: r for r in s.frames(hero)}
    fits = mctx.fits
    fit_rows = {int(f): i for i, f in enumerate(fits.frames)} if fits is not None else {}
    for fs in s.read_sync():
        idx = fs.indices.get(hero)
        if idx is None or idx not in records:
            continue
        plate = s.read_image(hero, records[idx])
        if plate.ndim == 2:
            plate = np.repeat(plate[..., None], 3, axis=2)
        fit = fits.frame(fit_rows[fs.frame]) if fs.frame in fit_rows else None
        yield FrameInput(frame=fs.frame, plate=plate, fit=fit, hero=mctx.cameras.get(hero))


class AgeStage:
    name = "age"
    requires: tuple[str, ...] = ("sync", "fit")
    version = "1"
    needs_method = True

    def fingerprint(self, ctx: StageContext):
        method = ctx.components.get("aging_method", ctx.config.method)()
        check_consent(ctx.session, method)
        return {"method": method.name, "settings": dict(method.settings(method_context(ctx))),
                "consent": [c.performer for c in ctx.session.meta.consent]}

    def run(self, ctx: StageContext, out: Path) -> None:
        method = ctx.components.get("aging_method", ctx.config.method)()
        check_consent(ctx.session, method)
        mctx = method_context(ctx)
        method.prepare(mctx)
        infos = {}
        frames = list(ctx.session.read_sync())
        with ctx.progress.task(f"age ({method.name})", total=len(frames)) as task:
            for fin in iter_frames(ctx, mctx):
                edit = method.apply(mctx, fin)
                save_edit(edit, out / f"{fin.frame:06d}.npz")
                infos[fin.frame] = dict(edit.info)
                task.advance()
        atomic_write_json(out / "edits.json", {"method": method.name, "description": method.describe(),
                                                "identity_changing": method.identity_changing,
                                                "settings": dict(method.settings(mctx)), "frames": infos})


@hookimpl
def register_stages():
    return [AgeStage()]
