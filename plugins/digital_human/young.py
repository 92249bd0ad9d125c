"""Building the young asset from reference stills: landmarks -> identity fit -> lighting/albedo unwrap passes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from reconstruct.errors import MethodError

from .identity import fit_identity_to_stills
from .texture import fill_holes, merge_views, unwrap_still, uv_raster

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
    """Identity (fitted or given) and UV albedo from ``stills`` ((name, RGB uint8, camera) triples)."""
    from reconstruct.render import Lighting, Mesh, get_renderer, srgb_to_linear
    from reconstruct.render.lighting import estimate_sh_lighting

    if not len(model.uvs):
        raise MethodError(f"face model {model.name!r} has no UV layout; the young albedo is unwrapped into UV space")
    det = pick_detector(components, model, detector)
    names, cams, pts, confs, imgs = [], [], [], [], []
    for name, img, cam in stills:
        r = det.detect(img)
        if r is None:
            log.warning("digital_human: no face found in young reference %s; skipped", name)
            continue
        names.append(name), cams.append(cam), pts.append(r[0]), confs.append(r[1]), imgs.append(img)
    if not names:
        raise MethodError("no face was found in any young reference still",
                          hint="use sharp, well-lit stills where the face covers a good part of the frame")
    fit = fit_identity_to_stills(model, det.scheme, cams, pts, confs, n_identity=n_identity, identity=identity)
    renderer = renderer or get_renderer(components, "auto", device)
    raster = uv_raster(model.uvs, model.triangle_uvs, texture_size)
    lins = [srgb_to_linear(im.astype(np.float32) / 255.0) for im in imgs]
    verts = [fit.vertices(model, i) for i in range(len(names))]
    skins = [_still_skin(model, renderer, v, c, im) for v, c, im in zip(verts, cams, imgs)]
    albedo = None
    lighting_rms: list[float] = []
    for p in range(max(1, passes)):
        albs, ws, lighting_rms = [], [], []
        for i, cam in enumerate(cams):
            if albedo is None:
                mesh = Mesh(verts[i], model.triangles, vertex_colors=np.full((model.n_vertices, 3), 0.5, np.float32))
            else:
                mesh = Mesh(verts[i], model.triangles, uvs=model.uvs, triangle_uvs=model.triangle_uvs, texture=albedo)
            out = renderer.render(mesh, cam, Lighting(ambient=np.ones(3)))
            m = out.mask
            est = estimate_sh_lighting(lins[i][m], out.albedo[m], out.normals[m])
            lighting_rms.append(est.rms)
            a, w = unwrap_still(model, raster, verts[i], cam, lins[i], renderer, est.lighting.irradiance,
                                skin=skins[i])
            albs.append(a), ws.append(w)
        merged, wsum = merge_views(albs, ws)
        albedo = np.clip(fill_holes(merged, wsum), 0.0, 1.0)
        log.info("digital_human: albedo pass %d, %.1f%% of the UV layout seen", p, 100 * (wsum > 0).mean())
    skin_rgb = _skin_colour(model, renderer, verts, cams, imgs)
    report = {"stills": names, "rms_px": [round(float(x), 3) for x in fit.residual_px],
              "skin_rgb": None if skin_rgb is None else [round(float(x), 5) for x in skin_rgb],
              "lighting_rms": [round(float(x), 5) for x in lighting_rms],
              "uv_seen": round(float((wsum > 0).sum() / max(raster.mask.sum(), 1)), 4),
              "identity_set_by_user": identity is not None}
    return YoungAsset(identity=fit.identity, texture=albedo.astype(np.float32), report=report)


def _skin_colour(model, renderer, verts, cams, imgs) -> np.ndarray | None:
    """Mean sRGB colour (in [0, 1]) of the young skin over all stills: pixels where the fitted young face shows the
    model's skin region *and* the still's colour is skin (never hair, brows, beard or background)."""
    from reconstruct.composite.mask import skin_from_color

    skin_v = model.regions.get("skin")
    total, n = np.zeros(3), 0
    for v, cam, img in zip(verts, cams, imgs):
        frags = renderer.rasterize(v, model.triangles, cam)
        m = frags.mask
        if skin_v is not None:
            m = m.copy()
            m[m] = np.asarray(skin_v, bool)[model.triangles[frags.triangle[m]]].all(axis=1)
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
    model = res.get(("face_model", job.model), lambda: res.face_model(job.model))
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


def _still_skin(model, renderer, vertices, cam, img) -> np.ndarray:
    """(H, W) in [0, 1]: where a still shows this face's own skin (colour learned on the fitted face's skin region;
    :func:`reconstruct.retouch.skin.adaptive_skin`)."""
    from reconstruct.retouch.skin import adaptive_skin

    frags = renderer.rasterize(vertices, model.triangles, cam)
    prior = frags.mask.copy()
    skin_v = model.regions.get("skin")
    if skin_v is not None:
        prior[prior] = np.asarray(skin_v, bool)[model.triangles[frags.triangle[prior]]].all(axis=1)
    return adaptive_skin(img.astype(np.float32) / 255.0, prior)
