"""The ``digital_human`` aging method: replace the performer's face by a young digital double.

prepare: detect landmarks on the young reference stills, fit one identity to all of them (expression and pose
free per still; :mod:`.identity`) -- or take the identity the user set -- and unwrap the young albedo into the
model's UV space (:mod:`.texture`). Cached in ``out/methods/digital_human/young-<key>.npz``.

apply: per frame, the young identity with the frame's fitted expression and head pose, textured with the young
albedo -> a "mesh" :class:`FaceEdit`; the render stage lights it like the plate and the composite stage keeps the
performance's eyes (the model's ``eyes`` region is excluded from the mask) and everything outside the face.

The young-reference folder: images (``*.png``, ``*.jpg``, ``*.jpeg``, ``*.tif``) of the actor when young, plus
optionally ``cameras.json`` (``{"<file name>" or "default": {"K": 3x3, "dist": [...]}}``, pixels; default: focal
length 1.2 x the longer image side, principal point at the centre) and ``identity.npy`` (coefficients that set
the identity instead of fitting it; also ``--option digital_human.identity=FILE``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from reconstruct.camera import CameraModel
from reconstruct.errors import MethodError
from reconstruct.methods import BaseMethod, FaceEdit, FrameInput, MethodContext
from reconstruct.options import option

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def _digest(paths) -> str:
    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def read_young_refs(folder: Path) -> list[tuple[str, np.ndarray, CameraModel]]:
    """(file name, RGB uint8 image, camera) per still of a young-reference folder."""
    import cv2

    folder = Path(folder)
    if not folder.is_dir():
        raise MethodError(f"young reference folder {folder} does not exist",
                          hint="pass --young-refs DIR with stills of the actor when young")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MethodError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})",
                          hint="put a few sharp stills of the young actor there (frontal and 3/4 views)")
    cams_json = {}
    if (folder / "cameras.json").exists():
        try:
            cams_json = json.loads((folder / "cameras.json").read_text())
        except ValueError as exc:
            raise MethodError(f"{folder / 'cameras.json'} is not valid JSON: {exc}") from exc
    out = []
    for p in files:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise MethodError(f"cannot read young reference still {p}", hint="is it a valid image file?")
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        h, w = img.shape[:2]
        spec = cams_json.get(p.name, cams_json.get("default"))
        if spec is not None:
            K, dist = np.asarray(spec["K"], float), np.asarray(spec.get("dist", np.zeros(5)), float)
        else:
            f = 1.2 * max(w, h)
            K, dist = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]]), np.zeros(5)
        out.append((p.name, img, CameraModel(name=p.name, K=K, dist=dist, image_size=(w, h))))
    return out


@dataclass(frozen=True, slots=True)
class DigitalHumanSettings:
    """``--option digital_human.KEY=VALUE`` (``--young-refs DIR`` sets ``young_refs``)."""

    young_refs: str | None = option(None, "folder of stills of the actor when young (also --young-refs)")
    identity: str | None = option(None, "a .npy of identity coefficients that sets the young identity instead of "
                                        "fitting it to the stills")
    texture_size: int = option(512, "side of the young albedo texture, pixels")
    n_identity: int = option(40, "identity modes fitted to the stills")
    passes: int = option(2, "identity/albedo refinement passes")
    detector: str | None = option(None, "landmark detector for the stills (default: the highest-priority one)")

    def __post_init__(self) -> None:
        if self.texture_size < 16 or self.n_identity < 1 or self.passes < 1:
            raise ValueError("digital_human.texture_size must be at least 16, n_identity and passes at least 1")


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
        refs = self._refs(ctx)
        files = [p for p in refs.iterdir() if p.is_file()] if refs.is_dir() else []
        st = self._settings(ctx)
        return {"young_refs": _digest(files) if files else str(refs),
                "identity": _digest([Path(st.identity)]) if st.identity else None,
                "texture_size": st.texture_size, "n_identity": st.n_identity, "passes": st.passes,
                "model": ctx.fits.model_name if ctx.fits is not None else None, "version": 1}

    # -- prepare -------------------------------------------------------------------------------------------------
    def prepare(self, ctx: MethodContext) -> None:
        if ctx.fits is None:
            raise MethodError("digital_human needs the fit stage's result (out/fit/fits.npz)",
                              hint="run the pipeline without --only so that detect and fit run first")
        self.model = ctx.components.face_model(ctx.fits.model_name)
        st = dict(self.settings(ctx))
        key = hashlib.sha256(json.dumps(st, sort_keys=True).encode()).hexdigest()[:16]
        cache = ctx.work_dir / f"young-{key}.npz"
        if cache.exists():
            d = np.load(cache, allow_pickle=False)
            self.identity, self.texture = d["identity"], d["texture"]
            self.report = json.loads(str(d["report"]))
            log.info("digital_human: young identity and albedo from cache %s", cache)
            return
        from .young import build_young_asset

        ident = self._settings(ctx).identity
        refs_dir = self._refs(ctx)
        if ident is None and (refs_dir / "identity.npy").exists():
            ident = refs_dir / "identity.npy"
        asset = build_young_asset(
            self.model, read_young_refs(refs_dir), ctx.components, device=ctx.device,
            texture_size=st["texture_size"], n_identity=st["n_identity"], passes=st["passes"],
            identity=None if ident is None else np.load(ident), detector=self._settings(ctx).detector,
            progress=ctx.progress)
        self.identity, self.texture, self.report = asset.identity, asset.texture, asset.report
        from reconstruct.session import atomic_path

        with atomic_path(cache, suffix=".npz") as tmp:
            np.savez_compressed(tmp, identity=self.identity, texture=self.texture, report=json.dumps(self.report))

    # -- apply ---------------------------------------------------------------------------------------------------
    def apply(self, ctx: MethodContext, frame: FrameInput) -> FaceEdit:
        if self.model is None or self.identity is None:
            raise MethodError("digital_human.apply called before prepare")
        fit = frame.fit
        if fit is None:
            raise MethodError(f"frame {frame.frame}: no fit; the digital human needs the performance's fit")
        v = self.model.vertices(self.identity, fit.expression)  # model frame, young identity, frame's expression
        world = float(fit.scale) * v @ np.asarray(fit.R).T + np.asarray(fit.t)
        return FaceEdit(frame=frame.frame, kind="mesh", vertices=world.astype(np.float32),
                        albedo_texture=self.texture.astype(np.float32),
                        info={"fit_valid": bool(fit.valid), "young_landmark_rms_px": self.report.get("rms_px")})
