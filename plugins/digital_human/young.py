"""Building the young asset from reference stills: landmarks -> identity fit -> lighting/albedo unwrap passes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from reconstruct.errors import MethodError

from .identity import fit_identity_to_stills
from .texture import fill_holes, merge_views, still_samples, uv_raster

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class YoungAsset:
    """identity: (Ki,) float64 coefficients. texture: (S, S, 3) float32 linear-RGB albedo in the model's UV layout.
    report: per-still landmark RMS, lighting residuals, UV coverage (JSON-serialisable)."""

    identity: np.ndarray
    texture: np.ndarray
    report: dict = field(default_factory=dict)


def detector_class(components, model, name: str | None = None) -> type:
    """The class of the landmark detector to run on the stills: ``name``, else the highest-priority one whose
    scheme the model has a correspondence for (not built: building MediaPipe's costs its import)."""
    dets = components.all("landmark_detector")
    if name:
        cls = components.get("landmark_detector", name)
        if cls.scheme not in model.landmarks:
            raise MethodError(f"detector {name!r} gives {cls.scheme!r} landmarks; model {model.name!r} has a "
                              f"correspondence for {', '.join(model.landmarks) or 'none'}")
        return cls
    ok = [c for c in dets.values() if getattr(c, "scheme", None) in model.landmarks]
    if not ok:
        raise MethodError(f"no landmark detector matches model {model.name!r}'s landmark schemes "
                          f"({', '.join(model.landmarks) or 'none'})",
                          hint="`reconstruct plugins` lists detectors; or set the identity with identity.npy")
    return sorted(ok, key=lambda c: -int(getattr(c, "priority", 0)))[0]


def pick_detector(components, model, name: str | None = None):
    """The landmark detector to run on the stills (:func:`detector_class`), built."""
    return detector_class(components, model, name)()


def build_young_asset(*args, **kwargs) -> YoungAsset:
    """See :func:`_build` (run with single-threaded BLAS: many small products, slow when threads contend)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _build(*args, **kwargs)


def _build(model, stills: Sequence[tuple[str, np.ndarray, Any]], components, *, device: str = "cpu",
           texture_size: int = 512, n_identity: int = 40, passes: int = 2,
           identity: np.ndarray | None = None, detector: str | None = None, progress=None,
           renderer=None) -> YoungAsset:
    """Identity (fitted or given) and UV albedo from ``stills`` ((name, RGB uint8, camera) triples): their
    landmarks (:func:`find_landmarks`), then :func:`asset_from_landmarks`."""
    from reconstruct.render import get_renderer

    det = pick_detector(components, model, detector)
    found = find_landmarks(stills, det.detect)
    return asset_from_landmarks(model, det.scheme, found, renderer or get_renderer(components, "auto", device),
                                texture_size=texture_size, n_identity=n_identity, passes=passes, identity=identity)


@dataclass(frozen=True, slots=True, eq=False)
class FoundStill:
    """A still with a face: its name, RGB uint8 image, camera, landmarks (N, 2) and their confidences (N,)."""

    name: str
    image: np.ndarray
    camera: Any
    points: np.ndarray
    conf: np.ndarray


def find_landmarks(stills: Sequence[tuple[str, np.ndarray, Any]], detect) -> list[FoundStill]:
    """The stills in which ``detect(image)`` (a detector's ``detect``) finds a face, with their landmarks; the
    others are skipped with a warning. Raises MethodError when none has one."""
    out = []
    for name, img, cam in stills:
        r = detect(img)
        if r is None:
            log.warning("digital_human: no face found in young reference %s; skipped", name)
            continue
        out.append(FoundStill(name, img, cam, r[0], r[1]))
    if not out:
        raise MethodError("no face was found in any young reference still",
                          hint="use sharp, well-lit stills where the face covers a good part of the frame")
    return out


def asset_from_landmarks(model, scheme: str, found: Sequence[FoundStill], renderer, *, texture_size: int = 512,
                         n_identity: int = 40, passes: int = 2, identity: np.ndarray | None = None) -> YoungAsset:
    """The young asset from stills whose landmarks were found (:func:`find_landmarks`): one identity fitted to
    all of them (or ``identity``; :func:`young_geometry`), each still's lighting and albedo unwrapped, ``passes``
    times (:func:`young_albedo`)."""
    geo = young_geometry(model, scheme, found, renderer, n_identity=n_identity, identity=identity)
    return geo.asset(young_albedo(model, found, geo.fit, renderer, texture_size=texture_size, passes=passes,
                                  frags=geo.frags))


@dataclass(frozen=True, slots=True, eq=False)
class YoungGeometry:
    """The young asset without its albedo (what the plate mode's frames need of it): the stills' names, the
    identity fit (:class:`.identity.StillsFit`: identity, and per still expression and pose), the young skin's mean
    sRGB colour (None: no skin seen), whether the identity was set by the user, and -- in the process that made
    it only -- the fitted face rasterised through each still's camera (``frags``, reused by the albedo)."""

    names: tuple[str, ...]
    fit: Any
    skin_rgb: np.ndarray | None
    identity_set_by_user: bool
    frags: tuple | None = None

    def without_frags(self) -> "YoungGeometry":
        return YoungGeometry(self.names, self.fit, self.skin_rgb, self.identity_set_by_user)

    def report(self, albedo: "YoungAlbedo | None" = None) -> dict:
        """The asset's report (JSON-serialisable; the albedo's entries only with ``albedo``)."""
        out = {"stills": list(self.names), "rms_px": [round(float(x), 3) for x in self.fit.residual_px],
               "skin_rgb": None if self.skin_rgb is None else [round(float(x), 5) for x in self.skin_rgb]}
        if albedo is not None:
            out.update(lighting_rms=[round(float(x), 5) for x in albedo.lighting_rms], uv_seen=albedo.uv_seen)
        out["identity_set_by_user"] = self.identity_set_by_user
        return out

    def asset(self, albedo: "YoungAlbedo") -> YoungAsset:
        return YoungAsset(identity=self.fit.identity, texture=albedo.texture, report=self.report(albedo))


@dataclass(frozen=True, slots=True, eq=False)
class YoungAlbedo:
    """The young albedo: texture (S, S, 3) float32 linear RGB in the model's UV layout, each still's lighting
    residual of the last pass, and the fraction of the UV layout the stills saw."""

    texture: np.ndarray
    lighting_rms: list
    uv_seen: float


def young_geometry(model, scheme: str, found: Sequence[FoundStill], renderer, *, n_identity: int = 40,
                   identity: np.ndarray | None = None) -> YoungGeometry:
    """One identity fitted to all the stills (or ``identity``), the fitted face rasterised through each still's
    camera, and the young skin's mean colour."""
    _need_uvs(model)
    fit = fit_identity_to_stills(model, scheme, [f.camera for f in found], [f.points for f in found],
                                 [f.conf for f in found], n_identity=n_identity, identity=identity)
    frags = tuple(renderer.rasterize(fit.vertices(model, i), model.triangles, f.camera) for i, f in enumerate(found))
    return YoungGeometry(tuple(f.name for f in found), fit, _skin_colour(model, frags, [f.image for f in found]),
                         identity is not None, frags)


def young_albedo(model, found: Sequence[FoundStill], fit, renderer, *, texture_size: int = 512, passes: int = 2,
                 frags: Sequence | None = None) -> YoungAlbedo:
    """Each still's lighting and the albedo unwrapped into the model's UV layout, ``passes`` times, on the faces
    ``fit`` (:class:`.identity.StillsFit`) places in the stills (``frags``: their rasterisations, when the caller
    has them; made here otherwise, the same)."""
    from reconstruct.render import Lighting, Mesh, srgb_to_linear
    from reconstruct.render.base import shade
    from reconstruct.render.lighting import estimate_sh_lighting

    _need_uvs(model)
    cams = [f.camera for f in found]
    imgs = [f.image for f in found]
    raster = uv_raster(model.uvs, model.triangle_uvs, texture_size)
    lins = [srgb_to_linear(im.astype(np.float32) / 255.0) for im in imgs]
    verts = [fit.vertices(model, i) for i in range(len(found))]
    # each still's face is seen the same way in every pass: rasterised once, and what the unwrap takes from the
    # still (visibility, weights, colours) found once; a pass only shades and divides
    if frags is None:
        frags = [renderer.rasterize(v, model.triangles, c) for v, c in zip(verts, cams)]
    skins = [_still_skin(model, f, im) for f, im in zip(frags, imgs)]
    samples = [still_samples(model, raster, v, c, lin, f, skin=sk)
               for v, c, lin, f, sk in zip(verts, cams, lins, frags, skins)]
    albedo = None
    lighting_rms: list[float] = []

    def unwrap(i: int, albedo):
        if albedo is None:
            mesh = Mesh(verts[i], model.triangles, vertex_colors=np.full((model.n_vertices, 3), 0.5, np.float32))
        else:
            mesh = Mesh(verts[i], model.triangles, uvs=model.uvs, triangle_uvs=model.triangle_uvs, texture=albedo)
        out = shade(frags[i], mesh, Lighting(ambient=np.ones(3)))  # renderer.render without rasterising again
        m = out.mask
        est = estimate_sh_lighting(lins[i][m], out.albedo[m], out.normals[m])
        return samples[i].unwrap(est.lighting.irradiance), est.rms

    for p in range(max(1, passes)):
        done = [unwrap(i, albedo) for i in range(len(cams))]
        lighting_rms = [rms for _, rms in done]
        merged, wsum = merge_views([a for (a, _), _ in done], [w for (_, w), _ in done])
        albedo = np.clip(fill_holes(merged, wsum), 0.0, 1.0)
        log.info("digital_human: albedo pass %d, %.1f%% of the UV layout seen", p, 100 * (wsum > 0).mean())
    return YoungAlbedo(texture=albedo.astype(np.float32), lighting_rms=lighting_rms,
                       uv_seen=round(float((wsum > 0).sum() / max(raster.mask.sum(), 1)), 4))


@dataclass(frozen=True, slots=True, eq=False)
class AssetJob:
    """The young asset's build as a work item (picklable: it runs in a ``--jobs`` worker beside the per-still
    identity fits, :class:`StillFit`): the registered face model's name, the landmark scheme, the stills with
    their landmarks (found in the driver: MediaPipe does not survive a fork of a process that ran it) and the
    build's settings. ``albedo=False``: only the :class:`YoungGeometry` (the albedo left to an
    :class:`AlbedoJob`)."""

    model: str
    scheme: str
    found: tuple
    texture_size: int
    n_identity: int
    passes: int
    identity: np.ndarray | None
    device: str
    albedo: bool = True


@dataclass(frozen=True, slots=True, eq=False)
class AlbedoJob:
    """The young albedo (:func:`young_albedo`) as a work item: the registered face model's name, the stills with
    their landmarks, the identity fit (:class:`YoungGeometry`'s) and the build's settings."""

    model: str
    found: tuple
    fit: Any
    texture_size: int
    passes: int
    device: str


def _worker_model_renderer(res, model: str, device: str):
    from reconstruct.render import get_renderer

    return (res.face_model(model),  # loaded once per registry
            res.get(("renderer", "auto", device), lambda: get_renderer(res.components, "auto", device)))


def build_asset(job: AssetJob, res) -> "YoungAsset | YoungGeometry":
    """:func:`asset_from_landmarks` for ``job`` with the worker's model and renderer (single-threaded BLAS); with
    ``job.albedo`` False its :func:`young_geometry` (without the rasterisations)."""
    from threadpoolctl import threadpool_limits

    model, renderer = _worker_model_renderer(res, job.model, job.device)
    with threadpool_limits(1):
        if not job.albedo:
            return young_geometry(model, job.scheme, job.found, renderer, n_identity=job.n_identity,
                                  identity=job.identity).without_frags()
        return asset_from_landmarks(model, job.scheme, job.found, renderer, texture_size=job.texture_size,
                                    n_identity=job.n_identity, passes=job.passes, identity=job.identity)


def build_albedo(job: AlbedoJob, res) -> YoungAlbedo:
    """:func:`young_albedo` for ``job`` with the worker's model and renderer (single-threaded BLAS)."""
    from threadpoolctl import threadpool_limits

    model, renderer = _worker_model_renderer(res, job.model, job.device)
    with threadpool_limits(1):
        return young_albedo(model, job.found, job.fit, renderer, texture_size=job.texture_size, passes=job.passes)


def prepare_work(job, res):
    """One work item of the method's preparation: an :class:`AssetJob`, an :class:`AlbedoJob` or a
    :class:`StillFit` (module-level: it runs in the run's workers; open3d's plotting modules left unloaded:
    :func:`reconstruct.lazy_imports.defer_plotting_imports`)."""
    from reconstruct.lazy_imports import defer_plotting_imports

    defer_plotting_imports()
    if isinstance(job, AssetJob):
        return build_asset(job, res)
    return build_albedo(job, res) if isinstance(job, AlbedoJob) else fit_still(job, res)


def _need_uvs(model) -> None:
    if not len(model.uvs):
        raise MethodError(f"face model {model.name!r} has no UV layout; the young albedo is unwrapped into UV space")


def _skin_colour(model, frags, imgs) -> np.ndarray | None:
    """Mean sRGB colour (in [0, 1]) of the young skin over all stills: pixels where the fitted young face shows the
    model's skin region *and* the still's colour is skin (never hair, brows, beard or background). ``frags``: the
    fitted face rasterised through each still's camera."""
    from reconstruct.composite.mask import skin_from_color

    total, n = np.zeros(3), 0
    for f, img in zip(frags, imgs):
        m = _skin_region_pixels(model, f)
        m &= skin_from_color(img)
        if m.sum() < 50:
            continue
        total += (img[m].astype(np.float64) / 255.0).sum(0)
        n += int(m.sum())
    return None if n == 0 else total / n


@dataclass(frozen=True, slots=True)
class StillFit:
    """One still's identity fit (picklable: a work item of ``executor.map``): the registered face model's name,
    the landmark scheme, the still's camera, its landmarks and their confidences."""

    model: str
    scheme: str
    camera: Any
    points: np.ndarray
    conf: np.ndarray
    n_identity: int


def fit_still(job: StillFit, res) -> np.ndarray:
    """The identity fitted to one still (module-level: it runs in ``--jobs`` workers, which only fit -- MediaPipe
    runs in the caller: a forked worker of a process that ran it crashes)."""
    model = res.face_model(job.model)  # loaded once per registry
    return fit_identity_to_stills(model, job.scheme, [job.camera], [job.points], [job.conf],
                                  n_identity=job.n_identity).identity


def stills_identity(model, stills: Sequence[tuple[str, np.ndarray, Any]], components, *, n_identity: int = 40,
                    detector: str | None = None, each: bool = False, executor=None, model_name: str | None = None,
                    landmarks: Sequence | None = None) -> np.ndarray:
    """The identity fitted to ``stills`` ((name, RGB uint8, camera) triples) by the same landmark fit as the young
    asset's (no texture): (Ki,), or with ``each`` one identity per still (S', Ki) (stills without a face left
    out), whose spread says how well the stills determine each mode.

    ``executor`` (with ``each``): the per-still fits run as its work items (the landmarks are found here; the
    same numbers as in process: each fit on its own, single-threaded BLAS); ``model_name``: the model's registered
    name, by which the workers load it (default ``model.name``). ``landmarks``: per still, what the detector
    (:func:`detector_class`) finds on it -- ``(points, confidence)`` or None (no face) -- when the caller has it
    already (the detect stage's, for the take's plates): no detector is built."""
    from threadpoolctl import threadpool_limits

    if landmarks is not None:
        if len(landmarks) != len(stills):
            raise ValueError(f"{len(landmarks)} landmark sets for {len(stills)} stills")
        scheme = detector_class(components, model, detector).scheme
        found = iter(landmarks)
        detect = lambda img: next(found)  # noqa: E731 - in the stills' order
    else:
        det = pick_detector(components, model, detector)
        scheme, detect = det.scheme, det.detect
    cams, pts, confs = [], [], []
    for name, img, cam in stills:
        r = detect(img)
        if r is None:
            log.warning("digital_human: no face found in %s; skipped", name)
            continue
        cams.append(cam), pts.append(r[0]), confs.append(r[1])
    if not cams:
        raise MethodError("no face was found in the take's plates for the performer's still fit",
                          hint="check the detect stage's report (out/detect/report.json)")
    if each and executor is not None:
        jobs = [StillFit(model_name or model.name, scheme, c, p, q, n_identity) for c, p, q in zip(cams, pts, confs)]
        return np.stack(executor.map(fit_still, jobs, description=f"identity fits ({len(jobs)} stills)",
                                     resources=True))
    with threadpool_limits(1):
        if each:
            return np.stack([fit_identity_to_stills(model, scheme, [c], [p], [q], n_identity=n_identity).identity
                             for c, p, q in zip(cams, pts, confs)])
        return fit_identity_to_stills(model, scheme, cams, pts, confs, n_identity=n_identity).identity


def _still_skin(model, frags, img) -> np.ndarray:
    """(H, W) in [0, 1]: where a still shows this face's own skin (colour learned on the fitted face's skin region,
    ``frags`` its rasterisation; :func:`reconstruct.retouch.skin.adaptive_skin`)."""
    from reconstruct.retouch.skin import adaptive_skin

    return adaptive_skin(img.astype(np.float32) / 255.0, _skin_region_pixels(model, frags))


def _skin_region_pixels(model, frags) -> np.ndarray:
    """(H, W) bool, a new array (the fragments, shared by every pass, stay as they are): the pixels where the
    rasterised face shows a triangle of the model's ``skin`` region (all of the face without that region)."""
    m = frags.mask.copy()
    skin_v = model.regions.get("skin")
    if skin_v is not None:
        m[m] = np.asarray(skin_v, bool)[model.triangles[frags.triangle[m]]].all(axis=1)
    return m
