"""FRAN training pairs from the digital-human method.

``--pairs plate`` (:func:`plate_pairs`, real faces in, real faces out): each every-th fitted hero plate of the take,
and the same plate made young by digital_human's plate mode (warped to the young shape, age features reduced) --
the network learns what that plate-preserving edit does, on this actor's own skin.

``--pairs digital_human`` (:func:`digital_human_pairs`): the session's fitted face rendered twice per frame through
the hero camera, with the same expression, pose and light --

* "now" (labelled ``input_age``): the fitted identity with the face model's own albedo (mean albedo, or grey 0.7
  where the model has none -- the actor's current skin is not unwrapped);
* "young" (labelled ``target_age``): identity moved toward the young reference's fitted identity by ``amount``,
  textured with the young albedo unwrapped from the stills (the ``digital_human`` method's cached asset).

Both renders are aligned with the frame's fitted iBUG-68 landmarks exactly like plate faces at inference. What a
network learns from them is the change *between these two renders* (shape + albedo), not real skin ageing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from reconstruct.errors import MethodError
from reconstruct.methods import MethodContext
from reconstruct.training.align import align_matrix, skin_mask_from_68, warp_to_crop
from reconstruct.training.facepoints import fit_landmarks

from .data import AgePairs

log = logging.getLogger(__name__)


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n)
    a = np.asarray(a, np.float64).ravel()[:n]
    out[: a.size] = a
    return out


class _PairCollector:
    """(now, young) image pairs of fitted frames, each aligned with the frame's fitted iBUG-68 landmarks exactly
    like plate faces at inference, collected into :class:`AgePairs`."""

    def __init__(self, ctx: MethodContext, cam, size: int, coverage: float) -> None:
        self.ctx, self.cam, self.size, self.coverage = ctx, cam, size, coverage
        self.imgs: list = []
        self.skins: list = []
        self.ages: list = []
        self.pid: list = []

    def add(self, frame: int, fit, images: tuple[tuple[np.ndarray, float], ...]) -> None:
        """Output frame ``frame``'s ``(image, age)`` pairs: float (H, W, 3) images of the hero plate's size."""
        cam = self.cam
        pts = fit_landmarks(self.ctx.components, fit, cam, self.ctx.fits.model_name)
        M = align_matrix(pts, self.size, self.coverage)
        skin = warp_to_crop(skin_mask_from_68(pts, (cam.height, cam.width)), M, self.size)
        for img, age in images:
            self.imgs.append(warp_to_crop(np.asarray(img, np.float32), M, self.size))
            self.skins.append(skin)
            self.ages.append(age)
            self.pid.append(int(frame))

    def pairs(self, what: str, input_age: float, target_age: float, source: str) -> AgePairs:
        if not self.imgs:
            raise MethodError(f"no valid fitted frame to make FRAN {what} pairs from",
                              hint="check the fit (reconstruct report)")
        log.info("FRAN: %d %s pairs (ages %s -> %s)", len(self.imgs) // 2, what, input_age, target_age)
        return AgePairs(np.stack(self.imgs), np.stack(self.skins).astype(np.float32),
                        np.array(self.ages, np.float32), np.array(self.pid, np.int32), source)


def _hero_for_pairs(ctx: MethodContext, young: str | Path, pairs: str):
    """The calibrated hero camera, after checking what pairs made from the take need (a fit, young stills)."""
    if ctx.fits is None:
        raise MethodError(f"pairs={pairs} needs the session's fit (out/fit/fits.npz)",
                          hint="run `reconstruct run SESSION` up to the fit stage first")
    if not young:
        raise MethodError(f"pairs={pairs} needs young reference stills", hint="pass --young DIR")
    hero = ctx.session.rig.hero.name
    cam = ctx.cameras.get(hero)
    if cam is None:
        raise MethodError(f"no calibrated hero camera {hero!r}", hint="run the calibrate stage first")
    return cam


def digital_human_pairs(ctx: MethodContext, young: str | Path, size: int, coverage: float, input_age: float,
                        target_age: float, every: int = 1, amount: float = 1.0) -> AgePairs:
    """Render (now, young) pairs of every ``every``-th valid fitted frame; see the module docstring."""
    from reconstruct.render import Mesh, get_renderer, linear_to_srgb, render_meshes
    from reconstruct.synth.scene import HeadState, key_light, posed_meshes

    cam = _hero_for_pairs(ctx, young, "digital_human")
    # the young identity + albedo (cached in out/methods/digital_human/)
    dh, _ = _registered_digital_human(ctx, young, "render")
    model, tex = dh.model, dh.texture
    n = model.n_identity
    now_id = _pad(ctx.fits.identity, n)
    young_id = now_id + float(amount) * (_pad(dh.identity, n) - now_id)
    renderer = get_renderer(ctx.components, "auto", ctx.device)
    light = key_light(0)
    out = _PairCollector(ctx, cam, size, coverage)
    rows = range(0, len(ctx.fits), max(1, every))
    with ctx.progress.task("render FRAN pairs (digital human)", total=len(rows)) as task:
        for i in rows:
            fit = ctx.fits.frame(i)
            task.advance()
            if not fit.valid:
                continue
            R = float(fit.scale) * np.asarray(fit.R)
            _, now_meshes = posed_meshes(model, HeadState(now_id, fit.expression, R, np.asarray(fit.t)))
            vw, y_meshes = posed_meshes(model, HeadState(young_id, fit.expression, R, np.asarray(fit.t)))
            y_meshes[0] = Mesh(vw, model.triangles, uvs=model.uvs, triangle_uvs=model.triangle_uvs, texture=tex)
            now, young_img = (np.clip(linear_to_srgb(render_meshes(renderer, m, cam, light, background=0.25).image),
                                      0, 1) for m in (now_meshes, y_meshes))
            out.add(fit.frame, fit, ((now, input_age), (young_img, target_age)))
    return out.pairs("digital-human render", input_age, target_age,
                     f"digital-human renders of {ctx.session.root} (young refs {young})")


def _registered_digital_human(ctx: MethodContext, young: str | Path, mode: str):
    """The digital_human method as registered (so --disable-plugin digital_human and its consent check hold),
    prepared with ``young`` stills in ``mode``."""
    from reconstruct.methods import check_consent
    from reconstruct.options import parse_settings

    dh_cls = ctx.components.get("aging_method", "digital_human")
    dh = dh_cls()
    check_consent(ctx.session, dh)
    values = {"young_refs": str(young), "mode": mode}
    settings = parse_settings(dh_cls.Settings, values, "digital_human") \
        if getattr(dh_cls, "Settings", None) is not None else None
    dctx = MethodContext(session=ctx.session, options={f"digital_human.{k}": v for k, v in values.items()},
                         device=ctx.device, work_dir=ctx.session.method_dir("digital_human", create=True),
                         progress=ctx.progress, components=ctx.components, fits=ctx.fits, cameras=ctx.cameras,
                         settings=settings)
    dh.prepare(dctx)
    return dh, dctx


def plate_pairs(ctx: MethodContext, young: str | Path, size: int, coverage: float, input_age: float,
                target_age: float, every: int = 1) -> AgePairs:
    """(plate, plate made young by digital_human's plate mode) pairs of every ``every``-th valid fitted frame, aligned
    with the frame's fitted iBUG-68 landmarks exactly like plate faces at inference."""
    from reconstruct.methods import frame_inputs

    cam = _hero_for_pairs(ctx, young, "plate")
    dh, dctx = _registered_digital_human(ctx, young, "plate")
    valid = [int(f) for f, ok in zip(ctx.fits.frames, ctx.fits.valid) if ok][:: max(1, every)]
    out = _PairCollector(ctx, cam, size, coverage)
    with ctx.progress.task("FRAN pairs (plate mode)", total=len(valid)) as task:
        for fin in frame_inputs(ctx.session, dctx, valid):
            task.advance()
            if fin.fit is None or not fin.fit.valid:
                continue
            edit = dh.apply(dctx, fin)
            out.add(fin.frame, fin.fit, ((fin.plate.astype(np.float32) / 255.0, input_age), (edit.image, target_age)))
    return out.pairs("plate-mode", input_age, target_age,
                     f"plate-mode digital_human of {ctx.session.root} (young refs {young})")
