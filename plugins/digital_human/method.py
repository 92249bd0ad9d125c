"""The ``digital_human`` aging method: the performer made young from a young identity fitted to young stills.

prepare: detect landmarks on the young reference stills, fit one identity to all of them (expression and pose
free per still; :mod:`.identity`) -- or take the identity the user set -- and unwrap the young albedo into the
model's UV space (:mod:`.texture`); the young skin's mean colour is kept for the tone. Cached in
``out/methods/digital_human/young-<key>.npz`` and, keyed by the stills' content, the model and the settings, in
:func:`.cache.shared_cache_dir` for every other take of the same actor (with the per-still fits of the plate mode).

apply, mode ``plate`` (the default, :mod:`.plate`): the plate itself, warped from the performer's fitted shape to
the young shape and with the age features of the skin reduced: every output pixel is a plate pixel, moved or
filtered ("image" :class:`FaceEdit`).

apply, mode ``render``: the young identity with the frame's fitted expression and head pose, textured with the
young albedo -> a "mesh" :class:`FaceEdit`; the render stage lights it like the plate and the composite stage keeps
the performance's eyes (the model's ``eyes`` region is excluded from the mask) and everything outside the face.

The young-reference folder: images (``*.png``, ``*.jpg``, ``*.jpeg``, ``*.tif``) of the actor when young, plus
optionally ``cameras.json`` (``{"<file name>" or "default": {"K": 3x3, "dist": [...]}}``, pixels; default: focal
length 1.2 x the longer image side, principal point at the centre) and ``identity.npy`` (coefficients that set
the identity instead of fitting it; also ``--option digital_human.identity=FILE``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np

from reconstruct.errors import MethodError
from reconstruct.methods import BaseMethod, FaceEdit, FrameInput, MethodContext
from reconstruct.options import option
from reconstruct.retouch import SkinSettings

from .cache import asset_name, find_cached, fits_name, model_digest, share_cached
from .early import of_these_stills
from .stills import detected_plate_landmarks, files_digest, plate_stills, read_young_refs

_SKIN = SkinSettings()  # the plate mode's default strengths

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class DigitalHumanSettings:
    """``--option digital_human.KEY=VALUE`` (``--young-refs DIR`` sets ``young_refs``)."""

    young_refs: str | None = option(None, "folder of stills of the actor when young (also --young-refs)")
    mode: Literal["plate", "render"] = option(
        "plate", "plate: warp and retouch the plate itself (every pixel a plate pixel); render: draw the young "
                 "digital double over the face")
    warp: float = option(1.0, "plate mode: fraction of the young shape applied (0: skin only, 1: the full young "
                              "shape)")
    falloff: float = option(0.25, "plate mode: face sizes over which the warp fades to zero past the face")
    forehead: float = option(_SKIN.forehead, "plate mode: forehead lines reduced, 0..1")
    crows_feet: float = option(_SKIN.crows_feet, "plate mode: crow's feet reduced, 0..1")
    under_eye: float = option(_SKIN.under_eye, "plate mode: under-eye lines reduced, 0..1")
    nasolabial: float = option(_SKIN.nasolabial, "plate mode: nasolabial folds reduced, 0..1")
    marionette: float = option(_SKIN.marionette, "plate mode: marionette lines reduced, 0..1")
    spots: float = option(_SKIN.spots, "plate mode: blotches evened out, 0..1")
    tone: float = option(_SKIN.tone, "plate mode: skin tone moved toward the young stills' (low frequency only), 0..1")
    identity: str | None = option(None, "a .npy of identity coefficients that sets the young identity instead of "
                                        "fitting it to the stills")
    texture_size: int = option(512, "side of the young albedo texture, pixels")
    n_identity: int = option(40, "identity modes fitted to the stills")
    shape_modes: int = option(10, "plate mode: identity modes of the young-minus-today shape change (the leading, "
                                  "well-determined ones: landmarks pin the face's overall shape, not its detail)")
    passes: int = option(2, "identity/albedo refinement passes")
    detector: str | None = option(None, "landmark detector for the stills (default: the highest-priority one)")

    def __post_init__(self) -> None:
        if self.texture_size < 16 or self.n_identity < 1 or self.passes < 1:
            raise ValueError("digital_human.texture_size must be at least 16, n_identity and passes at least 1")
        for k in ("forehead", "crows_feet", "under_eye", "nasolabial", "marionette", "spots", "tone"):
            if not 0.0 <= getattr(self, k) <= 1.0:
                raise ValueError(f"digital_human.{k}={getattr(self, k)}: must be in [0, 1]")
        if self.shape_modes < 1:
            raise ValueError("digital_human.shape_modes must be at least 1")
        if not 0.0 <= self.warp <= 1.5 or not 0.05 <= self.falloff <= 2.0:
            raise ValueError("digital_human.warp must be in [0, 1.5] and digital_human.falloff in [0.05, 2]")

    def plate_settings(self):
        from .plate import PlateSettings

        return PlateSettings(warp=self.warp, falloff=self.falloff, skin=SkinSettings(
            forehead=self.forehead, crows_feet=self.crows_feet, under_eye=self.under_eye,
            nasolabial=self.nasolabial, marionette=self.marionette, spots=self.spots, tone=self.tone))


class DigitalHumanMethod(BaseMethod):
    """Digital human: the young identity and albedo, fitted to young reference stills, driven by the performance."""

    name = "digital_human"
    identity_changing = True
    Settings = DigitalHumanSettings

    def __init__(self) -> None:
        self.model = None
        self.identity: np.ndarray | None = None
        self.texture: np.ndarray | None = None
        self.report: dict[str, Any] = {}
        self._retoucher = None  # plate mode: built on first use in each worker (holds a renderer)
        self.shift: np.ndarray | None = None  # plate mode: young minus today's identity
        self._pending = None  # (cache file, YoungGeometry): the asset waiting for its albedo (prepare_for_frames)
        self.model_name: str | None = None  # the face model's registered name (a copy that travels loads it)
        self.early = None  # the future of early_work()'s item, set by the age stage (None: none was started)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_retoucher"] = None  # a renderer does not travel to worker processes
        state["_pending"] = None  # the driver's: finished there
        state["early"] = None  # a future: taken in the driver
        # the model (~30 MB) is loaded by its name where the copy is used; one set by hand since travels as it is
        if self.model_name is not None and getattr(self.model, "name", None) == self.model_name:
            state["model"] = None
        return state

    def _face_model(self, ctx: MethodContext):
        """The face model (a copy that travelled: the process's own, loaded once by its registered name)."""
        if self.model is None and self.model_name is not None:  # each registry loads a model once
            res = ctx.resources
            self.model = (res if res is not None else ctx.components).face_model(self.model_name)
        return self.model

    # -- settings ------------------------------------------------------------------------------------------------
    def _settings(self, ctx: MethodContext) -> DigitalHumanSettings:
        return self.own_settings(ctx)

    def _refs(self, ctx: MethodContext) -> Path:
        refs = self._settings(ctx).young_refs
        if not refs:
            root = getattr(ctx.session, "root", "SESSION")
            synthetic = (Path(str(root) + ".truth")).is_dir()
            hint = (f"reconstruct run {root} --method digital_human --young-refs DIR (a folder of stills of the "
                    "actor when young)")
            if synthetic:  # a `reconstruct synth` session: there is no young actor to photograph
                hint += (f"; for this synthetic session render some: `reconstruct synth RIG NEW_SESSION "
                         f"--young-stills 3` makes a session with NEW_SESSION/young-refs, or `python "
                         f"tools/synth_young_refs.py {root} {root}/young-refs` adds them to this one")
            raise MethodError("the digital_human method needs young reference stills", hint=hint)
        return Path(refs)

    def settings(self, ctx: MethodContext) -> Mapping[str, Any]:
        return self._settings_for(ctx, ctx.fits.model_name if ctx.fits is not None else None)

    def _settings_for(self, ctx: MethodContext, model: str | None) -> dict:
        """:meth:`settings` with the face model ``model`` (its registered name; the take's fitted one there)."""
        refs = self._refs(ctx)
        files = [p for p in refs.iterdir() if p.is_file()] if refs.is_dir() else []
        st = self._settings(ctx)
        return {"young_refs": files_digest(files) if files else str(refs),
                "identity": files_digest([Path(st.identity)]) if st.identity else None,
                "texture_size": st.texture_size, "n_identity": st.n_identity, "passes": st.passes,
                "model": model, "model_digest": model_digest(ctx, model), "version": 4}

    # -- prepare -------------------------------------------------------------------------------------------------
    def prepare(self, ctx: MethodContext) -> None:
        """The young asset (identity, albedo, skin colour) and, in plate mode, the young shape change -- each from
        its cache when there. What is left to compute goes to the run's workers as one batch (:func:`.young.
        prepare_work`): the asset's build beside the per-still identity fits of the young stills and of the take's
        plates, so that both cores work (the landmarks are found here first, the young stills' once for both)."""
        self._prepare(ctx, defer=False)

    def prepare_for_frames(self, ctx: MethodContext) -> list:
        """:meth:`prepare`, but in plate mode -- whose frames need the young identity and skin colour, not the
        albedo -- a young asset not yet cached is made in two parts: its geometry (the identity fit, the skin
        colour) in the batch, its albedo (the lighting and unwrap passes, ~2 CPU-s) returned as side work that the
        age stage runs on its workers beside the frames; :meth:`finish_side_work` caches the asset (the same file
        as :meth:`prepare`'s). The ray caster is imported here first (:func:`_import_for_workers`)."""
        _import_for_workers(ctx)
        return self._prepare(ctx, defer=self._settings(ctx).mode == "plate")

    def finish_side_work(self, ctx: MethodContext, results: list) -> None:
        """The young asset from its geometry (:meth:`prepare_for_frames`) and ``results``' albedo, cached."""
        if self._pending is None:
            return
        cache, geometry = self._pending
        self._pending = None
        asset = geometry.asset(results[0])
        shape = self.report.get("shape")
        self._keep_asset(cache, asset)
        if shape is not None:
            self.report["shape"] = shape

    def _prepare(self, ctx: MethodContext, defer: bool) -> list:
        if ctx.fits is None:
            raise MethodError("digital_human needs the fit stage's result (out/fit/fits.npz)",
                              hint="run the pipeline without --only so that detect and fit run first")
        self.model = ctx.components.face_model(ctx.fits.model_name)
        self.model_name = ctx.fits.model_name
        own = self._settings(ctx)
        st = dict(self.settings(ctx))
        cache = ctx.work_dir / asset_name(st)
        young = _YoungStills(ctx, self.model, self._refs(ctx), own.detector)
        # the young stills' work done while the fit ran (early_work), if any, and made of these stills
        early = of_these_stills(self._take_early(), cache.name)
        if early is not None:
            young._found = list(early.found)
        jobs: list = []
        found = find_cached(ctx.work_dir, cache.name)
        if found is not None:
            d = np.load(found, allow_pickle=False)
            self.identity, self.texture = d["identity"], d["texture"]
            self.report = json.loads(str(d["report"]))
            log.info("digital_human: young identity and albedo from cache %s", found)
        plans: dict[str, _FitPlan] = {}
        if own.mode == "plate" and self._identity_file(ctx) is None:
            calibrated = (self._refs(ctx) / "cameras.json").exists()
            plans["young"] = self._fit_plan(ctx, own, "young", calibrated, young=young)
            plans["performer"] = self._fit_plan(ctx, own, "performer", calibrated)
        fits = plans.get("young")
        if early is not None and (fits is None or early.names != (cache.name, fits.cache.name) or not defer
                                  or found is not None or fits.ident is not None):
            log.info("digital_human: the young stills' early fits do not match this preparation; fitting again")
            early = None
        if early is not None:
            log.info("digital_human: the young stills' landmarks, geometry and fits made while the fit ran")
        if found is None:
            jobs.append(_Ready(early.geometry) if early is not None else
                        self._asset_job(ctx, st, young, albedo=not defer))
        for who, plan in plans.items():
            jobs.extend([_Ready(i) for i in early.identities] if early is not None and who == "young" else plan.jobs)
        results = iter(_run_work(ctx, jobs))
        side: list = []
        if found is None:
            made = next(results)
            if defer:  # the geometry: the albedo is side work, the asset cached when it is back
                from reconstruct.methods import SideWork

                from .young import AlbedoJob, prepare_work

                self.identity, self.texture, self.report = made.fit.identity, None, made.report()
                self._pending = (cache, made)
                side.append(SideWork(prepare_work, AlbedoJob(ctx.fits.model_name, tuple(young.found()), made.fit,
                                                             st["texture_size"], st["passes"], ctx.device)))
            else:
                self._keep_asset(cache, made)
        idents = {who: plan.finish([next(results) for _ in plan.jobs], own.shape_modes)
                  for who, plan in plans.items()}
        if own.mode == "plate":
            self.shift = self._young_shift(ctx, idents.get("young"), idents.get("performer"))
        return side

    def early_work(self, ctx: MethodContext, model: str):
        """The young stills' work that needs nothing of the take's fit (:mod:`.early`) as one
        :class:`~reconstruct.methods.SideWork` for the face model ``model`` (the registered name the fit stage
        will use), to run while the fit stage leaves a core idle; None when there is none: not the plate mode, an
        identity set by the user, no young stills given, or the asset or the young fits cached already."""
        from reconstruct.methods import SideWork

        from .early import YoungJob, young_early

        own = self._settings(ctx)
        if own.mode != "plate" or not own.young_refs or self._identity_file(ctx) is not None:
            return None
        st = self._settings_for(ctx, model)
        calibrated = (self._refs(ctx) / "cameras.json").exists()
        names = (asset_name(st), fits_name(own, "young", st["young_refs"], model, st["model_digest"], calibrated))
        if any(find_cached(ctx.work_dir, n) is not None for n in names):
            return None
        return SideWork(young_early, YoungJob(model, str(self._refs(ctx)), own.detector, own.n_identity,
                                              own.shape_modes, ctx.device, names))

    def _take_early(self):
        """:meth:`early_work`'s result (:class:`.early.YoungEarly`) when one was started, else None; one that
        failed is logged and left (the preparation makes the same and meets the same problem, reported then)."""
        fut, self.early = self.early, None
        if fut is None:
            return None
        try:
            return fut.result()
        except Exception as exc:  # noqa: BLE001 - made again below, where it is reported
            log.info("digital_human: the young stills' early fits failed (%s: %s); fitting now",
                     type(exc).__name__, exc)
            return None

    def _keep_asset(self, cache: Path, asset) -> None:
        """Take the young asset and cache it (the work dir's file, shared with the other takes). Stored, not
        deflated: zlib took 0.1 s of the driver at the end of a cold age stage (while no worker ran) to save 14% of
        the float32 texture's 3 MB."""
        from reconstruct.executors.frames import save_npz

        self.identity, self.texture, self.report = asset.identity, asset.texture, asset.report
        save_npz(cache, compress=False, identity=self.identity, texture=self.texture,
                 report=np.asarray(json.dumps(self.report)))
        share_cached(cache)

    def _identity_file(self, ctx: MethodContext) -> Path | None:
        """The identity the user set (``digital_human.identity``, else ``identity.npy`` among the young stills)."""
        ident = self._settings(ctx).identity
        if ident is None and (self._refs(ctx) / "identity.npy").exists():
            return self._refs(ctx) / "identity.npy"
        return None if ident is None else Path(ident)

    def _asset_job(self, ctx: MethodContext, st: dict, young: "_YoungStills", albedo: bool = True):
        from .young import AssetJob

        ident = self._identity_file(ctx)
        return AssetJob(model=ctx.fits.model_name, scheme=young.scheme, found=tuple(young.found()),
                        texture_size=st["texture_size"], n_identity=st["n_identity"], passes=st["passes"],
                        identity=None if ident is None else np.load(ident), device=ctx.device, albedo=albedo)

    def _young_shift(self, ctx: MethodContext, young: np.ndarray | None, today: np.ndarray | None) -> np.ndarray:
        """Young minus today's identity in the leading ``shape_modes``: each young still and each of a few of the
        take's plates is fitted on its own, the same way (the still fit, same camera assumption, same modes:
        ``young`` and ``today``, (S, shape_modes) each); the difference of the two means is kept per mode only as
        far as it stands out of the stills' own spread (positive-part James-Stein shrinkage,
        ``d * max(0, 1 - se^2 / d^2)``), so that the warp carries the change of age and not the noise of fitting a
        face from landmarks (two sets of stills of the *same* face warp it by nothing). An identity set by the user
        (identity.npy / digital_human.identity) is taken as is, against the take's own fitted identity. The
        per-mode figures go to ``self.report["shape"]``."""
        st = self._settings(ctx)
        n, k = self.model.n_identity, st.shape_modes
        if self.report.get("identity_set_by_user") or young is None or today is None:
            shift = _pad(self.identity, n) - _pad(ctx.fits.identity, n)
            shift[k:] = 0.0
            return shift
        d = young.mean(0) - today.mean(0)
        if len(young) >= 2 and len(today) >= 2:
            se2 = young.var(0, ddof=1) / len(young) + today.var(0, ddof=1) / len(today)
            keep = np.clip(1.0 - se2 / np.maximum(d * d, 1e-12), 0.0, 1.0)
        else:  # one still: its spread is unknown, so no change of shape can be told from noise
            keep = np.zeros_like(d)
        self.report["shape"] = {"modes": int(k), "difference": np.round(d, 3).tolist(),
                                "kept": np.round(keep, 3).tolist(), "young_stills": int(len(young)),
                                "plates": int(len(today))}
        log.info("digital_human: young shape change in %d modes, kept %s of %s", k, np.round(d * keep, 2).tolist(),
                 np.round(d, 2).tolist())
        return _pad(d * keep, n)

    def _fit_plan(self, ctx: MethodContext, st: DigitalHumanSettings, who: str, calibrated: bool,
                  young: "_YoungStills | None" = None, stills=None) -> "_FitPlan":
        """The per-still identity fits of the young stills (``young``: their landmarks found once, shared with
        the asset's build) or of the take's plates (their landmarks from the detect stage when it found them the
        same way, else found here; ``stills``: a stand-in for :func:`plate_stills`): cached in the method's work
        dir (the young stills' also for every take, keyed by their content), else the work items that fit them."""
        from .young import StillFit, detector_class, pick_detector

        shared = young is not None
        source = (dict(self.settings(ctx))["young_refs"] if shared else
                  ctx.session.frames_digest([ctx.session.rig.hero.name]))
        cache = ctx.work_dir / fits_name(st, who, source, self.model.name, model_digest(ctx), calibrated)
        found = find_cached(ctx.work_dir, cache.name) if shared else (cache if cache.exists() else None)
        if found is not None:
            return _FitPlan(cache, shared, np.load(found, allow_pickle=False), [])
        if shared:
            scheme, marks = young.scheme, [(f.camera, f.points, f.conf) for f in young.found()]
        else:
            stills = stills or (lambda images=True: plate_stills(ctx, calibrated=calibrated, images=images))
            seen = stills(images=False)
            cls = detector_class(ctx.components, self.model, st.detector)
            landmarks = detected_plate_landmarks(ctx, seen, cls)
            if landmarks is None:  # the detect stage did not find them the same way: detect here
                det = pick_detector(ctx.components, self.model, st.detector)
                seen = stills()
                landmarks = [det.detect(img) for _, img, _ in seen]
            scheme = cls.scheme
            marks = []
            for (name, _, cam), r in zip(seen, landmarks):
                if r is None:
                    log.warning("digital_human: no face found in %s; skipped", name)
                    continue
                marks.append((cam, r[0], r[1]))
            if not marks:
                raise MethodError("no face was found in the take's plates for the performer's still fit",
                                  hint="check the detect stage's report (out/detect/report.json)")
        jobs = [StillFit(ctx.fits.model_name, scheme, c, p, q, st.shape_modes) for c, p, q in marks]
        return _FitPlan(cache, shared, None, jobs)

    def _stills_identities(self, ctx: MethodContext, st: DigitalHumanSettings, who: str, stills, calibrated: bool,
                           refs_digest: bool = False, plates: bool = False) -> np.ndarray:
        """(S, shape_modes) identities, one per still, as :meth:`prepare` makes them (:meth:`_fit_plan`, the
        fits run on the run's workers): ``plates`` -- the take's plates (``stills(images=False)``), else the young
        stills."""
        young = None if plates else _YoungStills(ctx, self.model, self._refs(ctx), st.detector)
        plan = self._fit_plan(ctx, st, who, calibrated, young=young, stills=stills if plates else None)
        return plan.finish(_run_work(ctx, plan.jobs), st.shape_modes)

    # -- apply ---------------------------------------------------------------------------------------------------
    def apply(self, ctx: MethodContext, frame: FrameInput) -> FaceEdit:
        if self._face_model(ctx) is None or self.identity is None:
            raise MethodError("digital_human.apply called before prepare")
        fit = frame.fit
        if fit is None:
            raise MethodError(f"frame {frame.frame}: no fit; the digital human needs the performance's fit")
        st = self._settings(ctx)
        if st.mode == "plate":
            if frame.hero is None:
                raise MethodError(f"frame {frame.frame}: plate mode needs the calibrated hero camera",
                                  hint="run the calibrate stage (or import a calibration) first")
            edit = self._plate(ctx, st).edit(frame.frame, frame.plate, fit, frame.hero)  # a crop of the plate
            return edit if ctx.roi_edits else edit.on_plate(frame.plate)
        v = self.model.vertices(self.identity, fit.expression)  # model frame, young identity, frame's expression
        world = float(fit.scale) * v @ np.asarray(fit.R).T + np.asarray(fit.t)
        return FaceEdit(frame=frame.frame, kind="mesh", vertices=world.astype(np.float32),
                        albedo_texture=self.texture.astype(np.float32),
                        info={"fit_valid": bool(fit.valid), "young_landmark_rms_px": self.report.get("rms_px")})

    def _plate(self, ctx: MethodContext, st: DigitalHumanSettings):
        """The plate mode's retoucher: built once per process (each chunk's fresh copy of the method takes the one
        its worker's resources hold for the same model, shape change, skin colour and settings; building it costs
        the model's shape weights, ~0.05 CPU-s)."""
        if self._retoucher is None:
            from reconstruct.render import get_renderer

            from .plate import PlateRetoucher

            skin = self.report.get("skin_rgb")
            plate = st.plate_settings()

            def make(renderer):
                return PlateRetoucher(self.model, renderer, self.shift, None if skin is None else np.asarray(skin),
                                      plate)

            res = ctx.resources
            if res is None:
                self._retoucher = make(get_renderer(ctx.components, "auto", ctx.device))
            else:
                renderer = res.get(("renderer", "auto", ctx.device),
                                   lambda: get_renderer(ctx.components, "auto", ctx.device))
                key = ("digital_human.plate", self.model_name or self.model.name, ctx.device,
                       np.asarray(self.shift, np.float64).tobytes(), None if skin is None else tuple(skin), plate)
                self._retoucher = res.get(key, lambda: make(renderer))
        return self._retoucher


class _YoungStills:
    """The young stills (:func:`read_young_refs`) and their landmarks (:func:`.young.find_landmarks`), read and
    found once, on first use, for the asset's build and the per-still fits alike."""

    def __init__(self, ctx: MethodContext, model, refs: Path, detector: str | None) -> None:
        self._ctx, self._model, self._refs, self._detector = ctx, model, refs, detector
        self._found: list | None = None

    @property
    def scheme(self) -> str:
        from .young import detector_class

        return detector_class(self._ctx.components, self._model, self._detector).scheme

    def found(self) -> list:
        if self._found is None:
            from .young import find_landmarks, pick_detector

            det = pick_detector(self._ctx.components, self._model, self._detector)
            self._found = find_landmarks(read_young_refs(self._refs), det.detect)
        return self._found


@dataclass(slots=True)
class _FitPlan:
    """The per-still identity fits of one set of stills: cached (``ident``), or the work items that make them."""

    cache: Path
    shared: bool  # keyed by the stills' content: kept for every take (:func:`share_cached`)
    ident: np.ndarray | None
    jobs: list

    def finish(self, results: list, modes: int) -> np.ndarray:
        """(S, modes) identities: the cached ones, or the work items' ``results`` stacked and cached."""
        if self.ident is not None:
            return self.ident
        from reconstruct.session import atomic_path

        ident = np.stack(results)[:, :modes]
        with atomic_path(self.cache, suffix=".npy") as tmp:
            np.save(tmp, ident, allow_pickle=False)
        if self.shared:
            share_cached(self.cache)
        return ident


@dataclass(frozen=True, slots=True)
class _Ready:
    """A result of the preparation made already (:meth:`DigitalHumanMethod.early_work`), in place of its job."""

    value: Any


def _run_work(ctx: MethodContext, jobs: list) -> list:
    """The preparation's work items (:func:`.young.prepare_work`) on the run's executor (one batch: the asset's
    build beside the still fits), else in this process; results in the items' order (a :class:`_Ready` one's
    made already)."""
    todo = [j for j in jobs if not isinstance(j, _Ready)]
    done = iter(_run_jobs(ctx, todo))
    return [j.value if isinstance(j, _Ready) else next(done) for j in jobs]


def _run_jobs(ctx: MethodContext, jobs: list) -> list:
    from .young import AssetJob, prepare_work

    if not jobs:
        return []
    if ctx.executor is not None:
        n = sum(not isinstance(j, AssetJob) for j in jobs)
        what = ", ".join((["young asset"] if n < len(jobs) else []) + ([f"identity fits ({n} stills)"] if n else []))
        return ctx.executor.map(prepare_work, jobs, description=what, resources=True)
    from reconstruct.executors.resources import Resources

    res = ctx.resources if ctx.resources is not None else Resources(ctx.components)
    return [prepare_work(j, res) for j in jobs]


def _import_for_workers(ctx: MethodContext) -> None:
    """The CPU ray caster's open3d (without its plotting viewer: the ray caster's own import defers it) imported in
    the driver, before the preparation's and the frames' workers are forked from it: each of them imported it
    (~0.25 CPU-s; 4 workers for a take whose young stills are not cached yet). In a whole run the fit stage's
    overlay has imported it already; a GPU device is left to pick its renderer."""
    if ctx.device != "cpu":
        return
    from reconstruct.render import renderer_class

    preload = getattr(renderer_class(ctx.components, "auto", ctx.device), "preload", None)  # optional for a plugin's
    if preload is not None:
        preload()


def _pad(a, n: int) -> np.ndarray:
    out = np.zeros(n)
    a = np.asarray(a, np.float64).ravel()[:n]
    out[: a.size] = a
    return out
